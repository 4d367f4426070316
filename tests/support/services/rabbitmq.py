"""A private RabbitMQ broker (Debian `rabbitmq-server`) with the management plugin, for tests.

Started from `/usr/lib/rabbitmq/bin/rabbitmq-server` (the /usr/sbin wrapper insists on the
`rabbitmq` user and the system paths) with every path and port in a temp dir, and its own epmd
port so nothing outlives the session.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.ports import free_port

RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")


@dataclass
class RabbitMQ:
    home: Path
    nodename: str
    amqp_port: int
    management_port: int
    epmd_port: int
    username: str
    password: str
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None

    @property
    def management_url(self) -> str:
        return f"http://127.0.0.1:{self.management_port}"

    @property
    def amqp_url(self) -> str:
        return f"amqp://{self.username}:{self.password}@127.0.0.1:{self.amqp_port}//"

    def credentials_env(self) -> dict[str, str]:
        """The scaler's login to this broker (AIRTASKS_RABBITMQ_USERNAME / _PASSWORD)."""
        return {"AIRTASKS_RABBITMQ_USERNAME": self.username, "AIRTASKS_RABBITMQ_PASSWORD": self.password}

    def ctl(self, *args: str, timeout: float = 60) -> str:
        out = subprocess.run(
            [str(RABBIT_BIN / "rabbitmqctl"), "-n", self.nodename, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )
        return out.stdout

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.management_url, auth=(self.username, self.password), timeout=10)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"rabbitmq-server exited with {self.process.returncode}; see {self.home}/log"
                )
            try:
                with self.api() as api:
                    if api.get("/api/overview").status_code == 200 and self._amqp_ok():
                        return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"RabbitMQ management API on {self.management_url} not up in {timeout:.0f}s"
                )
            time.sleep(0.3)

    def _amqp_ok(self) -> bool:
        """The management API can answer before the AMQP listener takes connections."""
        from kombu import Connection  # noqa: PLC0415

        try:
            with Connection(self.amqp_url, connect_timeout=2) as conn:
                conn.ensure_connection(max_retries=1)
        except Exception:
            return False
        return True

    def stop_app(self) -> None:
        """Stop the broker application (AMQP and management API refuse), the Erlang node stays."""
        self.ctl("stop_app")

    def start_app(self) -> None:
        self.ctl("start_app")
        self.wait_ready()

    def publish(self, queue: str, count: int, body: str = "x") -> None:
        """Declare a durable queue and publish `count` messages through the management API."""
        with self.api() as api:
            api.put(f"/api/queues/%2F/{queue}", json={"durable": True}).raise_for_status()
            for _ in range(count):
                r = api.post(
                    "/api/exchanges/%2F/amq.default/publish",
                    json={
                        "properties": {},
                        "routing_key": queue,
                        "payload": body,
                        "payload_encoding": "string",
                    },
                )
                r.raise_for_status()
                assert r.json()["routed"] is True

    def depth(self, queue: str) -> int:
        with self.api() as api:
            r = api.get(f"/api/queues/%2F/{queue}")
            if r.status_code == 404:
                return 0
            data = r.json()
            return int(data.get("messages_ready", 0)) + int(data.get("messages_unacknowledged", 0))

    def wait_depth(self, queue: str, expected: int, timeout: float = 30) -> None:
        """Counters are sampled, so they lag: poll until the broker reports `expected`."""
        deadline = time.monotonic() + timeout
        while self.depth(queue) != expected:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"queue {queue} did not reach {expected} messages (now {self.depth(queue)})"
                )
            time.sleep(0.3)


@contextlib.contextmanager
def run_rabbitmq(base: Path, *, wait: bool = True) -> Iterator[RabbitMQ]:
    """Start a broker; with `wait=False` it yields at once (call `wait_ready()` before using it),
    so a caller can boot other services meanwhile (the broker takes 8-20 s here)."""
    base.mkdir(parents=True, exist_ok=True)
    amqp, mgmt, dist, epmd = free_port(), free_port(), free_port(), free_port()
    user, password = "airtasks", secrets.token_urlsafe(12)
    nodename = f"airtasks-test-{amqp}@localhost"
    (base / "rabbitmq.conf").write_text(
        "\n".join(
            [
                f"listeners.tcp.default = 127.0.0.1:{amqp}",
                f"management.tcp.port = {mgmt}",
                "management.tcp.ip = 127.0.0.1",
                f"default_user = {user}",
                f"default_pass = {password}",
                "loopback_users = none",
                "collect_statistics_interval = 1000",
                "log.console = false",
                "",
            ]
        )
    )
    (base / "enabled_plugins").write_text("[rabbitmq_management].\n")
    env = dict(os.environ)
    env.update(
        {
            "HOME": str(base),  # the Erlang cookie lives in $HOME
            "RABBITMQ_NODENAME": nodename,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(amqp),
            "RABBITMQ_DIST_PORT": str(dist),
            "ERL_EPMD_PORT": str(epmd),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            "RABBITMQ_FEATURE_FLAGS_FILE": str(base / "feature_flags"),
            "RABBITMQ_PID_FILE": str(base / "rabbitmq.pid"),
        }
    )
    cookie = base / ".erlang.cookie"
    cookie.write_text(secrets.token_hex(16))
    cookie.chmod(0o400)
    log = open(base / "server.out", "ab")  # noqa: SIM115 - closed below
    # Our own epmd, in the foreground as our child: Erlang finds it and does not daemonize another.
    epmd_proc = subprocess.Popen(
        ["epmd", "-port", str(epmd), "-address", "127.0.0.1"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    proc = subprocess.Popen(
        [str(RABBIT_BIN / "rabbitmq-server")],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    broker = RabbitMQ(base, nodename, amqp, mgmt, epmd, user, password, env, proc)
    try:
        if wait:
            broker.wait_ready()
        yield broker
    finally:
        # A throwaway broker: no graceful stop needed.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        epmd_proc.kill()
        epmd_proc.wait(timeout=10)
        log.close()
