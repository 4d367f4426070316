"""`database.managed` (modules/aws/cluster/database.tf): who may reach the database and read its
password, as configured (the security groups' and the secret's ids are known only after apply, so
the plan's configuration says which they are); aws-cluster/database.yaml holds the planned values."""

from __future__ import annotations

import base64
import gzip
import json
import re
from typing import Any

import pytest

from airtasks.stack.database import ExternalDatabase
from tests.support.terraform import REPO
from tests.terraform.conftest import HERE, Plan, PlanSummary, Terraform

CLUSTER = "modules/aws/cluster"
MANAGED = HERE / "aws-cluster" / "database.tfvars"
DEFAULT = HERE / "aws-cluster" / "stack.tfvars"
SECRET_ARN = "aws_db_instance.this[0].master_user_secret[0].secret_arn"


@pytest.fixture(scope="module")
def managed(terraform: Terraform) -> PlanSummary:
    return terraform.plan(CLUSTER, [MANAGED])


def _config(plan: PlanSummary, address: str) -> dict[str, Any]:
    resources = plan.raw["configuration"]["root_module"]["resources"]
    (found,) = [r for r in resources if r["address"] == address]
    expressions: dict[str, Any] = found["expressions"]
    return expressions


def test_the_database_admits_5432_from_the_nodes_group_only(managed: PlanSummary) -> None:
    """The only ingress is 5432/tcp from the node security group, which the managers and the
    workers share: both connect (Celery's result backend is this database); no CIDR, no egress."""
    group = managed.values["aws_security_group.database[0]"]
    (ingress,) = group["ingress"]
    assert (ingress["protocol"], ingress["from_port"], ingress["to_port"]) == ("tcp", 5432, 5432)
    assert ingress["cidr_blocks"] == []
    assert ingress["ipv6_cidr_blocks"] == []
    assert group["egress"] == []
    # Everything the ingress refers to (its one rule's source) is the network's node group.
    refs = _config(managed, "aws_security_group.database")["ingress"]["references"]
    assert "module.network.node_security_group_id" in refs
    assert all(r.startswith("module.network") for r in refs), refs
    # The instance sits behind that group alone, in the private subnets.
    db = _config(managed, "aws_db_instance.this")
    assert db["vpc_security_group_ids"]["references"][0] == "aws_security_group.database[0].id"
    subnets = _config(managed, "aws_db_subnet_group.this")["subnet_ids"]["references"]
    assert "module.network.private_subnet_ids" in subnets


def test_the_nodes_may_read_exactly_the_database_secret(managed: PlanSummary) -> None:
    """GetSecretValue on the secret RDS keeps the password in, and nothing else (no kms:Decrypt:
    the AWS-managed aws/secretsmanager key decrypts for whoever may read the secret)."""
    (statement,) = _config(managed, "data.aws_iam_policy_document.database")["statement"]
    assert statement["actions"]["constant_value"] == ["secretsmanager:GetSecretValue"]
    assert statement["resources"]["references"][0] == SECRET_ARN
    assert "condition" not in statement
    assert "not_resources" not in statement
    roles = {a: v["role"] for a, v in managed.of_type("aws_iam_role_policy").items() if ".database[" in a}
    assert roles == {
        'aws_iam_role_policy.database["manager"]': "airtasks-demo-manager",
        'aws_iam_role_policy.database["default"]': "airtasks-demo-default",
    }


def test_the_manager_gets_the_endpoint_and_the_secret_never_a_password(managed: PlanSummary) -> None:
    root = managed.raw["configuration"]["root_module"]
    assert "local.database_setting" in root["module_calls"]["manager"]["expressions"]["stack"]["references"]
    outputs = root["outputs"]["database"]["expression"]["references"]
    assert SECRET_ARN in outputs
    assert not any("password" in r for r in outputs)
    # Known after apply (the endpoint), not null: the output names the database once it exists.
    assert managed.output("database") == "__unknown__"


def test_without_a_database_the_manager_renders_the_stacks_own(terraform: Terraform) -> None:
    plan = terraform.plan(CLUSTER, [DEFAULT])
    template = plan.values["module.manager.aws_launch_template.this"]
    script = gzip.decompress(base64.b64decode(template["user_data"])).decode()
    assert "AIRTASKS_STACK_DATABASE=''" in script
    assert '--database "$AIRTASKS_STACK_DATABASE"' in script  # deploy_stack, when set
    assert plan.of_type("aws_db_instance") == {}
    assert plan.output("database") is None
    # Without task logs or a database the workers' containers would not need the node's role;
    # this stack has task logs (the default), so the hop limit is 2 either way.
    (options,) = plan.values['module.workers["default"].aws_launch_template.this']["metadata_options"]
    assert options["http_put_response_hop_limit"] == 2


def test_database_settings_are_plain_json_for_the_render() -> None:
    """The keys database.tf's jsonencode gives are those `airtasks stack render --database` parses."""
    source = (REPO / CLUSTER / "database.tf").read_text()
    block = source[source.index("database_setting = ") : source.index("}) : null")]
    keys = set(re.findall(r"^\s+(\w+)\s+=", block, re.M))
    assert keys == {"host", "port", "name", "user", "secret_arn"}
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-0a1b-xYz123"
    text = json.dumps(
        {
            "host": "airtasks-demo.c1.us-east-1.rds.amazonaws.com",
            "port": 5432,
            "name": "airflow",
            "user": "airflow",
            "secret_arn": arn,
        }
    )
    assert ExternalDatabase.parse(text).secret_arn == arn


def planned(items: list[pytest.Item]) -> list[Plan]:
    return [Plan(CLUSTER, (MANAGED,)), Plan(CLUSTER, (DEFAULT,))]


# What EC2 accepts in a security group's and a rule's description; the AWS provider checks it
# only when it creates the group, so a plan does not show a description it would refuse.
SG_DESCRIPTION = re.compile(r"^[0-9A-Za-z_ .:/()#,@\[\]+=&;{}!$*-]*$")


def test_every_security_group_description_is_one_ec2_accepts(managed: PlanSummary) -> None:
    found = []
    for address, values in managed.values.items():
        if not address.split("[")[0].split(".")[-2].startswith("aws_security_group"):
            continue
        texts = [values.get("description") or ""]
        texts += [
            rule.get("description") or "" for key in ("ingress", "egress") for rule in values.get(key) or []
        ]
        found += [(address, text) for text in texts if not SG_DESCRIPTION.match(text)]
        assert texts
    assert not found, f"descriptions EC2 refuses (no apostrophes, quotes or accents): {found}"
