"""A running task outlasts the API server's absence, as after the loss of the manager that ran it:
Swarm starts the API server on a survivor a minute or more later, and its name does not resolve
meanwhile. The task's calls (here a heartbeat) must wait for it, not fail the task.

The client is Airflow's own Task SDK client, with the shipped stack's environment; the "API
server" is a small HTTP server that comes up a few seconds after the first call was refused.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from tests.support.child import clean_env

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SETTINGS = ("RETRIES", "RETRY_WAIT_MIN", "RETRY_WAIT_MAX")

# One heartbeat, as a task's supervisor sends it, then the time it took.
TASK = """
import sys, time, uuid
from airflow.sdk.api.client import Client
client = Client(base_url=sys.argv[1], token="a-token")
print("calling", flush=True)
start = time.monotonic()
client.task_instances.heartbeat(uuid.uuid4(), pid=1)
print(f"heartbeat sent after {time.monotonic() - start:.1f}s", flush=True)
"""


def shipped_env() -> dict[str, str]:
    compose = yaml.safe_load((REPO / "docker/docker-compose-CeleryExecutor.yml").read_text())
    env: dict[str, str] = compose["x-airflow-env"]
    return {
        f"AIRFLOW__WORKERS__EXECUTION_API_{name}": env[f"AIRFLOW__WORKERS__EXECUTION_API_{name}"]
        for name in SETTINGS
    }


class Heartbeats(BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_PUT(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Heartbeats.seen.append(self.path)
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def late_server(free_port: int) -> Iterator[tuple[int, threading.Event]]:
    """A port that refuses until the event is set, then an API server that answers on it 5 s later.
    The test sets the event when the task is about to call: started from the test's own start,
    the server could answer a task that took longer than that to import the Task SDK."""
    servers: list[ThreadingHTTPServer] = []
    calling = threading.Event()

    def start() -> None:
        if not calling.wait(120):
            return
        time.sleep(5)
        server = ThreadingHTTPServer(("127.0.0.1", free_port), Heartbeats)
        servers.append(server)
        server.serve_forever()

    threading.Thread(target=start, daemon=True).start()
    yield free_port, calling
    for server in servers:
        server.shutdown()


def test_the_shipped_stack_has_a_task_wait_minutes_for_the_api_server() -> None:
    env = shipped_env()
    tries = int(env["AIRFLOW__WORKERS__EXECUTION_API_RETRIES"])
    least_wait = float(env["AIRFLOW__WORKERS__EXECUTION_API_RETRY_WAIT_MIN"])
    # Each wait between tries is at least the minimum (tenacity's random exponential, floored).
    assert (tries - 1) * least_wait >= 180, env


def test_a_heartbeat_waits_for_an_api_server_that_comes_back(
    late_server: tuple[int, threading.Event], tmp_path: Path
) -> None:
    port, calling = late_server
    env = clean_env(AIRFLOW_HOME=str(tmp_path / "airflow")) | shipped_env()
    task = subprocess.Popen(
        [sys.executable, "-c", TASK, f"http://127.0.0.1:{port}/execution/"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert task.stdout is not None
    # The task's 120 s bound, as before it was read line by line: a hung task is killed, and its
    # output ends, instead of blocking the read below until pytest-timeout.
    watchdog = threading.Timer(120, task.kill)
    watchdog.start()
    out = ""
    try:
        for line in task.stdout:  # the Task SDK logs here too, before and after the task's lines
            out += line
            if line == "calling\n":
                calling.set()
    finally:
        watchdog.cancel()
    assert task.wait(timeout=30) == 0, out[-3000:]
    assert calling.is_set(), out[-3000:]
    # The first try was refused (nothing listened yet) and the next came after the shipped
    # least wait, not Airflow's 1 s: the settings are the ones the Task SDK reads.
    sent = re.search(r"^heartbeat sent after ([0-9.]+)s$", out, re.MULTILINE)
    assert sent, out[-3000:]
    sent_after = float(sent.group(1))
    assert sent_after >= float(env["AIRFLOW__WORKERS__EXECUTION_API_RETRY_WAIT_MIN"]), out
    assert any(path.endswith("/heartbeat") for path in Heartbeats.seen), Heartbeats.seen
