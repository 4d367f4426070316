"""A new connection to the external database after RDS rotated its password: the listener
(airtasks.stack.database_password) re-reads the secret once on a refused login and retries, with
fakes for the driver's connect and for Secrets Manager."""

from __future__ import annotations

import json
import logging
import runpy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine

from airtasks.stack import database_keepalive, database_password
from airtasks.stack.database import SECRET_ARN_ENV, URL_ENV, DatabaseError
from airtasks.stack.database_password import PasswordRefresh, Target, install, is_auth_failure

ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-0a1b2c3d-4e5f-AbCdEf"
HOST = "airtasks-demo.c1x2y3z4.eu-west-1.rds.amazonaws.com"
URL = f"postgresql+psycopg2://airflow@{HOST}:5432/airflow?sslmode=require"
TARGET = Target(HOST, 5432, "airflow", "airflow")
OLD, NEW = "old-pass-value", "new-pass-value"
CPARAMS = {"host": HOST, "port": 5432, "dbname": "airflow", "user": "airflow", "password": OLD}
REPO = Path(__file__).resolve().parents[2]

REFUSED = psycopg2.OperationalError(
    f'connection to server at "{HOST}", port 5432 failed: FATAL:  password authentication failed '
    'for user "airflow"\n'
)
UNREACHABLE = psycopg2.OperationalError(
    f'connection to server at "{HOST}", port 5432 failed: Connection refused\n'
    "\tIs the server running on that host and accepting TCP/IP connections?\n"
)


class FakeSecret:
    """Secrets Manager's GetSecretValue for the RDS secret, counting reads."""

    def __init__(self, password: str) -> None:
        self.password = password
        self.reads: list[str] = []

    def __call__(self, arn: str) -> str:
        self.reads.append(arn)
        return json.dumps({"username": "airflow", "password": self.password})


class FakeServer:
    """The driver's connect: accepts `password`, or fails every time with `error` when set."""

    def __init__(self, password: str, error: Exception | None = None) -> None:
        self.password = password
        self.error = error
        self.tried: list[str] = []

    def __call__(self, params: dict[str, Any]) -> str:
        self.tried.append(params["password"])
        if self.error is not None:
            raise self.error
        if params["password"] != self.password:
            raise REFUSED
        return "connection"


@pytest.fixture(autouse=True)
def _no_listener_left() -> Iterator[None]:
    yield
    database_password.uninstall()
    database_keepalive.uninstall()


def test_the_first_connection_uses_the_url_s_password_without_reading_the_secret() -> None:
    secret, server = FakeSecret(NEW), FakeServer(OLD)
    refresh = PasswordRefresh(TARGET, ARN, secret)
    assert refresh.connect(server, CPARAMS) == "connection"
    assert server.tried == [OLD]
    assert secret.reads == []


def test_a_refused_login_re_reads_the_secret_once_and_retries_with_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret, server = FakeSecret(NEW), FakeServer(NEW)  # rotated: the server and the secret say NEW
    refresh = PasswordRefresh(TARGET, ARN, secret)
    with caplog.at_level(logging.INFO, logger="airtasks.database"):
        assert refresh.connect(server, CPARAMS) == "connection"
    assert server.tried == [OLD, NEW]
    assert secret.reads == [ARN]
    assert caplog.messages == [f"database password re-read from {ARN} after an authentication failure"]
    # The process remembers it: the next connection starts with the new password, no read.
    assert refresh.connect(server, CPARAMS) == "connection"
    assert server.tried == [OLD, NEW, NEW]
    assert secret.reads == [ARN]
    assert OLD not in caplog.text
    assert NEW not in caplog.text


def test_a_second_rotation_is_read_again() -> None:
    secret, server = FakeSecret(NEW), FakeServer(NEW)
    refresh = PasswordRefresh(TARGET, ARN, secret)
    refresh.connect(server, CPARAMS)
    secret.password = server.password = "third-pass-value"
    assert refresh.connect(server, CPARAMS) == "connection"
    assert server.tried == [OLD, NEW, NEW, "third-pass-value"]
    assert secret.reads == [ARN, ARN]


def test_a_failure_that_is_not_the_password_is_raised_as_is_without_reading() -> None:
    secret, server = FakeSecret(NEW), FakeServer(OLD, error=UNREACHABLE)
    with pytest.raises(psycopg2.OperationalError, match="Connection refused"):
        PasswordRefresh(TARGET, ARN, secret).connect(server, CPARAMS)
    assert server.tried == [OLD]
    assert secret.reads == []


def test_a_password_the_database_still_refuses_after_the_re_read_names_the_secret_not_the_value() -> None:
    secret, server = FakeSecret(NEW), FakeServer("someone-else-set-this")
    with pytest.raises(DatabaseError) as info:
        PasswordRefresh(TARGET, ARN, secret).connect(server, CPARAMS)
    assert server.tried == [OLD, NEW]
    assert secret.reads == [ARN]
    message = str(info.value)
    assert ARN in message
    assert "--rotate-master-user-password" in message
    for value in (OLD, NEW, "someone-else-set-this"):
        assert value not in message
    assert info.value.__cause__ is None  # no driver error (or its parameters) chained to it


def test_a_secret_still_holding_the_refused_password_is_not_tried_twice() -> None:
    secret, server = FakeSecret(OLD), FakeServer(NEW)  # the database rotated, the secret not yet
    with pytest.raises(DatabaseError, match="refuses the password in secret") as info:
        PasswordRefresh(TARGET, ARN, secret).connect(server, CPARAMS)
    assert server.tried == [OLD]
    assert OLD not in str(info.value)


def test_a_secret_that_cannot_be_read_says_so_and_names_it() -> None:
    def unreadable(arn: str) -> str:
        raise DatabaseError(f"cannot read the database password from {arn} (AccessDeniedException): ...")

    with pytest.raises(DatabaseError, match="re-reading it failed: cannot read") as info:
        PasswordRefresh(TARGET, ARN, unreadable).connect(FakeServer(NEW), CPARAMS)
    assert ARN in str(info.value)
    # Not JSON: the shared parse's error (airtasks.stack.database), never the text.
    with pytest.raises(DatabaseError, match="is not JSON") as info:
        PasswordRefresh(TARGET, ARN, lambda _arn: "s3cr3t-value").connect(FakeServer(NEW), CPARAMS)
    assert "s3cr3t-value" not in str(info.value)


@pytest.mark.parametrize(
    ("exc", "refused"),
    [
        (REFUSED, True),
        (UNREACHABLE, False),
        (psycopg2.OperationalError("server does not support SSL, but SSL was required"), False),
        (type("AsyncpgError", (Exception,), {"sqlstate": "28P01"})("invalid password"), True),
        (type("AsyncpgError", (Exception,), {"sqlstate": "3D000"})("no such database"), False),
    ],
)
def test_what_counts_as_a_refused_password(exc: Exception, refused: bool) -> None:
    assert is_auth_failure(exc) is refused


@pytest.mark.parametrize(
    ("change", "ours"),
    [
        ({}, True),
        ({"port": None}, True),  # the driver's default port is the URL's 5432
        ({"dbname": None, "database": "airflow"}, True),  # asyncpg's name for it
        ({"host": "other.example.org"}, False),
        ({"port": 5433}, False),
        ({"dbname": "metrics"}, False),
        ({"user": "reporting"}, False),
    ],
)
def test_only_the_external_database_s_connections_are_its(change: dict[str, Any], ours: bool) -> None:
    params = {k: v for k, v in {**CPARAMS, **change}.items() if v is not None}
    assert TARGET.matches(params) is ours


def test_another_database_s_engine_connects_untouched() -> None:
    secret = FakeSecret(NEW)
    assert install({SECRET_ARN_ENV: ARN, URL_ENV: URL}, secret) is not None
    seen: list[dict[str, Any]] = []

    def driver(dialect: Any, conn_rec: Any, cargs: Any, cparams: dict[str, Any]) -> None:
        seen.append(dict(cparams))  # runs after ours: it saw ours decline

    event.listen(Engine, "do_connect", driver)
    try:
        engine = create_engine("postgresql+psycopg2://someone:pw@127.0.0.1:1/other")
        with pytest.raises(Exception, match="Connection refused"), engine.connect():
            pass
    finally:
        event.remove(Engine, "do_connect", driver)
    assert seen
    assert seen[0]["password"] == "pw"
    assert secret.reads == []


def test_the_listener_is_the_url_s_and_installed_once() -> None:
    listener = install({SECRET_ARN_ENV: ARN, URL_ENV: URL}, FakeSecret(NEW))
    assert listener is not None
    assert listener.target == TARGET
    assert listener.secret == ARN
    assert event.contains(Engine, "do_connect", listener)
    assert install({SECRET_ARN_ENV: ARN, URL_ENV: URL}) is listener
    database_password.uninstall()
    assert not event.contains(Engine, "do_connect", listener)


def test_nothing_is_installed_without_an_external_database() -> None:
    assert install({}) is None
    assert install({URL_ENV: URL}) is None
    assert database_password._installed is None


@pytest.mark.parametrize(
    "url",
    [
        "",
        "postgresql+psycopg2://airflow:pw@db.example.org:5432/airflow",  # a password in it
        "mysql://airflow@db.example.org:3306/airflow",
        "postgresql+psycopg2://airflow@db.example.org:5432",  # no database
        "postgresql+psycopg2://airflow@db.example.org:port/airflow",
    ],
)
def test_a_malformed_url_with_the_secret_set_is_refused_clearly(url: str) -> None:
    with pytest.raises(DatabaseError, match=f"{URL_ENV} must be postgresql.*render the stack again"):
        install({SECRET_ARN_ENV: ARN, URL_ENV: url})
    assert database_password._installed is None


def test_a_malformed_arn_is_refused_at_install() -> None:
    with pytest.raises(DatabaseError, match="render the stack again"):
        install({SECRET_ARN_ENV: "rds!db-123", URL_ENV: URL})


def test_the_image_s_local_settings_install_it_and_leave_airflow_no_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """docker/airflow_local_settings.py: Airflow copies its public names into airflow.settings."""
    path = str(REPO / "docker" / "airflow_local_settings.py")
    assert {k for k in runpy.run_path(path) if not k.startswith("__")} == set()
    assert event.contains(Engine, "do_connect", database_keepalive._listener)  # always
    assert database_password._installed is None  # no secret ARN: nothing
    monkeypatch.setenv(SECRET_ARN_ENV, ARN)
    monkeypatch.setenv(URL_ENV, URL)
    runpy.run_path(path)
    assert database_password._installed is not None
    assert database_password._installed.target == TARGET
