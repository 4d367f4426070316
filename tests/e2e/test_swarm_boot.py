"""The real boot scripts of `modules/swarm-boot`, rendered by Terraform, booting local-cloud nodes.

The manager instance inits the Swarm and publishes the tokens and its address to SSM (moto); the
workers of an autoscaling group, launched before it, wait for them and join with the contract's
labels; their hostname is their instance id; the manager's timer copies the engine labels to node
labels; a worker that finds a wrong token fails with a clear error in its boot log.
"""

from __future__ import annotations

import base64
import json
import subprocess
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from airtasks_dev.devstack.moto import MotoServer
from airtasks_dev.localcloud.runner import NodeRunner
from tests.e2e.helpers import (
    AMI,
    REGION,
    clients,
    cluster_tags,
    group_state,
    make_group,
    put_placeholders,
    swarm_nodes,
)
from tests.support.terraform import REPO, TERRAFORM, terraform_env

pytestmark = pytest.mark.e2e

BAD_TOKEN = "SWMTKN-1-" + "0" * 50 + "-" + "a" * 25


def render_boot_scripts(cluster: str, workdir: Path) -> dict[str, str]:
    """`terraform apply` of a root module with the manager and worker boot scripts (no providers)."""
    workdir.mkdir(parents=True, exist_ok=True)
    refs = {
        name: f"/airtasks/{cluster}/swarm/{name}"
        for name in ("worker-token", "manager-token", "manager-address")
    }
    common = textwrap.dedent(f"""\
        source               = "{REPO / "modules" / "swarm-boot"}"
        cloud                = "aws"
        cluster_name         = "{cluster}"
        region               = "{REGION}"
        worker_token_ref     = "{refs["worker-token"]}"
        manager_address_ref  = "{refs["manager-address"]}"
        docker_install       = false
        join_timeout_seconds = 120
        """)
    (workdir / "main.tf").write_text(
        f'module "manager" {{\n{common}  role = "manager"\n'
        f'  manager_token_ref = "{refs["manager-token"]}"\n}}\n'
        f'module "worker" {{\n{common}  role = "worker"\n  queue = "default"\n}}\n'
        'output "manager" { value = module.manager.script }\n'
        'output "worker" { value = module.worker.script }\n'
    )
    env = terraform_env()
    for args in (
        ["init", "-input=false", "-no-color"],
        ["apply", "-auto-approve", "-input=false", "-no-color"],
    ):
        subprocess.run([TERRAFORM, f"-chdir={workdir}", *args], env=env, check=True, capture_output=True)
    out = subprocess.run(
        [TERRAFORM, f"-chdir={workdir}", "output", "-json"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return {name: value["value"] for name, value in json.loads(out.stdout).items()}


def test_real_boot_scripts_build_the_swarm(
    node_runner: NodeRunner, cloud_moto: MotoServer, cluster_name: str, tmp_path: Path
) -> None:
    scripts = render_boot_scripts(cluster_name, tmp_path / "render")
    ec2, ssm, autoscaling = clients(cloud_moto)
    put_placeholders(ssm, cluster_name)
    # The worker group first (launch template user data is base64, as aws_launch_template wants it).
    group = f"airtasks-{cluster_name}-default"
    make_group(
        ec2,
        autoscaling,
        group,
        base64.b64encode(scripts["worker"].encode()).decode(),
        size=(0, 5, 1),
        tags={"airtasks:cluster": cluster_name, "airtasks:queue": "default", "airtasks:role": "worker"},
    )

    def instances() -> set[str]:
        return group_state(autoscaling, group)[1]

    (early,) = instances()
    node_runner.wait(
        lambda: early in node_runner.nodes and "still holds the placeholder" in _log(node_runner, early),
        60,
        "the early worker to wait for the manager",
    )

    manager_id = ec2.run_instances(
        ImageId=AMI,
        MinCount=1,
        MaxCount=1,
        UserData=scripts["manager"],
        TagSpecifications=cluster_tags(cluster_name, "manager"),
        MetadataOptions={"HttpTokens": "required"},
    )["Instances"][0]["InstanceId"]
    manager = node_runner.wait_booted(manager_id, timeout=120)
    assert manager.timings.exit_code == 0, node_runner.describe()
    manager_log = manager.boot_log.read_text()
    assert "airtasks-boot: Swarm initialised" in manager_log
    assert manager.hostname() == manager_id

    def param(name: str) -> str:
        value = ssm.get_parameter(Name=f"/airtasks/{cluster_name}/swarm/{name}", WithDecryption=True)
        return str(value["Parameter"]["Value"])

    worker_token = manager.run(["docker", "swarm", "join-token", "-q", "worker"]).stdout.strip()
    assert param("worker-token") == worker_token
    assert (
        param("manager-token")
        == manager.run(["docker", "swarm", "join-token", "-q", "manager"]).stdout.strip()
    )
    assert param("manager-address") == f"{manager.address}:2377"

    worker = node_runner.wait_booted(early, timeout=120)
    assert worker.timings.exit_code == 0, node_runner.describe()
    assert "airtasks-boot: joined the Swarm" in worker.boot_log.read_text()

    # Scale out into the running Swarm: the number that matters for the scaler.
    autoscaling.set_desired_capacity(AutoScalingGroupName=group, DesiredCapacity=2)
    (late,) = instances() - {early}
    ready_at: dict[str, float] = {}

    def ready() -> bool:
        for hostname, attrs in swarm_nodes(manager).items():
            if attrs["Status"]["State"] == "ready":
                ready_at.setdefault(hostname, time.monotonic())
        return {early, late} <= set(ready_at)

    node_runner.wait(ready, 90, "both workers Ready")
    seen = node_runner.node(late).timings.seen
    assert seen is not None
    print(f"real boot script, scale-out: {late} running -> Swarm Ready {ready_at[late] - seen:.1f}s")
    print(f"  timings since running: {node_runner.node(late).timings.since_seen()}")

    nodes = swarm_nodes(manager)
    expected = {"airtasks.role": "worker", "airtasks.queue": "default", "airtasks.cluster": cluster_name}
    for iid in (early, late):
        assert nodes[iid]["Spec"]["Role"] == "worker"
        assert nodes[iid]["Description"]["Engine"]["Labels"] == expected
        assert node_runner.node(iid).hostname() == iid
        assert nodes[iid]["Status"]["Addr"] == node_runner.node(iid).address
    assert nodes[manager_id]["Description"]["Engine"]["Labels"] == {
        "airtasks.role": "manager",
        "airtasks.cluster": cluster_name,
    }

    # A worker that gets a token the Swarm refuses says so in its boot log, and fails.
    ssm.put_parameter(Name=f"/airtasks/{cluster_name}/swarm/worker-token", Value=BAD_TOKEN, Overwrite=True)
    autoscaling.set_desired_capacity(AutoScalingGroupName=group, DesiredCapacity=3)
    (refused,) = instances() - {early, late}
    bad = node_runner.wait_booted(refused, timeout=90)
    bad_log = bad.boot_log.read_text()
    assert bad.timings.exit_code != 0
    assert "refused the worker token" in bad_log, bad_log
    assert BAD_TOKEN not in bad_log

    # The manager's timer copies the engine labels to node labels (for node.labels.* placement).
    def node_labels_copied() -> bool:
        current = swarm_nodes(manager)
        return all(current[iid]["Spec"].get("Labels", {}) == expected for iid in (early, late))

    labelled = time.monotonic()
    node_runner.wait(node_labels_copied, 75, "the manager to copy engine labels to node labels")
    print(f"node labels copied {time.monotonic() - labelled:.1f}s after both workers were Ready")

    # No token in any boot log or in the user data.
    for node in node_runner.nodes.values():
        assert worker_token not in node.boot_log.read_text()
    assert worker_token not in scripts["worker"] + scripts["manager"]


def _log(runner: NodeRunner, iid: str) -> str:
    node: Any = runner.nodes.get(iid)
    return node.boot_log.read_text() if node is not None and node.boot_log.exists() else ""
