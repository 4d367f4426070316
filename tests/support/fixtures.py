"""Shared pytest fixtures: services started by the tests themselves."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import docker
import pytest

from tests.support.airflow import AirflowCluster, run_celery_airflow
from tests.support.docker_daemon import docker_lock, ensure_dockerd, swarm_manager
from tests.support.images import airtasks_image_spec, build, stack_images
from tests.support.moto_server import MotoServer, run_moto
from tests.support.postgres import Postgres, run_postgres
from tests.support.rabbitmq import RabbitMQ, run_rabbitmq


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


# --- Stack (issue 5): PostgreSQL, RabbitMQ, Airflow with CeleryExecutor, images -----------------


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Postgres]:
    """A private PostgreSQL 15 cluster (database `airflow`) on a free loopback port."""
    with run_postgres(tmp_path_factory.mktemp("postgres")) as server:
        yield server


@pytest.fixture(scope="session")
def rabbitmq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitMQ]:
    """A private RabbitMQ broker with the management API, on free loopback ports."""
    with run_rabbitmq(tmp_path_factory.mktemp("rabbitmq")) as broker:
        yield broker


@pytest.fixture(scope="session")
def airtasks_image(docker_client: docker.DockerClient) -> str:
    """The Air-Tasks image (docker/Dockerfile) on the debootstrap base, built once per content hash."""
    artifacts = Path(__file__).resolve().parents[1] / "artifacts"
    return build(airtasks_image_spec(), log=artifacts / "build-airtasks.log").tag


@pytest.fixture(scope="module")
def airflow_celery(
    tmp_path_factory: pytest.TempPathFactory, postgres: Postgres, rabbitmq: RabbitMQ
) -> Iterator[AirflowCluster]:
    """Airflow 3.3 with CeleryExecutor on PostgreSQL + RabbitMQ, workers for `default` and `manager`."""
    with run_celery_airflow(
        tmp_path_factory.mktemp("airflow"),
        sql_conn=postgres.url("airflow"),
        broker_url=rabbitmq.broker_url,
        queues={"default": 4, "manager": 2},
    ) as cluster:
        yield cluster


# --- The stack's images (issues 5 and 8), built once per session in the background ---------------
# A fresh CI spends minutes on them (debootstrap, pip, apt: mostly downloads), so they start as soon
# as collection (after -k / -m deselection) knows a test that deploys the stack will run.
STACK_IMAGE_USERS = ("tests/integration/test_stack_swarm.py", "tests/e2e/test_cluster.py")
_image_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="airtasks-images")
_stack_images: Future[dict[str, str]] | None = None


def _build_stack_images() -> dict[str, str]:
    ensure_dockerd()  # builds need the daemon, not the Swarm lock
    return stack_images()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    global _stack_images  # noqa: PLW0603 - one build per session
    if _stack_images is None and any(item.nodeid.startswith(STACK_IMAGE_USERS) for item in items):
        _stack_images = _image_pool.submit(_build_stack_images)


@pytest.fixture(scope="session")
def stack_image_env() -> dict[str, str]:
    """The stack's image variables (AIRTASKS_IMAGE, ...), built (or found) by the background job."""
    return (_stack_images or _image_pool.submit(_build_stack_images)).result(timeout=1800)
