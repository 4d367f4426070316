"""In-memory stand-ins for the side-effect boundary: a group backend, load sources, worker control.

Each records the calls the pass makes, so tests assert exact arguments.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from airtasks.backends.base import Instance
from airtasks.control.docker_swarm import SwarmNode
from airtasks.errors import BackendError, ControlError, SourceReadError
from airtasks.schedule import DagTask, PastTask
from airtasks.sources.airflow import FinishedTask, RunningTask


@dataclass
class FakeBackend:
    name: str = "fake"
    groups: dict[str, int] = field(default_factory=dict)
    members: dict[str, list[Instance]] = field(default_factory=dict)
    calls: list[tuple[str, ...]] = field(default_factory=list)
    fail_reads: bool = False

    def add(self, group: str, *ids: str, launched_at: float = 0.0) -> None:
        self.members.setdefault(group, []).extend(Instance(i, launched_at, "InService", True) for i in ids)
        self.groups[group] = len(self.members[group])

    def size(self, group: str) -> int:
        if self.fail_reads:
            raise BackendError(f"fake: describe {group}: ServiceUnavailable")
        return self.groups.setdefault(group, 0)

    def instances(self, group: str) -> list[Instance]:
        if self.fail_reads:
            raise BackendError(f"fake: describe {group}: ServiceUnavailable")
        return list(self.members.get(group, []))

    def set_size(self, group: str, size: int) -> None:
        self.calls.append(("set_size", group, str(size)))
        self.groups[group] = size

    def remove(self, group: str, instance_id: str) -> None:
        self.calls.append(("remove", group, instance_id))
        self.members[group] = [i for i in self.members[group] if i.id != instance_id]
        self.groups[group] -= 1


@dataclass
class FakeAirflow:
    """count() = queued + running; busy() = running per host; running() = the task instances."""

    name: str = "airflow"
    queued: dict[str, int] = field(default_factory=dict)
    on_hosts: dict[str, Counter[str]] = field(default_factory=dict)
    """Per queue: how many task instances run on each host."""
    down: bool = False
    variables: dict[str, str] = field(default_factory=dict)
    busy_after_cordon: dict[str, int] = field(default_factory=dict)
    """A node that takes a task between the idle check and the re-check."""
    busy_calls: int = 0
    busy_asked: list[list[str]] = field(default_factory=list)
    """The queues of each busy() call."""
    restarted: list[tuple[str, str]] = field(default_factory=list)
    """(task key, note) of each restart() that cleared a task instance."""
    running_calls: int = 0
    next_run: dict[str, float] = field(default_factory=dict)
    """Per unpaused DAG: its next scheduled run's run_after."""
    past_runs: dict[str, list[tuple[float, list[PastTask]]]] = field(default_factory=dict)
    """Per DAG: its recent finished scheduled runs, oldest first."""
    tasks: dict[str, list[DagTask]] = field(default_factory=dict)
    """Per DAG: its tasks, as Airflow's task listing of the DAG shows them."""
    schedule_reads: list[str] = field(default_factory=list)
    """Each schedule call: `next_runs`, the DAG whose recent runs were read, or `tasks:<dag>`."""
    queued_tasks: dict[str, list[str]] = field(default_factory=dict)
    """Per queue: its queued tasks' keys, in queued order (their count adds to `queued`)."""
    succeeded: dict[str, list[FinishedTask]] = field(default_factory=dict)
    """Per queue: its successful task instances, in the order they ended."""
    running_tasks: dict[str, list[RunningTask]] = field(default_factory=dict)
    """Per queue: running task instances with their ids and start times (`run`)."""
    learning_reads: list[tuple[str, ...]] = field(default_factory=list)
    """Each run-time call: ("queued", queue) or ("finished", queue, after)."""

    def _check(self) -> None:
        if self.down:
            raise SourceReadError(
                "airflow: GET /api/v2/dags/~/dagRuns/~/taskInstances: HTTP 500 after 3 tries"
            )

    def count(self, queue: str) -> int:
        self._check()
        queued = self.queued.get(queue, 0) + len(self.queued_tasks.get(queue, []))
        return queued + sum(self.on_hosts.get(queue, Counter()).values())

    def queued_keys(self, queue: str, limit: int) -> list[str] | None:
        self._check()
        self.learning_reads.append(("queued", queue))
        keys = self.queued_tasks.get(queue, [])
        return None if len(keys) > limit else list(keys)

    def finished(self, queue: str, after: float | None, limit: int) -> list[FinishedTask]:
        self._check()
        self.learning_reads.append(("finished", queue, str(after)))
        done = self.succeeded.get(queue, [])
        return [t for t in done if t.ended > after] if after is not None else done[-limit:]

    def next_runs(self, until: float) -> list[tuple[str, float]]:
        self._check()
        self.schedule_reads.append("next_runs")
        return sorted((d, at) for d, at in self.next_run.items() if at <= until)

    def recent_runs(self, dag_id: str) -> list[tuple[float, list[PastTask]]]:
        self._check()
        self.schedule_reads.append(dag_id)
        return list(self.past_runs.get(dag_id, []))

    def dag_tasks(self, dag_id: str) -> list[DagTask]:
        self._check()
        self.schedule_reads.append(f"tasks:{dag_id}")
        return list(self.tasks.get(dag_id, []))

    def busy(self, queues: Iterable[str]) -> dict[str, Counter[str]]:
        self._check()
        self.busy_calls += 1
        queues = list(queues)
        self.busy_asked.append(queues)
        out = {q: Counter(self.on_hosts.get(q, Counter())) for q in queues}
        if self.busy_calls > 1:
            for counter in out.values():
                counter.update(self.busy_after_cordon)
        return out

    def run(self, *tasks: RunningTask) -> None:
        """Make these task instances run (their queue's `on_hosts` counts them)."""
        for task in tasks:
            self.running_tasks.setdefault(task.queue, []).append(task)
            self.on_hosts.setdefault(task.queue, Counter())[task.host] += 1

    def running(self, queues: Iterable[str]) -> list[RunningTask]:
        """The task instances `run` made run, else one anonymous one per running slot."""
        self._check()
        self.running_calls += 1
        return [
            task
            for q in queues
            for task in self.running_tasks.get(q)
            or [
                RunningTask(q, host, f"ti-{q}-{host}-{i}")
                for host, n in self.on_hosts.get(q, Counter()).items()
                for i in range(n)
            ]
        ]

    def restart(self, task: RunningTask, note: str) -> bool:
        """Clears it once: a restarted task no longer runs where it ran."""
        self._check()
        counter = self.on_hosts.get(task.queue, Counter())
        if counter[task.host] <= 0:
            return False
        counter[task.host] -= 1
        self.restarted.append((task.key, note))
        return True

    def get_variable(self, key: str) -> str | None:
        self._check()
        return self.variables.get(key)

    def set_variable(self, key: str, value: str, description: str = "") -> None:
        self._check()
        self.variables[key] = value


@dataclass
class FakeRabbit:
    name: str = "rabbitmq"
    depth: dict[str, int] = field(default_factory=dict)
    down: bool = False

    def queues(self) -> dict[str, int]:
        if self.down:
            raise SourceReadError(
                "rabbitmq: GET /api/queues/%2F: cannot connect (Connection refused) after 3 tries"
            )
        return dict(self.depth)

    def depths(self, queues: Iterable[str]) -> dict[str, int]:
        found = self.queues()
        return {q: found.get(q, 0) for q in queues}


@dataclass
class FakeControl:
    calls: list[tuple[str, ...]] = field(default_factory=list)
    workers: set[str] = field(default_factory=set)
    in_flight_of: dict[str, int] = field(default_factory=dict)
    broken: bool = False

    def cordon(self, node_id: str, queue: str) -> bool:
        if self.broken:
            raise ControlError("celery: broker unreachable")
        self.calls.append(("cordon", node_id, queue))
        return node_id in self.workers

    def uncordon(self, node_id: str, queue: str) -> bool:
        self.calls.append(("uncordon", node_id, queue))
        return node_id in self.workers

    def in_flight(self, node_id: str) -> int | None:
        self.calls.append(("in_flight", node_id))
        return self.in_flight_of.get(node_id, 0) if node_id in self.workers else None


@dataclass
class FakeSwarm:
    """The Swarm's nodes as the manager lists them; `down` makes the listing fail."""

    name: str = "swarm"
    listed: list[SwarmNode] = field(default_factory=list)
    down: bool = False

    def nodes(self) -> list[SwarmNode]:
        if self.down:
            raise ControlError("swarm: cannot list nodes: connection refused")
        return list(self.listed)
