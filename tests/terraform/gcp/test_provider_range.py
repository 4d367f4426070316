"""The google provider range: a lower bound only, so 7.x installs; and nothing the GCP modules use
is among what 7.0.0 removed (static; the provider is not needed).

The lower bounds: 5.0 where nothing newer is used; 7.2 for modules/gcp/cluster and envs/gcp, whose
managed database (database.tf) sets Cloud SQL's `final_backup_config` (added in 7.2.0) besides the
write-only `password_wo` and `secret_data_wo` (6.23.0), with an ephemeral random_password
(hashicorp/random 3.7.0) and Terraform 1.11 for write-only arguments.

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

# Each root's lowest google provider: the cluster's managed database needs 7.2 (see above).
MINIMUM = {
    "modules/gcp/network": "5.0.0",
    "modules/gcp/swarm-manager": "5.0.0",
    "modules/gcp/worker-group": "5.0.0",
    "modules/gcp/cluster": "7.2.0",
    "envs/gcp": "7.2.0",
}
ROOTS = tuple(MINIMUM)
NEEDS_WRITE_ONLY = ("modules/gcp/cluster", "envs/gcp")
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
    for version in (MINIMUM[rel], "7.42.0", "8.0.0"):
        assert version in spec, f"{rel}: google {constraint!r} refuses {version}"
    assert "4.85.0" not in spec
    if MINIMUM[rel] == "7.2.0":
        # final_backup_config (7.2.0), password_wo and secret_data_wo (6.23.0) are missing before.
        for version in ("6.23.0", "7.1.1"):
            assert version not in spec, f"{rel}: google {constraint!r} lets {version} in"


@pytest.mark.parametrize("rel", NEEDS_WRITE_ONLY)
def test_write_only_password_needs_terraform_1_11_and_random_3_7(rel: str) -> None:
    m = load_module(REPO / rel)
    assert m.required_version() == ">= 1.11", f"{rel}: write-only arguments need Terraform 1.11"
    constraint = m.required_providers()["random"]["version"]
    spec = SpecifierSet(constraint.replace(" ", ""))
    assert "3.7.0" in spec, f"{rel}: random {constraint!r}"
    assert "3.6.3" not in spec, f"{rel}: random {constraint!r}: the ephemeral random_password is 3.7.0's"
    for cap in ("<", "~>", "!="):
        assert cap not in constraint, f"{rel}: random {constraint!r}: a lower bound only, no {cap}"


@pytest.mark.parametrize("rel", ROOTS)
def test_nothing_used_was_removed_in_7(rel: str) -> None:
    m = load_module(REPO / rel)
    for block in (*m.resources, *m.data):
        assert (block.type, None) not in REMOVED_IN_7, f"{rel}: {block.type} is gone in 7.0.0 ({GUIDE})"
        for argument in block.body:
            assert (block.type, argument) not in REMOVED_IN_7, (
                f"{rel}: {block.type}.{block.name}.{argument} is gone in 7.0.0 ({GUIDE})"
            )
