"""The scaler config: one model, rejected with key + fix before any cloud call, origins recorded."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from airtasks.cli import cli
from airtasks.config import (
    AirflowSourceConfig,
    broker_url,
    parse_config,
    read_secret,
    resolve,
    source_credentials,
)
from airtasks.errors import ConfigError
from tests.support.terraform import TERRAFORM, terraform_env


def good() -> dict[str, Any]:
    return {
        "backend": "aws",
        "cluster_name": "demo",
        "region": "eu-west-1",
        "project": None,
        "interval_seconds": 10,
        "stabilization_seconds": 300,
        "idle_seconds": 60,
        "sources": {
            "airflow": {"url": "http://airflow-apiserver:8080"},
            "rabbitmq": {"url": "http://rabbitmq:15672", "vhost": "/"},
        },
        "queues": {
            "default": {"group": "airtasks-demo-default", "min_size": 0, "max_size": 10, "slots_per_node": 4}
        },
    }


def test_the_contract_shape_parses_with_defaults() -> None:
    config = parse_config(good())
    assert config.backend == "aws"
    assert config.queues["default"].slots_per_node == 4
    assert config.policy("default").stabilization_seconds == 300
    assert config.memory_config.store == "airflow"
    assert config.swarm is None


def test_rabbitmq_may_be_null_and_memory_falls_back_to_a_file() -> None:
    data = good()
    data["sources"]["rabbitmq"] = None
    data["sources"]["airflow"] = None
    data["sources"]["rabbitmq"] = {"url": "http://127.0.0.1:15672"}
    config = parse_config(data)
    assert config.memory_config.store == "file"


def _set(data: dict[str, Any], dotted: str, value: Any) -> None:
    *head, last = dotted.split(".")
    node = data
    for key in head:
        node = node[key]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value


_DELETE = object()


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("backend", "azure", "backend: Input should be 'aws', 'gcp' or 'swarm'; use one of those"),
        ("region", None, "backend 'aws' needs region; set region"),
        ("cluster_name", "Demo_1", "cluster_name: 'Demo_1' is not a valid cluster name; use 3-22 lowercase"),
        (
            "queues.default.max_size",
            -1,
            "queues.default.max_size: Input should be greater than or equal to 0",
        ),
        ("queues.default.min_size", 11, "queues.default: max_size (10) is below min_size (11); set max_size"),
        (
            "queues.default.slots_per_node",
            0,
            "queues.default.slots_per_node: Input should be greater than or equal to 1",
        ),
        ("queues.default.group", _DELETE, "queues.default.group: is required; add it"),
        ("queues.default.slots", 4, "queues.default.slots: unknown key; remove it or fix its spelling"),
        ("queues", {}, "queues: no queues; add at least one"),
        ("queues", {"manager": {"group": "g", "max_size": 1}}, "queue 'manager' is reserved"),
        ("queues", {"Bad_Name": {"group": "g", "max_size": 1}}, "queue name 'Bad_Name' is invalid"),
        (
            "interval_seconds",
            0,
            "interval_seconds: Input should be greater than or equal to 1; change the value",
        ),
        ("interval_seconds", "often", "interval_seconds: Input should be a valid number"),
        ("sources.airflow.url", "airflow:8080", "sources.airflow.url: 'airflow:8080' is not an http(s) URL"),
        ("sources.airflow.url", "http://admin:pw@airflow:8080", "credentials do not belong in the URL"),
        (
            "sources",
            {"airflow": None, "rabbitmq": None},
            "sources: no load source; configure sources.airflow",
        ),
        ("sources.airflow.password", "hunter2", "sources.airflow.password: unknown key; remove it"),
    ],
)
def test_bad_values_name_the_key_and_the_fix(key: str, value: Any, expected: str) -> None:
    data = good()
    _set(data, key, value)
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    assert expected in str(err.value)
    assert "hunter2" not in str(err.value)


def test_gcp_needs_a_project() -> None:
    data = good() | {"backend": "gcp"}
    with pytest.raises(ConfigError, match="backend 'gcp' needs project; set project"):
        parse_config(data)


def test_every_problem_is_one_line() -> None:
    data = good()
    data["interval_seconds"] = 0
    data["idle_seconds"] = -5
    data["typo"] = 1
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    lines = str(err.value).splitlines()[1:]
    assert [ln.split(":")[0] for ln in lines] == ["interval_seconds", "idle_seconds", "typo"]


def test_resolve_reads_json_yaml_and_the_env(tmp_path: Path) -> None:
    as_json = tmp_path / "c.json"
    as_json.write_text(json.dumps(good()))
    as_yaml = tmp_path / "c.yaml"
    as_yaml.write_text(
        "backend: swarm\nsources: {airflow: {url: 'http://a:8080'}}\nqueues: {q: {group: s, max_size: 2}}\n"
    )
    assert resolve(config_path=as_json, env={}).origins["backend"] == f"file {as_json}"
    assert resolve(config_path=as_yaml, env={}).config.backend == "swarm"
    from_env = resolve(env={"AIRTASKS_CONFIG": str(as_yaml)})
    assert from_env.origins["queues.q.group"] == f"file {as_yaml} (env AIRTASKS_CONFIG)"
    inline = resolve(env={"AIRTASKS_CONFIG": json.dumps(good())})
    assert inline.origins["region"] == "env AIRTASKS_CONFIG"


def test_url_overrides_win_and_are_recorded() -> None:
    env = {
        "AIRTASKS_AIRFLOW_URL": "http://127.0.0.1:9999/",
        "AIRTASKS_RABBITMQ_URL": "http://127.0.0.1:15999",
    }
    data = good()
    data["sources"]["rabbitmq"] = None
    resolved = resolve(data=data, env=env)
    assert resolved.config.sources.airflow is not None
    assert resolved.config.sources.airflow.url == "http://127.0.0.1:9999"
    assert resolved.config.sources.rabbitmq is not None
    assert resolved.origins["sources.airflow.url"] == "env AIRTASKS_AIRFLOW_URL"
    assert resolved.origins["sources.rabbitmq.url"] == "env AIRTASKS_RABBITMQ_URL"


def test_no_config_at_all_says_how_to_give_one() -> None:
    with pytest.raises(
        ConfigError, match="pass --config PATH or --from-terraform DIR, or set AIRTASKS_CONFIG"
    ):
        resolve(env={})


def test_secrets_come_from_env_or_files_and_never_show(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("s3cret\n")
    secret = read_secret("AIRTASKS_AIRFLOW_PASSWORD", None, {"AIRTASKS_AIRFLOW_PASSWORD_FILE": str(pw)})
    assert secret is not None
    assert secret.get() == "s3cret"
    assert "s3cret" not in repr(secret)
    assert read_secret("X", str(pw), {"X": "other"}).get() == "s3cret"  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match="cannot read the credential file"):
        read_secret("X", str(tmp_path / "missing"), {})


def test_broker_url_is_built_from_the_rabbitmq_source() -> None:
    config = parse_config(good())
    env = {"AIRTASKS_RABBITMQ_USERNAME": "air", "AIRTASKS_RABBITMQ_PASSWORD": "p@ss/word"}
    url = broker_url(config, env)
    assert url is not None
    assert url.get() == "amqp://air:p%40ss%2Fword@rabbitmq:5672/%2F"
    assert broker_url(config, {"AIRTASKS_BROKER_URL": "amqp://x"}).get() == "amqp://x"  # type: ignore[union-attr]


def test_config_command_prints_origins_and_no_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps(good()))
    monkeypatch.setenv("AIRTASKS_AIRFLOW_URL", "http://127.0.0.1:8080")
    monkeypatch.setenv("AIRTASKS_AIRFLOW_USERNAME", "admin")
    monkeypatch.setenv("AIRTASKS_AIRFLOW_PASSWORD", "hunter2")
    result = CliRunner().invoke(cli, ["config", "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert "hunter2" not in result.output
    lines = {ln.split()[0]: ln for ln in result.output.splitlines()}
    assert lines["sources.airflow.url"].endswith("(env AIRTASKS_AIRFLOW_URL)")
    assert lines["sources.airflow.password"].endswith("set  (env AIRTASKS_AIRFLOW_PASSWORD)")
    assert lines["backend"].endswith(f"(file {path})")
    assert lines["celery.timeout_seconds"].endswith("(default)")
    as_json = json.loads(CliRunner().invoke(cli, ["config", "--json", "--config", str(path)]).output)
    assert as_json["region"] == {"value": "eu-west-1", "origin": f"file {path}"}


def test_config_command_rejects_a_bad_file_with_exit_1(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    data = good()
    data["queues"]["default"]["max_size"] = "ten"
    path.write_text(json.dumps(data))
    result = CliRunner().invoke(cli, ["config", "--config", str(path)])
    assert result.exit_code == 1
    assert "queues.default.max_size: Input should be a valid integer" in result.output
    assert "Traceback" not in result.output


def test_from_terraform_reads_the_scaler_config_output(tmp_path: Path) -> None:
    """A provider-free root module stands in for envs/*: same output name, same shape."""
    env_dir = tmp_path / "env"
    env_dir.mkdir()
    (env_dir / "main.tf").write_text(
        f'output "scaler_config" {{\n  value = jsondecode({json.dumps(json.dumps(good()))})\n}}\n'
    )
    tf_env = terraform_env()
    subprocess.run(
        [TERRAFORM, f"-chdir={env_dir}", "init", "-input=false"], env=tf_env, check=True, capture_output=True
    )
    subprocess.run(
        [TERRAFORM, f"-chdir={env_dir}", "apply", "-auto-approve", "-input=false"],
        env=tf_env,
        check=True,
        capture_output=True,
    )
    resolved = resolve(from_terraform=env_dir, env=tf_env)
    assert resolved.config.queues["default"].group == "airtasks-demo-default"
    assert resolved.origins["backend"] == f"terraform {env_dir}"


def test_from_terraform_without_state_says_apply_first(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="run `terraform apply` there first"):
        resolve(from_terraform=tmp_path, env=terraform_env())


def test_an_airflow_password_file_may_be_the_simple_auth_managers_json(tmp_path: Path) -> None:
    """`make up` names Airflow's own {user: password} file; the scaler reads it like trigger does."""
    users = tmp_path / "passwords.json"
    users.write_text('{"admin": "s3cret", "viewer": "other"}')
    source = AirflowSourceConfig()
    env = {"AIRTASKS_AIRFLOW_PASSWORD_FILE": str(users)}
    creds = source_credentials(source, env)
    assert creds.password is not None
    assert creds.password.get() == "s3cret"
    assert "s3cret" not in repr(creds.password)
    creds = source_credentials(source, {**env, "AIRTASKS_AIRFLOW_USERNAME": "viewer"})
    assert creds.password is not None
    assert creds.password.get() == "other"
    with pytest.raises(ConfigError, match="has no password for user 'nobody'"):
        source_credentials(source, {**env, "AIRTASKS_AIRFLOW_USERNAME": "nobody"})
    plain = tmp_path / "password"
    plain.write_text("plain-text\n")
    creds = source_credentials(source, {"AIRTASKS_AIRFLOW_PASSWORD_FILE": str(plain)})
    assert creds.password is not None
    assert creds.password.get() == "plain-text"
