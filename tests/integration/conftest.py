"""Session services for the scaler's integration tests, each started once: RabbitMQ, PostgreSQL,
Airflow 3 (CeleryExecutor) with the scaler DAG, and a scenario of queued and running tasks.

Fixture names carry a `scaler_` prefix so they cannot clash with other suites' launchers.

The stack's images (`stack_image_env`) are built in the background by tests/support/fixtures.py.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.moto_server import MotoServer
from tests.support.services import aws_groups
from tests.support.services.airflow import Airflow, run_airflow
from tests.support.services.postgres import Postgres, run_postgres
from tests.support.services.rabbitmq import RabbitMQ, run_rabbitmq

REPO = Path(__file__).resolve().parents[2]
DAG_GROUP = "airtasks-dagtest-delta"


@pytest.fixture(scope="session")
def scaler_rabbitmq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitMQ]:
    with run_rabbitmq(tmp_path_factory.mktemp("rabbitmq"), wait=False) as broker:
        yield broker  # the Airflow fixture waits for it, after `db migrate`


@pytest.fixture(scope="session")
def scaler_postgres() -> Iterator[Postgres]:
    with run_postgres() as pg:
        yield pg


@pytest.fixture(scope="session")
def scaler_airflow(
    tmp_path_factory: pytest.TempPathFactory,
    scaler_postgres: Postgres,
    scaler_rabbitmq: RabbitMQ,
    moto_server: MotoServer,
) -> Iterator[Airflow]:
    """Airflow with the test DAGs and the real scaler DAG; its `manager` worker runs the scaler
    DAG, configured (env AIRTASKS_CONFIG) to size one moto group, airtasks-dagtest-delta."""
    base = tmp_path_factory.mktemp("airflow")
    dags = base / "dags"
    dags.mkdir()
    for dag_file in (REPO / "tests" / "integration" / "dags").glob("*.py"):
        shutil.copy(dag_file, dags / dag_file.name)
    shutil.copy(REPO / "dags" / "manager" / "scaler.py", dags / "scaler.py")
    with pytest.MonkeyPatch.context() as mp:
        for key, value in moto_server.env().items():
            mp.setenv(key, value)
        aws_groups.make_group("dagtest", "delta", 0)
    with run_airflow(base / "home", scaler_postgres, scaler_rabbitmq, dags) as af:
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
        af.start_worker("airtasks-manager", ["manager"], concurrency=1, extra_env=manager_env)
        yield af


@dataclass(frozen=True)
class Scenario:
    """5 tasks queued on `alpha` (no worker); 2 running on `beta`, on the worker whose hostname is
    `busy` — an instance of the beta group, next to the idle instance `idle`."""

    alpha_group: str
    beta_group: str
    busy: str
    idle: str
    run_id: str


@pytest.fixture(scope="session")
def scaler_scenario(scaler_airflow: Airflow, moto_server: MotoServer) -> Scenario:
    af = scaler_airflow
    with pytest.MonkeyPatch.context() as mp:
        for key, value in moto_server.env().items():
            mp.setenv(key, value)
        alpha = aws_groups.make_group("itest", "alpha", 0)
        beta = aws_groups.make_group("itest", "beta", 2)
        busy, idle = aws_groups.instance_ids(beta)
    af.start_worker(busy, ["beta"], concurrency=2)
    with af.api() as api:
        af.wait_for("test DAG parsed", lambda: api.get("/api/v2/dags/airtasks_load").status_code == 200)
    run_id = af.trigger("airtasks_load", {"seconds": 900})

    def ready() -> bool:
        queued = af.task_instances(state=["queued"], queue=["alpha"])
        running = af.task_instances(state=["running"], queue=["beta"])
        return len(queued) == 5 and len(running) == 2 and {t["hostname"] for t in running} == {busy}

    af.wait_for("5 alpha tasks queued and 2 beta tasks running on the busy node", ready, timeout=120)
    return Scenario(alpha, beta, busy, idle, run_id)
