"""envs/local applied on a moto server of its own, the real manager boot script run against it,
then (1) no secret anywhere Terraform or the boot put things, and (2) least privilege, layer 1: the
roles' own credentials (STS AssumeRole) on an endpoint that enforces IAM.

(1) The manager's user data (gzip, from the applied launch template) runs as in
test_boot_run.py: private mount + UTS namespaces, an IMDSv2 stand-in, the host's Swarm (docker
lock). It publishes that Swarm's real tokens to SSM. Then no Swarm token (`SWMTKN-`, or the values)
may be in the Terraform state, a re-plan's JSON, the outputs, any launch template version's user
data, an instance's user data attribute, or the boot log.

(2) moto enforces IAM once re-armed (`POST /moto-api/reset-auth`), but matches no resource ARN or
condition for SSM and Auto Scaling. So the deployed inline policies are read back from IAM and put
again with every statement's Resource widened to `*` and its Condition dropped (same actions);
resources and conditions are answered by layer 2 (tests/terraform/test_least_privilege.py). A test
user may assume the roles (as EC2 does for an instance). With the worker role: reading the worker
token and manager address works; writing any parameter, resizing, terminating is denied. With the
manager role: every call the scaler makes (read from glue/airtasks/backends/aws.py) is allowed,
deleting parameters, running or terminating instances outside a group, IAM are denied.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import botocore
import botocore.model
import botocore.session
import docker
import httpx
import pytest
from botocore.exceptions import ClientError
from botocore.parsers import ResponseParserError

from airtasks_dev.devstack.moto import MotoServer, run_moto
from airtasks_dev.devstack.terraform import Terraform
from tests.support.services.imds_stub import imds_stub
from tests.support.terraform import REPO, terraform_env

pytestmark = [pytest.mark.integration, pytest.mark.terraform]

VARS = {
    "queues": {
        "default": {"instance_types": ["t3.small"], "min_size": 1, "max_size": 3, "slots_per_node": 2}
    },
    "airflow_port": 18081,
}
REGION = "us-east-1"
DENIED = ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation")


@dataclass
class Applied:
    moto: MotoServer
    tf: Terraform
    outputs: dict[str, Any]
    workdir: Path
    boot_log: str = ""

    def client(self, service: str, creds: dict[str, str] | None = None) -> Any:
        keys = creds or {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        return boto3.client(service, endpoint_url=self.moto.url, region_name=REGION, **keys)


def boot_manager(
    script: str, moto: MotoServer, instance_id: str, tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    """The manager script as root in private mount + UTS namespaces, IMDS on loopback (as test_boot_run)."""
    (tmp_path / "boot.sh").write_text(script)
    (tmp_path / "hostname").write_text("builder\n")
    (tmp_path / "hosts").write_text("127.0.0.1 localhost\n")
    private = (
        "set -e; mount -t tmpfs tmpfs /etc/docker; mount -t tmpfs tmpfs /usr/local/sbin; "
        f"mount --bind {tmp_path}/hostname /etc/hostname; mount --bind {tmp_path}/hosts /etc/hosts; "
        f"exec bash {tmp_path}/boot.sh"
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        **moto.env(),
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin:/usr/sbin:/sbin:/usr/local/bin",
    }
    with imds_stub(instance_id, REGION) as imds:
        return subprocess.run(
            ["unshare", "--mount", "--uts", "--propagation", "private", "bash", "-c", private],
            env={**env, "AWS_EC2_METADATA_SERVICE_ENDPOINT": imds},
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )


@pytest.fixture(scope="module")
def applied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Applied]:
    """envs/local applied on a moto server of this module's own (IAM enforcement re-armed later)."""
    workdir = tmp_path_factory.mktemp("security")
    with run_moto(log=workdir / "moto.log") as moto:
        tf = Terraform(REPO / "envs/local", workdir / "tf", terraform_env(moto.env()), REPO / "terraform.rc")
        tf.init()
        tf.apply(VARS)
        yield Applied(moto, tf, tf.outputs(), workdir)


def manager_user_data(applied: Applied) -> str:
    ec2 = applied.client("ec2")
    (version,) = ec2.describe_launch_template_versions(
        LaunchTemplateName="airtasks-local-manager", Versions=["$Latest"]
    )["LaunchTemplateVersions"]
    return gzip.decompress(base64.b64decode(version["LaunchTemplateData"]["UserData"])).decode()


def test_no_token_in_state_plan_outputs_user_data_or_boot_log(
    applied: Applied, swarm: docker.DockerClient, tmp_path: Path
) -> None:
    boot = boot_manager(
        manager_user_data(applied), applied.moto, applied.outputs["manager_instance_id"], tmp_path
    )
    log = boot.stdout + boot.stderr
    assert boot.returncode == 0, log
    tokens = swarm.swarm.attrs["JoinTokens"]
    ssm = applied.client("ssm")
    params = applied.outputs["ssm_parameters"]
    published = {
        k: ssm.get_parameter(Name=n, WithDecryption=True)["Parameter"]["Value"] for k, n in params.items()
    }
    assert published["worker_token"] == tokens["Worker"], "the boot script published the real tokens"
    assert published["manager_token"] == tokens["Manager"]
    secrets = ["SWMTKN-", tokens["Worker"], tokens["Manager"]]

    plan = applied.workdir / "replan.tfplan"
    applied.tf.run(
        "plan",
        "-input=false",
        "-no-color",
        f"-state={applied.tf.state}",
        f"-out={plan}",
        *[f"-var={k}={json.dumps(v) if isinstance(v, dict) else v}" for k, v in VARS.items()],
    )
    ec2 = applied.client("ec2")
    user_data = []
    for template in ec2.describe_launch_templates()["LaunchTemplates"]:
        versions = ec2.describe_launch_template_versions(LaunchTemplateId=template["LaunchTemplateId"])
        for v in versions["LaunchTemplateVersions"]:
            raw = base64.b64decode(v["LaunchTemplateData"].get("UserData", ""))
            user_data.append(gzip.decompress(raw).decode() if raw[:2] == b"\x1f\x8b" else raw.decode())
    instances = [i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]
    assert instances, "the groups launched instances"
    for inst in instances:
        attr = ec2.describe_instance_attribute(InstanceId=inst["InstanceId"], Attribute="userData")
        raw = base64.b64decode(attr.get("UserData", {}).get("Value") or "")
        user_data.append(
            gzip.decompress(raw).decode() if raw[:2] == b"\x1f\x8b" else raw.decode(errors="replace")
        )
    places = {
        "Terraform state": applied.tf.state.read_text(),
        "re-plan JSON": applied.tf.run("show", "-json", str(plan)),
        "outputs": json.dumps(applied.outputs),
        "user data": "\n".join(user_data),
        "manager boot log": log,
    }
    assert "AIRTASKS_ROLE='manager'" in places["user data"]
    for where, text in places.items():
        for secret in secrets:
            assert secret not in text, f"a Swarm token ({secret[:12]}...) is in the {where}"


# ---- least privilege, layer 1 --------------------------------------------------------------------


def scaler_calls() -> set[str]:
    """The AWS API calls of the scaler's backend, read from its source (snake_case boto3 names)."""
    source = (REPO / "glue" / "airtasks" / "backends" / "aws.py").read_text()
    calls = {f"autoscaling:{m}" for m in re.findall(r"self\.autoscaling\.(\w+)\(", source)}
    calls |= {f"ec2:{m}" for m in re.findall(r"self\.ec2\.(\w+)\(", source) if m != "get_paginator"}
    calls.discard("autoscaling:get_paginator")
    # A paginator is named by its operation only: the service that has that operation calls it.
    session = botocore.session.get_session()
    for m in re.findall(r'get_paginator\("(\w+)"\)', source):
        (service,) = [
            s
            for s in ("autoscaling", "ec2")
            if xform_name_reverse(session.get_service_model(s), m) is not None
        ]
        calls.add(f"{service}:{m}")
    return calls


def xform_name_reverse(model: botocore.model.ServiceModel, snake: str) -> str | None:
    """The operation of `model` whose snake_case name is `snake`, if any."""
    return next((op for op in model.operation_names if botocore.xform_name(op) == snake), None)


def denied(call: Callable[[], Any]) -> bool:
    try:
        call()
    except ClientError as exc:
        error = exc.response.get("Error", {})
        return error.get("Code") in DENIED or "not authorized" in str(error.get("Message"))
    return False


@pytest.fixture(scope="module")
def role_credentials(applied: Applied) -> Iterator[dict[str, dict[str, str]]]:
    """Each role's policies with resources widened (moto matches none), then enforcement on, then
    assumed-role credentials for the worker and manager roles."""
    iam = applied.client("iam")
    user = iam.create_user(UserName="airtasks-security-test")["User"]
    iam.put_user_policy(
        UserName=user["UserName"],
        PolicyName="assume-airtasks-roles",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "sts:AssumeRole",
                        "Resource": "arn:aws:iam::*:role/airtasks-*",
                    }
                ],
            }
        ),
    )
    key = iam.create_access_key(UserName=user["UserName"])["AccessKey"]
    roles = {"worker": "airtasks-local-default", "manager": "airtasks-local-manager"}
    for role in roles.values():
        for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
            doc = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
            doc = json.loads(doc) if isinstance(doc, str) else doc
            statements = doc["Statement"] if isinstance(doc["Statement"], list) else [doc["Statement"]]
            widened = [
                {k: v for k, v in st.items() if k != "Condition"} | {"Resource": "*"} for st in statements
            ]
            iam.put_role_policy(
                RoleName=role, PolicyName=name, PolicyDocument=json.dumps({**doc, "Statement": widened})
            )
        # The test user in place of EC2 (moto's trust check handles AWS principals only).
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": user["Arn"]}, "Action": "sts:AssumeRole"},
            ],
        }
        iam.update_assume_role_policy(RoleName=role, PolicyDocument=json.dumps(trust))
    httpx.post(f"{applied.moto.url}/moto-api/reset-auth", content=b"0", timeout=10).raise_for_status()
    try:
        sts = applied.client(
            "sts", {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}
        )
        creds = {}
        for kind, role in roles.items():
            arn = iam_role_arn(applied, role)
            c = sts.assume_role(RoleArn=arn, RoleSessionName=f"{kind}-instance")["Credentials"]
            creds[kind] = {
                "aws_access_key_id": c["AccessKeyId"],
                "aws_secret_access_key": c["SecretAccessKey"],
                "aws_session_token": c["SessionToken"],
            }
        yield creds
    finally:
        httpx.post(f"{applied.moto.url}/moto-api/reset-auth", content=b"inf", timeout=10)


def iam_role_arn(applied: Applied, role: str) -> str:
    return f"arn:aws:iam::123456789012:role/{role}"


def test_worker_role_reads_join_info_and_can_change_nothing(
    applied: Applied, role_credentials: dict[str, dict[str, str]]
) -> None:
    ssm = applied.client("ssm", role_credentials["worker"])
    asg = applied.client("autoscaling", role_credentials["worker"])
    ec2 = applied.client("ec2", role_credentials["worker"])
    params = applied.outputs["ssm_parameters"]
    for name in (params["worker_token"], params["manager_address"]):
        ssm.get_parameter(Name=name, WithDecryption=True)  # allowed
    group = applied.outputs["worker_groups"]["default"]
    calls = {
        "put worker token": lambda: ssm.put_parameter(
            Name=params["worker_token"], Value="x", Type="SecureString", Overwrite=True
        ),
        "put manager token": lambda: ssm.put_parameter(
            Name=params["manager_token"], Value="x", Type="SecureString", Overwrite=True
        ),
        "put manager address": lambda: ssm.put_parameter(
            Name=params["manager_address"], Value="x", Type="String", Overwrite=True
        ),
        "put a new parameter": lambda: ssm.put_parameter(Name="/airtasks/local/x", Value="x", Type="String"),
        "delete a parameter": lambda: ssm.delete_parameter(Name=params["worker_token"]),
        "list parameters by path": lambda: ssm.get_parameters_by_path(Path="/airtasks/local"),
        "describe groups": lambda: asg.describe_auto_scaling_groups(AutoScalingGroupNames=[group]),
        "resize": lambda: asg.set_desired_capacity(AutoScalingGroupName=group, DesiredCapacity=3),
        "update the group": lambda: asg.update_auto_scaling_group(AutoScalingGroupName=group, MaxSize=50),
        "terminate in the group": lambda: asg.terminate_instance_in_auto_scaling_group(
            InstanceId="i-0123456789abcdef0", ShouldDecrementDesiredCapacity=True
        ),
        "terminate an instance": lambda: ec2.terminate_instances(InstanceIds=["i-0123456789abcdef0"]),
        "run an instance": lambda: ec2.run_instances(ImageId="ami-785db401", MinCount=1, MaxCount=1),
        "list roles": lambda: applied.client("iam", role_credentials["worker"]).list_roles(),
    }
    allowed = [what for what, call in calls.items() if not denied(call)]
    assert allowed == [], f"the worker role may {allowed}"


def test_manager_role_may_do_what_the_scaler_calls_and_no_more(
    applied: Applied, role_credentials: dict[str, dict[str, str]]
) -> None:
    creds = role_credentials["manager"]
    ssm, asg, ec2 = (applied.client(s, creds) for s in ("ssm", "autoscaling", "ec2"))
    params = applied.outputs["ssm_parameters"]
    group = applied.outputs["worker_groups"]["default"]
    (found,) = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"]
    victim = found["Instances"][0]["InstanceId"]
    calls = {
        "autoscaling:describe_auto_scaling_groups": lambda: asg.describe_auto_scaling_groups(
            AutoScalingGroupNames=[group]
        ),
        "autoscaling:set_desired_capacity": lambda: asg.set_desired_capacity(
            AutoScalingGroupName=group, DesiredCapacity=2
        ),
        "autoscaling:set_instance_protection": lambda: asg.set_instance_protection(
            AutoScalingGroupName=group, InstanceIds=[victim], ProtectedFromScaleIn=False
        ),
        "autoscaling:describe_lifecycle_hooks": lambda: asg.describe_lifecycle_hooks(
            AutoScalingGroupName=group
        ),
        "autoscaling:complete_lifecycle_action": lambda: asg.complete_lifecycle_action(
            AutoScalingGroupName=group,
            LifecycleHookName="airtasks-drain",
            LifecycleActionResult="CONTINUE",
            InstanceId=victim,
        ),
        "autoscaling:terminate_instance_in_auto_scaling_group": lambda: (
            asg.terminate_instance_in_auto_scaling_group(
                InstanceId=victim, ShouldDecrementDesiredCapacity=True
            )
        ),
        "ec2:describe_instances": lambda: ec2.describe_instances(InstanceIds=[victim]),
        "ssm:put_parameter": lambda: ssm.put_parameter(
            Name=params["manager_address"], Value="127.0.0.1:2377", Type="String", Overwrite=True
        ),
        "ssm:get_parameter": lambda: ssm.get_parameter(Name=params["manager_token"], WithDecryption=True),
    }
    assert scaler_calls() <= set(calls), f"the scaler calls {scaler_calls() - set(calls)}: add them here"
    refused = []
    for what, call in calls.items():
        try:
            call()
        except ClientError as exc:  # a moto limitation is fine; a refusal is not
            if exc.response.get("Error", {}).get("Code") in DENIED:
                refused.append(what)
        except ResponseParserError:
            # moto authorises first, then answers 500 for calls it does not implement
            # (CompleteLifecycleAction): authorised, which is what is asked here.
            pass
    assert refused == [], f"the manager role may not {refused}"
    beyond = {
        "delete a parameter": lambda: ssm.delete_parameter(Name=params["worker_token"]),
        "terminate an instance": lambda: ec2.terminate_instances(InstanceIds=[victim]),
        "run an instance": lambda: ec2.run_instances(ImageId="ami-785db401", MinCount=1, MaxCount=1),
        "update the group": lambda: asg.update_auto_scaling_group(AutoScalingGroupName=group, MaxSize=50),
        "delete the group": lambda: asg.delete_auto_scaling_group(
            AutoScalingGroupName=group, ForceDelete=True
        ),
        "create a user": lambda: applied.client("iam", creds).create_user(UserName="intruder"),
    }
    allowed = [what for what, call in beyond.items() if not denied(call)]
    assert allowed == [], f"the manager role may also {allowed}"
