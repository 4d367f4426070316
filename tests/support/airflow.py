"""Airflow 3.3 for tests: api-server, scheduler, dag-processor, triggerer and Celery workers.

Each component is a subprocess of the test with one generated configuration (environment
variables) shared by all: the same JWT / API secret, Fernet key, metadata DB and broker. Each
Celery worker gets its own Celery hostname and log-server port, and listens on its own queue.
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
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from cryptography.fernet import Fernet

from tests.support.ports import free_port

REPO = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
USERNAME = "admin"


@dataclass
class AirflowCluster:
    home: Path
    url: str
    username: str
    password: str
    env: dict[str, str]
    logs: dict[str, Path] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def access_env(self) -> dict[str, str]:
        """What `airtasks trigger` (and the scaler) need to find and log in to this Airflow."""
        return {
            "AIRTASKS_AIRFLOW_URL": self.url,
            "AIRTASKS_AIRFLOW_USERNAME": self.username,
            "AIRTASKS_AIRFLOW_PASSWORD": self.password,
        }

    def token(self) -> str:
        r = httpx.post(
            f"{self.url}/auth/token", json={"username": self.username, "password": self.password}, timeout=30
        )
        r.raise_for_status()
        return str(r.json()["access_token"])

    def check_alive(self) -> None:
        dead = {name: p.returncode for name, p in self.procs.items() if p.poll() is not None}
        if dead:
            raise RuntimeError(f"Airflow components exited: {dead}; logs in {self.home / 'logs'}")


def base_env(
    home: Path,
    *,
    sql_conn: str,
    executor: str,
    dags_folder: Path,
    api_port: int,
    broker_url: str | None = None,
    result_backend: str | None = None,
    password_file: Path,
) -> dict[str, str]:
    """The shared configuration of every component (no airflow.cfg needed)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags_folder),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__EXECUTOR=executor,
        AIRFLOW__CORE__FERNET_KEY=Fernet.generate_key().decode(),
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=f"{USERNAME}:admin",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(password_file),
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{api_port}/execution/",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=sql_conn,
        AIRFLOW__API__SECRET_KEY=secrets.token_urlsafe(32),
        AIRFLOW__API_AUTH__JWT_SECRET=secrets.token_urlsafe(32),
        AIRFLOW__API__HOST="127.0.0.1",
        AIRFLOW__API__PORT=str(api_port),
        AIRFLOW__API__BASE_URL=f"http://127.0.0.1:{api_port}",
        AIRFLOW__API__WORKERS="1",
        AIRFLOW__LOGGING__BASE_LOG_FOLDER=str(home / "logs"),
        AIRFLOW__LOGGING__TRIGGERER_LOG_SERVER_PORT=str(free_port()),
        AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(free_port()),
        AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="2",
        AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT="600",
        AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="10",
        AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL="30",
        AIRFLOW__TRIGGERER__DEFAULT_CAPACITY="100",
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO / "glue"), env.get("PYTHONPATH", "")) if p),
    )
    if broker_url:
        env["AIRFLOW__CELERY__BROKER_URL"] = broker_url
    if result_backend:
        env["AIRFLOW__CELERY__RESULT_BACKEND"] = result_backend
    return env


def write_password_file(path: Path, username: str = USERNAME) -> str:
    """Seed the simple auth manager's passwords file (0600) so Airflow never prints a password."""
    password = secrets.token_urlsafe(18)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({username: password}, fh)
    return password


def wait_healthy(url: str, procs: Mapping[str, subprocess.Popen[bytes]], timeout: float, logs: Path) -> None:
    """Until the api-server's health endpoint says the metadatabase and scheduler are healthy."""
    deadline = time.monotonic() + timeout
    while True:
        dead = {n: p.returncode for n, p in procs.items() if p.poll() is not None}
        if dead:
            raise RuntimeError(f"Airflow components exited early: {dead}; see {logs}")
        try:
            r = httpx.get(f"{url}/api/v2/monitor/health", timeout=3)
            body = r.json() if r.status_code == 200 else {}
            if body.get("scheduler", {}).get("status") == "healthy":
                return
        except (httpx.HTTPError, ValueError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"Airflow at {url} not healthy within {timeout:.0f}s; see {logs}")
        time.sleep(1)


def _start(
    name: str, cmd: list[str], env: dict[str, str], logdir: Path
) -> tuple[subprocess.Popen[bytes], Path]:
    log = logdir / f"{name}.log"
    proc = subprocess.Popen(
        cmd,
        env=env,
        stdout=open(log, "ab"),  # noqa: SIM115 - the component owns it until it exits
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return proc, log


def stop_processes(procs: Mapping[str, subprocess.Popen[bytes]], timeout: float = 30.0) -> None:
    """SIGTERM each component's process group (workers first: warm shutdown), then SIGKILL."""
    order = sorted(procs, key=lambda n: (not n.startswith("worker"), n))
    for name in order:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(procs[name].pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for name in order:
        proc = procs[name]
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextlib.contextmanager
def run_celery_airflow(
    home: Path,
    *,
    sql_conn: str,
    broker_url: str,
    queues: Mapping[str, int],
    dags_folder: Path = REPO / "dags",
    extra_env: Mapping[str, str] | None = None,
    timeout: float = 180.0,
) -> Iterator[AirflowCluster]:
    """Airflow with CeleryExecutor: all components plus one Celery worker per queue (slots)."""
    home.mkdir(parents=True, exist_ok=True)
    logdir = home / "logs"
    logdir.mkdir(exist_ok=True)
    port = free_port()
    password_file = home / "passwords.json"
    password = write_password_file(password_file)
    result_backend = "db+" + sql_conn.replace("+psycopg2", "").replace("postgresql+psycopg", "postgresql")
    env = base_env(
        home,
        sql_conn=sql_conn,
        executor="CeleryExecutor",
        dags_folder=dags_folder,
        api_port=port,
        broker_url=broker_url,
        result_backend=result_backend,
        password_file=password_file,
    )
    env.update(extra_env or {})
    migrate = subprocess.run(
        [AIRFLOW, "db", "migrate"], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    if migrate.returncode:
        raise RuntimeError(f"airflow db migrate failed:\n{migrate.stdout[-2000:]}\n{migrate.stderr[-3000:]}")
    cluster = AirflowCluster(home, f"http://127.0.0.1:{port}", USERNAME, password, env)
    commands: dict[str, tuple[list[str], dict[str, str]]] = {
        "api-server": ([AIRFLOW, "api-server", "--host", "127.0.0.1", "--port", str(port)], env),
        "scheduler": ([AIRFLOW, "scheduler"], env),
        "dag-processor": ([AIRFLOW, "dag-processor"], env),
        "triggerer": ([AIRFLOW, "triggerer"], env),
    }
    for queue, slots in queues.items():
        worker_env = dict(env, AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(free_port()))
        commands[f"worker-{queue}"] = (
            [
                AIRFLOW,
                "celery",
                "worker",
                "--celery-hostname",
                f"celery@airtasks-test-{queue}",
                "--queues",
                queue,
                "--concurrency",
                str(slots),
                "--skip-serve-logs",
            ],
            worker_env,
        )
    try:
        for name, (cmd, cmd_env) in commands.items():
            cluster.procs[name], cluster.logs[name] = _start(name, cmd, cmd_env, logdir)
        wait_healthy(cluster.url, cluster.procs, timeout, logdir)
        yield cluster
    finally:
        stop_processes(cluster.procs)
