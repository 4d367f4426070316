"""modules/gcp/cluster keeps task logs in a bucket of its own (task_logs.tf), on by default.

Static half (python-hcl2): the bucket is private (uniform bucket-level access, public access
prevention), unversioned, and deletes what is under `logs/` after `retention_days`; the grants are
bucket-level and additive (`_iam_member`), to the worker groups' and the managers' own service
accounts; the managers' stack gets the URL. Behavioural half, without the google provider:
task_logs.tf's locals and the `task_logs` output are evaluated by Terraform in a root of their own,
with the for_each expressions of the grants, for the default, a retention and `null`. The plan
cases (tests/terraform/gcp-cluster/task-logs.yaml, no-task-logs.yaml) need the provider.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from tests.support.terraform import REPO, run_terraform
from tests.support.tfdocs import TfModule, blocks, load_module

pytestmark = pytest.mark.terraform

CLUSTER = "modules/gcp/cluster"
WRITER_ROLES = ["roles/storage.objectCreator", "roles/storage.objectViewer"]
QUEUE = {"machine_type": "e2-standard-4", "min_size": 0, "max_size": 5, "slots_per_node": 4}


@cache
def cluster() -> TfModule:
    return load_module(REPO / CLUSTER)


def _expr(value: object) -> str:
    return str(value).strip("${}")


# ---------------------------------------------------------------------------------------------------
# Static
# ---------------------------------------------------------------------------------------------------


def test_bucket_is_private_unversioned_and_expires_logs() -> None:
    bucket = cluster().resource("google_storage_bucket", "logs").body
    assert bucket["count"] == "var.task_logs == null ? 0 : 1", "no bucket with task_logs = null"
    assert cluster().locals["task_logs_bucket"] == "${var.project_id}-airtasks-${var.cluster_name}-logs"
    assert bucket["name"] == "local.task_logs_bucket"
    assert bucket["location"] == "var.region"
    assert bucket["uniform_bucket_level_access"] is True
    assert bucket["public_access_prevention"] == "enforced"
    assert bucket["force_destroy"] == "var.task_logs.force_destroy"
    assert blocks(bucket["versioning"]) == [{"enabled": False}], "versions would be partial copies of logs"
    (rule,) = blocks(bucket["lifecycle_rule"])
    assert blocks(rule["action"]) == [{"type": "Delete"}]
    (condition,) = blocks(rule["condition"])
    assert condition == {
        "age": "var.task_logs.retention_days",
        "matches_prefix": ["${local.task_logs_prefix}/"],
    }
    assert cluster().locals["task_logs_prefix"] == "logs"
    assert set(bucket["labels"]) == {"airtasks-cluster", "airtasks-role"}
    (lifecycle,) = blocks(bucket["lifecycle"])
    (precondition,) = blocks(lifecycle["precondition"])
    assert precondition["condition"] == "length(local.task_logs_bucket) <= 63", "GCS bucket names: 63 at most"


def test_grants_are_bucket_level_to_the_clusters_own_service_accounts() -> None:
    m = cluster()
    assert not [r for r in m.resources if r.type.endswith(("_iam_binding", "_iam_policy"))], "additive only"
    assert not m.resources_of("google_project_iam_member"), "nothing on the project"
    # The DAG bucket's read grant is test_dag_bundles.py's, the backups bucket's test_backups.py's.
    members = {
        r.name: r.body
        for r in m.resources_of("google_storage_bucket_iam_member")
        if r.name not in ("dags_read", "backups")
    }
    assert set(members) == {"logs_write", "logs_overwrite"}
    for name, body in members.items():
        assert body["bucket"] == "google_storage_bucket.logs[0].name", name

    # Every node: the workers and the managers (the scaler DAG's worker, the triggerer, the API server).
    account = "module.manager.service_account : module.workers[{}].service_account"
    write = members["logs_write"]
    assert write["for_each"] == "local.task_logs_writers"
    assert write["role"] == "each.value.role"
    assert write["member"] == (
        'serviceAccount:${each.value.node == "manager" ? ' + account.format("each.value.node") + "}"
    )
    assert m.locals["task_logs_writer_roles"] == WRITER_ROLES

    overwrite = members["logs_overwrite"]
    assert overwrite["for_each"] == "toset(local.task_logs_nodes)"
    assert (
        overwrite["member"] == 'serviceAccount:${each.key == "manager" ? ' + account.format("each.key") + "}"
    )
    assert overwrite["role"] == "google_project_iam_custom_role.logs_overwrite[0].name"
    role = m.resource("google_project_iam_custom_role", "logs_overwrite").body
    assert role["permissions"] == ["storage.objects.delete"], "only what objectCreator lacks to overwrite"
    assert role["count"] == "var.task_logs == null ? 0 : 1"


def test_no_key_is_made_for_the_nodes() -> None:
    for rel in ("modules/gcp/cluster", "modules/gcp/swarm-manager", "modules/gcp/worker-group", "envs/gcp"):
        m = load_module(REPO / rel)
        assert not m.resources_of("google_service_account_key"), rel
        assert not m.resources_of("google_storage_hmac_key"), rel


def test_the_managers_stack_gets_the_logs_url() -> None:
    stack = _expr(cluster().module("manager").body["stack"])
    assert "task_logs = local.task_logs_url" in stack
    url = cluster().locals["task_logs_url"]
    assert url == 'var.task_logs == null ? null : "gs://${local.task_logs_bucket}/${local.task_logs_prefix}"'
    manager_stack = load_module(REPO / "modules/gcp/swarm-manager").variables["stack"].type or ""
    assert "task_logs = optional(string)" in " ".join(manager_stack.split())


def test_env_passes_task_logs_through() -> None:
    env = load_module(REPO / "envs/gcp")
    assert env.module("cluster").body["task_logs"] == "var.task_logs"
    assert _expr(env.outputs["task_logs"].value) == "module.cluster.task_logs"
    assert env.variables["task_logs"].type == cluster().variables["task_logs"].type
    assert env.variables["task_logs"].description == cluster().variables["task_logs"].description


# ---------------------------------------------------------------------------------------------------
# Behavioural: the locals and the output, evaluated by Terraform (no provider)
# ---------------------------------------------------------------------------------------------------


def _block(text: str, header: str) -> str:
    match = re.search(rf"^{re.escape(header)} \{{\n.*?^\}}\n", text, re.S | re.M)
    assert match, f"{header} not found"
    return match[0]


@pytest.fixture(scope="module")
def logs_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The cluster's variables.tf, task_logs.tf's locals, its `task_logs` output, and outputs holding
    the grants' for_each expressions as written."""
    root = tmp_path_factory.mktemp("gcp-task-logs")
    (root / "variables.tf").write_text((REPO / CLUSTER / "variables.tf").read_text())
    (root / "locals.tf").write_text(_block((REPO / CLUSTER / "task_logs.tf").read_text(), "locals"))
    outputs = _block((REPO / CLUSTER / "outputs.tf").read_text(), 'output "task_logs"')
    overwrite = cluster().resource("google_storage_bucket_iam_member", "logs_overwrite").body["for_each"]
    write = cluster().resource("google_storage_bucket_iam_member", "logs_write").body["for_each"]
    outputs += f'output "write_keys" {{\n  value = keys({write})\n}}\n'
    outputs += f'output "overwrite_keys" {{\n  value = {overwrite}\n}}\n'
    (root / "outputs.tf").write_text(outputs)
    init = run_terraform(root, "init", "-input=false", "-no-color", "-backend=false")
    assert init.returncode == 0, init.stdout + init.stderr
    return root


def _outputs(root: Path, tmp_path: Path, **values: Any) -> dict[str, Any]:
    tfvars = tmp_path / "case.tfvars.json"
    tfvars.write_text(
        json.dumps(
            {
                "project_id": "my-project-123",
                "cluster_name": "demo",
                "queues": {"default": QUEUE, "batch": QUEUE},
                **values,
            }
        )
    )
    state = tmp_path / "state.tfstate"
    applied = run_terraform(
        root, "apply", "-auto-approve", "-input=false", "-no-color", f"-state={state}", f"-var-file={tfvars}"
    )
    assert applied.returncode == 0, applied.stdout + applied.stderr
    out = run_terraform(root, "output", "-json", f"-state={state}")
    return {k: v["value"] for k, v in json.loads(out.stdout).items()}


def test_default_is_on_for_30_days(logs_root: Path, tmp_path: Path) -> None:
    out = _outputs(logs_root, tmp_path)
    assert out["task_logs"] == {
        "bucket": "my-project-123-airtasks-demo-logs",
        "prefix": "logs/",
        "url": "gs://my-project-123-airtasks-demo-logs/logs",
        "retention_days": 30,
    }
    nodes = ("default", "batch", "manager")
    assert sorted(out["write_keys"]) == sorted(f"{q}/{r}" for q in nodes for r in WRITER_ROLES)
    assert sorted(out["overwrite_keys"]) == sorted(nodes)


def test_retention_days_passes_through(logs_root: Path, tmp_path: Path) -> None:
    out = _outputs(logs_root, tmp_path, task_logs={"retention_days": 365})
    assert out["task_logs"]["retention_days"] == 365


def test_null_means_no_bucket_and_no_grant(logs_root: Path, tmp_path: Path) -> None:
    out = _outputs(logs_root, tmp_path, task_logs=None)
    assert out.get("task_logs") is None
    assert out["write_keys"] == []
    assert out["overwrite_keys"] == []
