"""Shared pytest fixtures: services started by the tests themselves."""

from __future__ import annotations

from collections.abc import Iterator

import docker
import pytest

from tests.support.docker_daemon import docker_lock, ensure_dockerd, swarm_manager
from tests.support.moto_server import MotoServer, run_moto


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """One moto server for the session; tests that need a clean account call `.reset()`."""
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with run_moto(log=log) as server:
        yield server


@pytest.fixture
def aws_env(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point boto3 in this process at the session's moto server."""
    env = moto_server.env()
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    """The host dockerd, started if needed, held under the machine-wide docker lock."""
    with docker_lock():
        yield ensure_dockerd()


@pytest.fixture(scope="session")
def swarm(docker_client: docker.DockerClient) -> Iterator[docker.DockerClient]:
    """A Swarm on the host dockerd (initialised here if it is not one already)."""
    with swarm_manager(docker_client) as client:
        yield client
