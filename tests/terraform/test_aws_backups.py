"""`backups` (modules/aws/cluster/backups.tf): the stack's own PostgreSQL dumped under backups/ of
the cluster's bucket. What the manager's boot script renders the stack with (`--backups` JSON), the
grant the managers alone get, and none of it with `backups = null` or a managed database; the
aws-cluster/*.yaml inventories hold the planned values."""

from __future__ import annotations

import base64
import gzip
import json
import re

import pytest
import yaml

from airtasks.backup.settings import BackupSettings
from airtasks.stack.render import render_stack
from tests.terraform.conftest import HERE, Plan, PlanSummary, Terraform

CLUSTER = "modules/aws/cluster"
DEFAULT = HERE / "aws-cluster" / "stack.tfvars"
OFF = HERE / "aws-cluster" / "no-backups.tfvars"
MANAGED = HERE / "aws-cluster" / "database.tfvars"
BUCKET = "airtasks-demo-log-123456789012-us-east-1"


def manager_script(plan: PlanSummary) -> str:
    template = plan.values["module.manager.aws_launch_template.this"]
    return gzip.decompress(base64.b64decode(template["user_data"])).decode()


def backups_setting(plan: PlanSummary) -> str:
    (setting,) = re.findall(r"^AIRTASKS_STACK_BACKUPS='(.*)'$", manager_script(plan), re.M)
    return str(setting)


@pytest.fixture(scope="module")
def default(terraform: Terraform) -> PlanSummary:
    return terraform.plan(CLUSTER, [DEFAULT])


def test_backups_are_on_by_default_and_reach_the_managers_stack(default: PlanSummary) -> None:
    """The render gets where to dump (the bucket's backups/ folder, in the cluster's region) and
    how often; the output says the same, with the retention the lifecycle rule applies."""
    assert json.loads(backups_setting(default)) == {
        "url": f"s3://{BUCKET}/backups",
        "region": "us-east-1",
        "every_minutes": 60,
    }
    # The image's render takes it as it is: one db-backup service, on a manager.
    settings = BackupSettings.parse(backups_setting(default))
    service = yaml.safe_load(render_stack(backups=settings))["services"]["db-backup"]
    assert json.loads(service["environment"]["AIRTASKS_BACKUPS"]) == json.loads(backups_setting(default))
    assert "node.role == manager" in service["deploy"]["placement"]["constraints"]
    script = manager_script(default)
    assert 'render+=(--backups "$AIRTASKS_STACK_BACKUPS")' in script
    assert "backups: $backups" in script  # the boot log says where dumps go
    assert default.output("backups") == {
        "bucket": BUCKET,
        "prefix": "backups/",
        "url": f"s3://{BUCKET}/backups",
        "every_minutes": 60,
        "retention_days": 14,
    }


def test_only_the_managers_may_write_read_and_list_dumps(default: PlanSummary) -> None:
    """One grant, on the managers' role: put and get under backups/, list key names under it; no
    delete (the lifecycle expires dumps) and nothing for the workers, since a dump holds the
    connections' secrets (test_least_privilege.py asks the policies)."""
    grants = {a: v for a, v in default.of_type("aws_iam_role_policy").items() if ".backups[" in a}
    assert list(grants) == ["aws_iam_role_policy.backups[0]"]
    (grant,) = grants.values()
    assert grant["role"] == "airtasks-demo-manager"
    statements = {s["Sid"]: s for s in json.loads(grant["policy"])["Statement"]}
    assert set(statements) == {"WriteReadBackups", "ListBackups"}
    assert sorted(statements["WriteReadBackups"]["Action"]) == ["s3:GetObject", "s3:PutObject"]
    assert statements["WriteReadBackups"]["Resource"] == f"arn:aws:s3:::{BUCKET}/backups/*"
    assert statements["ListBackups"]["Action"] == "s3:ListBucket"
    assert statements["ListBackups"]["Condition"] == {"StringLike": {"s3:prefix": "backups/*"}}
    # The bucket policy only refuses plain HTTP: nothing in it stands between a manager and a dump.
    (policy,) = default.of_type("aws_s3_bucket_policy").values()
    (deny,) = json.loads(policy["policy"])["Statement"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    # The backup service runs in a container on a manager: IMDS must be two hops away at most.
    (options,) = default.values["module.manager.aws_launch_template.this"]["metadata_options"]
    assert options["http_put_response_hop_limit"] == 2


@pytest.mark.parametrize("tfvars", [OFF, MANAGED], ids=["backups-null", "database-managed"])
def test_no_backups_when_off_or_with_a_managed_database(terraform: Terraform, tfvars: object) -> None:
    plan = terraform.plan(CLUSTER, [tfvars])  # type: ignore[list-item]
    if tfvars == OFF:  # with RDS the user data waits for the endpoint: unknown in a plan
        assert backups_setting(plan) == ""
    assert not [a for a in plan.of_type("aws_iam_role_policy") if ".backups[" in a]
    (lifecycle,) = plan.of_type("aws_s3_bucket_lifecycle_configuration").values()
    rules = {r["id"]: r["status"] for r in lifecycle["rule"]}
    # With a managed database the dumps taken before the switch still expire.
    assert rules["expire-backups"] == ("Disabled" if tfvars == OFF else "Enabled")
    assert plan.output("backups") is None


def planned(items: list[pytest.Item]) -> list[Plan]:
    return [Plan(CLUSTER, (DEFAULT,)), Plan(CLUSTER, (OFF,)), Plan(CLUSTER, (MANAGED,))]
