"""A queue with `learn_durations`: the scaler reads how long each task ran in Airflow, when its
running task instances started and which tasks are queued, and starts only the nodes that the
queued tasks would wait longer for than a boot (the group's learnt one)."""

from __future__ import annotations

import pytest

from airtasks.config import parse_config
from airtasks.decide import QueueMemory
from airtasks.errors import SourceReadError
from airtasks.scaling.durations import FIRST_READ, OVERLAP_SECONDS, DurationReader
from airtasks.scaling.scaler import Scaler
from airtasks.sources.airflow import FinishedTask, RunningTask
from airtasks.state.memory import GroupMemory, MemoryStore
from airtasks.wiring import Clients
from tests.unit.fakes import FakeAirflow, FakeBackend, FakeControl

NOW = 1_000_000.0
LOAD = "etl.load"


def scaler(airflow: FakeAirflow, *, learn: bool, boot: float | None = 60.0) -> tuple[Scaler, FakeBackend]:
    config = parse_config(
        {
            "backend": "aws",
            "region": "us-east-1",
            "sources": {"airflow": {"url": "http://127.0.0.1:1"}},
            "queues": {
                "etl": {
                    "group": "g-etl",
                    "max_size": 10,
                    "slots_per_node": 2,
                    "prescale": False,
                    "learn_durations": learn,
                }
            },
        }
    )
    backend = FakeBackend()
    backend.add("g-etl", "n1", "n2", launched_at=NOW - 600)
    memory = MemoryStore.in_process()
    if boot is not None:  # the group booted a node for queued tasks before: launch to first task
        memory.save({"g-etl": GroupMemory(QueueMemory(boot_samples=(boot,)))})
    clients = Clients(backend, airflow=airflow, control=FakeControl(workers={"n1", "n2"}), memory=memory)  # type: ignore[arg-type]
    return Scaler(config, clients, clock=lambda: NOW), backend


def busy_airflow(queued: int, key: str = LOAD) -> FakeAirflow:
    """Both 2-slot nodes full of `etl.load`, which ran 30 s each of the five times it succeeded:
    its running instances end in 10, 25, 8 and 20 s."""
    airflow = FakeAirflow()
    airflow.succeeded["etl"] = [FinishedTask(f"ti-{i}", LOAD, 30.0, NOW - 300 + i) for i in range(5)]
    for i, (host, ran) in enumerate([("n1", 20), ("n1", 5), ("n2", 22), ("n2", 10)]):
        airflow.run(RunningTask("etl", host, f"etl.load.r{i}.-1", "etl", "load", f"r{i}", -1, NOW - ran))
    airflow.queued_tasks["etl"] = [key] * queued
    return airflow


def test_tasks_the_busy_nodes_start_within_a_boot_start_no_node() -> None:
    # Three queued: the four slots free within 25 s, well before a node booting 60 s.
    airflow = busy_airflow(queued=3)
    s, backend = scaler(airflow, learn=True)
    (q,) = s.run_pass().queues
    assert (q.action, q.desired) == ("none", 2)
    assert q.reason == "queued tasks start on the group before a new node"
    assert backend.calls == []
    assert airflow.learning_reads == [("queued", "etl"), ("finished", "etl", "None")]


def test_only_the_tasks_that_would_wait_longer_than_a_boot_get_nodes() -> None:
    # Ten queued: the slots start eight of them within 60 s; the last two need one more node.
    airflow = busy_airflow(queued=10)
    s, backend = scaler(airflow, learn=True)
    (q,) = s.run_pass().queues
    assert (q.action, q.desired) == ("scale_out", 3)
    assert q.reason == (
        "load 14 needs 3 node(s) of 2 slots; "
        "by learnt run times only 2 queued task(s) would wait longer than a boot"
    )
    assert backend.calls == [("set_size", "g-etl", "3")]


@pytest.mark.parametrize(
    ("learn", "boot", "key"),
    [
        (False, 60.0, LOAD),  # the queue does not learn run times
        (True, None, LOAD),  # the group has not booted a node for queued tasks yet
        (True, 60.0, "etl.new_task"),  # a queued task that never succeeded before
    ],
    ids=["off", "no-boot-learnt", "unknown-task"],
)
def test_without_what_it_needs_the_group_grows_for_the_whole_load(
    learn: bool, boot: float | None, key: str
) -> None:
    airflow = busy_airflow(queued=3, key=key)
    s, backend = scaler(airflow, learn=learn, boot=boot)
    (q,) = s.run_pass().queues
    assert (q.action, q.desired) == ("scale_out", 4)
    assert q.reason == "load 7 needs 4 node(s) of 2 slots"
    assert backend.calls == [("set_size", "g-etl", "4")]
    if not learn:
        assert airflow.learning_reads == []


def test_a_group_that_fits_its_load_reads_no_queued_task() -> None:
    airflow = busy_airflow(queued=0)
    s, _ = scaler(airflow, learn=True)
    (q,) = s.run_pass().queues
    assert q.action == "none"
    assert ("queued", "etl") not in airflow.learning_reads


def test_the_reader_learns_each_success_once_and_reads_only_what_ended_since() -> None:
    airflow = FakeAirflow()
    done = [FinishedTask(f"ti-{i}", LOAD, 10.0 + i, NOW + i) for i in range(3)]
    airflow.succeeded["etl"] = list(done)
    reader = DurationReader(airflow)  # type: ignore[arg-type]
    assert reader.read(["etl"]).expected(LOAD) == 11.0
    # One more ends; the next read reaches back the overlap and skips the three it has.
    airflow.succeeded["etl"].append(FinishedTask("ti-3", LOAD, 23.0, NOW + 3))
    assert reader.read(["etl"]).expected(LOAD) == 14.0
    assert airflow.learning_reads == [
        ("finished", "etl", "None"),
        ("finished", "etl", str(NOW + 2 - OVERLAP_SECONDS)),
    ]
    assert FIRST_READ >= 100


def test_a_failed_run_time_read_scales_on_the_load_and_says_why() -> None:
    airflow = busy_airflow(queued=3)
    s, _ = scaler(airflow, learn=True)

    def down(queue: str, after: float | None, limit: int) -> list[FinishedTask]:
        raise SourceReadError("airflow: HTTP 503")

    airflow.finished = down  # type: ignore[method-assign]
    (q,) = s.run_pass().queues
    assert (q.action, q.desired) == ("scale_out", 4)
    assert q.reason == "load 7 needs 4 node(s) of 2 slots; run times not read (airflow: HTTP 503)"
