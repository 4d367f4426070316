"""Properties of the AWS plans that are rules rather than values: IMDSv2, encryption, no Swarm port
open to the world, IAM scoped to the cluster, workers unable to write parameters, no secret."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from tests.terraform.conftest import HERE, PlanSummary, Terraform

SWARM_PORTS = {2377, 7946, 4789}
ENV_AWS = ("envs/aws", HERE / "env-aws" / "three-queues.tfvars")
NETWORK_OPEN = ("modules/aws/network", HERE / "aws-network" / "private.tfvars")


@pytest.fixture(scope="module")
def env_plan(terraform: Terraform) -> PlanSummary:
    return terraform.plan(ENV_AWS[0], [ENV_AWS[1]])


def _policies(plan: PlanSummary, module: str) -> list[dict[str, Any]]:
    docs = [
        json.loads(v["policy"])
        for a, v in plan.of_type("aws_iam_role_policy").items()
        if a.startswith(module)
    ]
    assert docs, f"no role policy in {module}"
    return docs


def _statements(doc: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for st in doc["Statement"]:
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
        out.append({**st, "Action": actions, "Resource": resources})
    return out


def test_imdsv2_required_on_every_instance_and_template(env_plan: PlanSummary) -> None:
    machines = {**env_plan.of_type("aws_instance"), **env_plan.of_type("aws_launch_template")}
    assert len(machines) == 4  # the manager + one template per queue
    for address, values in machines.items():
        (options,) = values["metadata_options"]
        assert options["http_tokens"] == "required", address
        assert options["http_endpoint"] == "enabled", address


def test_root_volumes_encrypted(env_plan: PlanSummary) -> None:
    (manager,) = env_plan.of_type("aws_instance").values()
    assert manager["root_block_device"][0]["encrypted"] is True
    for address, template in env_plan.of_type("aws_launch_template").items():
        (mapping,) = template["block_device_mappings"]
        assert mapping["ebs"][0]["encrypted"] == "true", address


@pytest.mark.parametrize("case", [ENV_AWS, NETWORK_OPEN], ids=["envs-aws", "network-ssh-and-web-open"])
def test_no_swarm_port_open_to_the_world(terraform: Terraform, case: tuple[str, Path]) -> None:
    plan = terraform.plan(case[0], [case[1]])
    vpc_cidrs = {v["cidr_block"] for v in plan.of_type("aws_vpc").values()}
    swarm_rules = 0
    for address, group in plan.of_type("aws_security_group").items():
        for rule in group["ingress"]:
            ports = set(range(rule["from_port"], rule["to_port"] + 1))
            if rule["protocol"] == "-1" or ports & SWARM_PORTS:
                swarm_rules += 1
                assert set(rule["cidr_blocks"]) <= vpc_cidrs, f"{address}: {rule}"
                assert not rule["ipv6_cidr_blocks"], f"{address}: {rule}"
            if "0.0.0.0/0" in rule["cidr_blocks"]:
                assert ports <= {80, 443}, f"{address} opens {rule['from_port']} to the world"
    assert swarm_rules == 4  # 2377/tcp, 7946/tcp, 7946/udp, 4789/udp


def test_ssh_only_from_admin_cidrs(terraform: Terraform, env_plan: PlanSummary) -> None:
    def ssh_rules(plan: PlanSummary) -> list[dict[str, Any]]:
        return [
            r
            for g in plan.of_type("aws_security_group").values()
            for r in g["ingress"]
            if r["from_port"] == 22
        ]

    assert ssh_rules(env_plan) == []  # admin_cidrs defaults to none
    (rule,) = ssh_rules(terraform.plan(NETWORK_OPEN[0], [NETWORK_OPEN[1]]))
    assert rule["cidr_blocks"] == ["203.0.113.7/32"]


def test_one_group_per_queue_with_its_sizes(env_plan: PlanSummary) -> None:
    groups = {v["name"]: v for v in env_plan.of_type("aws_autoscaling_group").values()}
    assert {n: (g["min_size"], g["max_size"]) for n, g in groups.items()} == {
        "airtasks-demo-default": (0, 10),
        "airtasks-demo-io": (1, 3),
        "airtasks-demo-heavy": (0, 5),
    }
    for name, group in groups.items():
        tags = {t["key"]: (t["value"], t["propagate_at_launch"]) for t in group["tag"]}
        assert tags["airtasks:cluster"] == ("demo", True)
        assert tags["airtasks:queue"] == (name.removeprefix("airtasks-demo-"), True)
        assert group["protect_from_scale_in"] is True
    config = env_plan.output("scaler_config")
    assert {q: c["group"] for q, c in config["queues"].items()} == {
        q: f"airtasks-demo-{q}" for q in ("default", "io", "heavy")
    }


def test_manager_iam_scoped_to_the_cluster(env_plan: PlanSummary) -> None:
    (doc,) = _policies(env_plan, "module.manager")
    for st in _statements(doc):
        assert st["Effect"] == "Allow"
        if st["Resource"] == ["*"]:
            assert all(a.split(":")[1].startswith("Describe") for a in st["Action"]), st
            continue
        for arn in st["Resource"]:
            if ":ssm:" in arn:
                assert arn.endswith(":parameter/airtasks/demo/*"), arn
                assert all(a.startswith("ssm:") for a in st["Action"]), st
            else:
                assert ":autoscaling:" in arn, arn
                assert arn.endswith(":autoScalingGroupName/airtasks-demo-*"), arn
                # the name prefix would also match cluster "demo-x": the tag condition pins it
                assert st["Condition"] == {"StringEquals": {"aws:ResourceTag/airtasks:cluster": "demo"}}
    actions = {a for st in _statements(doc) for a in st["Action"]}
    assert "autoscaling:TerminateInstanceInAutoScalingGroup" in actions
    assert "ssm:PutParameter" in actions
    assert not {a for a in actions if a.startswith(("iam:", "ec2:Run", "ec2:Terminate", "ssm:Delete"))}


def test_worker_roles_read_only_the_join_info(env_plan: PlanSummary) -> None:
    for queue in ("default", "io", "heavy"):
        (doc,) = _policies(env_plan, f'module.workers["{queue}"]')
        (st,) = _statements(doc)
        assert st["Action"] == ["ssm:GetParameter"]  # no Put, no Delete, no wildcard
        assert sorted(st["Resource"]) == [
            "arn:aws:ssm:us-east-1:123456789012:parameter/airtasks/demo/swarm/manager-address",
            "arn:aws:ssm:us-east-1:123456789012:parameter/airtasks/demo/swarm/worker-token",
        ]
        assert "Condition" not in st


def test_parameters_hold_no_value_in_the_plan(env_plan: PlanSummary) -> None:
    params = env_plan.of_type("aws_ssm_parameter")
    assert sorted(v["name"] for v in params.values()) == [
        "/airtasks/demo/swarm/manager-address",
        "/airtasks/demo/swarm/manager-token",
        "/airtasks/demo/swarm/worker-token",
    ]
    for values in params.values():
        assert values.get("value") in (None, ""), "the placeholder is write-only: no value in plan or state"
        assert values.get("insecure_value") is None
    assert "SWMTKN" not in json.dumps(env_plan.raw)


def test_user_data_is_the_boot_script_without_secrets(env_plan: PlanSummary) -> None:
    for address, template in env_plan.of_type("aws_launch_template").items():
        script = base64.b64decode(template["user_data"]).decode()
        assert script.startswith("#!/usr/bin/env bash"), address
        assert "AIRTASKS_ROLE='worker'" in script
        assert "SWMTKN" not in script
        assert "manager-token" not in script, "workers must not even know where the manager token is"
