"""One scaling pass: read per queue -> decide -> act -> report (docs/design.md, "Scaling: one pass").

The policy is `airtasks.decide.decide` (pure); this module does the I/O around it:

1. read: load per queue from each configured source (Airflow queued + running, RabbitMQ ready +
   unacked; the larger counts), the group's size and instances, which instance runs how many
   tasks (task instance hostname = instance id). Any failed read holds that queue.
2. decide with the memory of the previous pass (window start, last busy time per node, nodes
   this scaler cordoned), kept in a `MemoryStore`.
3. act: uncordon / cordon (Celery cancel_consumer), grow at once; to remove an idle node: cordon
   it, re-check it is still idle (Airflow + the worker's own active/reserved list), drain it in
   the Swarm, then terminate exactly that instance (the group shrinks by one).
4. Swarm hygiene: copy engine labels to node labels, remove Down nodes whose instance is gone.
5. one log line per queue and a structured report; the decisions go to the history ring
   (`airtasks.history`) that the operations view reads.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from airtasks.backends import GroupBackend, Instance, make_backend, read_group
from airtasks.config import ScalerConfig, broker_url, source_credentials
from airtasks.control import CeleryControl, WorkerControl
from airtasks.decide import Action, Decision, NodeState, Observation, decide
from airtasks.errors import AirtasksError, BackendError, ConfigError, ControlError, SourceReadError
from airtasks.history import HistoryRecorder, SwarmNodeRecord, make_store
from airtasks.memory import (
    AirflowVariableMemoryStore,
    FileMemoryStore,
    GroupMemory,
    InProcessMemoryStore,
    MemoryStore,
)
from airtasks.sources.airflow import AirflowSource
from airtasks.sources.rabbitmq import RabbitMQSource
from airtasks.swarm import SwarmManager, SwarmNode

LOG = logging.getLogger("airtasks.scaling")


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


@dataclass
class NodeReport:
    id: str
    running: int | None
    """Task instances running on it (None: unknown)."""
    cordoned: bool
    state: str
    launched_at: float


@dataclass
class QueueReport:
    queue: str
    group: str
    load: int | None
    current: int | None
    want: int | None
    desired: int | None
    action: Action
    reason: str
    removed: list[str] = field(default_factory=list)
    cordoned: list[str] = field(default_factory=list)
    uncordoned: list[str] = field(default_factory=list)
    loads: dict[str, int | None] = field(default_factory=dict)
    """Per source: what it read (None: failed)."""
    failed: bool = False
    """Held (or an action failed) because a read or a call failed."""
    nodes: list[NodeReport] = field(default_factory=list)

    def log_line(self) -> str:
        def n(value: int | None) -> str:
            return "?" if value is None else str(value)

        return (
            f"queue={self.queue} load={n(self.load)} current={n(self.current)} want={n(self.want)} "
            f"action={self.action} reason={self.reason}"
        )

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("nodes")
        return data


@dataclass
class SwarmReport:
    removed_nodes: list[str] = field(default_factory=list)
    labelled_nodes: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass
class PassReport:
    queues: list[QueueReport]
    swarm: SwarmReport
    duration_ms: float
    dry_run: bool = False

    @property
    def exit_code(self) -> int:
        """0: every queue decided; 2: a queue held because a read (or a call) failed."""
        return 2 if any(q.failed for q in self.queues) else 0

    def to_json(self) -> dict[str, Any]:
        return {
            "queues": [q.to_json() for q in self.queues],
            "swarm": asdict(self.swarm),
            "duration_ms": round(self.duration_ms, 1),
            "dry_run": self.dry_run,
        }


# ---------------------------------------------------------------------------------------------
# Reads
# ---------------------------------------------------------------------------------------------


@dataclass
class QueueRead:
    queue: str
    group: str
    loads: dict[str, int | None] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    busy: Counter[str] | None = None
    """host -> running task instances of this queue; None when unknown."""
    size: int | None = None
    instances: list[Instance] | None = None

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


class Scaler:
    """Reads, decides, acts. Built by `build_scaler` from a config; tests pass fakes."""

    def __init__(
        self,
        config: ScalerConfig,
        backend: GroupBackend,
        *,
        airflow: AirflowSource | None = None,
        rabbitmq: RabbitMQSource | None = None,
        control: WorkerControl | None = None,
        swarm: SwarmManager | None = None,
        memory: MemoryStore | None = None,
        history: HistoryRecorder | None = None,
        clock: Callable[[], float] = time.time,
        logger: logging.Logger = LOG,
    ) -> None:
        self.config = config
        self.backend = backend
        self.airflow = airflow
        self.rabbitmq = rabbitmq
        self.control = control
        self.swarm = swarm
        self.memory = memory or InProcessMemoryStore()
        self.history = history
        self.clock = clock
        self.log = logger
        self._dry_memory: dict[str, GroupMemory] | None = None

    # -- read ----------------------------------------------------------------------------------

    def read(self) -> list[QueueRead]:
        names = list(self.config.queues)
        reads = {q: QueueRead(q, self.config.queues[q].group) for q in names}

        if self.airflow is not None:
            down: str | None = None
            for q in names:
                if down is not None:
                    reads[q].loads["airflow"] = None
                    reads[q].errors.append(down)
                    continue
                try:
                    reads[q].loads["airflow"] = self.airflow.count(q)
                except SourceReadError as exc:
                    reads[q].loads["airflow"] = None
                    reads[q].errors.append(str(exc))
                    down = str(exc)
            if down is None:
                try:
                    busy = self.airflow.busy(names)
                except SourceReadError as exc:
                    for r in reads.values():
                        r.errors.append(str(exc))
                else:
                    for q in names:
                        reads[q].busy = busy.get(q, Counter())

        if self.rabbitmq is not None:
            try:
                depths = self.rabbitmq.depths(names)
            except SourceReadError as exc:
                for r in reads.values():
                    r.loads["rabbitmq"] = None
                    r.errors.append(str(exc))
            else:
                for q in names:
                    reads[q].loads["rabbitmq"] = depths[q]

        for r in reads.values():
            try:
                r.size, r.instances = read_group(self.backend, r.group)
            except BackendError as exc:
                r.errors.append(str(exc))
        return [reads[q] for q in names]

    def _load_memory(self, dry_run: bool) -> dict[str, GroupMemory]:
        if dry_run and self._dry_memory is not None:
            return dict(self._dry_memory)
        return self.memory.load()

    # -- the pass ------------------------------------------------------------------------------

    def run_pass(self, dry_run: bool = False) -> PassReport:
        started = time.monotonic()
        now = self.clock()
        reads = self.read()
        memory_error: str | None = None
        every_queue_held = all(r.errors for r in reads)
        try:
            # Nothing to decide if every queue holds already: do not wait on the store as well.
            memory = {} if every_queue_held else self._load_memory(dry_run)
        except SourceReadError as exc:
            memory, memory_error = {}, str(exc)
        new_memory = dict(memory)

        reports = []
        for r in reads:
            if memory_error is not None:
                r.errors.append(memory_error)
            report, kept = self._queue(r, memory.get(r.group, GroupMemory()), now, dry_run)
            if kept is not None:
                new_memory[r.group] = kept
            self.log.info(report.log_line())
            reports.append(report)

        if memory_error is None and not every_queue_held:
            if dry_run:
                self._dry_memory = new_memory
            else:
                try:
                    self.memory.save(new_memory)
                except AirtasksError as exc:
                    self.log.warning("memory: could not save (%s); the next pass starts a fresh window", exc)

        swarm = self._swarm_hygiene(reads, dry_run)
        if self.history is not None and not dry_run:
            airflow_down = self.airflow is not None and all(r.loads.get("airflow") is None for r in reads)
            if not (airflow_down and self.history.store.name == "airflow"):
                # (The history lives in that Airflow: a pass that found it down does not wait on it twice.)
                self.history.record(reports, now, self._swarm_records())
        return PassReport(reports, swarm, (time.monotonic() - started) * 1000.0, dry_run)

    def _swarm_records(self) -> list[SwarmNodeRecord] | None:
        """The Swarm's nodes for the history (None: no Swarm configured, or it did not answer)."""
        if self.swarm is None:
            return None
        try:
            return [SwarmNodeRecord.from_node(n) for n in self.swarm.nodes()]
        except ControlError:
            return None

    def _observe(self, r: QueueRead, gm: GroupMemory) -> tuple[Observation, str | None]:
        """The Observation for decide, and a reason that overrides a 'never scale in' hold."""
        nodes = tuple(
            NodeState(
                id=i.id,
                running=(r.busy or Counter()).get(i.id, 0),
                launched_at=i.launched_at,
                cordoned=i.id in gm.cordoned,
            )
            for i in (r.instances or [])
        )
        why_unknown: str | None = None
        if self.airflow is None:
            why_unknown = "no Airflow source tells which nodes are busy: never scaling in"
        elif r.stray_hosts:
            why_unknown = (
                f"task(s) running on {', '.join(r.stray_hosts)}, not an instance of {r.group} "
                "(worker hostname must be the instance id): never scaling in"
            )
        elif self.control is None and self.swarm is None:
            why_unknown = (
                "no way to stop a node taking tasks (set AIRTASKS_BROKER_URL or sources.rabbitmq for Celery "
                "control, or AIRTASKS_DOCKER_URL for Swarm drain): never scaling in"
            )
        error = "; ".join(r.errors) if r.errors else None
        obs = Observation(
            load=r.load if error is None else None,
            current=r.size if r.size is not None else 0,
            nodes=nodes,
            busy_known=why_unknown is None,
            error=error,
        )
        return obs, why_unknown

    def _queue(
        self, r: QueueRead, gm: GroupMemory, now: float, dry_run: bool
    ) -> tuple[QueueReport, GroupMemory | None]:
        policy = self.config.policy(r.queue)
        obs, why_unknown = self._observe(r, gm)
        d = decide(policy, obs, gm.queue, now)
        reason = d.reason
        if d.action == "hold" and obs.load is not None and why_unknown is not None:
            reason = why_unknown
        report = QueueReport(
            queue=r.queue,
            group=r.group,
            load=obs.load,
            current=r.size,
            want=d.want,
            desired=d.desired if r.size is not None else None,
            action=d.action,
            reason=reason,
            loads=dict(r.loads),
            failed=obs.load is None,
            nodes=_node_reports(r, obs),
        )
        if obs.load is None:
            return report, None
        present = {n.id for n in obs.nodes}
        cordoned = set(gm.cordoned) & present
        if dry_run:
            report.cordoned = list(d.cordon)
            report.uncordoned = list(d.uncordon)
            report.removed = list(d.remove)
            report.reason = f"{report.reason} (dry run)"
            cordoned = (cordoned | set(d.cordon)) - set(d.uncordon) - set(d.remove)
            return report, GroupMemory(d.memory, frozenset(cordoned))
        notes: list[str] = []
        try:
            self._act(r, d, cordoned, report, notes)
        except (BackendError, ControlError) as exc:
            report.failed = True
            notes.append(f"failed: {exc}")
        if notes:
            report.reason = f"{report.reason}; {'; '.join(notes)}"
        cordoned -= set(report.removed)
        return report, GroupMemory(d.memory, frozenset(cordoned))

    # -- act -----------------------------------------------------------------------------------

    def _act(
        self, r: QueueRead, d: Decision, cordoned: set[str], report: QueueReport, notes: list[str]
    ) -> None:
        assert r.size is not None
        for node_id in d.uncordon:
            if self.control is not None:
                try:
                    self.control.uncordon(node_id, r.queue)
                except ControlError as exc:
                    notes.append(str(exc))
                    continue
            cordoned.discard(node_id)
            report.uncordoned.append(node_id)
        for node_id in d.cordon:
            if self.control is None:
                continue
            try:
                answered = self.control.cordon(node_id, r.queue)
            except ControlError as exc:
                notes.append(str(exc))
                continue
            if answered:
                cordoned.add(node_id)
                report.cordoned.append(node_id)
            else:
                notes.append(f"{node_id}: no worker answered the cordon")

        if d.action == "scale_out":
            self.backend.set_size(r.group, d.desired)
            return

        kept = self._remove(r, d.remove, cordoned, report, notes)
        target = d.desired + kept
        after = r.size - len(report.removed)
        if target < after:  # capacity that was asked for but has no instance yet
            self.backend.set_size(r.group, target)
        report.desired = min(target, after)
        if d.action == "scale_in" and report.desired >= r.size:
            report.action = "none"

    def _remove(
        self,
        r: QueueRead,
        victims: tuple[str, ...],
        cordoned: set[str],
        report: QueueReport,
        notes: list[str],
    ) -> int:
        """Cordon, re-check, drain, terminate. Returns how many victims were kept after all."""
        if not victims:
            return 0
        ready: list[str] = []
        answered: set[str] = set()
        for node_id in victims:
            if self.control is not None:
                try:
                    if self.control.cordon(node_id, r.queue):
                        answered.add(node_id)
                except ControlError as exc:
                    notes.append(f"kept {node_id}: cannot stop it taking tasks ({exc})")
                    continue
                cordoned.add(node_id)
            ready.append(node_id)

        # Re-check after the intake stopped: Airflow's running list, then the worker's own view.
        if ready and self.airflow is not None:
            try:
                busy = self.airflow.busy([r.queue]).get(r.queue, Counter())
            except SourceReadError as exc:
                notes.append(f"kept {', '.join(ready)}: re-check failed ({exc})")
                report.failed = True
                return len(victims)
            for node_id in list(ready):
                if busy.get(node_id, 0):
                    ready.remove(node_id)
                    notes.append(f"kept {node_id}: took a task meanwhile")
        if ready and self.control is not None:
            # A node whose worker did not answer the cordon runs no worker (booting, or gone): the
            # Airflow re-check is all there is to ask.
            for node_id in [n for n in ready if n in answered]:
                try:
                    in_flight = self.control.in_flight(node_id)
                except ControlError as exc:
                    ready.remove(node_id)
                    notes.append(f"kept {node_id}: re-check failed ({exc})")
                    continue
                if in_flight:
                    ready.remove(node_id)
                    notes.append(f"kept {node_id}: its worker holds {in_flight} task(s)")

        for node_id in ready:
            if self.swarm is not None:
                try:
                    if self.swarm.drain(node_id):
                        wait = self.config.swarm.drain_wait_seconds if self.config.swarm else 0.0
                        if not self.swarm.wait_drained(node_id, wait):
                            notes.append(f"{node_id}: Swarm tasks still stopping after {wait:.0f}s")
                except ControlError as exc:
                    notes.append(f"{node_id}: drain failed ({exc}); terminating anyway, it runs no task")
            try:
                self.backend.remove(r.group, node_id)
            except BackendError as exc:
                notes.append(f"kept {node_id}: {exc}")
                report.failed = True
                continue
            report.removed.append(node_id)
            cordoned.discard(node_id)
        return len(victims) - len(report.removed)

    # -- Swarm hygiene -------------------------------------------------------------------------

    def _swarm_hygiene(self, reads: list[QueueRead], dry_run: bool) -> SwarmReport:
        out = SwarmReport()
        if self.swarm is None or self.config.swarm is None:
            return out
        try:
            if self.config.swarm.copy_labels and not dry_run:
                out.labelled_nodes = self.swarm.copy_labels()
            if self.config.swarm.remove_down_nodes:
                if any(r.instances is None for r in reads):
                    return out  # a group could not be listed: cannot tell which instances are gone
                known = {i.id for r in reads for i in r.instances or []}

                def gone(node: SwarmNode) -> bool:
                    return node.instance_id not in known

                if dry_run:
                    out.removed_nodes = [
                        n.hostname
                        for n in self.swarm.nodes()
                        if n.role == "worker" and n.state == "down" and gone(n)
                    ]
                else:
                    out.removed_nodes = self.swarm.remove_down_nodes(gone)
        except ControlError as exc:
            out.error = str(exc)
            self.log.warning("%s", exc)
        if out.removed_nodes:
            self.log.info("swarm: removed down nodes %s", ", ".join(out.removed_nodes))
        return out

    # -- status --------------------------------------------------------------------------------

    def status(self) -> list[QueueReport]:
        """What a pass would read, per queue, without deciding or acting."""
        reads = self.read()
        try:
            memory = self.memory.load()
        except SourceReadError:
            memory = {}
        out = []
        for r in reads:
            obs, _ = self._observe(r, memory.get(r.group, GroupMemory()))
            policy = self.config.policy(r.queue)
            out.append(
                QueueReport(
                    queue=r.queue,
                    group=r.group,
                    load=obs.load,
                    current=r.size,
                    want=policy.want(obs.load) if obs.load is not None else None,
                    desired=r.size,
                    action="hold" if obs.load is None else "none",
                    reason=obs.error or "",
                    loads=dict(r.loads),
                    failed=obs.load is None,
                    nodes=_node_reports(r, obs),
                )
            )
        return out

    def close(self) -> None:
        for part in (self.airflow, self.rabbitmq, self.control):
            closer = getattr(part, "close", None)
            if callable(closer):
                closer()


# ---------------------------------------------------------------------------------------------
# Building from a config, and running passes
# ---------------------------------------------------------------------------------------------


def _node_reports(r: QueueRead, obs: Observation) -> list[NodeReport]:
    """Each node of a queue's group as reported: busy only when a source could tell."""
    return [
        NodeReport(
            n.id,
            None if r.busy is None else n.running,
            n.cordoned,
            next((i.state for i in r.instances or [] if i.id == n.id), ""),
            n.launched_at,
        )
        for n in obs.nodes
    ]


def build_scaler(
    config: ScalerConfig,
    env: Mapping[str, str] | None = None,
    *,
    backend: GroupBackend | None = None,
    memory: MemoryStore | None = None,
    history: HistoryRecorder | None = None,
) -> Scaler:
    """Clients from the config; credential problems raise ConfigError before any call is made."""
    airflow = rabbitmq = None
    if config.sources.airflow is not None:
        creds = source_credentials(config.sources.airflow, env)
        if (creds.username is None) != (creds.password is None):
            src = config.sources.airflow
            raise ConfigError(
                f"sources.airflow: only one of username/password is set; set both {src.username_env} and "
                f"{src.password_env} (or their _FILE variants), or neither for an all-admins Airflow"
            )
        airflow = AirflowSource(config.sources.airflow, creds)
    if config.sources.rabbitmq is not None:
        src_r = config.sources.rabbitmq
        creds = source_credentials(src_r, env)
        if creds.username is None or creds.password is None:
            raise ConfigError(
                f"sources.rabbitmq: no credentials; set {src_r.username_env} and {src_r.password_env} "
                "(or their _FILE variants)"
            )
        rabbitmq = RabbitMQSource(src_r, creds)
    control: WorkerControl | None = None
    url = broker_url(config, env)
    if url is not None and config.celery is not None:
        control = CeleryControl(
            url, worker_name=config.celery.worker_name, timeout=config.celery.timeout_seconds
        )
    swarm = SwarmManager(config.swarm.docker_url) if config.swarm is not None else None
    if memory is None:
        mem = config.memory_config
        if mem.store == "airflow" and airflow is not None:
            memory = AirflowVariableMemoryStore(airflow, mem.variable)
        else:
            memory = FileMemoryStore(mem.path)
    if history is None:
        store = make_store(config.history_config, airflow)
        history = HistoryRecorder(store, config.history_config) if store is not None else None
    return Scaler(
        config,
        backend or make_backend(config),
        airflow=airflow,
        rabbitmq=rabbitmq,
        control=control,
        swarm=swarm,
        memory=memory,
        history=history,
    )


def watch(
    scaler: Scaler,
    interval: float,
    *,
    dry_run: bool = False,
    deadline: float | None = None,
    on_report: Callable[[PassReport], None] | None = None,
    stop: threading.Event | None = None,
    sleep: Callable[[float], None] | None = None,
    monotonic: Callable[[], float] | None = None,
) -> PassReport | None:
    """A pass every `interval` seconds, paced from the first pass's start; stops before a pass
    would start after `deadline` (monotonic), or when `stop` is set."""
    monotonic = monotonic or time.monotonic

    def pause(seconds: float) -> None:
        if sleep is not None:
            sleep(seconds)
        elif stop is not None:
            stop.wait(seconds)
        else:
            time.sleep(seconds)

    last: PassReport | None = None
    next_at = monotonic()
    while (deadline is None or next_at < deadline) and not (stop is not None and stop.is_set()):
        last = scaler.run_pass(dry_run=dry_run)
        if on_report is not None:
            on_report(last)
        next_at += interval
        now = monotonic()
        next_at = max(next_at, now)  # after a slow pass, start the next one now; no catching up
        if deadline is not None and next_at >= deadline:
            break
        pause(max(0.0, next_at - now))
    return last


__all__ = [
    "NodeReport",
    "PassReport",
    "QueueRead",
    "QueueReport",
    "Scaler",
    "SwarmReport",
    "build_scaler",
    "watch",
]
