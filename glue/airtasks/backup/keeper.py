"""The `db-backup` service: restore into an empty metadata database, then back it up when due.

A manager lost with PostgreSQL's volume comes back as an empty database on another manager. The
keeper notices (no Airflow schema), restores the newest backup under Airflow's migration lock, and
Airflow's services, which wait for a migrated database at start, carry on from the recovery point.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from airtasks.backup import postgres
from airtasks.backup.postgres import Database, DbState
from airtasks.backup.settings import BackupError
from airtasks.backup.store import Backup, BackupStore, newest

PASS_SECONDS = 30.0


class Step(enum.Enum):
    WAIT = "wait"
    """The database does not answer (yet): try again next pass."""
    RESTORE = "restore"
    BACKUP = "backup"
    IDLE = "idle"


def next_step(db_state: DbState, now: float, last_backup_at: float | None, every_seconds: float) -> Step:
    """An empty database is restored before anything is backed up: a dump of it would become the
    newest backup and hide the real one."""
    if db_state is DbState.UNREACHABLE:
        return Step.WAIT
    if db_state is DbState.EMPTY:
        return Step.RESTORE
    if last_backup_at is None or now - last_backup_at >= every_seconds:
        return Step.BACKUP
    return Step.IDLE


class NotEmpty(BackupError):
    """The database holds Airflow's tables: nothing is restored over them."""


@dataclass(frozen=True)
class Restored:
    backup: Backup
    counts: dict[str, int]

    def line(self, store: BackupStore) -> str:
        rows = ", ".join(f"{n} {table}" for table, n in self.counts.items())
        return (
            f"restored backup {store.where(self.backup)} taken {self.backup.taken_at:%Y-%m-%d %H:%M:%S} UTC "
            f"into an empty database: {rows}"
        )


@contextlib.contextmanager
def dump_file() -> Iterator[Path]:
    """A path for one dump, in a private directory removed afterwards (a dump holds every secret)."""
    with tempfile.TemporaryDirectory(prefix="airtasks-db-") as tmp:
        yield Path(tmp) / "airflow.dump"


def back_up(db: Database, store: BackupStore, now: dt.datetime) -> Backup:
    with dump_file() as path:
        postgres.dump(db, path)
        return store.upload(path, now)


def restore_into_empty(db: Database, store: BackupStore, backup: Backup | None = None) -> Restored | None:
    """Restore `backup` (default: the newest) if the database holds no Airflow schema; None when
    there is no backup. Refuses a database that has one: a restore never overwrites data."""
    with postgres.migrations_locked(db) as conn:
        if postgres.has_schema(conn):
            raise NotEmpty(
                f"{db} already holds Airflow's tables: a restore goes only into an empty database. "
                "Stop Airflow's services, drop and create the database, then restore again "
                "(docs/high-availability.md)"
            )
        chosen = backup or newest(store)
        if chosen is None:
            return None
        with dump_file() as path:
            store.download(chosen, path)
            postgres.restore(db, path)
        return Restored(chosen, postgres.counts(conn))


@dataclass
class Keeper:
    db: Database
    store: BackupStore
    every_seconds: float
    log: Callable[[str], None]
    clock: Callable[[], float] = time.time
    last_backup_at: float | None = None
    _known: bool = False
    _said: set[str] = field(default_factory=set)

    def _once(self, key: str, line: str) -> None:
        """Say a standing condition once, not every pass."""
        if key not in self._said:
            self._said.add(key)
            self.log(line)

    def run_pass(self) -> Step:
        if not self._known:
            # The newest backup's time: a restarted keeper does not back up again at once.
            found = newest(self.store)
            self.last_backup_at = found.taken_at.timestamp() if found else None
            self._known = True
        step = next_step(postgres.state(self.db), self.clock(), self.last_backup_at, self.every_seconds)
        if step is Step.WAIT:
            self._once("wait", f"waiting for the metadata database {self.db}")
        elif step is Step.RESTORE:
            self._said.discard("wait")
            try:
                restored = restore_into_empty(self.db, self.store)
            except NotEmpty:
                return Step.IDLE  # airflow-init migrated it first: a fresh cluster
            if restored is None:
                self._once(
                    "nothing",
                    f"the database is empty and {self.store.url} holds no backup: nothing to restore",
                )
            else:
                self.log(restored.line(self.store))
                self.last_backup_at = restored.backup.taken_at.timestamp()
        elif step is Step.BACKUP:
            self._said.discard("wait")
            started = self.clock()
            made = back_up(self.db, self.store, dt.datetime.fromtimestamp(started, dt.UTC))
            self.last_backup_at = started
            self.log(f"backed up to {self.store.where(made)} ({made.size} bytes)")
        return step

    def run_forever(self, sleep: Callable[[float], None] = time.sleep) -> None:
        while True:
            try:
                self.run_pass()
            except BackupError as exc:
                # The next pass tries again; the service never exits over one failed backup.
                self.log(f"error: {exc}")
            except Exception as exc:  # a driver or client error: the same, and named
                self.log(f"error: {type(exc).__name__}: {exc}")
            sleep(PASS_SECONDS)
