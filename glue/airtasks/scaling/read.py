"""The reads of a pass: load per source, group sizes and instances, busy nodes."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from airtasks.backends import Instance, read_group
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


def read_queues(config: ScalerConfig, clients: Clients) -> list[QueueRead]:
    """Per queue: the load from each source, the group's size and instances, and which instance
    runs how many of its tasks. A failed read is recorded on the queues it concerns, never raised."""
    names = list(config.queues)
    reads = {q: QueueRead(q, config.queues[q].group) for q in names}

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
        if down is None:
            try:
                busy = clients.airflow.busy(names)
            except SourceReadError as exc:
                for r in reads.values():
                    r.errors.append(str(exc))
            else:
                for q in names:
                    reads[q].busy = busy.get(q, Counter())

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

    for r in reads.values():
        try:
            r.size, r.instances = read_group(clients.backend, r.group)
        except BackendError as exc:
            r.errors.append(str(exc))
    return [reads[q] for q in names]


__all__ = ["QueueRead", "read_queues"]
