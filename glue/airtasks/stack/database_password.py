"""New connections to the external metadata database that survive its password changing.

The entry point (airtasks.stack.database) puts the password it read at container start into
Airflow's database URLs. RDS rotates it (every 7 days by default); on GCP, `terraform apply` sets a
new one when `database.password_version` is raised. Sessions already open stay, but a new one with
the old password is refused. `install()` registers a SQLAlchemy `do_connect`
listener on every engine the process creates afterwards (Airflow's ORM engines and Celery's
database result backend): a connection to the external database that fails authentication
re-reads the secret, remembers the password in the process, and retries once. Other databases'
engines are left alone.

The image installs it in every Airflow process through its airflow_local_settings, which Airflow
imports before it creates its engines. It needs SQLAlchemy, so it is imported only where Airflow
is installed.

Nothing here logs or raises a password: messages name the secret and the fix.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Dialect, Engine, make_url
from sqlalchemy.exc import ArgumentError

from airtasks.stack.database import (
    SECRET_NAME_RE,
    URL_ENV,
    DatabaseError,
    _read_secret,
    password_from_secret,
    secret_from_env,
    split_url,
)

logger = logging.getLogger("airtasks.database")

# SQLSTATE invalid_password: asyncpg and psycopg 3 report it; psycopg2 only has libpq's message
# for a refused login (its pgcode is None), which is the text below on RDS and Cloud SQL (English
# messages).
AUTH_FAILED_SQLSTATE = "28P01"
AUTH_FAILED_TEXT = "password authentication failed"
DEFAULT_PORT = 5432

T = TypeVar("T")


@dataclass(frozen=True)
class Target:
    """The external database, as a driver's connect parameters name it."""

    host: str
    port: int
    name: str
    user: str

    @classmethod
    def from_url(cls, base: str) -> Target:
        """From AIRTASKS_DATABASE_URL (no password in it)."""
        split_url(base)  # the stack's shape, or the error that says to render the stack again
        try:
            url = make_url(base)
            port = url.port or DEFAULT_PORT
        except (ArgumentError, ValueError):
            url = None
        if url is None or not url.host or not url.database or not url.username:
            raise DatabaseError(
                f"{URL_ENV} must be postgresql+psycopg2://USER@HOST:PORT/DB: render the stack again"
            )
        return cls(url.host, port, url.database, url.username)

    def matches(self, cparams: Mapping[str, Any]) -> bool:
        """Whether a connection's parameters are this database's (psycopg2 says dbname, asyncpg database)."""
        name = cparams.get("dbname", cparams.get("database"))
        port = str(cparams.get("port") or DEFAULT_PORT)
        return (cparams.get("host"), port, name, cparams.get("user")) == (
            self.host,
            str(self.port),
            self.name,
            self.user,
        )

    def __str__(self) -> str:
        return f"{self.user}@{self.host}:{self.port}/{self.name}"


def is_auth_failure(exc: BaseException) -> bool:
    """Whether a driver's error is the server refusing the password (not the network, not TLS)."""
    code = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    return code == AUTH_FAILED_SQLSTATE or AUTH_FAILED_TEXT in str(exc)


class PasswordRefresh:
    """The `do_connect` listener for one external database and the secret with its password."""

    def __init__(self, target: Target, secret: str, read_secret: Callable[[str], str] = _read_secret) -> None:
        self.target = target
        self.secret = secret  # an ARN on AWS, projects/P/secrets/S on GCP
        self._read_secret = read_secret
        self._password: str | None = None  # the secret's, once re-read: newer than the URL's
        self._lock = threading.Lock()

    def __call__(
        self, dialect: Dialect, conn_rec: Any, cargs: tuple[Any, ...], cparams: dict[str, Any]
    ) -> Any:
        if not self.target.matches(cparams):
            return None  # another database: SQLAlchemy connects as usual
        return self.connect(lambda params: dialect.connect(*cargs, **params), cparams)

    def connect(self, connect: Callable[[dict[str, Any]], T], cparams: Mapping[str, Any]) -> T:
        """Connect with the newest password known; after a refused login, re-read it and retry once."""
        tried = self._password or cparams.get("password")
        try:
            return connect({**cparams, "password": tried})
        except Exception as exc:
            if not is_auth_failure(exc):
                raise
        fresh = self._reread(tried)
        if fresh != tried:
            try:
                return connect({**cparams, "password": fresh})
            except Exception as exc:
                if not is_auth_failure(exc):
                    raise
        if not SECRET_NAME_RE.fullmatch(self.secret):
            fix = (
                "if a rotation is under way, the next connection reads it again; otherwise the password "
                "was changed outside RDS: have RDS set both again (aws rds modify-db-instance "
                "--db-instance-identifier INSTANCE --rotate-master-user-password --apply-immediately)"
            )
        else:
            # Terraform writes the user's password and the secret's version in one apply.
            fix = (
                "if terraform apply is setting a new one, the next connection reads it again; otherwise "
                "the password was changed outside Terraform: raise database.password_version and run "
                "terraform apply, which sets both again"
            )
        raise DatabaseError(
            f"the database {self.target} refuses the password in secret {self.secret}, read again "
            f"just now: {fix}"
        )

    def _reread(self, tried: object) -> str:
        with self._lock:
            if self._password is not None and self._password != tried:
                return self._password  # another thread re-read it while this one waited
            try:
                text = self._read_secret(self.secret)
                password = password_from_secret(self.secret, text, self.target.user)
            except DatabaseError as exc:
                raise DatabaseError(
                    f"the database {self.target} refused the password and re-reading it failed: {exc}"
                ) from None
            self._password = password
        logger.info("database password re-read from %s after an authentication failure", self.secret)
        return password


_installed: PasswordRefresh | None = None


def install(
    environ: Mapping[str, str] = os.environ, read_secret: Callable[[str], str] = _read_secret
) -> PasswordRefresh | None:
    """Register the listener for the external database, if there is one (its secret is named).

    Class-level, so it applies to every engine created afterwards in this process; a second call
    keeps the first listener.
    """
    global _installed  # noqa: PLW0603 - one listener per process, as SQLAlchemy's registry is
    # A malformed name fails here, clearly, not at the first password change.
    secret = secret_from_env(environ)
    if not secret:
        return None
    if _installed is not None:
        return _installed
    listener = PasswordRefresh(Target.from_url(environ.get(URL_ENV, "")), secret, read_secret)
    event.listen(Engine, "do_connect", listener)
    _installed = listener
    return listener


def uninstall() -> None:
    """Remove the listener `install` registered (tests; a process keeps it for its life)."""
    global _installed  # noqa: PLW0603 - see install
    if _installed is not None:
        event.remove(Engine, "do_connect", _installed)
        _installed = None
