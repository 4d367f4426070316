"""Airflow's metadata database as the backups see it: `pg_dump`, `pg_restore`, and two questions
(does it answer; does it hold Airflow's tables yet).

The password goes to the PostgreSQL tools in their environment (PGPASSWORD), never on a command
line that `ps` shows. psycopg2 comes with Airflow's postgres provider, which the image has.
"""

from __future__ import annotations

import contextlib
import enum
import importlib
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from airtasks.airflow_setting import SettingError, airflow_setting
from airtasks.backup.settings import BackupError

# Airflow's own advisory lock for migrations (airflow.utils.db.DBLocks.MIGRATIONS): a restore holds
# it, so `airflow db migrate` (airflow-init) waits rather than creating tables beside a restore.
MIGRATIONS_LOCK = 1
# Each tool call is bounded: a database that stops answering must not hang the keeper for good.
TOOL_TIMEOUT_SECONDS = 1800
# What the keeper's log line counts after a restore: what a user would look for first.
COUNTED_TABLES = ("dag_run", "task_instance", "variable", "connection")


class DbState(enum.Enum):
    UNREACHABLE = "unreachable"
    EMPTY = "empty"
    """Answers, but holds no Airflow schema (no `alembic_version`): a fresh or replaced volume."""
    READY = "ready"


@dataclass(frozen=True)
class Database:
    host: str
    port: int
    name: str
    user: str
    password: str | None = None

    @classmethod
    def from_url(cls, url: str) -> Database:
        """From Airflow's SQLAlchemy URL (postgresql[+driver]://user:password@host:port/name)."""
        parts = urlsplit(url)
        if not parts.scheme.startswith("postgresql") or not parts.hostname or not parts.path.strip("/"):
            raise BackupError(
                "the metadata database URL must be postgresql://USER:PASSWORD@HOST:PORT/NAME "
                f"(Airflow's [database] sql_alchemy_conn); got scheme {parts.scheme!r}"
            )
        return cls(
            host=parts.hostname,
            port=parts.port or 5432,
            name=unquote(parts.path.strip("/")),
            user=unquote(parts.username or "airflow"),
            password=unquote(parts.password) if parts.password is not None else None,
        )

    def __str__(self) -> str:
        return f"{self.user}@{self.host}:{self.port}/{self.name}"

    def tool_env(self) -> dict[str, str]:
        env = {**os.environ, "PGHOST": self.host, "PGPORT": str(self.port), "PGUSER": self.user}
        env["PGDATABASE"] = self.name
        if self.password is not None:
            env["PGPASSWORD"] = self.password
        return env


def _driver() -> Any:
    return importlib.import_module("psycopg2")


@contextlib.contextmanager
def connect(db: Database) -> Iterator[Any]:
    conn = _driver().connect(
        host=db.host,
        port=db.port,
        dbname=db.name,
        user=db.user,
        password=db.password,
        connect_timeout=10,
    )
    conn.autocommit = True
    try:
        yield conn
    finally:
        conn.close()


def has_schema(conn: Any) -> bool:
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('alembic_version') IS NOT NULL")
        return bool(cur.fetchone()[0])


def state(db: Database) -> DbState:
    try:
        with connect(db) as conn:
            return DbState.READY if has_schema(conn) else DbState.EMPTY
    except _driver().OperationalError:
        return DbState.UNREACHABLE


@contextlib.contextmanager
def migrations_locked(db: Database) -> Iterator[Any]:
    """A connection holding Airflow's migration lock for the block."""
    with connect(db) as conn:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", (MIGRATIONS_LOCK,))
        try:
            yield conn
        finally:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(%s)", (MIGRATIONS_LOCK,))


def counts(conn: Any) -> dict[str, int]:
    found: dict[str, int] = {}
    with conn.cursor() as cur:
        for table in COUNTED_TABLES:
            cur.execute(f"SELECT count(*) FROM {table}")  # the names come from COUNTED_TABLES
            found[table] = int(cur.fetchone()[0])
    return found


def _run(cmd: list[str], db: Database, what: str) -> None:
    try:
        proc = subprocess.run(
            cmd, env=db.tool_env(), capture_output=True, text=True, timeout=TOOL_TIMEOUT_SECONDS, check=False
        )
    except FileNotFoundError:
        raise BackupError(f"{cmd[0]} is not installed: {what} needs PostgreSQL's client tools") from None
    except subprocess.TimeoutExpired:
        raise BackupError(f"{what} of {db} took longer than {TOOL_TIMEOUT_SECONDS} s; gave up") from None
    if proc.returncode != 0:
        raise BackupError(f"{what} of {db} failed ({proc.returncode}): {proc.stderr.strip()[-800:]}")


def dump(db: Database, path: Path) -> None:
    """A consistent snapshot (one transaction) in pg_dump's custom format, compressed."""
    _run(["pg_dump", "--format=custom", "--no-owner", "--no-privileges", f"--file={path}"], db, "pg_dump")


def restore(db: Database, path: Path) -> None:
    """All or nothing: a failed restore leaves the database as it was. `--clean` drops what the
    dump holds first: a Celery worker may have created its result tables (celery_taskmeta) in the
    empty database before the restore, and "already exists" would fail it."""
    cmd = ["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction"]
    cmd += ["--clean", "--if-exists"]
    _run([*cmd, f"--dbname={db.name}", str(path)], db, "pg_restore")


def url_from_airflow_env(env: dict[str, str] | None = None) -> str:
    """The URL Airflow itself uses: `AIRFLOW__DATABASE__SQL_ALCHEMY_CONN`, or the output of its
    `_CMD` variant (how the stack passes it, filled from the Swarm secret at read time)."""
    try:
        url = airflow_setting("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", env)
    except SettingError as exc:
        raise BackupError(str(exc)) from None
    if not url:
        raise BackupError(
            "no metadata database given: set AIRFLOW__DATABASE__SQL_ALCHEMY_CONN(_CMD) as for Airflow, "
            "or pass --database-url"
        )
    return url
