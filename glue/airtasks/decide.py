"""The scaling policy for one queue: pure, no clients, no clock, no I/O.

The caller reads the world (load, group size, which node runs how many tasks), calls `decide`,
then acts on the `Decision` and stores its `memory` for the next pass. The simulator calls the
same function, so what `make bench` measures is what the scaler does.

Rules (docs/design.md, "Scaling: one pass" and "Scale-in"):
- A failed read holds: nothing changes, the memory is kept.
- want = clamp(ceil(load / slots_per_node), min_size, max_size); scale out at once.
- Scale in only after want stayed below the group size for `stabilization_seconds` (a bound
  against flapping), and then only by removing nodes that run nothing: a node that has been idle
  for `idle_seconds` (the main scale-in knob), or one the scaler cordoned earlier that has since
  emptied. Surplus nodes that are still busy are cordoned, emptiest first: they stop taking new
  tasks, finish what they run, and go. That packs the remaining work onto fewer nodes.
- Without a source that tells which node is busy, never scale in.
- An interrupted node (a spot/preemption notice: `NodeState.deadline`) is leaving: it is never
  counted as capacity again, so the pass orders its replacement at once if the load needs it, and
  it is kept out of scale-in (the cloud removes it). Its running tasks that cannot end before the
  deadline minus `restart_margin_seconds` are restarted elsewhere (`Decision.restart`): at once
  when expected run times say so, else all that still run at deadline minus the margin.
- With expected run times (`Observation.queued_expected` and each node's `remaining`) and a boot
  (the group's learnt one, as below, else `QueuePolicy.boot_seconds`), scale out only for the
  queued tasks that the group's slots would not start before a node launched now could: the others
  start as soon as without a new node. Without them (a queue that does not learn run times, a task
  that never finished before, a group that has not booted a node for queued tasks yet), want is as
  above.
- Pre-scaling (`Observation.due`, `QueuePolicy.prescale`): a scheduled DAG run that Airflow will
  create within one boot (plus `prescale_margin_seconds`) adds the slots its recent runs needed on
  this queue in their first minutes to the load (for a DAG's first run, which has no history, its
  DAG's root tasks on the queue, which all become ready when the run starts: `DueRun.roots`), so
  its nodes are ready when it comes. The boot is
  the group's own: launch to first task of its latest node that was launched for queued tasks
  (`QueueMemory.boot_samples`; a pre-scaled node waits for its run, so it tells nothing), else
  `boot_seconds`, else `DEFAULT_BOOT_SECONDS`. A run that does not come stops counting
  `OVERDUE_SECONDS` after its time, and normal scale-in removes what it raised.
- Packing (`QueuePolicy.pack`, off by default): every pass that read the nodes keeps open only
  the fullest busy nodes whose free slots the queued tasks need plus `PACK_HEADROOM_SLOTS`, and
  cordons the other busy nodes that have a free slot, so new tasks land on nodes that are busy
  anyway and the others empty sooner. Empty nodes are never cordoned for it (a booting node would
  not answer, an idle one keeps its idle time), and it uncordons a node as soon as the queue
  needs its slots. With expected run times, among nodes equally full the one expected to run
  longest stays open.
- Among surplus busy nodes equally full, the one expected to empty first (each node's
  `remaining`) is cordoned first.
- A pass may skip reading which node is busy when the load needs every node (want >= size): the
  nodes then count as busy now, so skipping the read can only delay a removal, never hasten one.
  It reads them anyway where a node's boot sample is pending (`boot_sample_pending`).
"""

from __future__ import annotations

import dataclasses
import heapq
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from airtasks.schedule import peak_between

Action = Literal["scale_out", "scale_in", "hold", "none"]

DEFAULT_BOOT_SECONDS = 90.0
"""The boot a group is assumed to take before its own nodes have shown one (a cloud VM, the
Docker engine, the join and the image pull; the box measures about that with its emulated delay)."""
OVERDUE_SECONDS = 30.0
"""Airflow moves a DAG's next run time on as soon as it creates the run; one still due this long
after its time is not coming (paused, or held by max_active_runs), so it stops holding nodes."""
MAX_BOOT_SAMPLE_SECONDS = 900.0
"""A node first seen busy later than this after its launch tells nothing about the boot."""
LAUNCH_WINDOW_SECONDS = 60.0
"""A node launched this soon after a scale-out for queued tasks was launched for those tasks."""
BOOT_SAMPLES = 8
PACK_HEADROOM_SLOTS = 1
"""Free slots packing keeps open beyond the queued tasks, for arrivals before the next pass. On the
tuning seeds 0 cost `long-tail` more node time (1.055x of the oracle against 1.037x) and
lengthened `steady`'s p95 wait (44 s against 39 s); 2 and 4 saved less on every kind."""


@dataclass(frozen=True)
class QueuePolicy:
    """What the configuration says about one queue's group."""

    min_size: int
    max_size: int
    slots_per_node: int
    stabilization_seconds: float = 30.0
    """How long want must stay below the group size before any node is cordoned or removed: a bound
    against flapping (it bridges the scheduler's gap between a task and its downstream task)."""
    idle_seconds: float = 10.0
    """How long a surplus node must have run nothing before it is removed (two 5 s passes)."""
    boot_seconds: float | None = None
    """How long a node launched now takes to take tasks, until the group has learnt its own
    (`QueueMemory.boot_samples`); None: unknown until then, expected run times unused."""
    restart_margin_seconds: float = 20.0
    """Tasks on an interrupted node that would still run this close to its deadline are restarted
    elsewhere: time for the restart to land before the cloud stops the node."""
    prescale: bool = True
    """Raise the group for scheduled DAG runs before they are due (`Observation.due`)."""
    prescale_margin_seconds: float = 15.0
    """How much earlier than one boot a due run raises the group: a pass interval, and the
    scheduler's own delay between creating the run and queueing its first tasks. On the tuning
    seeds of `scheduled`, 0, 15 and 30 s gave the same waits and 0 saved 0.02x of the oracle's
    node time; the simulator has no scheduler delay, the box does, so 15 s stays."""
    pack: bool = False
    """Steer new tasks onto the fullest busy nodes by cordoning the other busy ones that have a free
    slot, as long as the open ones have room for the queued tasks (`_pack`). Off by default: on
    the tuning seeds it lowers every kind's mean node time by 0.004-0.025x of the oracle, but
    raises `diurnal`'s worst seed (1.102x against 1.096x) and p95 wait (58 s against 55 s), it
    cordons and uncordons workers 2-4 times as often (docs/simulator.md, "Packing"). A queue's
    `pack` in the scaler's config turns it on."""
    # Where the defaults come from (docs/simulator.md, "Tuned and held-out seeds"): `python -m
    # bench.sweep` over generated traces of every kind on the tuning seeds only (bench.heldout),
    # and `make bench` reports them on held-out seeds the sweep never saw. There, with 5 s passes
    # and 60 s boot, 30/10 costs 1.04-1.19x the oracle bound on average per kind without
    # pre-scaling (worst seed 1.29x, on `scheduled`; 1.31x and 1.39x there with it) with p95
    # waits within boot + two passes and no task killed. The
    # sweep's 0/0 saves 0.01-0.06x per kind, with longer waits, and removes a node in the gap
    # between a task and its downstream one, which the simulator's fixed submission times cannot show.

    def want(self, load: int) -> int:
        """Nodes needed for `load` tasks, within [min_size, max_size]."""
        needed = math.ceil(max(load, 0) / self.slots_per_node)
        return max(self.min_size, min(self.max_size, needed))


@dataclass(frozen=True)
class NodeState:
    """One instance of the group as the pass saw it."""

    id: str
    running: int
    """Task instances running on it now (0 for a node still booting)."""
    launched_at: float
    """When the instance was started (epoch seconds): a node that never ran a task is idle since then."""
    cordoned: bool = False
    """It stopped taking new tasks (its consumer was cancelled / it was drained)."""
    remaining: Sequence[float] | None = None
    """Expected seconds until each of its running tasks ends (`math.inf` for one that has run longer
    than any earlier run of its task: not expected to end soon); None: unknown."""
    deadline: float | None = None
    """When the cloud reclaims it (epoch seconds), from its interruption notice; None: not interrupted."""


@dataclass(frozen=True)
class QueueMemory:
    """What must survive between passes, and a restart of the scaler."""

    below_since: float | None = None
    """Since when want has stayed below the group size, without a break."""
    last_busy: Mapping[str, float] = field(default_factory=dict)
    """Per node id: the last pass at which it ran a task."""
    boot_samples: tuple[float, ...] = ()
    """Launch to first task seen busy, in seconds, of the group's latest nodes that were launched for
    queued tasks (newest last)."""
    scaled_out_at: float | None = None
    """When the group last grew for queued tasks (not for a due run)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "below_since": self.below_since,
            "last_busy": dict(self.last_busy),
            "boot_samples": list(self.boot_samples),
            "scaled_out_at": self.scaled_out_at,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> QueueMemory:
        """Tolerant of missing or damaged memory: the worst case is a fresh window."""
        if not isinstance(data, Mapping):
            return cls()
        below = data.get("below_since")
        busy = data.get("last_busy")
        samples = data.get("boot_samples")
        scaled = data.get("scaled_out_at")
        return cls(
            below_since=float(below) if isinstance(below, int | float) else None,
            last_busy={str(k): float(v) for k, v in (busy or {}).items() if isinstance(v, int | float)}
            if isinstance(busy, Mapping)
            else {},
            boot_samples=tuple(float(v) for v in samples if isinstance(v, int | float) and v >= 0)[
                -BOOT_SAMPLES:
            ]
            if isinstance(samples, list)
            else (),
            scaled_out_at=float(scaled) if isinstance(scaled, int | float) else None,
        )


@dataclass(frozen=True)
class DueRun:
    """A scheduled DAG run Airflow will create soon, as one queue sees it."""

    dag_id: str
    at: float
    """Its run_after (epoch seconds): when the scheduler creates it."""
    slots: int
    """Task slots on this queue that its DAG's recent runs needed in their first minutes."""
    profile: tuple[tuple[float, int], ...] = ()
    """What its DAG's recent runs needed on this queue over the whole run: (offset from `at`,
    slots from then on), the upper envelope of the runs (`airtasks.schedule.profile_needed`).
    Empty: only `slots`, until the run's time."""
    started: bool = False
    """The run has queued tasks (on any queue): it came, so it is not overdue while its profile
    says more is coming."""
    active: int = 0
    """Its tasks on this queue queued or running now: they are in the load already."""
    roots: int = 0
    """Its DAG's root tasks (no upstream) on this queue, from the parsed DAG: all of them are
    queued as the run starts. What a first run counts; a later one counts its history, which
    also shows what limits the roots' concurrency (pools, `max_active_tasks`)."""
    first_run: bool = False
    """No earlier run of its DAG has been learnt from: `slots` and `profile` are empty, and only
    `roots` tells what it needs."""


@dataclass(frozen=True)
class Observation:
    """What one pass read for a queue."""

    load: int | None
    """Queued + running tasks; None when every configured source failed."""
    current: int
    """The group's desired size now."""
    nodes: Sequence[NodeState] = ()
    busy_known: bool = True
    """False when no source could tell which node runs what: then the group never shrinks."""
    error: str | None = None
    """Why `load` is None (names the source that failed)."""
    queued_expected: Sequence[float] | None = None
    """Expected run time of each queued task, in the order they start; None: unknown."""
    nodes_read: bool = True
    """False: which node runs what was not read this pass (`running` is 0 for every node)."""
    due: Sequence[DueRun] = ()
    """Scheduled runs coming up (their next run only, per DAG), for pre-scaling."""


@dataclass(frozen=True)
class Decision:
    action: Action
    current: int
    want: int | None
    desired: int
    reason: str
    memory: QueueMemory
    remove: tuple[str, ...] = ()
    """Idle nodes to drain, re-check and terminate (the group shrinks by one per node)."""
    cordon: tuple[str, ...] = ()
    """Busy surplus nodes that must stop taking new tasks."""
    uncordon: tuple[str, ...] = ()
    """Cordoned nodes that are needed again."""
    restart: tuple[tuple[str, tuple[int, ...]], ...] = ()
    """Per interrupted node: which of its running tasks (indices in its running order, as in
    `NodeState.remaining`) to restart on other nodes now, without using up a retry."""


def decide(policy: QueuePolicy, obs: Observation, memory: QueueMemory, now: float) -> Decision:
    """One queue, one pass. Pure: the same inputs always give the same Decision."""
    leaving = [n for n in obs.nodes if n.deadline is not None]
    if not leaving:
        return _decide(policy, obs, memory, now)
    # Size the group on the nodes that stay; the leaving ones still count in its size until the
    # cloud removes them, so they are added back to `current` and `desired`.
    staying = dataclasses.replace(
        obs, current=max(obs.current - len(leaving), 0), nodes=[n for n in obs.nodes if n.deadline is None]
    )
    d = _decide(policy, staying, memory, now)
    restart = tuple((n.id, doomed) for n in leaving if (doomed := _doomed(policy, n, now)))
    replaced = d.desired > staying.current
    notes = []
    for n in leaving:
        done = dict(restart).get(n.id, ())
        what = [f"restarting {len(done)} task(s)"] if done else []
        what.append("replacement ordered" if replaced else "not replaced, the load does not need it")
        left = (n.deadline or now) - now
        notes.append(f"interrupted {n.id} ({left:.0f}s left): {', '.join(what)}")
    return dataclasses.replace(
        d,
        current=obs.current,
        desired=d.desired + len(leaving),
        reason="; ".join([*notes, d.reason]),
        cordon=d.cordon + tuple(n.id for n in leaving if not n.cordoned),
        restart=restart,
    )


def _doomed(policy: QueuePolicy, node: NodeState, now: float) -> tuple[int, ...]:
    """Running tasks of an interrupted node to restart now: those expected to end later than its
    deadline minus the margin; all of them once that moment has come (or run times are unknown)."""
    assert node.deadline is not None
    cutoff = node.deadline - policy.restart_margin_seconds - now
    if cutoff <= 0:
        return tuple(range(node.running))
    if node.remaining is None or len(node.remaining) < node.running:
        return ()
    return tuple(i for i, r in enumerate(node.remaining[: node.running]) if r > cutoff)


def _decide(policy: QueuePolicy, obs: Observation, memory: QueueMemory, now: float) -> Decision:
    if obs.load is None:
        return Decision(
            "hold", obs.current, None, obs.current, f"read failed: {obs.error or 'no load'}", memory
        )

    present = {n.id for n in obs.nodes}
    last_busy = {k: v for k, v in memory.last_busy.items() if k in present}
    samples = list(memory.boot_samples)
    for node in obs.nodes:
        seen_busy = obs.nodes_read and node.running > 0
        if seen_busy and boot_sample_pending(memory, node.id, node.launched_at, now):
            samples.append(now - node.launched_at)
        if node.running > 0 or not obs.nodes_read:
            last_busy[node.id] = now
    boot_samples = tuple(samples[-BOOT_SAMPLES:])
    want = policy.want(obs.load)
    boot = boot_samples[-1] if boot_samples else policy.boot_seconds
    late = _late(policy, obs, boot, now) if want > obs.current else None
    if late is not None:
        want = max(policy.min_size, min(want, obs.current + math.ceil(late / policy.slots_per_node)))
    due = _due(policy, obs.due, boot_samples[-1] if boot_samples else None, now)
    prescale = policy.want(obs.load + sum(extra for _, extra in due)) if due else want
    prescaled = prescale > want
    want = max(want, prescale)
    cordoned = [n.id for n in obs.nodes if n.cordoned]

    if want >= obs.current:
        scaled = now if want > obs.current and not prescaled else memory.scaled_out_at
        mem = QueueMemory(None, last_busy, boot_samples, scaled)
        if want > obs.current:
            reason = f"load {obs.load} needs {want} node(s) of {policy.slots_per_node} slots"
            if late is not None and want < policy.want(obs.load):
                reason += f"; by learnt run times only {late} queued task(s) would wait longer than a boot"
            if prescaled:
                reason = f"pre-scale: {_describe(due)}: {want} node(s) of {policy.slots_per_node} slots"
            d = Decision("scale_out", obs.current, want, want, reason, mem, uncordon=tuple(cordoned))
            return _pack(policy, obs, d, set())
        reason = "size fits the load" if late is None else "queued tasks start on the group before a new node"
        if prescaled:
            reason = f"pre-scale: holding for {_describe(due)}"
        if cordoned:
            reason += f"; resuming {len(cordoned)}"
        d = Decision("none", obs.current, want, obs.current, reason, mem, uncordon=tuple(cordoned))
        return _pack(policy, obs, d, set())

    below_since = memory.below_since if memory.below_since is not None else now
    mem = QueueMemory(below_since, last_busy, boot_samples, memory.scaled_out_at)
    if not obs.busy_known:
        reason = "cannot tell which nodes are busy (no Airflow source): never scaling in"
        return Decision("hold", obs.current, want, obs.current, reason, mem)
    if not obs.nodes_read:
        reason = "which nodes are busy was not read this pass: not scaling in"
        return Decision("hold", obs.current, want, obs.current, reason, mem)
    waited = now - below_since
    if waited < policy.stabilization_seconds:
        reason = (
            f"want {want} < {obs.current} for {waited:.0f}s of {policy.stabilization_seconds:.0f}s window"
        )
        return _pack(policy, obs, Decision("none", obs.current, want, obs.current, reason, mem), set())

    surplus = obs.current - want
    # Capacity that was asked for but has no instance yet goes first: it costs no victim.
    unlaunched = min(max(obs.current - len(obs.nodes), 0), surplus)
    surplus -= unlaunched

    def idle_for(node: NodeState) -> float:
        return now - max(last_busy.get(node.id, node.launched_at), node.launched_at)

    # Victims in order of least harm: cordoned and empty, idle longest, then fewest running tasks,
    # then (with expected run times) the one expected to empty first.
    ranked = sorted(
        obs.nodes,
        key=lambda n: (
            n.running > 0,
            not (n.cordoned and n.running == 0),
            -idle_for(n),
            n.running,
            _expected_end(n),
            n.id,
        ),
    )
    victims = ranked[:surplus]
    remove = tuple(
        n.id for n in victims if n.running == 0 and (n.cordoned or idle_for(n) >= policy.idle_seconds)
    )
    cordon = tuple(n.id for n in victims if n.running > 0 and not n.cordoned)
    keep_cordoned = {n.id for n in victims}
    uncordon = tuple(i for i in cordoned if i not in keep_cordoned)
    desired = obs.current - unlaunched - len(remove)

    parts = [f"want {want} < {obs.current} for {waited:.0f}s"]
    if unlaunched:
        parts.append(f"dropping {unlaunched} not yet launched")
    if remove:
        parts.append(f"removing idle {', '.join(remove)}")
    if cordon:
        parts.append(f"cordoning busy {', '.join(cordon)}")
    waiting = [n.id for n in victims if n.id not in remove and n.id not in cordon]
    if waiting:
        parts.append(f"waiting for {', '.join(waiting)} to empty or idle {policy.idle_seconds:.0f}s")
    action: Action = "scale_in" if desired < obs.current else "none"
    d = Decision(action, obs.current, want, desired, "; ".join(parts), mem, remove, cordon, uncordon)
    return _pack(policy, obs, d, {n.id for n in victims})


def _expected_end(node: NodeState) -> float:
    """Expected seconds until the node's last running task ends; 0 when unknown."""
    if node.remaining is None or len(node.remaining) < node.running:
        return 0.0
    return max(node.remaining[: node.running], default=0.0)


def _pack(policy: QueuePolicy, obs: Observation, d: Decision, victims: set[str]) -> Decision:
    """`d` with its cordons set for packing (`QueuePolicy.pack`): the surplus nodes it cordons stay
    so, and of the others, busy nodes with a free slot are cordoned once fuller nodes (the one
    expected to run longest first, then the newest) have room for the queued tasks and
    `PACK_HEADROOM_SLOTS`; every other cordoned node is uncordoned. Only on a pass that read
    which node runs what."""
    if not policy.pack or not obs.nodes_read or not obs.busy_known or obs.load is None:
        return d
    slots = policy.slots_per_node
    need = max(obs.load - sum(n.running for n in obs.nodes), 0) + PACK_HEADROOM_SLOTS
    open_first = sorted(
        (n for n in obs.nodes if n.id not in victims and n.id not in d.remove),
        key=lambda n: (-n.running, -_expected_end(n), -n.launched_at, n.id),
    )
    room = 0
    closed: set[str] = set()
    for n in open_first:
        if room >= need and 0 < n.running < slots:
            closed.add(n.id)
        else:
            room += max(slots - n.running, 0)
    was = {n.id for n in obs.nodes if n.cordoned}
    target = (was & victims) | set(d.cordon) | closed
    cordon = tuple(n.id for n in obs.nodes if n.id in target and n.id not in was)
    uncordon = tuple(n.id for n in obs.nodes if n.id in was and n.id not in target)
    if closed - was:
        d = dataclasses.replace(d, reason=f"{d.reason}; packing: cordoning {len(closed - was)} busy node(s)")
    return dataclasses.replace(d, cordon=cordon, uncordon=uncordon)


def boot_sample_pending(memory: QueueMemory, node_id: str, launched_at: float, now: float) -> bool:
    """The node's first task, when a pass sees it, gives a boot sample: no pass has seen it busy
    yet, it is young enough, and it came from the group's last scale-out for queued tasks, so
    its first task tells how long a boot takes (a node raised for a due run, or for an earlier
    burst, may have waited). The scaler reads such a node's tasks even where the load needs the
    whole group (`scaling.read`): a pass that does not read it counts it busy (`last_busy`), and
    after that its first task is no longer seen as one."""
    since = memory.scaled_out_at
    return (
        node_id not in memory.last_busy
        and since is not None
        and 0 <= launched_at - since <= LAUNCH_WINDOW_SECONDS
        and now - launched_at <= MAX_BOOT_SAMPLE_SECONDS
    )


def _due(
    policy: QueuePolicy, due: Sequence[DueRun], learned_boot: float | None, now: float
) -> list[tuple[DueRun, int]]:
    """The scheduled runs to raise the group for now, with the slots each adds to the load; the
    earliest first. A run without a profile counts its `slots` from one boot plus the margin
    before its time until it is overdue. A run with one counts, from as early, the most its
    profile needs between now and one lead ahead, less its tasks already in the load (`active`),
    until the profile ends; one that has not started by `OVERDUE_SECONDS` after its time stops.
    A DAG's first run (no history) counts its DAG's `roots` as its `slots`."""
    if not policy.prescale:
        return []
    boot = learned_boot if learned_boot is not None else policy.boot_seconds
    lead = (boot if boot is not None else DEFAULT_BOOT_SECONDS) + policy.prescale_margin_seconds
    out: list[tuple[DueRun, int]] = []
    for d in due:
        if d.at - now > lead:
            continue
        if not d.profile:
            slots = d.roots if d.first_run else d.slots
            if slots > 0 and d.at - now >= -OVERDUE_SECONDS:
                out.append((d, slots))
            continue
        if not d.started and d.at - now < -OVERDUE_SECONDS:
            continue
        ahead = peak_between(d.profile, max(now - d.at, 0.0), now + lead - d.at)
        if ahead - d.active > 0:
            out.append((d, ahead - d.active))
    return sorted(out, key=lambda x: (x[0].at, x[0].dag_id))


def _describe(due: Sequence[tuple[DueRun, int]]) -> str:
    """`nightly_etl due 02:00 needs 6 slot(s)` for each run, as the Cluster page shows it (UTC),
    with `(first run: 6 root task(s))` after it when the DAG's structure told it (no history)."""

    def clock(at: float) -> str:
        return time.strftime("%H:%M" if int(at) % 60 == 0 else "%H:%M:%S", time.gmtime(at))

    def why(d: DueRun) -> str:
        return f" (first run: {d.roots} root task(s))" if d.first_run and d.roots > 0 else ""

    return ", ".join(f"{d.dag_id} due {clock(d.at)} needs {n} slot(s){why(d)}" for d, n in due)


def _late(policy: QueuePolicy, obs: Observation, boot: float | None, now: float) -> int | None:
    """Queued tasks the group's slots (booting nodes included) would start later than a node
    launched now, taking `boot` to take tasks, could take them, by expected run times; None when
    the boot or any expectation is missing."""
    if boot is None or obs.queued_expected is None or obs.load is None or not obs.nodes_read:
        return None
    queued = obs.load - sum(n.running for n in obs.nodes)
    if queued <= 0:
        return 0
    if len(obs.queued_expected) < queued:
        return None
    free: list[float] = []
    for node in obs.nodes:
        if node.cordoned:
            continue
        if node.remaining is None or len(node.remaining) < node.running:
            return None
        free += [now + max(r, 0.0) for r in node.remaining[: node.running]]
        free += [max(now, node.launched_at + boot)] * max(policy.slots_per_node - node.running, 0)
    free += [now + boot] * (policy.slots_per_node * max(obs.current - len(obs.nodes), 0))
    heapq.heapify(free)
    deadline = now + boot
    for i, expected in enumerate(obs.queued_expected[:queued]):
        if not free or free[0] > deadline:
            return queued - i
        heapq.heappush(free, heapq.heappop(free) + expected)
    return 0


__all__ = [
    "Action",
    "Decision",
    "DueRun",
    "NodeState",
    "Observation",
    "QueueMemory",
    "QueuePolicy",
    "boot_sample_pending",
    "decide",
]
