"""The scaling policy as tables: one queue, one pass, known answers."""

from __future__ import annotations

import pytest

from airtasks.decide import Decision, NodeState, Observation, QueueMemory, QueuePolicy, decide

POLICY = QueuePolicy(min_size=0, max_size=10, slots_per_node=4, stabilization_seconds=60, idle_seconds=30)
NOW = 10_000.0


def node(i: int, running: int = 0, launched: float = NOW - 3600, cordoned: bool = False) -> NodeState:
    return NodeState(id=f"i-{i}", running=running, launched_at=launched, cordoned=cordoned)


def run(obs: Observation, memory: QueueMemory | None = None, policy: QueuePolicy = POLICY) -> Decision:
    return decide(policy, obs, memory or QueueMemory(), NOW)


@pytest.mark.parametrize(
    ("load", "current", "want", "action"),
    [
        (0, 0, 0, "none"),  # nothing to do, nothing running
        (1, 0, 1, "scale_out"),  # scale from zero at once
        (5, 0, 2, "scale_out"),  # ceil(5 / 4)
        (8, 2, 2, "none"),  # exactly full
        (9, 2, 3, "scale_out"),
        (1000, 3, 10, "scale_out"),  # clamped to max_size
    ],
)
def test_want_and_scale_out(load: int, current: int, want: int, action: str) -> None:
    nodes = tuple(node(i, running=1) for i in range(current))
    d = run(Observation(load=load, current=current, nodes=nodes))
    assert (d.want, d.action) == (want, action)
    assert d.desired == max(want, current)
    assert d.remove == ()


def test_min_size_is_kept_with_no_load() -> None:
    policy = QueuePolicy(min_size=2, max_size=5, slots_per_node=4, stabilization_seconds=0, idle_seconds=0)
    d = run(Observation(load=0, current=2, nodes=(node(1), node(2))), policy=policy)
    assert (d.want, d.action, d.desired, d.remove) == (2, "none", 2, ())


def test_failed_read_holds_and_keeps_memory() -> None:
    memory = QueueMemory(below_since=NOW - 500, last_busy={"i-1": NOW - 5})
    d = run(Observation(load=None, current=3, nodes=(node(1),), error="airflow: HTTP 500"), memory)
    assert d.action == "hold"
    assert d.desired == 3
    assert d.remove == d.cordon == ()
    assert "airflow: HTTP 500" in d.reason
    assert d.memory is memory


def test_window_starts_when_want_drops_below_current() -> None:
    d = run(Observation(load=0, current=2, nodes=(node(1), node(2))))
    assert d.action == "none"
    assert d.desired == 2
    assert d.memory.below_since == NOW
    assert "window" in d.reason


def test_no_scale_in_before_the_window_is_over() -> None:
    memory = QueueMemory(below_since=NOW - 59)
    d = run(Observation(load=0, current=2, nodes=(node(1), node(2))), memory)
    assert (d.action, d.desired, d.remove) == ("none", 2, ())


def test_scale_in_removes_idle_nodes_after_the_window() -> None:
    memory = QueueMemory(below_since=NOW - 60)
    d = run(Observation(load=0, current=2, nodes=(node(1), node(2))), memory)
    assert d.action == "scale_in"
    assert set(d.remove) == {"i-1", "i-2"}
    assert d.desired == 0


def test_restart_keeps_the_window() -> None:
    """The memory round-trips through JSON (a tag / Variable), so a restarted scaler continues."""
    first = run(Observation(load=0, current=1, nodes=(node(1),)))
    stored = QueueMemory.from_json(first.memory.to_json())
    later = decide(POLICY, Observation(load=0, current=1, nodes=(node(1),)), stored, NOW + 61)
    assert later.action == "scale_in"
    assert later.remove == ("i-1",)


def test_window_resets_when_load_comes_back() -> None:
    memory = QueueMemory(below_since=NOW - 50)
    d = run(Observation(load=8, current=2, nodes=(node(1, 4), node(2, 4))), memory)
    assert d.memory.below_since is None


def test_never_picks_a_busy_node() -> None:
    memory = QueueMemory(below_since=NOW - 600)
    nodes = (node(1, running=3), node(2, running=1), node(3, running=2))
    d = run(Observation(load=6, current=3, nodes=nodes), memory)  # want 2: one surplus node
    assert d.remove == ()
    assert d.desired == 3
    assert d.cordon == ("i-2",)  # the emptiest busy node stops taking tasks


def test_prefers_idle_nodes_and_keeps_busy_ones() -> None:
    memory = QueueMemory(below_since=NOW - 600, last_busy={"i-2": NOW - 400})
    nodes = (node(1, running=2), node(2, running=0), node(3, running=1))
    d = run(Observation(load=3, current=3, nodes=nodes), memory)  # want 1
    assert d.remove == ("i-2",)
    assert d.cordon == ("i-3",)
    assert d.desired == 2


def test_recently_busy_node_waits_for_idle_seconds() -> None:
    memory = QueueMemory(below_since=NOW - 600, last_busy={"i-1": NOW - 10})
    d = run(Observation(load=0, current=1, nodes=(node(1),)), memory)
    assert d.remove == ()
    assert d.desired == 1
    assert "to empty or idle" in d.reason


def test_node_that_ran_a_task_this_pass_is_not_idle() -> None:
    memory = QueueMemory(below_since=NOW - 600)
    d = run(Observation(load=1, current=2, nodes=(node(1, running=1), node(2))), memory)
    assert d.memory.last_busy["i-1"] == NOW
    assert d.remove == ("i-2",)


def test_cordoned_node_that_emptied_goes_at_once() -> None:
    memory = QueueMemory(below_since=NOW - 600, last_busy={"i-2": NOW - 1})
    nodes = (node(1, running=2), node(2, running=0, cordoned=True))
    d = run(Observation(load=2, current=2, nodes=nodes), memory)
    assert d.remove == ("i-2",)
    assert d.desired == 1


def test_cordoned_nodes_resume_when_load_returns() -> None:
    nodes = (node(1, running=4), node(2, running=1, cordoned=True))
    d = run(Observation(load=20, current=2, nodes=nodes))
    assert d.action == "scale_out"
    assert d.uncordon == ("i-2",)
    assert d.desired == 5


def test_unknown_busy_nodes_never_scale_in() -> None:
    memory = QueueMemory(below_since=NOW - 600)
    d = run(Observation(load=0, current=2, nodes=(node(1), node(2)), busy_known=False), memory)
    assert d.action == "hold"
    assert d.remove == ()
    assert "never scaling in" in d.reason


def test_unlaunched_capacity_is_dropped_without_a_victim() -> None:
    memory = QueueMemory(below_since=NOW - 600)
    d = run(Observation(load=4, current=3, nodes=(node(1, running=4),)), memory)  # 2 not launched yet
    assert d.desired == 1
    assert d.remove == ()


def test_new_node_counts_idle_from_its_launch() -> None:
    memory = QueueMemory(below_since=NOW - 600)
    d = run(Observation(load=0, current=1, nodes=(node(1, launched=NOW - 5),)), memory)
    assert d.remove == ()


def test_memory_forgets_nodes_that_are_gone() -> None:
    memory = QueueMemory(last_busy={"i-gone": NOW - 100, "i-1": NOW - 100})
    d = run(Observation(load=4, current=1, nodes=(node(1),)), memory)
    assert set(d.memory.last_busy) == {"i-1"}


@pytest.mark.parametrize("raw", [None, "junk", {"below_since": "x", "last_busy": []}, {}])
def test_damaged_memory_loads_as_fresh(raw: object) -> None:
    assert QueueMemory.from_json(raw) == QueueMemory()  # type: ignore[arg-type]


def test_defaults_are_the_ones_the_simulator_chose() -> None:
    """Window 30 s, idle 10 s: held-out figures in docs/simulator.md, bench/results/heldout.json."""
    p = QueuePolicy(min_size=0, max_size=1, slots_per_node=1)
    assert (p.stabilization_seconds, p.idle_seconds) == (30.0, 10.0)


# ---- expected run times (the simulator's `learn_durations`, the scaler's per queue)

EXPECTING = QueuePolicy(min_size=0, max_size=10, slots_per_node=4, boot_seconds=60)


def busy(remaining: float) -> NodeState:
    return NodeState(id="i-1", running=4, launched_at=NOW - 3600, remaining=(remaining,) * 4)


@pytest.mark.parametrize(
    ("remaining", "queued", "expected", "want", "action"),
    [
        (10, 4, 30, 1, "none"),  # the node's slots free at +10 s, before a new node at +60 s
        (100, 4, 30, 2, "scale_out"),  # they free after a new node would join
        (10, 8, 45, 1, "none"),  # the second four start at +55 s, still before +60 s
        (10, 8, 55, 2, "scale_out"),  # the second four would start at +65 s: one node for them
        (10, 12, 55, 3, "scale_out"),  # four start on the node, eight are late: 1 + ceil(8 / 4)
    ],
)
def test_scale_out_only_for_tasks_the_group_would_start_later_than_a_new_node(
    remaining: float, queued: int, expected: float, want: int, action: str
) -> None:
    obs = Observation(
        load=4 + queued, current=1, nodes=(busy(remaining),), queued_expected=(expected,) * queued
    )
    d = run(obs, policy=EXPECTING)
    assert (d.want, d.action, d.desired) == (want, action, want)


def test_without_every_expectation_scale_out_is_by_load() -> None:
    unknown_queue = Observation(load=8, current=1, nodes=(busy(10),))
    unknown_node = Observation(
        load=8,
        current=1,
        nodes=(NodeState(id="i-1", running=4, launched_at=NOW - 3600),),
        queued_expected=(30,) * 4,
    )
    no_boot = Observation(load=8, current=1, nodes=(busy(10),), queued_expected=(30,) * 4)
    for obs, policy in ((unknown_queue, EXPECTING), (unknown_node, EXPECTING), (no_boot, POLICY)):
        d = run(obs, policy=policy)
        assert (d.want, d.action) == (2, "scale_out")


def test_the_groups_learnt_boot_comes_before_the_configured_one() -> None:
    # The node's slots free at +40 s: before a node booting the configured 60 s could take the four
    # queued tasks, after one booting the 30 s this group's nodes took.
    obs = Observation(load=8, current=1, nodes=(busy(40),), queued_expected=(30,) * 4)
    assert run(obs, policy=EXPECTING).action == "none"
    d = run(obs, QueueMemory(boot_samples=(30.0,)), policy=EXPECTING)
    assert (d.want, d.action) == (2, "scale_out")
    # With no configured boot (the scaler's case), the learnt one is enough.
    assert run(obs, QueueMemory(boot_samples=(50.0,)), policy=POLICY).action == "none"


def test_booting_node_counts_from_when_it_joins() -> None:
    booting = NodeState(id="i-2", running=0, launched_at=NOW - 30, remaining=())
    obs = Observation(load=8, current=2, nodes=(busy(100), booting), queued_expected=(30,) * 4)
    assert run(obs, policy=EXPECTING).action == "none"  # it joins at +30 s and takes all four
    obs = Observation(load=12, current=2, nodes=(busy(100), booting), queued_expected=(40,) * 8)
    d = run(obs, policy=EXPECTING)
    assert (d.want, d.action) == (3, "scale_out")  # the second four would start at +70 s


def test_nodes_not_read_count_as_busy_now() -> None:
    """A pass that skipped the busy read (the load needs every node) must not let a node look idle
    longer than it was: every node counts as busy at that pass."""
    memory = QueueMemory(last_busy={"i-0": NOW - 900})
    d = run(Observation(load=8, current=2, nodes=(node(0), node(1)), nodes_read=False), memory)
    assert (d.action, d.desired) == ("none", 2)
    assert d.memory.last_busy == {"i-0": NOW, "i-1": NOW}


def test_a_surplus_without_the_busy_read_removes_nothing() -> None:
    memory = QueueMemory(below_since=NOW - 600)
    d = run(Observation(load=0, current=2, nodes=(node(0), node(1)), nodes_read=False), memory)
    assert (d.action, d.desired, d.remove, d.cordon) == ("hold", 2, (), ())
    assert d.reason == "which nodes are busy was not read this pass: not scaling in"


# ---------------------------------------------------------------- interruption notices


def leaving(i: int, running: int, left: float, remaining: list[float] | None = None) -> NodeState:
    return NodeState(
        id=f"i-{i}", running=running, launched_at=NOW - 3600, remaining=remaining, deadline=NOW + left
    )


def test_interrupted_node_is_replaced_on_the_same_pass_when_the_load_needs_it() -> None:
    obs = Observation(load=8, current=2, nodes=(node(1, running=4), leaving(2, running=4, left=120)))
    d = run(obs)
    assert (d.action, d.current, d.want, d.desired) == ("scale_out", 2, 2, 3)
    assert d.cordon == ("i-2",), "it stops taking tasks (again, if the watcher already did)"
    assert d.restart == (), "120 s left and unknown run times: wait for deadline minus the margin"
    assert d.reason.startswith("interrupted i-2 (120s left): replacement ordered; load 8 needs 2")


def test_interrupted_node_is_not_replaced_when_the_rest_is_enough() -> None:
    obs = Observation(load=3, current=2, nodes=(node(1, running=3), leaving(2, running=0, left=100)))
    d = run(obs)
    assert (d.action, d.desired) == ("none", 2)
    assert "interrupted i-2 (100s left): not replaced, the load does not need it" in d.reason
    assert d.remove == (), "the cloud removes it: no victim is picked among leaving nodes"


def test_interrupted_node_never_counts_as_capacity_nor_as_a_victim() -> None:
    memory = QueueMemory(below_since=NOW - 600)
    obs = Observation(load=0, current=2, nodes=(node(1), leaving(2, running=0, left=60)))
    d = run(obs, memory)
    assert d.remove == ("i-1",)
    assert d.desired == 1, "the leaving node stays in the group's size until the cloud removes it"


def test_tasks_that_cannot_end_before_deadline_minus_margin_restart_at_once() -> None:
    # 120 s left, margin 20: a task expected to end within 100 s is left alone.
    obs = Observation(load=3, current=1, nodes=(leaving(1, running=3, left=120, remaining=[30, 99, 101]),))
    d = run(obs)
    assert d.restart == (("i-1", (2,)),)
    assert "interrupted i-1 (120s left): restarting 1 task(s), replacement ordered" in d.reason


def test_everything_still_running_restarts_at_deadline_minus_margin() -> None:
    for left, expected in ((21.0, ()), (20.0, (("i-1", (0, 1)),)), (5.0, (("i-1", (0, 1)),))):
        obs = Observation(load=2, current=1, nodes=(leaving(1, running=2, left=left),))
        assert run(obs).restart == expected, left


def test_gcp_notice_leaves_a_short_task_alone() -> None:
    policy = QueuePolicy(min_size=0, max_size=10, slots_per_node=4, restart_margin_seconds=10)
    obs = Observation(load=2, current=1, nodes=(leaving(1, running=2, left=30, remaining=[5, 25]),))
    assert run(obs, policy=policy).restart == (("i-1", (1,)),)


def test_failed_read_still_restarts_doomed_tasks_and_holds_the_size() -> None:
    obs = Observation(load=None, current=2, nodes=(node(1), leaving(2, running=1, left=10)), error="x")
    d = run(obs)
    assert (d.action, d.desired) == ("hold", 2)
    assert d.restart == (("i-2", (0,)),)


def test_equally_full_surplus_nodes_go_by_expected_end() -> None:
    memory = QueueMemory(below_since=NOW - 600)
    late = NodeState(id="i-1", running=1, launched_at=NOW - 3600, remaining=(900.0,))
    soon = NodeState(id="i-2", running=1, launched_at=NOW - 3600, remaining=(15.0,))
    full = NodeState(id="i-3", running=2, launched_at=NOW - 3600, remaining=(100.0, 100.0))
    d = run(Observation(load=4, current=3, nodes=(late, soon, full)), memory)  # want 1
    assert d.cordon == ("i-2", "i-1")  # fewest tasks first; equally full, the one ending first
    unknown = Observation(load=2, current=2, nodes=(node(1, running=1), node(2, running=1)))
    assert run(unknown, memory).cordon == ("i-1",)  # without expectations, as before: by id
