"""Properties of the AWS plans that are rules rather than values: IMDSv2, encryption, no Swarm port
open to the world, IAM scoped to the cluster, workers unable to write parameters, no secret."""

from __future__ import annotations

import base64
import gzip
import json
import re
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.exceptions import ClientError

from airtasks.stack.render import TaskLogs, render_stack
from airtasks_dev.devstack.moto import run_moto
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
    assert env_plan.of_type("aws_instance") == {}  # the managers are a group too
    templates = env_plan.of_type("aws_launch_template")
    assert "module.cluster.module.manager.aws_launch_template.this" in templates
    for address, template in templates.items():
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
    groups = {
        v["name"]: v
        for a, v in env_plan.of_type("aws_autoscaling_group").items()
        if not a.startswith("module.cluster.module.manager.")
    }
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
    (doc,) = _policies(env_plan, "module.cluster.module.manager")
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
                # the name prefix would also match cluster "demo-x": the tag condition pins it, and
                # the role tag keeps the managers' own group out of reach
                assert st["Condition"] == {
                    "StringEquals": {
                        "aws:ResourceTag/airtasks:cluster": "demo",
                        "aws:ResourceTag/airtasks:role": "worker",
                    }
                }
    actions = {a for st in _statements(doc) for a in st["Action"]}
    assert "autoscaling:TerminateInstanceInAutoScalingGroup" in actions
    assert "ssm:PutParameter" in actions
    assert not {a for a in actions if a.startswith(("iam:", "ec2:Run", "ec2:Terminate", "ssm:Delete"))}


def test_worker_roles_read_only_the_join_info(env_plan: PlanSummary) -> None:
    for queue in ("default", "io", "heavy"):
        (doc,) = _policies(env_plan, f'module.cluster.module.workers["{queue}"]')
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


def _user_data(template: dict[str, Any]) -> str:
    """Launch templates carry the boot script gzip-compressed: EC2 takes 16 KiB of user data."""
    return gzip.decompress(base64.b64decode(template["user_data"])).decode()


def test_user_data_is_the_boot_script_without_secrets(env_plan: PlanSummary) -> None:
    for address, template in env_plan.of_type("aws_launch_template").items():
        script = _user_data(template)
        if address.startswith("module.cluster.module.manager."):
            assert "AIRTASKS_ROLE='manager'" in script
            assert "AIRTASKS_MANAGER_COUNT='1'" in script
            assert "SWMTKN" not in script
            continue
        assert script.startswith("#!/usr/bin/env bash"), address
        assert "AIRTASKS_ROLE='worker'" in script
        assert "SWMTKN" not in script
        assert "manager-token" not in script, "workers must not even know where the manager token is"


def test_spot_queues_rebalance_early_and_watch_for_the_notice(env_plan: PlanSummary) -> None:
    """three-queues.tfvars: `heavy` is spot, `default` and `io` on-demand. Spot groups launch a
    replacement on EC2's rebalance recommendation, and only their nodes run the notice watcher."""
    groups = env_plan.of_type("aws_autoscaling_group")
    templates = env_plan.of_type("aws_launch_template")
    for queue, spot in {"heavy": True, "default": False, "io": False}.items():
        prefix = f'module.cluster.module.workers["{queue}"].'
        assert groups[prefix + "aws_autoscaling_group.this"]["capacity_rebalance"] is spot, queue
        script = _user_data(templates[prefix + "aws_launch_template.this"])
        assert ("airtasks-spot-watcher.service" in script) is spot, queue
        assert ("spot/instance-action" in script) is spot, queue
    assert not groups["module.cluster.module.manager.aws_autoscaling_group.this"].get("capacity_rebalance")


def test_worker_policy_denies_writes_on_a_policy_checking_endpoint(
    env_plan: PlanSummary, tmp_path: Path
) -> None:
    """The planned worker policy's actions, attached to a user of a moto server that enforces IAM
    actions: reading the worker token works, writing or deleting a parameter is denied. (moto
    matches no resource ARN for SSM, so the statements are widened to `*` here; the ARNs are
    checked above, in test_worker_roles_read_only_the_join_info.)"""

    def actions_only(doc: dict[str, Any]) -> dict[str, Any]:
        return {**doc, "Statement": [{**st, "Resource": "*"} for st in doc["Statement"]]}

    (worker_doc,) = [actions_only(d) for d in _policies(env_plan, 'module.cluster.module.workers["default"]')]
    (manager_doc,) = [actions_only(d) for d in _policies(env_plan, "module.cluster.module.manager")]
    token = "/airtasks/demo/swarm/worker-token"
    # The first 7 requests are unauthenticated setup; everything after is checked against IAM.
    with run_moto(log=tmp_path / "moto.log", extra_env={"INITIAL_NO_AUTH_ACTION_COUNT": "7"}) as server:
        kw = {"endpoint_url": server.url, "region_name": "us-east-1"}
        root = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        boto3.client("ssm", **kw, **root).put_parameter(Name=token, Value="SWMTKN-1-x", Type="SecureString")
        iam = boto3.client("iam", **kw, **root)
        keys = {}
        for role, doc in (("worker", worker_doc), ("manager", manager_doc)):
            iam.create_user(UserName=role)
            iam.put_user_policy(UserName=role, PolicyName=role, PolicyDocument=json.dumps(doc))
            key = iam.create_access_key(UserName=role)["AccessKey"]
            keys[role] = {
                "aws_access_key_id": key["AccessKeyId"],
                "aws_secret_access_key": key["SecretAccessKey"],
            }

        worker = boto3.client("ssm", **kw, **keys["worker"])
        assert worker.get_parameter(Name=token, WithDecryption=True)["Parameter"]["Value"] == "SWMTKN-1-x"
        for call in (
            lambda: worker.put_parameter(Name=token, Value="y", Type="SecureString", Overwrite=True),
            lambda: worker.delete_parameter(Name=token),
            lambda: worker.get_parameters_by_path(Path="/airtasks/demo"),
        ):
            with pytest.raises(ClientError) as denied:
                call()
            assert "is not authorized to perform: ssm:" in str(denied.value)

        manager = boto3.client("ssm", **kw, **keys["manager"])
        manager.put_parameter(Name=token, Value="SWMTKN-1-z", Type="SecureString", Overwrite=True)
        with pytest.raises(ClientError, match="not authorized to perform: ssm:DeleteParameter"):
            manager.delete_parameter(Name=token)


def test_ha_managers_are_a_fixed_size_group_over_the_zones(terraform: Terraform) -> None:
    """manager_count = 3: one group of exactly three, in every public subnet (one per zone), whose
    boot script joins the others to the one that initialises the Swarm."""
    plan = terraform.plan("envs/aws", [HERE / "env-aws" / "ha.tfvars"])
    group = plan.values["module.cluster.module.manager.aws_autoscaling_group.this"]
    assert (group["min_size"], group["max_size"], group["desired_capacity"]) == (3, 3, 3)
    tags = {t["key"]: t["value"] for t in group["tag"]}
    assert tags["airtasks:role"] == "manager"
    assert tags["airtasks:cluster"] == "demo"
    template = plan.values["module.cluster.module.manager.aws_launch_template.this"]
    script = gzip.decompress(base64.b64decode(template["user_data"])).decode()
    assert "AIRTASKS_MANAGER_COUNT='3'" in script
    assert "swarm_init_or_join" in script
    assert "airtasks-boot maintain" in script
    (options,) = template["metadata_options"]
    assert options["http_put_response_hop_limit"] == 2  # the scaler's container needs the role
    assert plan.of_type("aws_instance") == {}


def test_cluster_hands_the_managers_the_stack_with_queues_and_scaler_config(terraform: Terraform) -> None:
    """modules/aws/cluster passes `stack` through (merge, no field-by-field copy): the user's own
    attributes reach the boot script next to the queues and the scaler's config it adds."""
    plan = terraform.plan("modules/aws/cluster", [HERE / "aws-cluster" / "stack.tfvars"])
    template = plan.values["module.manager.aws_launch_template.this"]
    script = gzip.decompress(base64.b64decode(template["user_data"])).decode()
    assert "AIRTASKS_STACK_IMAGE='ghcr.io/acme/airtasks:1.0'" in script
    assert "AIRTASKS_STACK_NAME='airtasks'" in script
    assert "AIRTASKS_STACK_TLS_HOSTNAMES='airflow.example.com'" in script
    assert "AIRTASKS_STACK_QUEUES='default:4:10 heavy:8:5'" in script
    (config,) = re.findall(r"^AIRTASKS_STACK_SCALER_CONFIG='(.*)'$", script, re.M)
    assert json.loads(config) == plan.output("scaler_config")


LOG_BUCKET = "airtasks-demo-log-123456789012-us-east-1"


def assert_bucket_guarded(plan: PlanSummary) -> None:
    """The cluster's one bucket (logs, DAG folders, backups): kept on destroy while it holds
    anything, encrypted, versioned, closed to the public, no ACLs, TLS only."""
    (bucket,) = plan.of_type("aws_s3_bucket").values()
    assert bucket["bucket"] == LOG_BUCKET
    assert bucket["force_destroy"] is False
    (block,) = plan.of_type("aws_s3_bucket_public_access_block").values()
    assert all(
        block[k] is True
        for k in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets")
    )
    (sse,) = plan.of_type("aws_s3_bucket_server_side_encryption_configuration").values()
    assert sse["rule"][0]["apply_server_side_encryption_by_default"][0]["sse_algorithm"] == "AES256"
    (versioning,) = plan.of_type("aws_s3_bucket_versioning").values()
    assert versioning["versioning_configuration"][0]["status"] == "Enabled"
    (owner,) = plan.of_type("aws_s3_bucket_ownership_controls").values()
    assert owner["rule"][0]["object_ownership"] == "BucketOwnerEnforced"
    (policy,) = plan.of_type("aws_s3_bucket_policy").values()
    (deny,) = json.loads(policy["policy"])["Statement"]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_task_logs_bucket_is_guarded_and_expires(env_plan: PlanSummary) -> None:
    """The default (`task_logs = {}`): a bucket of the cluster's own, encrypted, versioned, closed to
    the public, TLS only, whose objects under logs/ (and their earlier versions) expire after 30 days."""
    assert_bucket_guarded(env_plan)
    (lifecycle,) = env_plan.of_type("aws_s3_bucket_lifecycle_configuration").values()
    rules = {r["id"]: r for r in lifecycle["rule"]}
    assert set(rules) == {"expire-task-logs", "expire-backups", "abort-incomplete-uploads"}
    rule, aborts = rules["expire-task-logs"], rules["abort-incomplete-uploads"]
    assert aborts["abort_incomplete_multipart_upload"][0]["days_after_initiation"] == 1
    assert rule["status"] == "Enabled"
    assert rule["filter"][0]["prefix"] == "logs/"
    assert rule["expiration"][0]["days"] == 30
    assert rule["noncurrent_version_expiration"][0]["noncurrent_days"] == 30
    assert env_plan.output("task_logs") == {
        "bucket": LOG_BUCKET,
        "prefix": "logs/",
        "url": f"s3://{LOG_BUCKET}/logs",
        "retention_days": 30,
    }


def test_task_logs_reach_every_airflow_service_in_the_managers_stack(terraform: Terraform) -> None:
    """The manager's boot script renders the stack with the logs location; rendered the same way,
    every Airflow service logs remotely through a keyless connection in the bucket's region, and
    the workers' containers may reach the instance role that writes them (hop limit 2)."""
    plan = terraform.plan("modules/aws/cluster", [HERE / "aws-cluster" / "stack.tfvars"])
    template = plan.values["module.manager.aws_launch_template.this"]
    script = gzip.decompress(base64.b64decode(template["user_data"])).decode()
    (url,) = re.findall(r"^AIRTASKS_STACK_TASK_LOGS='(.*)'$", script, re.M)
    assert url == f"s3://{LOG_BUCKET}/logs"
    assert "--task-logs-region" in script  # manager.sh passes AIRTASKS_REGION on AWS
    services = yaml.safe_load(render_stack(task_logs=TaskLogs.parse(url, "us-east-1")))["services"]
    airflow = [n for n in services if n.startswith(("airflow-", "worker-"))]
    assert len(airflow) == 7
    for name in airflow:
        env = services[name]["environment"]
        assert env["AIRFLOW__LOGGING__REMOTE_LOGGING"] == "True", name
        assert env["AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER"] == url, name
        conn = json.loads(env["AIRFLOW_CONN_AIRTASKS_TASK_LOGS"])
        assert conn == {"conn_type": "aws", "extra": {"region_name": "us-east-1"}}  # no key: the node's role
    for queue in ("default", "heavy"):
        (options,) = plan.values[f'module.workers["{queue}"].aws_launch_template.this']["metadata_options"]
        assert options["http_put_response_hop_limit"] == 2


def test_log_bucket_guards_hold_on_a_policy_checking_endpoint(env_plan: PlanSummary, tmp_path: Path) -> None:
    """The planned bucket policy and the workers' task-logs policy, on a moto server that enforces
    bucket policies and IAM actions: a worker writes and reads a log back, but cannot delete it;
    and over plain HTTP the bucket refuses even that (moto matches no resource ARN for IAM; the
    prefix and bucket scoping is test_least_privilege.py's)."""
    (bucket_policy,) = [v["policy"] for v in env_plan.of_type("aws_s3_bucket_policy").values()]
    (writer,) = [
        json.loads(v["policy"])
        for a, v in env_plan.of_type("aws_iam_role_policy").items()
        if a == 'module.cluster.aws_iam_role_policy.logs["default"]'
    ]
    everything = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
    }
    key = "logs/dag_id=d/run_id=r/task_id=t/attempt=1.log"
    # The first 7 requests are unauthenticated setup; everything after is checked against IAM.
    with run_moto(log=tmp_path / "moto.log", extra_env={"INITIAL_NO_AUTH_ACTION_COUNT": "7"}) as server:
        kw = {"endpoint_url": server.url, "region_name": "us-east-1"}
        root = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        boto3.client("s3", **kw, **root).create_bucket(Bucket=LOG_BUCKET)
        iam = boto3.client("iam", **kw, **root)
        s3 = {}
        for user, doc in (
            ("worker", {**writer, "Statement": [{**st, "Resource": "*"} for st in writer["Statement"]]}),
            ("admin", everything),
        ):
            iam.create_user(UserName=user)
            iam.put_user_policy(UserName=user, PolicyName=user, PolicyDocument=json.dumps(doc))
            created = iam.create_access_key(UserName=user)["AccessKey"]
            s3[user] = boto3.client(
                "s3",
                **kw,
                aws_access_key_id=created["AccessKeyId"],
                aws_secret_access_key=created["SecretAccessKey"],
            )
        worker = s3["worker"]
        with pytest.raises(ClientError) as absent:  # what Airflow's log writer asks first
            worker.head_object(Bucket=LOG_BUCKET, Key=key)
        assert absent.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
        worker.put_object(Bucket=LOG_BUCKET, Key=key, Body=b"task 0: done\n")
        assert worker.get_object(Bucket=LOG_BUCKET, Key=key)["Body"].read() == b"task 0: done\n"
        with pytest.raises(ClientError, match="AccessDenied"):
            worker.delete_object(Bucket=LOG_BUCKET, Key=key)

        s3["admin"].put_bucket_policy(Bucket=LOG_BUCKET, Policy=bucket_policy)
        for call in (
            lambda: worker.put_object(Bucket=LOG_BUCKET, Key=key, Body=b"x"),
            lambda: worker.get_object(Bucket=LOG_BUCKET, Key=key),
            lambda: s3["admin"].get_object(Bucket=LOG_BUCKET, Key=key),
        ):
            with pytest.raises(ClientError) as refused:  # the endpoint is plain HTTP
                call()
            assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
