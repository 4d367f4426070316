"""The backups' settings, the keeper's decision, and the store's names (no database, no bucket)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import yaml

from airtasks.backup.keeper import Keeper, Step, next_step
from airtasks.backup.postgres import Database, DbState, url_from_airflow_env
from airtasks.backup.settings import BackupError, BackupSettings
from airtasks.backup.store import Backup, backup_name, parse_key
from airtasks.stack.database import ExternalDatabase
from airtasks.stack.render import StackError, render_stack

GOOD = {
    "url": "s3://acme-airtasks-log-123456789012-us-east-1/backups",
    "region": "us-east-1",
    "every_minutes": 60,
}


def test_settings_round_trip() -> None:
    settings = BackupSettings.parse(json.dumps(GOOD))
    assert (settings.bucket, settings.prefix, settings.region, settings.every_minutes) == (
        "acme-airtasks-log-123456789012-us-east-1",
        "backups",
        "us-east-1",
        60,
    )
    assert BackupSettings.parse(settings.to_json()) == settings
    gcs = BackupSettings.parse(json.dumps({"url": "gs://acme-backups/backups", "every_minutes": 30}))
    assert (gcs.scheme, gcs.bucket, gcs.region, gcs.every_minutes) == ("gs", "acme-backups", None, 30)
    assert BackupSettings.parse(gcs.to_json()) == gcs


@pytest.mark.parametrize(
    ("change", "names"),
    [
        ({"url": "gs://acme-bucket/backups"}, "backups.region is for S3 only"),
        ({"url": "s3://acme-bucket"}, "backups.url must be s3://BUCKET/PREFIX or gs://BUCKET/PREFIX"),
        ({"region": "Europe"}, "backups.region"),
        ({"every_minutes": 1}, "backups.every_minutes must be a whole number from 5 to 1440"),
        ({"every_minutes": 60.5}, "backups.every_minutes"),
        ({"retention": 3}, "unknown key(s) retention"),
    ],
)
def test_bad_settings_name_the_problem(change: dict[str, object], names: str) -> None:
    with pytest.raises(BackupError, match=None) as caught:
        BackupSettings.parse(json.dumps({**GOOD, **change}))
    assert names in str(caught.value)


def test_an_empty_database_is_restored_before_any_backup() -> None:
    hour = 3600.0
    assert next_step(DbState.UNREACHABLE, 10_000, None, hour) is Step.WAIT
    # Never a dump of an empty database: it would become the newest backup and hide the real one.
    assert next_step(DbState.EMPTY, 10_000, None, hour) is Step.RESTORE
    assert next_step(DbState.EMPTY, 10_000, 9_999, hour) is Step.RESTORE
    assert next_step(DbState.READY, 10_000, None, hour) is Step.BACKUP
    assert next_step(DbState.READY, 10_000, 10_000 - hour, hour) is Step.BACKUP
    assert next_step(DbState.READY, 10_000, 10_000 - hour + 1, hour) is Step.IDLE


def test_backup_names_sort_in_time_order_and_other_objects_are_ignored() -> None:
    early = dt.datetime(2026, 12, 5, 7, 0, 59, tzinfo=dt.UTC)
    late = dt.datetime(2026, 12, 5, 7, 1, 0, tzinfo=dt.UTC)
    names = [backup_name(late), backup_name(early)]
    assert sorted(names) == [backup_name(early), backup_name(late)]
    found = parse_key(f"backups/{backup_name(early)}", 12)
    assert found is not None
    assert (found.taken_at, found.size) == (early, 12)
    assert parse_key("backups/notes.txt") is None


def test_the_database_url_comes_from_airflows_setting_or_its_command() -> None:
    db = Database.from_url("postgresql+psycopg2://airflow:p%40ss@postgres:5432/airflow")
    assert (db.host, db.port, db.user, db.password, db.name) == (
        "postgres",
        5432,
        "airflow",
        "p@ss",
        "airflow",
    )
    assert "p@ss" not in str(db)
    assert db.tool_env()["PGPASSWORD"] == "p@ss"
    url = url_from_airflow_env({"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD": "echo postgresql://a@h/d"})
    assert url == "postgresql://a@h/d"
    with pytest.raises(BackupError, match="AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):
        url_from_airflow_env({})


def test_the_stack_runs_the_backup_service_only_when_asked_and_only_with_its_own_postgres() -> None:
    settings = BackupSettings.parse(json.dumps(GOOD))
    assert "db-backup" not in yaml.safe_load(render_stack())["services"]
    service = yaml.safe_load(render_stack(backups=settings))["services"]["db-backup"]
    assert service["command"] == ["db-backup"]
    assert service["deploy"]["placement"]["constraints"] == ["node.role == manager"]
    assert BackupSettings.parse(service["environment"]["AIRTASKS_BACKUPS"]) == settings
    # It must start on an empty database: that is when it restores.
    assert service["environment"]["AIRTASKS_WAIT_MIGRATIONS"] == "0"
    external = ExternalDatabase.parse(
        json.dumps(
            {
                "host": "db.example",
                "port": 5432,
                "name": "airflow",
                "user": "airflow",
                "secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:x",
            }
        )
    )
    with pytest.raises(StackError, match="a managed database keeps its own"):
        render_stack(database=external, backups=settings)


class _FailingStore:
    url = "s3://acme-backups/backups"

    def __init__(self, error: Exception) -> None:
        self.error = error

    def list(self) -> list[Backup]:
        raise self.error

    def upload(self, path: Path, taken_at: dt.datetime) -> Backup:
        raise AssertionError("not reached")

    def download(self, backup: Backup, path: Path) -> None:
        raise AssertionError("not reached")

    def where(self, backup: Backup) -> str:
        return backup.key


@pytest.mark.parametrize(
    "error", [BackupError("cannot list backups: AccessDenied"), RuntimeError("driver gone")]
)
def test_the_keeper_logs_a_failed_pass_and_keeps_going(error: Exception) -> None:
    lines: list[str] = []
    keeper = Keeper(Database("db", 5432, "airflow", "airflow"), _FailingStore(error), 3600.0, lines.append)
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 2:
            raise KeyboardInterrupt  # the test's way out of the endless loop

    with pytest.raises(KeyboardInterrupt):
        keeper.run_forever(sleep)
    assert len(lines) == 2
    assert all(line.startswith("error: ") and str(error) in line for line in lines), lines
