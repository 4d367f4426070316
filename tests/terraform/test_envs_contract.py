"""envs/aws and envs/gcp take the same `queues` and `scaler` shapes and print the same `scaler_config`.

Static (python-hcl2), so it runs without either provider. The one intended difference: a queue's
machine is `instance_types` (list) on AWS and `machine_type` (string) on GCP. The envs are thin
roots: the scaler config, the stack handed to the managers and the validations are in their
cluster modules (modules/aws/cluster, modules/gcp/cluster), which envs/local shares with envs/aws.
"""

from __future__ import annotations

import re
from functools import cache

import pytest

from tests.support.terraform import REPO
from tests.support.tfdocs import TfModule, load_module, object_keys

ENVS = ("envs/aws", "envs/gcp")
MACHINE = {"envs/aws": "instance_types", "envs/gcp": "machine_type"}
BACKEND = {"envs/aws": "aws", "envs/gcp": "gcp"}
CLUSTER = {
    "envs/aws": "modules/aws/cluster",
    "envs/gcp": "modules/gcp/cluster",
    "envs/local": "modules/aws/cluster",
}
SHARED_INPUTS = {"cluster_name", "region", "queues", "scaler", "stack", "admin_cidrs", "web_cidrs"}
SHARED_OUTPUTS = {"scaler_config", "manager_address", "web_url", "worker_groups"}


@cache
def env(rel: str) -> TfModule:
    path = REPO / rel
    if not (path / "variables.tf").is_file():
        pytest.fail(f"{rel} is missing: this contract test needs both envs (issue 3 and issue 6 merged)")
    return load_module(path)


def _object_attrs(type_expr: str) -> dict[str, str]:
    """`object({a = string, b = optional(bool, false)})` -> {"a": "string", "b": "optional(bool, false)"}."""
    inner = type_expr[type_expr.index("{") + 1 : type_expr.rindex("}")]
    attrs, depth, start = {}, 0, 0
    for i, ch in enumerate([*inner, ","]):
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == "," and depth == 0:
            key, _, value = inner[start:i].partition("=")
            if key.strip():
                attrs[key.strip()] = " ".join(value.split())
            start = i + 1
    return attrs


def _keys(value: object) -> list[str]:
    """Keys of an object literal (parsed to a dict) or of an object inside an expression."""
    return list(value) if isinstance(value, dict) else object_keys(str(value))


def test_both_envs_take_the_shared_inputs() -> None:
    for rel in ENVS:
        missing = SHARED_INPUTS - set(env(rel).variables)
        assert not missing, f"{rel} lacks {sorted(missing)}"


def test_queues_have_the_same_attributes_but_the_machine() -> None:
    shapes = {}
    for rel in ENVS:
        type_ = env(rel).variables["queues"].type or ""
        assert type_.startswith("map(object("), f"{rel}: queues must be a map(object(...)) keyed by queue"
        attrs = _object_attrs(type_)
        assert MACHINE[rel] in attrs, f"{rel}: queues.<name>.{MACHINE[rel]}"
        del attrs[MACHINE[rel]]
        shapes[rel] = attrs
    assert shapes["envs/aws"] == shapes["envs/gcp"]
    assert _object_attrs(env("envs/aws").variables["queues"].type or "")["instance_types"] == "list(string)"
    assert _object_attrs(env("envs/gcp").variables["queues"].type or "")["machine_type"] == "string"


def test_scaler_settings_have_the_same_shape() -> None:
    aws, gcp = (_object_attrs(env(rel).variables["scaler"].type or "") for rel in ENVS)
    assert aws == gcp


def scaler_config(rel: str) -> dict[str, object]:
    """The `scaler_config` output's value, through the local it names (the manager gets it too)."""
    assert str(env(rel).outputs["scaler_config"].value).strip("${}") == "module.cluster.scaler_config"
    rel = CLUSTER[rel]
    value = env(rel).outputs["scaler_config"].value
    if isinstance(value, str) and value.strip("${}").startswith("local."):
        value = env(rel).locals[value.strip("${}").removeprefix("local.")]
    assert isinstance(value, dict), f"{rel}: scaler_config must be an object literal (or a local holding one)"
    return value


def test_scaler_config_has_the_same_keys() -> None:
    configs = {rel: scaler_config(rel) for rel in ENVS}
    aws, gcp = configs["envs/aws"], configs["envs/gcp"]
    assert set(aws) == set(gcp)
    assert set(aws["sources"]) == set(gcp["sources"]) == {"airflow", "rabbitmq"}
    for part in ("airflow", "rabbitmq"):
        assert _keys(aws["sources"][part]) == _keys(gcp["sources"][part]), part
    assert (
        _keys(aws["queues"])
        == _keys(gcp["queues"])
        == [
            "group",
            "min_size",
            "max_size",
            "slots_per_node",
            "prescale",
            "pack",
            "learn_durations",
        ]
    )
    for rel, config in configs.items():
        assert config["backend"] == BACKEND[rel]
    assert aws["project"] is None, "project is null on AWS"
    assert gcp["project"] == "var.project_id"


def test_the_manager_gets_the_queues_and_the_scaler_config() -> None:
    """What the manager's boot script renders the stack for and hands the scaler (modules/swarm-boot)."""
    for rel in ENVS:
        assert str(env(rel).module("cluster").body["stack"]).strip("${}") == "var.stack", rel
        module = CLUSTER[rel]
        stack = str(env(module).module("manager").body.get("stack", ""))
        assert "var.stack" in stack, module
        assert "cfg.slots_per_node" in stack, f"{module}: the manager renders the stack for var.queues"
        assert "jsonencode(local.scaler_config)" in stack, (
            f"{module}: the scaler on the manager gets its config"
        )


def test_both_envs_print_the_shared_outputs() -> None:
    for rel in ENVS:
        missing = SHARED_OUTPUTS - set(env(rel).outputs)
        assert not missing, f"{rel} lacks outputs {sorted(missing)}"


def test_queue_names_validated_alike() -> None:
    """Both reserve `manager`; GCP is stricter only in forbidding a trailing dash (GCE names)."""
    for rel in ENVS:
        messages = " ".join(
            str(v.get("error_message")) for v in env(CLUSTER[rel]).variables["queues"].validations
        )
        assert re.search(r'"manager"', messages), f"{rel}: queue name manager is reserved"


@pytest.mark.parametrize("rel", [*ENVS, "envs/local"])
def test_envs_are_thin_roots(rel: str) -> None:
    """A provider, one call of the cluster module, outputs passed through; short enough to read."""
    root = env(rel)
    assert [m.name for m in root.modules] == ["cluster"], rel
    assert str(root.module("cluster").body["source"]) == f"../../{CLUSTER[rel]}"
    assert root.resources == [], f"{rel}: resources belong in {CLUSTER[rel]}"
    assert root.data == [], f"{rel}: data sources belong in {CLUSTER[rel]}"
    for name, out in root.outputs.items():
        assert str(out.value).strip("${}") == f"module.cluster.{name}", f"{rel}: output {name}"
    lines = len((REPO / rel / "main.tf").read_text().splitlines())
    assert lines <= 60, f"{rel}/main.tf has {lines} lines"
