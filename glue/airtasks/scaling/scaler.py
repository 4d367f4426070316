"""One scaling pass: read per queue -> decide -> act -> report (docs/design.md).

The policy is `airtasks.decide.decide` (pure); this module does the I/O around it:

1. read: load per queue from each configured source (Airflow queued + running, RabbitMQ ready +
   unacked; the larger counts), every group's size and instances (one batched read), and for the
   groups that may shrink which instance runs how many tasks (task instance hostname = instance
   id). Any failed read holds the queues it concerns.
2. decide with the memory of the previous pass (window start, last busy time per node, nodes
   this scaler cordoned, boot samples), kept in a `MemoryStore`, each node's interruption
   deadline (the spot watcher's notice): such a node is leaving; and, for queues that pre-scale,
   the scheduled DAG runs due soon with what their recent runs needed (`scaling.due`); for queues
   that learn run times, how long each queued task and each running one is expected to take
   (`scaling.durations`).
3. act: uncordon / cordon (Celery cancel_consumer), grow at once; to remove an idle node: cordon
   it, re-check it is still idle (Airflow + the worker's own active/reserved list), drain it in
   the Swarm, then terminate exactly that instance (the group shrinks by one; a group's victims in
   one bulk call where the backend allows).
4. Swarm hygiene: copy engine labels to node labels, remove Down nodes whose instance is gone.
5. one log line per queue and a structured report; the decisions go to the history ring
   (`airtasks.state.history`) that the operations view reads.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping

from airtasks.backends import remove_instances
from airtasks.config import ScalerConfig
from airtasks.control.docker_swarm import SwarmNode
from airtasks.decide import Decision, DueRun, NodeState, Observation, boot_sample_pending, decide
from airtasks.errors import AirtasksError, BackendError, ControlError, SourceReadError
from airtasks.runtimes import RunTimes
from airtasks.scaling.due import DueReader
from airtasks.scaling.durations import DurationReader
from airtasks.scaling.read import QueueRead, read_queues
from airtasks.scaling.report import NodeReport, PassReport, QueueReport, SwarmReport
from airtasks.state.history import HistoryRecorder, SwarmNodeRecord
from airtasks.state.memory import GroupMemory
from airtasks.wiring import Clients, build_clients

LOG = logging.getLogger("airtasks.scaling")


class Scaler:
    """Reads, decides, acts, over the clients `airtasks.wiring.build_clients` makes (tests pass fakes)."""

    def __init__(
        self,
        config: ScalerConfig,
        clients: Clients,
        *,
        clock: Callable[[], float] | None = None,
        logger: logging.Logger = LOG,
    ) -> None:
        self.config = config
        self.clients = clients
        self.history = (
            HistoryRecorder(clients.history, config.history_config) if clients.history is not None else None
        )
        self.clock = clock or clients.clock
        self.log = logger
        self._dry_memory: dict[str, GroupMemory] | None = None
        prescaling = any(q.prescale for q in config.queues.values())
        self.due = DueReader(clients.airflow) if prescaling and clients.airflow is not None else None
        learning = any(q.learn_durations for q in config.queues.values())
        self.durations = DurationReader(clients.airflow) if learning and clients.airflow is not None else None

    # -- read ----------------------------------------------------------------------------------

    def read(self, boot_pending: Callable[[QueueRead], bool] | None = None) -> list[QueueRead]:
        return read_queues(self.config, self.clients, busy_for="shrinking", boot_pending=boot_pending)

    def _boot_pending(self, r: QueueRead, memory: _PassMemory, now: float) -> bool:
        """A node of this pre-scaling queue would give a boot sample if the pass saw its first task
        (`decide.boot_sample_pending`); queues that do not pre-scale never use the boot."""
        if not self.config.queues[r.queue].prescale or not r.instances:
            return False
        gm = memory()[0].get(r.group, GroupMemory())
        return any(boot_sample_pending(gm.queue, i.id, i.launched_at, now) for i in r.instances)

    def read_due(self, reads: list[QueueRead], now: float) -> tuple[dict[str, list[DueRun]], str | None]:
        """Scheduled runs per pre-scaling queue, and why they could not be read (the pass then
        scales on the load alone: a missed pre-scale costs one boot of waiting, no more)."""
        queues = [r.queue for r in reads if self.config.queues[r.queue].prescale and not r.errors]
        if self.due is None or not queues:
            return {}, None
        try:
            return self.due.read(queues, now), None
        except SourceReadError as exc:
            return {}, f"pre-scale: schedule not read ({exc})"

    def read_durations(self, reads: list[QueueRead]) -> tuple[RunTimes | None, str | None]:
        """The run times learnt for the queues with `learn_durations`, and why they could not be
        read (the pass then scales on the load alone, as without them)."""
        queues = [r.queue for r in reads if self.config.queues[r.queue].learn_durations and not r.errors]
        if self.durations is None or not queues:
            return None, None
        try:
            return self.durations.read(queues), None
        except SourceReadError as exc:
            return None, f"run times not read ({exc})"

    def _load_memory(self, dry_run: bool) -> dict[str, GroupMemory]:
        if dry_run and self._dry_memory is not None:
            return dict(self._dry_memory)
        return self.clients.memory.load()

    # -- the pass ------------------------------------------------------------------------------

    def run_pass(self, dry_run: bool = False) -> PassReport:
        started = time.monotonic()
        now = self.clock()
        # The read asks the memory whether a young node's boot sample is pending; the store is
        # read once either way, and only for a queue that did not hold.
        pass_memory = _PassMemory(lambda: self._load_memory(dry_run))
        reads = self.read(lambda r: self._boot_pending(r, pass_memory, now))
        memory: dict[str, GroupMemory] = {}
        memory_error: str | None = None
        every_queue_held = all(r.errors for r in reads)
        if not every_queue_held:  # nothing to decide otherwise: do not wait on the store as well
            memory, memory_error = pass_memory()
        new_memory = dict(memory)
        due, due_error = self.read_due(reads, now)
        runtimes, runtimes_error = self.read_durations(reads)

        reports = []
        for r in reads:
            if memory_error is not None:
                r.errors.append(memory_error)
            gm = memory.get(r.group, GroupMemory())
            report, kept = self._queue(r, gm, now, dry_run, due=due.get(r.queue, []), runtimes=runtimes)
            cfg = self.config.queues[r.queue]
            for note, concerns in ((due_error, cfg.prescale), (runtimes_error, cfg.learn_durations)):
                if note is not None and concerns and not report.failed:
                    report.reason = f"{report.reason}; {note}"
            if kept is not None:
                new_memory[r.group] = kept
            self.log.info(report.log_line())
            reports.append(report)

        if memory_error is None and not every_queue_held:
            if dry_run:
                self._dry_memory = new_memory
            else:
                try:
                    self.clients.memory.save(new_memory)
                except AirtasksError as exc:
                    self.log.warning("memory: could not save (%s); the next pass starts a fresh window", exc)

        swarm = self._swarm_hygiene(reads, dry_run)
        if self.history is not None and not dry_run:
            airflow_down = self.clients.airflow is not None and all(
                r.loads.get("airflow") is None for r in reads
            )
            if not (airflow_down and self.history.store.name == "airflow"):
                # (The history lives in that Airflow: a pass that found it down does not wait on it twice.)
                self.history.record(reports, now, self._swarm_records())
        return PassReport(reports, swarm, (time.monotonic() - started) * 1000.0, dry_run)

    def _swarm_records(self) -> list[SwarmNodeRecord] | None:
        """The Swarm's nodes for the history (None: no Swarm configured, or it did not answer)."""
        if self.clients.swarm is None:
            return None
        try:
            return [SwarmNodeRecord.from_node(n) for n in self.clients.swarm.nodes()]
        except ControlError:
            return None

    def _observe(
        self,
        r: QueueRead,
        gm: GroupMemory,
        now: float,
        due: list[DueRun] | None = None,
        runtimes: RunTimes | None = None,
    ) -> tuple[Observation, str | None]:
        """The Observation for decide, and a reason that overrides a 'never scale in' hold."""
        running = r.running_by_host()

        def remaining(node_id: str) -> list[float] | None:
            if runtimes is None or r.running is None:
                return None
            return runtimes.remaining_each(
                (t.task if t.started is not None else None, now - (t.started or now))
                for t in running.get(node_id, [])
            )

        nodes = tuple(
            NodeState(
                id=i.id,
                running=(r.busy or Counter()).get(i.id, 0),
                launched_at=i.launched_at,
                cordoned=i.id in gm.cordoned,
                remaining=remaining(i.id),
                deadline=r.interrupted.get(i.id),
            )
            for i in (r.instances or [])
        )
        queued_expected = None
        if runtimes is not None and r.queued_keys is not None:
            queued_expected = runtimes.expected_each(r.queued_keys)
        why_unknown: str | None = None
        if self.clients.airflow is None:
            why_unknown = "no Airflow source tells which nodes are busy: never scaling in"
        elif r.stray_hosts:
            why_unknown = (
                f"task(s) running on {', '.join(r.stray_hosts)}, not an instance of {r.group} "
                "(worker hostname must be the instance id): never scaling in"
            )
        elif self.clients.control is None and self.clients.swarm is None:
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
            queued_expected=queued_expected,
            nodes_read=not r.busy_skipped,
            due=tuple(due or ()),
        )
        return obs, why_unknown

    def _queue(
        self,
        r: QueueRead,
        gm: GroupMemory,
        now: float,
        dry_run: bool,
        *,
        due: list[DueRun] | None = None,
        runtimes: RunTimes | None = None,
    ) -> tuple[QueueReport, GroupMemory | None]:
        policy = self.config.policy(r.queue)
        obs, why_unknown = self._observe(r, gm, now, due, runtimes)
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
        try:
            self._restart(r, d, report, notes)
        except SourceReadError as exc:  # the next pass tries again: the tasks still run
            report.failed = True
            notes.append(f"restart failed: {exc}")
        if notes:
            report.reason = f"{report.reason}; {'; '.join(notes)}"
        cordoned -= set(report.removed)
        return report, GroupMemory(d.memory, frozenset(cordoned))

    # -- act -----------------------------------------------------------------------------------

    def _restart(self, r: QueueRead, d: Decision, report: QueueReport, notes: list[str]) -> None:
        """Clear the running task instances `d.restart` names on interrupted nodes, so that they run
        again on other nodes before the cloud takes theirs, without using up a retry."""
        if not d.restart:
            return
        if self.clients.airflow is None or r.running is None:
            notes.append("no Airflow source: cannot restart the interrupted node's tasks")
            return
        running = r.running_by_host()  # what the pass read, in the order decide() indexed
        for node_id, doomed in d.restart:
            tasks = running.get(node_id, [])
            picked = [tasks[i] for i in doomed if i < len(tasks)]
            done = []
            for task in picked:
                note = f"Air-Tasks: restarted on another node, {node_id} got a spot interruption notice"
                if self.clients.airflow.restart(task, note):
                    done.append(task.key)
            report.restarted.extend(done)
            notes.append(f"{node_id}: restarted {len(done)} task(s) elsewhere, no retry used")

    def _act(
        self, r: QueueRead, d: Decision, cordoned: set[str], report: QueueReport, notes: list[str]
    ) -> None:
        assert r.size is not None
        for node_id in d.uncordon:
            if self.clients.control is not None:
                try:
                    self.clients.control.uncordon(node_id, r.queue)
                except ControlError as exc:
                    notes.append(str(exc))
                    continue
            cordoned.discard(node_id)
            report.uncordoned.append(node_id)
        for node_id in d.cordon:
            if self.clients.control is None:
                continue
            try:
                answered = self.clients.control.cordon(node_id, r.queue)
            except ControlError as exc:
                notes.append(str(exc))
                continue
            if answered:
                cordoned.add(node_id)
                report.cordoned.append(node_id)
            else:
                notes.append(f"{node_id}: no worker answered the cordon")

        if d.action == "scale_out":
            self.clients.backend.set_size(r.group, d.desired)
            return

        kept = self._remove(r, d.remove, cordoned, report, notes)
        target = d.desired + kept
        after = r.size - len(report.removed)
        if target < after:  # capacity that was asked for but has no instance yet
            self.clients.backend.set_size(r.group, target)
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
            if self.clients.control is not None:
                try:
                    if self.clients.control.cordon(node_id, r.queue):
                        answered.add(node_id)
                except ControlError as exc:
                    notes.append(f"kept {node_id}: cannot stop it taking tasks ({exc})")
                    continue
                cordoned.add(node_id)
            ready.append(node_id)

        # Re-check after the intake stopped: Airflow's running list, then the worker's own view.
        if ready and self.clients.airflow is not None:
            try:
                busy = self.clients.airflow.busy([r.queue]).get(r.queue, Counter())
            except SourceReadError as exc:
                notes.append(f"kept {', '.join(ready)}: re-check failed ({exc})")
                report.failed = True
                return len(victims)
            for node_id in list(ready):
                if busy.get(node_id, 0):
                    ready.remove(node_id)
                    notes.append(f"kept {node_id}: took a task meanwhile")
        if ready and self.clients.control is not None:
            # A node whose worker did not answer the cordon runs no worker (booting, or gone): the
            # Airflow re-check is all there is to ask.
            for node_id in [n for n in ready if n in answered]:
                try:
                    in_flight = self.clients.control.in_flight(node_id)
                except ControlError as exc:
                    ready.remove(node_id)
                    notes.append(f"kept {node_id}: re-check failed ({exc})")
                    continue
                if in_flight:
                    ready.remove(node_id)
                    notes.append(f"kept {node_id}: its worker holds {in_flight} task(s)")

        for node_id in ready:
            if self.clients.swarm is not None:
                try:
                    if self.clients.swarm.drain(node_id):
                        wait = self.config.swarm.drain_wait_seconds if self.config.swarm else 0.0
                        if not self.clients.swarm.wait_drained(node_id, wait):
                            notes.append(f"{node_id}: Swarm tasks still stopping after {wait:.0f}s")
                except ControlError as exc:
                    notes.append(f"{node_id}: drain failed ({exc}); terminating anyway, it runs no task")
        # All of them at once: a backend that can terminate in bulk (aws) makes fewer calls.
        outcome = remove_instances(self.clients.backend, r.group, ready) if ready else {}
        for node_id in ready:
            failed = outcome.get(node_id)
            if failed is not None:
                notes.append(f"kept {node_id}: {failed}")
                report.failed = True
                continue
            report.removed.append(node_id)
            cordoned.discard(node_id)
        return len(victims) - len(report.removed)

    # -- Swarm hygiene -------------------------------------------------------------------------

    def _swarm_hygiene(self, reads: list[QueueRead], dry_run: bool) -> SwarmReport:
        out = SwarmReport()
        if self.clients.swarm is None or self.config.swarm is None:
            return out
        try:
            if self.config.swarm.copy_labels and not dry_run:
                out.labelled_nodes = self.clients.swarm.copy_labels()
            if self.config.swarm.remove_down_nodes:
                if any(r.instances is None for r in reads):
                    return out  # a group could not be listed: cannot tell which instances are gone
                known = {i.id for r in reads for i in r.instances or []}

                def gone(node: SwarmNode) -> bool:
                    return node.instance_id not in known

                if dry_run:
                    out.removed_nodes = [
                        n.hostname
                        for n in self.clients.swarm.nodes()
                        if n.role == "worker" and n.state == "down" and gone(n)
                    ]
                else:
                    out.removed_nodes = self.clients.swarm.remove_down_nodes(gone)
        except ControlError as exc:
            out.error = str(exc)
            self.log.warning("%s", exc)
        if out.removed_nodes:
            self.log.info("swarm: removed down nodes %s", ", ".join(out.removed_nodes))
        return out

    # -- status --------------------------------------------------------------------------------

    def status(self) -> list[QueueReport]:
        """What a pass would read, per queue, without deciding or acting (busy nodes of every queue)."""
        reads = read_queues(self.config, self.clients)
        try:
            memory = self.clients.memory.load()
        except SourceReadError:
            memory = {}
        out = []
        for r in reads:
            obs, _ = self._observe(r, memory.get(r.group, GroupMemory()), self.clock())
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
        if self.history is not None:
            self.history.flush(self.clock())
        self.clients.close()


class _PassMemory:
    """The memory store of one pass, read at most once, when first needed: (memory, why it could
    not be read). A failed read is not tried again within the pass."""

    def __init__(self, load: Callable[[], dict[str, GroupMemory]]) -> None:
        self._load = load
        self._got: tuple[dict[str, GroupMemory], str | None] | None = None

    def __call__(self) -> tuple[dict[str, GroupMemory], str | None]:
        if self._got is None:
            try:
                self._got = (self._load(), None)
            except SourceReadError as exc:
                self._got = ({}, str(exc))
        return self._got


# ---------------------------------------------------------------------------------------------
# Building from a config
# ---------------------------------------------------------------------------------------------


def _node_reports(r: QueueRead, obs: Observation) -> list[NodeReport]:
    """Each node of a queue's group as reported: busy only when a source could tell."""
    states = {i.id: i.state for i in r.instances or []}
    return [
        NodeReport(
            n.id, None if r.busy is None else n.running, n.cordoned, states.get(n.id, ""), n.launched_at
        )
        for n in obs.nodes
    ]


def build_scaler(config: ScalerConfig, env: Mapping[str, str] | None = None) -> Scaler:
    """A Scaler over the clients `airtasks.wiring` builds; credential problems raise ConfigError
    before any call is made."""
    return Scaler(config, build_clients(config, env))


__all__ = [
    "Scaler",
    "build_scaler",
]
