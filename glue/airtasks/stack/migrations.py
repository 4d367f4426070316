"""Wait until the metadata database has the installed Airflow's schema, without loading Airflow.

    python -m airtasks.stack.migrations [--timeout SECONDS]

Every Airflow service of the stack waits at start until `airflow-init` has migrated the database
(the entry point's AIRTASKS_WAIT_MIGRATIONS). `airflow db check-migrations` does that by loading
Airflow and importing every migration script to find their heads: about 2.5 CPU-seconds per
container start, paid by all of a manager's Airflow services at once whenever it (re)starts the
stack, as after a manager is lost or the database is switched. This compares the same two sets, the
heads of the installed Airflow's migration scripts (read from their source, not run) and the
revisions in the database's `alembic_version` table, with one query per try: about 0.5 s.

If Airflow's migration scripts cannot be read (a layout this does not know), it runs Airflow's own
check instead. It finds the database as the service does (the setting or its `_CMD`) and never
prints the URL.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from airtasks.airflow_setting import SettingError, airflow_setting
from airtasks.errors import AirtasksError
from airtasks.stack import database, probe_db

POLL_SECONDS = 2.0
LOG_EVERY_SECONDS = 30.0
DEFAULT_TIMEOUT = 300.0
SCHEMA_ENV = "AIRFLOW__DATABASE__SQL_ALCHEMY_SCHEMA"

MIGRATE = (
    "run `airflow db migrate` (the stack's airflow-init service does; after an upgrade, with the new image)"
)


@dataclass(frozen=True)
class Unread:
    """Why the database's revisions could not be read, and what to do about it."""

    reason: str
    fix: str


Revisions = frozenset[str] | Unread
"""What the database holds: its revisions, or why they could not be read."""


class MigrationsError(AirtasksError):
    """The database did not reach the schema in time, or its URL cannot be had."""


class ScriptsUnreadable(MigrationsError):
    """Airflow's migration scripts are not where, or not what, this reads."""


def versions_dir() -> Path:
    """The installed Airflow's migration scripts, found without importing Airflow."""
    spec = importlib.util.find_spec("airflow")
    if spec is None or not spec.submodule_search_locations:
        raise ScriptsUnreadable("Airflow is not installed here")
    for location in spec.submodule_search_locations:
        found = Path(location) / "migrations" / "versions"
        if found.is_dir():
            return found
    raise ScriptsUnreadable("Airflow's migrations/versions directory is missing")


def _assigned(tree: ast.Module, name: str) -> object:
    """The literal a module assigns to `name` at its top level (None when it assigns none)."""
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            return ast.literal_eval(value)
    return None


def script_heads(versions: Path) -> frozenset[str]:
    """Alembic's heads of the scripts in `versions`: revisions no script names as its down revision."""
    revisions: set[str] = set()
    below: set[str] = set()
    for script in sorted(versions.glob("*.py")):
        try:
            tree = ast.parse(script.read_text(encoding="utf-8"))
            revision, down = _assigned(tree, "revision"), _assigned(tree, "down_revision")
        except (OSError, SyntaxError, ValueError) as exc:
            raise ScriptsUnreadable(f"{script.name}: {type(exc).__name__}") from None
        if not isinstance(revision, str):
            continue  # not a migration script (a helper module)
        revisions.add(revision)
        if isinstance(down, str):
            below.add(down)
        elif isinstance(down, tuple | list):
            below.update(str(d) for d in down)
    heads = frozenset(revisions - below)
    if not heads:
        raise ScriptsUnreadable(f"no migration scripts in {versions}")
    return heads


def database_revisions(url: str) -> Revisions:
    """The revisions in the database's `alembic_version` table, or why there are none to read."""
    # Imported here: SQLAlchemy is Airflow's, and the script-reading half needs none of it.
    import sqlalchemy as sa  # noqa: PLC0415

    try:
        with probe_db.connection(url) as conn:
            if not sa.inspect(conn).has_table("alembic_version"):
                return Unread("it has no alembic_version table yet (not migrated)", MIGRATE)
            rows = conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()
        return frozenset(str(r[0]) for r in rows)
    except sa.exc.DBAPIError as exc:
        first = probe_db.driver_said(exc)
        if isinstance(exc, sa.exc.OperationalError):
            return Unread(
                f"it does not answer: {first}", "check that the database runs and that this node can reach it"
            )
        return Unread(f"reading it failed: {first}", "check that Airflow's database user may read its tables")
    except (sa.exc.ArgumentError, ValueError) as exc:
        # Only the type: SQLAlchemy's message about a URL it cannot use may quote the URL.
        raise MigrationsError(f"the metadata database URL cannot be used ({type(exc).__name__})") from None


def _describe(revisions: Revisions) -> str:
    if isinstance(revisions, Unread):
        return revisions.reason
    return f"it is at {', '.join(sorted(revisions)) or 'no revision'}"


def wait_migrated(
    heads: frozenset[str],
    read: Callable[[], Revisions],
    timeout: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    log: Callable[[str], None] = print,
) -> float:
    """Poll `read` until the database holds exactly `heads`; the seconds it took. Raises
    MigrationsError naming what the database holds and the fix when `timeout` passes first."""
    started = clock()
    logged_at: float | None = None
    want = ", ".join(sorted(heads))
    while True:
        found = read()
        if found == heads:
            return clock() - started
        now = clock()
        if now - started >= timeout:
            raise MigrationsError(
                f"the metadata database did not reach Airflow's schema ({want}) within {timeout:g}s: "
                f"{_describe(found)}; {found.fix if isinstance(found, Unread) else MIGRATE}"
            )
        if logged_at is None or now - logged_at >= LOG_EVERY_SECONDS:
            log(f"waiting for the database's migrations to {want}: {_describe(found)}")
            logged_at = now
        sleep(POLL_SECONDS)


def _airflow_check(timeout: float) -> int:
    cmd = ["airflow", "db", "check-migrations", "--migration-wait-timeout", str(int(timeout))]
    return subprocess.run(cmd, stdout=subprocess.DEVNULL, check=False).returncode


def main(argv: Sequence[str], environ: Mapping[str, str] = os.environ) -> int:
    parser = argparse.ArgumentParser(prog="python -m airtasks.stack.migrations")
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds to wait (default 300)"
    )
    args = parser.parse_args(argv)

    def log(line: str) -> None:
        print(f"airtasks-entrypoint: {line}", file=sys.stderr, flush=True)

    if environ.get(SCHEMA_ENV):
        # Alembic's table then lives where Airflow's migration environment puts it: its check knows.
        log(f"{SCHEMA_ENV} is set; asking Airflow's own check")
        return _airflow_check(args.timeout)
    try:
        heads = script_heads(versions_dir())
    except ScriptsUnreadable as exc:
        log(f"{exc}; asking Airflow's own check instead")
        return _airflow_check(args.timeout)
    try:
        url = airflow_setting(database.CONN_ENV, environ)
        if not url:
            raise MigrationsError(f"no metadata database given: set {database.CONN_ENV} or its _CMD")
        wait_migrated(heads, lambda: database_revisions(url), args.timeout, log=log)
    except (MigrationsError, SettingError) as exc:
        log(str(exc))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
