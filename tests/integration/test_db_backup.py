"""Backups of the stack's metadata database, for real: `airtasks db` dumps the shared Airflow's
PostgreSQL into a bucket (S3 on moto, or Cloud Storage on an emulator), and restores it into an
empty PostgreSQL, as the `db-backup` service does when a lost manager's database comes back empty
elsewhere."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator

import boto3
import pytest
from gcp_storage_emulator.server import create_server

from airtasks_dev.devstack.moto import MotoServer
from tests.support.ports import free_port
from tests.support.services.airflow import Airflow
from tests.support.services.postgres import PG_BIN, Postgres, run_postgres

pytestmark = pytest.mark.integration


def airtasks(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "airtasks", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def psql(pg: Postgres, sql: str) -> str:
    cmd = [str(PG_BIN / "psql"), "-h", "127.0.0.1", "-p", str(pg.port), "-U", "airflow", "-d", "airflow"]
    out = subprocess.run(
        [*cmd, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.fixture(params=["s3", "gs"])
def bucket(request: pytest.FixtureRequest, moto_server: MotoServer) -> Iterator[tuple[str, dict[str, str]]]:
    """A new bucket and the `AIRTASKS_BACKUPS` for it: S3 on the session's moto, or Cloud Storage on
    an emulator (google-cloud-storage's STORAGE_EMULATOR_HOST) for a GCP cluster."""
    name = f"airtasks-backups-{secrets.token_hex(4)}"
    if request.param == "s3":
        env = moto_server.env()
        s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=env["AWS_ENDPOINT_URL"])
        s3.create_bucket(Bucket=name)
        backups = {"url": f"s3://{name}/backups", "region": "us-east-1", "every_minutes": 60}
        yield f"s3://{name}", {**env, "AIRTASKS_BACKUPS": json.dumps(backups)}
        return
    port = free_port()
    server = create_server("127.0.0.1", port, in_memory=True, default_bucket=name)
    server.start()
    try:
        env = {"STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{port}"}
        backups = {"url": f"gs://{name}/backups", "every_minutes": 60}
        yield f"gs://{name}", {**env, "AIRTASKS_BACKUPS": json.dumps(backups)}
    finally:
        server.stop()


def test_a_backup_comes_back_whole_in_an_empty_database(
    airflow_celery: Airflow, postgres: Postgres, bucket: tuple[str, dict[str, str]]
) -> None:
    af, (name, env) = airflow_celery, bucket
    probe = f"probe-{secrets.token_hex(4)}"
    with af.api() as api:
        api.post("/api/v2/variables", json={"key": f"airtasks_{probe}", "value": probe}).raise_for_status()
        api.post(
            "/api/v2/connections",
            json={"connection_id": f"airtasks_{probe}", "conn_type": "http", "host": "example.org"},
        ).raise_for_status()
    # A DAG on the `default` queue, which has a worker: the scaler scenarios after this test count
    # the tasks queued on their own queues (alpha, beta), so no load may be left there.
    run_id = af.trigger("example_trigger_target", {"n": 1})

    made = airtasks("db", "backup", "--database-url", postgres.sqlalchemy_url, env=env)
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip().startswith(f"{name}/backups/airflow-"), made.stdout
    listed = airtasks("db", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    assert made.stdout.strip() in listed.stdout

    with run_postgres() as replacement:
        # A Celery worker that stores a result in the empty database creates its result table
        # there before the keeper's pass; the restore must not trip over it.
        psql(replacement, "CREATE TABLE celery_taskmeta (id integer PRIMARY KEY, task_id varchar(155))")
        # The keeper's pass on an empty database: the newest backup, restored, and said so.
        kept = airtasks("db", "keep", "--once", "--database-url", replacement.sqlalchemy_url, env=env)
        assert kept.returncode == 0, kept.stderr
        assert f"airtasks-db: restored backup {made.stdout.strip()} taken" in kept.stderr, kept.stderr
        # The rows as Airflow wrote them (values encrypted with the cluster's Fernet key, which is a
        # Swarm secret and so outlives any one manager).
        for sql in (
            f"SELECT val, is_encrypted FROM variable WHERE key = 'airtasks_{probe}'",
            f"SELECT host, conn_type FROM connection WHERE conn_id = 'airtasks_{probe}'",
        ):
            assert psql(replacement, sql) == psql(postgres, sql) != ""
        assert (
            psql(replacement, f"SELECT dag_id FROM dag_run WHERE run_id = '{run_id}'")
            == "example_trigger_target"
        )
        # Airflow's own check: the restored schema is the one this Airflow expects.
        assert psql(replacement, "SELECT version_num FROM alembic_version") == psql(
            postgres, "SELECT version_num FROM alembic_version"
        )

        # A database with Airflow's tables is never restored over, by the keeper or by hand.
        again = airtasks("db", "keep", "--once", "--database-url", replacement.sqlalchemy_url, env=env)
        assert again.returncode == 0, again.stderr
        assert "restored" not in again.stderr, again.stderr
        by_hand = airtasks("db", "restore", "--database-url", replacement.sqlalchemy_url, env=env)
        assert by_hand.returncode == 1
        assert "already holds Airflow's tables: a restore goes only into an empty database" in by_hand.stderr


def test_an_empty_database_without_a_backup_is_left_for_airflow_to_migrate(
    bucket: tuple[str, dict[str, str]],
) -> None:
    _, env = bucket
    with run_postgres() as fresh:
        kept = airtasks("db", "keep", "--once", "--database-url", fresh.sqlalchemy_url, env=env)
        assert kept.returncode == 0, kept.stderr
        assert "holds no backup: nothing to restore" in kept.stderr, kept.stderr
        assert psql(fresh, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == "0"
        listed = airtasks("db", "list", env=env)
        assert listed.returncode == 0, listed.stderr
        assert listed.stdout == ""
