"""A private RabbitMQ broker for tests (Debian `rabbitmq-server`, management plugin on).

Started from /usr/lib/rabbitmq/bin/rabbitmq-server (the /usr/sbin wrapper switches user) with its
node name, ports, data and logs in a temp dir; the default `guest` user works over loopback.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.ports import free_port

RABBITMQ_SERVER = Path(os.environ.get("AIRTASKS_RABBITMQ_SERVER", "/usr/lib/rabbitmq/bin/rabbitmq-server"))


@dataclass(frozen=True)
class RabbitMQ:
    host: str
    port: int
    management_port: int
    nodename: str
    username: str = "guest"
    password: str = "guest"

    @property
    def broker_url(self) -> str:
        return f"amqp://{self.username}:{self.password}@{self.host}:{self.port}//"

    @property
    def management_url(self) -> str:
        return f"http://{self.host}:{self.management_port}"


@contextlib.contextmanager
def run_rabbitmq(base: Path, timeout: float = 60.0) -> Iterator[RabbitMQ]:
    """Start a broker in `base`; wait until its management API answers; stop it afterwards."""
    base.mkdir(parents=True, exist_ok=True)
    port, mport, dist = free_port(), free_port(), free_port()
    nodename = f"airtasks-{port}@localhost"
    conf = base / "rabbitmq.conf"
    conf.write_text(
        f"listeners.tcp.default = 127.0.0.1:{port}\n"
        f"management.tcp.ip = 127.0.0.1\nmanagement.tcp.port = {mport}\n"
        "log.console = true\nlog.file = false\n"
    )
    plugins = base / "enabled_plugins"
    plugins.write_text("[rabbitmq_management].\n")
    env = dict(
        os.environ,
        HOME=str(base),
        RABBITMQ_NODENAME=nodename,
        RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
        RABBITMQ_NODE_PORT=str(port),
        RABBITMQ_DIST_PORT=str(dist),
        RABBITMQ_MNESIA_BASE=str(base / "mnesia"),
        RABBITMQ_LOG_BASE=str(base / "log"),
        RABBITMQ_CONFIG_FILE=str(conf),
        RABBITMQ_ENABLED_PLUGINS_FILE=str(plugins),
        RABBITMQ_FEATURE_FLAGS_FILE=str(base / "feature_flags"),
        RABBITMQ_PID_FILE=str(base / "rabbitmq.pid"),
    )
    log = base / "rabbitmq.out"
    proc = subprocess.Popen(
        [str(RABBITMQ_SERVER)],
        env=env,
        stdout=open(log, "ab"),  # noqa: SIM115 - the server owns it until it exits
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    broker = RabbitMQ("127.0.0.1", port, mport, nodename)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"rabbitmq-server exited with {proc.returncode}; see {log}")
            try:
                r = httpx.get(f"{broker.management_url}/api/overview", auth=("guest", "guest"), timeout=2)
                if r.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"RabbitMQ management API did not answer within {timeout:.0f}s; see {log}")
            time.sleep(0.5)
        yield broker
    finally:
        # The server runs as a process group (sh wrapper + beam); stop the group we started.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
