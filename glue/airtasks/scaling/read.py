"""The reads of a pass: load per source, group sizes and instances, busy nodes."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from airtasks.backends import Instance, read_groups
from airtasks.config import ScalerConfig
from airtasks.errors import BackendError, SourceReadError

if TYPE_CHECKING:
    from airtasks.wiring import Clients


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


BusyFor = Literal["shrinking", "all", "none"]


def may_shrink(config: ScalerConfig, r: QueueRead) -> bool:
    """The load needs fewer nodes than the group has: the only case in which `decide` looks at
    which node runs what (to pick idle victims, cordon busy ones, or time the idle window)."""
    load = r.load
    if load is None or r.size is None:
        return False
    return config.policy(r.queue).want(load) < r.size


def read_queues(
    config: ScalerConfig, clients: Clients, *, busy_for: BusyFor = "shrinking"
) -> list[QueueRead]:
    """Per queue: the load from each source, the group's size and instances, and which instance
    runs how many of its tasks. A failed read is recorded on the queues it concerns, never raised.

    The calls grow with queues and pages, not with nodes: one count per queue, the groups in
    batches (`backends.read_groups`), and the running task instances (paged, ~one request per 100)
    only for `busy_for`: the queues that may shrink (a pass), every queue, or none (the caller
    reads them itself). A queue whose nodes were not read has `busy` None."""
    names = list(config.queues)
    reads = {q: QueueRead(q, config.queues[q].group) for q in names}

    airflow_down: str | None = None
    if clients.airflow is not None:
        for q in names:
            if airflow_down is not None:
                reads[q].loads["airflow"] = None
                reads[q].errors.append(airflow_down)
                continue
            try:
                reads[q].loads["airflow"] = clients.airflow.count(q)
            except SourceReadError as exc:
                reads[q].loads["airflow"] = None
                reads[q].errors.append(str(exc))
                airflow_down = str(exc)

    if clients.rabbitmq is not None:
        try:
            depths = clients.rabbitmq.depths(names)
        except SourceReadError as exc:
            for r in reads.values():
                r.loads["rabbitmq"] = None
                r.errors.append(str(exc))
        else:
            for q in names:
                reads[q].loads["rabbitmq"] = depths[q]

    groups = read_groups(clients.backend, [r.group for r in reads.values()])
    for r in reads.values():
        result = groups.get(r.group)
        if isinstance(result, BackendError):
            r.errors.append(str(result))
        elif result is not None:
            r.size, r.instances = result

    if clients.airflow is not None and airflow_down is None and busy_for != "none":
        wanted = [q for q in names if busy_for == "all" or may_shrink(config, reads[q])]
        if wanted:
            try:
                busy = clients.airflow.busy(wanted)
            except SourceReadError as exc:
                for q in wanted:
                    reads[q].errors.append(str(exc))
            else:
                for q in wanted:
                    reads[q].busy = busy.get(q, Counter())
    return [reads[q] for q in names]


__all__ = ["BusyFor", "QueueRead", "may_shrink", "read_queues"]
