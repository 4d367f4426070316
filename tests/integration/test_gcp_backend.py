"""The gcp backend with the real google-cloud-compute client (REST) against a local Compute stand-in."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials

from airtasks.backends.gcp import GcpBackend
from airtasks.errors import BackendError
from tests.support.services.gce_fake import FakeCompute, fake_compute

pytestmark = pytest.mark.integration

PROJECT, REGION, GROUP = "demo-project", "europe-west1", "airtasks-demo-default"


@pytest.fixture
def compute() -> Iterator[FakeCompute]:
    with fake_compute() as server:
        yield server


@pytest.fixture
def backend(compute: FakeCompute) -> GcpBackend:
    return GcpBackend(
        PROJECT,
        REGION,
        credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=compute.url),
        timeout_seconds=10,
    )


def test_size_instances_and_launch_times(compute: FakeCompute, backend: GcpBackend) -> None:
    compute.add_mig(PROJECT, REGION, GROUP, size=2, age_seconds=600)
    assert backend.size(GROUP) == 2
    instances = backend.instances(GROUP)
    assert [i.id for i in instances] == [i.name for i in compute.migs[GROUP].instances]
    assert all(abs(time.time() - 600 - i.launched_at) < 30 for i in instances)
    assert {i.state for i in instances} == {"RUNNING"}


def test_resize_grows_the_target_size(compute: FakeCompute, backend: GcpBackend) -> None:
    compute.add_mig(PROJECT, REGION, GROUP, size=0)
    backend.set_size(GROUP, 3)
    assert compute.migs[GROUP].target_size == 3
    assert (
        "POST",
        f"/compute/v1/projects/{PROJECT}/regions/{REGION}/instanceGroupManagers/{GROUP}/resize",
    ) in (compute.calls)


def test_remove_deletes_exactly_that_instance(compute: FakeCompute, backend: GcpBackend) -> None:
    mig = compute.add_mig(PROJECT, REGION, GROUP, size=3)
    names = [i.name for i in mig.instances]
    backend.remove(GROUP, names[1])
    assert [i.name for i in mig.instances] == [names[0], names[2]]
    assert mig.target_size == 2
    assert backend.size(GROUP) == 2


def test_errors_name_the_group_and_the_fix(compute: FakeCompute, backend: GcpBackend) -> None:
    with pytest.raises(
        BackendError, match="no managed instance group named nope in demo-project/europe-west1"
    ):
        backend.size("nope")
    compute.add_mig(PROJECT, REGION, GROUP, size=1)
    compute.fail = True
    with pytest.raises(BackendError, match=f"gcp: list instances of {GROUP}"):
        backend.instances(GROUP)
    with pytest.raises(BackendError, match="resize to 2"):
        backend.set_size(GROUP, 2)
