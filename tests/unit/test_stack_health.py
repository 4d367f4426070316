"""The heartbeat services' health check (airtasks.stack.health): Airflow's liveness rule and
thresholds, and the database it reads, for the stack's own PostgreSQL and for a managed one."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from airtasks.stack import health
from airtasks.stack.database import ExternalDatabase
from airtasks.stack.render import QueueSpec, render_stack

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-0a1b2c3d-4e5f-AbCdEf"
MANAGED = ExternalDatabase.parse(
    json.dumps(
        {"host": "db.example.internal", "port": 5432, "name": "airflow", "user": "airflow", "secret_arn": ARN}
    )
)


def judged(age: float | None, found: bool = True, limit: float = 30.0) -> health.Verdict:
    heartbeat = None if age is None else NOW - timedelta(seconds=age)
    return health.judge("TriggererJob", "c0ffee", heartbeat, found=found, limit=limit, now=NOW)


def test_a_heartbeat_inside_the_threshold_is_healthy_and_at_it_is_not() -> None:
    """Airflow's Job.is_alive: alive while the heartbeat's age is below the threshold."""
    assert judged(29.9) == health.Verdict(True, "TriggererJob on c0ffee: heartbeat 30s ago")
    at = judged(30.0)
    assert not at.healthy
    assert at.reason == "TriggererJob on c0ffee: last heartbeat 30s ago (threshold 30s)"
    assert judged(30.0, limit=45).healthy


def test_no_running_job_or_no_heartbeat_is_unhealthy_and_says_so() -> None:
    assert judged(None, found=False) == health.Verdict(False, "no running TriggererJob on c0ffee")
    assert judged(None) == health.Verdict(False, "TriggererJob on c0ffee has sent no heartbeat yet")


def test_thresholds_are_airflow_s_settings_with_its_default() -> None:
    assert health.threshold("TriggererJob", {}) == 30.0
    assert (
        health.threshold("DagProcessorJob", {"AIRFLOW__DAG_PROCESSOR__HEALTH_CHECK_THRESHOLD": "90"}) == 90.0
    )
    # Each type reads its own setting only.
    assert health.threshold("TriggererJob", {"AIRFLOW__DAG_PROCESSOR__HEALTH_CHECK_THRESHOLD": "90"}) == 30.0
    assert (
        health.threshold("TriggererJob", {"AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "12.5"})
        == 12.5
    )


@pytest.mark.parametrize(("raw", "message"), [("soon", "is not a number of seconds"), ("0", "more than 0")])
def test_a_bad_threshold_is_named(raw: str, message: str) -> None:
    with pytest.raises(
        health.HealthError, match=rf"AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD='{raw}'"
    ):
        health.threshold("TriggererJob", {"AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": raw})
    with pytest.raises(health.HealthError, match=message):
        health.threshold("TriggererJob", {"AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": raw})


def test_the_stack_s_own_database_is_airflow_s_url() -> None:
    url = "postgresql+psycopg2://airflow:pw@postgres:5432/airflow"
    assert health.database_url({"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url}) == url
    cmd = {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD": f"echo {url}"}
    assert health.database_url(cmd) == url
    with pytest.raises(health.HealthError, match="no metadata database given"):
        health.database_url({})


def test_a_managed_database_s_url_is_built_from_the_secret_as_the_entry_point_does() -> None:
    """A health check does not run under the entry point: without this it fell back to Airflow's
    default SQLite and the services never became healthy on a managed database."""
    env: dict[str, Any] = {**MANAGED.env(), "HOSTNAME": "c0ffee"}
    # The stack's own command is ignored when the database is external.
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD"] = "false"
    read: list[str] = []

    def secret(arn: str) -> str:
        read.append(arn)
        return json.dumps({"username": "airflow", "password": "pw:1"})

    url = health.database_url(env, secret)
    assert url.startswith("postgresql+psycopg2://airflow:pw%3A1@db.example.internal:5432/airflow")
    assert "sslmode=require" in url
    assert read == [ARN]
    with pytest.raises(health.HealthError, match=r"external database: .*another user"):
        health.database_url(env, lambda _arn: json.dumps({"username": "root", "password": "x"}))


def test_an_unusable_url_is_named_without_its_password() -> None:
    with pytest.raises(health.HealthError) as refused:
        health.newest_heartbeat(
            "postgresql+nosuchdriver://airflow:s3cret@db:5432/airflow", "TriggererJob", "h"
        )
    assert "cannot be used" in str(refused.value)
    assert "s3cret" not in str(refused.value)


def test_a_failing_setting_command_is_named_without_its_output() -> None:
    """The command's output would be the URL with its password: only its stderr is shown."""
    cmd = "sh -c 'echo postgresql://airflow:s3cret@db/airflow; echo no such secret >&2; exit 3'"
    with pytest.raises(health.HealthError) as refused:
        health.database_url({"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD": cmd})
    assert str(refused.value) == "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD failed: no such secret"
    with pytest.raises(health.HealthError, match="no broker given: set AIRFLOW__CELERY__BROKER_URL or"):
        health.worker_answers({"HOSTNAME": "i-1"})


def test_usage_is_refused_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert health.main(["SchedulerJob"]) == 2
    assert "DagProcessorJob|TriggererJob|CeleryWorker" in capsys.readouterr().err


def test_the_heartbeat_services_and_the_workers_use_the_checks_in_every_rendering() -> None:
    queues = [QueueSpec("default", 4), QueueSpec("gpu", 1)]
    for stack in (render_stack(), render_stack(queues, database=MANAGED)):
        services = yaml.safe_load(stack)["services"]
        workers = [name for name in services if name.startswith("worker-")]
        assert len(workers) >= 2
        for name in workers:
            worker_check = services[name]["healthcheck"]["test"]
            assert worker_check == ["CMD", "python", "-m", "airtasks.stack.health", "CeleryWorker"], name
        for service, job_type in (
            ("airflow-dag-processor", "DagProcessorJob"),
            ("airflow-triggerer", "TriggererJob"),
        ):
            check = services[service]["healthcheck"]
            assert check["test"] == ["CMD", "python", "-m", "airtasks.stack.health", job_type]
            # A check costs well under a second: every 30 s, inside its timeout.
            assert check["interval"] == "30s"
            assert check["timeout"] == "30s"


def test_a_job_check_loads_no_cloud_client_celery_or_config_models() -> None:
    # The checks run every 30-60 s on every node: importing boto3, docker, httpx, Celery's client
    # and pydantic cost them about 0.5 s of CPU each time, where one query is needed.
    code = (
        "import sys, airtasks.stack.health; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'boto3', 'botocore', 'docker', 'httpx', "
        "'kombu', 'celery', 'pydantic'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stdout
