"""`airtasks scale` / `status` with a fake backend and fake sources: decisions, calls, report, exit codes."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import airtasks.cli.scale_cmd
import airtasks.cli.status_cmd
from airtasks.cli import cli
from airtasks.config import ScalerConfig
from airtasks.scaling.scaler import Scaler
from airtasks.state.memory import MemoryStore
from airtasks.wiring import Clients
from tests.unit.fakes import FakeAirflow, FakeBackend, FakeControl, FakeRabbit

LOG_LINE = re.compile(
    r"^queue=(?P<queue>[a-z][a-z0-9-]*) load=(?P<load>\d+|\?) current=(?P<current>\d+|\?) "
    r"want=(?P<want>\d+|\?) action=(?P<action>scale_out|scale_in|hold|none) reason=(?P<reason>.+)$"
)


@dataclass
class World:
    backend: FakeBackend = field(default_factory=FakeBackend)
    airflow: FakeAirflow | None = field(default_factory=FakeAirflow)
    rabbit: FakeRabbit | None = field(default_factory=FakeRabbit)
    control: FakeControl | None = field(default_factory=FakeControl)
    clock: list[float] = field(default_factory=lambda: [1_000_000.0])
    built: int = 0
    memory_path: Path | None = None

    def build(self, config: ScalerConfig, env: Any = None) -> Scaler:
        self.built += 1
        assert self.memory_path is not None
        return Scaler(config, self.clients(config), clock=lambda: self.clock[0])

    def clients(self, config: ScalerConfig, env: Any = None) -> Clients:
        assert self.memory_path is not None
        return Clients(
            self.backend,
            airflow=self.airflow,  # type: ignore[arg-type]
            rabbitmq=self.rabbit,  # type: ignore[arg-type]
            control=self.control,
            memory=MemoryStore.file(self.memory_path),
        )


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    w = World(memory_path=tmp_path / "memory.json")
    monkeypatch.setattr(airtasks.cli.scale_cmd, "build_scaler", w.build)
    monkeypatch.setattr(airtasks.cli.status_cmd, "build_clients", w.clients)
    return w


def write_config(tmp_path: Path, **overrides: Any) -> Path:
    data: dict[str, Any] = {
        "backend": "aws",
        "cluster_name": "demo",
        "region": "us-east-1",
        "stabilization_seconds": 0,
        "idle_seconds": 0,
        "sources": {"airflow": {"url": "http://127.0.0.1:1"}, "rabbitmq": {"url": "http://127.0.0.1:2"}},
        "queues": {
            "default": {"group": "airtasks-demo-default", "min_size": 0, "max_size": 10, "slots_per_node": 4},
            "gpu": {"group": "airtasks-demo-gpu", "min_size": 0, "max_size": 2, "slots_per_node": 1},
        },
    }
    data.update(overrides)
    path = tmp_path / "scaler.json"
    path.write_text(json.dumps(data))
    return path


def scale(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["scale", "--once", "--json", "--config", str(config), *args])


def lines(result: Result) -> dict[str, dict[str, str]]:
    out = {}
    for line in result.stderr.splitlines():
        m = LOG_LINE.match(line)
        if m:
            out[m["queue"]] = m.groupdict()
    return out


def test_scale_out_from_zero_at_once(world: World, tmp_path: Path) -> None:
    world.airflow.queued = {"default": 9}  # type: ignore[union-attr]
    world.rabbit.depth = {"default": 9, "gpu": 0}  # type: ignore[union-attr]
    result = scale(write_config(tmp_path))
    assert result.exit_code == 0, result.output
    assert world.backend.calls == [("set_size", "airtasks-demo-default", "3")]
    report = json.loads(result.stdout)
    assert set(report) == {"queues", "swarm", "duration_ms", "dry_run"}
    assert report["swarm"] == {"removed_nodes": [], "labelled_nodes": [], "error": None}
    default = report["queues"][0]
    assert {"queue", "group", "load", "current", "desired", "action", "reason", "removed"} <= set(default)
    assert (default["queue"], default["load"], default["current"], default["desired"], default["action"]) == (
        "default",
        9,
        0,
        3,
        "scale_out",
    )
    assert default["loads"] == {"airflow": 9, "rabbitmq": 9}
    assert lines(result)["default"] == {
        "queue": "default",
        "load": "9",
        "current": "0",
        "want": "3",
        "action": "scale_out",
        "reason": "load 9 needs 3 node(s) of 4 slots",
    }
    assert lines(result)["gpu"]["action"] == "none"


def test_the_larger_source_wins(world: World, tmp_path: Path) -> None:
    world.airflow.queued = {"default": 2}  # type: ignore[union-attr]
    world.rabbit.depth = {"default": 12}  # type: ignore[union-attr]
    result = scale(write_config(tmp_path))
    assert json.loads(result.stdout)["queues"][0]["desired"] == 3


def test_scale_in_removes_exactly_the_idle_node(world: World, tmp_path: Path) -> None:
    world.backend.add("airtasks-demo-default", "i-busy", "i-idle")
    world.airflow.on_hosts = {"default": Counter({"i-busy": 2})}  # type: ignore[union-attr]
    world.control.workers = {"i-busy", "i-idle"}  # type: ignore[union-attr]
    result = scale(write_config(tmp_path))
    assert result.exit_code == 0, result.output
    assert world.backend.calls == [("remove", "airtasks-demo-default", "i-idle")]
    assert world.control.calls == [("cordon", "i-idle", "default"), ("in_flight", "i-idle")]  # type: ignore[union-attr]
    q = json.loads(result.stdout)["queues"][0]
    assert (q["action"], q["current"], q["desired"], q["removed"]) == ("scale_in", 2, 1, ["i-idle"])


def test_a_node_that_took_a_task_meanwhile_is_kept(world: World, tmp_path: Path) -> None:
    world.backend.add("airtasks-demo-default", "i-1", "i-2")
    world.airflow.on_hosts = {"default": Counter({"i-1": 1})}  # type: ignore[union-attr]
    world.airflow.busy_after_cordon = {"i-2": 1}  # type: ignore[union-attr]
    world.control.workers = {"i-1", "i-2"}  # type: ignore[union-attr]
    result = scale(write_config(tmp_path))
    assert world.backend.calls == []
    q = json.loads(result.stdout)["queues"][0]
    assert q["removed"] == []
    assert q["action"] == "none"
    assert "kept i-2: took a task meanwhile" in q["reason"]
    # Cordoned and remembered: once it empties, it goes at once.
    memory = json.loads(world.memory_path.read_text())  # type: ignore[union-attr]
    assert memory["groups"]["airtasks-demo-default"]["cordoned"] == ["i-2"]


def test_a_worker_holding_a_prefetched_task_is_kept(world: World, tmp_path: Path) -> None:
    world.backend.add("airtasks-demo-default", "i-1")
    world.control.workers = {"i-1"}  # type: ignore[union-attr]
    world.control.in_flight_of = {"i-1": 1}  # type: ignore[union-attr]
    result = scale(write_config(tmp_path))
    assert world.backend.calls == []
    assert "its worker holds 1 task(s)" in json.loads(result.stdout)["queues"][0]["reason"]


def test_busy_surplus_is_cordoned_then_removed_when_empty(world: World, tmp_path: Path) -> None:
    world.backend.add("airtasks-demo-default", "i-1", "i-2")
    world.airflow.on_hosts = {"default": Counter({"i-1": 3, "i-2": 1})}  # type: ignore[union-attr]
    world.control.workers = {"i-1", "i-2"}  # type: ignore[union-attr]
    config = write_config(tmp_path)
    first = json.loads(scale(config).stdout)["queues"][0]
    assert first["cordoned"] == ["i-2"]
    assert world.backend.calls == []
    world.airflow.on_hosts = {"default": Counter({"i-1": 3})}  # type: ignore[union-attr]
    world.clock[0] += 10
    second = json.loads(scale(config).stdout)["queues"][0]
    assert second["removed"] == ["i-2"]
    assert world.backend.calls == [("remove", "airtasks-demo-default", "i-2")]


def test_failed_read_holds_exit_2_then_recovers(world: World, tmp_path: Path) -> None:
    world.backend.add("airtasks-demo-default", "i-1", "i-2")
    config = write_config(tmp_path)
    world.rabbit.down = True  # type: ignore[union-attr]
    held = scale(config)
    assert held.exit_code == 2
    assert world.backend.calls == []
    q = json.loads(held.stdout)["queues"][0]
    assert (q["action"], q["load"], q["desired"]) == ("hold", None, 2)
    assert "rabbitmq: GET /api/queues/%2F: cannot connect" in q["reason"]
    assert lines(held)["default"]["load"] == "?"
    world.rabbit.down = False  # type: ignore[union-attr]
    ok = scale(config)
    assert ok.exit_code == 0
    assert [c[0] for c in world.backend.calls] == ["remove", "remove"]


def test_airflow_down_holds_and_terminates_nothing(world: World, tmp_path: Path) -> None:
    world.backend.add("airtasks-demo-default", "i-1")
    world.airflow.down = True  # type: ignore[union-attr]
    result = scale(write_config(tmp_path))
    assert result.exit_code == 2
    assert world.backend.calls == []
    assert {q["action"] for q in json.loads(result.stdout)["queues"]} == {"hold"}


def test_backend_read_error_holds_exit_2(world: World, tmp_path: Path) -> None:
    world.backend.fail_reads = True
    world.airflow.queued = {"default": 5}  # type: ignore[union-attr]
    result = scale(write_config(tmp_path))
    assert result.exit_code == 2
    assert world.backend.calls == []
    assert (
        "fake: describe airtasks-demo-default: ServiceUnavailable"
        in json.loads(result.stdout)["queues"][0]["reason"]
    )


def test_without_airflow_it_never_scales_in(world: World, tmp_path: Path) -> None:
    world.airflow = None
    world.backend.add("airtasks-demo-default", "i-1")
    config = write_config(tmp_path, sources={"rabbitmq": {"url": "http://127.0.0.1:2"}})
    result = scale(config)
    assert result.exit_code == 0
    assert world.backend.calls == []
    q = json.loads(result.stdout)["queues"][0]
    assert q["action"] == "hold"
    assert "never scaling in" in q["reason"]


def test_tasks_on_unknown_hosts_block_scale_in(world: World, tmp_path: Path) -> None:
    """A worker whose hostname is not its instance id would make every node look idle."""
    world.backend.add("airtasks-demo-default", "i-1", "i-2")
    world.airflow.on_hosts = {"default": Counter({"ip-10-0-0-5": 1})}  # type: ignore[union-attr]
    result = scale(write_config(tmp_path))
    assert world.backend.calls == []
    assert (
        "ip-10-0-0-5, not an instance of airtasks-demo-default"
        in json.loads(result.stdout)["queues"][0]["reason"]
    )


def test_dry_run_changes_nothing(world: World, tmp_path: Path) -> None:
    world.backend.add("airtasks-demo-default", "i-1")
    world.airflow.queued = {"gpu": 2}  # type: ignore[union-attr]
    world.control.workers = {"i-1"}  # type: ignore[union-attr]
    result = scale(write_config(tmp_path), "--dry-run")
    assert result.exit_code == 0
    assert world.backend.calls == []
    assert world.control.calls == []  # type: ignore[union-attr]
    report = json.loads(result.stdout)
    assert report["dry_run"] is True
    assert [(q["queue"], q["action"], q["desired"]) for q in report["queues"]] == [
        ("default", "scale_in", 0),
        ("gpu", "scale_out", 2),
    ]
    assert not world.memory_path.exists()  # type: ignore[union-attr]


def test_window_survives_a_restart(world: World, tmp_path: Path) -> None:
    """Two processes (two CLI runs) share the window through the memory store."""
    config = write_config(tmp_path, stabilization_seconds=60)
    world.backend.add("airtasks-demo-default", "i-1")
    first = json.loads(scale(config).stdout)["queues"][0]
    assert first["action"] == "none"
    assert "window" in first["reason"]
    world.clock[0] += 61
    second = json.loads(scale(config).stdout)["queues"][0]
    assert second["removed"] == ["i-1"]


def test_unlaunched_capacity_is_dropped_with_set_size(world: World, tmp_path: Path) -> None:
    world.backend.add("airtasks-demo-default", "i-1")
    world.backend.groups["airtasks-demo-default"] = 3
    world.airflow.on_hosts = {"default": Counter({"i-1": 1})}  # type: ignore[union-attr]
    result = scale(write_config(tmp_path))
    assert world.backend.calls == [("set_size", "airtasks-demo-default", "1")]
    assert json.loads(result.stdout)["queues"][0]["desired"] == 1


def test_bad_config_exits_1_before_any_call(world: World, tmp_path: Path) -> None:
    config = write_config(tmp_path, interval_seconds=0, backend="azure")
    result = scale(config)
    assert result.exit_code == 1
    assert world.built == 0
    assert "interval_seconds: Input should be greater than or equal to 1" in result.stderr
    assert "backend: Input should be 'aws', 'gcp' or 'swarm'" in result.stderr
    assert "Traceback" not in result.output


def test_missing_credentials_are_a_config_error(tmp_path: Path) -> None:
    """The real build: RabbitMQ configured without credentials is rejected before any call."""
    result = scale(write_config(tmp_path))
    assert result.exit_code == 1
    assert (
        "sources.rabbitmq: no credentials; set AIRTASKS_RABBITMQ_USERNAME and AIRTASKS_RABBITMQ_PASSWORD"
        in (result.stderr)
    )


def test_status_shows_loads_nodes_and_busy(world: World, tmp_path: Path) -> None:
    world.backend.add("airtasks-demo-default", "i-busy", "i-idle")
    world.airflow.queued = {"default": 3}  # type: ignore[union-attr]
    world.airflow.on_hosts = {"default": Counter({"i-busy": 2})}  # type: ignore[union-attr]
    world.rabbit.depth = {"default": 4}  # type: ignore[union-attr]
    result = CliRunner().invoke(cli, ["status", "--json", "--config", str(write_config(tmp_path))])
    assert result.exit_code == 0, result.output
    q = json.loads(result.stdout)["queues"][0]
    assert q["loads"] == {"airflow": 5, "rabbitmq": 4}
    assert q["current"] == 2
    assert [(n["id"], n["busy"], n["running"]) for n in q["nodes"]] == [
        ("i-busy", True, 2),
        ("i-idle", False, 0),
    ]
    assert world.backend.calls == []
    text = CliRunner().invoke(cli, ["status", "--config", str(write_config(tmp_path))]).stdout
    assert "i-busy  InService  busy (2)" in text
    assert "i-idle  InService  idle" in text


def test_watch_runs_a_pass_every_interval(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[float] = []

    def fake_sleep(seconds: float) -> None:
        calls.append(seconds)
        if len(calls) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr("airtasks.scaling.loop.time.sleep", fake_sleep)
    result = CliRunner().invoke(
        cli, ["scale", "--watch", "--interval", "5", "--json", "--config", str(write_config(tmp_path))]
    )
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 2
    # Passes are paced from the first one's start (the fake sleep lets no time pass).
    assert 4 < calls[0] <= 5
    assert 9 < calls[1] <= 10
