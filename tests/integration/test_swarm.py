"""Swarm steps on a real Swarm (host dockerd as manager, a second dockerd as a worker node):
labels copied, drain before terminate, Down nodes whose instance is gone removed; and the
single-host `swarm` backend (service replicas) removing exactly the chosen replica."""

from __future__ import annotations

import contextlib
import subprocess
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
import yaml

from airtasks.backends.aws import AwsBackend
from airtasks.backends.swarm import SwarmBackend
from airtasks.config import parse_config
from airtasks.control.docker_swarm import SwarmManager
from airtasks.errors import BackendError
from airtasks.scaling.scaler import Scaler
from airtasks.wiring import Clients
from airtasks_dev.devstack.swarm import down_swarm
from tests import bad_input
from tests.support.services import aws_groups
from tests.support.services.swarm_node import extra_dockerd, join, tiny_image
from tests.unit.fakes import FakeAirflow

pytestmark = pytest.mark.integration

SOCKET = "unix:///var/run/docker.sock"


def docker0_present() -> bool:
    return subprocess.run(["ip", "link", "show", "docker0"], capture_output=True, check=False).returncode == 0


@pytest.fixture(scope="module")
def manager(swarm: docker.DockerClient) -> Iterator[docker.DockerClient]:
    """The test Swarm with a 1 s dispatcher heartbeat, so a dead node shows Down in ~2 s."""
    had_docker0 = docker0_present()
    swarm.swarm.update(dispatcher_heartbeat_period=1_000_000_000)
    # The host Swarm outlives sessions: a worker left Down by an earlier failed or killed run would be
    # "gone" to the scaler here too. Start from a Swarm whose workers are all ours.
    leftovers = [n for n in swarm.nodes.list() if n.attrs["Spec"]["Role"] == "worker"]
    for node in leftovers:
        node.remove(force=True)
    if leftovers:
        warnings.warn(
            "removed worker nodes left in the host Swarm: "
            + ", ".join(n.attrs["Description"]["Hostname"] for n in leftovers),
            stacklevel=1,
        )
    try:
        yield swarm
    finally:
        swarm.swarm.update(dispatcher_heartbeat_period=5_000_000_000)
        # The host dockerd is shared: its default bridge must survive our extra engines.
        assert docker0_present() or not had_docker0, "an extra dockerd removed the host's docker0"


def wait_state(client: docker.DockerClient, node_id: str, state: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while client.nodes.get(node_id).attrs["Status"]["State"] != state:
        if time.monotonic() > deadline:
            raise TimeoutError(f"node {node_id} not {state} in {timeout:.0f}s")
        time.sleep(0.2)


def node_ids(client: docker.DockerClient) -> set[str]:
    return {n.id for n in client.nodes.list()}


def test_labels_drain_and_down_node_removal(manager: docker.DockerClient) -> None:
    labels = {"airtasks.role": "worker", "airtasks.queue": "beta", "airtasks.cluster": "test"}
    hygiene = SwarmManager(SOCKET)
    assert hygiene.test_connection()[0]
    with extra_dockerd("i-0label0001", "127.0.0.2", labels) as node:
        nid = join(node, manager)
        wait_state(manager, nid, "ready")
        assert "i-0label0001" in hygiene.copy_labels()
        assert manager.nodes.get(nid).attrs["Spec"]["Labels"] == labels
        assert hygiene.copy_labels() == []  # nothing left to copy

        assert hygiene.drain("i-0label0001.ec2.internal") is True  # compared by first DNS label
        assert manager.nodes.get(nid).attrs["Spec"]["Availability"] == "drain"
        assert hygiene.drain("i-0nosuchnode") is False

        assert hygiene.remove_down_nodes(lambda n: n.instance_id == "i-0label0001") == []  # it is Ready: kept
        node.kill()
        wait_state(manager, nid, "down")
        assert hygiene.remove_down_nodes(lambda n: False) == []  # its instance exists: kept
        assert hygiene.remove_down_nodes(lambda n: n.instance_id == "i-0label0001") == ["i-0label0001"]
        assert nid not in node_ids(manager)
        assert any(n.attrs["Spec"]["Role"] == "manager" for n in manager.nodes.list())


def test_pass_drains_before_terminate_then_removes_the_down_node(
    manager: docker.DockerClient, aws_env: dict[str, str]
) -> None:
    group = aws_groups.make_group("swarmpass", "beta", 2)
    idle, busy = aws_groups.instance_ids(group)
    config = parse_config(
        {
            "backend": "aws",
            "region": "us-east-1",
            "stabilization_seconds": 0,
            "idle_seconds": 0,
            "sources": {"airflow": {"url": "http://127.0.0.1:1"}},
            "celery": None,
            "swarm": {"docker_url": SOCKET, "drain_wait_seconds": 5},
            "queues": {"beta": {"group": group, "max_size": 4, "slots_per_node": 2}},
        }
    )
    airflow = FakeAirflow(on_hosts={"beta": Counter({busy: 1})})
    backend = AwsBackend("us-east-1")
    availability_at_terminate: dict[str, str] = {}

    def at_terminate(params: dict[str, Any], **_: Any) -> None:
        """The node's Swarm availability when the scaler asks AWS to terminate its instance."""
        instance_id = params["InstanceId"]
        node = next(n for n in manager.nodes.list() if n.attrs["Description"]["Hostname"] == instance_id)
        availability_at_terminate[instance_id] = node.attrs["Spec"]["Availability"]

    # Seen on the AWS call itself, whichever backend method the scaler removes through.
    backend.autoscaling.meta.events.register(
        "provide-client-params.auto-scaling.TerminateInstanceInAutoScalingGroup", at_terminate
    )
    scaler = Scaler(config, Clients(backend, airflow=airflow, swarm=SwarmManager(SOCKET)))
    with extra_dockerd(idle, "127.0.0.3", {"airtasks.role": "worker", "airtasks.queue": "beta"}) as node:
        nid = join(node, manager)
        wait_state(manager, nid, "ready")
        report = scaler.run_pass()
        q = report.queues[0]
        assert (q.action, q.removed, q.desired) == ("scale_in", [idle], 1)
        assert availability_at_terminate == {idle: "drain"}
        assert aws_groups.instance_ids(group) == [busy]
        assert aws_groups.ec2_state(idle) in {"shutting-down", "terminated"}
        assert report.swarm.labelled_nodes == [idle]

        node.kill()  # the terminated VM's engine goes away
        wait_state(manager, nid, "down")
        again = scaler.run_pass()
        assert again.swarm.removed_nodes == [idle]
        assert again.queues[0].action == "none"
        assert nid not in node_ids(manager)


@contextlib.contextmanager
def worker_service(
    manager: docker.DockerClient, name: str, mode: str = "replicated", condition: str = "on-failure"
) -> Iterator[Any]:
    """A worker service (three replicas, or one per node when global) whose worker exits 0 on
    SIGTERM, as a Celery worker's warm shutdown does."""
    service = manager.services.create(
        tiny_image(manager),
        command=["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"],
        name=name,
        mode=docker.types.ServiceMode(mode, replicas=3 if mode == "replicated" else None),
        # A restart delay shorter than Swarm's default 5 s: a replica restarted by mistake would
        # show within the test.
        restart_policy=docker.types.RestartPolicy(condition=condition, delay=1_000_000_000),
    )
    try:
        yield service
    finally:
        service.remove()


@pytest.fixture
def tiny_service(manager: docker.DockerClient) -> Iterator[Any]:
    with worker_service(manager, "airtasks-test-worker") as service:
        yield service


def running_hostnames(backend: SwarmBackend, group: str, count: int, timeout: float = 30) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        ids = sorted(i.id for i in backend.instances(group) if i.state == "running")
        if len(ids) == count:
            return ids
        if time.monotonic() > deadline:
            raise TimeoutError(f"{group}: {len(ids)} running replicas, expected {count}")
        time.sleep(0.2)


def test_single_host_backend_removes_exactly_the_chosen_replica(tiny_service: Any) -> None:
    backend = SwarmBackend(SOCKET)
    group = "airtasks-test-worker"
    before = running_hostnames(backend, group, 3)
    assert backend.size(group) == 3
    backend.remove(group, before[1])
    assert backend.size(group) == 2
    after = running_hostnames(backend, group, 2)
    assert after == [before[0], before[2]]
    time.sleep(2)  # past the restart delay: no replacement for the removed replica, nothing restarted
    assert running_hostnames(backend, group, 2) == after
    backend.set_size(group, 3)
    assert len(set(running_hostnames(backend, group, 3)) - set(after)) == 1


@pytest.mark.parametrize("row", bad_input.of_kind("swarm-service"), ids=lambda r: r.id)
def test_single_host_backend_refuses_a_service_it_cannot_shrink_safely(
    manager: docker.DockerClient, row: bad_input.Row
) -> None:
    """A worker service that is global, or that Swarm restarts after a clean exit, gets the row's
    error from every call of a pass, and nothing is stopped or resized."""
    group = "airtasks-test-badworker"
    # The row's input is the compose file's key ("deploy.mode"); the service takes its last part.
    spec = {key.rsplit(".", 1)[-1]: value for key, value in row.input.items()}
    with worker_service(manager, group, **spec) as service:
        backend = SwarmBackend(SOCKET)
        running = all_running(service)
        version = service.attrs["Version"]["Index"]
        victim = backend.instances(group)[0].id
        for call in (lambda: backend.read(group), lambda: backend.remove(group, victim)):
            with pytest.raises(BackendError) as refused:
                call()
            assert row.error in str(refused.value)
        time.sleep(2)  # past the restart delay, had a replica been stopped
        service.reload()
        assert service.attrs["Version"]["Index"] == version, "the service was changed"
        assert all_running(service) == running, "a replica was stopped"


def all_running(service: Any, timeout: float = 30) -> dict[str, str]:
    """Once every task the service wants runs: task id -> container id."""
    deadline = time.monotonic() + timeout
    while True:
        tasks = service.tasks(filters={"desired-state": "running"})
        running = {
            t["ID"]: t["Status"]["ContainerStatus"]["ContainerID"]
            for t in tasks
            if t["Status"]["State"] == "running"
        }
        if tasks and len(running) == len(tasks):
            return running
        assert time.monotonic() < deadline, f"{len(running)} of {len(tasks)} tasks running"
        time.sleep(0.2)


def test_make_down_removes_a_stack_whose_worker_waits_out_its_task(
    swarm: docker.DockerClient, tmp_path: Path
) -> None:
    """`make down` (`down_swarm`) must not wait out a worker's warm shutdown, which the stack allows an
    hour: after the grace period the stack's containers and network are gone, by force if need be."""
    stack = "airtasks-downtest"
    compose = tmp_path / "stack.yml"
    compose.write_text(
        yaml.safe_dump(
            {
                "version": "3.8",
                "services": {
                    "worker": {
                        "image": tiny_image(swarm),
                        # A task that goes on after SIGTERM, as a Celery worker's warm shutdown does.
                        "command": ["sh", "-c", "trap '' TERM; while :; do sleep 1; done"],
                        "stop_grace_period": "1h",
                    }
                },
            }
        )
    )
    label = {"label": f"com.docker.stack.namespace={stack}"}
    subprocess.run(["docker", "stack", "deploy", "-c", str(compose), stack], check=True, capture_output=True)
    try:
        deadline = time.monotonic() + 60
        while not swarm.api.containers(filters={**label, "status": "running"}):
            assert time.monotonic() < deadline, "the stack's worker did not start"
            time.sleep(0.5)
        started = time.monotonic()
        down_swarm(tmp_path, stack=stack, grace=5)
        took = time.monotonic() - started
        assert not swarm.api.containers(all=True, filters=label), "a container of the stack is left"
        assert not swarm.networks.list(filters=label), "the stack's network is left"
        assert took < 60, f"make down took {took:.0f}s"
    finally:
        subprocess.run(["docker", "stack", "rm", stack], check=False, capture_output=True)
        for container in swarm.api.containers(all=True, filters=label):
            swarm.api.remove_container(container["Id"], force=True)
