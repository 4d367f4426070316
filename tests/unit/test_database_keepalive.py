"""Client-side keepalives on every libpq connection (airtasks.stack.database_keepalive): what a
connection to a vanished manager's PostgreSQL needs to fail instead of hanging."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from airtasks.stack import database_keepalive
from airtasks.stack.database_keepalive import KEEPALIVES, with_keepalives


@pytest.fixture(autouse=True)
def _no_listener_left() -> Iterator[None]:
    yield
    database_keepalive.uninstall()


def test_libpq_drivers_get_keepalives_and_a_url_s_own_settings_win() -> None:
    for driver in ("psycopg2", "psycopg"):
        cparams: dict[str, Any] = {"host": "postgres", "keepalives_idle": 30}
        with_keepalives(driver, cparams)
        assert cparams == {"host": "postgres", **KEEPALIVES, "keepalives_idle": 30}
    # asyncpg refuses libpq's parameters: its connections are left as they are.
    cparams = {"host": "postgres"}
    with_keepalives("asyncpg", cparams)
    assert cparams == {"host": "postgres"}
    # A query sent to a vanished host fails within tcp_user_timeout; an idle one within the probes.
    assert KEEPALIVES["tcp_user_timeout"] <= 30_000
    assert (
        KEEPALIVES["keepalives_idle"] + KEEPALIVES["keepalives_interval"] * KEEPALIVES["keepalives_count"]
        <= 30
    )


def test_installed_once_and_the_listeners_after_it_see_the_keepalives() -> None:
    """As the image's local settings install it: first, since the password re-read connects with
    a copy of the parameters and returns the connection."""
    seen: list[dict[str, Any]] = []

    def later(dialect: Any, conn_rec: Any, cargs: Any, cparams: dict[str, Any]) -> None:
        seen.append(dict(cparams))

    database_keepalive.install()
    database_keepalive.install()
    event.listen(Engine, "do_connect", later)
    try:
        engine = create_engine("postgresql+psycopg2://airflow@127.0.0.1:1/airflow", pool_pre_ping=False)
        with pytest.raises(OperationalError):  # nothing listens on port 1
            engine.connect()
        assert len(seen) == 1
        assert {k: seen[0][k] for k in KEEPALIVES} == dict(KEEPALIVES)
    finally:
        event.remove(Engine, "do_connect", later)
