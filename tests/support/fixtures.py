"""Shared pytest fixtures: services started by the tests themselves."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import docker
import pytest

from airtasks_dev.devstack.moto import MotoServer, run_moto
from airtasks_dev.images import airtasks_image_spec, build, stack_images
from tests.support.artifacts import ARTIFACTS
from tests.support.docker_daemon import docker_lock, ensure_dockerd, swarm_manager
from tests.support.services import aws_groups
from tests.support.services.airflow import Airflow, run_airflow
from tests.support.services.postgres import Postgres, run_postgres
from tests.support.services.rabbitmq import RabbitMQ, run_rabbitmq


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


# --- PostgreSQL, RabbitMQ and ONE Airflow (CeleryExecutor) for the whole session ----------------

REPO = Path(__file__).resolve().parents[2]
# The scaler DAG of the shared deployment sizes this moto group from queue `delta`.
DAG_GROUP = "airtasks-dagtest-delta"
MANAGER_HOST = "airtasks-manager"


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A private PostgreSQL 15 cluster (database `airflow`) on a free loopback port."""
    with run_postgres() as server:
        yield server


@pytest.fixture(scope="session")
def rabbitmq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitMQ]:
    """A private RabbitMQ broker with the management API, on free loopback ports. Yielded while it
    boots (8-20 s): `airflow_celery` waits for it after `airflow db migrate`; others call `wait_ready()`."""
    with run_rabbitmq(tmp_path_factory.mktemp("rabbitmq"), wait=False) as broker:
        yield broker


@pytest.fixture(scope="session")
def airtasks_image(docker_client: docker.DockerClient) -> str:
    """The Air-Tasks image (docker/Dockerfile) on `airtasks_dev.images.base_image()`, built once per
    content hash."""
    return build(airtasks_image_spec(), log=ARTIFACTS / "build-airtasks.log").tag


def shared_dags(folder: Path) -> Path:
    """The shared deployment's DAG folder: the repo's dags/ (examples, the scaler DAG) and the
    scaler tests' load DAGs (tests/integration/dags)."""
    shutil.copytree(REPO / "dags", folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(
        REPO / "tests" / "integration" / "dags",
        folder / "tests",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    return folder


@pytest.fixture(scope="session")
def airflow_celery(
    tmp_path_factory: pytest.TempPathFactory,
    postgres: Postgres,
    rabbitmq: RabbitMQ,
    moto_server: MotoServer,
) -> Iterator[Airflow]:
    """One Airflow 3.3 deployment (CeleryExecutor, PostgreSQL, RabbitMQ) for the session, shared by
    the example-DAG tests and the scaler's (`scaler_airflow` in tests/integration/conftest.py).

    - DAGs: the repo's examples and scaler DAG, and tests/integration/dags (load on queues without
      workers: `alpha`, `beta` and `delta`).
    - Workers: `default` (4 slots, host airtasks-test-default) and `manager` (2 slots: the scaler
      DAG holds one for its minute, so example tasks on `manager` still run; host airtasks-manager).
      The manager's worker runs the scaler DAG as on a cluster: env AIRTASKS_CONFIG sizes the moto
      group airtasks-dagtest-delta from queue `delta`; credentials from its environment.
    - The api-server loads the Air-Tasks plugin (cluster page), with the moto env and the broker's
      credentials; its config is the Variable airtasks_scaler_config (tests set it).
    - Tests add workers named after instance ids (`start_worker`) for busy nodes.
    """
    base = tmp_path_factory.mktemp("airflow")
    dags = shared_dags(base / "dags")
    with pytest.MonkeyPatch.context() as mp:
        for key, value in moto_server.env().items():
            mp.setenv(key, value)
        aws_groups.make_group("dagtest", "delta", 0)
    # The api-server hosts the Air-Tasks plugin (cluster page): it reads the groups on moto and the
    # broker's queues with these.
    api_server_env = {**moto_server.env(), **rabbitmq.credentials_env()}
    with run_airflow(base / "home", postgres, rabbitmq, dags, api_server_env) as af:
        config = base / "scaler-dag.json"
        config.write_text(
            json.dumps(
                {
                    "backend": "aws",
                    "region": "us-east-1",
                    "interval_seconds": 2,
                    "stabilization_seconds": 0,
                    "idle_seconds": 0,
                    "sources": {"airflow": {"url": af.url}},
                    "celery": None,
                    "memory": {"store": "airflow", "variable": "airtasks_scaler_memory_dagtest"},
                    "queues": {"delta": {"group": DAG_GROUP, "max_size": 5, "slots_per_node": 1}},
                }
            )
        )
        manager_env = {
            **moto_server.env(),
            "AIRTASKS_CONFIG": str(config),
            "AIRTASKS_AIRFLOW_USERNAME": af.username,
            "AIRTASKS_AIRFLOW_PASSWORD": af.password,
        }
        af.start_worker(MANAGER_HOST, ["manager"], concurrency=2, extra_env=manager_env)
        af.start_worker("airtasks-test-default", ["default"], concurrency=4)
        yield af


# --- The stack's images (issues 5 and 8), built once per session in the background ---------------
# A fresh CI spends minutes on them (debootstrap, pip, apt: mostly downloads), so they start as soon
# as collection (after -k / -m deselection) knows a test that deploys the stack will run.
STACK_IMAGE_USERS = ("tests/integration/test_stack_swarm.py", "tests/e2e/test_cluster.py")
_image_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="airtasks-images")
_stack_images: Future[dict[str, str]] | None = None


def build_stack_images() -> dict[str, str]:
    """The stack's image variables (AIRTASKS_IMAGE, ...), each image built unless its tag exists."""
    ensure_dockerd()  # builds need the daemon, not the Swarm lock
    return stack_images(ARTIFACTS)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    global _stack_images  # noqa: PLW0603 - one build per session
    if _stack_images is None and any(item.nodeid.startswith(STACK_IMAGE_USERS) for item in items):
        _stack_images = _image_pool.submit(build_stack_images)


@pytest.fixture(scope="session")
def stack_image_env() -> dict[str, str]:
    """The stack's image variables (AIRTASKS_IMAGE, ...), built (or found) by the background job."""
    return (_stack_images or _image_pool.submit(build_stack_images)).result(timeout=1800)
