"""The one small protocol every group backend implements, and what it returns.

A group is what one queue's nodes belong to: an AWS Auto Scaling group, a GCP regional managed
instance group, or (single-host mode) the replicas of a Swarm service. `size` is the group's
desired/target size, `instances` what exists now, `remove` terminates exactly one instance and
shrinks the group by one. Backends raise `BackendError` naming the backend, the group and the fix.

A pass reads every group at once through `read_groups`: a backend that can read many groups in a
few calls offers `read_many` (AWS: one batched describe for all groups, docs/design.md "At
scale"); the others are read one group at a time, so a backend needs only the four methods.
Likewise `remove_instances` terminates a group's victims with `remove_many` where offered, and
`warm` builds a backend's SDK clients ahead of its first read where the backend offers `warm`.
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


def warm(backend: GroupBackend) -> None:
    """Build the backend's SDK clients now, without contacting the cloud, where it offers `warm`:
    a process that serves readers pays for them before the first one asks."""
    warmer = getattr(backend, "warm", None)
    if callable(warmer):
        warmer()


GroupRead = tuple[int, list[Instance]] | BackendError
"""One group's size and instances, or why they could not be read."""


def read_groups(backend: GroupBackend, groups: Sequence[str]) -> dict[str, GroupRead]:
    """Every group's size and instances, batched where the backend offers it (`read_many`), else
    one `read_group` per group. A failure is returned for the groups it concerns, never raised,
    so one failing group holds only its own queue."""
    many = getattr(backend, "read_many", None)
    if callable(many):
        found: dict[str, GroupRead] = dict(many(list(groups)))
        return {g: found[g] for g in groups}
    out: dict[str, GroupRead] = {}
    for group in groups:
        try:
            out[group] = read_group(backend, group)
        except BackendError as exc:
            out[group] = exc
    return out


def remove_instances(
    backend: GroupBackend, group: str, instance_ids: Sequence[str]
) -> dict[str, BackendError | None]:
    """Terminate exactly these instances, the group shrinking by one each: in bulk where the backend
    offers it (`remove_many`), else one `remove` each. Per instance: None when removed, else why not."""
    many = getattr(backend, "remove_many", None)
    if callable(many):
        return dict(many(group, list(instance_ids)))
    out: dict[str, BackendError | None] = {}
    for instance_id in instance_ids:
        try:
            backend.remove(group, instance_id)
        except BackendError as exc:
            out[instance_id] = exc
        else:
            out[instance_id] = None
    return out


__all__ = ["GroupBackend", "GroupRead", "Instance", "read_group", "read_groups", "remove_instances"]
