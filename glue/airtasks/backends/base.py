"""The one small protocol every group backend implements, and what it returns.

A group is what one queue's nodes belong to: an AWS Auto Scaling group, a GCP regional managed
instance group, or (single-host mode) the replicas of a Swarm service. `size` is the group's
desired/target size, `instances` what exists now, `remove` terminates exactly one instance and
shrinks the group by one. Backends raise `BackendError` naming the backend, the group and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class Instance:
    id: str
    """Instance id (AWS), instance name (GCP), container hostname (swarm): equals the worker's hostname."""
    launched_at: float
    """Epoch seconds."""
    state: str = ""
    """The backend's own lifecycle word (InService, Pending, RUNNING, running, ...)."""
    protected: bool = False
    """Scale-in protection (AWS): the group itself never picks it; `remove` lifts it first."""


@runtime_checkable
class GroupBackend(Protocol):
    name: str

    def size(self, group: str) -> int:
        """The group's desired size."""
        ...

    def set_size(self, group: str, size: int) -> None:
        """Set the desired size (used to grow, and to drop capacity that has no instance yet)."""
        ...

    def instances(self, group: str) -> list[Instance]:
        """Instances that exist and count towards the group (not those already terminating)."""
        ...

    def remove(self, group: str, instance_id: str) -> None:
        """Terminate exactly this instance and shrink the group by one."""
        ...


def read_group(backend: GroupBackend, group: str) -> tuple[int, list[Instance]]:
    """Size and instances, in one call where the backend offers it (`read`)."""
    reader = getattr(backend, "read", None)
    if callable(reader):
        size, instances = reader(group)
        return int(size), list(instances)
    return backend.size(group), backend.instances(group)


__all__ = ["GroupBackend", "Instance", "read_group"]
