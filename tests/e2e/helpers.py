"""Helpers of the e2e tests: moto clients, tags, what a manager node's Swarm looks like, the
stack's REST API and the timelines left in tests/artifacts/."""

from __future__ import annotations

import contextlib
import os
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import docker.errors
import httpx
import requests

from airtasks_dev.devstack.moto import MotoServer
from airtasks_dev.localcloud.box import Box
from airtasks_dev.localcloud.node import HOST_DOCKER_CLI, Node
from tests.support.artifacts import ARTIFACTS

REGION = "us-east-1"
AMI = "ami-12c6146b"  # one of moto's default AMIs


def clients(moto: MotoServer) -> tuple[Any, Any, Any]:
    kw = {"endpoint_url": moto.url, "region_name": REGION}
    return boto3.client("ec2", **kw), boto3.client("ssm", **kw), boto3.client("autoscaling", **kw)


def cluster_tags(cluster: str, role: str) -> list[dict[str, Any]]:
    tags = [{"Key": "airtasks:cluster", "Value": cluster}, {"Key": "airtasks:role", "Value": role}]
    return [{"ResourceType": "instance", "Tags": tags}]


PLACEHOLDER = "airtasks:pending"


def put_placeholders(ssm: Any, cluster: str) -> None:
    """What Terraform's swarm-manager module creates: the join parameters, holding a placeholder."""
    for name, kind in (
        ("worker-token", "SecureString"),
        ("manager-token", "SecureString"),
        ("manager-address", "String"),
    ):
        ssm.put_parameter(Name=f"/airtasks/{cluster}/swarm/{name}", Value=PLACEHOLDER, Type=kind)


def make_group(
    ec2: Any,
    autoscaling: Any,
    name: str,
    user_data_b64: str,
    *,
    size: tuple[int, int, int],
    tags: dict[str, str],
    hop_limit: int = 1,
) -> None:
    """A launch template with this user data (IMDSv2 only) and an Auto Scaling group over it:
    `size` is (min, max, desired); tags propagate to the instances, as the modules set them."""
    ec2.create_launch_template(
        LaunchTemplateName=name,
        LaunchTemplateData={
            "ImageId": AMI,
            "InstanceType": "t3.medium",
            "UserData": user_data_b64,
            "MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": hop_limit},
        },
    )
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchTemplate={"LaunchTemplateName": name, "Version": "$Latest"},
        MinSize=size[0],
        MaxSize=size[1],
        DesiredCapacity=size[2],
        AvailabilityZones=[f"{REGION}a"],
        Tags=[{"Key": k, "Value": v, "PropagateAtLaunch": True} for k, v in tags.items()],
    )


def group_state(autoscaling: Any, name: str) -> tuple[int, set[str]]:
    """An Auto Scaling group's desired capacity and the ids of its instances."""
    (found,) = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
    return int(found["DesiredCapacity"]), {i["InstanceId"] for i in found["Instances"]}


def service_container(node: Node, service: str) -> str:
    """The id of the stack service's container on `node` (e.g. "rabbitmq"; one per node), for
    `docker exec` as an operator on that node would."""
    label = f"com.docker.swarm.service.name=airtasks_{service}"
    ids = node.run([HOST_DOCKER_CLI, "ps", "-q", "--filter", f"label={label}"]).stdout.split()
    assert ids, f"no container of airtasks_{service} runs on {node.instance_id}"
    return ids[0]


def swarm_nodes(manager: Node) -> dict[str, dict[str, Any]]:
    """Swarm nodes as the manager sees them, by hostname."""
    with manager.client(timeout=10) as client:
        nodes = client.nodes.list()
    # A node that has just joined may not have reported its description yet.
    return {
        n.attrs["Description"]["Hostname"]: n.attrs for n in nodes if n.attrs["Description"].get("Hostname")
    }


def managers(node: Node) -> dict[str, dict[str, Any]]:
    """Manager nodes as `node` sees them, by hostname (= instance id): status and reachability.
    Answers only while the managers keep a Raft quorum."""
    with node.client(timeout=15) as client:
        found = client.nodes.list(filters={"role": "manager"})
    out = {}
    for n in found:
        hostname = n.attrs["Description"].get("Hostname")
        if hostname:
            out[hostname] = {
                "state": n.attrs["Status"]["State"],
                "reachability": n.attrs.get("ManagerStatus", {}).get("Reachability"),
                "leader": n.attrs.get("ManagerStatus", {}).get("Leader", False),
            }
    return out


def _tasks(manager: Node, service: str, **filters: str) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """A stack service's tasks (Swarm's task filters) and the hostname of each node by its id."""
    with manager.client(timeout=15) as client:
        hostnames = {n.id: n.attrs["Description"].get("Hostname") for n in client.nodes.list()}
        return hostnames, client.services.get(f"airtasks_{service}").tasks(filters=filters)


def running_tasks(manager: Node, service: str) -> dict[str, str]:
    """A stack service's running tasks: the id of each by its node's hostname (= instance id)."""
    hostnames, tasks = _tasks(manager, service, **{"desired-state": "running"})
    return {str(hostnames.get(t["NodeID"])): str(t["ID"]) for t in tasks if t["Status"]["State"] == "running"}


def running_on(manager: Node, service: str) -> set[str]:
    """Hostnames (= instance ids) of the nodes where a stack service has a running task."""
    return set(running_tasks(manager, service))


def service_tasks(
    manager: Node, service: str, last: int = 6, nodes: Callable[[str], Node] | None = None
) -> str:
    """The stack service's newest tasks as `docker service ps` shows them (node, desired and current
    state, error): why a task is not running, which a timed-out wait should say. Given `nodes`
    (instance id -> Node, e.g. the runner's), also what the newest task's container says: its
    health checks' last answers and its last log lines, since a task stays `starting` until its
    health check passes and only the container tells why."""
    hostnames, tasks = _tasks(manager, service)
    tasks.sort(key=lambda t: str(t["Status"].get("Timestamp", "")), reverse=True)
    lines = [
        f"{service} task on {hostnames.get(t.get('NodeID', ''), '-')}: desired {t['DesiredState']}, "
        f"{t['Status']['State']} since {str(t['Status'].get('Timestamp', '-'))[:19]}"
        f"{'; ' + t['Status']['Err'] if t['Status'].get('Err') else ''}"
        for t in tasks[:last]
    ]
    if nodes is not None and tasks:
        lines.append(_container_said(tasks[0], str(hostnames.get(tasks[0].get("NodeID", ""))), nodes))
    return "\n".join(lines) or f"{service}: no tasks"


def _container_said(task: dict[str, Any], hostname: str, nodes: Callable[[str], Node]) -> str:
    """A task's container: its health status and last checks, and its last log lines."""
    cid = task["Status"].get("ContainerStatus", {}).get("ContainerID")
    if not cid:
        return "  (the newest task has no container yet)"
    try:
        with nodes(hostname).client(timeout=15) as client:
            container = client.containers.get(cid)
            health = container.attrs["State"].get("Health") or {}
            logs = container.logs(tail=12).decode(errors="replace").rstrip()
    except Exception as exc:  # a diagnostic: a node or container already gone must not hide the timeout
        return f"  (container {cid[:12]} on {hostname} not readable: {type(exc).__name__}: {exc})"
    checks = [
        f"  check exit {c.get('ExitCode')}: {str(c.get('Output', '')).strip()[-300:]}"
        for c in (health.get("Log") or [])[-3:]
    ]
    status, streak = health.get("Status", "none"), health.get("FailingStreak", 0)
    head = f"  container {cid[:12]}: health {status}, failing streak {streak}"
    return "\n".join([head, *checks, "  last log lines:", *(f"  | {line}" for line in logs.splitlines())])


def swarm_answers(check: Any) -> Any:
    """A Swarm question that may not be answerable yet (a node or an election in flux): None."""
    try:
        return check()
    except (docker.errors.DockerException, requests.RequestException):
        return None


def rest(url: str, ca_bundle: Path, token: str | None = None, timeout: float = 60) -> httpx.Client:
    """REST v2 through the proxy at `url` (the box's, or https://<address> of one manager), pinned
    to the stack's own certificate, with `token` as its bearer if given. The certificate names the
    first manager's address (and `stack.tls_hostnames`), not every manager's, so the host name is
    not checked: a user puts a DNS name or a load balancer over the managers and lists it in
    `tls_hostnames`."""
    context = ssl.create_default_context(cafile=str(ca_bundle))
    context.check_hostname = False
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return httpx.Client(base_url=url, verify=context, timeout=timeout, headers=headers)


def keep_service_log(node: Node, service: str, since: float, prefix: str) -> None:
    """The service's log since `since` (a minute before), every task of it (one lost with its
    manager too, as far as the Swarm kept it), to tests/artifacts/<prefix>-<service>.log: kept from
    passing runs as well, so a slow recovery can be read afterwards."""
    cmd = [HOST_DOCKER_CLI, "service", "logs", "--timestamps", "--since", f"{int(since) - 60}"]
    try:
        # Exits 1 when a lost node's share cannot be read; what the others logged is still there.
        out = node.run([*cmd, f"airtasks_{service}"], timeout=60, check=False)
        lines = (out.stdout + out.stderr).splitlines(keepends=True)
        text = "".join(line for line in lines if "GET /health" not in line)
    except Exception as exc:  # a failed read must not hide the failure being reported
        text = f"could not read the {service} log: {exc}\n"
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"{prefix}-{service}.log").write_text(text)


def keep_timeline(name: str, text: str) -> None:
    """Print a test's timeline and keep it as tests/artifacts/`name`, from passing runs too, so the
    figures of a run can be read afterwards."""
    print(text)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / name).write_text(text + "\n")


def wait(
    predicate: Callable[[], Any],
    timeout: float,
    what: str,
    box: Box | None = None,
    why: Callable[[], str] | None = None,
) -> Any:
    """Poll `predicate` every second until it returns something true (HTTP errors count as not
    yet); on timeout the assertion names what was awaited, given a box its nodes, and last what
    `why` says (last, because a failure report keeps only a message's last lines)."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(httpx.HTTPError):
            result = predicate()
            if result:
                return result
        if time.monotonic() > deadline:
            detail = box.runner.describe() if box is not None else ""
            if why is not None:
                answer = swarm_answers(why)
                detail += f"\n{'(the Swarm did not answer)' if answer is None else answer}"
            load = "host load " + " ".join(f"{x:.1f}" for x in os.getloadavg())
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} ({load})\n{detail}")
        time.sleep(1)


def move_broker_off(manager: Node, hostname: str) -> None:
    """Start RabbitMQ on another manager (its queues are empty between the chain's runs)."""
    update = [HOST_DOCKER_CLI, "service", "update", "--detach", "--constraint-add"]
    manager.run([*update, f"node.hostname!={hostname}", "airtasks_rabbitmq"], timeout=60)
    wait(
        lambda: (swarm_answers(lambda: running_on(manager, "rabbitmq")) or {hostname}).isdisjoint({hostname}),
        240,
        f"RabbitMQ running off {hostname}",
    )
