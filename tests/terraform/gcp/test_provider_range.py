"""The google provider range: a lower bound only, so 7.x installs; and nothing the GCP modules use
is among what 7.0.0 removed (static; the provider is not needed).

What the static checks cover: they read the HCL (python-hcl2) and load no provider, so they hold
for any version. Arguments and blocks were reviewed against provider 6.x; the 7.0.0 upgrade guide
(REMOVED_IN_7's source) lists what 7.x removed or made required, and none of it is used here,
which the test below keeps so. Plans (test_plans.py) run wherever the provider is installed, with
whatever version the range resolves to.
"""

from __future__ import annotations

import pytest
from packaging.specifiers import SpecifierSet

from tests.support.terraform import REPO
from tests.support.tfdocs import load_module

ROOTS = ("modules/gcp/network", "modules/gcp/swarm-manager", "modules/gcp/worker-group", "envs/gcp")
GUIDE = "https://registry.terraform.io/providers/hashicorp/google/latest/docs/guides/version_7_upgrade"

# (resource or data source type, argument; None = the whole type) removed or made required in 7.0.0
REMOVED_IN_7 = {
    ("google_compute_subnetwork", "enable_flow_logs"),
    ("google_service_account_key", "project"),
    ("google_bigtable_table_iam_member", "instance"),
    ("google_gke_hub_membership", "description"),
    ("google_tpu_node", None),
    ("google_notebooks_location", None),
    ("google_beyondcorp_application", None),
}


@pytest.mark.parametrize("rel", ROOTS)
def test_google_range_has_a_lower_bound_only(rel: str) -> None:
    constraint = load_module(REPO / rel).required_providers()["google"]["version"]
    for cap in ("<", "~>", "!="):
        assert cap not in constraint, f"{rel}: google {constraint!r}: a lower bound only, no {cap}"
    spec = SpecifierSet(constraint.replace(" ", ""))
    for version in ("5.0.0", "6.50.0", "7.0.0", "7.42.0"):
        assert version in spec, f"{rel}: google {constraint!r} refuses {version}"
    assert "4.85.0" not in spec


@pytest.mark.parametrize("rel", ROOTS)
def test_nothing_used_was_removed_in_7(rel: str) -> None:
    m = load_module(REPO / rel)
    for block in (*m.resources, *m.data):
        assert (block.type, None) not in REMOVED_IN_7, f"{rel}: {block.type} is gone in 7.0.0 ({GUIDE})"
        for argument in block.body:
            assert (block.type, argument) not in REMOVED_IN_7, (
                f"{rel}: {block.type}.{block.name}.{argument} is gone in 7.0.0 ({GUIDE})"
            )
