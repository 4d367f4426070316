"""The policies a user could run, as the simulator runs them, plus the oracle bound.

- `airtasks`: the scaler's own `airtasks.decide.decide` (looked up at call time, never copied),
  every `interval_seconds`, fed what the scaler reads: Airflow's queued + running task instances
  and which node runs how many of them (live), and, when a RabbitMQ source is configured, the
  broker's ready + unacked as its management API shows it (`RABBITMQ_LAG_S` old); load is the
  larger of the two. It acts like the scaler (`airtasks.scaling`): cordon / uncordon, then
  drain-and-terminate exactly the idle nodes it names (a node found busy then is kept; the
  drain takes `removal_seconds`, paid for), or grow the group. With `Settings.learn_durations` it
  also passes decide() the expected run times of queued and running tasks (the mean of finished
  tasks with the same key) and the boot time: the live scaler does not do that yet.
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
from collections.abc import Callable, Sequence

from airtasks import decide as decide_mod
from airtasks.decide import NodeState, Observation, QueueMemory
from airtasks.errors import AirtasksError
from airtasks.simulate.bound import coverage_profile
from airtasks.simulate.engine import Cluster, Node, Outcome, Series
from airtasks.simulate.settings import Settings
from airtasks.simulate.trace import Task

RABBITMQ_LAG_S = 5.0
"""The management API's statistics refresh every 5 s (`collect_statistics_interval`)."""
SEED_INTERVAL_S = 60.0
KEDA_INTERVAL_S = 5.0
KEDA_STABILIZATION_S = 300.0
KEDA_GRACE_S = 600.0

POLICIES = ("airtasks", "seed", "keda", "oracle")


class AirtasksPolicy:
    name = "airtasks"
    acts_on_notices = True
    """Its spot nodes run the watcher: a notice stops their intake at once."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.interval_seconds = settings.interval_seconds
        self.memory: dict[str, QueueMemory] = {}
        self._seen = 0
        self._sum: dict[str, float] = {}
        self._count: dict[str, int] = {}

    def _expected(self, cluster: Cluster, ti: int) -> float | None:
        """Mean run time of the finished tasks with `ti`'s key; None for no key or none finished."""
        key = cluster.tasks[ti].key
        n = self._count.get(key, 0) if key is not None else 0
        return self._sum[key] / n if key is not None and n else None

    def _learn(self, cluster: Cluster) -> None:
        for ti in cluster.finished[self._seen :]:
            key = cluster.tasks[ti].key
            if key is not None:
                self._sum[key] = self._sum.get(key, 0.0) + cluster.tasks[ti].duration_s
                self._count[key] = self._count.get(key, 0) + 1
        self._seen = len(cluster.finished)

    def _node(self, cluster: Cluster, node: Node) -> NodeState:
        remaining: list[float] | None = None
        if self.settings.learn_durations:
            ends = [self._expected(cluster, ti) for ti in node.running]
            if all(e is not None for e in ends):
                remaining = [
                    e - (cluster.now - start)
                    for e, start in zip(ends, node.running.values(), strict=True)
                    if e is not None
                ]
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
        if self.settings.learn_durations:
            self._learn(cluster)
            policy = dataclasses.replace(policy, boot_seconds=cluster.boot_seconds)
            expected = [self._expected(cluster, ti) for ti in cluster.pending[queue]]
            queued_expected = [e for e in expected if e is not None]
            if len(queued_expected) < len(expected):
                queued_expected = None
        obs = Observation(
            load=load,
            current=len(group),
            nodes=tuple(self._node(cluster, n) for n in group),
            queued_expected=queued_expected,
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


def oracle(tasks: Sequence[Task], settings: Settings, boot_seconds: float) -> Outcome:
    end = max(t.submit_s + t.duration_s for t in tasks)
    intervals: list[tuple[float, float]] = []
    fixed = 0
    for q in sorted({t.queue for t in tasks}):
        qs = settings.queue(q)
        steps = _steps([t for t in tasks if t.queue == q])
        intervals += _level_presence(steps, qs.slots_per_node, qs.min_size, boot_seconds, end)
        fixed += qs.min_size
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
    "SeedPolicy",
    "make_policy",
    "oracle",
]
