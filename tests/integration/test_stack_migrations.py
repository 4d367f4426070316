"""The services' wait for airflow-init's migrations on a real PostgreSQL, run as the entry point
runs it (`python -m airtasks.stack.migrations`, the URL from the setting's `_CMD`). The stack's own
tests start every Airflow service through it after a real `airflow db migrate`."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from airtasks.stack import migrations
from tests.support.child import clean_env
from tests.support.services.postgres import Postgres, admin_sql, run_postgres

pytestmark = pytest.mark.integration

HEADS = sorted(migrations.script_heads(migrations.versions_dir()))


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    with run_postgres() as pg:
        yield pg


def wait_for_migrations(pg: Postgres, tmp_path: Path, timeout: int) -> subprocess.CompletedProcess[str]:
    url_file = tmp_path / "url"
    url_file.write_text(pg.sqlalchemy_url)
    env = clean_env(AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD=f"cat {url_file}")
    cmd = [sys.executable, "-m", "airtasks.stack.migrations", "--timeout", str(timeout)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout + 60, check=False)


def stamp(pg: Postgres, *revisions: str) -> None:
    """What `airflow db migrate` leaves: Alembic's table with the revisions reached."""
    values = ", ".join(f"('{r}')" for r in revisions)
    admin_sql(
        pg,
        "CREATE TABLE IF NOT EXISTS alembic_version (version_num varchar(32) PRIMARY KEY); "
        f"ALTER TABLE alembic_version OWNER TO {pg.user}; "
        f"DELETE FROM alembic_version; INSERT INTO alembic_version VALUES {values}",
        database=pg.database,
    )


def test_a_service_waits_until_the_migration_ends(postgres: Postgres, tmp_path: Path) -> None:
    admin_sql(postgres, "DROP TABLE IF EXISTS alembic_version", database=postgres.database)
    migrated = threading.Timer(6, stamp, (postgres, *HEADS))
    started = time.monotonic()
    migrated.start()
    try:
        done = wait_for_migrations(postgres, tmp_path, 120)
    finally:
        migrated.cancel()
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started >= 6
    assert "no alembic_version table yet" in done.stderr
    assert "password" not in done.stderr


def test_a_database_left_at_an_older_schema_stops_the_service_naming_both(
    postgres: Postgres, tmp_path: Path
) -> None:
    stamp(postgres, "0ld0ld0ld0ld")
    done = wait_for_migrations(postgres, tmp_path, 4)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert f"did not reach Airflow's schema ({', '.join(HEADS)}) within 4s: it is at 0ld0ld0ld0ld" in last
    assert "run `airflow db migrate`" in last
    stamp(postgres, *HEADS)
    assert wait_for_migrations(postgres, tmp_path, 4).returncode == 0


def test_a_table_airflow_s_user_may_not_read_is_named_as_such(postgres: Postgres, tmp_path: Path) -> None:
    stamp(postgres, *HEADS)
    admin_sql(postgres, "ALTER TABLE alembic_version OWNER TO postgres", database=postgres.database)
    try:
        done = wait_for_migrations(postgres, tmp_path, 2)
    finally:
        admin_sql(
            postgres, f"ALTER TABLE alembic_version OWNER TO {postgres.user}", database=postgres.database
        )
    assert done.returncode == 1
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .endswith(
            "reading it failed: permission denied for table alembic_version; "
            "check that Airflow's database user may read its tables"
        )
    )
