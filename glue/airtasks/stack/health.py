"""The health check of the stack's heartbeat services (the dag-processor and the triggerer).

    python -m airtasks.stack.health DagProcessorJob|TriggererJob

Exit 0 when the newest running job of that type on this container's host sent its heartbeat
within Airflow's threshold, 1 otherwise; one line says why (`docker inspect` shows it). The rule is
the one `airflow jobs check --job-type TYPE --hostname $HOSTNAME` applies (Airflow's
`Job.is_alive`), with the same thresholds, but it costs one query instead of starting Airflow:
about 0.4 s against 2 CPU-seconds, which on a busy manager outran the check's timeout again and
again and held a restarted service `starting` for minutes.

A health check runs beside the service, not under its entry point, so it finds the database as
the service does: Airflow's own URL (or its `_CMD`, the stack's own PostgreSQL), or, with an
external database, the URL the entry point builds from the secret (airtasks.stack.database). It
keeps the password nowhere and never prints it.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from airtasks.backup.postgres import url_from_airflow_env
from airtasks.backup.settings import BackupError
from airtasks.stack import database

# Airflow's settings and defaults for the two thresholds (airflow.jobs.job.health_check_threshold).
THRESHOLD_ENV = {
    "DagProcessorJob": "AIRFLOW__DAG_PROCESSOR__HEALTH_CHECK_THRESHOLD",
    "TriggererJob": "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD",
}
DEFAULT_THRESHOLD = 30.0
CONNECT_TIMEOUT = 10  # seconds; the check's own timeout in the stack is 30 s

# `airflow jobs check` without --limit: the newest running job of the type on the host only.
NEWEST_RUNNING = (
    "SELECT latest_heartbeat FROM job WHERE state = 'running' AND job_type = :job_type "
    "AND hostname = :hostname ORDER BY latest_heartbeat DESC NULLS LAST LIMIT 1"
)


class HealthError(Exception):
    """The check could not decide (no database URL, an unreadable threshold, no answer)."""


@dataclass(frozen=True)
class Verdict:
    healthy: bool
    reason: str


def threshold(job_type: str, environ: Mapping[str, str]) -> float:
    """Airflow's health check threshold for `job_type`, in seconds."""
    name = THRESHOLD_ENV[job_type]
    raw = environ.get(name, "").strip()
    if not raw:
        return DEFAULT_THRESHOLD
    try:
        value = float(raw)
    except ValueError:
        raise HealthError(f"{name}={raw!r} is not a number of seconds; set it as Airflow reads it") from None
    if value <= 0:
        raise HealthError(f"{name}={raw!r} must be more than 0 seconds")
    return value


def judge(
    job_type: str, hostname: str, heartbeat: datetime | None, *, found: bool, limit: float, now: datetime
) -> Verdict:
    """Airflow's Job.is_alive for the newest running job (`found`) and its last heartbeat."""
    where = f"{job_type} on {hostname}"
    if not found:
        return Verdict(False, f"no running {where}")
    if heartbeat is None:
        return Verdict(False, f"{where} has sent no heartbeat yet")
    age = (now - heartbeat).total_seconds()
    if age < limit:
        return Verdict(True, f"{where}: heartbeat {age:.0f}s ago")
    return Verdict(False, f"{where}: last heartbeat {age:.0f}s ago (threshold {limit:g}s)")


def database_url(environ: Mapping[str, str], read_secret: Callable[[str], str] | None = None) -> str:
    """The metadata database's URL as the service has it."""
    if environ.get(database.URL_ENV):
        try:
            built = database.urls(environ) if read_secret is None else database.urls(environ, read_secret)
        except database.DatabaseError as exc:
            raise HealthError(f"external database: {exc}") from None
        return built[database.CONN_ENV]
    try:
        return url_from_airflow_env(dict(environ))
    except BackupError as exc:  # no URL, or its command failed (says which, never the value)
        raise HealthError(str(exc)) from None


def newest_heartbeat(url: str, job_type: str, hostname: str) -> tuple[bool, datetime | None]:
    """One query: whether a running job of the type exists on the host, and its last heartbeat."""
    # Imported here: the stack's image has SQLAlchemy (Airflow's), the check needs nothing else.
    import sqlalchemy as sa  # noqa: PLC0415
    from sqlalchemy.pool import NullPool  # noqa: PLC0415

    try:
        engine = sa.create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": CONNECT_TIMEOUT})
        try:
            with engine.connect() as conn:
                row = conn.execute(
                    sa.text(NEWEST_RUNNING), {"job_type": job_type, "hostname": hostname}
                ).first()
        finally:
            engine.dispose()
    except sa.exc.DBAPIError as exc:
        # The driver's own first line ("could not connect ...", "relation \"job\" does not exist").
        first = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc.orig).__name__
        raise HealthError(f"the metadata database could not be read: {first}") from None
    except (sa.exc.SQLAlchemyError, ValueError) as exc:
        # Only the type: SQLAlchemy's message about a URL it cannot use may quote the URL.
        raise HealthError(f"the metadata database URL cannot be used ({type(exc).__name__})") from None
    if row is None:
        return False, None
    heartbeat = row[0]
    if heartbeat is not None and heartbeat.tzinfo is None:
        heartbeat = heartbeat.replace(tzinfo=UTC)  # Airflow stores UTC
    return True, heartbeat


def check(job_type: str, environ: Mapping[str, str]) -> Verdict:
    hostname = environ.get("HOSTNAME") or socket.gethostname()
    limit = threshold(job_type, environ)
    found, heartbeat = newest_heartbeat(database_url(environ), job_type, hostname)
    return judge(job_type, hostname, heartbeat, found=found, limit=limit, now=datetime.now(UTC))


def main(argv: Sequence[str]) -> int:
    if len(argv) != 1 or argv[0] not in THRESHOLD_ENV:
        print(f"usage: python -m airtasks.stack.health {'|'.join(THRESHOLD_ENV)}", file=sys.stderr)
        return 2
    try:
        verdict = check(argv[0], os.environ)
    except HealthError as exc:
        print(f"unhealthy: {exc}")
        return 1
    print(verdict.reason)
    return 0 if verdict.healthy else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
