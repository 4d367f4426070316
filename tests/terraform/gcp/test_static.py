"""Static checks of the GCP modules and envs/gcp, read with python-hcl2.

The hashicorp/google provider is not installable here, so `terraform validate` and plans cannot run
(see test_plans.py); these checks hold the contracts that do not need it: regional MIG whose size
belongs to the scaler, Swarm ports never open to the world, least-privilege service accounts,
typed/described/validated variables, README tables, and references that resolve (a poor man's
`terraform validate`).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest
import yaml

from tests.support.terraform import REPO
from tests.support.tfdocs import TfModule, blocks, load_module, readme_docs, references, render_docs
from tests.terraform.conftest import cases

MODULES = (
    "modules/gcp/network",
    "modules/gcp/swarm-manager",
    "modules/gcp/worker-group",
    "modules/gcp/cluster",
)
CLUSTER = "modules/gcp/cluster"
ROOTS = (*MODULES, "envs/gcp")

SWARM_PORTS = {("tcp", 2377), ("tcp", 7946), ("udp", 7946), ("udp", 4789)}
META_ARGS = {"source", "version", "for_each", "count", "depends_on", "providers"}


@cache
def tf(rel: str) -> TfModule:
    return load_module(REPO / rel)


def _flat(value: object) -> str:
    return value if isinstance(value, str) else repr(value)


# ---------------------------------------------------------------------------------------------------
# Every module and env: versions, variables, outputs, README, references
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rel", MODULES)
def test_modules_configure_no_provider(rel: str) -> None:
    assert tf(rel).providers == [], f"{rel}: modules never configure providers; move it to envs/gcp"


def test_env_configures_the_google_provider_once() -> None:
    assert tf("envs/gcp").providers == ["google"]


@pytest.mark.parametrize("rel", ROOTS)
def test_versions(rel: str) -> None:
    m = tf(rel)
    assert "versions.tf" in m.sources, f"{rel}: versions.tf is missing"
    # The managed database's write-only password needs Terraform 1.11 and google 7.2
    # (test_provider_range.py says why); the other modules keep their older floors.
    newer = rel in ("modules/gcp/cluster", "envs/gcp")
    assert m.required_version() == (">= 1.11" if newer else ">= 1.5")
    google = m.required_providers().get("google")
    floor = ">= 7.2" if newer else ">= 5.0"
    assert google == {"source": "hashicorp/google", "version": floor}, f"{rel}: {google}"


def passed_to_validation(rel: str, name: str) -> bool:
    """Whether `rel` passes variable `name` as it is to a local module that validates it (or passes
    it on again)."""
    for call in tf(rel).modules:
        source = str(call.body.get("source", ""))
        if str(call.body.get(name, "")).strip("${}") != f"var.{name}" or not source.startswith("."):
            continue
        callee = str(((REPO / rel) / source).resolve().relative_to(REPO))
        if tf(callee).variables[name].validations or passed_to_validation(callee, name):
            return True
    return False


@pytest.mark.parametrize("rel", ROOTS)
def test_variables_typed_described_validated(rel: str) -> None:
    problems = []
    for name, var in tf(rel).variables.items():
        if not var.type:
            problems.append(f"{name}: no type")
        if not var.description or not var.description.rstrip("`").endswith((".", ")")):
            problems.append(f"{name}: description missing or not a sentence")
        # envs/gcp hands its variables to the cluster module, which validates them or hands them to
        # a module shared by both clouds that does.
        checked = var.validations or passed_to_validation(rel, name)
        if var.type != "bool" and not checked:
            problems.append(f"{name}: a {var.type} can be wrong, add a validation block")
        for v in var.validations:
            message = _flat(v.get("error_message", ""))
            root = name.split(".")[0]
            if not message.startswith(root):
                problems.append(f"{name}: error_message must open with the variable name: {message[:60]}")
    assert not problems, f"{rel}:\n" + "\n".join(problems)


@pytest.mark.parametrize("rel", ROOTS)
def test_variables_alphabetical(rel: str) -> None:
    for file, names in tf(rel).variable_order.items():
        assert names == sorted(names), f"{rel}/{file}: keep variables in alphabetical order"


@pytest.mark.parametrize("rel", ROOTS)
def test_collections_default_empty_and_not_nullable(rel: str) -> None:
    for name, var in tf(rel).variables.items():
        if var.type and var.type.startswith(("list(", "map(", "set(")) and not var.required:
            assert var.nullable is False, f"{rel}: {name}: collections take nullable = false"


@pytest.mark.parametrize("rel", ROOTS)
def test_outputs_described(rel: str) -> None:
    for name, out in tf(rel).outputs.items():
        assert out.description, f"{rel}: output {name} has no description"
        assert not out.sensitive, f"{rel}: output {name}: outputs carry names, never secrets"


@pytest.mark.parametrize("rel", ROOTS)
def test_readme_table_matches_code(rel: str) -> None:
    readme = REPO / rel / "README.md"
    assert readme.is_file(), f"{rel}: README.md is missing"
    block = readme_docs(readme.read_text())
    assert block is not None, f"{readme}: add <!-- BEGIN_TF_DOCS --> / <!-- END_TF_DOCS -->"
    assert block == render_docs(tf(rel)), (
        f"{readme}: table out of step with variables.tf/outputs.tf; regenerate with\n"
        f"  .venv/bin/python -m tests.support.tfdocs --write {rel}"
    )


@pytest.mark.parametrize("rel", ROOTS)
def test_references_resolve(rel: str) -> None:
    """What `terraform validate` would catch first: every var/local/module/resource reference exists."""
    m = tf(rel)
    everything = [m.locals, m.outputs and {k: o.value for k, o in m.outputs.items()}]
    everything += [b.body for b in (*m.resources, *m.data, *m.modules)]
    everything += [{n: [*v.validations]} for n, v in m.variables.items()]
    assert references(everything, "var") <= set(m.variables), "undeclared var.*"
    assert references(everything, "local") <= set(m.locals), "undeclared local.*"
    module_names = {b.name for b in m.modules}
    assert references(everything, "module") <= module_names, "undeclared module.*"
    declared = {(r.type, r.name) for r in m.resources}
    data = {(d.type, d.name) for d in m.data}
    for text in _texts(everything):
        for prefix, type_, name in re.findall(r"(data\.)?\b(google_[a-z0-9_]+)\.([a-z0-9_]+)\b", text):
            pool = data if prefix else declared
            assert (type_, name) in pool, f"{rel}: {prefix}{type_}.{name} is not declared"
        for mod, out in re.findall(r"\bmodule\.([a-z0-9_]+)(?:\[[^\]]*\])?\.([a-z0-9_]+)", text):
            callee = _callee(m, mod)
            if callee is not None:
                assert out in callee.outputs, f"{rel}: module.{mod}.{out}: {callee.path} has no such output"


def _texts(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [t for k, v in value.items() for t in (str(k), *_texts(v))]
    if isinstance(value, list):
        return [t for v in value for t in _texts(v)]
    return []


def _callee(m: TfModule, name: str) -> TfModule | None:
    source = str(m.module(name).body["source"])
    if not source.startswith("."):
        return None
    path = (m.path / source).resolve()
    if not path.is_dir():
        pytest.fail(f"{m.path}: module {name}: source {source} does not exist (yet?)")
    return load_module(path)


@pytest.mark.parametrize("rel", ROOTS)
def test_module_calls_match_variables(rel: str) -> None:
    m = tf(rel)
    for call in m.modules:
        callee = _callee(m, call.name)
        assert callee is not None
        args = set(call.body) - META_ARGS
        unknown = args - set(callee.variables)
        assert not unknown, f"{rel}: module {call.name} passes unknown inputs {sorted(unknown)}"
        missing = {n for n, v in callee.variables.items() if v.required} - args
        assert not missing, f"{rel}: module {call.name} misses required inputs {sorted(missing)}"


# ---------------------------------------------------------------------------------------------------
# worker-group: a regional MIG whose size belongs to the scaler
# ---------------------------------------------------------------------------------------------------


def test_worker_group_is_one_regional_mig_that_ignores_target_size() -> None:
    m = tf("modules/gcp/worker-group")
    assert [r.type for r in m.resources if "instance_group_manager" in r.type] == [
        "google_compute_region_instance_group_manager"
    ]
    mig = m.resource("google_compute_region_instance_group_manager", "this").body
    ignored = [x for lc in blocks(mig.get("lifecycle")) for x in lc.get("ignore_changes", [])]
    assert "target_size" in ignored, "the scaler owns the size: lifecycle.ignore_changes = [target_size]"
    assert mig["target_size"] == "var.min_size"
    assert mig["distribution_policy_zones"] == "var.zones"
    assert not {"for_each", "count"} & set(mig), "ONE group per module call"


def test_worker_group_has_no_autoscaler_and_never_moves_running_vms() -> None:
    for rel in ROOTS:
        types = {r.type for r in tf(rel).resources}
        assert not types & {"google_compute_autoscaler", "google_compute_region_autoscaler"}, rel
    mig = tf("modules/gcp/worker-group").resource("google_compute_region_instance_group_manager", "this")
    (policy,) = blocks(mig.body["update_policy"])
    assert policy["type"] == "OPPORTUNISTIC", "a new template must not replace VMs that run tasks"
    assert policy["instance_redistribution_type"] == "NONE", "no deletions to even out zones"
    assert "auto_healing_policies" not in mig.body


def test_worker_template_spot_variant() -> None:
    tpl = tf("modules/gcp/worker-group").resource("google_compute_instance_template", "this").body
    (sched,) = blocks(tpl["scheduling"])
    assert sched["provisioning_model"] == 'var.spot ? "SPOT" : "STANDARD"'
    assert sched["preemptible"] == "var.spot"
    assert sched["automatic_restart"] == "!var.spot"
    assert "TERMINATE" in sched["on_host_maintenance"]
    assert tpl["lifecycle"][0]["create_before_destroy"] is True


def test_worker_vms_have_no_public_ip() -> None:
    tpl = tf("modules/gcp/worker-group").resource("google_compute_instance_template", "this").body
    for nic in blocks(tpl["network_interface"]):
        assert "access_config" not in nic, "workers egress through Cloud NAT, no public IP"


# ---------------------------------------------------------------------------------------------------
# Names and labels (docs/design.md "Names")
# ---------------------------------------------------------------------------------------------------


def test_names_follow_the_contract() -> None:
    wg = tf("modules/gcp/worker-group")
    assert wg.locals["name"] == "airtasks-${var.cluster_name}-${var.queue}"
    assert wg.resource("google_compute_region_instance_group_manager", "this").body["name"] == "local.name"
    mgr = tf("modules/gcp/swarm-manager")
    assert mgr.locals["secrets"] == {
        "worker_token": "airtasks-${var.cluster_name}-worker-token",
        "manager_token": "airtasks-${var.cluster_name}-manager-token",
        "manager_address": "airtasks-${var.cluster_name}-manager-address",
    }


@pytest.mark.parametrize(
    ("rel", "keys"),
    [
        ("modules/gcp/worker-group", {"airtasks-cluster", "airtasks-queue", "airtasks-role"}),
        ("modules/gcp/swarm-manager", {"airtasks-cluster", "airtasks-role"}),
    ],
)
def test_gcp_labels(rel: str, keys: set[str]) -> None:
    labels = tf(rel).locals["labels"]
    for key in keys:
        assert f"{key} =" in labels, f"{rel}: local.labels must set {key}"


# ---------------------------------------------------------------------------------------------------
# network: firewall
# ---------------------------------------------------------------------------------------------------


def _ports(rule: dict[str, object]) -> set[tuple[str, int]]:
    """(protocol, port) pairs among the Swarm ports that a rule's allow blocks open."""
    opened: set[tuple[str, int]] = set()
    for allow in blocks(rule.get("allow")):  # type: ignore[arg-type]
        proto = str(allow["protocol"])
        specs = allow.get("ports") or ["0-65535"]  # no ports = every port
        for proto_, port in SWARM_PORTS:
            if proto not in (proto_, "all"):
                continue
            for spec in specs:
                lo, _, hi = str(spec).partition("-")
                if not (lo.isdigit() and (hi or lo).isdigit()):
                    pytest.fail(f"firewall ports must be literals to be checked: {spec}")
                if int(lo) <= port <= int(hi or lo):
                    opened.add((proto_, port))
    return opened


def test_firewall_never_opens_swarm_ports_to_the_world() -> None:
    net = tf("modules/gcp/network")
    rules = net.resources_of("google_compute_firewall")
    assert rules, "no firewall rules?"
    swarm_rules = []
    for rule in rules:
        ranges = rule.body.get("source_ranges")
        assert "0.0.0.0/0" not in _flat(ranges), f"{rule.address}: literal 0.0.0.0/0"
        assert rule.body.get("direction") == "INGRESS"
        if _ports(rule.body):
            swarm_rules.append(rule)
            assert ranges == ["var.subnet_cidr"], f"{rule.address}: Swarm ports only from the subnet range"
            assert "source_tags" not in rule.body
            assert "source_service_accounts" not in rule.body
    assert [r.name for r in swarm_rules] == ["swarm"]
    assert _ports(swarm_rules[0].body) == SWARM_PORTS, "the Swarm rule opens 2377/tcp, 7946/tcp+udp, 4789/udp"


def test_firewall_ssh_and_web_rules() -> None:
    net = tf("modules/gcp/network")
    ssh = net.resource("google_compute_firewall", "ssh").body
    assert ssh["count"] == "length(local.ssh_ranges) > 0 ? 1 : 0", "default none = no SSH rule"
    assert ssh["source_ranges"] == "local.ssh_ranges"
    assert blocks(ssh["allow"]) == [{"protocol": "tcp", "ports": ["22"]}]
    assert references(net.locals["ssh_ranges"], "var") == {"admin_cidrs", "ssh_from_iap"}
    assert net.locals["iap_range"] == "35.235.240.0/20"
    assert net.variables["admin_cidrs"].default == []

    web = net.resource("google_compute_firewall", "web").body
    assert web["source_ranges"] == "var.web_cidrs"
    assert web["target_tags"] == ["local.tags.manager"], "HTTPS to the manager only"
    assert blocks(web["allow"]) == [{"protocol": "tcp", "ports": ["443"]}]


def test_network_is_custom_mode_with_nat() -> None:
    net = tf("modules/gcp/network")
    assert net.resource("google_compute_network", "this").body["auto_create_subnetworks"] is False
    assert net.resource("google_compute_subnetwork", "this").body["private_ip_google_access"] is True
    assert len(net.resources_of("google_compute_router")) == 1
    assert len(net.resources_of("google_compute_router_nat")) == 1


# ---------------------------------------------------------------------------------------------------
# VMs and service accounts
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rel", "type_", "name", "sa"),
    [
        ("modules/gcp/swarm-manager", "google_compute_instance", "manager", "manager"),
        ("modules/gcp/worker-group", "google_compute_instance_template", "this", "worker"),
    ],
)
def test_vms_are_shielded_with_their_own_service_account(rel: str, type_: str, name: str, sa: str) -> None:
    body = tf(rel).resource(type_, name).body
    (shielded,) = blocks(body["shielded_instance_config"])
    assert shielded == {"enable_secure_boot": True, "enable_vtpm": True, "enable_integrity_monitoring": True}
    (account,) = blocks(body["service_account"])
    assert account["email"] == f"google_service_account.{sa}.email", "never the Compute Engine default SA"
    metadata = body["metadata"]
    assert set(metadata) == {"startup-script", "enable-oslogin", "block-project-ssh-keys"}
    assert metadata["startup-script"] == "module.boot.script"


@pytest.mark.parametrize(
    ("rel", "role"), [("modules/gcp/swarm-manager", "manager"), ("modules/gcp/worker-group", "worker")]
)
def test_boot_script_comes_from_swarm_boot(rel: str, role: str) -> None:
    boot = tf(rel).module("boot").body
    assert boot["source"] == "../../swarm-boot"
    assert (boot["cloud"], boot["role"]) == ("gcp", role)
    assert "worker_token" in boot["worker_token_ref"], boot["worker_token_ref"]
    assert "manager_address" in boot["manager_address_ref"], boot["manager_address_ref"]
    # Spot VMs get the interruption watcher; managers never run on spot.
    assert boot.get("spot") == ("var.spot" if role == "worker" else None)


def test_worker_service_account_reads_two_secrets_only() -> None:
    wg = tf("modules/gcp/worker-group")
    iam = [r for r in wg.resources if "iam" in r.type]
    assert {r.type for r in iam} == {"google_secret_manager_secret_iam_member"}, "no project-level role"
    (member,) = iam
    assert member.body["role"] == "roles/secretmanager.secretAccessor"
    assert member.body["for_each"] == "local.readable_secrets"
    assert member.body["member"] == "serviceAccount:${google_service_account.worker.email}"
    assert wg.locals["readable_secrets"] == {
        "worker_token": "var.secret_ids.worker_token",
        "manager_address": "var.secret_ids.manager_address",
    }


def test_manager_may_publish_its_secrets_and_scale_this_cluster_only() -> None:
    mgr = tf("modules/gcp/swarm-manager")
    member = mgr.resource("google_secret_manager_secret_iam_member", "manager").body
    assert member["secret_id"] == "google_secret_manager_secret.this[each.value.secret].secret_id"
    assert mgr.locals["secret_roles"] == [
        "roles/secretmanager.secretVersionAdder",
        "roles/secretmanager.secretAccessor",
    ]
    project_members = mgr.resources_of("google_project_iam_member")
    assert [r.name for r in project_members] == ["scaler"], "no predefined project role"
    scaler = project_members[0].body
    assert scaler["role"] == "google_project_iam_custom_role.scaler.name"
    (condition,) = blocks(scaler["condition"])
    assert "/instanceGroupManagers/{name}" in condition["expression"]
    assert "local.mig_prefix" in condition["expression"]
    assert mgr.locals["mig_prefix"] == "airtasks-${var.cluster_name}-"
    role = mgr.resource("google_project_iam_custom_role", "scaler").body
    assert role["permissions"] == "local.scaler_permissions"
    assert mgr.locals["scaler_permissions"] == [
        "compute.instanceGroupManagers.get",
        "compute.instanceGroupManagers.update",
        "compute.instances.get",
        "compute.regionOperations.get",
    ]
    assert not [r for r in mgr.resources if r.type.endswith(("_iam_binding", "_iam_policy"))]


@pytest.mark.parametrize("rel", ROOTS)
def test_no_secret_value_in_terraform(rel: str) -> None:
    """Terraform creates the secrets; versions (token values) come from the manager at boot. The one
    version Terraform writes, the managed database's password (database.tf), is write-only: its
    value is in neither the plan nor the state (test_database.py checks it further)."""
    m = tf(rel)
    for version in m.resources_of("google_secret_manager_secret_version"):
        assert (rel, version.name) == (CLUSTER, "database"), f"{rel}: a version puts a value in state"
        assert "secret_data" not in version.body, f"{rel}: secret_data puts the value in state"
        assert "secret_data_wo" in version.body
    for text in m.sources.values():
        assert "SWMTKN" not in text


# ---------------------------------------------------------------------------------------------------
# envs/gcp and modules/gcp/cluster
# ---------------------------------------------------------------------------------------------------


def test_env_is_a_thin_root_over_the_cluster_module() -> None:
    """One module call passing every variable through by name; no resource of its own."""
    env = tf("envs/gcp")
    assert [m.name for m in env.modules] == ["cluster"]
    assert env.resources == []
    assert env.data == []
    call = env.module("cluster").body
    assert call["source"] == f"../../{CLUSTER}"
    assert {k: str(v) for k, v in call.items() if k != "source"} == {n: f"var.{n}" for n in env.variables}
    for name, out in env.outputs.items():
        assert str(out.value).strip("${}") == f"module.cluster.{name}", name


def test_cluster_fans_out_one_worker_group_per_queue() -> None:
    env = tf(CLUSTER)
    workers = env.module("workers").body
    assert workers["for_each"] == "var.queues"
    assert workers["queue"] == "each.key"
    assert workers["secret_ids"] == "module.manager.secret_ids"
    assert env.module("manager").body["network_tags"] == [
        "module.network.tags.node",
        "module.network.tags.manager",
    ]
    assert workers["network_tags"] == ["module.network.tags.node"]


def test_cluster_scaler_config_shape() -> None:
    assert tf(CLUSTER).outputs["scaler_config"].value.strip("${}") == "local.scaler_config"
    value = tf(CLUSTER).locals["scaler_config"]  # the output, and what the manager hands the scaler
    assert value["backend"] == "gcp"
    assert value["project"] == "var.project_id"
    assert value["region"] == "var.region"
    assert set(value) == {
        "backend",
        "cluster_name",
        "region",
        "project",
        "interval_seconds",
        "stabilization_seconds",
        "idle_seconds",
        "sources",
        "queues",
    }
    assert "group = module.workers[q].name" in value["queues"]
    assert "prescale = cfg.prescale" in value["queues"]  # the per-queue switches reach the scaler
    assert "pack = cfg.pack" in value["queues"]
    assert "learn_durations = cfg.learn_durations" in value["queues"]


def test_tfvars_example_exists() -> None:
    example = REPO / "envs/gcp/terraform.tfvars.example"
    assert example.is_file()
    assert Path(example).read_text().count("machine_type") >= 2, "show two queues"


def test_every_plan_case_has_tfvars_and_inventory() -> None:
    """The plan tests skip here; at least their inputs exist and parse."""
    gcp = [c for c in cases() if c.module in ROOTS]
    assert {c.module for c in gcp} == set(ROOTS), "every GCP module and envs/gcp has plan cases"
    for case in gcp:
        for tfvars in case.tfvars:
            assert tfvars.is_file(), f"{case.id}: {tfvars.name}"
        inventory = yaml.safe_load(case.inventory.read_text())
        assert set(inventory) <= {"values", "counts", "outputs"}, f"{case.id}.yaml"


def test_manager_ha_is_manager_count_vms_the_first_inits() -> None:
    """manager_count VMs from one resource, the first (plain name) inits the Swarm and alone has the
    external IP; existing single-manager state moves to index 0 without a replacement."""
    mgr = tf("modules/gcp/swarm-manager")
    vm = mgr.resource("google_compute_instance", "manager").body
    assert vm["count"] == "var.manager_count"
    assert vm["name"] == "local.names[count.index]"
    (nic,) = blocks(vm["network_interface"])
    assert "count.index == 0" in str(nic["dynamic"])
    boot = mgr.module("boot").body
    assert boot["manager_count"] == "var.manager_count"
    assert boot["init_manager"] == "local.names[0]"
    assert "google_compute_instance.manager[0]" in (REPO / "modules/gcp/swarm-manager/main.tf").read_text()
    env = tf(CLUSTER).module("manager").body
    assert env["manager_count"] == "var.manager_count"
