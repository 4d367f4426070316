"""The discrete-event loop: tasks queue, a policy resizes each queue's group, nodes boot and run tasks.

Model (one group of nodes per queue):
- A task waits in its queue (FIFO) until a node of its queue has a free slot; it then runs for its
  duration.
- A launched node pays from launch, joins after `boot_seconds`, runs `slots_per_node` tasks at once.
  New tasks go round-robin over joined nodes with a free slot, as RabbitMQ hands messages to Celery
  consumers (prefetch = concurrency, acks late), skipping cordoned and retiring nodes.
- `terminate` removes a node at once; tasks running on it are killed, counted and re-queued at the
  head of their queue (the broker re-delivers an unacked message). `retire` takes a node out of the
  group but lets it finish its tasks for a grace period (Kubernetes' terminationGracePeriodSeconds),
  then kills what is left. `drain` takes an idle node out of the group and terminates it a few
  seconds later (the scaler's drain-then-terminate). Node-seconds count until a node is gone.
- A task's wait is from its submission to the start of the run that completes it, so the time a
  killed task ran and its second wait both count: that is when its user sees it start for good.
- The policy runs every `interval_seconds` (pass k at k * interval); it sees what its sources would
  show: live counts, or the broker's counts as they were `lag` seconds ago.
- Interruptions (optional, `Interruptions`): every node gets an interruption notice after an
  exponentially distributed time (a rate per node-hour, drawn from the seed and the node's id, so
  each policy's n-th node of a queue meets the same fate), and the cloud reclaims it
  `notice_seconds` later: what still runs there is killed and re-queued, and each such run is
  `lost` (it used up one of its task's retries). A policy that acts on notices (`acts_on_notices`)
  has the node stop taking tasks at the notice (the watcher cancels its consumer) and may
  `restart` its tasks elsewhere before the deadline, which uses no retry.
- The run ends at the first pass after every task finished and every group is back at its minimum.
- With `run(..., record=True)` the outcome also holds a `History`: each node's launch, ready, gone
  and cordon times and each run of a task (node, start, end), for accounting of where node time
  went (`python -m bench.decompose`). Off by default; it changes nothing the simulation does.
Events at one instant run in this order: completions, nodes joining, grace ends, reclaims,
notices, arrivals, then the pass (which therefore sees a task submitted at the same instant).
"""

from __future__ import annotations

import heapq
import math
import random
from bisect import bisect_right
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from airtasks.simulate.settings import Settings
from airtasks.simulate.trace import Task

COMPLETE, JOIN, GRACE_END, RECLAIM, NOTICE, ARRIVE, PASS = range(7)
HORIZON_AFTER_LAST_SUBMIT = 7 * 24 * 3600.0
"""A policy that never settles is cut off this long after the last submission."""


@dataclass
class Node:
    id: str
    seq: int
    queue: str
    launched_at: float
    joined: bool = False
    running: dict[int, float] = field(default_factory=dict)
    """Task index -> start time."""
    cordoned: bool = False
    retiring: bool = False
    gone_at: float | None = None
    deadline: float | None = None
    """When the cloud reclaims it, once it got an interruption notice."""


@dataclass(frozen=True)
class Interruptions:
    """Spot/preemptible capacity: how often nodes get a notice, and how long before they go."""

    per_node_hour: float
    notice_seconds: float
    """120 on AWS (spot instance-action), 30 on GCP (instance/preempted)."""
    seed: int = 1

    def first_notice(self, node_id: str) -> float | None:
        """Seconds from launch to the node's notice; None when there are no interruptions."""
        if self.per_node_hour <= 0:
            return None
        return random.Random(f"{self.seed}:{node_id}").expovariate(self.per_node_hour / 3600.0)


@dataclass
class _TaskState:
    attempt: int = 0
    waited: float = 0.0
    """From submission to the start of the latest attempt."""
    done: bool = False


@dataclass(frozen=True)
class Series:
    """Step functions over time for plots: total queued tasks and total nodes (all queues)."""

    t: Sequence[float]
    queued: Sequence[int]
    nodes: Sequence[int]


@dataclass(frozen=True)
class NodeLife:
    """One node from launch to removal, as `run(..., record=True)` saw it."""

    id: str
    queue: str
    launched_at: float
    ready_at: float | None
    """When it joined and could take tasks; None if it went before it joined."""
    gone_at: float
    """When it was removed, or the run's end for a node still up then."""
    cordons: tuple[tuple[float, bool], ...]
    """Each change of its cordon, in order: (when, cordoned from then on). Retiring, draining and
    an interruption notice cordon a node too."""


@dataclass(frozen=True)
class TaskRun:
    """One attempt of a task on a node."""

    task: int
    """Index of the task in the trace."""
    node: str
    start: float
    end: float
    """When it completed, was killed or restarted, or the run's end if it was still running."""
    completed: bool


@dataclass(frozen=True)
class History:
    """What happened in one run, node by node and run by run (`run(..., record=True)`)."""

    nodes: tuple[NodeLife, ...]
    runs: tuple[TaskRun, ...]
    """In the order they ended."""


@dataclass
class _Recorder:
    """What `run(..., record=True)` keeps for a `History` as the run goes. One object, as its parts
    are only ever there together: `Cluster` holds it or None, and each hook tests that once."""

    ready: dict[int, float] = field(default_factory=dict)
    """Node seq -> when it joined."""
    cordons: dict[int, list[tuple[float, bool]]] = field(default_factory=dict)
    """Node seq -> each change of its cordon: (when, cordoned from then on)."""
    runs: list[TaskRun] = field(default_factory=list)
    """The runs that ended, in the order they ended."""


@dataclass(frozen=True)
class Outcome:
    """What one policy did on one trace."""

    policy: str
    node_seconds: float
    waits: Sequence[float]
    tasks_killed: int
    scale_actions: int
    end_s: float
    series: Series
    notices: int = 0
    """Interruption notices the nodes got."""
    lost: int = 0
    """Runs killed when an interrupted node was reclaimed: each used up one of its task's retries."""
    restarted: int = 0
    """Runs the policy restarted elsewhere before the deadline: no retry used."""
    history: History | None = None
    """Node by node and run by run, when `run` was asked to record; else None."""


class Policy(Protocol):
    name: str
    interval_seconds: float

    def on_pass(self, cluster: Cluster, queue: str) -> None:
        """Look at `cluster` for `queue` and act on it (launch, terminate, retire, cordon)."""


class Cluster:
    """The world a policy acts on. Its read methods are the policy's sources."""

    def __init__(
        self,
        tasks: Sequence[Task],
        settings: Settings,
        boot_seconds: float,
        interruptions: Interruptions | None = None,
        acts_on_notices: bool = False,
        *,
        record: bool = False,
    ) -> None:
        self.tasks = tasks
        self.settings = settings
        self.boot_seconds = boot_seconds
        self.interruptions = interruptions
        self.acts_on_notices = acts_on_notices
        self.notices = 0
        self.lost = 0
        self.restarted = 0
        self.now = 0.0
        self.queues = sorted({t.queue for t in tasks})
        self.slots = {q: settings.queue(q).slots_per_node for q in self.queues}
        self.alive: dict[str, list[Node]] = {q: [] for q in self.queues}
        self.all_nodes: list[Node] = []
        self.by_seq: dict[int, Node] = {}
        self.where: dict[int, Node] = {}
        """Running task index -> its node."""
        self.pending: dict[str, deque[int]] = {q: deque() for q in self.queues}
        self.n_running = dict.fromkeys(self.queues, 0)
        self.state = [_TaskState() for _ in tasks]
        self.remaining = len(tasks)
        self.killed = 0
        self.finished: list[int] = []
        """Indices of completed tasks, in completion order (what Airflow's finished task instances show)."""
        self._rr = dict.fromkeys(self.queues, -1)
        self._seq = 0
        self._heap: list[tuple[float, int, int, int, int]] = []
        self._hseq = 0
        # The broker's ready+unacked per queue over time, for lagged reads.
        self._depth_t: dict[str, list[float]] = {q: [0.0] for q in self.queues}
        self._depth_v: dict[str, list[int]] = {q: [0] for q in self.queues}
        self.series_t: list[float] = []
        self.series_q: list[int] = []
        self.series_n: list[int] = []
        # None when not recording: the run then keeps nothing it would only need for a `History`.
        self._recorder = _Recorder() if record else None

    # ------------------------------------------------------------ sources (what a policy reads)

    def queued(self, queue: str) -> int:
        """Tasks waiting for a slot, now (Airflow's `queued` task instances)."""
        return len(self.pending[queue])

    def running(self, queue: str) -> int:
        """Tasks running now (Airflow's `running` task instances)."""
        return self.n_running[queue]

    def broker_depth(self, queue: str, lag: float) -> int:
        """RabbitMQ ready + unacked for `queue` as its management API showed it `lag` seconds ago."""
        times = self._depth_t[queue]
        i = bisect_right(times, self.now - lag) - 1
        return self._depth_v[queue][i] if i >= 0 else 0

    def group(self, queue: str) -> list[Node]:
        """The group's instances: alive and not retiring (booting ones included)."""
        return [n for n in self.alive[queue] if not n.retiring]

    def size(self, queue: str) -> int:
        return len(self.group(queue))

    # ------------------------------------------------------------ actions

    def launch(self, queue: str, count: int = 1) -> list[Node]:
        out = []
        for _ in range(count):
            node = self._new_node(queue, joined=False)
            self._push(self.now + self.boot_seconds, JOIN, node.seq)
            out.append(node)
        return out

    def terminate(self, node: Node) -> int:
        """Remove the instance now; returns how many running tasks were killed (and re-queued)."""
        killed = len(node.running)
        for ti in sorted(node.running, key=lambda i: node.running[i], reverse=True):
            self._ended(node, ti, completed=False)
            del self.where[ti]
            st = self.state[ti]
            st.attempt += 1
            self.pending[node.queue].appendleft(ti)
        self.n_running[node.queue] -= killed
        node.running.clear()
        self.killed += killed
        self._gone(node)
        return killed

    def retire(self, node: Node, grace_seconds: float) -> None:
        """Out of the group now; finishes its tasks, killed after `grace_seconds` if still busy."""
        node.retiring = True
        self._set_cordoned(node, True)
        if not node.running:
            self._gone(node)
        else:
            self._push(self.now + grace_seconds, GRACE_END, node.seq)

    def drain(self, node: Node, seconds: float) -> None:
        """Out of the group now (it takes no task), terminated `seconds` later: an idle node's
        Swarm drain and instance termination take that long, and it is paid for meanwhile."""
        if seconds <= 0:
            self.terminate(node)
            return
        node.retiring = True
        self._set_cordoned(node, True)
        self._push(self.now + seconds, GRACE_END, node.seq)

    def cordon(self, node: Node) -> None:
        self._set_cordoned(node, True)

    def restart(self, node: Node, ti: int) -> None:
        """Stop task `ti` on `node` and queue it again at the head, without using a retry (Airflow
        re-runs a cleared running task instance whatever its retries)."""
        self._ended(node, ti, completed=False)
        del node.running[ti]
        del self.where[ti]
        self.state[ti].attempt += 1
        self.pending[node.queue].appendleft(ti)
        self.n_running[node.queue] -= 1
        self.restarted += 1

    def uncordon(self, node: Node) -> None:
        if not node.retiring:
            self._set_cordoned(node, False)

    # ------------------------------------------------------------ internals

    def _new_node(self, queue: str, joined: bool) -> Node:
        self._seq += 1
        node = Node(
            id=f"{queue}-{self._seq:05d}", seq=self._seq, queue=queue, launched_at=self.now, joined=joined
        )
        self.alive[queue].append(node)
        self.all_nodes.append(node)
        self.by_seq[node.seq] = node
        if joined:
            self._joined(node)
        after = self.interruptions.first_notice(node.id) if self.interruptions else None
        if after is not None:
            self._push(self.now + after, NOTICE, node.seq)
        return node

    def _joined(self, node: Node) -> None:
        node.joined = True
        if self._recorder is not None:
            self._recorder.ready[node.seq] = self.now

    def _set_cordoned(self, node: Node, cordoned: bool) -> None:
        if self._recorder is not None and node.cordoned != cordoned:
            self._recorder.cordons.setdefault(node.seq, []).append((self.now, cordoned))
        node.cordoned = cordoned

    def _ended(self, node: Node, ti: int, completed: bool) -> None:
        """The run of task `ti` on `node` ends now (call before it leaves `node.running`)."""
        if self._recorder is not None:
            self._recorder.runs.append(TaskRun(ti, node.id, node.running[ti], self.now, completed))

    def history(self, end: float) -> History | None:
        """What was recorded, with nodes still up and runs still running cut at `end`; None when
        not recording."""
        rec = self._recorder
        if rec is None:
            return None
        runs = list(rec.runs)
        for node in self.all_nodes:
            for ti, start in node.running.items():
                runs.append(TaskRun(ti, node.id, start, end, False))
        nodes = tuple(
            NodeLife(
                n.id,
                n.queue,
                n.launched_at,
                rec.ready.get(n.seq),
                n.gone_at if n.gone_at is not None else end,
                tuple(rec.cordons.get(n.seq, ())),
            )
            for n in self.all_nodes
        )
        return History(nodes, tuple(runs))

    def _gone(self, node: Node) -> None:
        node.gone_at = self.now
        self.alive[node.queue].remove(node)

    def _push(self, t: float, kind: int, ref: int) -> None:
        self._hseq += 1
        heapq.heappush(self._heap, (t, kind, self._hseq, ref, 0))

    def _push_completion(self, t: float, ti: int, attempt: int) -> None:
        self._hseq += 1
        heapq.heappush(self._heap, (t, COMPLETE, self._hseq, ti, attempt))

    def _dispatch(self) -> None:
        for q in self.queues:
            pending = self.pending[q]
            if not pending:
                continue
            slots = self.slots[q]
            while pending:
                free = [n for n in self.alive[q] if n.joined and not n.cordoned and len(n.running) < slots]
                if not free:
                    break
                after = [n for n in free if n.seq > self._rr[q]]
                node = after[0] if after else free[0]
                self._rr[q] = node.seq
                ti = pending.popleft()
                st = self.state[ti]
                st.waited = self.now - self.tasks[ti].submit_s
                node.running[ti] = self.now
                self.where[ti] = node
                self.n_running[q] += 1
                self._push_completion(self.now + self.tasks[ti].duration_s, ti, st.attempt)

    def _record(self) -> None:
        for q in self.queues:
            depth = len(self.pending[q]) + self.n_running[q]
            if depth != self._depth_v[q][-1]:
                self._depth_t[q].append(self.now)
                self._depth_v[q].append(depth)
        queued = sum(len(p) for p in self.pending.values())
        nodes = sum(len(a) for a in self.alive.values())
        if self.series_t and self.series_t[-1] == self.now:
            self.series_q[-1], self.series_n[-1] = queued, nodes
        elif not self.series_q or (queued, nodes) != (self.series_q[-1], self.series_n[-1]):
            self.series_t.append(self.now)
            self.series_q.append(queued)
            self.series_n.append(nodes)

    def _settled(self) -> bool:
        return self.remaining == 0 and all(
            len(self.alive[q]) <= self.settings.queue(q).min_size
            and not any(n.retiring for n in self.alive[q])
            for q in self.queues
        )


def run(
    tasks: Sequence[Task],
    policy: Policy,
    settings: Settings,
    boot_seconds: float,
    interruptions: Interruptions | None = None,
    *,
    record: bool = False,
) -> Outcome:
    """Simulate `policy` on `tasks`; deterministic (policies that draw lots take a seeded generator).
    With `record`, the outcome's `history` tells what happened node by node and run by run."""
    c = Cluster(
        tasks, settings, boot_seconds, interruptions, getattr(policy, "acts_on_notices", False), record=record
    )
    for q in c.queues:
        for _ in range(settings.queue(q).min_size):
            c._new_node(q, joined=True)
    for i, task in enumerate(tasks):
        c._push(task.submit_s, ARRIVE, i)
    interval = policy.interval_seconds
    pass_no = 0
    c._push(0.0, PASS, pass_no)
    actions = 0
    horizon = max((task.submit_s for task in tasks), default=0.0) + HORIZON_AFTER_LAST_SUBMIT
    while c._heap:
        t, kind, _, ref, attempt = heapq.heappop(c._heap)
        if t > horizon:
            break
        c.now = t
        if kind == COMPLETE:
            st = c.state[ref]
            if st.attempt != attempt or st.done:
                continue  # the attempt was killed
            q = tasks[ref].queue
            node = c.where.pop(ref)
            c._ended(node, ref, completed=True)
            del node.running[ref]
            c.n_running[q] -= 1
            st.done = True
            c.remaining -= 1
            c.finished.append(ref)
            if node.retiring and not node.running:
                c._gone(node)
        elif kind == JOIN:
            node = c.by_seq[ref]
            if node.gone_at is None:
                c._joined(node)
        elif kind == GRACE_END:
            node = c.by_seq[ref]
            if node.gone_at is None:
                c.terminate(node)
        elif kind == RECLAIM:
            node = c.by_seq[ref]
            if node.gone_at is None:
                c.lost += c.terminate(node)
        elif kind == NOTICE:
            node = c.by_seq[ref]
            if node.gone_at is None and interruptions is not None:
                c.notices += 1
                node.deadline = c.now + interruptions.notice_seconds
                if c.acts_on_notices:
                    c._set_cordoned(node, True)
                c._push(node.deadline, RECLAIM, node.seq)
        elif kind == ARRIVE:
            c.pending[tasks[ref].queue].append(ref)
        c._dispatch()
        c._record()
        if kind == PASS:
            for q in c.queues:
                before = c.size(q)
                policy.on_pass(c, q)
                if c.size(q) != before:
                    actions += 1
            c._dispatch()
            c._record()
            if c._settled():
                break
            pass_no += 1
            c._push(pass_no * interval, PASS, pass_no)
    end = c.now
    node_seconds = sum((n.gone_at if n.gone_at is not None else end) - n.launched_at for n in c.all_nodes)
    return Outcome(
        policy=policy.name,
        node_seconds=node_seconds,
        waits=[s.waited for s in c.state],
        tasks_killed=c.killed,
        scale_actions=actions,
        end_s=end,
        series=Series(c.series_t, c.series_q, c.series_n),
        notices=c.notices,
        lost=c.lost,
        restarted=c.restarted,
        history=c.history(end),
    )


def percentile(values: Sequence[float], pct: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); 0 for no values."""
    if not values:
        return 0.0
    xs = sorted(values)
    k = (len(xs) - 1) * pct / 100
    lo, hi = math.floor(k), math.ceil(k)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


__all__ = [
    "Cluster",
    "History",
    "Interruptions",
    "Node",
    "NodeLife",
    "Outcome",
    "Policy",
    "Series",
    "TaskRun",
    "percentile",
    "run",
]
