"""Every `tests/terraform/<module>/tftest.yaml` case: plan `<case>.tfvars`, check `<case>.yaml`."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.terraform.conftest import HERE, Plan, Terraform, check_inventory


def _cases() -> list[tuple[str, Path, str]]:
    cases = []
    for spec in sorted(HERE.glob("*/tftest.yaml")):
        config = yaml.safe_load(spec.read_text())
        cases += [(config["module"], spec.parent, name) for name in config["tests"]]
    return cases


@pytest.mark.parametrize(
    ("module", "folder", "case"), _cases(), ids=[f"{f.name}/{c}" for _, f, c in _cases()]
)
def test_plan_matches_inventory(terraform: Terraform, module: str, folder: Path, case: str) -> None:
    summary = terraform.plan(module, [folder / f"{case}.tfvars"])
    check_inventory(
        summary,
        folder / f"{case}.yaml",
        regenerate=f"pytest tests/terraform/test_plans.py -k '{folder.name}/{case}'",
    )


def planned(items: list[pytest.Item]) -> list[Plan]:
    """The plans these tests ask for (the `terraform` fixture starts them in the background)."""
    params = [item.callspec.params for item in items if hasattr(item, "callspec")]
    return [Plan(p["module"], (p["folder"] / f"{p['case']}.tfvars",)) for p in params]
