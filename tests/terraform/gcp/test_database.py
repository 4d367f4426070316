"""modules/gcp/cluster's managed PostgreSQL (`database.managed`, database.tf): Cloud SQL instead of the
stack's `postgres` service.

Static half (python-hcl2): a private IP only (private services access on the cluster's VPC, no
public IP), TLS required, backups with point-in-time recovery, deletion protection on by default in
Terraform and in Cloud SQL, and a final backup on delete; the password generated ephemeral and
written only through write-only arguments (never `password =` or `secret_data =`); the secret
readable by the nodes' service accounts alone, on that secret alone. Behavioural half, without the
google provider: database.tf's locals are evaluated by Terraform in a root of their own (the
resources' attributes stood in for), the setting rides the manager's `stack` to the boot script
(modules/swarm-boot), and the image's renderer makes a stack without `postgres` from it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import hcl2
import pytest
import yaml

from airtasks.stack.database import SECRET_NAME_ENV, ExternalDatabase
from airtasks.stack.render import QueueSpec, render_stack
from tests.support.terraform import REPO
from tests.support.tfdocs import blocks, load_module, unquote
from tests.terraform.gcp.evaluated import (
    CLUSTER,
    MANAGER,
    add_manager,
    cluster,
    init,
    manager_call,
    outputs,
    script_setting,
)

pytestmark = pytest.mark.terraform

PRIVATE_IP = "10.20.64.3"  # stands in for the instance's private_ip_address


def _expr(value: object) -> str:
    return " ".join(str(value).strip("${}").split())


def _one(items: object) -> dict[str, Any]:
    (item,) = blocks(items)  # type: ignore[arg-type]
    return item


def _instance() -> dict[str, Any]:
    return cluster().resource("google_sql_database_instance", "this").body


def _database_tf() -> str:
    return (REPO / CLUSTER / "database.tf").read_text()


def _code(text: str) -> str:
    """The HCL without its comments (a comment may name what the code must not do)."""
    return "\n".join(line.split("#", 1)[0] for line in text.splitlines())


# ---------------------------------------------------------------------------------------------------
# Static: the instance
# ---------------------------------------------------------------------------------------------------


def test_off_by_default_and_every_resource_follows_managed() -> None:
    variable = cluster().variables["database"]
    assert variable.default is None, "null = the stack's own PostgreSQL"
    assert cluster().locals["database_on"] == "try(var.database.managed, false) == true"
    in_file = [r for r in cluster().resources if r.file == "database.tf"]
    assert {r.type for r in in_file} >= {
        "google_compute_global_address",
        "google_service_networking_connection",
        "google_sql_database_instance",
        "google_sql_database",
        "google_sql_user",
        "google_secret_manager_secret",
        "google_secret_manager_secret_version",
        "google_secret_manager_secret_iam_member",
    }
    for r in in_file:
        gate = r.body.get("count", r.body.get("for_each"))
        assert "local.database_on" in str(gate) or gate == "local.database_readers", r.address
    assert "local.database_on ?" in _expr(cluster().locals["database_readers"])


def test_private_ip_only_through_private_services_access() -> None:
    address = cluster().resource("google_compute_global_address", "database").body
    assert address["purpose"] == "VPC_PEERING"
    assert address["address_type"] == "INTERNAL"
    assert address["network"] == "module.network.network", "the cluster's own VPC"
    peering = cluster().resource("google_service_networking_connection", "database").body
    assert peering["network"] == "module.network.network"
    assert peering["service"] == "servicenetworking.googleapis.com"
    assert peering["reserved_peering_ranges"] == ["google_compute_global_address.database[0].name"]
    instance = _instance()
    assert "google_service_networking_connection.database" in str(instance["depends_on"])
    ip = _one(_one(instance["settings"])["ip_configuration"])
    assert ip["ipv4_enabled"] is False, "no public IP"
    assert ip["private_network"] == "module.network.network"
    assert "authorized_networks" not in ip, "nothing public to authorise"
    assert ip["ssl_mode"] == "ENCRYPTED_ONLY", "TLS required"


def test_backups_point_in_time_recovery_and_a_final_backup() -> None:
    settings = _one(_instance()["settings"])
    backup = _one(settings["backup_configuration"])
    assert backup["enabled"] is True
    assert backup["point_in_time_recovery_enabled"] is True
    assert _one(backup["backup_retention_settings"]) == {
        "retained_backups": "var.database.backup_retention_days",
        "retention_unit": "COUNT",
    }
    assert _one(settings["final_backup_config"]) == {"enabled": True, "retention_days": 365}
    assert _expr(settings["availability_type"]) == 'var.database.multi_az ? "REGIONAL" : "ZONAL"'


def test_deletion_protection_is_on_by_default_in_terraform_and_in_cloud_sql() -> None:
    instance = _instance()
    assert instance["deletion_protection"] == "var.database.deletion_protection"
    settings = _one(instance["settings"])
    assert settings["deletion_protection_enabled"] == "var.database.deletion_protection"
    assert "deletion_protection = optional(bool, true)" in _expr(cluster().variables["database"].type)


def test_version_edition_and_tier_follow_the_input() -> None:
    m = cluster()
    assert _instance()["database_version"] == "local.database_version"
    assert "POSTGRES_${var.database.engine_version}" in m.locals["database_version"]
    settings = _one(_instance()["settings"])
    assert settings["tier"] == "var.database.tier"
    assert settings["edition"] == "local.database_edition"
    assert 'tier = optional(string, "db-custom-2-7680")' in _expr(m.variables["database"].type)


# ---------------------------------------------------------------------------------------------------
# Static: the password never in the plan or the state
# ---------------------------------------------------------------------------------------------------


def test_the_password_is_ephemeral_and_written_write_only() -> None:
    parsed = unquote(hcl2.loads(_database_tf()))
    (ephemeral,) = parsed["ephemeral"]
    assert list(ephemeral) == ["random_password"], "generated ephemeral: in no plan, no state"
    assert not cluster().resources_of("random_password"), "a managed random_password keeps it in state"
    user = cluster().resource("google_sql_user", "this").body
    assert _expr(user["password_wo"]) == "ephemeral.random_password.database[0].result"
    assert user["password_wo_version"] == "var.database.password_version"
    assert "password" not in user
    version = cluster().resource("google_secret_manager_secret_version", "database").body
    assert "ephemeral.random_password.database[0].result" in version["secret_data_wo"]
    assert version["secret_data_wo_version"] == "var.database.password_version"
    assert "secret_data" not in version
    assert "google_sql_user.this" in str(_one(version["lifecycle"])["replace_triggered_by"])
    # No resource argument of either name anywhere (the JSON's `password` key inside secret_data_wo
    # is deeper in).
    code = _code(_database_tf())
    assert not re.search(r"^  password\s*=", code, re.M), "a plain password argument is stored in state"
    assert not re.search(r"^  secret_data\s*=", code, re.M), "secret_data is stored in state"


def test_no_output_or_setting_carries_the_password() -> None:
    m = cluster()
    for text in (
        _expr(m.locals["database_setting"]),
        _expr(m.outputs["database"].value),
        _expr(load_module(REPO / "envs/gcp").outputs["database"].value),
    ):
        assert "password" not in text
        assert "ephemeral" not in text


# ---------------------------------------------------------------------------------------------------
# Static: who may read the secret
# ---------------------------------------------------------------------------------------------------


def test_the_secret_is_readable_by_the_nodes_only_and_only_that_secret() -> None:
    m = cluster()
    grant = m.resource("google_secret_manager_secret_iam_member", "database").body
    assert grant["for_each"] == "local.database_readers"
    assert grant["secret_id"] == "google_secret_manager_secret.database[0].secret_id"
    assert grant["role"] == "roles/secretmanager.secretAccessor"
    assert grant["member"] == "serviceAccount:${each.value}"
    readers = _expr(m.locals["database_readers"])
    # The managers' account and every worker group's: Celery workers write task results there.
    assert "manager = module.manager.service_account" in readers
    assert 'for q, w in module.workers : "worker-${q}" => w.service_account' in readers
    # Nothing wider: no project-level grant, no binding that would replace others.
    code = _code(_database_tf())
    for kind in ("google_project_iam", "_iam_binding", "_iam_policy"):
        assert kind not in code, f"database.tf uses {kind}"


# ---------------------------------------------------------------------------------------------------
# Static: the setting's way to the manager, the env
# ---------------------------------------------------------------------------------------------------


def test_the_setting_goes_to_the_manager_s_stack_and_on_to_the_boot_script() -> None:
    setting = _expr(cluster().locals["database_setting"])
    assert "host = google_sql_database_instance.this[0].private_ip_address" in setting
    assert "port = 5432" in setting
    assert "secret_name = local.database_secret" in setting
    assert "secret_arn" not in setting
    assert "projects/${var.project_id}/secrets/" in cluster().locals["database_secret"]
    stack = _expr(cluster().module("manager").body["stack"])
    assert "database = local.database_setting" in stack
    manager = load_module(REPO / MANAGER)
    assert "database = optional(string)" in _expr(manager.variables["stack"].type)
    boot = load_module(REPO / "modules/swarm-boot")
    assert "database = optional(string)" in _expr(boot.variables["stack"].type)


def test_env_passes_database_through() -> None:
    env = load_module(REPO / "envs/gcp")
    assert env.module("cluster").body["database"] == "var.database"
    assert _expr(env.outputs["database"].value) == "module.cluster.database"
    assert env.variables["database"].type == cluster().variables["database"].type
    assert env.variables["database"].default is None
    assert env.variables["database"].description == cluster().variables["database"].description


# ---------------------------------------------------------------------------------------------------
# Behavioural: the locals and the boot script, by Terraform (no provider); the render, by the image
# ---------------------------------------------------------------------------------------------------


def _locals_block() -> str:
    match = re.search(r"^locals \{\n.*?^\}\n", _database_tf(), re.S | re.M)
    assert match
    text = match[0]
    # The resources' attributes, stood in for (the static tests above tie each to its resource).
    stand_ins = {
        "google_sql_database_instance.this[0].private_ip_address": f'"{PRIVATE_IP}"',
        "google_sql_database.this[0].name": "local.database_db",
        "google_sql_user.this[0].name": "local.database_user",
        "google_secret_manager_secret.database[0].secret_id": '"airtasks-${var.cluster_name}-database"',
    }
    for attribute, stand_in in stand_ins.items():
        assert attribute in text, attribute
        text = text.replace(attribute, stand_in)
    # The readers need the node modules; test_the_secret_is_readable_... checks them.
    return re.sub(r"\n  # Every node's service account.*?\) : \{\}\n", "\n", text, flags=re.S)


MAIN_TF = (
    manager_call("database = local.database_setting")
    + """
output "version" {
  value = local.database_version
}

output "edition" {
  value = local.database_edition
}

output "setting" {
  value = local.database_setting
}

output "script" {
  value = module.manager.script
}
"""
)


@pytest.fixture(scope="module")
def database_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("gcp-database")
    (root / "variables.tf").write_text((REPO / CLUSTER / "variables.tf").read_text())
    (root / "locals.tf").write_text(_locals_block())
    (root / "main.tf").write_text(MAIN_TF)
    add_manager(root)
    init(root)
    return root


def test_managed_reaches_the_render_as_a_stack_without_postgres(database_root: Path, tmp_path: Path) -> None:
    out = outputs(database_root, tmp_path, database={"managed": True})
    assert (out["version"], out["edition"]) == ("POSTGRES_16", "ENTERPRISE")
    setting = json.loads(out["setting"])
    assert setting == {
        "host": PRIVATE_IP,
        "port": 5432,
        "name": "airflow",
        "user": "airflow",
        "secret_name": "projects/my-project-123/secrets/airtasks-demo-database",
    }
    assert json.loads(script_setting(out["script"], "DATABASE")) == setting
    assert 'render+=(--database "$AIRTASKS_STACK_DATABASE")' in out["script"]
    # The image's render takes it as it is: no postgres service, the secret's name, no password.
    text = render_stack(
        [QueueSpec("default", 4)], database=ExternalDatabase.parse(script_setting(out["script"], "DATABASE"))
    )
    stack = yaml.safe_load(text)
    assert "postgres" not in stack["services"]
    assert "postgres-data" not in (stack.get("volumes") or {})
    env = stack["services"]["airflow-scheduler"]["environment"]
    assert env[SECRET_NAME_ENV] == setting["secret_name"]
    assert f"{PRIVATE_IP}:5432" in env["AIRTASKS_WAIT_FOR"]


def test_other_versions_and_tiers(database_root: Path, tmp_path: Path) -> None:
    out = outputs(
        database_root,
        tmp_path,
        database={"managed": True, "engine_version": "17", "tier": "db-perf-optimized-N-2"},
    )
    assert (out["version"], out["edition"]) == ("POSTGRES_17", "ENTERPRISE_PLUS")


@pytest.mark.parametrize("database", [None, {"managed": False}], ids=["null", "not-managed"])
def test_off_means_no_setting_and_the_stack_s_own_postgres(
    database_root: Path, tmp_path: Path, database: dict[str, Any] | None
) -> None:
    out = outputs(database_root, tmp_path, database=database)
    assert out.get("setting") is None
    assert script_setting(out["script"], "DATABASE") == ""
