"""A worker's result backend outlasts a database that is briefly empty, as after the loss of the
manager that ran PostgreSQL: Swarm starts it anew without tables, and db-backup restores the newest
backup a minute or two later. A worker that takes a task in that window must hold it until the
restore, not drop it.

The Celery app is Airflow's own (the celery provider's configuration), with the shipped stack's
environment, on a real PostgreSQL. The "restore" is the result table coming back.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.support.child import clean_env, start_ready, stderr_tail
from tests.support.services.postgres import Postgres, admin_sql, run_postgres

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
EXTRA = "AIRFLOW__CELERY__EXTRA_CELERY_CONFIG"

# Store a first result (the backend creates its tables, as on the old database), say so, then
# record a task's start when told to: what a worker does when it takes a task.
WORKER = """
import sys, uuid
from airflow.providers.celery.executors.celery_executor_utils import app
backend = app.backend
backend.store_result(str(uuid.uuid4()), None, "SUCCESS")
print("ready", flush=True)
task_id = sys.stdin.readline().strip()
backend.store_result(task_id, None, "STARTED")
print("stored", flush=True)
"""


def shipped_env() -> dict[str, str]:
    compose = yaml.safe_load((REPO / "docker/docker-compose-CeleryExecutor.yml").read_text())
    env: dict[str, str] = compose["x-airflow-env"]
    return env


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    with run_postgres() as pg:
        yield pg


def start_worker(pg: Postgres, tmp_path: Path, extra: str | None) -> subprocess.Popen[str]:
    env = clean_env(
        AIRFLOW_HOME=str(tmp_path / "airflow"),
        AIRFLOW__CORE__EXECUTOR="CeleryExecutor",
        AIRFLOW__CELERY__BROKER_URL="memory://",
        AIRFLOW__CELERY__RESULT_BACKEND="db+" + pg.sqlalchemy_url.replace("+psycopg2", ""),
    )
    if extra is not None:
        env[EXTRA] = extra
    return start_ready(WORKER, env, tmp_path / "worker.err", "the worker stand-in")


def lose_table(pg: Postgres) -> None:
    admin_sql(pg, "ALTER TABLE celery_taskmeta RENAME TO celery_taskmeta_saved", database=pg.database)


def restore_table(pg: Postgres) -> None:
    admin_sql(pg, "ALTER TABLE celery_taskmeta_saved RENAME TO celery_taskmeta", database=pg.database)


def test_the_shipped_stack_holds_a_task_until_the_database_is_restored(
    postgres: Postgres, tmp_path: Path
) -> None:
    proc = start_worker(postgres, tmp_path, shipped_env()[EXTRA])
    try:
        lose_table(postgres)
        assert proc.stdin is not None
        proc.stdin.write("task-during-restore\n")
        proc.stdin.flush()
        # Celery alone gives up within about 2 s (see the next test); this one is still trying.
        time.sleep(8)
        if proc.poll() is not None:
            pytest.fail(f"the worker gave up on an empty database:\n{stderr_tail(tmp_path / 'worker.err')}")
        restore_table(postgres)
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
        if admin_sql(postgres, "SELECT to_regclass('celery_taskmeta_saved')", database=postgres.database):
            restore_table(postgres)
    assert proc.returncode == 0, stderr_tail(tmp_path / "worker.err")
    assert "stored" in out.splitlines()
    query = "SELECT status FROM celery_taskmeta WHERE task_id = 'task-during-restore'"
    status = admin_sql(postgres, query, database=postgres.database)
    assert status == "STARTED"


def test_without_the_retries_celery_drops_the_task_at_once(postgres: Postgres, tmp_path: Path) -> None:
    """What the setting is for: Celery's own three quick tries fail against the empty database."""
    proc = start_worker(postgres, tmp_path, None)
    try:
        lose_table(postgres)
        assert proc.stdin is not None
        proc.stdin.write("task-dropped\n")
        proc.stdin.flush()
        proc.communicate(timeout=30)
    finally:
        proc.kill()
        restore_table(postgres)
    assert proc.returncode != 0
    assert 'relation "celery_taskmeta" does not exist' in (tmp_path / "worker.err").read_text()
