"""`airtasks db`: back up and restore Airflow's metadata database when it runs in the stack.

`keep` is the stack's `db-backup` service; `backup`, `list` and `restore` are for an operator on
a manager (`docker exec` into that service's container, where the settings are already set).
"""

from __future__ import annotations

import datetime as dt
import sys

import click

from airtasks.backup.keeper import Keeper, NotEmpty, back_up, restore_into_empty
from airtasks.backup.postgres import Database, url_from_airflow_env
from airtasks.backup.settings import BackupError, BackupSettings
from airtasks.backup.store import BackupStore, parse_key
from airtasks.wiring import backup_store

_backups = click.option(
    "--backups",
    "backups_json",
    envvar="AIRTASKS_BACKUPS",
    required=True,
    metavar="JSON",
    help='Where backups go: {"url": "s3://BUCKET/PREFIX", "region": ..., "every_minutes": 60} '
    "(env AIRTASKS_BACKUPS; the cluster module's `backups` output has the URL).",
)
_database = click.option(
    "--database-url",
    default=None,
    metavar="URL",
    help="postgresql://USER:PASSWORD@HOST:PORT/NAME; default: Airflow's own setting "
    "(AIRFLOW__DATABASE__SQL_ALCHEMY_CONN or its _CMD), as in the stack's services.",
)


def _log(line: str) -> None:
    click.echo(f"airtasks-db: {line}", err=True)
    sys.stderr.flush()


def _settings(backups_json: str) -> BackupSettings:
    try:
        return BackupSettings.parse(backups_json)
    except BackupError as exc:
        raise click.BadParameter(str(exc), param_hint="--backups") from None


def _parts(backups_json: str, database_url: str | None) -> tuple[BackupSettings, BackupStore, Database]:
    settings = _settings(backups_json)
    db = Database.from_url(database_url or url_from_airflow_env())
    return settings, backup_store(settings), db


@click.group("db")
def db_command() -> None:
    """Back up and restore the stack's metadata database (PostgreSQL) to the cluster's bucket."""


@db_command.command("keep")
@_backups
@_database
@click.option("--once", is_flag=True, help="One pass, then exit (the service loops every 30 s).")
def keep(backups_json: str, database_url: str | None, once: bool) -> None:
    """Restore the newest backup into an empty database; back up every `every_minutes`."""
    settings, store, db = _parts(backups_json, database_url)
    keeper = Keeper(db, store, settings.every_minutes * 60.0, _log)
    _log(f"backing up {db} to {store.url} every {settings.every_minutes} min")
    if once:
        keeper.run_pass()
        return
    keeper.run_forever()


@db_command.command("backup")
@_backups
@_database
def backup(backups_json: str, database_url: str | None) -> None:
    """Take a backup now (e.g. before an upgrade or a switch to a managed database)."""
    _, store, db = _parts(backups_json, database_url)
    made = back_up(db, store, dt.datetime.now(dt.UTC))
    click.echo(store.where(made))


@db_command.command("list")
@_backups
def list_backups(backups_json: str) -> None:
    """The backups kept, oldest first: time taken (UTC), size, URL."""
    store = backup_store(_settings(backups_json))
    for found in store.list():
        click.echo(f"{found.taken_at:%Y-%m-%dT%H:%M:%SZ}  {found.size:>12}  {store.where(found)}")


@db_command.command("restore")
@_backups
@_database
@click.option(
    "--backup",
    "name",
    default=None,
    metavar="NAME",
    help="Which backup (its name, e.g. airflow-20261205T070000Z.dump, as `airtasks db list` shows); "
    "default: the newest.",
)
def restore(backups_json: str, database_url: str | None, name: str | None) -> None:
    """Restore a backup into an empty database (never over one that holds Airflow's tables)."""
    _, store, db = _parts(backups_json, database_url)
    chosen = None
    if name is not None:
        wanted = parse_key(name)
        chosen = next((b for b in store.list() if wanted and b.taken_at == wanted.taken_at), None)
        if chosen is None:
            raise click.BadParameter(
                f"no backup {name!r} in {store.url}; `airtasks db list` shows the ones kept",
                param_hint="--backup",
            )
    try:
        restored = restore_into_empty(db, store, chosen)
    except NotEmpty as exc:
        raise click.ClickException(str(exc)) from None
    if restored is None:
        raise click.ClickException(f"{store.url} holds no backup: nothing to restore")
    _log(restored.line(store))
