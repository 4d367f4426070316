"""Swarm housekeeping through the manager's Docker API (docker SDK).

- `drain(hostname)`: the node stops running Swarm tasks (its worker container is stopped) before
  its instance is terminated.
- `remove_down_nodes(keep)`: nodes that are Down, are workers, and whose instance is gone.
- `copy_labels()`: a worker cannot set its own node labels; copy its engine labels
  (`airtasks.*` from daemon.json) to node labels, so the stack can place with `node.labels.*`.

A node's hostname is its instance id (docs/design.md, "Names"), compared by first DNS label.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import docker
import docker.errors

from airtasks.errors import ControlError

LABEL_PREFIX = "airtasks."


def _first_label(hostname: str) -> str:
    return hostname.split(".", 1)[0].lower()


@dataclass(frozen=True)
class SwarmNode:
    id: str
    hostname: str
    role: str
    state: str
    availability: str
    engine_labels: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def instance_id(self) -> str:
        return _first_label(self.hostname)

    @classmethod
    def from_attrs(cls, attrs: dict[str, Any]) -> SwarmNode:
        desc = attrs.get("Description", {})
        spec = attrs.get("Spec", {})
        return cls(
            id=str(attrs["ID"]),
            hostname=str(desc.get("Hostname", "")),
            role=str(spec.get("Role", "")),
            state=str(attrs.get("Status", {}).get("State", "")),
            availability=str(spec.get("Availability", "")),
            engine_labels=dict(desc.get("Engine", {}).get("Labels") or {}),
            labels=dict(spec.get("Labels") or {}),
        )


class SwarmManager:
    name = "swarm"

    def __init__(self, docker_url: str = "unix:///var/run/docker.sock", *, client: Any = None) -> None:
        self._docker_url = docker_url
        self._client: docker.DockerClient | None = client

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            self._client = docker.DockerClient(base_url=self._docker_url, timeout=30)
        return self._client

    def test_connection(self) -> tuple[bool, str]:
        try:
            info = self.client.info()
        except docker.errors.DockerException as exc:
            return False, f"swarm: cannot reach Docker at {self._docker_url}: {exc}"
        if not info.get("Swarm", {}).get("ControlAvailable"):
            return False, f"swarm: the engine at {self._docker_url} is not a Swarm manager"
        return True, f"swarm: manager at {self._docker_url}"

    def nodes(self) -> list[SwarmNode]:
        try:
            return [SwarmNode.from_attrs(n.attrs) for n in self.client.nodes.list()]
        except docker.errors.DockerException as exc:
            raise ControlError(f"swarm: cannot list nodes: {exc}") from None

    def _find(self, instance_id: str) -> Any:
        target = _first_label(instance_id)
        try:
            for node in self.client.nodes.list():
                if SwarmNode.from_attrs(node.attrs).instance_id == target:
                    return node
        except docker.errors.DockerException as exc:
            raise ControlError(f"swarm: cannot list nodes: {exc}") from None
        return None

    def _set_availability(self, instance_id: str, availability: str) -> bool:
        node = self._find(instance_id)
        if node is None:
            return False
        spec = dict(node.attrs["Spec"])
        if spec.get("Availability") == availability:
            return True
        spec["Availability"] = availability
        try:
            node.update(spec)
        except docker.errors.DockerException as exc:
            raise ControlError(f"swarm: cannot set {instance_id} to {availability}: {exc}") from None
        return True

    def drain(self, instance_id: str) -> bool:
        """Drain the node whose hostname is this instance id. False when no such node."""
        return self._set_availability(instance_id, "drain")

    def activate(self, instance_id: str) -> bool:
        return self._set_availability(instance_id, "active")

    def running_tasks(self, instance_id: str) -> int:
        node = self._find(instance_id)
        if node is None:
            return 0
        try:
            tasks = self.client.api.tasks(filters={"node": node.id, "desired-state": "running"})
        except docker.errors.DockerException as exc:
            raise ControlError(f"swarm: cannot list tasks on {instance_id}: {exc}") from None
        return sum(
            1 for t in tasks if t.get("Status", {}).get("State") in {"running", "starting", "preparing"}
        )

    def wait_drained(self, instance_id: str, timeout: float) -> bool:
        """Wait (bounded) until no Swarm task runs on the node any more."""
        deadline = time.monotonic() + timeout
        while True:
            if self.running_tasks(instance_id) == 0:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.25)

    def remove_down_nodes(self, is_gone: Callable[[SwarmNode], bool]) -> list[str]:
        """Remove worker nodes that are Down and whose instance `is_gone`; returns their hostnames."""
        removed = []
        for node in self.nodes():
            if node.role != "worker" or node.state != "down" or not is_gone(node):
                continue
            try:
                self.client.api.remove_node(node.id, force=True)
            except docker.errors.NotFound:
                continue
            except docker.errors.DockerException as exc:
                raise ControlError(f"swarm: cannot remove down node {node.hostname}: {exc}") from None
            removed.append(node.hostname)
        return removed

    def copy_labels(self) -> list[str]:
        """Copy `airtasks.*` engine labels to node labels where missing; returns the updated hostnames."""
        updated = []
        try:
            for node in self.client.nodes.list():
                info = SwarmNode.from_attrs(node.attrs)
                wanted = {k: v for k, v in info.engine_labels.items() if k.startswith(LABEL_PREFIX)}
                if info.state != "ready" or all(info.labels.get(k) == v for k, v in wanted.items()):
                    continue
                spec = dict(node.attrs["Spec"])
                spec["Labels"] = {**info.labels, **wanted}
                node.update(spec)
                updated.append(info.hostname)
        except docker.errors.DockerException as exc:
            raise ControlError(f"swarm: cannot copy engine labels to node labels: {exc}") from None
        return updated


__all__ = ["SwarmManager", "SwarmNode"]
