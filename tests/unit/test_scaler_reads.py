"""What a pass reads: busy nodes only for the queues whose group may shrink, so the node-level
Airflow pages are not read for groups the load needs whole."""

from __future__ import annotations

from collections import Counter

from airtasks.config import parse_config
from airtasks.decide import QueueMemory
from airtasks.scaling.scaler import Scaler
from airtasks.state.memory import GroupMemory, MemoryStore
from airtasks.wiring import Clients
from tests.unit.fakes import FakeAirflow, FakeBackend, FakeControl

NOW = 1_000_000.0


def scaler(backend: FakeBackend, airflow: FakeAirflow, clock: list[float]) -> Scaler:
    config = parse_config(
        {
            "backend": "aws",
            "region": "us-east-1",
            "stabilization_seconds": 0,
            "idle_seconds": 10,
            "sources": {"airflow": {"url": "http://127.0.0.1:1"}},
            "queues": {
                q: {"group": f"g-{q}", "min_size": 0, "max_size": 10, "slots_per_node": 2}
                for q in ("full", "growing", "shrinking")
            },
        }
    )
    control = FakeControl(workers={"s1", "s2", "f1", "f2"})
    clients = Clients(backend, airflow=airflow, control=control, memory=MemoryStore.in_process())  # type: ignore[arg-type]
    return Scaler(config, clients, clock=lambda: clock[0])


def test_only_queues_that_may_shrink_read_which_node_is_busy() -> None:
    backend = FakeBackend()
    backend.add("g-full", "f1", "f2", launched_at=NOW - 600)
    backend.add("g-growing", "g1", launched_at=NOW - 600)
    backend.add("g-shrinking", "s1", "s2", launched_at=NOW - 600)
    airflow = FakeAirflow(
        queued={"growing": 5},
        on_hosts={"full": Counter({"f1": 2, "f2": 2}), "shrinking": Counter({"s1": 1})},
    )
    report = scaler(backend, airflow, [NOW]).run_pass()

    # One busy read for the queue with a surplus (and its re-check before removing s2).
    assert airflow.busy_asked == [["shrinking"], ["shrinking"]]
    by_queue = {q.queue: q for q in report.queues}
    assert (by_queue["full"].action, by_queue["growing"].action) == ("none", "scale_out")
    assert by_queue["shrinking"].removed == ["s2"]
    assert backend.calls == [("set_size", "g-growing", "3"), ("remove", "g-shrinking", "s2")]
    # Busy unknown where it was not read, known where it was.
    assert {n.id: n.running for q in report.queues for n in q.nodes} == {
        "f1": None,
        "f2": None,
        "g1": None,
        "s1": 1,
        "s2": 0,
    }


def test_a_node_of_a_full_group_is_idle_only_from_when_its_group_had_a_surplus() -> None:
    """Skipping the busy read can delay a removal, never hasten it: a node of a group the load
    needed whole counts as busy until the pass that found the surplus."""
    backend = FakeBackend()
    backend.add("g-full", "f1", "f2", launched_at=NOW - 600)
    airflow = FakeAirflow(on_hosts={"full": Counter({"f1": 2, "f2": 2})})
    clock = [NOW]
    s = scaler(backend, airflow, clock)
    s.run_pass()
    assert airflow.busy_asked == []

    airflow.on_hosts = {"full": Counter({"f1": 1})}  # f2 finished: one node is surplus now
    clock[0] = NOW + 5
    s.run_pass()
    assert backend.calls == []  # f2 counted busy at NOW, idle 5 s < idle_seconds 10

    clock[0] = NOW + 11
    report = s.run_pass()
    assert backend.calls == [("remove", "g-full", "f2")]
    assert report.queues[0].removed == ["f2"]


def test_a_young_node_s_queue_joins_the_busy_read_until_its_boot_is_learned() -> None:
    """A full group with a node launched for queued tasks that no pass has seen busy yet reads
    which node runs what (its first task is a boot sample), in the same call as the queues that
    may shrink: never more calls than reading every queue."""
    backend = FakeBackend()
    backend.add("g-full", "f1", launched_at=NOW - 600)
    backend.add("g-full", "f2", launched_at=NOW - 28)
    backend.add("g-growing", "g1", launched_at=NOW - 600)
    backend.add("g-shrinking", "s1", "s2", launched_at=NOW - 600)
    airflow = FakeAirflow(
        queued={"growing": 5},
        on_hosts={"full": Counter({"f1": 2, "f2": 2}), "shrinking": Counter({"s1": 1})},
    )
    s = scaler(backend, airflow, [NOW])
    grew = QueueMemory(last_busy={"f1": NOW - 5}, scaled_out_at=NOW - 30)
    s.clients.memory.save({"g-full": GroupMemory(grew)})
    report = s.run_pass()

    assert airflow.busy_asked == [["full", "shrinking"], ["shrinking"]]
    full = report.queues[0]
    assert (full.action, {n.id: n.running for n in full.nodes}) == ("none", {"f1": 2, "f2": 2})
    assert s.clients.memory.load()["g-full"].queue.boot_samples == (28.0,)

    # Learned: the group the load needs whole is not read again (and s2 went, so none may shrink).
    airflow.busy_asked.clear()
    s.run_pass()
    assert airflow.busy_asked == []
