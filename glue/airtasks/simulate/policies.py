"""The policies a user could run, as the simulator runs them, plus the oracle bound.

- `airtasks`: the scaler's own `airtasks.decide.decide` (looked up at call time, never copied),
  every `interval_seconds`, fed what the scaler reads: Airflow's queued + running task instances
  and which node runs how many of them (live), and, when a RabbitMQ source is configured, the
  broker's ready + unacked as its management API shows it (`RABBITMQ_LAG_S` old); load is the
  larger of the two. It acts like the scaler (`airtasks.scaling`): cordon / uncordon, then
  drain-and-terminate exactly the idle nodes it names (a node found busy then is kept; the
  drain takes `removal_seconds`, paid for), or grow the group. For a queue that learns run times
  (`Settings.learns`: the queue's `learn_durations`, else `Settings.learn_durations`) it
  also passes decide() the expected run times of queued and running tasks, learnt from finished
  tasks with the same key (`airtasks.runtimes`); decide() weighs them against the boot it learnt
  from the group's own nodes, as the scaler does for a queue with `learn_durations`.
  With `Settings.prescale` (the default, as in the scaler) it passes decide() each scheduled
  DAG's next run (`Observation.due`), as Airflow's `next_dagrun_run_after` shows it: the earliest
  `scheduled_s` of the trace after now, with the slots the DAG's earlier runs needed on the queue
  (`airtasks.schedule`), learnt only from their tasks that have finished by now. A DAG counts as
  scheduled only if its runs are evenly spaced (`Schedules`); Airflow knows no next run of a
  triggered one.
- `seed`: the original project: every 60 s, RabbitMQ ready + unacked, resize the group to fit;
  the group picks its victims at random, busy or not, and terminates them (tasks killed).
- `keda`: the Airflow Helm chart's KEDA rule, ceil((queued + running) / concurrency) read from the
  metadata DB every 5 s; the HPA scales up at once and down to the highest recommendation of the
  last 300 s. Victims are chosen like a ReplicaSet does (not-yet-ready first, then the newest),
  without regard to busy workers; a victim stops consuming and gets the chart's 600 s
  terminationGracePeriodSeconds to finish, then what still runs is killed. Charitable: no HPA
  scale-up rate limit and no 10 % tolerance.
- `oracle`: the lower bound of docs/design.md: every task starts on arrival, tasks pack freely onto
  n(t) = max(min_size, ceil(running(t) / slots_per_node)) nodes (max_size ignored), and each
  level k of n(t) pays one boot for its first episode and min(gap, boot) for each gap between
  episodes. No policy that starts every task on arrival beats it; one that lets tasks wait can
  (queueing smooths the peaks: the long-tail trace with window 0 s, idle 0 s gives 0.98x).
"""

from __future__ import annotations

import dataclasses
import math
import random
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from itertools import pairwise

from airtasks import decide as decide_mod
from airtasks import schedule
from airtasks.decide import DueRun, NodeState, Observation, QueueMemory
from airtasks.errors import AirtasksError
from airtasks.intervals import coverage_profile
from airtasks.runtimes import RunTimes
from airtasks.simulate.engine import Cluster, Node, Outcome, Series
from airtasks.simulate.settings import QueueSettings, Settings
from airtasks.simulate.trace import Task, dag_roots

RABBITMQ_LAG_S = 5.0
"""The management API's statistics refresh every 5 s (`collect_statistics_interval`)."""
SEED_INTERVAL_S = 60.0
KEDA_INTERVAL_S = 5.0
KEDA_STABILIZATION_S = 300.0
KEDA_GRACE_S = 600.0

POLICIES = ("airtasks", "seed", "keda", "oracle")


PERIOD_TOLERANCE_S = 1.0
"""How far a gap between a DAG's run times may differ from its first gap for a fixed period."""


def periodic(times: Iterable[float]) -> bool:
    """At least two distinct run times, evenly spaced: a fixed period, like a cron schedule."""
    ts = sorted(set(times))
    if len(ts) < 2:
        return False
    period = ts[1] - ts[0]
    return all(abs((b - a) - period) <= PERIOD_TOLERANCE_S for a, b in pairwise(ts))


class Schedules:
    """What Airflow tells the scaler about a trace's scheduled DAGs, pass by pass: each DAG's next
    run time (the earliest `scheduled_s` after now, never a later one), its runs under way (the
    latest two that came), and what its runs before each needed per queue, learnt from their
    finished tasks only: a running task's duration is not known yet, and using it would flatter
    pre-scaling. For a run under way it also tells how many of its tasks are queued or running
    on each queue (Airflow's task instances of the run), which are in the load already.

    With `whole_run` (`Settings.prescale_whole_run`) a run's need is its DAG's profile over the
    whole run (`schedule.profile_needed` of the last `learned` runs), shown for the next run and
    for the latest `UNDER_WAY` runs that came; without (the default, what the scaler reads), the
    first minutes only (`schedule.first_minutes_slots`) of the next run.

    A DAG is scheduled only if it has at least two runs and their times are evenly spaced (every
    gap equal to the first within `PERIOD_TOLERANCE_S`), as on a cron or timedelta schedule.
    Airflow shows no next run for any other DAG (one triggered by hand, by a sensor or by an
    API call, like the `mixed` kind's randomly timed runs), so the simulator shows none either:
    showing it would let pre-scaling know the future."""

    UNDER_WAY = 8
    """How many of a DAG's latest runs that came are shown as under way (a run may outlast its
    period: on `scheduled`, a 15-min DAG's runs last up to two hours). On the tuning seeds 2
    against 10 leaves 15.4 % against 12.7 % of the tasks waiting 15 s or more."""

    def __init__(
        self,
        tasks: Sequence[Task],
        whole_run: bool = False,
        learned: int = schedule.RUNS_LEARNED,
        roots: bool = False,
    ) -> None:
        self.whole_run = whole_run
        self.learned = learned
        self._roots = dag_roots(tasks) if roots else {}
        """Per DAG, per queue: its root tasks, what the parsed DAG tells before any run."""
        times: dict[str, set[float]] = {}
        self._run_of: dict[int, tuple[str, float]] = {}
        for i, t in enumerate(tasks):
            if t.dag is not None and t.scheduled_s is not None:
                times.setdefault(t.dag, set()).add(t.scheduled_s)
                self._run_of[i] = (t.dag, t.scheduled_s)
        self._runs = {dag: sorted(ts) for dag, ts in sorted(times.items()) if periodic(ts)}
        self._done: dict[tuple[str, float], list[schedule.PastTask]] = {}
        """Per (DAG, run time): its tasks that have finished, as the scaler reads them."""
        self._seen = 0
        self._by_submit = sorted(
            (t.submit_s, i) for i, t in enumerate(tasks) if self._run_of.get(i, ("", 0.0))[0] in self._runs
        )
        self._submitted = 0
        self._active: dict[tuple[str, float, str], int] = {}
        """Per (DAG, run time, queue): its tasks submitted and not finished."""
        self._started: set[tuple[str, float]] = set()
        # Per (DAG, index of the run): what the runs before it needed; recomputed only when one
        # of the DAG's tasks finishes (`_stale`).
        self._needs: dict[tuple[str, int], tuple[dict[str, int], dict[str, schedule.Profile]]] = {}
        self._stale: set[str] = set()
        self._now: float | None = None
        self._due: dict[str, list[DueRun]] = {}

    def due(self, tasks: Sequence[Task], finished: Sequence[int], now: float, queue: str) -> list[DueRun]:
        """The next run and the runs under way of each DAG that need slots on `queue`; `finished`
        as `Cluster.finished`."""
        if now != self._now:
            self._update(tasks, finished, now)
        return self._due.get(queue, [])

    def _need(self, dag: str, k: int) -> tuple[dict[str, int], dict[str, schedule.Profile]]:
        cached = self._needs.get((dag, k))
        if cached is None or dag in self._stale:
            times = self._runs[dag]
            recent = times[max(0, k - self.learned) : k] if self.learned > 0 else []
            first = schedule.needed(
                [schedule.first_minutes_slots(r, self._done.get((dag, r), ())) for r in recent]
            )
            whole = (
                schedule.profile_needed(
                    [schedule.run_profile(r, self._done.get((dag, r), ())) for r in recent], self.learned
                )
                if self.whole_run
                else {}
            )
            cached = (first, whole)
            self._needs[(dag, k)] = cached
        return cached

    def _update(self, tasks: Sequence[Task], finished: Sequence[int], now: float) -> None:
        while self._submitted < len(self._by_submit) and self._by_submit[self._submitted][0] <= now:
            ti = self._by_submit[self._submitted][1]
            dag, at = self._run_of[ti]
            key = (dag, at, tasks[ti].queue)
            self._active[key] = self._active.get(key, 0) + 1
            self._started.add((dag, at))
            self._submitted += 1
        for ti in finished[self._seen :]:
            run = self._run_of.get(ti)
            if run is not None:
                t = tasks[ti]
                self._done.setdefault(run, []).append(schedule.PastTask(t.queue, t.submit_s, t.duration_s))
                self._stale.add(run[0])
                if run[0] in self._runs:
                    self._active[(run[0], run[1], t.queue)] -= 1
        self._seen = len(finished)
        self._now = now
        self._due = {}
        for dag, times in self._runs.items():
            upcoming = bisect_right(times, now)
            shown = range(max(0, upcoming - self.UNDER_WAY) if self.whole_run else upcoming, upcoming + 1)
            for k in shown:
                if k >= len(times):
                    continue
                first, whole = self._need(dag, k)
                at = times[k]
                roots = self._roots.get(dag, {})
                for queue in sorted(set(first) | set(whole) | set(roots)):
                    slots = first.get(queue, 0)
                    profile = whole.get(queue, ())
                    if slots > 0 or profile or roots.get(queue, 0) > 0:
                        self._due.setdefault(queue, []).append(
                            DueRun(
                                dag,
                                at,
                                slots,
                                profile,
                                (dag, at) in self._started,
                                self._active.get((dag, at, queue), 0),
                                roots.get(queue, 0),
                                not first and not whole,
                            )
                        )
        self._stale.clear()


class AirtasksPolicy:
    name = "airtasks"
    acts_on_notices = True
    """Its spot nodes run the watcher: a notice stops their intake at once."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.interval_seconds = settings.interval_seconds
        self.memory: dict[str, QueueMemory] = {}
        self._seen = 0
        self._runtimes = RunTimes()
        self._schedules: tuple[Cluster, Schedules] | None = None

    def _due(self, cluster: Cluster, queue: str) -> list[DueRun]:
        if self._schedules is None or self._schedules[0] is not cluster:
            self._schedules = (
                cluster,
                Schedules(
                    cluster.tasks, self.settings.prescale_whole_run, roots=self.settings.prescale_roots
                ),
            )
        return self._schedules[1].due(cluster.tasks, cluster.finished, cluster.now, queue)

    def _learn(self, cluster: Cluster) -> None:
        for ti in cluster.finished[self._seen :]:
            key = cluster.tasks[ti].key
            if key is not None:
                self._runtimes.add(key, cluster.tasks[ti].duration_s)
        self._seen = len(cluster.finished)

    def _node(self, cluster: Cluster, node: Node, learn: bool) -> NodeState:
        remaining: list[float] | None = None
        if learn:
            remaining = self._runtimes.remaining_each(
                (cluster.tasks[ti].key, cluster.now - start) for ti, start in node.running.items()
            )
        return NodeState(
            node.id, len(node.running), node.launched_at, node.cordoned, remaining, node.deadline
        )

    def on_pass(self, cluster: Cluster, queue: str) -> None:
        load = cluster.queued(queue) + cluster.running(queue)
        if self.settings.rabbitmq:
            load = max(load, cluster.broker_depth(queue, RABBITMQ_LAG_S))
        group = cluster.group(queue)
        policy = self.settings.policy(queue)
        queued_expected: list[float] | None = None
        learn = self.settings.learns(queue)
        if learn:
            self._learn(cluster)
            pending = cluster.pending[queue]
            queued_expected = self._runtimes.expected_each(cluster.tasks[ti].key for ti in pending)
        obs = Observation(
            load=load,
            current=len(group),
            nodes=tuple(self._node(cluster, n, learn) for n in group),
            queued_expected=queued_expected,
            due=self._due(cluster, queue) if policy.prescale else (),
        )
        d = decide_mod.decide(policy, obs, self.memory.get(queue, QueueMemory()), cluster.now)
        self.memory[queue] = d.memory
        by_id = {n.id: n for n in group}
        for i, doomed in d.restart:
            running = list(by_id[i].running)
            for k in doomed:
                cluster.restart(by_id[i], running[k])
        for i in d.cordon:
            cluster.cordon(by_id[i])
        for i in d.uncordon:
            cluster.uncordon(by_id[i])
        for i in d.remove:
            node = by_id[i]
            if not node.running:  # cordon, re-check, drain, terminate: never a busy node
                cluster.drain(node, self.settings.removal_seconds)
        grow = d.desired - cluster.size(queue)
        if grow > 0:
            cluster.launch(queue, grow)


class SeedPolicy:
    name = "seed"
    interval_seconds = SEED_INTERVAL_S

    def __init__(self, settings: Settings, seed: int = 0) -> None:
        self.settings = settings
        self.rng = random.Random(seed)

    def on_pass(self, cluster: Cluster, queue: str) -> None:
        q = self.settings.queue(queue)
        depth = cluster.broker_depth(queue, RABBITMQ_LAG_S)
        want = max(q.min_size, min(q.max_size, math.ceil(depth / q.slots_per_node)))
        group = cluster.group(queue)
        if want > len(group):
            cluster.launch(queue, want - len(group))
        elif want < len(group):
            for node in self.rng.sample(group, len(group) - want):
                cluster.terminate(node)


class KedaPolicy:
    name = "keda"
    interval_seconds = KEDA_INTERVAL_S

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.history: dict[str, list[tuple[float, int]]] = {}

    def on_pass(self, cluster: Cluster, queue: str) -> None:
        q = self.settings.queue(queue)
        metric = cluster.queued(queue) + cluster.running(queue)
        rec = max(q.min_size, min(q.max_size, math.ceil(metric / q.slots_per_node)))
        hist = [(t, r) for t, r in self.history.get(queue, []) if t > cluster.now - KEDA_STABILIZATION_S]
        hist.append((cluster.now, rec))
        self.history[queue] = hist
        group = cluster.group(queue)
        current = len(group)
        new = rec if rec > current else min(current, max(r for _, r in hist))
        if new > current:
            cluster.launch(queue, new - current)
        elif new < current:
            ranked = sorted(group, key=lambda n: (n.joined, -n.launched_at, -n.seq))
            for node in ranked[: current - new]:
                cluster.retire(node, KEDA_GRACE_S)


def make_policy(name: str, settings: Settings) -> AirtasksPolicy | SeedPolicy | KedaPolicy:
    factories: dict[str, Callable[[], AirtasksPolicy | SeedPolicy | KedaPolicy]] = {
        "airtasks": lambda: AirtasksPolicy(settings),
        "seed": lambda: SeedPolicy(settings),
        "keda": lambda: KedaPolicy(settings),
    }
    try:
        return factories[name]()
    except KeyError:
        raise AirtasksError(f"unknown policy {name!r}; use one of: {', '.join(POLICIES)}") from None


# ---------------------------------------------------------------- the oracle bound


def _steps(tasks: Sequence[Task]) -> list[tuple[float, int]]:
    """running(t) as (time, value from then on), tasks starting on arrival."""
    return coverage_profile([(t.submit_s, t.submit_s + t.duration_s) for t in tasks])


def _level_presence(
    steps: list[tuple[float, int]], slots: int, min_size: int, boot: float, end: float
) -> list[tuple[float, float]]:
    """Intervals during which each node of the oracle exists (one list over all levels)."""
    need = [(t, max(min_size, math.ceil(r / slots))) for t, r in steps]
    top = max((n for _, n in need), default=0)
    present: list[tuple[float, float]] = [(0.0, end)] * min_size
    for k in range(min_size + 1, top + 1):
        episodes: list[tuple[float, float]] = []
        start: float | None = None
        for t, n in need:
            if n >= k and start is None:
                start = t
            elif n < k and start is not None:
                episodes.append((start, t))
                start = None
        if start is not None:  # pragma: no cover - every task ends
            episodes.append((start, end))
        on_from, on_to = episodes[0][0] - boot, episodes[0][1]
        for s, e in episodes[1:]:
            if s - on_to <= boot:  # keep the node through the gap: costs the gap
                on_to = e
            else:  # let it go, boot a fresh one in time: costs one boot
                present.append((on_from, on_to))
                on_from, on_to = s - boot, e
        present.append((on_from, on_to))
    return present


@dataclasses.dataclass(frozen=True)
class OracleQueue:
    """The oracle's node time on one queue, by part."""

    node_seconds: float
    work: float
    """Task-seconds over slots per node: what the nodes would cost if every slot were always busy."""
    rounding: float
    """Whole nodes for a fraction of one: the time integral of ceil(r / slots) - r / slots, r the
    tasks running."""

    @property
    def boot_and_gaps(self) -> float:
        """The rest: boots, gaps a level keeps its node through, and `min_size` above the need."""
        return self.node_seconds - self.work - self.rounding


@dataclasses.dataclass(frozen=True)
class _QueueLevels:
    """One queue's part of the oracle: its tasks, running(t) and when each of its nodes exists."""

    name: str
    settings: QueueSettings
    tasks: list[Task]
    steps: list[tuple[float, int]]
    present: list[tuple[float, float]]


def _oracle_levels(
    tasks: Sequence[Task], settings: Settings, boot_seconds: float
) -> tuple[float, list[_QueueLevels]]:
    """The trace's end and each queue's levels, in queue name order. `oracle` and `oracle_queues`
    describe the same nodes, so both take them from here."""
    end = max(t.submit_s + t.duration_s for t in tasks)
    levels: list[_QueueLevels] = []
    for q in sorted({t.queue for t in tasks}):
        qs = settings.queue(q)
        mine = [t for t in tasks if t.queue == q]
        steps = _steps(mine)
        present = _level_presence(steps, qs.slots_per_node, qs.min_size, boot_seconds, end)
        levels.append(_QueueLevels(q, qs, mine, steps, present))
    return end, levels


def oracle_queues(tasks: Sequence[Task], settings: Settings, boot_seconds: float) -> dict[str, OracleQueue]:
    """The oracle's node time per queue, split into work, rounding up and boots and gaps; the
    queues' `node_seconds` add up to `oracle(...).node_seconds`."""
    out: dict[str, OracleQueue] = {}
    for lv in _oracle_levels(tasks, settings, boot_seconds)[1]:
        slots = lv.settings.slots_per_node
        rounding = sum(
            (t1 - t0) * (math.ceil(r / slots) - r / slots) for (t0, r), (t1, _) in pairwise(lv.steps)
        )
        out[lv.name] = OracleQueue(
            node_seconds=sum(e - s for s, e in lv.present),
            work=sum(t.duration_s for t in lv.tasks) / slots,
            rounding=rounding,
        )
    return out


def oracle(tasks: Sequence[Task], settings: Settings, boot_seconds: float) -> Outcome:
    end, levels = _oracle_levels(tasks, settings, boot_seconds)
    intervals = [iv for lv in levels for iv in lv.present]
    fixed = sum(lv.settings.min_size for lv in levels)
    # One sum over all the intervals, not the queues' `OracleQueue.node_seconds` added up: that
    # groups the float additions differently and moves the last digits.
    node_seconds = sum(e - s for s, e in intervals)
    changes: dict[float, int] = {0.0: 0} if fixed else {}
    for s, e in intervals:
        changes[s] = changes.get(s, 0) + 1
        changes[e] = changes.get(e, 0) - 1
    ts: list[float] = []
    ns: list[int] = []
    n = 0
    actions = 0
    for t in sorted(changes):
        if changes[t] == 0:
            continue
        n += changes[t]
        ts.append(t)
        ns.append(n)
        if not (t == 0.0 and n == fixed):  # the minimum is there from the start, not an action
            actions += 1
    return Outcome(
        policy="oracle",
        node_seconds=node_seconds,
        waits=[0.0] * len(tasks),
        tasks_killed=0,
        scale_actions=actions,
        end_s=end,
        series=Series(ts, [0] * len(ts), ns),
    )


__all__ = [
    "POLICIES",
    "AirtasksPolicy",
    "KedaPolicy",
    "OracleQueue",
    "Schedules",
    "SeedPolicy",
    "make_policy",
    "oracle",
    "oracle_queues",
    "periodic",
]
