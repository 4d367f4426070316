"""A private PostgreSQL 15 cluster (Debian package) on a free loopback port, for Airflow's metadata DB.

initdb refuses to run as root, so the cluster belongs to the `postgres` system user; data, socket
and log live in a temp dir of its own under /tmp (pytest's tmp dirs are private to root), removed
at the end.
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

    @property
    def sqlalchemy_url(self) -> str:
        return f"postgresql+psycopg2://{self.user}@127.0.0.1:{self.port}/{self.database}"


def _as_postgres(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    proc = subprocess.run([*prefix, *cmd], text=True, capture_output=True, check=False, **kwargs)  # type: ignore[call-overload]
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:2])} failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    return proc  # type: ignore[no-any-return]


@contextlib.contextmanager
def run_postgres(
    settings: Sequence[str] = (), listen: Sequence[str] = (), clients: str | None = None
) -> Iterator[Postgres]:
    """`settings`: extra `name=value` server settings; `listen`: addresses besides 127.0.0.1;
    `clients`: a CIDR whose clients may log in (trust, like loopback)."""
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
    if clients:
        with open(data / "pg_hba.conf", "a") as hba:
            hba.write(f"host all all {clients} trust\n")
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
        psql = [
            str(PG_BIN / "psql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            "postgres",
            "-v",
            "ON_ERROR_STOP=1",
        ]
        _as_postgres([*psql, "-c", "CREATE ROLE airflow LOGIN"])
        _as_postgres([*psql, "-c", "CREATE DATABASE airflow OWNER airflow"])
        yield Postgres(port, data)
    finally:
        with contextlib.suppress(RuntimeError):
            _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"])
        shutil.rmtree(base, ignore_errors=True)
