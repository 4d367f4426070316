"""Plan tests of the GCP modules and envs/gcp (tftest, cloud-foundation-fabric style).

Each case plans a module or env with `plans/<dir>/common.tfvars` + `<case>.tfvars` and matches the
plan against `<case>.yaml` (values by address, counts by type, outputs). They need the
hashicorp/google provider: where it cannot be installed (our CI) they skip with the one reason CI
tolerates; on a machine with the provider (or `AIRTASKS_GOOGLE_PROVIDER=registry`) they run.
Regenerate an inventory from a failing run's printed summary.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest

from tests.terraform.gcp.inventory import PLANS, check_inventory, needs_google

pytestmark = [pytest.mark.terraform, pytest.mark.gcp, needs_google]

CASES = {
    "modules/gcp/network": ("network", ["default", "access", "iap"]),
    "modules/gcp/swarm-manager": ("swarm_manager", ["default", "internal", "ha"]),
    "modules/gcp/worker-group": ("worker_group", ["default", "spot", "long_names"]),
    "envs/gcp": ("env", ["three_queues", "no_broker"]),
}
PARAMS = [
    pytest.param(module, folder, case, id=f"{folder}-{case}")
    for module, (folder, cases) in CASES.items()
    for case in cases
]


def _plan(gcp_plan: Any, module: str, folder: str, case: str) -> Any:
    var_files = [PLANS / folder / f"{case}.tfvars"]
    common = PLANS / folder / "common.tfvars"
    if common.is_file():
        var_files.insert(0, common)
    return gcp_plan(module, *[str(f) for f in var_files])  # absolute paths: any base folder works


@pytest.mark.parametrize(("module", "folder", "case"), PARAMS)
def test_plan_matches_inventory(gcp_plan: Any, module: str, folder: str, case: str) -> None:
    summary = _plan(gcp_plan, module, folder, case)
    check_inventory(summary, PLANS / folder / f"{case}.yaml")


# ---------------------------------------------------------------------------------------------------
# What a YAML inventory cannot say well: sets in any order, properties of rendered text
# ---------------------------------------------------------------------------------------------------


def _allows(rule: dict[str, Any]) -> set[tuple[str, str]]:
    return {(a["protocol"], p) for a in rule["allow"] for p in a.get("ports") or ["all"]}


def test_network_plan_swarm_ports_only_from_subnet(gcp_plan: Any) -> None:
    values = _plan(gcp_plan, "modules/gcp/network", "network", "access").values
    rules = {a: v for a, v in values.items() if a.startswith("google_compute_firewall.")}
    swarm = rules["google_compute_firewall.swarm"]
    assert _allows(swarm) == {("tcp", "2377"), ("tcp", "7946"), ("udp", "7946"), ("udp", "4789")}
    assert swarm["source_ranges"] == ["10.42.0.0/22"]
    for address, rule in rules.items():
        assert "0.0.0.0/0" not in (rule.get("source_ranges") or []), address
        if address != "google_compute_firewall.swarm":
            assert not {p for _, p in _allows(rule)} & {"2377", "7946", "4789", "all"}, address


def test_manager_plan_boot_script_and_scoped_scaler(gcp_plan: Any) -> None:
    values = _plan(gcp_plan, "modules/gcp/swarm-manager", "swarm_manager", "default").values
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


@pytest.mark.parametrize("case", ["default", "spot", "long_names"])
def test_worker_group_plan_names_and_secrets(gcp_plan: Any, case: str) -> None:
    values = _plan(gcp_plan, "modules/gcp/worker-group", "worker_group", case).values
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
    readable = {v["secret_id"] for a, v in values.items() if "secret_iam_member" in a}
    assert readable == {f"airtasks-{cluster}-worker-token", f"airtasks-{cluster}-manager-address"}


def test_ha_managers_share_one_script_and_the_first_inits(gcp_plan: Any) -> None:
    values = _plan(gcp_plan, "modules/gcp/swarm-manager", "swarm_manager", "ha").values
    scripts = {
        values[f"google_compute_instance.manager[{i}]"]["metadata"]["startup-script"] for i in range(3)
    }
    (script,) = scripts
    assert "AIRTASKS_MANAGER_COUNT='3'" in script
    assert "AIRTASKS_INIT_MANAGER='airtasks-demo-manager'" in script
    assert "SWMTKN" not in script
