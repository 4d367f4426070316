"""An external database (RDS, `database.managed`): the stack without its `postgres` service, and the
URLs the entry point builds from the endpoint and the secret at container start."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from airtasks.cli import cli
from airtasks.stack.database import (
    ASYNC_CONN_ENV,
    CONN_ENV,
    RESULT_BACKEND_ENV,
    SECRET_ARN_ENV,
    URL_ENV,
    DatabaseError,
    ExternalDatabase,
    secret_region,
    urls,
)
from airtasks.stack.render import QueueSpec, render_stack

ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-0a1b2c3d-4e5f-AbCdEf"
HOST = "airtasks-demo.c1x2y3z4.eu-west-1.rds.amazonaws.com"
SETTINGS = {"host": HOST, "port": 5432, "name": "airflow", "user": "airflow", "secret_arn": ARN}
DB = ExternalDatabase.parse(json.dumps(SETTINGS))
PASSWORD = "p@ss:w/rd?#%&"  # a test value with every character a URL must quote


def load(text: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


def airflow_services(stack: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: svc
        for name, svc in stack["services"].items()
        if str(svc.get("image", "")).startswith("${AIRTASKS_IMAGE")
    }


def test_external_database_stack_has_no_postgres_service_or_volume() -> None:
    stack = load(render_stack([QueueSpec("default", 4), QueueSpec("gpu", 1)], database=DB))
    assert "postgres" not in stack["services"]
    assert "postgres-data" not in (stack.get("volumes") or {})
    assert "rabbitmq-data" in stack["volumes"]
    # Nor the stack's own database password: no service mounts it, the stack does not declare it.
    assert "airtasks_postgres_password" not in stack["secrets"]
    for name, svc in stack["services"].items():
        assert "airtasks_postgres_password" not in (svc.get("secrets") or []), name
    assert "airtasks_rabbitmq_password" in stack["services"]["airflow-scheduler"]["secrets"]
    # The stack's own database stays the default.
    default = load(render_stack())
    assert "postgres" in default["services"]
    assert "postgres-data" in default["volumes"]
    assert "airtasks_postgres_password" in default["services"]["airflow-scheduler"]["secrets"]


def test_every_airflow_service_builds_its_connection_from_the_endpoint_and_the_secret() -> None:
    stack = load(render_stack([QueueSpec("default", 4)], database=DB))
    services = airflow_services(stack)
    assert {"airflow-init", "airflow-scheduler", "worker-manager", "worker-default"} <= set(services)
    for name, svc in services.items():
        env = svc["environment"]
        assert env[SECRET_ARN_ENV] == ARN, name
        assert env[URL_ENV] == f"postgresql+psycopg2://airflow@{HOST}:5432/airflow?sslmode=require", name
        # No command filling the stack's own password, no reference to the `postgres` service.
        assert f"{CONN_ENV}_CMD" not in env, name
        assert f"{RESULT_BACKEND_ENV}_CMD" not in env, name
        assert "postgres:5432" not in str(env.get("AIRTASKS_WAIT_FOR", "")), name
    # Those that wait for the database wait for the endpoint (the broker too, where Celery runs).
    assert services["airflow-scheduler"]["environment"]["AIRTASKS_WAIT_FOR"] == f"{HOST}:5432 rabbitmq:5672"
    assert services["worker-default"]["environment"]["AIRTASKS_WAIT_FOR"] == f"{HOST}:5432 rabbitmq:5672"


def test_the_stack_names_the_secret_never_a_password() -> None:
    text = render_stack(database=DB)
    assert "@postgres:5432" not in text
    assert "airtasks_postgres_password}" not in text
    assert "airtasks-secret-url postgresql" not in text


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"host": "db host"}, "must be a DNS name"),
        ({"port": 0}, "from 1 to 65535"),
        ({"name": "air-flow"}, "database name"),
        ({"user": ""}, "database user"),
        ({"secret_arn": "rds!db-123"}, "must be a Secrets Manager secret's ARN"),
        ({"password": "x"}, "exactly the keys"),
    ],
)
def test_bad_settings_are_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(DatabaseError, match=message):
        ExternalDatabase.parse(json.dumps({**SETTINGS, **change}))


def test_urls_take_the_password_from_the_secret_quoted() -> None:
    asked: list[str] = []

    def read(arn: str) -> str:
        asked.append(arn)
        return json.dumps({"username": "airflow", "password": PASSWORD, "engine": "postgres"})

    out = urls(DB.env(), read)
    assert asked == [ARN]
    quoted = "p%40ss%3Aw%2Frd%3F%23%25%26"
    assert out[CONN_ENV] == f"postgresql+psycopg2://airflow:{quoted}@{HOST}:5432/airflow?sslmode=require"
    assert out[RESULT_BACKEND_ENV] == f"db+postgresql://airflow:{quoted}@{HOST}:5432/airflow?sslmode=require"
    # asyncpg names the TLS mode `ssl`; Airflow's own derivation would keep `sslmode` and fail.
    assert out[ASYNC_CONN_ENV] == f"postgresql+asyncpg://airflow:{quoted}@{HOST}:5432/airflow?ssl=require"


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("not json", "is not JSON"),
        (json.dumps({"username": "airflow"}), "is not JSON"),
        (json.dumps({"username": "airflow", "password": ""}), "holds no password"),
        (json.dumps({"username": "admin", "password": "s3cr3t-value"}), "another user"),
    ],
)
def test_a_secret_that_is_not_rds_s_is_refused_without_its_value(secret: str, message: str) -> None:
    with pytest.raises(DatabaseError, match=message) as info:
        urls(DB.env(), lambda _arn: secret)
    assert ARN in str(info.value)
    assert "s3cr3t-value" not in str(info.value)


def test_a_url_with_a_password_in_it_is_refused() -> None:
    env = {**DB.env(), URL_ENV: f"postgresql+psycopg2://airflow:secret@{HOST}:5432/airflow"}
    with pytest.raises(DatabaseError, match="render the stack again"):
        urls(env, lambda _arn: "{}")


def test_the_secret_is_read_in_its_own_region() -> None:
    assert secret_region(ARN) == "eu-west-1"


def test_render_cli_takes_the_database_settings() -> None:
    result = CliRunner().invoke(cli, ["stack", "render", "--database", json.dumps(SETTINGS)])
    assert result.exit_code == 0, result.output
    assert "postgres" not in load(result.output)["services"]
    bad = CliRunner().invoke(cli, ["stack", "render", "--database", json.dumps({**SETTINGS, "port": "x"})])
    assert bad.exit_code == 2
    assert "--database" in bad.output
    assert "65535" in bad.output
