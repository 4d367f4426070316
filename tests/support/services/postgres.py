"""A private PostgreSQL 15 cluster (Debian package) on a free loopback port, for Airflow's metadata DB.

initdb refuses to run as root, so the cluster belongs to the `postgres` system user; data, socket
and log live in a temp dir of its own under /tmp (pytest's tmp dirs are private to root), removed
at the end. The harness's own (admin) connections go over the Unix socket, which always trusts,
so a cluster whose TCP clients need a password (`password_auth`) is still set up without one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.support.ports import free_port

PG_BIN = Path("/usr/lib/postgresql/15/bin")


@dataclass(frozen=True)
class Postgres:
    port: int
    data: Path
    user: str = "airflow"
    database: str = "airflow"
    socket: Path | None = None  # the Unix socket's directory: admin connections, always trusted

    @property
    def sqlalchemy_url(self) -> str:
        return f"postgresql+psycopg2://{self.user}@127.0.0.1:{self.port}/{self.database}"


def admin_sql(pg: Postgres, sql: str, database: str = "postgres") -> str:
    """Run SQL as the superuser over the Unix socket (trusted even with `password_auth`)."""
    host = str(pg.socket) if pg.socket else "127.0.0.1"
    cmd = [str(PG_BIN / "psql"), "-h", host, "-p", str(pg.port), "-U", "postgres", "-d", database]
    return _as_postgres([*cmd, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql]).stdout.strip()


def _as_postgres(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    proc = subprocess.run([*prefix, *cmd], text=True, capture_output=True, check=False, **kwargs)  # type: ignore[call-overload]
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:2])} failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    return proc  # type: ignore[no-any-return]


@contextlib.contextmanager
def run_postgres(
    settings: Sequence[str] = (),
    listen: Sequence[str] = (),
    clients: str | None = None,
    password_auth: bool = False,
    tls: bool = False,
) -> Iterator[Postgres]:
    """`settings`: extra `name=value` server settings; `listen`: addresses besides 127.0.0.1;
    `clients`: a CIDR whose clients may log in (trust, like loopback); `password_auth`: TCP clients
    need their role's password (scram-sha-256, as RDS), the socket still trusts; `tls`: TLS with a
    self-signed certificate, so clients can use `sslmode=require` (RDS's rds.force_ssl)."""
    base = Path(tempfile.mkdtemp(prefix="airtasks-pg-", dir="/tmp"))
    base.chmod(0o755)
    data, sock = base / "data", base / "sock"
    sock.mkdir(exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        shutil.chown(sock, "postgres")
    port = free_port()
    _as_postgres(
        [str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]
    )
    host_auth = "scram-sha-256" if password_auth else "trust"
    hba = data / "pg_hba.conf"
    if password_auth:
        # initdb --auth=trust wrote `host ... trust` lines; only the socket's `local` lines keep it.
        lines = hba.read_text().splitlines()
        rewritten = [
            line.replace(" trust", f" {host_auth}") if line.startswith("host") else line for line in lines
        ]
        hba.write_text("\n".join(rewritten) + "\n")
    if clients:
        with open(hba, "a") as out:
            out.write(f"host all all {clients} {host_auth}\n")
    if tls:
        # Made by the `postgres` user, so the key is its own and private (the server insists).
        key, cert = str(data / "server.key"), str(data / "server.crt")
        selfsigned = ["-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
        _as_postgres(["openssl", "req", *selfsigned, "-keyout", key, "-out", cert])
        (data / "server.key").chmod(0o600)
        settings = [*settings, "ssl=on"]
    extra = "".join(f" -c {setting}" for setting in settings)
    addresses = ",".join(["127.0.0.1", *listen])
    _as_postgres(
        [
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(base / "postgres.log"),
            "-w",
            "-o",
            f"-p {port} -k {sock} -c listen_addresses={addresses} -c fsync=off -c synchronous_commit=off "
            f"-c full_page_writes=off -c max_connections=200{extra}",
            "start",
        ]
    )
    try:
        pg = Postgres(port, data, socket=sock)
        admin_sql(pg, "CREATE ROLE airflow LOGIN")
        admin_sql(pg, "CREATE DATABASE airflow OWNER airflow")
        yield pg
    finally:
        with contextlib.suppress(RuntimeError):
            _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"])
        shutil.rmtree(base, ignore_errors=True)
