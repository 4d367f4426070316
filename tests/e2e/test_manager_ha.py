"""Manager high availability with the real boot scripts: three managers of an Auto Scaling group
(`manager_count = 3`) on local-cloud nodes form one Swarm, lose one and keep quorum, and the
group's replacement joins as a manager while the lost one is removed.

What the managers' launch template carries is what `modules/aws/swarm-manager` gives it: the
manager script gzip-compressed (`user_data_base64`). The lowest instance id initialises the Swarm,
the two others join with the manager token from SSM. The test terminates the manager that
initialised (the one whose address is published): the survivors still answer `docker node ls`
and show it Down; the group launches a replacement; the Swarm leader's maintenance timer points
the published address at a live manager, the replacement joins as a manager, and the leader
demotes and removes the lost node.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from airtasks_dev.devstack.moto import MotoServer
from airtasks_dev.localcloud.runner import NodeRunner
from tests.e2e.helpers import REGION, clients, group_state, make_group, managers, put_placeholders
from tests.support.terraform import REPO, TERRAFORM, terraform_env

pytestmark = pytest.mark.e2e


def render_manager_user_data(cluster: str, workdir: Path) -> str:
    """`terraform apply` of a root module with the swarm-boot manager script for 3 managers."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "main.tf").write_text(
        textwrap.dedent(f"""\
        module "manager" {{
          source               = "{REPO / "modules" / "swarm-boot"}"
          cloud                = "aws"
          role                 = "manager"
          cluster_name         = "{cluster}"
          region               = "{REGION}"
          worker_token_ref     = "/airtasks/{cluster}/swarm/worker-token"
          manager_token_ref    = "/airtasks/{cluster}/swarm/manager-token"
          manager_address_ref  = "/airtasks/{cluster}/swarm/manager-address"
          manager_count        = 3
          docker_install       = false
          join_timeout_seconds = 300
          labels               = {{ "airtasks.queue" = "manager" }}
        }}
        output "user_data" {{ value = module.manager.user_data_base64 }}
        """)
    )
    env = terraform_env()
    for args in (
        ["init", "-input=false", "-no-color"],
        ["apply", "-auto-approve", "-input=false", "-no-color"],
    ):
        subprocess.run([TERRAFORM, f"-chdir={workdir}", *args], env=env, check=True, capture_output=True)
    out = subprocess.run(
        [TERRAFORM, f"-chdir={workdir}", "output", "-json", "user_data"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return str(json.loads(out.stdout))


def test_three_managers_keep_quorum_and_a_replacement_rejoins(
    node_runner: NodeRunner, cloud_moto: MotoServer, cluster_name: str, tmp_path: Path
) -> None:
    started = time.monotonic()
    user_data = render_manager_user_data(cluster_name, tmp_path / "render")
    ec2, ssm, autoscaling = clients(cloud_moto)
    put_placeholders(ssm, cluster_name)
    group = f"airtasks-{cluster_name}-manager"
    # gzip + base64, as modules/aws/swarm-manager passes it; hop limit 2 (the scaler's container)
    make_group(
        ec2,
        autoscaling,
        group,
        user_data,
        size=(3, 3, 3),
        tags={"airtasks:cluster": cluster_name, "airtasks:role": "manager"},
        hop_limit=2,
    )

    def in_group() -> set[str]:
        return group_state(autoscaling, group)[1]

    first = in_group()
    assert len(first) == 3
    for iid in first:
        node = node_runner.wait_booted(iid, timeout=240)
        assert node.timings.exit_code == 0, node_runner.describe()
    init = min(first)  # the lowest instance id initialises
    logs = {iid: node_runner.node(iid).boot_log.read_text() for iid in first}
    assert "this is the first manager" in logs[init]
    assert "Swarm initialised" in logs[init]
    for iid in first - {init}:
        assert "as a manager" in logs[iid], logs[iid]
        assert "Swarm initialised" not in logs[iid], logs[iid]
    formed = time.monotonic() - started

    survivor = node_runner.node(min(first - {init}))
    seen = managers(survivor)
    assert set(seen) == first
    assert all(m["state"] == "ready" and m["reachability"] == "reachable" for m in seen.values()), seen
    assert sum(m["leader"] for m in seen.values()) == 1
    published = ssm.get_parameter(Name=f"/airtasks/{cluster_name}/swarm/manager-address")["Parameter"]
    assert published["Value"] == f"{node_runner.node(init).address}:2377"

    # Lose the manager that initialised (its address is the published one); the group replaces it.
    lost_at = time.monotonic()
    autoscaling.terminate_instance_in_auto_scaling_group(
        InstanceId=init, ShouldDecrementDesiredCapacity=False
    )
    (replacement,) = in_group() - first

    def lost_is_down() -> bool:
        try:
            seen = managers(survivor)  # works only while the survivors keep quorum
        except Exception:
            return False
        return seen.get(init, {}).get("state") == "down" and seen[init]["reachability"] == "unreachable"

    node_runner.wait(lost_is_down, 90, f"the survivors to show {init} Down/Unreachable")
    down_after = time.monotonic() - lost_at

    def healed() -> bool:
        try:
            seen = managers(survivor)
        except Exception:
            return False
        return set(seen) == (first - {init}) | {replacement} and all(
            m["state"] == "ready" and m["reachability"] == "reachable" for m in seen.values()
        )

    node_runner.wait(healed, 240, f"{replacement} to join as a manager and {init} to be removed")
    healed_after = time.monotonic() - lost_at
    rejoined = node_runner.wait_booted(replacement, timeout=120)
    assert rejoined.timings.exit_code == 0, node_runner.describe()
    assert "as a manager" in rejoined.boot_log.read_text()
    address = ssm.get_parameter(Name=f"/airtasks/{cluster_name}/swarm/manager-address")["Parameter"]["Value"]
    live = {node_runner.node(i).address for i in (first - {init}) | {replacement}}
    assert address.removesuffix(":2377") in live, "the published address moved to a live manager"
    for iid in (first - {init}) | {replacement}:
        assert "SWMTKN" not in node_runner.node(iid).boot_log.read_text()
    print(
        f"manager HA: 3 managers formed in {formed:.0f}s; lost one Down after {down_after:.0f}s; "
        f"replacement a manager and lost node removed after {healed_after:.0f}s"
    )
