"""Fixtures of the local cloud (tests/e2e/localcloud): one bridge, moto and registry per session.

The host dockerd is only used to build the test image and push it; its Swarm is never touched, so
these fixtures do not take the machine-wide docker lock. Leftovers of a crashed earlier session are
removed before the bridge is made; everything this session makes is removed at its end.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.localcloud.images import e2e_base_image
from tests.e2e.localcloud.network import Network, cleanup_leftovers
from tests.e2e.localcloud.node import ensure_tools
from tests.e2e.localcloud.registry import Registry
from tests.e2e.localcloud.runner import NodeRunner
from tests.support.docker_daemon import ensure_dockerd
from tests.support.moto_server import MotoServer, run_moto

_clusters = itertools.count(1)


@pytest.fixture(scope="session")
def host_dockerd() -> None:
    """The host dockerd runs (it builds and pushes the images; it also makes the DOCKER-USER chain)."""
    ensure_dockerd()


@pytest.fixture(scope="session")
def cloud_network(host_dockerd: None) -> Iterator[Network]:
    ensure_tools()
    cleanup_leftovers()
    network = Network.create()
    try:
        yield network
    finally:
        network.destroy()


@pytest.fixture(scope="session")
def cloud_moto(cloud_network: Network, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """moto on the bridge address, where the nodes' boot scripts reach it."""
    log = tmp_path_factory.mktemp("cloud-moto") / "moto.log"
    with run_moto(host=cloud_network.gateway, log=log) as server:
        cloud_network.adopt(server.process.pid)
        yield server


@pytest.fixture(scope="session")
def e2e_image(host_dockerd: None) -> str:
    """The debootstrap test image in the host dockerd (built once, ~40 s; cached by recipe hash)."""
    return e2e_base_image()


@pytest.fixture(scope="session")
def cloud_registry(cloud_network: Network, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with Registry(cloud_network, tmp_path_factory.mktemp("cloud-registry")) as registry:
        yield registry


@pytest.fixture(scope="session")
def e2e_image_ref(cloud_registry: Registry, e2e_image: str) -> str:
    """The test image as the nodes pull it from the run's registry."""
    return cloud_registry.push(e2e_image, "airtasks/e2e-base:test")


@pytest.fixture
def cluster_name() -> str:
    """A fresh cluster name per test: its instances and SSM parameters never meet another test's."""
    return f"e2e{next(_clusters)}"


@pytest.fixture
def node_runner(
    cloud_network: Network,
    cloud_moto: MotoServer,
    cloud_registry: Registry,
    cluster_name: str,
    tmp_path: Path,
) -> Iterator[NodeRunner]:
    """A NodeRunner for this test's cluster; a failing test's report shows its nodes and boot logs."""
    runner = NodeRunner(
        cloud_network,
        cluster_name,
        cloud_moto.url,
        tmp_path / "nodes",
        insecure_registries=[cloud_registry.address],
    )
    with runner:
        yield runner


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report: pytest.TestReport = yield
    runner = getattr(item, "funcargs", {}).get("node_runner")
    if report.failed and isinstance(runner, NodeRunner):
        report.sections.append(("local cloud nodes", runner.describe()))
    return report  # type: ignore[return-value]
