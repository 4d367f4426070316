"""modules/gcp/cluster backs up the stack's own PostgreSQL to a bucket of its own (backups.tf), on by
default.

Static half (python-hcl2): the bucket is the backups' own (not the log bucket, which every node may
read), private (uniform bucket-level access, public access prevention), unversioned, and deletes
what is under `backups/` after `retention_days`; the grants are bucket-level and additive, to the
managers' service account only, create and view, never delete; the managers' stack gets the
setting, and the manager's `stack` type carries it on to the boot script. Behavioural half, without
the google provider: backups.tf's locals, the `backups` output and the bucket name's precondition
are evaluated by Terraform in a root of their own, which hands the cluster's stack through a copy
of modules/gcp/swarm-manager's `stack` variable to modules/swarm-boot, as the manager does; the
image's render then takes the setting from the boot script. The plan cases
(tests/terraform/gcp-cluster/backups.yaml, no-backups.yaml) need the provider.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from airtasks.backup.settings import BackupSettings
from airtasks.stack.render import render_stack
from tests.support.terraform import REPO, run_terraform
from tests.support.tfdocs import blocks, load_module
from tests.terraform.gcp.evaluated import (
    CLUSTER,
    MANAGER,
    add_manager,
    case_tfvars,
    cluster,
    init,
    manager_call,
    outputs,
    script_setting,
)

pytestmark = pytest.mark.terraform

ROLES = ["roles/storage.objectCreator", "roles/storage.objectViewer"]
BUCKET = "my-project-123-airtasks-demo-backups"


def _expr(value: object) -> str:
    return str(value).strip("${}")


# ---------------------------------------------------------------------------------------------------
# Static
# ---------------------------------------------------------------------------------------------------


def test_backups_are_on_unless_null_or_the_database_is_managed() -> None:
    """With Cloud SQL (database.managed, database.tf) there is no stack PostgreSQL to dump."""
    assert cluster().locals["backups_on"] == "var.backups != null && !local.database_on"
    assert cluster().variables["backups"].default == {}


def test_bucket_is_its_own_private_unversioned_and_expires_dumps() -> None:
    bucket = cluster().resource("google_storage_bucket", "backups").body
    assert bucket["count"] == "local.backups_on ? 1 : 0", "no bucket with backups = null"
    assert cluster().locals["backups_bucket"] == "${var.project_id}-airtasks-${var.cluster_name}-backups"
    assert cluster().locals["backups_bucket"] != cluster().locals["task_logs_bucket"]
    assert bucket["name"] == "local.backups_bucket"
    assert bucket["location"] == "var.region"
    assert bucket["uniform_bucket_level_access"] is True
    assert bucket["public_access_prevention"] == "enforced"
    assert bucket["force_destroy"] == "var.backups.force_destroy"
    assert cluster().variables["backups"].type is not None
    assert "force_destroy = optional(bool, false)" in " ".join(cluster().variables["backups"].type.split())
    assert blocks(bucket["versioning"]) == [{"enabled": False}], "no node overwrites or deletes a dump"
    (rule,) = blocks(bucket["lifecycle_rule"])
    assert blocks(rule["action"]) == [{"type": "Delete"}]
    (condition,) = blocks(rule["condition"])
    assert condition == {
        "age": "var.backups.retention_days",
        "matches_prefix": ["${local.backups_prefix}/"],
    }
    assert cluster().locals["backups_prefix"] == "backups"
    assert bucket["labels"] == {"airtasks-cluster": "var.cluster_name", "airtasks-role": "backups"}
    (lifecycle,) = blocks(bucket["lifecycle"])
    (precondition,) = blocks(lifecycle["precondition"])
    assert precondition["condition"] == "length(local.backups_bucket) <= 63", "GCS bucket names: 63 at most"
    assert "use a shorter cluster_name, or set backups = null" in precondition["error_message"]


def test_only_the_managers_service_account_may_create_and_view_dumps() -> None:
    """A dump holds every connection and variable: the managers' account alone, on this bucket
    alone, and neither delete nor admin (the lifecycle rule removes old dumps)."""
    m = cluster()
    on_bucket = [r for r in m.resources if "google_storage_bucket.backups" in str(r.body.get("bucket", ""))]
    assert [(r.type, r.name) for r in on_bucket] == [("google_storage_bucket_iam_member", "backups")]
    (grant,) = on_bucket
    assert grant.body["for_each"] == "toset(local.backups_roles)"
    assert grant.body["role"] == "each.key"
    assert grant.body["member"] == "serviceAccount:${module.manager.service_account}", "not a worker"
    assert grant.body["bucket"] == "google_storage_bucket.backups[0].name"
    assert m.locals["backups_roles"] == f"local.backups_on ? {json.dumps(ROLES)} : []"
    # The log bucket's grants (every node, delete included) stay on the log bucket.
    for r in m.resources_of("google_storage_bucket_iam_member"):
        if r.name.startswith("logs_"):
            assert r.body["bucket"] == "google_storage_bucket.logs[0].name", r.name
    assert not m.resources_of("google_storage_bucket_iam_binding"), "additive only"
    assert not m.resources_of("google_storage_bucket_iam_policy"), "additive only"
    text = (REPO / CLUSTER / "backups.tf").read_text()
    for word in ("objectAdmin", "objectUser", "storage.admin", "storage.objects.delete", "workers"):
        assert not re.search(rf"^[^#]*{re.escape(word)}", text, re.M), f"backups.tf grants {word}"


def test_the_managers_stack_gets_the_setting_and_carries_it_to_the_boot_script() -> None:
    stack = _expr(cluster().module("manager").body["stack"])
    assert "backups = local.backups_setting" in stack
    setting = " ".join(str(cluster().locals["backups_setting"]).split())
    assert "url = local.backups_url" in setting
    assert "every_minutes = var.backups.every_minutes" in setting
    assert "region" not in setting, "a gs:// URL takes no region"
    assert cluster().locals["backups_url"] == (
        'local.backups_on ? "gs://${local.backups_bucket}/${local.backups_prefix}" : null'
    )
    # A module input converts to its type and drops what the type does not list.
    manager = load_module(REPO / MANAGER)
    assert "backups = optional(string)" in " ".join((manager.variables["stack"].type or "").split())
    assert _expr(manager.module("boot").body["stack"]) == "var.stack"
    boot = load_module(REPO / "modules/swarm-boot")
    assert "backups = optional(string)" in " ".join((boot.variables["stack"].type or "").split())


def test_env_passes_backups_through() -> None:
    env = load_module(REPO / "envs/gcp")
    assert env.module("cluster").body["backups"] == "var.backups"
    assert _expr(env.outputs["backups"].value) == "module.cluster.backups"
    assert env.variables["backups"].type == cluster().variables["backups"].type
    assert env.variables["backups"].default == cluster().variables["backups"].default
    assert env.variables["backups"].description == cluster().variables["backups"].description


# ---------------------------------------------------------------------------------------------------
# Behavioural: the locals, the output, the name check and the boot script, by Terraform (no provider)
# ---------------------------------------------------------------------------------------------------


def _block(text: str, header: str, indent: str = "") -> str:
    match = re.search(rf"^{indent}{re.escape(header)} \{{\n.*?^{indent}\}}\n", text, re.S | re.M)
    assert match, f"{header} not found"
    return match[0]


MAIN_TF = (
    manager_call("backups = local.backups_setting")
    + """
# The bucket's own check, without the bucket.
resource "terraform_data" "backups_bucket" {
  count = local.backups_on ? 1 : 0
%(lifecycle)s}

output "roles" {
  value = %(for_each)s
}

output "script" {
  value = module.manager.script
}
"""
)


@pytest.fixture(scope="module")
def backups_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("gcp-backups")
    backups_tf = (REPO / CLUSTER / "backups.tf").read_text()
    bucket = _block(backups_tf, 'resource "google_storage_bucket" "backups"')
    (root / "variables.tf").write_text((REPO / CLUSTER / "variables.tf").read_text())
    # database_on as database.tf has it (the rest of database.tf needs the provider).
    database_on = cluster().locals["database_on"]
    (root / "locals.tf").write_text(
        _block(backups_tf, "locals").replace("locals {\n", f"locals {{\n  database_on = {database_on}\n", 1)
    )
    (root / "outputs.tf").write_text(_block((REPO / CLUSTER / "outputs.tf").read_text(), 'output "backups"'))
    grant = cluster().resource("google_storage_bucket_iam_member", "backups").body["for_each"]
    (root / "main.tf").write_text(
        MAIN_TF % {"lifecycle": _block(bucket, "lifecycle", indent="  "), "for_each": grant}
    )
    add_manager(root)
    init(root)
    return root


def test_default_is_on_hourly_for_14_days_and_reaches_the_render(backups_root: Path, tmp_path: Path) -> None:
    out = outputs(backups_root, tmp_path)
    assert out["backups"] == {
        "bucket": BUCKET,
        "prefix": "backups/",
        "url": f"gs://{BUCKET}/backups",
        "every_minutes": 60,
        "retention_days": 14,
    }
    assert sorted(out["roles"]) == ROLES
    setting = script_setting(out["script"], "BACKUPS")
    assert json.loads(setting) == {"url": f"gs://{BUCKET}/backups", "every_minutes": 60}
    assert 'render+=(--backups "$AIRTASKS_STACK_BACKUPS")' in out["script"]
    # The image's render takes it as it is: one db-backup service, on a manager.
    service = yaml.safe_load(render_stack(backups=BackupSettings.parse(setting)))["services"]["db-backup"]
    assert json.loads(service["environment"]["AIRTASKS_BACKUPS"]) == json.loads(setting)
    assert "node.role == manager" in service["deploy"]["placement"]["constraints"]


def test_settings_pass_through(backups_root: Path, tmp_path: Path) -> None:
    out = outputs(backups_root, tmp_path, backups={"every_minutes": 15, "retention_days": 90})
    assert out["backups"]["every_minutes"] == 15
    assert out["backups"]["retention_days"] == 90
    assert json.loads(script_setting(out["script"], "BACKUPS"))["every_minutes"] == 15


@pytest.mark.parametrize(
    "values", [{"backups": None}, {"database": {"managed": True}}], ids=["null", "managed-database"]
)
def test_null_or_a_managed_database_means_no_bucket_no_grant_no_setting(
    backups_root: Path, tmp_path: Path, values: dict[str, Any]
) -> None:
    out = outputs(backups_root, tmp_path, **values)
    assert out.get("backups") is None
    assert out["roles"] == []
    assert script_setting(out["script"], "BACKUPS") == ""


@pytest.mark.parametrize(("backups", "fails"), [({}, True), (None, False)], ids=["on", "off"])
def test_a_bucket_name_over_63_characters_fails_the_plan_naming_the_fix(
    backups_root: Path, tmp_path: Path, backups: dict[str, Any] | None, fails: bool
) -> None:
    values = {
        "project_id": "a-long-project-id-0123456789ab",  # 30 characters, the most a project id has
        "cluster_name": "a-long-cluster-name-12",  # 22, the most cluster_name allows
        "backups": backups,
    }
    plan = run_terraform(
        backups_root,
        "plan",
        "-input=false",
        "-no-color",
        "-lock=false",
        f"-state={tmp_path / 'state.tfstate'}",
        f"-var-file={case_tfvars(tmp_path, values)}",
    )
    output = " ".join((plan.stdout + plan.stderr).replace("│", " ").split())
    if not fails:
        assert plan.returncode == 0, output[-2000:]
        return
    assert plan.returncode != 0
    assert "has 70 characters, Cloud Storage allows 63" in output, output[-2000:]
    assert "use a shorter cluster_name, or set backups = null to take no backups" in output
