"""Single-host mode: a queue's "group" is a replicated Swarm service, its "instances" the running
replicas (as the original compose setup scaled workers on one machine).

An instance's id is its container's hostname (Docker's default: the short container id), which
is what the Celery worker and Airflow report as the task instance's hostname — so the worker
service must NOT set one shared `hostname` for all replicas in this mode.

Swarm cannot shrink a service by a chosen replica, but on scale-down it removes tasks that are
not running first. So `remove` stops exactly the victim's container (it is idle and no longer
consuming by then; its worker exits 0) and lowers the replica count. The worker service must
restart only on failure: a replica Swarm restarts could come back after the stop, and Swarm would
then stop another, running one when the count goes down.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import docker
import docker.errors

from airtasks.backends.base import Instance
from airtasks.errors import BackendError


def _ts(value: str | None) -> float:
    if not value:
        return 0.0
    text = value.rstrip("Z")
    head, _, frac = text.partition(".")
    try:
        base = dt.datetime.fromisoformat(head).replace(tzinfo=dt.UTC)
    except ValueError:
        return 0.0
    return base.timestamp() + (float(f"0.{frac[:6]}") if frac.isdigit() else 0.0)


# Restart conditions under which a replica the scaler stops (it exits 0) stays stopped.
RESTART_CONDITIONS = ("on-failure", "none")


class SwarmBackend:
    name = "swarm"

    def __init__(
        self,
        docker_url: str = "unix:///var/run/docker.sock",
        *,
        client: docker.DockerClient | None = None,
        stop_timeout: int = 30,
    ) -> None:
        self._docker_url = docker_url
        self._client = client
        self._stop_timeout = stop_timeout
        self._hostnames: dict[str, str] = {}

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            self._client = docker.DockerClient(base_url=self._docker_url, timeout=30)
        return self._client

    def _fail(self, what: str, group: str, exc: Exception) -> BackendError:
        return BackendError(f"swarm: {what} service {group}: {exc}")

    def _service(self, group: str) -> Any:
        try:
            return self.client.services.get(group)
        except docker.errors.NotFound:
            raise BackendError(
                f"swarm: no service named {group}; check queues.<queue>.group (e.g. airtasks_worker-default)"
            ) from None
        except docker.errors.DockerException as exc:
            raise self._fail("get", group, exc) from None

    def size(self, group: str) -> int:
        spec = self._service(group).attrs["Spec"]
        if "Replicated" not in spec["Mode"]:
            raise BackendError(
                f"swarm: service {group} is not replicated; single-host mode needs mode: replicated"
            )
        # `remove` stops the chosen replica and then lowers the count. Swarm drops a stopped task's
        # slot first, but a replica it restarts (condition any, Swarm's default) can come back once
        # the restart delay is over, and Swarm then stops another, possibly busy, in its place.
        condition = spec.get("TaskTemplate", {}).get("RestartPolicy", {}).get("Condition", "any")
        if condition not in RESTART_CONDITIONS:
            raise BackendError(
                f"swarm: service {group} restarts a replica that exits 0 (restart_policy condition "
                f"{condition}), so a replica the scaler stops could come back and Swarm stop another, "
                "busy one in its place; set deploy.restart_policy.condition: on-failure on the worker service"
            )
        return int(spec["Mode"]["Replicated"].get("Replicas", 0))

    def set_size(self, group: str, size: int) -> None:
        # Send back the stored spec unchanged but for the replica count. (The docker SDK's
        # `Service.scale()` / `fetch_current_spec` fill in defaults, which Swarm takes as a new task
        # template: it would restart every replica, and a busy worker with it.)
        service = self._service(group)
        try:
            raw = self.client.api.inspect_service(service.id)
            spec = raw["Spec"]
            self.client.api.update_service(
                service.id,
                raw["Version"]["Index"],
                name=spec.get("Name"),
                labels=spec.get("Labels"),
                task_template=spec["TaskTemplate"],
                mode={"Replicated": {"Replicas": size}},
                update_config=spec.get("UpdateConfig"),
                rollback_config=spec.get("RollbackConfig"),
                networks=spec.get("Networks"),
                endpoint_spec=spec.get("EndpointSpec"),
            )
        except docker.errors.DockerException as exc:
            raise self._fail(f"scale to {size}", group, exc) from None

    def _tasks(self, group: str) -> list[dict[str, Any]]:
        try:
            tasks = self._service(group).tasks(filters={"desired-state": "running"})
        except docker.errors.DockerException as exc:
            raise self._fail("list tasks of", group, exc) from None
        return [t for t in tasks if t.get("Status", {}).get("ContainerStatus", {}).get("ContainerID")]

    def _hostname(self, container_id: str) -> str:
        if container_id not in self._hostnames:
            try:
                info = self.client.api.inspect_container(container_id)
                self._hostnames[container_id] = str(info["Config"]["Hostname"])
            except docker.errors.DockerException:
                return container_id[:12]
        return self._hostnames[container_id]

    def instances(self, group: str) -> list[Instance]:
        out: list[Instance] = []
        for task in self._tasks(group):
            status = task["Status"]
            cid = status["ContainerStatus"]["ContainerID"]
            out.append(
                Instance(
                    id=self._hostname(cid),
                    launched_at=_ts(task.get("CreatedAt")),
                    state=str(status.get("State", "")),
                )
            )
        ids = [i.id for i in out]
        shared = sorted({i for i in ids if ids.count(i) > 1})
        if shared:
            # Busy-ness is told by hostname: with a shared one, any replica could be the busy one.
            raise BackendError(
                f"swarm: replicas of {group} share the hostname {', '.join(shared)}; in single-host mode "
                "the worker service must not set `hostname` (each replica keeps its container id)"
            )
        return out

    def read(self, group: str) -> tuple[int, list[Instance]]:
        return self.size(group), self.instances(group)

    def remove(self, group: str, instance_id: str) -> None:
        size = self.size(group)  # checks the service first: nothing is stopped if it cannot be done
        victim = next(
            (
                t
                for t in self._tasks(group)
                if self._hostname(t["Status"]["ContainerStatus"]["ContainerID"]) == instance_id
            ),
            None,
        )
        if victim is None:
            raise BackendError(f"swarm: no running replica {instance_id} in service {group}; nothing removed")
        cid = victim["Status"]["ContainerStatus"]["ContainerID"]
        try:
            self.client.api.stop(cid, timeout=self._stop_timeout)
        except docker.errors.DockerException as exc:
            raise self._fail(f"stop replica {instance_id} of", group, exc) from None
        # The stopped task (exit 0, not restarted) is the one Swarm drops first when the service
        # shrinks; wait (briefly) until Swarm has seen it stop, then shrink.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            states = {t["ID"]: t["Status"].get("State") for t in self._service(group).tasks()}
            if states.get(victim["ID"]) not in {"running", None}:
                break
            time.sleep(0.1)
        self.set_size(group, max(size - 1, 0))
        self._hostnames.pop(cid, None)


__all__ = ["SwarmBackend"]
