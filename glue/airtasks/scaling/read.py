"""The reads of a pass: load per source, group sizes and instances, busy nodes.

Their number grows with queues and pages, never with nodes (docs/design.md, "At scale"): one
count per queue, one batched read of all groups (`backends.read_groups`), and the node-level read
(which node runs which task instances, pages of 100) only for the queues whose group may shrink,
has a node with an interruption notice, or has a young node whose boot sample is pending; a queue
that packs reads it every pass, and one that learns run times whenever its group may grow, with
the keys of its queued task instances (up to `QUEUED_KEYS_LIMIT`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from airtasks.backends import Instance, read_groups
from airtasks.config import ScalerConfig
from airtasks.control.docker_swarm import SwarmNode
from airtasks.errors import BackendError, ControlError, SourceReadError
from airtasks.sources.airflow import RunningTask

INTERRUPTED_LABEL = "airtasks.interrupted"
"""Set by the spot watcher on a node that got an interruption notice: the deadline, epoch seconds."""
NOTICE_QUEUE_PREFIX = INTERRUPTED_LABEL + "."
"""The spot watcher also declares an empty queue `airtasks.interrupted.<instance>.<deadline>` on
the broker: the pass's one listing of the broker's queues sees it at once, where the engine label
reaches the managers only with the node's next description update (every 20 s)."""

QUEUED_KEYS_LIMIT = 500
"""A queue that learns run times reads its queued tasks' keys only up to this many (five pages);
with more queued, it scales on the count alone."""

if TYPE_CHECKING:
    from airtasks.wiring import Clients

BusyFor = Literal["all", "shrinking", "none"]
"""Which queues' busy nodes to read: all, those whose group may shrink, none (the caller reads them)."""


@dataclass
class QueueRead:
    queue: str
    group: str
    loads: dict[str, int | None] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    busy: Counter[str] | None = None
    """host -> running task instances of this queue; None when unknown or not read."""
    busy_skipped: bool = False
    """Busy nodes were not read: the load needs every node of the group, so none may go, and no
    node's boot sample was pending."""
    size: int | None = None
    instances: list[Instance] | None = None
    interrupted: dict[str, float] = field(default_factory=dict)
    """Instance id -> when the cloud reclaims it, for instances with an interruption notice."""
    running: list[RunningTask] | None = None
    """With an interrupted node, or for a queue that learns run times and may grow: the running
    task instances that `busy` counts, in Airflow's order, so that the scaler clears exactly the
    ones the decision picked."""
    queued_keys: list[str] | None = None
    """For a queue that learns run times and may grow: its queued tasks' keys, in queued order;
    None when not read or more than `QUEUED_KEYS_LIMIT` are queued."""

    def running_by_host(self) -> dict[str, list[RunningTask]]:
        """`running` per host, each in Airflow's order: the order decide() indexes a node's tasks
        in (`NodeState.remaining`, `Decision.restart`)."""
        out: dict[str, list[RunningTask]] = {}
        for task in self.running or []:
            out.setdefault(task.host, []).append(task)
        return out

    @property
    def load(self) -> int | None:
        if self.errors or not self.loads or any(v is None for v in self.loads.values()):
            return None
        return max(v for v in self.loads.values() if v is not None)

    @property
    def stray_hosts(self) -> list[str]:
        """Hosts running this queue's tasks that are not instances of its group."""
        if self.busy is None or self.instances is None:
            return []
        ids = {i.id for i in self.instances}
        return sorted(h or "(no hostname)" for h, n in self.busy.items() if n and h not in ids)


def size_gap(config: ScalerConfig, r: QueueRead) -> int | None:
    """Nodes the load wants beyond the group's size (negative: the group may shrink, what `decide`
    scales in from; positive: it may grow, where learnt run times may hold some back); None when
    the load or the size is unknown."""
    load = r.load
    if load is None or r.size is None:
        return None
    return config.policy(r.queue).want(load) - r.size


def read_queues(
    config: ScalerConfig,
    clients: Clients,
    *,
    busy_for: BusyFor = "all",
    queues: list[str] | None = None,
    notices: bool = True,
    boot_pending: Callable[[QueueRead], bool] | None = None,
) -> list[QueueRead]:
    """Per queue (all configured, or `queues`): the load from each source, the group's size and
    instances, which instance runs how many of its tasks (see `busy_for`), and, with `notices`,
    which instances got an interruption notice (one listing of the Swarm's nodes). A failed read
    is recorded on the queues it concerns, never raised.

    With busy_for="shrinking", `boot_pending` says, for a queue read so far without error whose
    group may not shrink, whether one of its nodes would give a boot sample if a pass saw its
    first task (the scaler asks `decide.boot_sample_pending`): that queue's busy nodes are read
    too, as are those of a queue that packs (`pack`), and, with the keys of its queued tasks, of
    a queue that learns run times (`learn_durations`) whose group may grow."""
    names = list(config.queues) if queues is None else list(queues)
    reads = {q: QueueRead(q, config.queues[q].group) for q in names}

    airflow_down = False
    if clients.airflow is not None:
        down: str | None = None
        for q in names:
            if down is not None:
                reads[q].loads["airflow"] = None
                reads[q].errors.append(down)
                continue
            try:
                reads[q].loads["airflow"] = clients.airflow.count(q)
            except SourceReadError as exc:
                reads[q].loads["airflow"] = None
                reads[q].errors.append(str(exc))
                down = str(exc)
        airflow_down = down is not None

    deadlines: dict[str, float] = {}
    if clients.rabbitmq is not None:
        try:
            broker_queues = clients.rabbitmq.queues()
        except SourceReadError as exc:
            for r in reads.values():
                r.loads["rabbitmq"] = None
                r.errors.append(str(exc))
        else:
            for q in names:
                reads[q].loads["rabbitmq"] = broker_queues.get(q, 0)
            deadlines = notice_queue_deadlines(broker_queues)

    groups = read_groups(clients.backend, list(dict.fromkeys(r.group for r in reads.values())))
    for r in reads.values():
        found = groups[r.group]
        if isinstance(found, BackendError):
            r.errors.append(str(found))
        else:
            r.size, r.instances = found[0], list(found[1])

    if notices and any(r.instances for r in reads.values()):
        if clients.swarm is not None:
            # The watcher's engine label reaches the manager with the node's description; the
            # label copy makes it a node label too. A Swarm that does not answer only hides them.
            try:
                labelled = interruption_deadlines(clients.swarm.nodes())
            except ControlError:
                labelled = {}
            for iid, deadline in labelled.items():
                _keep_earliest(deadlines, iid, deadline)
        for r in reads.values():
            r.interrupted = {i.id: deadlines[i.id] for i in r.instances or [] if i.id in deadlines}

    if clients.airflow is not None and not airflow_down and busy_for != "none":
        # An interrupted node's tasks decide what to restart: its queue reads them too. So does a
        # queue with a young node whose boot is not learned yet: a pass that skips the read counts
        # the node busy, its first task goes unseen, and the pre-scale lead keeps the default boot.
        # Such a queue joins the same calls, so the pass never makes more than a full read would.
        # A packing queue is read every pass: packing acts only on a pass that saw its nodes.
        # A queue that learns run times and may grow weighs its running tasks' ends against a boot.
        gap = {q: size_gap(config, reads[q]) or 0 for q in names}
        learning = [q for q in names if config.queues[q].learn_durations and gap[q] > 0]
        wanted = [
            q
            for q in names
            if busy_for == "all"
            or config.queues[q].pack
            or q in learning
            or gap[q] < 0
            or reads[q].interrupted
            or (boot_pending is not None and not reads[q].errors and boot_pending(reads[q]))
        ]
        for q in names:
            reads[q].busy_skipped = q not in wanted and not reads[q].errors
        # A queue with an interrupted node keeps the task instances themselves (what to restart),
        # as does one that learns run times (when each started), the others only their count per
        # host: each task instance is read once either way.
        detailed = [q for q in wanted if reads[q].interrupted or q in learning]
        counted = [q for q in wanted if q not in detailed]
        try:
            for q in learning:
                reads[q].queued_keys = clients.airflow.queued_keys(q, QUEUED_KEYS_LIMIT)
            if detailed:
                tasks = clients.airflow.running(detailed)
                for q in detailed:
                    reads[q].running = [t for t in tasks if t.queue == q]
                    reads[q].busy = Counter(t.host for t in reads[q].running or [])
            if counted:
                busy = clients.airflow.busy(counted)
                for q in counted:
                    reads[q].busy = busy.get(q, Counter())
        except SourceReadError as exc:
            for q in wanted:
                reads[q].errors.append(str(exc))
    return [reads[q] for q in names]


def notice_queue_deadlines(queues: Iterable[str]) -> dict[str, float]:
    """Instance id -> deadline, from the watcher's `airtasks.interrupted.<instance>.<deadline>`
    queues (the earliest per instance; a name that does not parse is ignored)."""
    out: dict[str, float] = {}
    for name in queues:
        if not name.startswith(NOTICE_QUEUE_PREFIX):
            continue
        instance, _, value = name[len(NOTICE_QUEUE_PREFIX) :].rpartition(".")
        try:
            deadline = float(value)
        except ValueError:
            continue
        if instance and math.isfinite(deadline):
            _keep_earliest(out, instance.lower(), deadline)
    return out


def interruption_deadlines(nodes: list[SwarmNode]) -> dict[str, float]:
    """Instance id -> deadline, from `airtasks.interrupted` in a node's engine or node labels
    (the earlier if both; a value that is not a number is ignored)."""
    out: dict[str, float] = {}
    for node in nodes:
        for labels in (node.engine_labels, node.labels):
            try:
                deadline = float(labels[INTERRUPTED_LABEL])
            except (KeyError, ValueError):
                continue
            if math.isfinite(deadline):
                _keep_earliest(out, node.instance_id, deadline)
    return out


def _keep_earliest(deadlines: dict[str, float], instance: str, deadline: float) -> None:
    """Record `deadline` for `instance` unless an earlier one is already known: every source of
    notices (broker queue, engine label, node label) agrees to act on the soonest."""
    deadlines[instance] = min(deadline, deadlines.get(instance, deadline))


__all__ = [
    "INTERRUPTED_LABEL",
    "QUEUED_KEYS_LIMIT",
    "BusyFor",
    "QueueRead",
    "interruption_deadlines",
    "read_queues",
    "size_gap",
]
