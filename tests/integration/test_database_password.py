"""RDS rotates the external database's password while Airflow runs: a real PostgreSQL that wants
a password over TLS (scram-sha-256, as RDS) and the RDS-style secret on the session's moto server.

- Set up as the entry point does (airtasks.stack.database builds the URL from the secret), with
  the listener installed (airtasks.stack.database_password) and an engine pooled like Airflow's.
- Rotation (ALTER ROLE and put_secret_value, as RDS's rotation does): the open pooled session keeps
  working; after the pool is emptied a NEW connection succeeds without a restart, the log says the
  secret was re-read, and an engine built later from the same (old) URL connects too, as does
  Celery's result backend engine (NullPool: a new connection each time).
- The database rotated but the secret still holds the old password: the error names the secret's
  ARN and holds neither password.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import sqlalchemy as sa
from celery.backends.database.session import SessionManager
from sqlalchemy.ext.asyncio import create_async_engine

from airtasks.stack import database_keepalive, database_password
from airtasks.stack.database import (
    ASYNC_CONN_ENV,
    CONN_ENV,
    RESULT_BACKEND_ENV,
    DatabaseError,
    ExternalDatabase,
    urls,
)
from airtasks.stack.database_keepalive import KEEPALIVES
from tests.support.services.postgres import Postgres, admin_sql, run_postgres

pytestmark = pytest.mark.integration

REREAD = "database password re-read from {} after an authentication failure"


@pytest.fixture(scope="module")
def rds_like() -> Iterator[Postgres]:
    with run_postgres(password_auth=True, tls=True) as pg:
        yield pg


@pytest.fixture
def secretsmanager(aws_env: dict[str, str]) -> Any:
    return boto3.client("secretsmanager", region_name="us-east-1")


@pytest.fixture
def listener_removed() -> Iterator[None]:
    yield
    database_password.uninstall()
    assert not database_password._installed


def set_password(pg: Postgres, password: str) -> None:
    admin_sql(pg, f"ALTER ROLE airflow PASSWORD '{password}'")


def entry_point_env(pg: Postgres, arn: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """What the image's entry point leaves in a service's environment before it execs Airflow."""
    database = ExternalDatabase("127.0.0.1", pg.port, "airflow", "airflow", arn)
    for key, value in database.env().items():
        monkeypatch.setenv(key, value)
    exported = urls(os.environ)
    for key, value in exported.items():
        monkeypatch.setenv(key, value)
    return exported


def airflow_like_engine(url: str) -> sa.Engine:
    # Airflow's defaults: a QueuePool with pre-ping (settings.configure_orm).
    return sa.create_engine(url, pool_size=2, pool_pre_ping=True, pool_recycle=1800)


async def async_select_ssl(url: str) -> bool:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            query = sa.text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            return bool((await conn.execute(query)).scalar())
    finally:
        await engine.dispose()


def rds_with_secret(
    pg: Postgres, secretsmanager: Any, password: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, dict[str, str]]:
    """The role's password and RDS's secret holding it; the entry point's environment from them."""
    set_password(pg, password)
    arn = secretsmanager.create_secret(
        Name=f"rds!db-{uuid.uuid4()}", SecretString=json.dumps({"username": "airflow", "password": password})
    )["ARN"]
    return arn, entry_point_env(pg, arn, monkeypatch)


def backend_pid(conn: sa.Connection) -> int:
    assert conn.execute(sa.text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")).scalar()
    return int(conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())


def test_a_new_connection_after_rotation_re_reads_the_secret(
    rds_like: Postgres,
    secretsmanager: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    listener_removed: None,
) -> None:
    before, after = secrets.token_urlsafe(18), secrets.token_urlsafe(18)
    arn, exported = rds_with_secret(rds_like, secretsmanager, before, monkeypatch)
    assert database_password.install() is not None
    engine = airflow_like_engine(exported[CONN_ENV])
    caplog.set_level(logging.INFO, logger="airtasks.database")
    try:
        with engine.connect() as conn:
            first = backend_pid(conn)
        assert REREAD.format(arn) not in caplog.messages  # the URL's password was good

        # RDS rotates: the database's password, then the secret's current value.
        set_password(rds_like, after)
        secretsmanager.put_secret_value(
            SecretId=arn, SecretString=json.dumps({"username": "airflow", "password": after})
        )
        with engine.connect() as conn:
            assert backend_pid(conn) == first  # the open pooled session stays
        assert REREAD.format(arn) not in caplog.messages

        engine.dispose()  # as a pool recycling its connections, or a restarted one
        with engine.connect() as conn:
            assert backend_pid(conn) != first  # a new session, with the re-read password
        assert caplog.messages.count(REREAD.format(arn)) == 1

        # An engine made later from the exported (old) URL: the process remembers the new password.
        later = airflow_like_engine(exported[CONN_ENV])
        with later.connect() as conn:
            backend_pid(conn)
        later.dispose()
        # Celery's database result backend (the workers): its own engine from its own URL.
        backend_url = exported[RESULT_BACKEND_ENV].removeprefix("db+")
        celery_engine = SessionManager().get_engine(backend_url)
        with celery_engine.connect() as conn:
            backend_pid(conn)
        celery_engine.dispose()
        # Airflow's async engine (asyncpg, the API server's run-wait endpoint), over TLS too.
        assert asyncio.run(async_select_ssl(exported[ASYNC_CONN_ENV]))
        assert caplog.messages.count(REREAD.format(arn)) == 1
        assert before not in caplog.text
        assert after not in caplog.text
    finally:
        engine.dispose()


def test_a_secret_still_holding_the_old_password_is_named_in_the_error(
    rds_like: Postgres,
    secretsmanager: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    listener_removed: None,
) -> None:
    before, after = secrets.token_urlsafe(18), secrets.token_urlsafe(18)
    arn, exported = rds_with_secret(rds_like, secretsmanager, before, monkeypatch)
    database_password.install()
    set_password(rds_like, after)  # changed behind the secret's back
    engine = airflow_like_engine(exported[CONN_ENV])
    caplog.set_level(logging.INFO, logger="airtasks.database")
    try:
        with pytest.raises(DatabaseError) as info, engine.connect():
            pass
    finally:
        engine.dispose()
    message = str(info.value)
    assert arn in message
    assert "--rotate-master-user-password" in message
    assert before not in message
    assert after not in message
    # Ours only: with Airflow imported in this process, botocore's INFO lines reach the root too.
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("airtasks.")]
    assert ours == [REREAD.format(arn)]


def test_the_image_s_listeners_together_give_a_rotated_connection_keepalives(
    rds_like: Postgres,
    secretsmanager: Any,
    monkeypatch: pytest.MonkeyPatch,
    listener_removed: None,
) -> None:
    """In the image's order (docker/airflow_local_settings.py): the connection the password re-read
    opens carries the client keepalives too, as libpq reports them."""
    before, after = secrets.token_urlsafe(18), secrets.token_urlsafe(18)
    arn, exported = rds_with_secret(rds_like, secretsmanager, before, monkeypatch)
    database_keepalive.install()
    database_password.install()
    try:
        set_password(rds_like, after)
        secretsmanager.put_secret_value(
            SecretId=arn, SecretString=json.dumps({"username": "airflow", "password": after})
        )
        engine = airflow_like_engine(exported[CONN_ENV])
        with engine.connect() as conn:
            backend_pid(conn)
            dsn = conn.connection.dbapi_connection.get_dsn_parameters()  # type: ignore[union-attr]
        engine.dispose()
        assert {k: dsn.get(k) for k in KEEPALIVES} == {k: str(v) for k, v in KEEPALIVES.items()}
    finally:
        database_keepalive.uninstall()
