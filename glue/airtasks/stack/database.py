"""An external metadata database (managed PostgreSQL: Amazon RDS, Cloud SQL) instead of the stack's own.

    airtasks stack render --database '{"host": ..., "port": 5432, "name": "airflow",
                                       "user": "airflow", "secret_arn": "arn:aws:secretsmanager:..."}'
    airtasks stack render --database '{"host": "10.20.0.3", "port": 5432, "name": "airflow",
                                       "user": "airflow", "secret_name": "projects/P/secrets/S"}'

The cluster modules (`database.managed`) hand the manager these settings: where the database is and
the secret that holds its password, never the password. On AWS that is the Secrets Manager secret
RDS keeps the password in (`manage_master_user_password`, `secret_arn`); on GCP the Secret Manager
secret modules/gcp/cluster writes it to (`secret_name`), in the same JSON {username, password}. The
rendered stack then has no `postgres` service and no volume for it; every Airflow service gets the
endpoint and the secret's name, and the image's entry point runs

    python -m airtasks.stack.database COMMAND [ARG ...]

first: it reads the secret with the node's own identity (the instance role, or the VM's service
account, allowed exactly that secret), exports the URLs of the metadata database (Airflow's sync
and async engines) and of Celery's result backend to COMMAND alone and becomes it (exec), as
airtasks.stack.git_connections does for a git credential. So the password is in no compose file,
env file, user data, `docker inspect` or log; it lives in the memory of the processes that connect.
Read at container start, and again when the database refuses it: after the password changes (RDS
rotates it every 7 days by default; on GCP a raised `database.password_version`) sessions already
open stay, and a new connection that fails authentication re-reads the secret and
retries once with the new password (airtasks.stack.database_password, installed in every Airflow
process by the image's airflow_local_settings), so no service has to restart.

Nothing here prints a value: an error names the secret and the fix.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airtasks.locations import REGION

if TYPE_CHECKING:
    from airtasks.stack.git_credentials import SecretManagerReader

SECRET_ARN_ENV = "AIRTASKS_DATABASE_SECRET_ARN"  # AWS: the Secrets Manager secret's ARN
SECRET_NAME_ENV = "AIRTASKS_DATABASE_SECRET_NAME"  # GCP: the Secret Manager secret, projects/P/secrets/S
URL_ENV = "AIRTASKS_DATABASE_URL"  # the URL without a password: scheme://user@host:port/name?...
DONE_ENV = "AIRTASKS_DATABASE_SET"
# Airflow's settings this fills: the metadata database and Celery's result backend (same database).
CONN_ENV = "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"
RESULT_BACKEND_ENV = "AIRFLOW__CELERY__RESULT_BACKEND"
# Airflow's async engine (the API server's run-wait endpoint) would otherwise be derived from the
# sync URL, whose `sslmode` asyncpg refuses; asyncpg takes the same mode as `ssl`.
ASYNC_CONN_ENV = "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"

HOST_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
SECRET_ARN_RE = re.compile(
    rf"^arn:aws[a-z-]*:secretsmanager:({REGION}):[0-9]{{12}}:secret:[A-Za-z0-9/_+=.@!-]+$"
)
# A Secret Manager secret's full name: the project id (as GCP allows it) and the secret id.
SECRET_NAME_RE = re.compile(r"^projects/([a-z][a-z0-9-]{4,28}[a-z0-9])/secrets/([A-Za-z0-9_-]{1,255})$")
# The cluster modules make the database refuse connections without TLS (RDS's rds.force_ssl, Cloud
# SQL's ssl_mode ENCRYPTED_ONLY); `require` encrypts.
SSLMODE = "require"


class DatabaseError(Exception):
    """External database settings are wrong or the password cannot be read; names what and the fix."""


@dataclass(frozen=True)
class ExternalDatabase:
    """Where the metadata database is and which secret holds its password (never the password):
    `secret_arn` on AWS or `secret_name` on GCP, the other one empty."""

    host: str
    port: int
    name: str
    user: str
    secret_arn: str
    secret_name: str = ""

    @classmethod
    def parse(cls, text: str) -> ExternalDatabase:
        """The settings as JSON: {"host", "port", "name", "user"} and "secret_arn" or "secret_name"."""
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DatabaseError(f"database settings must be a JSON object ({exc})") from None
        if not isinstance(raw, dict):
            raise DatabaseError(
                "database settings must be a JSON object with host, port, name, user, secret_arn"
            )
        gcp = "secret_name" in raw and "secret_arn" not in raw
        expected = {"host", "port", "name", "user", "secret_name" if gcp else "secret_arn"}
        if set(raw) != expected:
            raise DatabaseError(
                f"database settings need exactly the keys {', '.join(sorted(expected))}, "
                f"got {', '.join(sorted(raw))} (secret_arn on AWS, secret_name on GCP, not both)"
            )
        host, port, name, user = (raw[k] for k in ("host", "port", "name", "user"))
        if not isinstance(host, str) or not HOST_RE.fullmatch(host):
            raise DatabaseError(
                f"database host {host!r} must be a DNS name such as db.abc123.us-east-1.rds.amazonaws.com"
            )
        if isinstance(port, str) and port.isdigit():
            port = int(port)
        if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
            raise DatabaseError(f"database port {port!r} must be a number from 1 to 65535, e.g. 5432")
        for what, value in (("name", name), ("user", user)):
            if not isinstance(value, str) or not IDENT_RE.fullmatch(value):
                raise DatabaseError(f"database {what} {value!r} must match {IDENT_RE.pattern}, e.g. airflow")
        if gcp:
            secret = raw["secret_name"]
            if not isinstance(secret, str) or not SECRET_NAME_RE.fullmatch(secret):
                raise DatabaseError(
                    f"database secret_name {secret!r} must be a Secret Manager secret's full name such as "
                    "projects/my-project-123/secrets/airtasks-demo-database"
                )
            return cls(host, port, name, user, "", secret)
        arn = raw["secret_arn"]
        if not isinstance(arn, str) or not SECRET_ARN_RE.fullmatch(arn):
            raise DatabaseError(
                f"database secret_arn {arn!r} must be a Secrets Manager secret's ARN such as "
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-abc-123456"
            )
        return cls(host, port, name, user, arn)

    @property
    def secret(self) -> str:
        """The secret with the password: the ARN on AWS, the full name on GCP."""
        return self.secret_arn or self.secret_name

    @property
    def address(self) -> str:
        """host:port, what the entry point waits for."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The SQLAlchemy URL without a password (the entry point adds it)."""
        return f"postgresql+psycopg2://{self.user}@{self.host}:{self.port}/{self.name}?sslmode={SSLMODE}"

    def env(self) -> dict[str, str]:
        """What every Airflow service gets (the `x-airflow-env` anchor): names and places, no value."""
        if self.secret_name:
            return {URL_ENV: self.url, SECRET_NAME_ENV: self.secret_name}
        return {URL_ENV: self.url, SECRET_ARN_ENV: self.secret_arn}


def secret_region(arn: str) -> str:
    match = SECRET_ARN_RE.fullmatch(arn)
    if match is None:
        raise DatabaseError(f"{SECRET_ARN_ENV} is not a Secrets Manager secret's ARN: render the stack again")
    return match.group(1)


def secret_from_env(environ: Mapping[str, str]) -> str:
    """The secret the stack names, checked: an ARN on AWS, a full name on GCP; "" without an external
    database. A malformed one is refused here, with the fix, before anything connects."""
    arn, name = environ.get(SECRET_ARN_ENV, ""), environ.get(SECRET_NAME_ENV, "")
    if arn and name:
        raise DatabaseError(f"both {SECRET_ARN_ENV} and {SECRET_NAME_ENV} are set: render the stack again")
    if arn:
        secret_region(arn)
    elif name and not SECRET_NAME_RE.fullmatch(name):
        raise DatabaseError(
            f"{SECRET_NAME_ENV} is not a Secret Manager secret's full name (projects/P/secrets/S): "
            "render the stack again"
        )
    return arn or name


def _read_aws(arn: str) -> str:
    # Imported here: the stack's health checks load this module every 30-60 s on every node, and
    # only a managed database's password needs boto3 (read_gcp's imports likewise).
    import boto3  # noqa: PLC0415
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    try:
        client = boto3.client("secretsmanager", region_name=secret_region(arn))
        return str(client.get_secret_value(SecretId=arn)["SecretString"])
    except (BotoCoreError, ClientError, KeyError) as exc:
        reason = exc.response["Error"]["Code"] if isinstance(exc, ClientError) else type(exc).__name__
        raise DatabaseError(
            f"cannot read the database password from {arn} ({reason}): the node's role must be allowed "
            "secretsmanager:GetSecretValue on it (modules/aws/cluster grants it when database.managed)"
        ) from None


def read_gcp(name: str, reader: SecretManagerReader | None = None) -> str:
    """The latest version of a Secret Manager secret, read with the VM's service account (the metadata
    server's token, as for the git credentials); errors name the secret and the fix, never a value."""
    match = SECRET_NAME_RE.fullmatch(name)
    if match is None:
        raise DatabaseError(f"{name!r} is not a Secret Manager secret's full name (projects/P/secrets/S)")
    # Imported here: with the boto3 import in _read_aws, this keeps the stack's health checks (which
    # load this module every 30-60 s on every node) from loading the cloud clients they never use.
    from airtasks.stack.git_credentials import (  # noqa: PLC0415
        GitCredentialError,
        SecretAccessError,
        SecretManagerReader,
    )

    project, secret = match.group(1), match.group(2)
    reader = reader or SecretManagerReader(project)
    try:
        return reader.access(project, secret).decode()
    except SecretAccessError as exc:
        if exc.status == 403:
            fix = (
                "the VM's service account must have roles/secretmanager.secretAccessor on it "
                "(modules/gcp/cluster grants it to the cluster's nodes when database.managed)"
            )
        elif exc.status == 404:
            fix = "the secret or its version is gone: terraform apply writes it with the password again"
        elif exc.status == 0:
            fix = "Secret Manager must be reachable from the node (Private Google Access on its subnet)"
        else:
            fix = "the service restarts and reads it again; if this persists, look at the secret's versions"
        raise DatabaseError(f"cannot read the database password from {name} ({exc}): {fix}") from None
    except (GitCredentialError, UnicodeDecodeError) as exc:
        raise DatabaseError(
            f"cannot read the database password from {name} ({type(exc).__name__}): run on a GCE VM "
            "of the cluster, whose metadata server gives the service account's token"
        ) from None


def _read_secret(secret: str) -> str:
    """The secret's text, from the store its name belongs to."""
    if SECRET_NAME_RE.fullmatch(secret):
        return read_gcp(secret)
    return _read_aws(secret)


def split_url(base: str) -> tuple[str, str, str]:
    """AIRTASKS_DATABASE_URL as (scheme, user, host:port/name?...); refused if it is not the stack's."""
    scheme, sep, rest = base.partition("://")
    user, at, location = rest.partition("@")
    if not sep or not at or not user or ":" in user or not location or not scheme.startswith("postgresql"):
        raise DatabaseError(
            f"{URL_ENV} must be postgresql+psycopg2://USER@HOST:PORT/DB: render the stack again"
        )
    return scheme, user, location


def password_from_secret(ref: str, text: str, user: str) -> str:
    """The password in the secret (JSON {username, password}, as RDS keeps it and modules/gcp/cluster
    writes it) for `user`; errors never show it."""
    keeper = (
        "RDS manages (manage_master_user_password)"
        if not SECRET_NAME_RE.fullmatch(ref)
        else "modules/gcp/cluster writes (database.managed)"
    )
    try:
        secret: Any = json.loads(text)
        password = secret["password"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise DatabaseError(
            f"secret {ref} is not JSON {{username, password}}: give the secret {keeper}"
        ) from None
    if not isinstance(password, str) or not password:
        raise DatabaseError(f"secret {ref} holds no password: give the secret {keeper}")
    if secret.get("username", user) != user:
        raise DatabaseError(f"secret {ref} is for another user than {user}: render the stack again")
    return password


def urls(environ: Mapping[str, str], read_secret: Callable[[str], str] = _read_secret) -> dict[str, str]:
    """Airflow's database and result backend URLs with the password from the secret (to export)."""
    ref = secret_from_env(environ)
    scheme, user, location = split_url(environ.get(URL_ENV, ""))
    password = password_from_secret(ref, read_secret(ref), user)
    credentials = f"{quote(user, safe='')}:{quote(password, safe='')}"
    full = f"{scheme}://{credentials}@{location}"
    async_location = location.replace(f"sslmode={SSLMODE}", f"ssl={SSLMODE}")
    return {
        CONN_ENV: full,
        ASYNC_CONN_ENV: f"postgresql+asyncpg://{credentials}@{async_location}",
        # Celery's database result backend takes SQLAlchemy's URL behind `db+`.
        RESULT_BACKEND_ENV: "db+" + full.replace("+psycopg2", "", 1),
    }


def main(argv: Sequence[str]) -> None:
    if not argv:
        sys.exit("usage: python -m airtasks.stack.database COMMAND [ARG ...]")
    try:
        os.environ.update(urls(os.environ))
    except DatabaseError as exc:
        sys.exit(f"airtasks-entrypoint: external database: {exc}")
    # Airflow prefers the value to a command; drop the stack's own (unused) commands all the same.
    for name in (f"{CONN_ENV}_CMD", f"{RESULT_BACKEND_ENV}_CMD"):
        os.environ.pop(name, None)
    os.environ[DONE_ENV] = "1"
    os.execvp(argv[0], list(argv))


if __name__ == "__main__":
    main(sys.argv[1:])
