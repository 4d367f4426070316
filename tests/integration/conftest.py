"""The integration tests' session fixtures: the scaler's names for the shared services (RabbitMQ,
PostgreSQL, Airflow 3 with CeleryExecutor and the scaler DAG; started once, in
tests/support/fixtures.py), a scenario of queued and running tasks, and the stack's images.

The stack's images (`stack_image_env`) are built in the background by tests/support/fixtures.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from airtasks_dev.devstack.moto import MotoServer
from tests.support.fixtures import DAG_GROUP
from tests.support.services import aws_groups
from tests.support.services.airflow import Airflow
from tests.support.services.postgres import Postgres
from tests.support.services.rabbitmq import RabbitMQ

__all__ = ["DAG_GROUP", "Scenario"]


# The scaler's tests use the session's shared services (tests/support/fixtures.py) under their
# own names: one PostgreSQL, one RabbitMQ and one Airflow for the whole suite.


@pytest.fixture(scope="session")
def scaler_rabbitmq(rabbitmq: RabbitMQ) -> RabbitMQ:
    rabbitmq.wait_ready()
    return rabbitmq


@pytest.fixture(scope="session")
def scaler_postgres(postgres: Postgres) -> Postgres:
    return postgres


@pytest.fixture(scope="session")
def scaler_airflow(airflow_celery: Airflow) -> Airflow:
    """The shared Airflow: its `manager` worker (host airtasks-manager) runs the real scaler DAG,
    configured (env AIRTASKS_CONFIG) to size one moto group, airtasks-dagtest-delta."""
    return airflow_celery


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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The modules that use the session's one Airflow (`airflow_celery`) run last, in file order:
    it starts with the first of them and the session ends after the last, so its scheduler,
    dag-processor and workers do not loop idle for the rest of the suite (minutes of CPU that
    `make test`'s other parts, on the same two cores, wait for)."""
    users = {item.path for item in items if "airflow_celery" in getattr(item, "fixturenames", ())}
    items.sort(key=lambda item: item.path in users)
