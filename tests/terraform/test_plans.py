"""Every `tests/terraform/<folder>/tftest.yaml` case, AWS and GCP alike: plan the folder's `common`
tfvars and `<case>.tfvars`, check `<case>.yaml` (see conftest.py for the layout and matching)."""

from __future__ import annotations

import pytest

from tests.terraform.conftest import (
    Case,
    Plan,
    Terraform,
    cases,
    check_inventory,
    google_missing,
    needs_google,
)

CASES = cases()


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, marks=[needs_google] if google_missing(c.module) else []) for c in CASES],
    ids=[c.id for c in CASES],
)
def test_plan_matches_inventory(terraform: Terraform, case: Case) -> None:
    summary = terraform.plan(case.module, list(case.tfvars))
    check_inventory(
        summary, case.inventory, regenerate=f"pytest tests/terraform/test_plans.py -k '{case.id}'"
    )


def planned(items: list[pytest.Item]) -> list[Plan]:
    """The plans these tests ask for (the `terraform` fixture starts them in the background); none
    that would skip for want of the google provider."""
    params = [item.callspec.params for item in items if hasattr(item, "callspec")]
    return [Plan(p["case"].module, p["case"].tfvars) for p in params if not google_missing(p["case"].module)]
