"""A real Airflow 3.3 with CeleryExecutor for the tests: PostgreSQL metadata DB, RabbitMQ broker,
api-server, scheduler, dag-processor, triggerer, and Celery workers started on demand.

The one launcher of the suite (the stack's example DAGs and the scaler's tests share one deployment,
see `airflow_celery` in tests/support/fixtures.py). All components share one generated config in
environment variables: the `[api] secret_key` / JWT secret (task SDK <-> execution API), the Fernet
key, the metadata DB and the broker; log-server ports are free ports, so sessions never collide. A
worker runs in its own UTS namespace whose hostname is given (a fake instance id), so the task
instances it runs report that hostname, as on a real node (docs/design.md "Names": hostname = instance id).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet

from airtasks_dev.devstack.procs import descendants
from tests.support.ports import free_port
from tests.support.services.postgres import Postgres
from tests.support.services.rabbitmq import RabbitMQ

VENV_BIN = Path(sys.executable).parent
AIRFLOW = str(VENV_BIN / "airflow")


@dataclass
class Airflow:
    home: Path
    env: dict[str, str]
    port: int
    username: str
    password: str
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _logs: list[Any] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def credentials_env(self) -> dict[str, str]:
        """The scaler's and trigger's login to this Airflow (the URL comes from their config)."""
        return {"AIRTASKS_AIRFLOW_USERNAME": self.username, "AIRTASKS_AIRFLOW_PASSWORD": self.password}

    def access_env(self) -> dict[str, str]:
        """What `airtasks trigger` (and the scaler) need to find and log in to this Airflow."""
        return {"AIRTASKS_AIRFLOW_URL": self.url, **self.credentials_env()}

    # -- processes -----------------------------------------------------------------------------

    def _spawn(
        self, name: str, argv: list[str], extra_env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        log = open(self.home / f"{name}.log", "ab")  # noqa: SIM115 - closed in stop()
        self._logs.append(log)
        env = dict(self.env)
        if name.startswith("worker-"):  # each worker its own (unused: --skip-serve-logs) log port
            env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] = str(free_port())
        env.update(extra_env or {})
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.processes[name] = proc
        return proc

    def start_worker(
        self, hostname: str, queues: list[str], concurrency: int = 2, extra_env: dict[str, str] | None = None
    ) -> None:
        """A Celery worker named celery@<hostname> on a host called <hostname>."""
        cmd = (
            f"hostname {hostname} && exec {AIRFLOW} celery worker --celery-hostname celery@{hostname} "
            f"--queues {','.join(queues)} --concurrency {concurrency} --skip-serve-logs "
            "--without-gossip --without-mingle"
        )
        self._spawn(f"worker-{hostname}", ["unshare", "--uts", "sh", "-c", cmd], extra_env)

    def stop_process(self, name: str, timeout: float = 30) -> None:
        proc = self.processes.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def stop(self, grace: float = 3.0) -> None:
        """SIGTERM every process group at once, SIGKILL what is left after `grace` seconds.

        Airflow runs each task in a process of its own session, outside the worker's process
        group: those are found by ancestry first, and killed by pid at the end.
        """
        procs = list(self.processes.values())
        self.processes.clear()
        strays = descendants({p.pid for p in procs})
        for proc in procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # stragglers, and children left in the group
            proc.wait(timeout=10)
        for pid in strays:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for log in self._logs:
            log.close()

    def check_alive(self) -> None:
        for name, proc in self.processes.items():
            if proc.poll() is not None:
                tail = (self.home / f"{name}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"airflow {name} exited with {proc.returncode}:\n{tail}")

    # -- API -----------------------------------------------------------------------------------

    def token(self) -> str:
        r = httpx.post(
            f"{self.url}/auth/token", json={"username": self.username, "password": self.password}, timeout=10
        )
        r.raise_for_status()
        return str(r.json()["access_token"])

    def api(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token()}"}, timeout=30
        )

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        with self.api() as api:
            r = api.post(
                f"/api/v2/dags/{dag_id}/dagRuns",
                json={"logical_date": None, "conf": conf or {}},
            )
            r.raise_for_status()
            return str(r.json()["dag_run_id"])

    def task_instances(self, **params: Any) -> list[dict[str, Any]]:
        with self.api() as api:
            r = api.get("/api/v2/dags/~/dagRuns/~/taskInstances", params={"limit": 100, **params})
            r.raise_for_status()
            return list(r.json()["task_instances"])

    def wait_for(self, what: str, check: Callable[[], bool], timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            try:
                if check():
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"airflow: {what} within {timeout:.0f}s; logs in {self.home}")
            time.sleep(0.5)


def airflow_env(home: Path, postgres: Postgres, broker: RabbitMQ, dags: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AIRTASKS_"))}
    secret = secrets.token_urlsafe(32)
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
            "AIRFLOW__CORE__PARALLELISM": "64",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": postgres.sqlalchemy_url,
            "AIRFLOW__CELERY__BROKER_URL": broker.amqp_url,
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + postgres.sqlalchemy_url.replace("+psycopg2", ""),
            "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
            "AIRFLOW__CELERY__OPERATION_TIMEOUT": "5",
            "AIRFLOW__API__SECRET_KEY": secret,
            "AIRFLOW__API_AUTH__JWT_SECRET": secret,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "30",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            # Tasks of queues without a worker stay queued for the whole session (the scaler's load).
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "3600",
            "AIRFLOW__TRIGGERER__DEFAULT_CAPACITY": "100",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            "AIRFLOW__LOGGING__TRIGGERER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "PYTHONPATH": str(Path(__file__).resolve().parents[3] / "glue"),
        }
    )
    return env


def _scheduler_healthy(url: str) -> bool:
    r = httpx.get(f"{url}/api/v2/monitor/health", timeout=3)
    return r.status_code == 200 and r.json().get("scheduler", {}).get("status") == "healthy"


@contextlib.contextmanager
def run_airflow(
    home: Path,
    postgres: Postgres,
    broker: RabbitMQ,
    dags: Path,
    api_server_env: dict[str, str] | None = None,
    timeout: float = 180,
) -> Iterator[Airflow]:
    """Migrate the DB, start the components, wait until the scheduler is healthy; no worker yet
    (`start_worker` adds them). `broker` may still be booting: it is waited for after the migration.
    `api_server_env`: added to the api-server's environment only (e.g. what the Air-Tasks plugin's
    cluster page reads the groups and the broker with)."""
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    password = secrets.token_urlsafe(12)
    passwords = home / "passwords.json"
    fd = os.open(passwords, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"admin": password}, fh)
    env = airflow_env(home, postgres, broker, dags, port)
    af = Airflow(home, env, port, "admin", password)
    try:
        migrate = subprocess.run(
            [AIRFLOW, "db", "migrate"], env=env, capture_output=True, text=True, check=False, timeout=300
        )
        if migrate.returncode != 0:
            raise RuntimeError(
                f"airflow db migrate failed:\n{migrate.stdout[-2000:]}\n{migrate.stderr[-3000:]}"
            )
        broker.wait_ready()  # booted meanwhile, if the caller started it without waiting
        af._spawn(
            "api-server",
            [AIRFLOW, "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            api_server_env,
        )
        af._spawn("scheduler", [AIRFLOW, "scheduler"])
        af._spawn("dag-processor", [AIRFLOW, "dag-processor"])
        af._spawn("triggerer", [AIRFLOW, "triggerer"])
        af.wait_for("the scheduler is healthy", lambda: _scheduler_healthy(af.url), timeout=timeout)
        yield af
    finally:
        af.stop()
