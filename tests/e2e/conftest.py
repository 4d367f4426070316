"""Fixtures of the local cloud (dev/airtasks_dev/localcloud): one bridge, moto and registry per session.

The host dockerd is only used to build the test image and push it; its Swarm is never touched, so
these fixtures do not take the machine-wide docker lock. Leftovers of a crashed earlier session are
removed before the bridge is made; everything this session makes is removed at its end.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from airtasks_dev.devstack.moto import MotoServer
from airtasks_dev.localcloud.box import Box
from airtasks_dev.localcloud.cloud import LocalCloud, local_cloud
from airtasks_dev.localcloud.images import e2e_base_image
from airtasks_dev.localcloud.network import Network
from airtasks_dev.localcloud.registry import Registry
from airtasks_dev.localcloud.runner import NodeRunner
from tests.e2e import chain
from tests.support.docker_daemon import ensure_dockerd
from tests.support.services.git_server import GitServer, run_git_server

_clusters = itertools.count(1)


@pytest.fixture(scope="session")
def host_dockerd() -> None:
    """The host dockerd runs (it builds and pushes the images; it also makes the DOCKER-USER chain)."""
    ensure_dockerd()


@pytest.fixture(scope="session")
def cloud(host_dockerd: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    """The session's bridge, moto on the bridge address (where boot scripts reach it), registry."""
    with local_cloud(tmp_path_factory.mktemp("cloud")) as the_cloud:
        yield the_cloud


@pytest.fixture(scope="session")
def cloud_network(cloud: LocalCloud) -> Network:
    return cloud.network


@pytest.fixture(scope="session")
def cloud_moto(cloud: LocalCloud) -> MotoServer:
    return cloud.moto


@pytest.fixture(scope="session")
def e2e_image(host_dockerd: None) -> str:
    """The debootstrap test image in the host dockerd (built once, ~40 s; cached by recipe hash)."""
    return e2e_base_image()


@pytest.fixture(scope="session")
def cloud_registry(cloud: LocalCloud) -> Registry:
    return cloud.registry


@pytest.fixture(scope="session")
def e2e_image_ref(cloud_registry: Registry, e2e_image: str) -> str:
    """The test image as the nodes pull it from the run's registry."""
    return cloud_registry.push(e2e_image, "airtasks/e2e-base:test")


@pytest.fixture
def cluster_name() -> str:
    """A fresh cluster name per test: its instances and SSM parameters never meet another test's."""
    return f"e2e{next(_clusters)}"


@pytest.fixture
def node_runner(cloud: LocalCloud, cluster_name: str) -> Iterator[NodeRunner]:
    """A NodeRunner for this test's cluster; a failing test's report shows its nodes and boot logs."""
    with cloud.runner(cluster_name) as runner:
        yield runner


@pytest.fixture(scope="session")
def box_git(cloud: LocalCloud, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitServer]:
    """The box's git server: `git http-backend` over HTTPS with its own CA, on the bridge's own
    address (where the nodes reach moto and the registry), serving the repository of the box's git
    bundle, created with its first commit before the box deploys."""
    with run_git_server(tmp_path_factory.mktemp("box-git"), host=cloud.network.gateway) as server:
        server.create_repo(chain.GIT_REPO)
        server.commit(chain.GIT_REPO, chain.first_commit(), f"add {chain.VERSIONED_DAG}")
        yield server


@pytest.fixture(scope="session")
def box(
    cloud: LocalCloud,
    box_git: GitServer,
    stack_image_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Box]:
    """The cluster in a box the chain, the DAG bundle test and the manager-HA test share (one deploy
    costs minutes): envs/local applied with the stack, three managers and the DAG bundles
    (tests/e2e/chain.py `config()`); its image trusts the git server's CA."""
    config = chain.config(box_git.url(chain.GIT_REPO))
    workdir = tmp_path_factory.mktemp("box")
    with chain.boxed(cloud, stack_image_env, workdir, config, git_ca=box_git.ca_file) as the_box:
        yield the_box


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests on the shared box run last, in file order, so nothing else runs beside it and it is
    torn down right after them. Of those, a test that may lose the manager behind the box's URL
    runs at the very end: the published address follows a live manager only on the next apply, so
    a test after it could no longer log in."""
    items.sort(
        key=lambda item: (
            "box" in getattr(item, "fixturenames", ()),
            item.get_closest_marker("loses_the_entry") is not None,
        )
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report: pytest.TestReport = yield
    runner = getattr(item, "funcargs", {}).get("node_runner")
    if report.failed and isinstance(runner, NodeRunner):
        report.sections.append(("local cloud nodes", runner.describe()))
    return report  # type: ignore[return-value]
