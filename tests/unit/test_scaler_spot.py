"""The scaler reads the spot watcher's `airtasks.interrupted` label and treats the node as
leaving: replacement ordered on the same pass, with the reason in the log line."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import pytest

from airtasks.config import ScalerConfig
from airtasks.control.docker_swarm import SwarmNode
from airtasks.errors import SourceReadError
from airtasks.scaling.read import interruption_deadlines, notice_queue_deadlines
from airtasks.scaling.scaler import Scaler
from airtasks.state.memory import MemoryStore
from airtasks.wiring import Clients
from tests.unit.fakes import FakeAirflow, FakeBackend, FakeControl, FakeRabbit, FakeSwarm

NOW = 1_000_000.0
GROUP = "airtasks-demo-default"


def swarm_node(
    instance: str, engine: dict[str, str] | None = None, labels: dict[str, str] | None = None
) -> SwarmNode:
    return SwarmNode(f"n-{instance}", instance, "worker", "ready", "active", engine or {}, labels or {})


def scaler(
    tmp_path: Path,
    swarm: FakeSwarm,
    airflow: FakeAirflow,
    backend: FakeBackend,
    rabbitmq: FakeRabbit | None = None,
) -> Scaler:
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
        rabbitmq=rabbitmq,  # type: ignore[arg-type]
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


def test_tasks_that_cannot_end_in_time_are_restarted_once(tmp_path: Path) -> None:
    backend = FakeBackend()
    backend.add(GROUP, "i-0abc", "i-0def", launched_at=NOW - 3600)
    airflow = FakeAirflow(on_hosts={"default": Counter({"i-0abc": 2, "i-0def": 3})})
    swarm = FakeSwarm(
        listed=[
            swarm_node("i-0abc", labels={"airtasks.interrupted": str(int(NOW + 10))}),
            swarm_node("i-0def"),
        ]
    )
    s = scaler(tmp_path, swarm, airflow, backend)
    (q,) = s.run_pass().queues
    assert "interrupted i-0abc (10s left): restarting 2 task(s), replacement ordered" in q.reason
    assert "i-0abc: restarted 2 task(s) elsewhere, no retry used" in q.reason
    assert q.restarted == ["ti-default-i-0abc-0", "ti-default-i-0abc-1"]
    # The pass read the running task instances once, and cleared from that read.
    assert (airflow.running_calls, airflow.busy_calls) == (1, 0)
    # Only the interrupted node's tasks, each with a note that says why.
    assert [key for key, _ in airflow.restarted] == q.restarted
    assert all("i-0abc got a spot interruption notice" in note for _, note in airflow.restarted)
    assert (q.desired, q.failed) == (3, False)
    # The next pass finds nothing left to restart there.
    (q,) = s.run_pass().queues
    assert q.restarted == []
    assert len(airflow.restarted) == 2


def test_tasks_that_end_before_the_margin_are_left_alone(tmp_path: Path) -> None:
    backend = FakeBackend()
    backend.add(GROUP, "i-0abc", launched_at=NOW - 3600)
    airflow = FakeAirflow(on_hosts={"default": Counter({"i-0abc": 2})})
    swarm = FakeSwarm(listed=[swarm_node("i-0abc", labels={"airtasks.interrupted": str(int(NOW + 95))})])
    (q,) = scaler(tmp_path, swarm, airflow, backend).run_pass().queues
    # Run times unknown: nothing is restarted until the deadline minus the margin.
    assert q.restarted == []
    assert airflow.restarted == []
    assert "restart" not in q.reason


def test_a_failed_restart_still_orders_the_replacement(tmp_path: Path) -> None:
    backend = FakeBackend()
    backend.add(GROUP, "i-0abc", launched_at=NOW - 3600)
    airflow = FakeAirflow(on_hosts={"default": Counter({"i-0abc": 2})})
    swarm = FakeSwarm(listed=[swarm_node("i-0abc", labels={"airtasks.interrupted": str(int(NOW + 10))})])

    def refuse(task: object, note: str) -> bool:
        raise SourceReadError("airflow: POST /api/v2/dags/d/clearTaskInstances: HTTP 503 after 3 tries")

    airflow.restart = refuse  # type: ignore[method-assign]
    (q,) = scaler(tmp_path, swarm, airflow, backend).run_pass().queues
    assert backend.calls == [("set_size", GROUP, "2")]
    assert q.failed
    assert "restart failed: airflow: POST" in q.reason


def test_a_notice_on_the_broker_is_seen_before_the_swarm_label(tmp_path: Path) -> None:
    backend = FakeBackend()
    backend.add(GROUP, "i-0abc", "i-0def", launched_at=NOW - 3600)
    airflow = FakeAirflow(on_hosts={"default": Counter({"i-0abc": 4, "i-0def": 4})})
    # The label has not reached the managers yet; the watcher's queue is on the broker already.
    rabbit = FakeRabbit(depth={"default": 8, f"airtasks.interrupted.i-0abc.{int(NOW + 110)}": 0})
    swarm = FakeSwarm(listed=[swarm_node("i-0abc"), swarm_node("i-0def")])
    (q,) = scaler(tmp_path, swarm, airflow, backend, rabbit).run_pass().queues
    assert (q.action, q.desired) == ("scale_out", 3)
    assert q.reason.startswith("interrupted i-0abc (110s left): replacement ordered")
    assert q.loads == {"airflow": 8, "rabbitmq": 8}


def test_notice_queue_names_parse_tolerantly() -> None:
    names = [
        "default",
        "airtasks.interrupted.i-1.1700000120",
        "airtasks.interrupted.i-1.1700000100",
        "airtasks.interrupted.i-2.soon",
        "airtasks.interrupted.1700000000",
        "airtasks.interrupted.I-3.inf",
        "airtasks.interrupted.I-4.1700000000",
    ]
    assert notice_queue_deadlines(names) == {"i-1": 1700000100.0, "i-4": 1700000000.0}


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
