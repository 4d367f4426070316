"""The one small protocol every group backend implements, and what it returns.

A group is what one queue's nodes belong to: an AWS Auto Scaling group, a GCP regional managed
instance group, or (single-host mode) the replicas of a Swarm service. `size` is the group's
desired/target size, `instances` what exists now, `remove` terminates exactly one instance and
shrinks the group by one. Backends raise `BackendError` naming the backend, the group and the fix.

Two optional methods let a backend do many groups or many instances in fewer API calls (AWS);
`read_groups` and `remove_instances` below fall back to one group / one instance at a time for a
backend without them (GCP, Swarm):

- `read_groups(groups) -> {group: (size, instances) | BackendError}`: a failure is returned for
  the groups it concerns, never raised;
- `remove_many(group, ids) -> {id: BackendError | None}`: terminate exactly these instances.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from airtasks.errors import BackendError


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


GroupRead = tuple[int, list[Instance]] | BackendError


def read_groups(backend: GroupBackend, groups: Sequence[str]) -> dict[str, GroupRead]:
    """Size and instances of each group, batched where the backend offers it (`read_groups`);
    a group that could not be read maps to its BackendError."""
    batched = getattr(backend, "read_groups", None)
    if callable(batched):
        return dict(batched(list(groups)))
    out: dict[str, GroupRead] = {}
    for group in dict.fromkeys(groups):
        try:
            out[group] = read_group(backend, group)
        except BackendError as exc:
            out[group] = exc
    return out


def remove_instances(backend: GroupBackend, group: str, ids: Sequence[str]) -> dict[str, BackendError | None]:
    """Terminate exactly these instances of one group, in bulk where the backend offers it
    (`remove_many`); per instance: None when removed, else why not."""
    if not ids:
        return {}
    bulk = getattr(backend, "remove_many", None)
    if callable(bulk):
        return dict(bulk(group, list(ids)))
    out: dict[str, BackendError | None] = {}
    for instance_id in ids:
        try:
            backend.remove(group, instance_id)
            out[instance_id] = None
        except BackendError as exc:
            out[instance_id] = exc
    return out


__all__ = ["GroupBackend", "GroupRead", "Instance", "read_group", "read_groups", "remove_instances"]
