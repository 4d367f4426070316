"""A VM the MIG is still creating: listed with a URL, but `instances.get` answers 404 (GCE stand-in,
real google-cloud-compute client). The scaler reports it as booting, not as a failed read."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials

from airtasks.backends.gcp import GcpBackend
from airtasks.config import parse_config
from airtasks.ops.view import node_status
from airtasks.scaling.scaler import Scaler
from airtasks.wiring import Clients
from tests.support.services.gce_fake import FakeCompute, fake_compute
from tests.unit.fakes import FakeAirflow

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


def test_a_creating_vm_is_booting_then_gets_its_creation_time(
    compute: FakeCompute, backend: GcpBackend
) -> None:
    mig = compute.add_mig(PROJECT, REGION, GROUP, size=2, age_seconds=600)
    running, creating = mig.instances
    creating.exists = False

    before = time.time()
    by_id = {i.id: i for i in backend.instances(GROUP)}
    get = f"/compute/v1/projects/{PROJECT}/zones/{creating.zone}/instances/{creating.name}"
    assert ("GET", get) in compute.calls, "the stand-in answered instances.get with 404"
    assert by_id[creating.name].state == "CREATING"
    assert by_id[creating.name].launched_at >= before, "launched now: never idle long enough to remove"
    assert node_status(by_id[creating.name], 0, False, None, swarm_known=False) == "booting"
    assert by_id[running.name].state == "RUNNING"
    assert abs(time.time() - 600 - by_id[running.name].launched_at) < 30

    creating.exists = True  # created meanwhile: its real time is read (the 404 was not cached)
    later = {i.id: i for i in backend.instances(GROUP)}
    assert later[creating.name].state == "RUNNING"
    assert abs(time.time() - 600 - later[creating.name].launched_at) < 30


def test_the_scaler_pass_is_not_held_by_a_creating_vm(compute: FakeCompute, backend: GcpBackend) -> None:
    mig = compute.add_mig(PROJECT, REGION, GROUP, size=1)
    mig.instances[0].exists = False
    config = parse_config(
        {
            "backend": "gcp",
            "project": PROJECT,
            "region": REGION,
            "sources": {"airflow": {"url": "http://127.0.0.1:1"}},
            "queues": {"default": {"group": GROUP, "max_size": 4, "slots_per_node": 2}},
        }
    )
    airflow = FakeAirflow(queued={"default": 2})
    scaler = Scaler(config, Clients(backend, airflow=airflow))  # type: ignore[arg-type]
    (report,) = scaler.run_pass(dry_run=True).queues
    assert not report.failed, report.reason
    assert "read failed" not in report.reason
    assert report.current == 1
    assert [(n.id, n.state) for n in report.nodes] == [(mig.instances[0].name, "CREATING")]
