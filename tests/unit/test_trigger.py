"""`airtasks trigger`: conf parsing and how Airflow is found (env, then the `make up` state file)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from tenacity import wait_none

from airtasks.cli import cli
from airtasks.cli import trigger as trigger_mod
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


class SlowAirflow:
    """Airflow's REST API for one DAG whose answers to the first `lost` creates never arrive,
    although the run is made: a busy API server that answers after the client gave up."""

    def __init__(self, lost: int = 0, failing: int = 0, reason: str = "Database error") -> None:
        self.lost = lost
        # Creates refused before any run was made, with a 500 and Airflow's `reason` (its name for
        # a SQLAlchemy error it has no better one for is "Database error").
        self.failing = failing
        self.reason = reason
        self.runs: dict[str, dict[str, Any]] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and request.url.path == "/api/v2/dags/d":
            return httpx.Response(200, json={"dag_id": "d", "is_paused": False})
        assert (request.method, request.url.path) == ("POST", "/api/v2/dags/d/dagRuns"), request
        body = json.loads(request.content)
        if self.failing:
            self.failing -= 1
            detail = {"reason": self.reason, "statement": "hidden", "orig_error": "hidden", "message": "ID x"}
            return httpx.Response(500, json={"detail": detail})
        exists = body["dag_run_id"] in self.runs
        self.runs.setdefault(body["dag_run_id"], body)
        if self.lost:
            self.lost -= 1
            raise httpx.ReadTimeout("timed out", request=request)
        if exists:
            return httpx.Response(409, json={"detail": "Unique constraint violation"})
        return httpx.Response(200, json={"dag_run_id": body["dag_run_id"], "state": "queued"})


def slow_trigger(monkeypatch: pytest.MonkeyPatch, airflow: SlowAirflow) -> trigger_mod.RunResult:
    monkeypatch.setattr(trigger_mod, "RETRY_WAIT", wait_none())
    client = httpx.Client(transport=httpx.MockTransport(airflow))
    monkeypatch.setattr(airflow_access, "api_client", lambda access: client)
    access = airflow_access.AirflowAccess("http://airflow:8080", "admin", "pw", "env", True)
    return trigger_mod.trigger("d", {"n": 3}, access=access)


def test_a_create_whose_answer_was_lost_is_not_made_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    airflow = SlowAirflow(lost=1)
    result = slow_trigger(monkeypatch, airflow)
    assert list(airflow.runs) == [result.run_id]
    assert airflow.runs[result.run_id]["conf"] == {"n": 3}


def test_no_answer_at_all_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    airflow = SlowAirflow(lost=trigger_mod.ATTEMPTS)
    with pytest.raises(
        trigger_mod.TriggerError,
        match=r"creating run 'manual__.*' of 'd' at http://airflow:8080 timed out, 3 tries: is Airflow's API",
    ):
        slow_trigger(monkeypatch, airflow)
    assert len(airflow.runs) == 1  # made once, by the first try, and never again


def test_a_database_error_is_tried_again(monkeypatch: pytest.MonkeyPatch) -> None:
    # The API server's pooled connection was dropped (a managed database's failover): the next
    # try opens a new one.
    airflow = SlowAirflow(failing=1)
    result = slow_trigger(monkeypatch, airflow)
    assert list(airflow.runs) == [result.run_id]


def test_a_lasting_or_other_server_error_is_reported_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    airflow = SlowAirflow(failing=trigger_mod.ATTEMPTS)
    with pytest.raises(trigger_mod.TriggerError, match=r"refused the run of 'd' \(500\): .*Database error"):
        slow_trigger(monkeypatch, airflow)
    assert airflow.failing == 0  # every try was spent
    airflow = SlowAirflow(failing=2, reason="Something else")
    with pytest.raises(trigger_mod.TriggerError, match=r"\(500\): .*Something else"):
        slow_trigger(monkeypatch, airflow)
    assert airflow.failing == 1  # not tried again
    assert not airflow.runs


def test_the_run_id_is_one_airflow_accepts() -> None:
    run_id = trigger_mod.new_run_id(datetime(2026, 12, 7, 7, 0, 1, 250000, tzinfo=UTC))
    assert run_id == "manual__2026-12-07T07:00:01.250000+00:00"
    # Airflow's default `[scheduler] allowed_run_id_pattern`, which a client-chosen run id must match.
    assert re.fullmatch(r"[A-Za-z0-9_.~:+-]+", run_id)
