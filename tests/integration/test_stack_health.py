"""The heartbeat services' health check against a real PostgreSQL holding Airflow's own `job` table:
it answers as `airflow jobs check --job-type TYPE --hostname HOST` does for the rows a running,
stalled, ended, restarted or restored service leaves, and as Swarm runs it (exit code, one line)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.child import clean_env, start_ready
from tests.support.ports import free_port
from tests.support.services.postgres import Postgres, admin_sql, run_postgres

pytestmark = pytest.mark.integration

# Made from Airflow's model in a subprocess: importing airflow.jobs here would set up Airflow's
# logging for the whole test process.
MAKE_TABLE = """
import sqlalchemy as sa
from airflow.jobs.job import Job
engine = sa.create_engine(__import__("sys").argv[1])
Job.__table__.create(engine)
"""

# `airflow jobs check --job-type TriggererJob --hostname HOST` for each HOST read from stdin, in one
# process: Airflow's CLI function itself, loaded once (each CLI run costs seconds of CPU).
AIRFLOW_CHECK = """
import argparse, contextlib, io, sys
from airflow.cli.commands.jobs_command import check
print("ready", flush=True)
for line in sys.stdin:
    args = argparse.Namespace(
        job_type="TriggererJob", hostname=line.strip(), local=False, limit=1, allow_multiple=False
    )
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # its "Found one alive job."
            check(args)
        print("alive", flush=True)
    except SystemExit as exc:
        print(f"not alive: {exc}", flush=True)
"""

# (case, rows as (job_type, state, heartbeat age in seconds), the answer a user expects)
CASES = [
    ("live", [("TriggererJob", "running", 1)], True),
    ("stalled", [("TriggererJob", "running", 600)], False),
    ("ended", [("TriggererJob", "success", 1)], False),
    ("another type", [("SchedulerJob", "running", 1)], False),
    # A backup restored after the service restarted brings back the old container's row, stale,
    # beside the new one's fresh row (both under the same hostname in this test).
    ("restored beside restarted", [("TriggererJob", "running", 3600), ("TriggererJob", "running", 1)], True),
    ("none", [], False),
]


def airflow_env(pg: Postgres, home: Path, url: str | None = None) -> dict[str, str]:
    """The test process's environment without its Airflow settings, on `url` (the test database)."""
    return clean_env(
        AIRFLOW_HOME=str(home),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=url or pg.sqlalchemy_url,
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
    )


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Postgres]:
    with run_postgres() as pg:
        home = tmp_path_factory.mktemp("airflow")
        subprocess.run(
            [sys.executable, "-c", MAKE_TABLE, pg.sqlalchemy_url],
            env=airflow_env(pg, home),
            check=True,
            capture_output=True,
            timeout=120,
        )
        yield pg


def host_with(pg: Postgres, case: str, rows: list[tuple[str, str, int]]) -> str:
    """The rows, afresh, under a hostname of the case's own: each check sees the ages as given."""
    hostname = "h-" + case.replace(" ", "-")
    admin_sql(pg, f"DELETE FROM job WHERE hostname = '{hostname}'", database="airflow")
    for job_type, state, age in rows:
        admin_sql(
            pg,
            "INSERT INTO job (state, job_type, start_date, latest_heartbeat, hostname) VALUES ("
            f"'{state}', '{job_type}', now() - interval '2 hours', now() - interval '{age} s', '{hostname}')",
            database="airflow",
        )
    return hostname


def health(env: dict[str, str], hostname: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "airtasks.stack.health", "TriggererJob"],
        env=env | {"HOSTNAME": hostname},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_check_answers_as_airflow_jobs_check_does(postgres: Postgres, tmp_path: Path) -> None:
    # A threshold of a minute: each answer comes seconds after its rows are written (our check's
    # process starts anew; Airflow's check is loaded but answers in turn), and on a busy host a
    # live row must still be live when either reads it.
    env = airflow_env(postgres, tmp_path) | {"AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "60"}
    answers = {}
    airflow = start_ready(AIRFLOW_CHECK, env, tmp_path / "jobs-check.err", "Airflow's jobs check", tmp_path)
    assert airflow.stdin is not None
    assert airflow.stdout is not None
    try:
        for case, rows, expected in CASES:
            ours = health(env, host_with(postgres, case, rows))
            airflow.stdin.write(host_with(postgres, case, rows) + "\n")
            airflow.stdin.flush()
            airflows = airflow.stdout.readline().strip()
            assert (airflows == "alive") == expected, (case, airflows)
            assert (ours.returncode == 0) == expected, (case, ours.stdout, ours.stderr)
            answers[case] = ours.stdout.strip()
    finally:
        airflow.kill()
        airflow.wait(timeout=30)
    assert re.fullmatch(r"TriggererJob on h-live: heartbeat \d+s ago", answers["live"]), answers
    assert re.fullmatch(
        r"TriggererJob on h-stalled: last heartbeat 6\d\ds ago \(threshold 60s\)", answers["stalled"]
    )
    assert answers["ended"] == "no running TriggererJob on h-ended"
    assert answers["another type"] == "no running TriggererJob on h-another-type"
    # The restarted service's fresh row decides, not the restored stale one.
    assert re.fullmatch(
        r"TriggererJob on h-restored-beside-restarted: heartbeat \d+s ago",
        answers["restored beside restarted"],
    )


def test_the_threshold_is_airflow_s_setting(postgres: Postgres, tmp_path: Path) -> None:
    hostname = host_with(postgres, "slow heartbeat", [("TriggererJob", "running", 120)])
    env = airflow_env(postgres, tmp_path)
    assert health(env, hostname).returncode == 1  # Airflow's default: 30 s
    env["AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD"] = "300"
    assert health(env, hostname).returncode == 0


def test_a_database_that_cannot_be_read_is_unhealthy_and_named_without_a_password(
    postgres: Postgres, tmp_path: Path
) -> None:
    url = f"postgresql+psycopg2://airflow:s3cret-pw@127.0.0.1:{free_port()}/airflow"
    done = health(airflow_env(postgres, tmp_path, url), "h-live")
    assert done.returncode == 1
    assert done.stdout.startswith("unhealthy: the metadata database could not be read: "), done.stdout
    assert "s3cret-pw" not in done.stdout + done.stderr
