"""Each bad input fails `terraform plan` with a message that names the variable and the fix."""

from __future__ import annotations

import pytest

from tests.bad_input import of_kind
from tests.support.terraform import REPO
from tests.terraform.conftest import HERE, PlanError, Terraform

ENV = "envs/aws"
ENV_VARS = HERE / "env-aws" / "three-queues.tfvars"
GROUP = "modules/aws/worker-group"
GROUP_VARS = HERE / "aws-worker-group" / "on-demand.tfvars"
CLUSTER = "modules/aws/cluster"
CLUSTER_VARS = HERE / "aws-cluster" / "stack.tfvars"
Q = {"instance_types": ["t3.large"], "min_size": 0, "max_size": 4, "slots_per_node": 2}

CASES = [
    # (module, tfvars, variable overrides, words the error must contain)
    (ENV, ENV_VARS, {"cluster_name": "Demo_1"}, ["cluster_name", "^[a-z][a-z0-9-]{1,20}[a-z0-9]$"]),
    (ENV, ENV_VARS, {"queues": {"my.queue": Q}}, ["queues keys", "no dots or underscores"]),
    (ENV, ENV_VARS, {"queues": {"manager": Q}}, ["queues", "reserved", "rename the queue"]),
    (
        ENV,
        ENV_VARS,
        {"queues": {"q": {**Q, "min_size": 5}}},
        ["min_size", "lower min_size or raise max_size"],
    ),
    (ENV, ENV_VARS, {"queues": {"q": {**Q, "max_size": 1000}}}, ["max_size", "100 or less"]),
    (ENV, ENV_VARS, {"queues": {"q": {**Q, "instance_types": []}}}, ["instance_types", "at least one"]),
    (ENV, ENV_VARS, {"queues": {"q": {**Q, "slots_per_node": 0}}}, ["slots_per_node", "1 or more"]),
    (ENV, ENV_VARS, {"queues": {}}, ["queues", "at least one queue"]),
    (ENV, ENV_VARS, {"vpc_cidr": "10.0.0.0/33"}, ["vpc_cidr", "/16 to /24"]),
    (ENV, ENV_VARS, {"admin_cidrs": ["10.0.0.1"]}, ["admin_cidrs", "203.0.113.7/32"]),
    (ENV, ENV_VARS, {"web_cidrs": ["everyone"]}, ["web_cidrs", "0.0.0.0/0"]),
    (ENV, ENV_VARS, {"region": "Europe"}, ["region", "eu-west-1"]),
    (ENV, ENV_VARS, {"ami_id": "ubuntu"}, ["ami_id", "ami-0123456789abcdef0"]),
    (ENV, ENV_VARS, {"manager_count": 2}, ["manager_count", "set manager_count = 3 for high availability"]),
    (ENV, ENV_VARS, {"task_logs": {"retention_days": 0}}, ["task_logs.retention_days", "task_logs = null"]),
    (ENV, ENV_VARS, {"task_logs": {"retention_days": 3651}}, ["task_logs.retention_days", "from 1 to 3650"]),
    # dag_bundles and backups: the catalogue's rows as they are (input, the names and the fix the
    # error gives).
    *(
        (ENV, ENV_VARS, {key: row.input[key]}, [*row.names, row.fix])
        for key in ("dag_bundles", "backups")
        for row in of_kind("tfvars")
        if row.where == ENV and key in row.input
    ),
    # database (managed PostgreSQL): modules/aws/cluster's own, planned with the stack's tfvars
    # (private_subnets off), the catalogue's rows as they are.
    *(
        (CLUSTER, CLUSTER_VARS, {"database": row.input["database"]}, [*row.names, row.fix])
        for row in of_kind("tfvars")
        if row.where == CLUSTER and "database" in row.input
    ),
    # The same module checks envs/gcp's bundles (no google provider here to plan envs/gcp): what
    # git.credential names there is a Secret Manager secret, not an SSM path.
    (
        "modules/dag-bundles",
        HERE / "dag-bundles" / "gcp.tfvars",
        {
            "dag_bundles": [
                {"name": "team", "git": {"url": "https://h/r.git", "credential": "/team/git-token"}}
            ]
        },
        ["git.credential", 'a Secret Manager secret such as "team-git-token" on GCP'],
    ),
    (
        "envs/local",
        HERE / "env-local" / "defaults.tfvars",
        {"manager_count": 4},
        ["manager_count must be 1, 3 or 5", "set manager_count = 3"],
    ),
    (
        "modules/aws/swarm-manager",
        HERE / "aws-swarm-manager" / "defaults.tfvars",
        {"manager_count": 0},
        ["manager_count must be 1, 3 or 5", "set manager_count = 3"],
    ),
    (
        "modules/swarm-boot",
        HERE / "swarm-boot" / "manager-gcp.tfvars",
        {"manager_count": 2},
        ["manager_count must be 1, 3 or 5", "set manager_count = 3"],
    ),
    (GROUP, GROUP_VARS, {"min_size": 4, "max_size": 2}, ["min_size", "lower min_size or raise max_size"]),
    (GROUP, GROUP_VARS, {"queue": "manager"}, ["queue", "reserved"]),
    (
        "modules/aws/network",
        HERE / "aws-network" / "defaults.tfvars",
        {"availability_zones": ["us-east-1a"]},
        ["availability_zones", "at least 2 zones"],
    ),
    (
        "modules/swarm-boot",
        HERE / "swarm-boot" / "manager-gcp.tfvars",
        {
            "stack": {
                "image": "ghcr.io/acme/airtasks:0.1.0",
                "queues": {"a": 4, "b": 2},
                "queue_max_nodes": {"a": 3},
            }
        },
        ["stack.queue_max_nodes must give every queue", "or be {}"],
    ),
    (
        "modules/swarm-boot",
        HERE / "swarm-boot" / "manager-gcp.tfvars",
        {"role": "worker"},
        ["queue is required", 'role = "worker"'],
    ),
]


@pytest.mark.parametrize(
    ("module", "tfvars", "overrides", "words"),
    CASES,
    ids=[f"{m.split('/')[-1]}-{next(iter(o))}-{i}" for i, (m, _, o, _) in enumerate(CASES)],
)
def test_bad_input_fails_plan_naming_variable_and_fix(
    terraform: Terraform, module: str, tfvars: object, overrides: dict[str, object], words: list[str]
) -> None:
    error = terraform.plan_error(module, [tfvars], **overrides)  # type: ignore[list-item]
    for word in words:
        assert word in error, f"{word!r} not in the error:\n{error}"
    # The plan failed before anything was applied: no state anywhere near the module.
    assert not list((REPO / module).glob("*.tfstate*")), f"{module} has a state file"


def planned(items: list[pytest.Item]) -> list[PlanError]:
    """The failing plans these tests ask for (the `terraform` fixture starts them in the background)."""
    params = [item.callspec.params for item in items if hasattr(item, "callspec")]
    return [PlanError(p["module"], (p["tfvars"],), tuple(p["overrides"].items())) for p in params]
