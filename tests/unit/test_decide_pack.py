"""Packing (`QueuePolicy.pack`): new tasks go to the fullest busy nodes, the others empty sooner."""

from __future__ import annotations

import dataclasses

from airtasks.decide import (
    PACK_HEADROOM_SLOTS,
    Decision,
    NodeState,
    Observation,
    QueueMemory,
    QueuePolicy,
    decide,
)
from airtasks.simulate.report import simulate
from airtasks.simulate.settings import Settings
from airtasks.simulate.trace import Task

PLAIN = QueuePolicy(min_size=0, max_size=10, slots_per_node=4, stabilization_seconds=60, idle_seconds=30)
PACK = dataclasses.replace(PLAIN, pack=True)
NOW = 10_000.0


def node(
    i: int,
    running: int = 0,
    launched: float = NOW - 3600,
    cordoned: bool = False,
    remaining: tuple[float, ...] | None = None,
) -> NodeState:
    return NodeState(f"i-{i}", running, launched, cordoned, remaining)


def run(obs: Observation, policy: QueuePolicy = PACK, memory: QueueMemory | None = None) -> Decision:
    return decide(policy, obs, memory or QueueMemory(), NOW)


def test_off_by_default_and_in_the_simulator() -> None:
    assert QueuePolicy(min_size=0, max_size=1, slots_per_node=1).pack is False
    assert Settings().pack is False
    assert Settings().policy("default").pack is False
    assert Settings(pack=True).policy("default").pack is True
    assert PACK_HEADROOM_SLOTS == 1


def test_off_changes_nothing() -> None:
    nodes = (node(1, running=3), node(2, running=1), node(3, running=2))
    d = run(Observation(load=6, current=3, nodes=nodes), PLAIN)
    assert (d.cordon, d.uncordon) == ((), ())


def test_busy_nodes_beyond_the_room_the_queue_needs_are_cordoned() -> None:
    nodes = (node(1, running=3), node(2, running=1), node(3, running=2))
    # Nothing queued: the fullest node's free slot is the headroom; the others stop taking tasks.
    d = run(Observation(load=6, current=3, nodes=nodes))
    assert d.action == "none"  # the window has only begun: no node goes
    assert d.cordon == ("i-2", "i-3")
    assert d.desired == 3
    assert "packing: cordoning 2 busy node(s)" in d.reason


def test_queued_tasks_keep_as_many_fullest_nodes_open_as_they_need() -> None:
    nodes = (node(1, running=3), node(2, running=1), node(3, running=2))
    d = run(Observation(load=6 + 2, current=3, nodes=nodes))  # 2 queued + 1 headroom: 3 slots
    assert d.cordon == ("i-2",)  # i-1 and i-3 have them
    d = run(Observation(load=6 + 3, current=3, nodes=nodes))  # 4 slots: every node
    assert d.cordon == ()


def test_empty_and_full_nodes_are_never_cordoned_for_packing() -> None:
    booting = node(3, launched=NOW - 10)
    nodes = (node(1, running=3), node(2, running=4), booting, node(4, running=0))
    d = run(Observation(load=7, current=4, nodes=nodes))
    assert d.cordon == ()


def test_a_cordoned_node_is_uncordoned_once_the_queue_needs_it() -> None:
    nodes = (node(1, running=3), node(2, running=1, cordoned=True))
    assert run(Observation(load=4, current=2, nodes=nodes)).uncordon == ()
    d = run(Observation(load=4 + 1, current=2, nodes=nodes))  # 1 queued + headroom: 2 slots
    assert (d.cordon, d.uncordon) == ((), ("i-2",))


def test_scale_out_keeps_open_only_what_the_queue_needs() -> None:
    nodes = (node(1, running=4), node(2, running=3), node(3, running=1, cordoned=True))
    d = run(Observation(load=8 + 8, current=3, nodes=nodes))  # 8 queued: 4 slots short
    assert d.action == "scale_out"
    assert d.uncordon == ("i-3",)  # its 3 slots and i-2's 1 are needed now
    d = run(Observation(load=8, current=3, nodes=nodes))  # nothing queued
    assert (d.action, d.uncordon) == ("none", ())  # i-2's free slot is the headroom


def test_surplus_nodes_stay_cordoned_after_the_window() -> None:
    memory = QueueMemory(below_since=NOW - 600)
    nodes = (node(1, running=3), node(2, running=1, cordoned=True), node(3, running=1))
    d = run(Observation(load=5, current=3, nodes=nodes), memory=memory)  # want 2: one surplus
    assert d.action == "none"
    assert "i-2" not in d.uncordon  # the victim, cordoned already
    assert d.cordon == ("i-3",)  # packing: i-1 has room for the headroom


def test_without_the_busy_read_cordons_are_left_to_the_plain_rules() -> None:
    nodes = (node(1), node(2, cordoned=True))
    obs = Observation(load=6, current=2, nodes=nodes, nodes_read=False)
    assert run(obs) == run(obs, PLAIN)


def test_expected_run_times_keep_the_longest_running_node_open() -> None:
    soon = node(1, running=2, remaining=(10.0, 20.0))
    late = node(2, running=2, remaining=(10.0, 900.0))
    d = run(Observation(load=4, current=2, nodes=(soon, late)))
    assert d.cordon == ("i-1",)  # it empties first; new tasks go where they lengthen no node's life


def test_expected_run_times_cordon_the_surplus_node_that_empties_first() -> None:
    memory = QueueMemory(below_since=NOW - 600)
    late = node(1, running=1, remaining=(900.0,))
    soon = node(2, running=1, remaining=(15.0,))
    full = node(3, running=2, remaining=(100.0, 100.0))
    d = run(Observation(load=4, current=3, nodes=(late, soon, full)), PLAIN, memory)  # want 1
    assert d.cordon == ("i-2", "i-1")  # equally full: the one expected to empty first goes first


def test_simulated_packing_kills_nothing_and_keeps_waits() -> None:
    tasks = [Task(0, "default", 3000), Task(0, "default", 3000), Task(0, "default", 3000)]
    tasks += [Task(100, "default", 3000), Task(200, "default", 200)]
    for pack in (False, True):
        m = simulate(tasks, ["airtasks"], Settings(pack=pack), boot_seconds=60).metrics["airtasks"]
        assert m.tasks_killed == 0
        assert m.wait_p95_s <= 70
