"""An external database on GCP (Cloud SQL, modules/gcp/cluster `database.managed`): the settings
name a Secret Manager secret (`secret_name`) instead of an ARN, the stack carries that name, and
each service reads the secret with the VM's service account. The reads go through a fake Secret
Manager (httpx's MockTransport); the decisions are checked apart from the I/O."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
import yaml

from airtasks.stack import database_password
from airtasks.stack.database import (
    CONN_ENV,
    SECRET_ARN_ENV,
    SECRET_NAME_ENV,
    URL_ENV,
    DatabaseError,
    ExternalDatabase,
    _read_secret,
    read_gcp,
    secret_from_env,
    urls,
)
from airtasks.stack.database_password import PasswordRefresh, Target, install
from airtasks.stack.git_credentials import SecretManagerReader
from airtasks.stack.render import QueueSpec, render_stack

NAME = "projects/my-project-123/secrets/airtasks-demo-database"
HOST = "10.20.0.3"  # Cloud SQL's private IP
SETTINGS = {"host": HOST, "port": 5432, "name": "airflow", "user": "airflow", "secret_name": NAME}
DB = ExternalDatabase.parse(json.dumps(SETTINGS))
URL = f"postgresql+psycopg2://airflow@{HOST}:5432/airflow?sslmode=require"
PASSWORD = "Zq3kP9xW2mR7vT4nY8bL1cF6hJ5gD0sA"  # a test value, as the module generates them: no specials


def secret_manager(status: int, payload: str = "") -> tuple[SecretManagerReader, list[str]]:
    """A reader whose metadata server and Secret Manager answer `status` (and `payload` on 200)."""
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if "computeMetadata" in str(request.url):
            return httpx.Response(200, json={"access_token": "ya29.test", "expires_in": 3599})
        assert request.headers["Authorization"] == "Bearer ya29.test"
        if status != 200:
            return httpx.Response(status, json={"error": {"code": status}})
        return httpx.Response(200, json={"payload": {"data": base64.b64encode(payload.encode()).decode()}})

    return SecretManagerReader(http=httpx.Client(transport=httpx.MockTransport(answer))), seen


def test_settings_take_a_secret_manager_name_and_keep_the_aws_form() -> None:
    assert (DB.secret_name, DB.secret_arn, DB.secret) == (NAME, "", NAME)
    assert DB.env() == {URL_ENV: URL, SECRET_NAME_ENV: NAME}
    aws = {**SETTINGS, "secret_arn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-1-AbCdEf"}
    del aws["secret_name"]
    assert SECRET_ARN_ENV in ExternalDatabase.parse(json.dumps(aws)).env()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"secret_name": "airtasks-demo-database"}, "must be a Secret Manager secret's full name"),
        ({"secret_name": "projects/P/secrets/x"}, "must be a Secret Manager secret's full name"),
        ({"secret_name": f"{NAME}/versions/1"}, "must be a Secret Manager secret's full name"),
        ({"secret_arn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:x"}, "not both"),
        ({"password": "x"}, "exactly the keys"),
    ],
)
def test_bad_gcp_settings_are_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(DatabaseError, match=message):
        ExternalDatabase.parse(json.dumps({**SETTINGS, **change}))


def test_the_stack_has_no_postgres_and_names_the_secret_never_a_password() -> None:
    text = render_stack([QueueSpec("default", 4)], database=DB)
    stack = yaml.safe_load(text)
    assert "postgres" not in stack["services"]
    assert "postgres-data" not in (stack.get("volumes") or {})
    for name in ("airflow-scheduler", "airflow-init", "worker-default"):
        env = stack["services"][name]["environment"]
        assert env[SECRET_NAME_ENV] == NAME, name
        assert SECRET_ARN_ENV not in env, name
        assert env[URL_ENV] == URL, name
    assert "@postgres:5432" not in text


def test_the_secret_is_read_from_secret_manager_with_the_vm_s_token() -> None:
    reader, seen = secret_manager(200, json.dumps({"username": "airflow", "password": PASSWORD}))
    assert json.loads(read_gcp(NAME, reader))["password"] == PASSWORD
    assert seen[-1] == (
        "https://secretmanager.googleapis.com/v1/projects/my-project-123/secrets/"
        "airtasks-demo-database/versions/latest:access"
    )
    assert any("instance/service-accounts/default/token" in url for url in seen)


@pytest.mark.parametrize(
    ("status", "words"),
    [
        (403, "roles/secretmanager.secretAccessor on it (modules/gcp/cluster grants it"),
        (404, "terraform apply writes it"),
        (503, "reads it again"),
    ],
)
def test_a_failed_read_names_the_secret_and_the_fix(status: int, words: str) -> None:
    reader, _ = secret_manager(status)
    with pytest.raises(DatabaseError) as info:
        read_gcp(NAME, reader)
    assert NAME in str(info.value)
    assert words in str(info.value)


def test_urls_take_the_password_from_the_gcp_secret() -> None:
    asked: list[str] = []

    def read(secret: str) -> str:
        asked.append(secret)
        return json.dumps({"username": "airflow", "password": PASSWORD})

    out = urls(DB.env(), read)
    assert asked == [NAME]
    assert out[CONN_ENV] == f"postgresql+psycopg2://airflow:{PASSWORD}@{HOST}:5432/airflow?sslmode=require"


def test_which_store_a_secret_is_read_from(monkeypatch: pytest.MonkeyPatch) -> None:
    """_read_secret goes by the name's shape: a full Secret Manager name to GCP, an ARN to AWS."""
    went: list[str] = []

    def reader(store: str) -> Any:
        def read(secret: str) -> str:
            went.append(f"{store} {secret}")
            return "{}"

        return read

    monkeypatch.setattr("airtasks.stack.database.read_gcp", reader("gcp"))
    monkeypatch.setattr("airtasks.stack.database._read_aws", reader("aws"))
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-1-AbCdEf"
    _read_secret(NAME)
    _read_secret(arn)
    assert went == [f"gcp {NAME}", f"aws {arn}"]


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({SECRET_NAME_ENV: "airtasks-demo-database"}, f"{SECRET_NAME_ENV} is not a Secret Manager"),
        ({SECRET_NAME_ENV: NAME, SECRET_ARN_ENV: "arn:x"}, "both"),
    ],
)
def test_a_malformed_secret_in_the_environment_says_render_again(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(DatabaseError, match=message):
        secret_from_env(environ)
    assert secret_from_env({}) == ""


def test_a_refused_password_is_read_again_from_the_gcp_secret() -> None:
    """airtasks.stack.database_password: the same re-read and retry as on AWS, and a GCP fix."""
    reads: list[str] = []

    def read(secret: str) -> str:
        reads.append(secret)
        return json.dumps({"username": "airflow", "password": "new-one"})

    class Refused(Exception):
        pgcode = "28P01"

    tried: list[str] = []

    def connect(params: dict[str, Any]) -> str:
        tried.append(params["password"])
        if params["password"] != "new-one":
            raise Refused("password authentication failed")
        return "connection"

    refresh = PasswordRefresh(Target.from_url(URL), NAME, read)
    cparams = {"host": HOST, "port": 5432, "dbname": "airflow", "user": "airflow"}
    cparams["password"] = "stale-value-1"
    assert refresh.connect(connect, cparams) == "connection"
    assert (reads, tried) == ([NAME], ["stale-value-1", "new-one"])

    stale = PasswordRefresh(Target.from_url(URL), NAME, lambda _s: json.dumps({"password": "stale-value-1"}))
    with pytest.raises(DatabaseError, match=r"raise database\.password_version") as info:
        stale.connect(connect, cparams)
    assert "stale-value-1" not in str(info.value)


def test_install_takes_the_gcp_secret() -> None:
    try:
        listener = install({SECRET_NAME_ENV: NAME, URL_ENV: URL}, lambda _s: "{}")
        assert listener is not None
        assert listener.secret == NAME
    finally:
        database_password.uninstall()
