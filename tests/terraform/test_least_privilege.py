"""Least privilege, layer 2: resource-level questions on the IAM policy documents Terraform plans
for envs/aws, answered by a local evaluator (tests/support/iam_eval.py: AWS's evaluation logic for
the condition operators we use). Layer 1, the actions on an IAM-enforcing AWS endpoint with the
roles' own credentials, is tests/integration/test_security.py.

- a worker role may read its cluster's worker token and the manager address, and nothing else:
  not the manager token, not another cluster's parameters, no write, no resize, no terminate;
- the manager role may resize and terminate only worker groups tagged with its own cluster (not a
  cluster whose name extends its own, not the managers' own group, not untagged groups), and may
  write only its own cluster's parameters;
- only the manager role may write, read and list database dumps under backups/ (a dump holds the
  connections' secrets), and nobody may delete one (the bucket's lifecycle expires them).
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
def plan(terraform: Terraform) -> PlanSummary:
    return terraform.plan("envs/aws", [HERE / "env-aws" / "three-queues.tfvars"])


@pytest.fixture(scope="module")
def policies(plan: PlanSummary) -> dict[str, list[dict[str, Any]]]:
    """The planned inline policies of envs/aws (three queues, cluster demo), by role: each role's
    own policy and, with task logs on (the default), the cluster's task-logs policy on it; with
    backups on (the default), the managers' backups policy too."""
    docs: dict[str, list[dict[str, Any]]] = {}
    for address, values in plan.of_type("aws_iam_role_policy").items():
        manager = address.startswith(
            (
                "module.cluster.module.manager.",
                'module.cluster.aws_iam_role_policy.logs["manager"]',
                "module.cluster.aws_iam_role_policy.backups[0]",
            )
        )
        role = "manager" if manager else address.split('"')[1]
        docs.setdefault(role, []).append(json.loads(values["policy"]))
    assert set(docs) == {"manager", "default", "io", "heavy"}
    assert len(docs["manager"]) == 3, "the manager: its own policy, the task-logs one, the backups one"
    assert all(len(docs[q]) == 2 for q in ("default", "io", "heavy")), "its own and the task-logs one"
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
    policies: dict[str, list[dict[str, Any]]], queue: str, action: str, resource: str, expected: str
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
    policies: dict[str, list[dict[str, Any]]],
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
    policies: dict[str, list[dict[str, Any]]], action: str, resource: str, expected: str
) -> None:
    assert evaluate(policies["manager"], action, resource, tags("demo", "worker")) == expected


LOGS = "arn:aws:s3:::airtasks-demo-log-123456789012-us-east-1"
OTHER_BUCKET = "arn:aws:s3:::airtasks-demo-dags-123456789012-us-east-1"
LOG_OBJECT = f"{LOGS}/logs/dag_id=d/run_id=r/task_id=t/attempt=1.log"
# (action, resource, expected) for every node, workers and managers alike (the managers run the
# scaler DAG's worker and the triggerer, and the API server reads): write and read back under
# logs/, list the log bucket, never delete; nothing in another bucket or under another prefix.
TASK_LOG_QUESTIONS = [
    ("s3:PutObject", LOG_OBJECT, "allow"),
    ("s3:GetObject", LOG_OBJECT, "allow"),
    ("s3:ListBucket", LOGS, "allow"),
    ("s3:DeleteObject", LOG_OBJECT, "implicit-deny"),
    ("s3:DeleteObjectVersion", LOG_OBJECT, "implicit-deny"),
    ("s3:PutBucketPolicy", LOGS, "implicit-deny"),
    ("s3:PutLifecycleConfiguration", LOGS, "implicit-deny"),
    ("s3:GetObject", f"{OTHER_BUCKET}/logs/x.log", "implicit-deny"),
    ("s3:ListBucket", OTHER_BUCKET, "implicit-deny"),
    ("s3:PutObject", "arn:aws:s3:::airtasks-other-log-123456789012-us-east-1/logs/x.log", "implicit-deny"),
]


@pytest.mark.parametrize(("action", "resource", "expected"), TASK_LOG_QUESTIONS)
def test_task_logs_written_and_read_under_the_prefix_never_deleted(
    policies: dict[str, list[dict[str, Any]]], action: str, resource: str, expected: str
) -> None:
    for role in ("default", "io", "heavy", "manager"):
        assert evaluate(policies[role], action, resource) == expected, role


def test_the_task_logs_grant_reaches_no_backup(policies: dict[str, list[dict[str, Any]]]) -> None:
    """The task-logs policy alone (every node has it) gives nothing under backups/."""
    for role in ("default", "manager"):
        (logs,) = [d for d in policies[role] if any(s.get("Sid") == "WriteTaskLogs" for s in d["Statement"])]
        for action in ("s3:PutObject", "s3:GetObject"):
            assert evaluate(logs, action, f"{LOGS}/backups/db.dump") == "implicit-deny", role


BACKUP = f"{LOGS}/backups/airflow-20250101T000000Z.dump"
# (action, resource, request context, expected for the manager, expected for every worker)
BACKUP_QUESTIONS = [
    ("s3:PutObject", BACKUP, {}, "allow", "implicit-deny"),
    ("s3:GetObject", BACKUP, {}, "allow", "implicit-deny"),  # a dump holds the connections' secrets
    ("s3:ListBucket", LOGS, {"s3:prefix": "backups/"}, "allow", "allow"),  # workers: task logs' list
    ("s3:DeleteObject", BACKUP, {}, "implicit-deny", "implicit-deny"),  # the lifecycle expires them
    ("s3:DeleteObjectVersion", BACKUP, {}, "implicit-deny", "implicit-deny"),
    ("s3:PutObject", f"{LOGS}/backupsx/db.dump", {}, "implicit-deny", "implicit-deny"),
    ("s3:GetObject", f"{OTHER_BUCKET}/backups/db.dump", {}, "implicit-deny", "implicit-deny"),
    ("s3:PutLifecycleConfiguration", LOGS, {}, "implicit-deny", "implicit-deny"),
]


@pytest.mark.parametrize(("action", "resource", "context", "manager", "worker"), BACKUP_QUESTIONS)
def test_only_the_managers_write_and_read_backups_nobody_deletes(
    policies: dict[str, list[dict[str, Any]]],
    action: str,
    resource: str,
    context: dict[str, str],
    manager: str,
    worker: str,
) -> None:
    assert evaluate(policies["manager"], action, resource, context) == manager
    for queue in ("default", "io", "heavy"):
        assert evaluate(policies[queue], action, resource, context) == worker, queue


def test_the_backups_list_grant_is_limited_to_the_prefix(plan: PlanSummary) -> None:
    """The backups policy on its own lists key names under backups/ only."""
    (grant,) = [
        json.loads(v["policy"])
        for a, v in plan.of_type("aws_iam_role_policy").items()
        if a == "module.cluster.aws_iam_role_policy.backups[0]"
    ]
    assert evaluate(grant, "s3:ListBucket", LOGS, {"s3:prefix": "backups/"}) == "allow"
    assert evaluate(grant, "s3:ListBucket", LOGS, {"s3:prefix": "logs/"}) == "implicit-deny"
    assert evaluate(grant, "s3:ListBucket", LOGS) == "implicit-deny"  # no prefix: the whole bucket


@pytest.mark.parametrize("resource", [LOGS, LOG_OBJECT])
def test_log_bucket_refuses_requests_without_tls(plan: PlanSummary, resource: str) -> None:
    (bucket_policy,) = [json.loads(v["policy"]) for v in plan.of_type("aws_s3_bucket_policy").values()]
    for action in ("s3:GetObject", "s3:PutObject", "s3:ListBucket"):
        assert evaluate(bucket_policy, action, resource, {"aws:SecureTransport": "false"}) == "deny"
        assert evaluate(bucket_policy, action, resource, {"aws:SecureTransport": "true"}) == "implicit-deny"
