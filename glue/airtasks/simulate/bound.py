"""A lower bound on node-seconds for policies that let tasks wait but never move a running task.

The oracle (`policies.oracle`) is a lower bound only for policies that start every task on
arrival: one that lets tasks wait can go below it (it can line tasks up on fewer nodes).
`lower_bound` holds for every policy, clairvoyant or not, such that

(a) the run that completes a task stays on one node from its start to its end (runs that were
    killed only add node time), a node runs at most `slots_per_node` tasks at once, and a
    queue's tasks run on that queue's nodes;
(b) nodes are paid as the engine pays them: from launch to removal; a launched node takes a task
    only `boot_seconds` after its launch; the group never goes below `min_size` (those nodes are
    there, joined, from t = 0);
(c) every task starts within `max_wait_s` of its submission (a maximum, not a p95).

Accounting is per queue. Task i (submitted a_i, running d_i) starts at some s_i in
[a_i, a_i + W], W = `max_wait_s`, so it runs inside its window [a_i, a_i + W + d_i), and in every
such schedule it runs throughout its mandatory part [a_i + W, a_i + d_i) (empty when d_i <= W).

Segments. Merge a queue's windows into segments separated by gaps of at least `boot_seconds` in
which no task can run. Give segment S the time range T_S from the start of the gap before it to
its end (for the first, from minus infinity). The T_S are disjoint, so the cost is at least the
sum over segments of any lower bound on the node time spent inside T_S; per segment we take the
larger of the two below. (With `min_size` > 0 we take the larger of their sums over the queue
instead: nodes that are there from t = 0 paid no boot.)

1. Levels: the oracle's formula on mandatory parts. Let m(t) be the number of mandatory parts
   covering t: at least l(t) = ceil(m(t) / slots) nodes are joined at t. For each level k, a
   period in which at least k nodes are alive begins at a launch (or at t = 0 for k <= min_size),
   and in its first `boot_seconds` at most k - 1 nodes are joined (the ones alive before it
   began). So the periods that cover {l >= k} in S cost, inside T_S, at least: one boot (or the
   whole gap, if the period began before it), the time l >= k, and for each gap between two
   stretches of l >= k the smaller of the gap and one boot (a period that bridges the gap pays
   it; a new period pays a boot). With W = 0 this is the oracle.
2. Boots and work. Let P be the most nodes l(t) requires within S (at least 1). Each node joined
   at that moment was either launched after the gap before S began (its boot lies in T_S and is
   not joined time) or alive through the whole gap (at least a boot of time in which no task
   runs). Besides, the nodes' joined time within S's span, where S's tasks and only they run, is
   at least (i) S's work / slots, and (ii) for any set C of tasks that run at once in every
   schedule (mandatory parts sharing an instant, or a single task): the sum of every `slots`-th
   duration of C sorted longest first (they take distinct slots, at most `slots` per node, and a
   node stays up for the longest task it runs). So S costs at least
   boot * P + max(work / slots, the largest such sum).

Not claimed: the same for a p95 wait instead of a maximum. Up to 5 % of the tasks may then wait
without limit and run in slots the others leave idle; taking them out is provable (each removed
task lowers the levels by at most its mandatory part plus a boot) but leaves little of the bound,
and we have no better argument.

`clairvoyant` is a schedule, not a bound: it knows every task's submission and run time, never
moves a task, pays a boot before each node's first task and starts every task within
`max_wait_s`, so it is in the class above (like the oracle, it may launch before the trace
starts). The best any policy of the class can do lies between `lower_bound` and its node-seconds.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field

from airtasks.intervals import coverage_profile
from airtasks.simulate.engine import percentile
from airtasks.simulate.policies import _level_presence, oracle
from airtasks.simulate.settings import Settings
from airtasks.simulate.trace import Task


def level_cost(need: Sequence[tuple[float, int]], boot: float, above: int = 0) -> float:
    """Least node time of periods that keep at least need(t) nodes joined, levels above `above`.

    `need` is a step function (time, value from then on) ending at 0. Each level pays one boot,
    its time, and min(gap, boot) per gap between its stretches (see the module docstring).
    """
    total = 0.0
    top = max((n for _, n in need), default=0)
    for k in range(above + 1, top + 1):
        start: float | None = None
        last_end: float | None = None
        for t, n in need:
            if n >= k and start is None:
                start = t
                if last_end is None:
                    total += boot
                else:
                    total += min(t - last_end, boot)
            elif n < k and start is not None:
                total += t - start
                last_end, start = t, None
    return total


def _clique_term(durations: Sequence[float], slots: int) -> float:
    """Least joined time of nodes running these tasks at once: every `slots`-th, longest first."""
    return sum(sorted(durations, reverse=True)[::slots])


@dataclass(frozen=True)
class SegmentBound:
    """One segment of one queue: its time span and its two lower bounds (module docstring)."""

    queue: str
    start: float
    end: float
    levels: float
    boots_and_work: float

    @property
    def value(self) -> float:
        return max(self.levels, self.boots_and_work)


@dataclass(frozen=True)
class Bound:
    node_seconds: float
    segments: Sequence[SegmentBound] = field(default_factory=tuple)


def _segments(tasks: Sequence[Task], wait: float, boot: float) -> list[list[Task]]:
    """Tasks grouped by segment: windows [a, a + wait + d) merged across gaps shorter than `boot`."""
    out: list[list[Task]] = []
    end = -math.inf
    for t in sorted(tasks, key=lambda x: x.submit_s):
        if not out or t.submit_s >= end + boot:
            out.append([])
        out[-1].append(t)
        end = max(end, t.submit_s + wait + t.duration_s)
    return out


def _segment_bound(queue: str, tasks: Sequence[Task], slots: int, wait: float, boot: float) -> SegmentBound:
    mandatory = [(t.submit_s + wait, t.submit_s + t.duration_s) for t in tasks]
    need = [(time, math.ceil(m / slots)) for time, m in coverage_profile(mandatory)]
    peak = max([1] + [n for _, n in need])
    work = sum(t.duration_s for t in tasks) / slots
    # Sets of tasks running at once in every schedule: those whose mandatory parts cover t, largest
    # just after a mandatory part begins; one task alone is such a set too.
    clique = max(t.duration_s for t in tasks)
    by_start = sorted((s, e, t.duration_s) for (s, e), t in zip(mandatory, tasks, strict=True) if e > s)
    active: list[tuple[float, float]] = []  # (end, duration) of the mandatory parts begun so far
    for k, (at, e, d) in enumerate(by_start):
        active = [x for x in active if x[0] > at]
        active.append((e, d))
        if k + 1 < len(by_start) and by_start[k + 1][0] == at:
            continue  # the set is largest once every part beginning now has joined it
        clique = max(clique, _clique_term([x[1] for x in active], slots))
    return SegmentBound(
        queue=queue,
        start=min(t.submit_s for t in tasks),
        end=max(t.submit_s + wait + t.duration_s for t in tasks),
        levels=level_cost(need, boot),
        boots_and_work=boot * peak + max(work, clique),
    )


def lower_bound(tasks: Sequence[Task], settings: Settings, boot_seconds: float, max_wait_s: float) -> Bound:
    """Node-seconds that no policy of the class in the module docstring can go below."""
    if not tasks:
        return Bound(0.0)
    if max_wait_s < 0 or boot_seconds < 0:
        raise ValueError("max_wait_s and boot_seconds must be >= 0")
    end = max(t.submit_s + t.duration_s for t in tasks)
    total = 0.0
    segments: list[SegmentBound] = []
    for q in sorted({t.queue for t in tasks}):
        qs = settings.queue(q)
        mine = [t for t in tasks if t.queue == q]
        segs = [
            _segment_bound(q, s, qs.slots_per_node, max_wait_s, boot_seconds)
            for s in _segments(mine, max_wait_s, boot_seconds)
        ]
        segments += segs
        if qs.min_size == 0:
            total += sum(s.value for s in segs)
            continue
        mandatory = [(t.submit_s + max_wait_s, t.submit_s + t.duration_s) for t in mine]
        need = [
            (time, max(qs.min_size, math.ceil(m / qs.slots_per_node)))
            for time, m in coverage_profile(mandatory)
        ]
        levels = qs.min_size * end + level_cost(need, boot_seconds, above=qs.min_size)
        boots_and_work = sum(s.boots_and_work for s in segs) - boot_seconds * qs.min_size
        total += max(levels, boots_and_work)
    return Bound(total, tuple(segments))


# ---------------------------------------------------------------- a clairvoyant schedule


@dataclass
class PlannedNode:
    queue: str
    launched_at: float
    gone_at: float
    runs: list[tuple[int, float]] = field(default_factory=list)
    """(task index, start) of each task it runs, in the order they were placed."""


@dataclass(frozen=True)
class Schedule:
    node_seconds: float
    nodes: Sequence[PlannedNode]
    waits: Sequence[float]
    """Per task, from its submission to its start."""


def _fits(runs: Sequence[tuple[float, float]], start: float, end: float, slots: int) -> bool:
    """A run over [start, end) keeps the node within `slots` (overlap is largest at some start)."""
    points = [start, *(s for s, _ in runs if start < s < end)]
    return all(sum(1 for s, e in runs if s <= p < e) < slots for p in points)


def clairvoyant(
    tasks: Sequence[Task], settings: Settings, boot_seconds: float, max_wait_s: float = 0.0
) -> Schedule:
    """A schedule that knows the future, never moves a task and starts each within `max_wait_s`.

    Tasks are placed in submission order (longest first at one instant). Each goes where it
    lengthens node lives least: on a node that has a free slot within `max_wait_s` (at its
    submission or when one of the node's tasks ends), alive then or gone for at most one boot
    (kept through the gap instead), or on a new node launched one boot before its submission.
    Ties go to the shorter wait, then to the node it fits best. A node goes when its last task
    ends. Greedy, so not the best such schedule; `min_size` nodes stay for the whole trace.
    """
    end = max((t.submit_s + t.duration_s for t in tasks), default=0.0)
    nodes: list[PlannedNode] = []
    waits = [0.0] * len(tasks)
    for q in sorted({t.queue for t in tasks}):
        qs = settings.queue(q)
        fixed = [PlannedNode(q, 0.0, end) for _ in range(qs.min_size)]
        nodes += fixed
        open_nodes: list[tuple[PlannedNode, list[tuple[float, float]]]] = [(n, []) for n in fixed]
        order = sorted(
            (i for i, t in enumerate(tasks) if t.queue == q),
            key=lambda i: (tasks[i].submit_s, -tasks[i].duration_s, i),
        )
        for i in order:
            a, d = tasks[i].submit_s, tasks[i].duration_s
            open_nodes = [(n, runs) for n, runs in open_nodes if n.gone_at >= a - boot_seconds]
            best: tuple[PlannedNode, list[tuple[float, float]]] | None = None
            best_key = (boot_seconds + d, 0.0, 0.0)
            for n, runs in open_nodes:
                runs[:] = [r for r in runs if r[1] > a]  # what ended before `a` cannot overlap
                for s in [a, *sorted(e for _, e in runs if a < e <= a + max_wait_s)]:
                    if _fits(runs, s, s + d, qs.slots_per_node):
                        key = (max(0.0, s + d - n.gone_at), s - a, max(0.0, n.gone_at - (s + d)))
                        if key < best_key:
                            best, best_key = (n, runs), key
                        break
            if best is None:
                node = PlannedNode(q, a - boot_seconds, a + d)
                nodes.append(node)
                best = (node, [])
                open_nodes.append(best)
                best_key = (boot_seconds + d, 0.0, 0.0)
            node, runs = best
            start = a + best_key[1]
            node.runs.append((i, start))
            runs.append((start, start + d))
            node.gone_at = max(node.gone_at, start + d)
            waits[i] = start - a
    return Schedule(sum(n.gone_at - n.launched_at for n in nodes), nodes, waits)


# ---------------------------------------------------------------- what history cannot serve


@dataclass(frozen=True)
class HistoryFloor:
    """What no policy that learns a run's needs from its DAG's earlier runs can serve in time.

    The class (`history_floor`): besides the tasks it sees, a policy provisions only for what
    history tells, so when a DAG's first run queues tasks, the slots ready for them are those the
    provisioning of every other task leaves free. We grant it the cheapest such provisioning,
    the oracle's for the other tasks (they start on arrival, joined or booting nodes alike count
    as free slots): any further joined capacity is warm capacity kept for work nobody can know
    of, whose cost `warm_*` estimates.
    """

    scheduled: int
    """Tasks of scheduled runs (`dag` and `scheduled_s` known)."""
    first_run: int
    """Of those, tasks in their DAG's first run: no earlier run to learn from."""
    unservable: int
    """First-run tasks that cannot start within the wait on the slots left free (a lower bound)."""
    min_p95_s: float
    """The least p95 wait of the scheduled tasks any policy of the class reaches: every other
    task starts at once, an unservable one when a node booted for it joins or a slot frees."""
    warm_vs_oracle: float
    """Extra node-seconds, over the oracle's, of warm nodes for every unservable task, as a share
    of the oracle's: ready from the earliest instant its stage could come (its run's time for a
    first stage, the previous stage's submission for a later one) until the stage comes; as
    many as the widest stage of any run on the queue needs (the least fixed guess that serves
    every stage; the policy cannot know this one's width), those it does not need paid a boot
    more. An underestimate: they go at once, and nothing else is kept warm."""
    warm_to_goal_vs_oracle: float
    """The cheapest part of `warm_vs_oracle` (whole stages, cheapest per task first) that leaves
    few enough unservable tasks for the p95 to be within the wait; 0 when none is needed."""

    @property
    def first_run_share(self) -> float:
        return self.first_run / self.scheduled if self.scheduled else 0.0

    @property
    def unservable_share(self) -> float:
        return self.unservable / self.scheduled if self.scheduled else 0.0


def _step_value(steps: Sequence[tuple[float, int]], t: float) -> int:
    i = bisect_right([x for x, _ in steps], t) - 1
    return steps[i][1] if i >= 0 else 0


def _free_slots(
    others: Sequence[Task], slots: int, min_size: int, boot: float, end: float
) -> list[tuple[float, int]]:
    """Slots the oracle's nodes for `others` leave free over time, as (time, value from then on)."""
    running = coverage_profile([(t.submit_s, t.submit_s + t.duration_s) for t in others])
    present = coverage_profile(_level_presence(running, slots, min_size, boot, end))
    times = sorted({t for t, _ in running} | {t for t, _ in present})
    out: list[tuple[float, int]] = [(-math.inf, slots * min_size)]
    for t in times:
        out.append((t, slots * _step_value(present, t) - _step_value(running, t)))
    return out


def history_floor(
    tasks: Sequence[Task],
    settings: Settings,
    boot_seconds: float,
    wait_s: float = 15.0,
    pct: float = 95.0,
) -> HistoryFloor:
    """How many scheduled tasks no history-based policy starts within `wait_s`, and so the least
    p`pct` wait it reaches (see `HistoryFloor`).

    A first-run task (DAG `dag`'s earliest `scheduled_s`) submitted at a with duration d > W
    (W = `wait_s`) that starts within W still runs at a + W. So of the first-run tasks submitted
    together on a queue at a, at most those with d <= W plus the free slots at a + W start within
    W; the others wait more than W, at least until a node booted at a joins or a free slot
    appears after a + W. Counting each group against all the free slots, whatever earlier groups
    took, only overstates what can be served.
    """
    idx = [i for i, t in enumerate(tasks) if t.dag is not None and t.scheduled_s is not None]
    first_at: dict[str, float] = {}
    for i in idx:
        dag, at = tasks[i].dag, tasks[i].scheduled_s
        assert dag is not None
        assert at is not None
        first_at[dag] = min(first_at.get(dag, at), at)
    first = {i for i in idx if tasks[i].scheduled_s == first_at[tasks[i].dag or ""]}
    end = max((t.submit_s + t.duration_s for t in tasks), default=0.0)
    waits = dict.fromkeys(idx, 0.0)
    # (dag, queue, submit) -> unservable tasks of that stage
    stuck: dict[tuple[str, str, float], int] = {}
    for q in sorted({tasks[i].queue for i in first}):
        qs = settings.queue(q)
        others = [t for i, t in enumerate(tasks) if t.queue == q and i not in first]
        free = _free_slots(others, qs.slots_per_node, qs.min_size, boot_seconds, end)
        groups: dict[tuple[str, float], list[int]] = {}
        for i in sorted(first):
            if tasks[i].queue == q:
                groups.setdefault((tasks[i].dag or "", tasks[i].submit_s), []).append(i)
        for (dag, a), members in groups.items():
            room = max(_step_value(free, a + wait_s), 0)
            long = sorted(
                (i for i in members if tasks[i].duration_s > wait_s), key=lambda i: tasks[i].duration_s
            )
            late = long[room:]
            if not late:
                continue
            stuck[(dag, q, a)] = len(late)
            later = [t for t, v in free if a + wait_s < t < a + boot_seconds and v > 0]
            least = min([boot_seconds, *(t - a for t in later)])
            for i in late:
                waits[i] = least
    unservable = sum(stuck.values())
    oracle_s = oracle(tasks, settings, boot_seconds).node_seconds
    # Warm capacity: per stage, from the earliest instant it could come to its submission.
    stages: dict[str, list[float]] = {}
    for i in first:
        stages.setdefault(tasks[i].dag or "", []).append(tasks[i].submit_s)
    widest: dict[str, int] = {}
    together: dict[tuple[str, str, float, float], int] = {}
    for i in idx:
        t = tasks[i]
        key = (t.dag or "", t.queue, t.scheduled_s or 0.0, t.submit_s)
        together[key] = together.get(key, 0) + 1
    for (_, q, _, _), n in together.items():
        widest[q] = max(widest.get(q, 0), n)
    costs: list[tuple[float, int]] = []
    for (dag, q, a), n in stuck.items():
        before = [s for s in stages[dag] if s < a]
        anchor = max(before) if before else first_at[dag]
        slots = settings.queue(q).slots_per_node
        needed = math.ceil(n / slots)
        guess = max(math.ceil(widest[q] / slots), needed)
        costs.append((needed * (a - anchor) + (guess - needed) * (boot_seconds + a - anchor), n))
    values = sorted(waits.values())
    allowed = len(values) - 1 - math.ceil((len(values) - 1) * pct / 100) if values else 0
    to_goal = 0.0
    left = unservable
    for cost, n in sorted(costs, key=lambda c: c[0] / c[1]):
        if left <= allowed:
            break
        to_goal += cost
        left -= n
    return HistoryFloor(
        scheduled=len(idx),
        first_run=len(first),
        unservable=unservable,
        min_p95_s=percentile(values, pct),
        warm_vs_oracle=sum(c for c, _ in costs) / oracle_s if oracle_s else 0.0,
        warm_to_goal_vs_oracle=to_goal / oracle_s if oracle_s else 0.0,
    )


__all__ = [
    "Bound",
    "HistoryFloor",
    "PlannedNode",
    "Schedule",
    "SegmentBound",
    "clairvoyant",
    "history_floor",
    "level_cost",
    "lower_bound",
]
