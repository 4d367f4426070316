"""Pre-scaling for scheduled runs: decide() raises a group one learned boot before a run is due,
and what a run needs comes from its DAG's earlier runs (airtasks.schedule)."""

from __future__ import annotations

import pytest

from airtasks.decide import (
    BOOT_SAMPLES,
    DEFAULT_BOOT_SECONDS,
    OVERDUE_SECONDS,
    DueRun,
    NodeState,
    Observation,
    QueueMemory,
    QueuePolicy,
    decide,
)
from airtasks.schedule import (
    DagTask,
    PastTask,
    first_minutes_slots,
    needed,
    peak_between,
    profile_needed,
    root_slots,
    run_profile,
    value_at,
)

POLICY = QueuePolicy(min_size=0, max_size=10, slots_per_node=4, stabilization_seconds=30, idle_seconds=10)
NOW = 7200.0  # 02:00:00 UTC on the first day of the epoch
MARGIN = POLICY.prescale_margin_seconds


def due(at: float, slots: int = 6, dag: str = "nightly_etl") -> DueRun:
    return DueRun(dag, at, slots)


def test_a_run_due_within_a_boot_raises_the_group_and_says_why() -> None:
    d = decide(POLICY, Observation(load=0, current=0, due=[due(NOW + 60)]), QueueMemory(), NOW)
    assert (d.action, d.desired) == ("scale_out", 2)  # ceil(6 / 4)
    assert d.reason.startswith("pre-scale: nightly_etl due 02:01 needs 6 slot(s)")


def test_a_run_further_out_than_boot_plus_margin_waits() -> None:
    at = NOW + DEFAULT_BOOT_SECONDS + MARGIN + 1
    d = decide(POLICY, Observation(load=0, current=0, due=[due(at)]), QueueMemory(), NOW)
    assert (d.action, d.desired) == ("none", 0)
    d = decide(POLICY, Observation(load=0, current=0, due=[due(at)]), QueueMemory(), NOW + 1)
    assert (d.action, d.desired) == ("scale_out", 2)


def test_the_lead_is_the_groups_latest_boot() -> None:
    memory = QueueMemory(boot_samples=(70.0, 20.0, 40.0))
    obs = Observation(load=0, current=0, due=[due(NOW + 40 + MARGIN + 1)])
    assert decide(POLICY, obs, memory, NOW).action == "none"
    assert decide(POLICY, obs, memory, NOW + 1).action == "scale_out"


def test_pre_scaling_adds_to_the_load_and_keeps_nodes_from_scale_in() -> None:
    nodes = (NodeState("i-1", running=0, launched_at=NOW - 600), NodeState("i-2", 0, NOW - 600))
    memory = QueueMemory(below_since=NOW - 300, last_busy={})
    d = decide(POLICY, Observation(load=2, current=2, nodes=nodes, due=[due(NOW + 30)]), memory, NOW)
    assert (d.action, d.desired, d.remove) == ("none", 2, ())  # ceil((2 + 6) / 4) = 2
    assert d.reason.startswith("pre-scale: holding for nightly_etl")
    assert d.memory.below_since is None
    without = decide(POLICY, Observation(load=0, current=2, nodes=nodes), memory, NOW)
    assert without.remove == ("i-1", "i-2")


def test_a_run_that_does_not_come_stops_holding_nodes() -> None:
    nodes = (NodeState("i-1", running=0, launched_at=NOW - 120),)
    obs = Observation(load=0, current=1, nodes=nodes, due=[due(NOW - OVERDUE_SECONDS - 1)])
    d = decide(POLICY, obs, QueueMemory(), NOW)
    assert d.action == "none"
    assert d.memory.below_since == NOW


def test_pre_scaling_can_be_turned_off_per_queue() -> None:
    policy = QueuePolicy(min_size=0, max_size=10, slots_per_node=4, prescale=False)
    d = decide(policy, Observation(load=0, current=0, due=[due(NOW + 10)]), QueueMemory(), NOW)
    assert (d.action, d.desired) == ("none", 0)


def test_max_size_caps_a_pre_scale() -> None:
    policy = QueuePolicy(min_size=0, max_size=1, slots_per_node=4)
    d = decide(policy, Observation(load=0, current=0, due=[due(NOW + 10, slots=40)]), QueueMemory(), NOW)
    assert d.desired == 1


def test_two_runs_due_together_add_up() -> None:
    runs = [due(NOW + 20, 3, "a"), due(NOW + 50, 3, "b")]
    d = decide(POLICY, Observation(load=0, current=0, due=runs), QueueMemory(), NOW)
    assert d.desired == 2
    assert "a due 02:00:20 needs 3 slot(s), b due 02:00:50 needs 3 slot(s)" in d.reason


def test_a_node_launched_for_queued_tasks_gives_a_boot_sample_at_its_first_task() -> None:
    # The group grew for queued tasks; the cloud launched the node a second later.
    grew = decide(POLICY, Observation(load=1, current=0), QueueMemory(), NOW - 63)
    assert grew.memory.scaled_out_at == NOW - 63
    booted = NodeState("i-new", running=1, launched_at=NOW - 62)
    old = NodeState("i-old", running=2, launched_at=NOW - 50)  # busy before: no new sample
    memory = QueueMemory(last_busy={"i-old": NOW - 5}, boot_samples=(80.0,), scaled_out_at=NOW - 63)
    d = decide(POLICY, Observation(load=3, current=2, nodes=(booted, old)), memory, NOW)
    assert d.memory.boot_samples == (80.0, 62.0)
    # Not read this pass: nothing is learned from a node that only counts as busy.
    unread = Observation(load=3, current=1, nodes=(booted,), nodes_read=False)
    assert decide(POLICY, unread, memory, NOW).memory.boot_samples == (80.0,)


def test_a_pre_scaled_node_gives_no_boot_sample() -> None:
    """It waited for its run, so launch to first task is the lead, not the boot: counting it would
    lengthen the lead by the margin at every run."""
    raised = decide(POLICY, Observation(load=0, current=0, due=[due(NOW + 100)]), QueueMemory(), NOW)
    assert raised.action == "scale_out"
    assert raised.memory.scaled_out_at is None
    node = NodeState("i-warm", running=2, launched_at=NOW + 1)
    d = decide(POLICY, Observation(load=2, current=1, nodes=(node,)), raised.memory, NOW + 102)
    assert d.memory.boot_samples == ()


def test_boot_samples_are_bounded_and_survive_the_store() -> None:
    memory = QueueMemory(boot_samples=tuple(float(i) for i in range(BOOT_SAMPLES)), scaled_out_at=NOW - 100)
    booted = NodeState("i-new", running=1, launched_at=NOW - 99)
    d = decide(POLICY, Observation(load=1, current=1, nodes=(booted,)), memory, NOW)
    assert len(d.memory.boot_samples) == BOOT_SAMPLES
    assert d.memory.boot_samples[-1] == 99.0
    assert QueueMemory.from_json(d.memory.to_json()) == d.memory
    assert QueueMemory.from_json({"boot_samples": ["x", -3, 12]}).boot_samples == (12.0,)


def test_a_node_first_busy_long_after_launch_is_no_boot_sample() -> None:
    late = NodeState("i-1", running=1, launched_at=NOW - 3600)
    memory = QueueMemory(scaled_out_at=NOW - 3601)
    d = decide(POLICY, Observation(load=1, current=1, nodes=(late,)), memory, NOW)
    assert d.memory.boot_samples == ()


def test_first_minutes_slots_counts_demand_from_queue_time() -> None:
    tasks = [
        PastTask("default", 100.0, 60.0),
        PastTask("default", 100.0, 60.0),
        PastTask("default", 170.0, 60.0),  # after the first two: the peak stays 2
        PastTask("gpu", 130.0, 600.0),
        PastTask("default", 100.0 + 400.0, 10.0),  # outside the first 300 s
        PastTask("default", 90.0, 10.0),  # queued before the run: another run's
    ]
    assert first_minutes_slots(100.0, tasks) == {"default": 2, "gpu": 1}


@pytest.mark.parametrize(
    ("runs", "want"),
    [
        ([], {}),
        ([{"default": 2}, {"default": 5, "gpu": 1}, {"default": 3}], {"default": 5, "gpu": 1}),
        ([{"default": 9}, {"default": 1}, {"default": 1}, {"default": 2}], {"default": 2}),  # last 3
    ],
)
def test_needed_is_the_largest_of_the_recent_runs(runs: list[dict[str, int]], want: dict[str, int]) -> None:
    assert needed(runs) == want


# ---------------------------------------------------------------- the whole run's profile


def test_a_runs_profile_covers_its_later_stages() -> None:
    tasks = [
        PastTask("default", 100 + 5, 60),
        PastTask("default", 105, 60),
        PastTask("default", 100 + 900, 30),
    ]
    assert run_profile(100, tasks) == {"default": ((5.0, 2), (65.0, 0), (900.0, 1), (930.0, 0))}


def test_the_profile_needed_is_the_upper_envelope_of_the_recent_runs() -> None:
    a = {"default": ((0.0, 2), (60.0, 0))}
    b = {"default": ((30.0, 3), (90.0, 0))}
    old = {"default": ((0.0, 9), (10.0, 0))}
    env = profile_needed([old, a, b, a], learned=3)["default"]
    assert env == ((0.0, 2), (30.0, 3), (90.0, 0))
    assert [value_at(env, t) for t in (-1, 0, 45, 90)] == [0, 2, 3, 0]
    assert peak_between(env, 0, 20) == 2
    assert peak_between(env, 20, 40) == 3
    assert peak_between(env, 100, 200) == 0


def whole(
    at: float, profile: tuple[tuple[float, int], ...], started: bool = False, active: int = 0
) -> DueRun:
    return DueRun("nightly_etl", at, 0, profile, started, active)


def test_a_profile_raises_the_group_one_lead_before_a_later_stage() -> None:
    profile = ((5.0, 4), (65.0, 0), (900.0, 8), (960.0, 0))
    lead = DEFAULT_BOOT_SECONDS + MARGIN
    run_at = NOW - 600  # under way, between its stages
    early = decide(
        POLICY, Observation(load=0, current=0, due=[whole(run_at, profile, True)]), QueueMemory(), NOW
    )
    assert early.desired == 0  # the second stage is 300 s away
    at = run_at + 900 - lead
    d = decide(POLICY, Observation(load=0, current=0, due=[whole(run_at, profile, True)]), QueueMemory(), at)
    assert (d.action, d.desired) == ("scale_out", 2)
    # Its tasks in the load already count against the profile.
    busy = whole(run_at, profile, True, active=8)
    assert (
        decide(POLICY, Observation(load=8, current=2, due=[busy]), QueueMemory(), run_at + 910).desired == 2
    )


def test_a_run_with_a_profile_that_never_came_stops_counting() -> None:
    profile = ((5.0, 4), (3600.0, 0))
    late = NOW + OVERDUE_SECONDS + 1
    assert (
        decide(POLICY, Observation(load=0, current=0, due=[whole(NOW, profile)]), QueueMemory(), late).desired
        == 0
    )
    came = whole(NOW, profile, started=True)
    assert decide(POLICY, Observation(load=0, current=0, due=[came]), QueueMemory(), late).desired == 1


def test_a_first_run_is_raised_for_its_dags_root_tasks_and_says_so() -> None:
    first = DueRun("new_dag", NOW + 60, 0, roots=5, first_run=True)
    d = decide(POLICY, Observation(load=0, current=0, due=[first]), QueueMemory(), NOW)
    assert (d.action, d.desired) == ("scale_out", 2)  # ceil(5 / 4)
    assert d.reason.startswith("pre-scale: new_dag due 02:01 needs 5 slot(s) (first run: 5 root task(s)): ")


def test_history_not_roots_counts_once_a_dag_has_run() -> None:
    """Its runs show what the roots' concurrency really was (pools, max_active_tasks): 9 roots
    that ran 3 at a time need 3 slots, not 9."""
    learned = DueRun("etl", NOW + 60, 3, roots=9)
    d = decide(POLICY, Observation(load=0, current=0, due=[learned]), QueueMemory(), NOW)
    assert (d.desired, d.reason.split(": ")[1]) == (1, "etl due 02:01 needs 3 slot(s)")
    first = DueRun("etl", NOW + 60, 0, roots=9, first_run=True)
    d = decide(POLICY, Observation(load=0, current=0, due=[first]), QueueMemory(), NOW)
    assert d.desired == 3
    assert "etl due 02:01 needs 9 slot(s) (first run: 9 root task(s))" in d.reason
    profile = ((0.0, 1), (600.0, 0))
    profiled = DueRun("etl", NOW + 60, 1, profile, roots=6)
    d = decide(POLICY, Observation(load=0, current=0, due=[profiled]), QueueMemory(), NOW)
    assert d.desired == 1  # the profile's 1, not ceil(6 / 4)


def test_root_slots_are_the_tasks_nothing_lists_downstream_per_queue() -> None:
    tasks = [
        DagTask("extract_a", "default", ("load",)),
        DagTask("extract_b", "default", ("load",)),
        DagTask("train", "gpu", ("report",)),
        DagTask("load", "default", ("report",)),
        DagTask("report", "default"),
    ]
    assert root_slots(tasks) == {"default": 2, "gpu": 1}
    assert root_slots([]) == {}
