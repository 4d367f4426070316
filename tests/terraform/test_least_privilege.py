"""Least privilege, layer 2: resource-level questions on the IAM policy documents Terraform plans
for envs/aws, answered by a local evaluator (tests/support/iam_eval.py: AWS's evaluation logic for
the condition operators we use). Layer 1, the actions on an IAM-enforcing AWS endpoint with the
roles' own credentials, is tests/integration/test_security.py.

- a worker role may read its cluster's worker token and the manager address, and nothing else:
  not the manager token, not another cluster's parameters, no write, no resize, no terminate;
- the manager role may resize and terminate only worker groups tagged with its own cluster (not a
  cluster whose name extends its own, not the managers' own group, not untagged groups), and may
  write only its own cluster's parameters.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.iam_eval import evaluate
from tests.terraform.conftest import HERE, PlanSummary, Terraform

ACCOUNT = "123456789012"
REGION = "us-east-1"
SSM = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter"


def asg_arn(name: str) -> str:
    return f"arn:aws:autoscaling:{REGION}:{ACCOUNT}:autoScalingGroup:0f1e2d3c:autoScalingGroupName/{name}"


def tags(cluster: str | None, role: str | None) -> dict[str, str]:
    out = {}
    if cluster is not None:
        out["aws:ResourceTag/airtasks:cluster"] = cluster
    if role is not None:
        out["aws:ResourceTag/airtasks:role"] = role
    return out


@pytest.fixture(scope="module")
def policies(terraform: Terraform) -> dict[str, dict[str, Any]]:
    """The planned inline policies of envs/aws (three queues, cluster demo), by role."""
    plan: PlanSummary = terraform.plan("envs/aws", [HERE / "env-aws" / "three-queues.tfvars"])
    docs = {}
    for address, values in plan.of_type("aws_iam_role_policy").items():
        role = "manager" if address.startswith("module.cluster.module.manager.") else address.split('"')[1]
        docs[role] = json.loads(values["policy"])
    assert set(docs) == {"manager", "default", "io", "heavy"}
    return docs


WORKER_QUESTIONS = [
    # (action, resource, expected)
    ("ssm:GetParameter", f"{SSM}/airtasks/demo/swarm/worker-token", "allow"),
    ("ssm:GetParameter", f"{SSM}/airtasks/demo/swarm/manager-address", "allow"),
    ("ssm:GetParameter", f"{SSM}/airtasks/demo/swarm/manager-token", "implicit-deny"),
    ("ssm:GetParameters", f"{SSM}/airtasks/demo/swarm/manager-token", "implicit-deny"),
    ("ssm:GetParametersByPath", f"{SSM}/airtasks/demo", "implicit-deny"),
    ("ssm:GetParameter", f"{SSM}/airtasks/demo-x/swarm/worker-token", "implicit-deny"),
    ("ssm:GetParameter", f"{SSM}/airtasks/other/swarm/worker-token", "implicit-deny"),
    ("ssm:PutParameter", f"{SSM}/airtasks/demo/swarm/worker-token", "implicit-deny"),
    ("ssm:PutParameter", f"{SSM}/airtasks/demo/swarm/manager-address", "implicit-deny"),
    ("ssm:DeleteParameter", f"{SSM}/airtasks/demo/swarm/worker-token", "implicit-deny"),
    ("autoscaling:SetDesiredCapacity", asg_arn("airtasks-demo-default"), "implicit-deny"),
    ("autoscaling:TerminateInstanceInAutoScalingGroup", asg_arn("airtasks-demo-default"), "implicit-deny"),
    ("ec2:TerminateInstances", f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/i-0abc", "implicit-deny"),
    ("ec2:RunInstances", "*", "implicit-deny"),
    ("iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/airtasks-demo-manager", "implicit-deny"),
    ("sts:AssumeRole", f"arn:aws:iam::{ACCOUNT}:role/airtasks-demo-manager", "implicit-deny"),
]


@pytest.mark.parametrize("queue", ["default", "io", "heavy"])
@pytest.mark.parametrize(("action", "resource", "expected"), WORKER_QUESTIONS)
def test_worker_role_reads_only_the_join_info(
    policies: dict[str, dict[str, Any]], queue: str, action: str, resource: str, expected: str
) -> None:
    context = tags("demo", "worker")  # even on its own cluster's resources
    assert evaluate(policies[queue], action, resource, context) == expected


SCALER_ACTIONS = [
    "autoscaling:SetDesiredCapacity",
    "autoscaling:SetInstanceProtection",
    "autoscaling:TerminateInstanceInAutoScalingGroup",
    "autoscaling:CompleteLifecycleAction",
]

GROUP_QUESTIONS = [
    # (group name, its tags (cluster, role), expected): only our cluster's worker groups
    ("airtasks-demo-default", ("demo", "worker"), "allow"),
    ("airtasks-demo-heavy", ("demo", "worker"), "allow"),
    ("airtasks-demo-manager", ("demo", "manager"), "implicit-deny"),  # the managers' own group
    (
        "airtasks-demo-x-default",
        ("demo-x", "worker"),
        "implicit-deny",
    ),  # the name prefix matches, the tag not
    ("airtasks-demo-untagged", (None, None), "implicit-deny"),
    ("airtasks-demo-norole", ("demo", None), "implicit-deny"),
    ("airtasks-other-default", ("other", "worker"), "implicit-deny"),
    ("someone-elses-group", ("demo", "worker"), "implicit-deny"),  # tagged, but not ours by name
]


@pytest.mark.parametrize("action", SCALER_ACTIONS)
@pytest.mark.parametrize(("group", "group_tags", "expected"), GROUP_QUESTIONS)
def test_manager_resizes_and_terminates_only_its_clusters_worker_groups(
    policies: dict[str, dict[str, Any]],
    action: str,
    group: str,
    group_tags: tuple[str | None, str | None],
    expected: str,
) -> None:
    assert evaluate(policies["manager"], action, asg_arn(group), tags(*group_tags)) == expected


@pytest.mark.parametrize(
    ("action", "resource", "expected"),
    [
        ("ssm:PutParameter", f"{SSM}/airtasks/demo/swarm/worker-token", "allow"),
        ("ssm:PutParameter", f"{SSM}/airtasks/demo/swarm/manager-address", "allow"),
        ("ssm:GetParameter", f"{SSM}/airtasks/demo/swarm/manager-token", "allow"),
        ("ssm:PutParameter", f"{SSM}/airtasks/demo-x/swarm/worker-token", "implicit-deny"),
        ("ssm:PutParameter", f"{SSM}/airtasks/other/swarm/worker-token", "implicit-deny"),
        ("ssm:DeleteParameter", f"{SSM}/airtasks/demo/swarm/worker-token", "implicit-deny"),
        ("autoscaling:DescribeAutoScalingGroups", "*", "allow"),
        ("autoscaling:DescribeLifecycleHooks", "*", "allow"),
        ("ec2:DescribeInstances", "*", "allow"),
        ("autoscaling:UpdateAutoScalingGroup", asg_arn("airtasks-demo-default"), "implicit-deny"),
        ("autoscaling:DeleteAutoScalingGroup", asg_arn("airtasks-demo-default"), "implicit-deny"),
        ("ec2:TerminateInstances", f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/i-0abc", "implicit-deny"),
        ("ec2:RunInstances", "*", "implicit-deny"),
        ("iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/airtasks-demo-default", "implicit-deny"),
    ],
)
def test_manager_parameters_and_nothing_beyond_the_scaler(
    policies: dict[str, dict[str, Any]], action: str, resource: str, expected: str
) -> None:
    assert evaluate(policies["manager"], action, resource, tags("demo", "worker")) == expected
