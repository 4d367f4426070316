"""modules/gcp/cluster pins its zones: a later plan cannot move a MIG or a manager when the region's
zone list (the `google_compute_zones` data source, `status = "UP"`) comes back different.

Static half (python-hcl2): the data source feeds only `terraform_data.zones.input`, whose changes
are ignored; the MIGs and the managers are placed from `local.zones` alone, which is `var.zones`
or that pinned copy. Behavioural half, without the google provider: zones.tf with the data source
swapped for a variable is applied with one zone list, then planned with others, and the zones
stay as applied (terraform_data is built into Terraform, so this runs everywhere).
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import pytest

from tests.support.terraform import REPO, run_terraform
from tests.support.tfdocs import TfModule, load_module

pytestmark = pytest.mark.terraform

CLUSTER = "modules/gcp/cluster"
DATA_REF = "data.google_compute_zones.available"
THREE = ["europe-west1-b", "europe-west1-c", "europe-west1-d"]


@cache
def cluster() -> TfModule:
    return load_module(REPO / CLUSTER)


def _text(rel: str) -> str:
    return (REPO / CLUSTER / rel).read_text()


def _code(text: str) -> str:
    """HCL without comments (a comment may name the data source)."""
    return "\n".join(re.sub(r"(^|\s)(#|//).*$", "", line) for line in text.splitlines())


def test_the_data_source_feeds_only_the_pinned_copy() -> None:
    uses = {
        name: _code((REPO / CLUSTER / name).read_text()).count(DATA_REF)
        for name in sorted(p.name for p in (REPO / CLUSTER).glob("*.tf"))
    }
    assert {n: c for n, c in uses.items() if c} == {"zones.tf": 1}, uses
    zones_tf = _code(_text("zones.tf"))
    pin = re.search(r'resource "terraform_data" "zones" \{(.*?)\n\}', zones_tf, re.S)
    assert pin, "zones.tf must pin the zones in a terraform_data resource"
    assert DATA_REF in pin[1], "only terraform_data.zones may read the data source"
    assert re.search(r"ignore_changes\s*=\s*\[\s*input\s*\]", pin[1]), "the pin must ignore later inputs"
    data = re.search(r'data "google_compute_zones" "available" \{(.*?)\n\}', zones_tf, re.S)
    assert data, "zones.tf reads the region's zones"
    assert re.search(r"count\s*=\s*length\(var\.zones\)\s*==\s*0", data[1]), (
        "the data source is read only when zones is empty"
    )
    local = cluster().locals["zones"]
    assert "terraform_data.zones.output" in str(local), local
    assert "var.zones" in str(local), local
    assert DATA_REF not in str(local)


def test_migs_and_managers_are_placed_from_the_pinned_zones_only() -> None:
    workers = cluster().module("workers").body
    manager = cluster().module("manager").body
    assert str(workers["zones"]).strip("${}") == "local.zones"
    assert str(manager["zones"]).strip("${}") == "local.zones"
    assert str(manager["zone"]).strip("${}") == "local.zones[0]"
    for name, body in (("workers", workers), ("manager", manager)):
        assert DATA_REF not in json.dumps(body, default=str), name


@pytest.fixture(scope="module")
def zones_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """zones.tf as a root, the data source swapped for `var.available` (what it would return)."""
    root = tmp_path_factory.mktemp("gcp-zones")
    text = _text("zones.tf")
    text = re.sub(r'data "google_compute_zones" "available" \{.*?\n\}\n', "", text, flags=re.S)
    assert DATA_REF in text
    text = text.replace(f"{DATA_REF}[0].names", "var.available")
    (root / "zones.tf").write_text(text)
    (root / "harness.tf").write_text(
        'variable "zones" {\n  type = list(string)\n}\n'
        'variable "available" {\n  type = list(string)\n}\n'
        'output "zones" {\n  value = local.zones\n}\n'
    )
    return root


def _vars(zones: list[str], available: list[str]) -> list[str]:
    return [f"-var=zones={json.dumps(zones)}", f"-var=available={json.dumps(available)}"]


def _apply_then_plan(root: Path, state: Path, first: list[str], later: list[str], zones: list[str]) -> str:
    assert run_terraform(root, "init", "-input=false", "-no-color").returncode == 0
    applied = run_terraform(
        root, "apply", "-auto-approve", "-input=false", "-no-color", f"-state={state}", *_vars(zones, first)
    )
    assert applied.returncode == 0, applied.stdout + applied.stderr
    plan = run_terraform(
        root,
        "plan",
        "-detailed-exitcode",
        "-input=false",
        "-no-color",
        f"-state={state}",
        *_vars(zones, later),
    )
    assert plan.returncode == 0, f"a changed zone list changes the plan:\n{plan.stdout}{plan.stderr}"
    out = run_terraform(root, "output", "-json", f"-state={state}", "zones")
    return json.loads(out.stdout)


@pytest.mark.parametrize(
    "later",
    [THREE[:2], [*THREE, "europe-west1-e"], ["europe-west1-c", "europe-west1-d"], []],
    ids=["zone-d-down", "new-zone-e", "zone-b-down", "none-up"],
)
def test_a_later_zone_list_changes_nothing(zones_root: Path, tmp_path: Path, later: list[str]) -> None:
    """Applied with b, c, d UP; planned again with another list: no change, manager 0 stays in b."""
    zones = _apply_then_plan(zones_root, tmp_path / "state.tfstate", THREE, later, [])
    assert zones == THREE
    assert zones[0] == "europe-west1-b"


def test_explicit_zones_win_over_the_pin(zones_root: Path, tmp_path: Path) -> None:
    zones = _apply_then_plan(
        zones_root, tmp_path / "state.tfstate", THREE, THREE[:2], ["europe-west1-c", "europe-west1-d"]
    )
    assert zones == ["europe-west1-c", "europe-west1-d"]
