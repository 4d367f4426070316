"""The scaler reads the spot watcher's `airtasks.interrupted` label and treats the node as
leaving: replacement ordered on the same pass, with the reason in the log line."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import pytest

from airtasks.config import ScalerConfig
from airtasks.control.docker_swarm import SwarmNode
from airtasks.scaling.read import interruption_deadlines
from airtasks.scaling.scaler import Scaler
from airtasks.state.memory import MemoryStore
from airtasks.wiring import Clients
from tests.unit.fakes import FakeAirflow, FakeBackend, FakeControl, FakeSwarm

NOW = 1_000_000.0
GROUP = "airtasks-demo-default"


def swarm_node(
    instance: str, engine: dict[str, str] | None = None, labels: dict[str, str] | None = None
) -> SwarmNode:
    return SwarmNode(f"n-{instance}", instance, "worker", "ready", "active", engine or {}, labels or {})


def scaler(tmp_path: Path, swarm: FakeSwarm, airflow: FakeAirflow, backend: FakeBackend) -> Scaler:
    config = ScalerConfig.model_validate(
        {
            "backend": "aws",
            "cluster_name": "demo",
            "region": "us-east-1",
            "sources": {"airflow": {"url": "http://127.0.0.1:1"}},
            "queues": {"default": {"group": GROUP, "min_size": 0, "max_size": 10, "slots_per_node": 4}},
        }
    )
    clients = Clients(
        backend,
        airflow=airflow,  # type: ignore[arg-type]
        control=FakeControl(workers={"i-0abc", "i-0def"}),
        memory=MemoryStore.file(tmp_path / "memory.json"),
        swarm=swarm,  # type: ignore[arg-type]
    )
    return Scaler(config, clients, clock=lambda: NOW)


def test_interrupted_node_gets_its_replacement_on_the_same_pass(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    backend = FakeBackend()
    backend.add(GROUP, "i-0abc", "i-0def", launched_at=NOW - 3600)
    airflow = FakeAirflow(on_hosts={"default": Counter({"i-0abc": 4, "i-0def": 4})})
    swarm = FakeSwarm(
        listed=[
            swarm_node("i-0abc", engine={"airtasks.interrupted": str(int(NOW + 95))}),
            swarm_node("i-0def"),
        ]
    )
    s = scaler(tmp_path, swarm, airflow, backend)
    with caplog.at_level(logging.INFO, logger="airtasks.scaling"):
        report = s.run_pass()
    (q,) = report.queues
    assert (q.action, q.current, q.want, q.desired) == ("scale_out", 2, 2, 3)
    assert backend.calls == [("set_size", GROUP, "3")]
    assert q.reason.startswith("interrupted i-0abc (95s left): replacement ordered; load 8 needs 2")
    assert "interrupted i-0abc (95s left): replacement ordered" in caplog.text
    assert q.cordoned == ["i-0abc"]


def test_tasks_to_restart_are_reported_as_not_done(tmp_path: Path) -> None:
    backend = FakeBackend()
    backend.add(GROUP, "i-0abc", launched_at=NOW - 3600)
    airflow = FakeAirflow(on_hosts={"default": Counter({"i-0abc": 2})})
    swarm = FakeSwarm(listed=[swarm_node("i-0abc", labels={"airtasks.interrupted": str(int(NOW + 10))})])
    (q,) = scaler(tmp_path, swarm, airflow, backend).run_pass().queues
    assert "interrupted i-0abc (10s left): restarting 2 task(s), replacement ordered" in q.reason
    assert "i-0abc: 2 task(s) to restart, not done yet: they run until the deadline" in q.reason
    assert q.desired == 2


def test_swarm_down_hides_notices_but_does_not_hold(tmp_path: Path) -> None:
    backend = FakeBackend()
    backend.add(GROUP, "i-0abc", launched_at=NOW - 3600)
    airflow = FakeAirflow(on_hosts={"default": Counter({"i-0abc": 4})})
    (q,) = scaler(tmp_path, FakeSwarm(down=True), airflow, backend).run_pass().queues
    assert (q.action, q.desired, q.failed) == ("none", 1, False)


def test_deadline_labels_parse_tolerantly() -> None:
    nodes = [
        swarm_node(
            "i-1",
            engine={"airtasks.interrupted": "1700000120"},
            labels={"airtasks.interrupted": "1700000100"},
        ),
        swarm_node("i-2", engine={"airtasks.interrupted": "soon"}),
        swarm_node("i-3", labels={"airtasks.interrupted": "nan"}),
        swarm_node("i-4.ec2.internal", engine={"airtasks.interrupted": "1700000000"}),
        swarm_node("i-5"),
    ]
    assert interruption_deadlines(nodes) == {"i-1": 1700000100.0, "i-4": 1700000000.0}
