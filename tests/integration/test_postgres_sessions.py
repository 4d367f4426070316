"""A database client that vanishes with its machine (a lost manager's scheduler) must not keep its
row locks: the next scheduler selects DAG runs with FOR UPDATE SKIP LOCKED and would skip a locked
run for good. PostgreSQL here runs with the server settings the stack ships (its `postgres`
service's `-c` options), and the client runs in a network namespace on a bridge, whose link is
then deleted: from the server's side the client falls silent, as a terminated VM does.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from airtasks.stack.render import render_stack
from airtasks_dev.localcloud.network import Network, NodeLink
from tests.support.services.postgres import PG_BIN, Postgres, run_postgres

pytestmark = pytest.mark.integration


def shipped_settings() -> list[str]:
    """The `name=value` settings of the stack's `postgres` command."""
    command = yaml.safe_load(render_stack())["services"]["postgres"]["command"]
    assert command[0] == "postgres", command
    pairs = command[1:]
    assert pairs[::2] == ["-c"] * (len(pairs) // 2), command
    return list(pairs[1::2])


def psql(pg: Postgres, sql: str, host: str = "127.0.0.1") -> str:
    cmd = [str(PG_BIN / "psql"), "-h", host, "-p", str(pg.port), "-U", "airflow", "-d", "airflow"]
    out = subprocess.run(
        [*cmd, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql], check=False, text=True, capture_output=True
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.fixture
def network() -> Iterator[Network]:
    with Network.create() as net:
        yield net


def test_a_silent_clients_session_and_locks_go_within_a_minute(network: Network, tmp_path: Path) -> None:
    settings = shipped_settings()
    assert any(s.startswith("tcp_keepalives_idle=") for s in settings), settings
    with run_postgres(settings, listen=[network.gateway], clients=str(network.subnet)) as pg:
        psql(pg, "CREATE TABLE dag_run (id int PRIMARY KEY); INSERT INTO dag_run VALUES (1)")
        link: NodeLink = network.add_node("pgclient", network.allocate())
        # A scheduler inside its loop: a transaction that has locked a run's row and waits for its
        # client's next statement ("idle in transaction").
        inside = ["ip", "netns", "exec", link.netns]
        psql_in_ns = [*inside, str(PG_BIN / "psql"), "-h", network.gateway, "-p", str(pg.port)]
        client = subprocess.Popen(
            [*psql_in_ns, "-U", "airflow", "-d", "airflow", "-Xq"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / "client.log").open("w"),
            text=True,
        )
        try:
            assert client.stdin is not None
            client.stdin.write("BEGIN;\nSELECT id FROM dag_run WHERE id = 1 FOR UPDATE;\n")
            client.stdin.flush()
            holder = f"SELECT state FROM pg_stat_activity WHERE client_addr = '{link.address}'"
            deadline = time.monotonic() + 30
            while psql(pg, holder) != "idle in transaction":
                assert time.monotonic() < deadline, f"the client never held the lock: {psql(pg, holder)!r}"
                time.sleep(0.5)
            assert psql(pg, "SELECT id FROM dag_run FOR UPDATE SKIP LOCKED") == ""  # the lock is held

            network.remove_node(link)  # the client's machine is gone: no FIN, no RST, silence
            lost = time.monotonic()
            while (seen := psql(pg, "SELECT id FROM dag_run FOR UPDATE SKIP LOCKED")) != "1":
                assert time.monotonic() - lost < 90, (
                    f"the silent client still holds the run's lock after 90 s; its session: "
                    f"{psql(pg, holder)!r}; server settings {settings}"
                )
                time.sleep(1)
            released = time.monotonic() - lost
            assert seen == "1"
            assert psql(pg, holder) == "", "the silent client's session is still there"
            print(f"a silent client's lock released after {released:.0f}s")
        finally:
            client.kill()
            client.wait(timeout=10)
