"""A queue with `pack` on: the scaler reads its busy nodes on every pass, even when the load needs
the whole group, cordons the emptier busy node so new tasks land on the fuller one, and
uncordons it once the queued tasks need its slots."""

from __future__ import annotations

from collections import Counter

from airtasks.config import parse_config
from airtasks.scaling.scaler import Scaler
from airtasks.state.memory import MemoryStore
from airtasks.wiring import Clients
from tests.unit.fakes import FakeAirflow, FakeBackend, FakeControl

NOW = 1_000_000.0


def scaler(backend: FakeBackend, airflow: FakeAirflow, control: FakeControl, *, pack: bool) -> Scaler:
    config = parse_config(
        {
            "backend": "aws",
            "region": "us-east-1",
            "sources": {"airflow": {"url": "http://127.0.0.1:1"}},
            "queues": {
                "long": {"group": "g-long", "min_size": 0, "max_size": 10, "slots_per_node": 4, "pack": pack}
            },
        }
    )
    clients = Clients(backend, airflow=airflow, control=control, memory=MemoryStore.in_process())  # type: ignore[arg-type]
    return Scaler(config, clients, clock=lambda: NOW)


def test_a_packing_queue_cordons_its_emptier_busy_node_and_uncordons_it_when_needed() -> None:
    backend = FakeBackend()
    backend.add("g-long", "n1", "n2", launched_at=NOW - 600)
    # Five tasks on two 4-slot nodes: the load needs both, so no scale-in is in sight.
    airflow = FakeAirflow(on_hosts={"long": Counter({"n1": 3, "n2": 2})})
    control = FakeControl(workers={"n1", "n2"})
    s = scaler(backend, airflow, control, pack=True)

    (q,) = s.run_pass().queues
    assert airflow.busy_asked == [["long"]]  # read although the group may not shrink
    assert (q.action, q.cordoned) == ("none", ["n2"])
    assert "packing: cordoning 1 busy node(s)" in q.reason
    assert control.calls == [("cordon", "n2", "long")]
    assert backend.calls == []  # nothing launched or removed

    # Three more tasks queue: n1's one free slot and the headroom no longer cover them.
    airflow.queued = {"long": 3}
    (q,) = s.run_pass().queues
    assert q.uncordoned == ["n2"]
    assert control.calls[-1] == ("uncordon", "n2", "long")


def test_without_pack_the_same_group_is_neither_read_nor_cordoned() -> None:
    backend = FakeBackend()
    backend.add("g-long", "n1", "n2", launched_at=NOW - 600)
    airflow = FakeAirflow(on_hosts={"long": Counter({"n1": 3, "n2": 2})})
    control = FakeControl(workers={"n1", "n2"})

    (q,) = scaler(backend, airflow, control, pack=False).run_pass().queues
    assert airflow.busy_asked == []
    assert (q.action, q.cordoned, control.calls) == ("none", [], [])
