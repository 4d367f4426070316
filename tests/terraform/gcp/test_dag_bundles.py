"""modules/gcp/cluster's DAG bucket (dag_bundles.tf), read with python-hcl2: the hashicorp/google
provider is not installable here, so no plan. A bucket of its own, apart from the log bucket, whose
nodes may create and replace objects: private, versioned, only read by the cluster's nodes; and the
managers' stack gets the bundles."""

from __future__ import annotations

from functools import cache

import pytest

from tests.support.terraform import REPO
from tests.support.tfdocs import TfModule, blocks, load_module

pytestmark = pytest.mark.terraform


@cache
def cluster() -> TfModule:
    return load_module(REPO / "modules/gcp/cluster")


def test_dag_bucket_is_private_and_versioned() -> None:
    bucket = cluster().resource("google_storage_bucket", "dags").body
    assert bucket["count"] == "local.dag_bucket_on ? 1 : 0", "only with a bucket bundle"
    assert cluster().locals["dag_bucket"] == "${var.project_id}-airtasks-${var.cluster_name}-dags"
    assert bucket["uniform_bucket_level_access"] is True
    assert bucket["public_access_prevention"] == "enforced"
    assert blocks(bucket["versioning"]) == [{"enabled": True}]
    assert "force_destroy" not in bucket, "destroy stops at a bucket that still holds DAGs"


def test_nodes_only_read_the_dag_bucket() -> None:
    grants = [
        r.body
        for r in cluster().resources_of("google_storage_bucket_iam_member")
        if "dags" in str(r.body["bucket"])
    ]
    assert grants == [cluster().resource("google_storage_bucket_iam_member", "dags_read").body]
    (grant,) = grants
    assert grant["role"] == "roles/storage.objectViewer", "read only: no create, replace or delete"
    assert grant["bucket"] == "google_storage_bucket.dags[0].name"
    assert grant["for_each"] == "toset(local.dag_readers)"
    assert 'local.dag_bucket_on ? concat(keys(var.queues), ["manager"]) : []' in str(
        cluster().locals["dag_readers"]
    )


def test_the_bundles_go_through_the_shared_module_to_the_managers_stack() -> None:
    """Checked and rendered by modules/dag-bundles (planned in tests/terraform/dag-bundles/), with
    the DAG bucket."""
    call = cluster().module("dag_bundles").body
    assert call["source"] == "../../dag-bundles"
    assert (call["cloud"], call["dag_bundles"], call["bucket"]) == (
        "gcp",
        "var.dag_bundles",
        "local.dag_bucket",
    )
    stack = " ".join(str(cluster().module("manager").body["stack"]).split())
    assert "dag_bundles = module.dag_bundles.stack_setting" in stack
    assert cluster().locals["dag_bucket_bundles"] == "module.dag_bundles.bucket_prefixes"


def test_the_managers_alone_access_exactly_the_named_git_credentials() -> None:
    """Private repositories: secretAccessor on each secret a git bundle names (by id in the
    project, or in full), for the managers' service account; nothing for a bundle without one
    (planned in tests/terraform/gcp-cluster/git-credentials where the google provider is)."""
    grants = cluster().resources_of("google_secret_manager_secret_iam_member")
    # The other grant is the managed database's password, to every node (test_database.py).
    assert sorted(r.name for r in grants) == ["database", "git_credentials"]
    grants = [r for r in grants if r.name == "git_credentials"]
    (grant,) = [r.body for r in grants]
    assert grant["for_each"] == "module.dag_bundles.git_credentials"
    assert grant["role"] == "roles/secretmanager.secretAccessor"
    assert grant["member"] == "serviceAccount:${module.manager.service_account}"
    assert "each.value" in str(grant["secret_id"])
