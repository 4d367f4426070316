"""One short-lived connection to Airflow's metadata database, for the stack's own checks (the
services' health checks and the wait for migrations), which must not load Airflow.

No pool (a check runs once and exits), a bounded connect on PostgreSQL, and errors reduced to the
driver's first line, which names the cause without the URL or its password.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlalchemy as sa

CONNECT_TIMEOUT = 10  # seconds, per connect; the health checks' own timeout in the stack is 30 s


@contextmanager
def connection(url: str) -> Iterator[sa.Connection]:
    """A connection to the database at `url`, closed (and its engine disposed) on leaving."""
    # Imported here: SQLAlchemy is Airflow's, and the callers' other halves need none of it.
    import sqlalchemy as sa  # noqa: PLC0415
    from sqlalchemy.pool import NullPool  # noqa: PLC0415

    args = {"connect_timeout": CONNECT_TIMEOUT} if url.startswith("postgres") else {}
    engine = sa.create_engine(url, poolclass=NullPool, connect_args=args)
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def driver_said(exc: sa.exc.DBAPIError) -> str:
    """The driver's own first line ("connection refused", "relation \"job\" does not exist"), or
    its error's type when it said nothing."""
    said = str(exc.orig).strip() if exc.orig is not None else ""
    return said.splitlines()[0] if said else type(exc.orig or exc).__name__
