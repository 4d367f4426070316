"""What a YAML inventory cannot say well about the GCP plans: sets in any order, properties of
rendered text. The cases are the shared ones (tests/terraform/gcp-*/, planned by the one harness
in conftest.py); they need the hashicorp/google provider and skip where it is missing, with the
one reason CI tolerates.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest

from tests.terraform.conftest import HERE, Plan, Terraform, cases, google_missing, needs_google

pytestmark = [pytest.mark.gcp, needs_google]


def _case(folder: str, name: str) -> Any:
    (case,) = [c for c in cases() if c.folder == HERE / folder and c.name == name]
    return case


def _plan(terraform: Terraform, folder: str, name: str) -> Any:
    case = _case(folder, name)
    return terraform.plan(case.module, list(case.tfvars))


def planned(items: list[pytest.Item]) -> list[Plan]:
    """Nothing to start in the background where these tests skip."""
    gcp = [c for c in cases("modules/gcp/") if not google_missing(c.module)]
    return [Plan(c.module, c.tfvars) for c in gcp] if items else []


# ---------------------------------------------------------------------------------------------------
# What a YAML inventory cannot say well: sets in any order, properties of rendered text
# ---------------------------------------------------------------------------------------------------


def _allows(rule: dict[str, Any]) -> set[tuple[str, str]]:
    return {(a["protocol"], p) for a in rule["allow"] for p in a.get("ports") or ["all"]}


def test_network_plan_swarm_ports_only_from_subnet(terraform: Terraform) -> None:
    values = _plan(terraform, "gcp-network", "access").values
    rules = {a: v for a, v in values.items() if a.startswith("google_compute_firewall.")}
    swarm = rules["google_compute_firewall.swarm"]
    assert _allows(swarm) == {("tcp", "2377"), ("tcp", "7946"), ("udp", "7946"), ("udp", "4789")}
    assert swarm["source_ranges"] == ["10.42.0.0/22"]
    for address, rule in rules.items():
        assert "0.0.0.0/0" not in (rule.get("source_ranges") or []), address
        if address != "google_compute_firewall.swarm":
            assert not {p for _, p in _allows(rule)} & {"2377", "7946", "4789", "all"}, address


def test_manager_plan_boot_script_and_scoped_scaler(terraform: Terraform) -> None:
    values = _plan(terraform, "gcp-swarm-manager", "default").values
    vm = values["google_compute_instance.manager[0]"]
    script = vm["metadata"]["startup-script"]
    assert script.startswith("#!")
    for secret in ("worker-token", "manager-token", "manager-address"):
        assert f"airtasks-demo-{secret}" in script
    assert "SWMTKN" not in script
    (account,) = vm["service_account"]
    assert set(account["scopes"]) <= {"cloud-platform", "https://www.googleapis.com/auth/cloud-platform"}
    (condition,) = values["google_project_iam_member.scaler"]["condition"]
    assert 'startsWith("airtasks-demo-")' in condition["expression"]
    assert "/instanceGroupManagers/{name}" in condition["expression"]
    grants = {
        (v["secret_id"], v["role"])
        for a, v in values.items()
        if a.startswith("google_secret_manager_secret_iam_member.manager[")
    }
    assert grants == {
        (f"airtasks-demo-{s}", f"roles/secretmanager.{r}")
        for s in ("worker-token", "manager-token", "manager-address")
        for r in ("secretVersionAdder", "secretAccessor")
    }


@pytest.mark.parametrize("case", ["default", "spot", "long-names"])
def test_worker_group_plan_names_and_secrets(terraform: Terraform, case: str) -> None:
    values = _plan(terraform, "gcp-worker-group", case).values
    mig = values["google_compute_region_instance_group_manager.this"]
    assert len(mig["name"]) <= 63
    assert len(mig["base_instance_name"]) <= 58
    assert sorted(mig["distribution_policy_zones"]) == ["europe-west1-b", "europe-west1-c", "europe-west1-d"]
    template = values["google_compute_instance_template.this"]
    assert len(template["name_prefix"]) <= 37
    cluster, queue = template["labels"]["airtasks-cluster"], template["labels"]["airtasks-queue"]
    stem = re.sub(r"-+$", "", f"{cluster}-{queue}"[:21])
    account_id = values["google_service_account.worker"]["account_id"]
    assert account_id == f"{stem}-{hashlib.sha1(f'{cluster}/{queue}'.encode()).hexdigest()[:8]}"
    assert re.fullmatch(r"[a-z][-a-z0-9]{4,28}[a-z0-9]", account_id)
    script = template["metadata"]["startup-script"]
    assert f"airtasks.queue={queue}" in script
    assert ("airtasks-spot-watcher.service" in script) is (case == "spot"), "the watcher on Spot VMs only"
    assert ("instance/preempted" in script) is (case == "spot")
    readable = {v["secret_id"] for a, v in values.items() if "secret_iam_member" in a}
    assert readable == {f"airtasks-{cluster}-worker-token", f"airtasks-{cluster}-manager-address"}


def test_ha_managers_share_one_script_and_the_first_inits(terraform: Terraform) -> None:
    values = _plan(terraform, "gcp-swarm-manager", "ha").values
    scripts = {
        values[f"google_compute_instance.manager[{i}]"]["metadata"]["startup-script"] for i in range(3)
    }
    (script,) = scripts
    assert "AIRTASKS_MANAGER_COUNT='3'" in script
    assert "AIRTASKS_INIT_MANAGER='airtasks-demo-manager'" in script
    assert "SWMTKN" not in script


def test_cluster_places_migs_and_managers_in_the_given_zones(terraform: Terraform) -> None:
    """modules/gcp/cluster with `zones` given: every MIG spreads over them (a set), the managers go
    round robin in the given order, and the region's zones are not read."""
    values = _plan(terraform, "gcp-cluster", "pinned-zones").values
    zones = ["europe-west1-c", "europe-west1-b", "europe-west1-d"]
    migs = {
        a: v for a, v in values.items() if a.endswith("google_compute_region_instance_group_manager.this")
    }
    assert len(migs) == 2
    for address, mig in migs.items():
        assert sorted(mig["distribution_policy_zones"]) == sorted(zones), address
    assert [values[f"module.manager.google_compute_instance.manager[{i}]"]["zone"] for i in range(3)] == zones
    assert not [a for a in values if a.startswith("data.google_compute_zones")]


LOGS_BUCKET = "my-project-123-airtasks-demo-logs"
BACKUPS_BUCKET = "my-project-123-airtasks-demo-backups"
WRITER_ROLES = ("roles/storage.objectCreator", "roles/storage.objectViewer")


def test_cluster_task_logs_bucket_grants_and_stack(terraform: Terraform) -> None:
    """Task logs on (the default): each worker group and the managers may create, read back and
    overwrite logs in the cluster's bucket, all on the bucket (no project role but
    the scaler's), and the managers' stack is rendered with the bucket's URL."""
    summary = _plan(terraform, "gcp-cluster", "task-logs")
    values = summary.values
    members = summary.of_type("google_storage_bucket_iam_member")
    # The backups bucket's grants (backups are on by default) are test_cluster_backups_...'s.
    members = {a: v for a, v in members.items() if v["bucket"] != BACKUPS_BUCKET}
    assert {v["bucket"] for v in members.values()} == {LOGS_BUCKET}
    prefix = "google_storage_bucket_iam_member."
    nodes = ("default", "batch", "manager")  # the managers run the scaler DAG's worker and the triggerer
    assert {a: v["role"] for a, v in members.items() if a.startswith(f"{prefix}logs_write[")} == {
        f'{prefix}logs_write["{q}/{r}"]': r for q in nodes for r in WRITER_ROLES
    }
    assert sorted(a for a in members if a.startswith(f"{prefix}logs_overwrite[")) == sorted(
        f'{prefix}logs_overwrite["{q}"]' for q in nodes
    )
    assert len(members) == 9
    role = values["google_project_iam_custom_role.logs_overwrite[0]"]
    assert role["permissions"] == ["storage.objects.delete"], "only the permission objectCreator lacks"
    project_members = [a for a in values if a.split(".")[-2] == "google_project_iam_member"]
    assert project_members == ["module.manager.google_project_iam_member.scaler"]
    (rule,) = values["google_storage_bucket.logs[0]"]["lifecycle_rule"]
    assert [a["type"] for a in rule["action"]] == ["Delete"]
    assert [(c["age"], c["matches_prefix"]) for c in rule["condition"]] == [(30, ["logs/"])]
    script = values["module.manager.google_compute_instance.manager[0]"]["metadata"]["startup-script"]
    assert f"AIRTASKS_STACK_TASK_LOGS='gs://{LOGS_BUCKET}/logs'" in script


def test_cluster_without_task_logs_has_no_bucket(terraform: Terraform) -> None:
    summary = _plan(terraform, "gcp-cluster", "no-task-logs")
    # The backups' own bucket stays (backups are on by default).
    assert not [
        a for a in summary.values if ("storage_bucket" in a and ".backups" not in a) or "logs_overwrite" in a
    ]
    script = summary.values["module.manager.google_compute_instance.manager[0]"]["metadata"]["startup-script"]
    assert "AIRTASKS_STACK_TASK_LOGS=''" in script
    assert LOGS_BUCKET not in script
    assert summary.output("task_logs") is None


def test_cluster_backups_bucket_managers_only_and_stack(terraform: Terraform) -> None:
    """Backups on: a bucket of their own, two grants on it (create, view) and none of the log
    bucket's on it; the managers' stack is rendered with where the dumps go and how often."""
    summary = _plan(terraform, "gcp-cluster", "backups")
    members = summary.of_type("google_storage_bucket_iam_member")
    on_backups = {a: v["role"] for a, v in members.items() if v["bucket"] == BACKUPS_BUCKET}
    prefix = "google_storage_bucket_iam_member.backups"
    assert on_backups == {f'{prefix}["{r}"]': r for r in WRITER_ROLES}, "no delete, nothing else"
    script = summary.values["module.manager.google_compute_instance.manager[0]"]["metadata"]["startup-script"]
    url = f"gs://{BACKUPS_BUCKET}/backups"
    assert f"""AIRTASKS_STACK_BACKUPS='{{"every_minutes":15,"url":"{url}"}}'""" in script
    worker = summary.values['module.workers["default"].google_compute_instance_template.this']
    assert BACKUPS_BUCKET not in str(worker), "the workers are not told where the dumps are"


def test_cluster_without_backups_has_no_backups_bucket(terraform: Terraform) -> None:
    summary = _plan(terraform, "gcp-cluster", "no-backups")
    assert not [a for a in summary.values if ".backups" in a]
    script = summary.values["module.manager.google_compute_instance.manager[0]"]["metadata"]["startup-script"]
    assert "AIRTASKS_STACK_BACKUPS=''" in script
    assert summary.output("backups") is None
