"""The operations view model: one typed picture of the cluster, its queues and the recent decisions.

`build_view(config, clients)` is the one code path behind `airtasks status [--json]` and the
Airflow plugin's page and API (`airtasks.ops.plugin`): it reads what a scaling pass reads (the
load from each source, each group's size and instances, which node runs which task instances),
adds the scaler's memory (nodes it cordoned, when each node last ran a task), the Swarm's nodes
(live when the Docker API is reachable, else the list the scaler last recorded) and the decision
history (`airtasks.state.history`), and derives each node's state. It decides and changes nothing.

Both build their clients with `airtasks.wiring.build_clients(..., read_only=True)`: the CLI with
its own credentials, the plugin with the token of the user who opened the page. A missing
credential then shows as a problem instead of failing the page.

At scale (hundreds of nodes per queue) each queue carries its nodes counted per state
(`node_counts`), the view can be built for some queues only (`queues=`, the API's `?queue=`), and
its JSON pages the nodes of every queue (`nodes_offset`, `nodes_limit`).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from airtasks.backends import Instance
from airtasks.config import ScalerConfig
from airtasks.errors import AirtasksError, ControlError
from airtasks.scaling.read import QueueRead, read_queues
from airtasks.sources.airflow import RunningTask
from airtasks.state.history import History, HistoryEntry, SwarmNodeRecord
from airtasks.state.memory import GroupMemory
from airtasks.wiring import Clients

NodeStatus = Literal["booting", "idle", "busy", "draining", "down", "unknown"]
STATUSES: tuple[NodeStatus, ...] = ("busy", "idle", "booting", "draining", "down", "unknown")
SwarmSource = Literal["live", "recorded", "none"]

# The backends' lifecycle words (AWS LifecycleState, GCP instance status / current action, Swarm
# task state), lower-cased: a node that is still coming up, or one that is going or gone.
BOOTING = frozenset(
    {
        "pending",
        "pending:wait",
        "pending:proceed",
        "creating",
        "recreating",
        "verifying",
        "provisioning",
        "staging",
        "new",
        "allocated",
        "assigned",
        "accepted",
        "preparing",
        "starting",
    }
)
DOWN = frozenset(
    {
        "terminating",
        "terminating:wait",
        "terminating:proceed",
        "terminated",
        "detaching",
        "detached",
        "standby",
        "deleting",
        "abandoning",
        "stopping",
        "stopped",
        "suspending",
        "suspended",
        "repairing",
        "failed",
        "shutdown",
        "rejected",
        "orphaned",
        "complete",
        "down",
    }
)
DECISIONS_SHOWN = 50
NODES_PAGE = 100
"""Nodes per queue in one page of the API (`?limit=`'s default)."""
WINDOW_STEP = 900.0
MIN_WINDOW = 120.0


@dataclass(frozen=True)
class TaskRef:
    """A running task instance, enough to link to it in the Airflow UI."""

    dag_id: str
    task_id: str
    run_id: str
    map_index: int = -1

    @property
    def label(self) -> str:
        index = f"[{self.map_index}]" if self.map_index >= 0 else ""
        return f"{self.dag_id}.{self.task_id}{index}"

    @classmethod
    def from_running(cls, ti: RunningTask) -> TaskRef:
        if ti.dag_id:
            return cls(ti.dag_id, ti.task_id, ti.run_id, ti.map_index)
        return cls(ti.key, "", "", -1)


@dataclass(frozen=True)
class NodeView:
    id: str
    status: NodeStatus
    running: int | None
    """Task instances of this queue running on it (None: unknown)."""
    tasks: tuple[TaskRef, ...] = ()
    cordoned: bool = False
    """The scaler stopped it taking new tasks (Celery cancel_consumer)."""
    lifecycle: str = ""
    """The backend's own word (InService, Pending, RUNNING, running, ...)."""
    swarm_state: str | None = None
    """ready / down / unknown, as the Swarm sees it (None: no Swarm information)."""
    swarm_availability: str | None = None
    """active / pause / drain."""
    launched_at: float = 0.0
    idle_seconds: float | None = None
    """Since when it ran nothing, as the scaler remembers (None: busy, or unknown)."""

    @property
    def busy(self) -> bool | None:
        return None if self.running is None else self.running > 0


NODE_FIELDS = tuple(f.name for f in fields(NodeView))


@dataclass(frozen=True)
class Point:
    """One history entry as a chart point."""

    t: float
    load: int | None
    size: int | None
    """The group's size after that pass (desired; the size it had when the pass could not act)."""
    want: int | None


@dataclass(frozen=True)
class QueueView:
    queue: str
    group: str
    min_size: int
    max_size: int
    slots_per_node: int
    loads: Mapping[str, int | None]
    """Per source (airflow: queued + running task instances; rabbitmq: ready + unacked messages)."""
    load: int | None
    """What the scaler sizes for: the larger of the sources; None when a read failed."""
    current: int | None
    """The group's size (desired capacity / target size / replicas)."""
    want: int | None
    failed: bool
    error: str
    nodes: tuple[NodeView, ...] = ()
    stray_hosts: tuple[str, ...] = ()
    """Hosts running this queue's tasks that are not instances of its group."""
    series: tuple[Point, ...] = ()
    last_decision: HistoryEntry | None = None

    @property
    def node_counts(self) -> dict[str, int]:
        """How many nodes are in each state (every state, in a fixed order; zeros included)."""
        counts = Counter(n.status for n in self.nodes)
        return {status: counts[status] for status in STATUSES}


@dataclass(frozen=True)
class SwarmNodeView:
    hostname: str
    role: str
    state: str
    availability: str
    queue: str
    """The node's `airtasks.queue` label ('' for the manager)."""
    member_of: str | None
    """The group whose instance it is (None: no group lists it)."""


@dataclass(frozen=True)
class SwarmView:
    source: SwarmSource
    as_of: float | None = None
    nodes: tuple[SwarmNodeView, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class ClusterView:
    generated_at: float
    cluster_name: str | None
    backend: str
    interval_seconds: float
    stabilization_seconds: float
    idle_seconds: float
    window_seconds: float
    queues: tuple[QueueView, ...] = ()
    decisions: tuple[HistoryEntry, ...] = ()
    """The last decisions of every queue (not the periodic samples), newest first."""
    swarm: SwarmView = field(default_factory=lambda: SwarmView("none"))
    history_store: str = "none"
    history_written_at: float | None = None
    history_error: str | None = None
    problems: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        return any(q.failed for q in self.queues)

    @property
    def scaler_stale(self) -> bool:
        """The history is older than the scaler would let it get while it runs."""
        if self.history_store == "none" or not self.queues:
            return False
        if self.history_written_at is None:
            return True
        return self.generated_at - self.history_written_at > self.window_hint

    @property
    def window_hint(self) -> float:
        """How old the history may get while a scaler runs: a sample per minute, plus slack."""
        return 180.0 + 3 * self.interval_seconds

    def to_json(self, *, nodes_offset: int = 0, nodes_limit: int | None = None) -> dict[str, Any]:
        """The view as JSON; each queue's `nodes` from `nodes_offset`, at most `nodes_limit` of them
        (all when None), with `nodes_total` and `node_counts` for the whole group."""
        end = None if nodes_limit is None else nodes_offset + nodes_limit

        def entry(e: HistoryEntry) -> dict[str, Any]:
            return {"queue": e.queue, **e.to_json()}

        def node(n: NodeView) -> dict[str, Any]:
            # Field by field, not dataclasses.asdict: asdict deep-copies every value, and at 2,000
            # nodes with their tasks that was a third of the API's time.
            data = {f: getattr(n, f) for f in NODE_FIELDS}
            data["tasks"] = [
                {"dag_id": t.dag_id, "task_id": t.task_id, "run_id": t.run_id, "map_index": t.map_index}
                | {"label": t.label}
                for t in n.tasks
            ]
            data["busy"] = n.busy
            return data

        def queue(q: QueueView) -> dict[str, Any]:
            return {
                "queue": q.queue,
                "group": q.group,
                "min_size": q.min_size,
                "max_size": q.max_size,
                "slots_per_node": q.slots_per_node,
                "loads": dict(q.loads),
                "load": q.load,
                "current": q.current,
                "want": q.want,
                "failed": q.failed,
                "reason": q.error,
                "node_counts": q.node_counts,
                "nodes_total": len(q.nodes),
                "nodes_offset": nodes_offset,
                "nodes": [node(n) for n in q.nodes[nodes_offset:end]],
                "stray_hosts": list(q.stray_hosts),
                "series": [asdict(p) for p in q.series],
                "last_decision": entry(q.last_decision) if q.last_decision else None,
            }

        return {
            "generated_at": round(self.generated_at, 3),
            "cluster_name": self.cluster_name,
            "backend": self.backend,
            "interval_seconds": self.interval_seconds,
            "stabilization_seconds": self.stabilization_seconds,
            "idle_seconds": self.idle_seconds,
            "window_seconds": self.window_seconds,
            "queues": [queue(q) for q in self.queues],
            "decisions": [entry(e) for e in self.decisions],
            "swarm": {
                "source": self.swarm.source,
                "as_of": self.swarm.as_of,
                "nodes": [asdict(n) for n in self.swarm.nodes],
                "error": self.swarm.error,
            },
            "history": {
                "store": self.history_store,
                "written_at": self.history_written_at,
                "error": self.history_error,
                "stale": self.scaler_stale,
            },
            "problems": list(self.problems),
        }


class UnknownQueue(ValueError):
    """A queue asked for by name is not in the scaler config."""


def empty_view(problem: str, now: float | None = None) -> ClusterView:
    """What the page shows when there is no usable scaler config."""
    return ClusterView(
        generated_at=time.time() if now is None else now,
        cluster_name=None,
        backend="",
        interval_seconds=0.0,
        stabilization_seconds=0.0,
        idle_seconds=0.0,
        window_seconds=0.0,
        problems=(problem,),
    )


# ---------------------------------------------------------------------------------------------
# Deriving node states (pure)
# ---------------------------------------------------------------------------------------------


def node_status(
    instance: Instance,
    running: int | None,
    cordoned: bool,
    swarm: SwarmNodeRecord | None,
    swarm_known: bool,
) -> NodeStatus:
    """booting, idle, busy, draining, down or unknown, from what the backend, the Swarm, the
    scaler's memory and Airflow say. `swarm_known`: a Swarm node list exists to look it up in."""
    word = instance.state.lower()
    if word in DOWN or (swarm is not None and swarm.state == "down"):
        return "down"
    if word in BOOTING or (swarm_known and swarm is None):
        return "booting"  # not in service yet, or not (yet) joined to the Swarm
    if cordoned or (swarm is not None and swarm.availability == "drain"):
        return "draining"
    if running is None:
        return "unknown"
    return "busy" if running > 0 else "idle"


def _series(entries: Sequence[HistoryEntry], since: float) -> tuple[Point, ...]:
    return tuple(
        Point(e.t, e.load, e.desired if e.desired is not None else e.current, e.want)
        for e in entries
        if e.t >= since
    )


def _queue_view(
    config: ScalerConfig,
    read: QueueRead,
    *,
    memory: GroupMemory,
    tasks: Mapping[str, list[TaskRef]],
    swarm: Mapping[str, SwarmNodeRecord] | None,
    history: History,
    now: float,
    since: float,
) -> QueueView:
    q = config.queues[read.queue]
    load = read.load
    nodes = []
    for inst in read.instances or []:
        running = None if read.busy is None else read.busy.get(inst.id, 0)
        cordoned = inst.id in memory.cordoned
        record = swarm.get(inst.id.split(".", 1)[0].lower()) if swarm is not None else None
        if config.backend == "swarm":  # replicas are containers, not Swarm nodes
            record, swarm_known = None, False
        else:
            swarm_known = swarm is not None
        last_busy = memory.queue.last_busy.get(inst.id)
        status = node_status(inst, running, cordoned, record, swarm_known)
        idle = None
        if running == 0 and status in {"idle", "draining"}:
            idle = max(now - max(last_busy or inst.launched_at, inst.launched_at), 0.0)
        nodes.append(
            NodeView(
                id=inst.id,
                status=status,
                running=running,
                tasks=tuple(tasks.get(inst.id, ())),
                cordoned=cordoned,
                lifecycle=inst.state,
                swarm_state=record.state if record else None,
                swarm_availability=record.availability if record else None,
                launched_at=inst.launched_at,
                idle_seconds=idle,
            )
        )
    entries = history.entries(read.queue)
    decisions = [e for e in entries if e.kind == "decision"]
    return QueueView(
        queue=read.queue,
        group=read.group,
        min_size=q.min_size,
        max_size=q.max_size,
        slots_per_node=q.slots_per_node,
        loads=dict(read.loads),
        load=load,
        current=read.size,
        want=config.policy(read.queue).want(load) if load is not None else None,
        failed=load is None,
        error="; ".join(read.errors),
        nodes=tuple(nodes),
        stray_hosts=tuple(read.stray_hosts),
        series=_series(entries, since),
        last_decision=decisions[-1] if decisions else None,
    )


# ---------------------------------------------------------------------------------------------
# The builder (I/O through the clients `airtasks.wiring` builds)
# ---------------------------------------------------------------------------------------------


def build_view(
    config: ScalerConfig,
    clients: Clients,
    *,
    now: float | None = None,
    window_seconds: float | None = None,
    problems: Sequence[str] = (),
    queues: Sequence[str] | None = None,
) -> ClusterView:
    """Read everything once and put it together, for every queue or for `queues`. Never raises for
    a failed read: what could not be read shows as failed (a queue) or as a problem (the cluster).
    An unknown queue name raises UnknownQueue before anything is read."""
    now = clients.clock() if now is None else now
    issues = [*clients.problems, *problems]
    unknown = [q for q in queues or () if q not in config.queues]
    if unknown:
        raise UnknownQueue(
            f"no queue named {', '.join(unknown)} in the scaler config; "
            f"ask for one of its queues: {', '.join(config.queues)}"
        )

    # Which node runs what comes from one read of the running task instances, below, rather
    # than a second one inside read_queues: at scale that read is the most pages. The page does
    # not show interruption notices, and lists the Swarm's nodes itself (_swarm): no notices read.
    reads = read_queues(
        config, clients, busy_for="none", queues=None if queues is None else list(queues), notices=False
    )
    names = [r.queue for r in reads]

    tasks: dict[str, dict[str, list[TaskRef]]] = {q: {} for q in names}
    airflow_up = any(r.loads.get("airflow") is not None for r in reads)
    if clients.airflow is not None and airflow_up:
        try:
            running = clients.airflow.running(names)
        except AirtasksError as exc:
            for r in reads:
                r.errors.append(str(exc))
        else:
            busy: dict[str, Counter[str]] = {q: Counter() for q in names}
            for ti in running:
                tasks.setdefault(ti.queue, {}).setdefault(ti.host, []).append(TaskRef.from_running(ti))
                if ti.queue in busy:
                    busy[ti.queue][ti.host] += 1
            for r in reads:
                r.busy = busy[r.queue]

    try:
        memory = clients.memory.load()
    except AirtasksError as exc:
        memory = {}
        issues.append(f"scaler memory: {exc}")

    history, history_error, store_name = History(), None, "none"
    if clients.history is not None:
        store_name = clients.history.name
        try:
            history = clients.history.load()
        except AirtasksError as exc:
            history_error = str(exc)

    swarm_view, swarm_nodes = _swarm(config, clients, history, reads, now)
    window = chart_window(config, history, names, now) if window_seconds is None else window_seconds

    views = tuple(
        _queue_view(
            config,
            r,
            memory=memory.get(r.group, GroupMemory()),
            tasks=tasks.get(r.queue, {}),
            swarm=swarm_nodes,
            history=history,
            now=now,
            since=now - window,
        )
        for r in reads
    )
    decisions = sorted(
        (e for q in names for e in history.entries(q) if e.kind == "decision"),
        key=lambda e: e.t,
        reverse=True,
    )[:DECISIONS_SHOWN]
    return ClusterView(
        generated_at=now,
        cluster_name=config.cluster_name,
        backend=config.backend,
        interval_seconds=config.interval_seconds,
        stabilization_seconds=config.stabilization_seconds,
        idle_seconds=config.idle_seconds,
        window_seconds=window,
        queues=views,
        decisions=tuple(decisions),
        swarm=swarm_view,
        history_store=store_name,
        history_written_at=history.written_at,
        history_error=history_error,
        problems=tuple(issues),
    )


def chart_window(config: ScalerConfig, history: History, queues: Sequence[str], now: float) -> float:
    """What the history covers (a little more), rounded up to whole minutes below 15 min and to
    quarters of an hour above, at least 2 min, at most `history.max_age_seconds`: a fresh cluster
    gets a readable chart, not six empty hours."""
    oldest = min((e.t for q in queues for e in history.entries(q)), default=now)
    span = max(now - oldest, 0.0) * 1.25
    step = 60.0 if span <= WINDOW_STEP else WINDOW_STEP
    rounded = math.ceil(max(span, 1.0) / step) * step
    return float(min(config.history_config.max_age_seconds, max(MIN_WINDOW, rounded)))


def _swarm(
    config: ScalerConfig, clients: Clients, history: History, reads: Sequence[QueueRead], now: float
) -> tuple[SwarmView, dict[str, SwarmNodeRecord] | None]:
    """The Swarm's nodes, live when the Docker API answers, else as the scaler last recorded them."""
    records: list[SwarmNodeRecord] | None = None
    source: SwarmSource = "none"
    as_of: float | None = None
    error: str | None = None
    if clients.swarm is not None:
        try:
            records = [SwarmNodeRecord.from_node(n) for n in clients.swarm.nodes()]
            source, as_of = "live", now
        except ControlError as exc:
            error = str(exc)
    if records is None and history.swarm is not None:
        records = list(history.swarm.nodes)
        source, as_of = "recorded", history.swarm.t
    if records is None:
        return SwarmView("none", error=error), None
    members = {i.id: r.queue for r in reads for i in r.instances or []}
    by_id = {rec.hostname.split(".", 1)[0].lower(): rec for rec in records}
    nodes = tuple(
        SwarmNodeView(
            rec.hostname,
            rec.role,
            rec.state,
            rec.availability,
            rec.queue,
            members.get(key),
        )
        for key, rec in sorted(by_id.items(), key=lambda kv: (kv[1].role != "manager", kv[1].queue, kv[0]))
    )
    return SwarmView(source, as_of, nodes, error), by_id


__all__ = [
    "NODES_PAGE",
    "STATUSES",
    "ClusterView",
    "NodeStatus",
    "NodeView",
    "Point",
    "QueueView",
    "SwarmNodeView",
    "SwarmView",
    "TaskRef",
    "UnknownQueue",
    "build_view",
    "chart_window",
    "empty_view",
    "node_status",
]
