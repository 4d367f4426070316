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
- Pre-scaling (schedule-aware): a scheduled DAG run due within one learned boot time plus one
  interval, and what it needs of this queue in its first minutes (learned by the caller from the
  DAG's recent runs), adds its slots to the load until `prescale_grace_seconds` after it was due;
  the group grows as for any load (action `pre_scale`), so the run's first tasks find warm nodes.
  A run that does not come costs the nodes' idle time until the normal scale-in removes them.
- Boot time per group is learned from the scaler's own passes: a node that was seen idle while
  tasks queued (so it was still booting) and is now busy booted in about now - launched_at.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Action = Literal["scale_out", "pre_scale", "scale_in", "hold", "none"]
BOOT_SAMPLES = 5
"""Boot times remembered per group; the estimate is their maximum (a late node costs waits)."""
BOOT_SAMPLE_CAP = 4.0
"""A measured boot above this many times the configured `boot_seconds` is not taken as one."""


@dataclass(frozen=True)
class QueuePolicy:
    """What the configuration says about one queue's group."""

    min_size: int
    max_size: int
    slots_per_node: int
    stabilization_seconds: float = 0.0
    """How long want must stay below the group size before any node is cordoned or removed: a bound
    against flapping. At 0 the gap between a task and its downstream task is bridged by
    `idle_seconds` alone (a cordoned node is resumed as soon as the load needs it)."""
    idle_seconds: float = 10.0
    """How long a surplus node must have run nothing before it is removed (two 5 s passes)."""
    interval_seconds: float = 5.0
    """The scaler's pass interval (the reasons and the simulator use it; a measured boot already
    includes up to one interval, since it is seen at the first pass after the node took a task)."""
    boot_seconds: float = 60.0
    """Launch to first task, until the group's own boots were measured (then their maximum)."""
    prescale: bool = True
    """Raise the group ahead of scheduled DAG runs (per queue: QueueConfig.prescale)."""
    prescale_grace_seconds: float = 30.0
    """How long after a run was due its slots still count: the scheduler queues a run's first
    tasks within seconds; a run that has not come by then is assumed not to come."""
    # Window and idle time come from `python -m bench.sweep` (bench/results/sweep.json): generated
    # traces of every kind (steady, bursty, diurnal, long-tail, mixed, scheduled), training seeds
    # 1-4, 5 s passes, 60 s boot; the pair with the lowest worst-kind mean node-seconds vs the
    # oracle (within 0.005, the largest window then idle) among those that keep p95 wait within
    # boot + 2 intervals and kill no task: 0/10 (worst kind 1.21x, scheduled; 30/10 gave 1.28x).
    # A 0 s window cordons surplus busy nodes at once: the packing that the sweep rewarded.
    # `make bench` reports them on held-out seeds (bench/heldout.py, docs/simulator.md).

    def boot_estimate(self, memory: QueueMemory) -> float:
        samples = memory.boot_samples[-BOOT_SAMPLES:]
        return max(samples) if samples else self.boot_seconds

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


@dataclass(frozen=True)
class QueueMemory:
    """What must survive between passes, and a restart of the scaler."""

    below_since: float | None = None
    """Since when want has stayed below the group size, without a break."""
    last_busy: Mapping[str, float] = field(default_factory=dict)
    """Per node id: the last pass at which it ran a task."""
    booting: tuple[str, ...] = ()
    """Nodes that never ran a task and were idle at the last pass while tasks queued: booting."""
    boot_samples: tuple[float, ...] = ()
    """The group's last measured boot times (launch to first task), oldest first."""

    def to_json(self) -> dict[str, Any]:
        return {
            "below_since": self.below_since,
            "last_busy": dict(self.last_busy),
            "booting": list(self.booting),
            "boot_samples": list(self.boot_samples),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> QueueMemory:
        """Tolerant of missing or damaged memory: the worst case is a fresh window."""
        if not isinstance(data, Mapping):
            return cls()
        below = data.get("below_since")
        busy = data.get("last_busy")
        booting = data.get("booting")
        samples = data.get("boot_samples")
        return cls(
            below_since=float(below) if isinstance(below, int | float) else None,
            last_busy={str(k): float(v) for k, v in (busy or {}).items() if isinstance(v, int | float)}
            if isinstance(busy, Mapping)
            else {},
            booting=tuple(str(b) for b in booting) if isinstance(booting, list) else (),
            boot_samples=tuple(
                float(x) for x in samples if isinstance(x, int | float) and not isinstance(x, bool)
            )[-BOOT_SAMPLES:]
            if isinstance(samples, list)
            else (),
        )


@dataclass(frozen=True)
class DueRun:
    """A scheduled DAG run expected soon, and what it needs of this queue in its first minutes."""

    dag_id: str
    due: float
    """When the run is due (Airflow's `run_after`, epoch seconds)."""
    slots: int
    """Task slots of this queue its recent runs used at once in their first minutes."""
    queue: str = ""


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
    due_runs: Sequence[DueRun] = ()
    """Scheduled runs of unpaused DAGs that use this queue (any horizon; decide picks the near ones)."""


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


def decide(policy: QueuePolicy, obs: Observation, memory: QueueMemory, now: float) -> Decision:
    """One queue, one pass. Pure: the same inputs always give the same Decision."""
    if obs.load is None:
        return Decision(
            "hold", obs.current, None, obs.current, f"read failed: {obs.error or 'no load'}", memory
        )

    present = {n.id for n in obs.nodes}
    last_busy = {k: v for k, v in memory.last_busy.items() if k in present}
    samples = memory.boot_samples
    for node in obs.nodes:
        if node.running > 0:
            # (A sample far above the prior is a node that sat idle behind a lagging load, not a boot.)
            boot = now - node.launched_at
            if node.id in memory.booting and 0 <= boot <= BOOT_SAMPLE_CAP * policy.boot_seconds:
                samples = (*samples, boot)[-BOOT_SAMPLES:]
            last_busy[node.id] = now
    backlog = obs.load > sum(n.running for n in obs.nodes)
    booting = (
        tuple(n.id for n in obs.nodes if n.running == 0 and n.id not in last_busy and not n.cordoned)
        if backlog
        else ()
    )
    learned = QueueMemory(memory.below_since, last_busy, booting, samples)
    want = policy.want(obs.load)
    pre = _prescale(policy, obs, learned, now)
    cordoned = [n.id for n in obs.nodes if n.cordoned]

    if pre is not None and pre[0] > want:
        want, why = pre
        mem = QueueMemory(None, last_busy, booting, samples)
        if want > obs.current:
            return Decision("pre_scale", obs.current, want, want, why, mem, uncordon=tuple(cordoned))
        return Decision(
            "none", obs.current, want, obs.current, f"{why} (held)", mem, uncordon=tuple(cordoned)
        )

    if want >= obs.current:
        mem = QueueMemory(None, last_busy, booting, samples)
        if want > obs.current:
            reason = f"load {obs.load} needs {want} node(s) of {policy.slots_per_node} slots"
            return Decision("scale_out", obs.current, want, want, reason, mem, uncordon=tuple(cordoned))
        reason = "size fits the load" if not cordoned else f"size fits the load; resuming {len(cordoned)}"
        return Decision("none", obs.current, want, obs.current, reason, mem, uncordon=tuple(cordoned))

    below_since = memory.below_since if memory.below_since is not None else now
    mem = QueueMemory(below_since, last_busy, booting, samples)
    if not obs.busy_known:
        reason = "cannot tell which nodes are busy (no Airflow source): never scaling in"
        return Decision("hold", obs.current, want, obs.current, reason, mem)
    waited = now - below_since
    if waited < policy.stabilization_seconds:
        reason = (
            f"want {want} < {obs.current} for {waited:.0f}s of {policy.stabilization_seconds:.0f}s window"
        )
        return Decision("none", obs.current, want, obs.current, reason, mem)

    surplus = obs.current - want
    # Capacity that was asked for but has no instance yet goes first: it costs no victim.
    unlaunched = min(max(obs.current - len(obs.nodes), 0), surplus)
    surplus -= unlaunched

    def idle_for(node: NodeState) -> float:
        return now - max(last_busy.get(node.id, node.launched_at), node.launched_at)

    # Victims in order of least harm: cordoned and empty, idle longest, then fewest running tasks.
    ranked = sorted(
        obs.nodes,
        key=lambda n: (n.running > 0, not (n.cordoned and n.running == 0), -idle_for(n), n.running, n.id),
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
    return Decision(action, obs.current, want, desired, "; ".join(parts), mem, remove, cordon, uncordon)


def _prescale(
    policy: QueuePolicy, obs: Observation, memory: QueueMemory, now: float
) -> tuple[int, str] | None:
    """Nodes wanted for the load plus the scheduled runs due within one boot and one interval."""
    if not policy.prescale or obs.load is None:
        return None
    # The estimate is measured at the first pass after a boot: it includes up to one interval,
    # which covers launching at the first pass after due - lead.
    lead = policy.boot_estimate(memory)
    near = [
        r
        for r in obs.due_runs
        if r.slots > 0 and r.due - lead <= now <= r.due + policy.prescale_grace_seconds
    ]
    if not near:
        return None
    # Before a run is due its tasks are not in the load yet: add them. Once due they may or may not
    # be (the scheduler queues them within seconds): keep the nodes raised for them, but grow no
    # further for them (counting them twice would launch nodes for nothing).
    ahead = sum(r.slots for r in near if r.due > now)
    due = sum(r.slots for r in near if r.due <= now)
    want = max(policy.want(obs.load + ahead), min(obs.current, policy.want(obs.load + ahead + due)))
    first = min(near, key=lambda r: (r.due, r.dag_id))
    clock = time.strftime("%H:%M", time.gmtime(first.due))
    on = f" on {first.queue}" if first.queue else ""
    why = f"pre-scale: {first.dag_id} due {clock}, needs {first.slots} slots{on}"
    if len(near) > 1:
        why += f" (+{len(near) - 1} more run(s), {ahead + due} slots)"
    return want, why


__all__ = [
    "Action",
    "Decision",
    "DueRun",
    "NodeState",
    "Observation",
    "QueueMemory",
    "QueuePolicy",
    "decide",
]
