"""The health checks of the stack's services that have no HTTP endpoint: the dag-processor, the
triggerer and the Celery workers.

    python -m airtasks.stack.health DagProcessorJob|TriggererJob|CeleryWorker

Exit 0 when healthy, 1 otherwise; one line says why (`docker inspect` shows it).

- DagProcessorJob, TriggererJob: the newest running job of that type on this container's host sent
  its heartbeat within Airflow's threshold. The rule is the one `airflow jobs check --job-type TYPE
  --hostname $HOSTNAME` applies (Airflow's `Job.is_alive`), with the same thresholds, but it costs
  one query instead of starting Airflow.
- CeleryWorker: `celery@$HOSTNAME` answers a ping over the broker, as `celery inspect ping` asks,
  without loading Airflow's Celery app.

Either CLI costs about 2 CPU-seconds a check; these about 0.3 s. On a busy manager the CLI outran
the check's timeout again and again and held a restarted service `starting` for minutes, and on
the cluster in a box every node's worker paid it every minute.

A health check runs beside the service, not under its entry point, so it finds the database and
the broker as the service does: Airflow's own setting or its `_CMD` (the stack's secrets), or, with
an external database, the URL the entry point builds from the secret (airtasks.stack.database). It
keeps no password and never prints one.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from airtasks.airflow_setting import SettingError, airflow_setting
from airtasks.errors import ControlError
from airtasks.stack import database, probe_db

# Airflow's settings and defaults for the two thresholds (airflow.jobs.job.health_check_threshold).
THRESHOLD_ENV = {
    "DagProcessorJob": "AIRFLOW__DAG_PROCESSOR__HEALTH_CHECK_THRESHOLD",
    "TriggererJob": "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD",
}
DEFAULT_THRESHOLD = 30.0
WORKER = "CeleryWorker"
BROKER_ENV = "AIRFLOW__CELERY__BROKER_URL"
PING_TIMEOUT = 20.0  # seconds, as the `celery inspect ping --timeout 20` it replaces

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
    return _setting(database.CONN_ENV, environ, "metadata database")


def _setting(name: str, environ: Mapping[str, str], what: str) -> str:
    try:
        value = airflow_setting(name, environ)
    except SettingError as exc:
        raise HealthError(str(exc)) from None
    if not value:
        raise HealthError(f"no {what} given: set {name} or {name}_CMD as for Airflow")
    return value


def newest_heartbeat(url: str, job_type: str, hostname: str) -> tuple[bool, datetime | None]:
    """One query: whether a running job of the type exists on the host, and its last heartbeat."""
    # Imported here: the stack's image has SQLAlchemy (Airflow's), the check needs nothing else.
    import sqlalchemy as sa  # noqa: PLC0415

    try:
        with probe_db.connection(url) as conn:
            row = conn.execute(sa.text(NEWEST_RUNNING), {"job_type": job_type, "hostname": hostname}).first()
    except sa.exc.DBAPIError as exc:
        raise HealthError(f"the metadata database could not be read: {probe_db.driver_said(exc)}") from None
    except (sa.exc.SQLAlchemyError, ValueError) as exc:
        # Only the type: SQLAlchemy's message about a URL it cannot use may quote the URL.
        raise HealthError(f"the metadata database URL cannot be used ({type(exc).__name__})") from None
    if row is None:
        return False, None
    heartbeat = row[0]
    if heartbeat is not None and heartbeat.tzinfo is None:
        heartbeat = heartbeat.replace(tzinfo=UTC)  # Airflow stores UTC
    return True, heartbeat


def _hostname(environ: Mapping[str, str]) -> str:
    """The host the checks ask about: $HOSTNAME (the container's), else the system's name."""
    return environ.get("HOSTNAME") or socket.gethostname()


def check(job_type: str, environ: Mapping[str, str]) -> Verdict:
    hostname = _hostname(environ)
    limit = threshold(job_type, environ)
    found, heartbeat = newest_heartbeat(database_url(environ), job_type, hostname)
    return judge(job_type, hostname, heartbeat, found=found, limit=limit, now=datetime.now(UTC))


def worker_answers(environ: Mapping[str, str]) -> Verdict:
    """Whether this host's Celery worker answers a ping over the broker."""
    # Imported here, as boto3 and the git credentials are in database._read_aws and read_gcp: the
    # job checks run every 30 s on every manager and need neither Celery's client nor the models.
    from airtasks.config import Secret  # noqa: PLC0415
    from airtasks.control.celery import CeleryControl  # noqa: PLC0415

    hostname = _hostname(environ)
    control = CeleryControl(Secret(_setting(BROKER_ENV, environ, "broker"), BROKER_ENV), timeout=PING_TIMEOUT)
    name = control.worker(hostname)
    try:
        answered = control.ping(hostname)
    except ControlError as exc:
        raise HealthError(str(exc)) from None
    finally:
        control.close()
    if answered:
        return Verdict(True, f"{name} answered a ping")
    return Verdict(False, f"{name} did not answer a ping within {PING_TIMEOUT:g}s")


def main(argv: Sequence[str]) -> int:
    if len(argv) != 1 or argv[0] not in (*THRESHOLD_ENV, WORKER):
        print(f"usage: python -m airtasks.stack.health {'|'.join((*THRESHOLD_ENV, WORKER))}", file=sys.stderr)
        return 2
    try:
        verdict = worker_answers(os.environ) if argv[0] == WORKER else check(argv[0], os.environ)
    except HealthError as exc:
        print(f"unhealthy: {exc}")
        return 1
    print(verdict.reason)
    return 0 if verdict.healthy else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
