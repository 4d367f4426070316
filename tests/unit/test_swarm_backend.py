"""Single-host backend rules that need no Docker: replicas must be told apart by hostname."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from airtasks.backends.swarm import SwarmBackend
from airtasks.errors import BackendError


def fake_client(hostnames: list[str]) -> Any:
    tasks = [
        {
            "ID": f"t{i}",
            "CreatedAt": "2026-01-01T00:00:00.123456789Z",
            "Status": {"State": "running", "ContainerStatus": {"ContainerID": f"c{i}" * 8}},
        }
        for i in range(len(hostnames))
    ]
    service = SimpleNamespace(
        attrs={"Spec": {"Mode": {"Replicated": {"Replicas": len(tasks)}}}}, tasks=lambda filters: tasks
    )
    by_container = {
        t["Status"]["ContainerStatus"]["ContainerID"]: h for t, h in zip(tasks, hostnames, strict=True)
    }
    api = SimpleNamespace(inspect_container=lambda cid: {"Config": {"Hostname": by_container[cid]}})
    return SimpleNamespace(services=SimpleNamespace(get=lambda name: service), api=api)


def test_replicas_are_told_apart_by_container_hostname() -> None:
    backend = SwarmBackend(client=fake_client(["a1b2c3", "d4e5f6"]))
    instances = backend.instances("airtasks_worker-default")
    assert [i.id for i in instances] == ["a1b2c3", "d4e5f6"]
    assert instances[0].launched_at == pytest.approx(1767225600.123456)


def test_a_shared_hostname_is_refused() -> None:
    backend = SwarmBackend(client=fake_client(["vm", "vm"]))
    with pytest.raises(BackendError, match="replicas of airtasks_worker-default share the hostname vm"):
        backend.instances("airtasks_worker-default")
