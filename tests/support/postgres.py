"""A private PostgreSQL 15 cluster for tests: initdb in a temp dir, loopback only, a free port.

PostgreSQL refuses to run as root, so as root the cluster runs as the `postgres` system user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.ports import free_port

PG_BIN = Path(os.environ.get("AIRTASKS_PG_BIN", "/usr/lib/postgresql/15/bin"))


@dataclass(frozen=True)
class Postgres:
    host: str
    port: int
    user: str
    data_dir: Path

    def url(self, database: str = "airflow", driver: str = "postgresql+psycopg2") -> str:
        return f"{driver}://{self.user}@{self.host}:{self.port}/{database}"


def _as_user(cmd: list[str], user: str | None) -> list[str]:
    return ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", "--", *cmd] if user else cmd


@contextlib.contextmanager
def run_postgres(base: Path, databases: tuple[str, ...] = ("airflow",)) -> Iterator[Postgres]:
    """initdb + postgres on 127.0.0.1:<free port> with trust auth; stopped and removed afterwards."""
    run_as = "postgres" if os.geteuid() == 0 else None
    base.mkdir(parents=True, exist_ok=True)
    # The cluster's own dir: test temp dirs are 0700 root, which the postgres user cannot enter.
    own = Path(tempfile.mkdtemp(prefix="airtasks-pg-"))
    data, sock = own / "data", own / "sock"
    sock.mkdir()
    if run_as:
        pw = pwd.getpwnam(run_as)
        os.chown(own, pw.pw_uid, pw.pw_gid)
        os.chown(sock, pw.pw_uid, pw.pw_gid)
    subprocess.run(
        _as_user(
            [str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"], run_as
        ),
        check=True,
        capture_output=True,
    )
    port = free_port()
    log = base / "postgres.log"
    proc = subprocess.Popen(
        _as_user(
            [
                str(PG_BIN / "postgres"),
                "-D",
                str(data),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-k",
                str(sock),
                "-c",
                "fsync=off",
                "-c",
                "max_connections=200",
            ],
            run_as,
        ),
        stdout=open(log, "ab"),  # noqa: SIM115 - the server owns it until it exits
        stderr=subprocess.STDOUT,
    )
    server = Postgres("127.0.0.1", port, "postgres", data)
    try:
        deadline = time.monotonic() + 30
        while subprocess.run(
            [str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)], capture_output=True, check=False
        ).returncode:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"postgres did not start; see {log}")
            time.sleep(0.2)
        for db in databases:
            subprocess.run(
                [str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", db],
                check=True,
                capture_output=True,
            )
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(own, ignore_errors=True)
