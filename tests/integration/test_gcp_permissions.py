"""Every Compute API call the gcp backend makes needs a permission the scaler's custom role grants,
on a resource its IAM condition admits; and the role grants nothing the backend does not call.

The calls are found by running the backend (real google-cloud-compute client, REST) through all
its operations against the GCE stand-in, which records each request; operations answer RUNNING
first, so the client's wait (regionOperations.get) is among them. Each request is mapped to its
API method and permission by the table below (source: the method's API reference page). A call
with no row fails: add the row, and grant the permission in modules/gcp/swarm-manager/iam.tf.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, NamedTuple

import pytest
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1

from airtasks.backends.gcp import GcpBackend
from tests.support.iam_eval import gcp_condition_holds
from tests.support.services.gce_fake import FakeCompute, fake_compute
from tests.support.terraform import REPO
from tests.support.tfdocs import blocks, load_module

pytestmark = pytest.mark.integration

CLUSTER = "demo"
PROJECT, REGION, GROUP = "demo-project", "europe-west1", f"airtasks-{CLUSTER}-default"
REF = "https://cloud.google.com/compute/docs/reference/rest/v1"


class Row(NamedTuple):
    http: str
    path: str  # regex on the path after /compute/v1/: the resource name, then an optional verb
    api: str
    permission: str
    source: str


MIG = r"projects/[^/]+/regions/[^/]+/instanceGroupManagers/[^/]+"
CALLS = [
    Row("GET", MIG, "regionInstanceGroupManagers.get", "compute.instanceGroupManagers.get",
        f"{REF}/regionInstanceGroupManagers/get"),
    Row("POST", MIG + "/listManagedInstances", "regionInstanceGroupManagers.listManagedInstances",
        "compute.instanceGroupManagers.get", f"{REF}/regionInstanceGroupManagers/listManagedInstances"),
    Row("POST", MIG + "/resize", "regionInstanceGroupManagers.resize", "compute.instanceGroupManagers.update",
        f"{REF}/regionInstanceGroupManagers/resize"),
    Row("POST", MIG + "/deleteInstances", "regionInstanceGroupManagers.deleteInstances",
        "compute.instanceGroupManagers.update", f"{REF}/regionInstanceGroupManagers/deleteInstances"),
    Row("GET", r"projects/[^/]+/regions/[^/]+/operations/[^/]+", "regionOperations.get",
        "compute.regionOperations.get", f"{REF}/regionOperations/get"),
    Row("GET", r"projects/[^/]+/zones/[^/]+/instances/[^/]+", "instances.get", "compute.instances.get",
        f"{REF}/instances/get"),
]  # fmt: skip


def _row(method: str, path: str) -> Row:
    rel = path.removeprefix("/compute/v1/")
    found = [r for r in CALLS if r.http == method and re.fullmatch(r.path, rel)]
    assert found, (
        f"the gcp backend calls {method} {path}, which the table does not know: add a row with its "
        "permission and API reference, and grant that permission in modules/gcp/swarm-manager/iam.tf"
    )
    return found[0]


def _resource_name(path: str) -> str:
    """The IAM resource name a request is checked on: its path without /compute/v1/ and the verb."""
    rel = path.removeprefix("/compute/v1/")
    parts = rel.split("/")
    return "/".join(parts[:6])  # projects/<p>/<regions|zones>/<r>/<collection>/<name>


def _role() -> tuple[list[str], str]:
    """The custom role's permissions and its binding's condition, for cluster CLUSTER."""
    mgr = load_module(REPO / "modules/gcp/swarm-manager")
    (condition,) = blocks(mgr.resource("google_project_iam_member", "scaler").body["condition"])
    heredoc = str(condition["expression"]).strip('"')
    match = re.fullmatch(r"<<-(\w+)\n(.*)\n\s*\1", heredoc, re.DOTALL)
    assert match, f"the condition is no heredoc: {heredoc[:60]!r}"
    prefix = str(mgr.locals["mig_prefix"]).replace("${var.cluster_name}", CLUSTER)
    return list(mgr.locals["scaler_permissions"]), match.group(2).replace("${local.mig_prefix}", prefix)


@pytest.fixture
def compute() -> Iterator[FakeCompute]:
    with fake_compute() as server:
        yield server


def _drive(compute: FakeCompute) -> list[tuple[str, str]]:
    """Every operation of the backend, as the scaler uses it; the requests it made."""
    compute.operations_pending = True
    mig = compute.add_mig(PROJECT, REGION, GROUP, size=2)
    options: dict[str, Any] = {
        "credentials": AnonymousCredentials(),
        "client_options": ClientOptions(api_endpoint=compute.url),
    }
    backend = GcpBackend(PROJECT, REGION, timeout_seconds=10, **options)
    # google-cloud-compute builds the client that polls region operations without the
    # client_options (it always polls compute.googleapis.com): hand it one aimed at the stand-in.
    migs, _ = backend._clients()
    migs._transport._extended_operations_services["region_operations"] = compute_v1.RegionOperationsClient(
        transport="rest", **options
    )
    backend.read(GROUP)
    backend.set_size(GROUP, 3)
    backend.instances(GROUP)
    backend.remove(GROUP, mig.instances[0].name)
    return list(compute.calls)


def test_every_call_is_granted_on_its_resource(compute: FakeCompute) -> None:
    calls = _drive(compute)
    permissions, condition = _role()
    seen = set()
    for method, path in calls:
        row = _row(method, path)
        seen.add(row.api)
        assert row.permission in permissions, (
            f"{row.api} ({method} {path}) needs {row.permission} ({row.source}); the scaler role lacks it"
        )
        name = _resource_name(path)
        assert gcp_condition_holds(condition, name), f"{row.api}: the role's condition denies {name}"
    assert seen == {r.api for r in CALLS}, f"the backend never called {sorted({r.api for r in CALLS} - seen)}"


def test_the_role_grants_only_what_the_backend_calls(compute: FakeCompute) -> None:
    needed = {_row(method, path).permission for method, path in _drive(compute)}
    permissions, _ = _role()
    assert sorted(permissions) == sorted(needed), "drop what no call needs; add what a call needs"
    assert len(permissions) == len(set(permissions))


@pytest.mark.parametrize(
    "name",
    [
        f"projects/{PROJECT}/regions/{REGION}/instanceGroupManagers/airtasks-other-default",
        f"projects/{PROJECT}/zones/{REGION}-b/instances/airtasks-other-default-x1z2",
        f"projects/{PROJECT}/zones/{REGION}-b/instances/web-server-1",
        f"projects/{PROJECT}/regions/{REGION}/instanceGroupManagers/airtasks-demonstration-q",
    ],
)
def test_the_condition_denies_other_clusters_groups_and_vms(name: str) -> None:
    _, condition = _role()
    assert not gcp_condition_holds(condition, name)
