"""envs/local applied against a moto server this test starts: the outputs, a resize by the scaler
(set desired capacity, then terminate exactly one protected instance with decrement), a re-plan
with no changes, no Swarm token or other secret in the plan or the state, and a destroy that
leaves nothing behind."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from airtasks_dev.devstack.moto import MotoServer, run_moto
from airtasks_dev.devstack.terraform import Terraform
from tests.support.terraform import REPO, terraform_env

pytestmark = [pytest.mark.integration, pytest.mark.terraform]

QUEUES = {
    "default": {"instance_types": ["t3.small"], "min_size": 0, "max_size": 3, "slots_per_node": 2},
    "heavy": {
        "instance_types": ["t3.small", "t3a.small"],
        "min_size": 0,
        "max_size": 2,
        "slots_per_node": 4,
        "spot": True,
    },
}
FAKE_TOKEN = "SWMTKN-1-0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdef-fakefakefakefakefake"


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    with run_moto(log=tmp_path_factory.mktemp("moto-envs") / "moto.log") as server:
        yield server


@pytest.fixture(scope="module")
def aws(moto: MotoServer) -> dict[str, Any]:
    env = moto.env()
    kw = {
        "endpoint_url": moto.url,
        "region_name": "us-east-1",
        "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
    }
    return {name: boto3.client(name, **kw) for name in ("autoscaling", "ec2", "ssm", "iam")}


def _plan_exitcode(tf: Terraform, out: Path) -> tuple[int, str]:
    args = ["plan", "-detailed-exitcode", "-input=false", "-no-color", f"-state={tf.state}", f"-out={out}"]
    args += [f"-var=queues={json.dumps(QUEUES)}", "-var=airflow_port=18080"]
    cmd = [tf.binary or "terraform", f"-chdir={tf.root}", *args]
    proc = subprocess.run(cmd, env=tf.env, capture_output=True, text=True, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def test_apply_resize_replan_destroy(moto: MotoServer, aws: dict[str, Any], tmp_path: Path) -> None:
    tf = Terraform(REPO / "envs/local", tmp_path / "tf", terraform_env(moto.env()), REPO / "terraform.rc")
    tf.init()
    # Well inside the test's own timeout, so that a stuck apply or destroy fails with Terraform's
    # last lines (which resource it still waits for), not a bare pytest timeout.
    tf.apply({"queues": QUEUES, "airflow_port": 18080}, timeout=420)
    outputs = tf.outputs()

    # -- what the scaler reads ------------------------------------------------------------------
    config = outputs["scaler_config"]
    assert config["backend"] == "aws"
    assert config["sources"] == {"airflow": {"url": "http://127.0.0.1:18080"}, "rabbitmq": None}
    assert config["queues"] == {
        "default": {
            "group": "airtasks-local-default",
            "min_size": 0,
            "max_size": 3,
            "slots_per_node": 2,
            "prescale": True,
            "pack": False,
            "learn_durations": False,
        },
        "heavy": {
            "group": "airtasks-local-heavy",
            "min_size": 0,
            "max_size": 2,
            "slots_per_node": 4,
            "prescale": True,
            "pack": False,
            "learn_durations": False,
        },
    }
    groups = {
        g["AutoScalingGroupName"]: g
        for g in aws["autoscaling"].describe_auto_scaling_groups()["AutoScalingGroups"]
    }
    assert sorted(groups) == ["airtasks-local-default", "airtasks-local-heavy", "airtasks-local-manager"]
    manager_group = groups[outputs["manager_group"]]
    assert outputs["manager_group"] == "airtasks-local-manager"
    assert (manager_group["MinSize"], manager_group["MaxSize"]) == (1, 1)  # replaced when lost
    assert outputs["manager_instance_id"] == manager_group["Instances"][0]["InstanceId"]
    for queue, group in [(q, groups[c["group"]]) for q, c in config["queues"].items()]:
        tags = {t["Key"]: (t["Value"], t["PropagateAtLaunch"]) for t in group["Tags"]}
        assert tags["airtasks:cluster"] == ("local", True)
        assert tags["airtasks:queue"] == (queue, True)
        assert group["NewInstancesProtectedFromScaleIn"] is True
    hooks = aws["autoscaling"].describe_lifecycle_hooks(AutoScalingGroupName="airtasks-local-default")
    assert [h["LifecycleTransition"] for h in hooks["LifecycleHooks"]] == [
        "autoscaling:EC2_INSTANCE_TERMINATING"
    ]
    params = outputs["ssm_parameters"]
    for name in params.values():
        value = aws["ssm"].get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
        assert value == "airtasks:pending"

    # -- the manager publishes its tokens; the scaler resizes ------------------------------------
    aws["ssm"].put_parameter(
        Name=params["worker_token"], Value=FAKE_TOKEN, Type="SecureString", Overwrite=True
    )
    aws["ssm"].put_parameter(
        Name=params["manager_token"], Value=FAKE_TOKEN, Type="SecureString", Overwrite=True
    )
    asg = aws["autoscaling"]
    asg.set_desired_capacity(AutoScalingGroupName="airtasks-local-default", DesiredCapacity=2)
    (group,) = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["airtasks-local-default"])[
        "AutoScalingGroups"
    ]
    assert len(group["Instances"]) == 2
    assert all(i["ProtectedFromScaleIn"] for i in group["Instances"])
    victim = group["Instances"][0]["InstanceId"]
    asg.terminate_instance_in_auto_scaling_group(InstanceId=victim, ShouldDecrementDesiredCapacity=True)
    (group,) = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["airtasks-local-default"])[
        "AutoScalingGroups"
    ]
    assert group["DesiredCapacity"] == 1
    assert victim not in [i["InstanceId"] for i in group["Instances"]]

    # -- Terraform does not fight the scaler, and holds no secret ---------------------------------
    code, log = _plan_exitcode(tf, tmp_path / "replan.tfplan")
    assert code == 0, f"re-plan after the resize is not empty:\n{log}"
    shown = tf.run("show", "-json", str(tmp_path / "replan.tfplan"))
    for text, where in ((shown, "plan JSON"), (tf.state.read_text(), "state")):
        assert "SWMTKN" not in text, f"a Swarm token is in the {where}"
        assert FAKE_TOKEN not in text
        assert "testing" not in json.dumps(json.loads(text).get("outputs", {})), (
            f"credentials in {where} outputs"
        )
    state = json.loads(tf.state.read_text())
    for res in state["resources"]:
        if res["type"] == "aws_ssm_parameter":
            for inst in res["instances"]:
                assert inst["attributes"].get("value") in (None, ""), "a parameter value is in the state"

    # -- the scaler empties the group (terminate with decrement), then destroy ---------------------
    # (moto's force delete leaves protected instances running; AWS terminates them with the group)
    for inst in group["Instances"]:
        asg.terminate_instance_in_auto_scaling_group(
            InstanceId=inst["InstanceId"], ShouldDecrementDesiredCapacity=True
        )
    tf.destroy({"queues": QUEUES, "airflow_port": 18080}, timeout=300)

    assert asg.describe_auto_scaling_groups()["AutoScalingGroups"] == []
    assert aws["ec2"].describe_launch_templates()["LaunchTemplates"] == []
    live = [
        i["InstanceId"]
        for r in aws["ec2"].describe_instances()["Reservations"]
        for i in r["Instances"]
        if i["State"]["Name"] not in ("terminated", "shutting-down")
    ]
    assert live == []
    assert aws["ssm"].describe_parameters()["Parameters"] == []
    assert [
        r["RoleName"] for r in aws["iam"].list_roles()["Roles"] if r["RoleName"].startswith("airtasks-")
    ] == []
    assert aws["iam"].list_instance_profiles()["InstanceProfiles"] == []
    tagged = [{"Name": "tag:airtasks:cluster", "Values": ["local"]}]
    assert aws["ec2"].describe_vpcs(Filters=tagged)["Vpcs"] == []
    assert aws["ec2"].describe_subnets(Filters=tagged)["Subnets"] == []
    assert aws["ec2"].describe_security_groups(Filters=tagged)["SecurityGroups"] == []
    assert aws["ec2"].describe_addresses()["Addresses"] == []
    assert json.loads(tf.state.read_text())["resources"] == []
