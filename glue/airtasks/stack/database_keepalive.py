"""Client-side TCP keepalives on every PostgreSQL connection an Airflow process opens.

When a manager vanishes, the connections to the PostgreSQL it ran do not end: no host is left to
answer or reset them, so a pooled connection's next query would wait for TCP to give up, about 15
minutes, while the database is back elsewhere within two. The stack's PostgreSQL already drops a
silent client's session within about 40 s (its own keepalives); this is the same for the other
end. With these libpq settings a dead connection fails within about 20 s and the pool opens a new
one.

`install()` registers a SQLAlchemy `do_connect` listener on every engine the process creates
afterwards (Airflow's ORM, Celery's result backend), for the libpq drivers (psycopg2, psycopg);
settings a URL already carries win. The image installs it from its airflow_local_settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Dialect, Engine

# libpq connection parameters: probe an idle connection after 10 s, every 5 s, give up after 2
# missed probes; and give up on data the server has not acknowledged after 20 s (a query sent to a
# vanished host), which keepalives alone do not cover.
KEEPALIVES: Mapping[str, int] = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 2,
    "tcp_user_timeout": 20_000,
}
LIBPQ_DRIVERS = frozenset({"psycopg2", "psycopg"})


def with_keepalives(driver: str, cparams: dict[str, Any]) -> None:
    """Add the keepalive settings to a connection's parameters, in place, for a libpq driver."""
    if driver in LIBPQ_DRIVERS:
        for key, value in KEEPALIVES.items():
            cparams.setdefault(key, value)


def _listener(dialect: Dialect, conn_rec: Any, cargs: tuple[Any, ...], cparams: dict[str, Any]) -> None:
    with_keepalives(str(dialect.driver), cparams)


def install() -> None:
    """Register the listener once per process. Install it before any other `do_connect` listener:
    they run in that order, and the password re-read (airtasks.stack.database_password) connects
    with a copy of the parameters, so a listener after it would change nothing."""
    if not event.contains(Engine, "do_connect", _listener):
        event.listen(Engine, "do_connect", _listener)


def uninstall() -> None:
    """Remove the listener (tests; a process keeps it for its life)."""
    if event.contains(Engine, "do_connect", _listener):
        event.remove(Engine, "do_connect", _listener)


__all__ = ["KEEPALIVES", "install", "uninstall", "with_keepalives"]
