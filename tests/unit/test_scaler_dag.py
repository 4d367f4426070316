"""The scaler DAG: imports cleanly, is scheduled as issue 4 says, and its task loops within its minute."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import airtasks.scaling.task
from airtasks.config import ScalerConfig
from airtasks.errors import ConfigError, SourceReadError
from airtasks.scaling.scaler import Scaler
from airtasks.scaling.task import CONFIG_VARIABLE, run_minute
from airtasks.wiring import Clients
from tests.unit.fakes import FakeAirflow, FakeBackend

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory: pytest.TempPathFactory) -> Any:
    mp = pytest.MonkeyPatch()
    mp.setenv("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow-home")))
    mp.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    from airflow.dag_processing.dagbag import DagBag  # noqa: PLC0415 - needs AIRFLOW_HOME first

    for name in [m for m in sys.modules if m == "airtasks.scaling"]:
        del sys.modules[name]
    bag = DagBag(str(REPO / "dags" / "manager"))
    yield bag
    mp.undo()


def test_imports_with_zero_errors_and_no_clients(dagbag: Any) -> None:
    assert dagbag.import_errors == {}
    assert "airtasks_scaler" in dagbag.dags
    assert "airtasks.scaling" not in sys.modules  # clients are built inside the task, not at parse time


def test_schedule_and_run_settings(dagbag: Any) -> None:
    dag = dagbag.dags["airtasks_scaler"]
    assert str(dag.schedule) == "* * * * *"
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    assert dag.is_paused_upon_creation is False
    assert [(t.task_id, t.queue) for t in dag.tasks] == [("scale", "manager")]
    assert dag.params["dry_run"] is False


def _config() -> dict[str, Any]:
    return {
        "backend": "aws",
        "region": "us-east-1",
        "interval_seconds": 1,
        "sources": {"airflow": {"url": "http://127.0.0.1:1"}},
        "queues": {"default": {"group": "g", "max_size": 4, "slots_per_node": 2}},
    }


def test_task_passes_every_interval_until_the_minute_is_over(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = FakeBackend()
    airflow = FakeAirflow(queued={"default": 3})

    def build(config: ScalerConfig, env: Any = None) -> Scaler:
        return Scaler(config, Clients(backend, airflow=airflow))  # type: ignore[arg-type]

    monkeypatch.setattr(airtasks.scaling.task, "build_scaler", build)
    variables = {CONFIG_VARIABLE: json.dumps(_config())}
    started = time.monotonic()
    summary = run_minute(variables.get, window_end=time.time() + 3.5, env={}, margin_seconds=0.5)
    elapsed = time.monotonic() - started
    assert summary["passes"] == 3  # at 0, 1, 2 s; the next would start after the window
    assert 2.0 <= elapsed < 3.5
    assert backend.calls == [("set_size", "g", "2")]
    assert summary["last"]["queues"][0]["current"] == 2


def test_task_prefers_the_env_and_fails_the_run_on_a_held_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    airflow = FakeAirflow(down=True)

    def build(config: ScalerConfig, env: Any = None) -> Scaler:
        return Scaler(config, Clients(FakeBackend(), airflow=airflow))  # type: ignore[arg-type]

    monkeypatch.setattr(airtasks.scaling.task, "build_scaler", build)
    env = {"AIRTASKS_CONFIG": json.dumps(_config())}
    with pytest.raises(SourceReadError, match="default: read failed: airflow"):
        run_minute(lambda key: None, window_end=time.time(), env=env)


def test_task_without_config_names_both_places() -> None:
    with pytest.raises(
        ConfigError, match=r"set env AIRTASKS_CONFIG .* or the Airflow Variable airtasks_scaler_config"
    ):
        run_minute(lambda key: None, env={})
