"""GCP: one regional managed instance group (MIG) per queue (google-cloud-compute).

`resize` sets the target size; `delete_instances` removes exactly the named instance and lowers
the target size by one (the MIG never picks a victim). Instance creation times come from the
Instances API (`instances.get`, permission compute.instances.get) once per instance and are cached:
the managed-instance listing carries no creation time. A VM the group is still creating has a URL
but no instance yet (404): it is reported as booting, launched now, and looked up again next pass.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from airtasks.backends.base import Instance
from airtasks.errors import BackendError

# MIG actions after which an instance no longer counts towards the group.
LEAVING = frozenset({"DELETING", "ABANDONING"})
# MIG actions under which the VM may not exist yet (the group retries until it does).
COMING = frozenset({"CREATING", "CREATING_WITHOUT_RETRIES", "RECREATING"})


def _describe(exc: Exception) -> str:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    code = getattr(exc, "code", None)
    return f"{code} {message}" if code else str(message)


def _zone_and_name(url: str) -> tuple[str, str]:
    parts = url.rstrip("/").split("/")
    try:
        return parts[parts.index("zones") + 1], parts[-1]
    except (ValueError, IndexError):
        return "", parts[-1]


class GcpBackend:
    name = "gcp"

    def __init__(
        self,
        project: str,
        region: str,
        *,
        credentials: Any = None,
        client_options: Any = None,
        transport: str = "rest",
        timeout_seconds: float = 30.0,
    ) -> None:
        self.project = project
        self.region = region
        self._credentials = credentials
        self._client_options = client_options
        self._transport = transport
        self._timeout = timeout_seconds
        self._migs: Any = None
        self._instances: Any = None
        self._created: dict[str, float] = {}

    def _clients(self) -> tuple[Any, Any]:
        if self._migs is None:
            try:
                from google.cloud import compute_v1  # noqa: PLC0415 - optional extra airtasks[gcp]
            except ImportError:
                raise BackendError(
                    "the gcp backend needs google-cloud-compute: pip install 'airtasks[gcp]'"
                ) from None

            kwargs: dict[str, Any] = {"transport": self._transport}
            if self._credentials is not None:
                kwargs["credentials"] = self._credentials
            if self._client_options is not None:
                kwargs["client_options"] = self._client_options
            self._migs = compute_v1.RegionInstanceGroupManagersClient(**kwargs)
            self._instances = compute_v1.InstancesClient(**kwargs)
        return self._migs, self._instances

    def warm(self) -> None:
        """Build both clients (and find the credentials) before the first read."""
        self._clients()

    def _fail(self, what: str, group: str, exc: Exception) -> BackendError:
        return BackendError(f"gcp: {what} {group} ({self.project}/{self.region}): {_describe(exc)}")

    def _where(self, group: str) -> dict[str, str]:
        return {"project": self.project, "region": self.region, "instance_group_manager": group}

    def size(self, group: str) -> int:
        migs, _ = self._clients()
        try:
            mig = migs.get(**self._where(group), timeout=self._timeout)
        except Exception as exc:
            if getattr(exc, "code", None) == 404:
                raise BackendError(
                    f"gcp: no managed instance group named {group} in {self.project}/{self.region}; "
                    "check queues.<queue>.group, project and region in the scaler config"
                ) from None
            raise self._fail("get", group, exc) from None
        return int(mig.target_size)

    def set_size(self, group: str, size: int) -> None:
        migs, _ = self._clients()
        try:
            op = migs.resize(**self._where(group), size=size, timeout=self._timeout)
            op.result(timeout=self._timeout)
        except Exception as exc:
            raise self._fail(f"resize to {size}", group, exc) from None

    def _created_at(self, url: str, group: str) -> float | None:
        """Epoch seconds the VM was created; None while it does not exist yet (404)."""
        if url not in self._created:
            _, instances = self._clients()
            zone, name = _zone_and_name(url)
            try:
                inst = instances.get(project=self.project, zone=zone, instance=name, timeout=self._timeout)
            except Exception as exc:
                if getattr(exc, "code", None) == 404:
                    return None  # not created yet (or gone, and the group recreates it): not cached
                raise self._fail(f"get instance {name} of", group, exc) from None
            stamp = str(inst.creation_timestamp or "")
            try:
                self._created[url] = dt.datetime.fromisoformat(stamp).timestamp()
            except ValueError:
                self._created[url] = 0.0
        return self._created[url]

    def instances(self, group: str) -> list[Instance]:
        migs, _ = self._clients()
        try:
            managed = list(migs.list_managed_instances(**self._where(group), timeout=self._timeout))
        except Exception as exc:
            raise self._fail("list instances of", group, exc) from None
        out = []
        for m in managed:
            action = str(m.current_action) if m.current_action else "NONE"
            if action in LEAVING:
                continue
            url = str(m.instance)
            _, name = _zone_and_name(url)
            state = str(m.instance_status) if m.instance_status else action
            created = self._created_at(url, group)
            if created is None:
                # Booting, and launched "now", so that it never looks idle for long to the scaler.
                created, state = time.time(), action if action in COMING else "CREATING"
            out.append(Instance(id=str(m.name or name), launched_at=created, state=state))
        return out

    def read(self, group: str) -> tuple[int, list[Instance]]:
        return self.size(group), self.instances(group)

    def remove(self, group: str, instance_id: str) -> None:
        migs, _ = self._clients()  # first: it names the extra when google-cloud-compute is missing
        from google.cloud import compute_v1  # noqa: PLC0415 - optional extra airtasks[gcp]

        try:
            url = next(
                str(m.instance)
                for m in migs.list_managed_instances(**self._where(group), timeout=self._timeout)
                if str(m.name or _zone_and_name(str(m.instance))[1]) == instance_id
            )
        except StopIteration:
            raise BackendError(f"gcp: instance {instance_id} is not in {group}; nothing removed") from None
        except Exception as exc:
            raise self._fail("list instances of", group, exc) from None
        body = compute_v1.RegionInstanceGroupManagersDeleteInstancesRequest(
            instances=[url], skip_instances_on_validation_error=False
        )
        try:
            op = migs.delete_instances(
                **self._where(group),
                region_instance_group_managers_delete_instances_request_resource=body,
                timeout=self._timeout,
            )
            op.result(timeout=self._timeout)
        except Exception as exc:
            raise self._fail(f"delete {instance_id} from", group, exc) from None
        self._created.pop(url, None)


__all__ = ["GcpBackend"]
