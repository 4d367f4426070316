"""The lower bound for policies that let tasks wait but never move one, and the clairvoyant schedule."""

from __future__ import annotations

import dataclasses
import itertools
import math
import random
from collections.abc import Iterator

import pytest

from airtasks.simulate.bound import clairvoyant, history_floor, level_cost, lower_bound
from airtasks.simulate.engine import run
from airtasks.simulate.policies import make_policy, oracle
from airtasks.simulate.settings import QueueSettings, Settings
from airtasks.simulate.trace import KINDS, Task, generate

BOOT = 60.0


def one_queue(slots: int = 4, min_size: int = 0) -> Settings:
    return Settings(queues={"default": QueueSettings(min_size=min_size, slots_per_node=slots)})


def trace(*tasks: tuple[float, float]) -> list[Task]:
    return [Task(s, "default", d) for s, d in tasks]


# ---------------------------------------------------------------- hand-known answers


def test_one_task_costs_a_boot_and_its_run_whatever_the_wait() -> None:
    for wait in (0.0, 70.0, 500.0):
        assert lower_bound(trace((0, 120)), one_queue(), BOOT, wait).node_seconds == 60 + 120


def test_a_fan_out_pays_the_longest_of_each_node_full() -> None:
    """Four tasks at once, two slots: they all run at t=50 whatever the waits, so two nodes, one
    up for the 400 s task (with the 300 s one), one for the 200 s task: 2 boots + 400 + 200."""
    tasks = trace((0, 100), (0, 200), (0, 300), (0, 400))
    b = lower_bound(tasks, one_queue(slots=2), BOOT, 50)
    assert b.node_seconds == 2 * 60 + 400 + 200
    assert clairvoyant(tasks, one_queue(slots=2), BOOT).node_seconds == 2 * 60 + 400 + 200
    # levels alone (mandatory parts from t=50) would give 60 + 350 + 60 + 150
    assert [s.levels for s in b.segments] == [60 + 350 + 60 + 150]


def test_without_waits_the_levels_are_the_oracle() -> None:
    tasks = trace((0, 10), (30, 10), (200, 10), *[(300, 100)] * 5, (400, 50))
    for slots in (1, 4):
        got = lower_bound(tasks, one_queue(slots), BOOT, 0).node_seconds
        assert got == pytest.approx(oracle(tasks, one_queue(slots), BOOT).node_seconds)


def test_waiting_lets_two_short_tasks_share_a_slot() -> None:
    """Two 30 s tasks 10 s apart on a 1-slot node: on arrival they need two nodes at t=10..30;
    if the second may wait 20 s, one node runs both, 60 s of boot and 60 s of work: below the
    oracle, and the bound says no policy can do better."""
    tasks = trace((0, 30), (10, 30))
    assert oracle(tasks, one_queue(1), BOOT).node_seconds == 60 + 40 + 60 + 20
    assert lower_bound(tasks, one_queue(1), BOOT, 0).node_seconds == 60 + 40 + 60 + 20
    assert lower_bound(tasks, one_queue(1), BOOT, 20).node_seconds == 60 + 60
    planned = clairvoyant(tasks, one_queue(1), BOOT, max_wait_s=20)
    assert planned.node_seconds == 60 + 60
    assert list(planned.waits) == [0, 20]


def test_segments_more_than_a_boot_apart_each_pay_a_boot() -> None:
    tasks = trace((0, 100), (1000, 100))
    b = lower_bound(tasks, one_queue(), BOOT, 70)
    assert len(b.segments) == 2
    assert b.node_seconds == 2 * (60 + 100)


def test_level_cost_bridges_short_gaps_and_boots_after_long_ones() -> None:
    need = [(0.0, 1), (10.0, 0), (40.0, 1), (50.0, 0), (500.0, 1), (510.0, 0)]
    assert level_cost(need, 60) == 60 + 10 + 30 + 10 + 60 + 10
    assert level_cost([(0.0, 2), (10.0, 0)], 60, above=1) == 60 + 10


def test_min_size_nodes_are_paid_for_the_whole_trace() -> None:
    tasks = trace((100, 50), (100, 50))
    got = lower_bound(tasks, one_queue(slots=1, min_size=1), BOOT, 0).node_seconds
    assert got == oracle(tasks, one_queue(slots=1, min_size=1), BOOT).node_seconds == 150 + 50 + 60


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="must be >= 0"):
        lower_bound(trace((0, 1)), one_queue(), BOOT, -1)
    assert lower_bound([], one_queue(), BOOT, 70).node_seconds == 0


# ---------------------------------------------------------------- the clairvoyant schedule


def _check_schedule(tasks: list[Task], settings: Settings, wait: float) -> float:
    """The schedule is one a policy of the bound's class could run; returns its node-seconds."""
    s = clairvoyant(tasks, settings, BOOT, wait)
    placed = sorted(i for n in s.nodes for i, _ in n.runs)
    assert placed == list(range(len(tasks)))  # every task once
    for n in s.nodes:
        slots = settings.queue(n.queue).slots_per_node
        runs = [(start, start + tasks[i].duration_s) for i, start in n.runs]
        for i, start in n.runs:
            t = tasks[i]
            assert t.queue == n.queue
            assert t.submit_s <= start <= t.submit_s + wait
            assert s.waits[i] == pytest.approx(start - t.submit_s)
            assert n.launched_at + BOOT <= start  # booted first
            assert start + t.duration_s <= n.gone_at  # its node stays until it ends
            assert sum(1 for b, e in runs if b <= start < e) <= slots
    assert s.node_seconds == pytest.approx(sum(n.gone_at - n.launched_at for n in s.nodes))
    return s.node_seconds


@pytest.mark.parametrize("kind", ["bursty", "mixed", "scheduled"])
def test_clairvoyant_schedule_is_feasible(kind: str) -> None:
    tasks = generate(kind, 2)
    settings = Settings()
    no_wait = _check_schedule(tasks, settings, 0)
    assert no_wait >= oracle(tasks, settings, BOOT).node_seconds  # the oracle holds without waits
    assert _check_schedule(tasks, settings, 70) <= no_wait


def test_clairvoyant_min_size_nodes_stay_and_take_tasks_first() -> None:
    s = clairvoyant(trace((100, 50), (100, 50)), one_queue(slots=1, min_size=1), BOOT)
    assert s.node_seconds == 150 + 50 + 60
    assert [n.launched_at for n in s.nodes] == [0.0, 40.0]


# ---------------------------------------------------------------- against the policies


@pytest.mark.parametrize("kind", KINDS)
def test_bound_is_below_the_scaler_and_the_clairvoyant_schedule(kind: str) -> None:
    settings = Settings()
    for seed in (2, 3):
        tasks = generate(kind, seed)
        out = run(tasks, make_policy("airtasks", settings), settings, BOOT)
        most = max(out.waits)  # the class of policies that wait at most this long holds airtasks
        assert lower_bound(tasks, settings, BOOT, most).node_seconds <= out.node_seconds
        no_wait = lower_bound(tasks, settings, BOOT, 0).node_seconds
        assert no_wait >= oracle(tasks, settings, BOOT).node_seconds - 1e-6
        assert no_wait <= clairvoyant(tasks, settings, BOOT).node_seconds + 1e-6
        goal = BOOT + 2 * settings.interval_seconds
        within = lower_bound(tasks, settings, BOOT, goal).node_seconds
        assert within <= no_wait + 1e-6
        assert within <= clairvoyant(tasks, settings, BOOT, goal).node_seconds + 1e-6


def test_bound_holds_for_a_policy_that_keeps_nodes_long() -> None:
    settings = dataclasses.replace(Settings(), stabilization_seconds=300, idle_seconds=120)
    tasks = generate("mixed", 4)
    out = run(tasks, make_policy("keda", settings), settings, BOOT)
    assert lower_bound(tasks, settings, BOOT, max(out.waits)).node_seconds <= out.node_seconds


# ---------------------------------------------------------------- against every schedule, on tiny traces


def _partitions(items: list[int]) -> Iterator[list[list[int]]]:
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for part in _partitions(rest):
        yield [[first], *part]
        for k in range(len(part)):
            yield [*part[:k], [first, *part[k]], *part[k + 1 :]]


def _best_node(tasks: list[Task], group: list[int], slots: int, wait: int, boot: float) -> float:
    """Least cost of one node running `group`: boot + first start to last end, over all starts."""
    best = math.inf
    for shifts in itertools.product(range(wait + 1), repeat=len(group)):
        runs = [
            (tasks[i].submit_s + w, tasks[i].submit_s + w + tasks[i].duration_s)
            for i, w in zip(group, shifts, strict=True)
        ]
        if all(sum(1 for b, e in runs if b <= s < e) <= slots for s, _ in runs):
            best = min(best, boot + max(e for _, e in runs) - min(b for b, _ in runs))
    return best


def _optimum(tasks: list[Task], slots: int, wait: int, boot: float) -> float:
    """The cheapest schedule of all: every split of the tasks into nodes, every start (whole seconds)."""
    return min(
        sum(_best_node(tasks, g, slots, wait, boot) for g in part)
        for part in _partitions(list(range(len(tasks))))
    )


def test_bound_is_below_the_best_schedule_on_tiny_traces() -> None:
    rng = random.Random(18)
    tight = 0
    for _ in range(400):
        slots, wait, boot = rng.choice([1, 2, 3]), rng.choice([0, 1, 3]), rng.choice([0.0, 2.0, 5.0])
        tasks = sorted(
            (Task(rng.randint(0, 12), "default", rng.randint(1, 8)) for _ in range(rng.randint(1, 4))),
            key=lambda t: t.submit_s,
        )
        best = _optimum(tasks, slots, wait, boot)
        got = lower_bound(tasks, one_queue(slots), boot, wait).node_seconds
        assert got <= best + 1e-9, (tasks, slots, wait, boot)
        assert clairvoyant(tasks, one_queue(slots), boot, wait).node_seconds >= best - 1e-9
        tight += got == best
    assert tight > 200  # and on such small traces it is often exact


# ---------------------------------------------------------------- what history cannot serve


def cron_runs(runs: int, width: int = 8, duration: float = 60.0) -> list[Task]:
    """`etl` every 10 minutes from t=600: `width` tasks 5 s after each run's time."""
    return [
        Task(r * 600 + 5, "default", duration, "etl.load", "etl", r * 600.0)
        for r in range(1, runs + 1)
        for _ in range(width)
    ]


def test_a_first_run_with_no_free_slot_waits_a_boot() -> None:
    tasks = cron_runs(5)
    floor = history_floor(tasks, one_queue(), BOOT, wait_s=15)
    assert (floor.scheduled, floor.first_run, floor.unservable) == (40, 8, 8)
    assert floor.first_run_share == pytest.approx(0.2)
    assert floor.min_p95_s == pytest.approx(BOOT)  # 8 of 40 tasks wait a boot
    # Warm capacity: two nodes ready at the run's time, 5 s before its tasks come.
    assert floor.warm_vs_oracle * oracle(tasks, one_queue(), BOOT).node_seconds == pytest.approx(10)
    assert floor.warm_to_goal_vs_oracle == floor.warm_vs_oracle


def test_tasks_shorter_than_the_wait_and_free_slots_are_servable() -> None:
    assert history_floor(cron_runs(5, duration=10), one_queue(), BOOT, wait_s=15).unservable == 0
    # A task of no DAG holds one node from t=500 to 1000: its three free slots serve three.
    tasks = sorted([Task(500, "default", 500), *cron_runs(5)], key=lambda t: t.submit_s)
    floor = history_floor(tasks, one_queue(), BOOT, wait_s=15)
    assert (floor.scheduled, floor.unservable) == (40, 5)


def test_few_first_run_tasks_leave_the_p95_alone() -> None:
    floor = history_floor(cron_runs(40, width=2), one_queue(), BOOT, wait_s=15)
    assert floor.unservable == 2
    assert floor.min_p95_s == 0
    assert floor.warm_to_goal_vs_oracle == 0
