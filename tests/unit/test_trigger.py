"""`airtasks trigger`: conf parsing and how Airflow is found (env, then the `make up` state file)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from airtasks.cli import cli
from airtasks.cli.trigger import parse_conf
from airtasks.sources import airflow_access


def test_conf_must_be_a_json_object() -> None:
    assert parse_conf('{"n": 3}') == {"n": 3}
    assert parse_conf(None) == {}
    with pytest.raises(ValueError, match="not valid JSON"):
        parse_conf("{n: 3}")
    with pytest.raises(ValueError, match="JSON object"):
        parse_conf("[1]")


def test_bad_conf_is_rejected_before_any_call(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*a: object, **k: object) -> None:
        raise AssertionError("no call to Airflow with bad JSON")

    monkeypatch.setattr(airflow_access, "resolve", boom)
    result = CliRunner().invoke(cli, ["trigger", "example_trigger_target", "--conf", "{oops"])
    assert result.exit_code == 2
    assert "not valid JSON" in result.output


def test_env_wins(tmp_path: Path) -> None:
    env = {
        "AIRTASKS_AIRFLOW_URL": "http://airflow:8080/",
        "AIRTASKS_AIRFLOW_USERNAME": "bob",
        "AIRTASKS_AIRFLOW_PASSWORD": "pw",
    }
    access = airflow_access.resolve(env, cwd=tmp_path)
    assert (access.url, access.username, access.password, access.origin) == (
        "http://airflow:8080",
        "bob",
        "pw",
        "env",
    )
    assert "pw" not in repr(access)


def test_password_file_plain_or_json(tmp_path: Path) -> None:
    plain, js = tmp_path / "plain", tmp_path / "pw.json"
    plain.write_text("secret\n")
    js.write_text(json.dumps({"admin": "s2"}))
    env = {"AIRTASKS_AIRFLOW_URL": "http://a", "AIRTASKS_AIRFLOW_PASSWORD_FILE": str(plain)}
    assert airflow_access.resolve(env, cwd=tmp_path).password == "secret"
    env["AIRTASKS_AIRFLOW_PASSWORD_FILE"] = str(js)
    assert airflow_access.resolve(env, cwd=tmp_path).password == "s2"


def test_state_file_after_make_up(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".run").mkdir(parents=True)
    pw = repo / ".run" / "airflow" / "passwords.json"
    pw.parent.mkdir()
    pw.write_text(json.dumps({"admin": "from-file"}))
    (repo / ".run" / "local.json").write_text(
        json.dumps({"url": "http://127.0.0.1:8080", "username": "admin", "password_file": str(pw)})
    )
    sub = repo / "dags"
    sub.mkdir()
    access = airflow_access.resolve({"XDG_STATE_HOME": str(tmp_path / "none")}, cwd=sub)
    assert access.url == "http://127.0.0.1:8080"
    assert access.password == "from-file"
    assert access.origin == str(repo / ".run" / "local.json")


def test_nothing_configured_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(airflow_access.AirflowAccessError, match="AIRTASKS_AIRFLOW_URL"):
        airflow_access.resolve({"XDG_STATE_HOME": str(tmp_path)}, cwd=tmp_path)
