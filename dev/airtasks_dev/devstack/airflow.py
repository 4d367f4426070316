"""`make up` (local mode): Airflow 3.3 standalone on SQLite, no Docker, DAGs from the repo.

`start_airflow()` runs `airflow standalone` (api-server, scheduler, dag-processor, triggerer;
LocalExecutor) in the background with AIRFLOW_HOME under `<run_dir>/airflow`, waits until the
API answers and the scheduler is healthy, and writes the state file (`<run_dir>/local.json`, and
`$XDG_STATE_HOME/airtasks/local.json`) that `airtasks trigger` and the scaler read: the URL, the
user and the *path* of the password file, never the password. `stop_airflow()` undoes it.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from airtasks.errors import AirtasksError
from airtasks.sources.airflow_access import STATE_NAME, user_state_file
from airtasks_dev.devstack.procs import alive, stop_tree

USERNAME = "admin"
PASSWORD_FILE = "simple_auth_manager_passwords.json.generated"


class AirflowStartError(AirtasksError):
    """Airflow did not come up; the message names the log."""


@dataclass(frozen=True)
class AirflowHandle:
    url: str
    username: str
    password_file: Path
    home: Path
    log: Path
    pid: int
    state_file: Path
    seconds: float  # from start to a healthy API

    def describe(self) -> str:
        return (
            f"Airflow UI: {self.url}  (user {self.username}; password in {self.password_file})\n"
            f"Logs: {self.log} (all components), task logs under {self.home / 'logs'}\n"
            f"Trigger: airtasks trigger example_trigger_target --conf '{{\"n\": 3}}' --wait"
        )


def _private_json(path: Path, make: Callable[[], dict[str, str]]) -> dict[str, str]:
    """Read a 0600 JSON file, creating it with `make()` the first time (values never printed)."""
    if path.exists():
        return dict(json.loads(path.read_text()))
    data = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh)
    return data


def _fernet_key() -> str:
    from cryptography.fernet import Fernet  # noqa: PLC0415 - only needed on the first start

    return Fernet.generate_key().decode()


def airflow_env(
    home: Path, port: int, dags_folder: Path, password_file: Path, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of `airflow standalone`: config by env vars, secrets kept in `home`."""
    keys = _private_json(
        home / "airtasks-keys.json",
        lambda: {
            "fernet_key": _fernet_key(),
            "secret_key": secrets.token_urlsafe(32),
            "jwt_secret": secrets.token_urlsafe(32),
        },
    )
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    # `airflow standalone` starts its components as `airflow ...` from PATH: this venv's first.
    bin_dir = str(Path(_airflow_bin()).parent) if os.sep in _airflow_bin() else ""
    env["PATH"] = os.pathsep.join(p for p in (bin_dir, env.get("PATH", "")) if p)
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags_folder),
        # SQLite allows one writer: wait up to 30 s for the lock rather than fail an API call.
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}?timeout=30",
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__FERNET_KEY=keys["fernet_key"],
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=f"{USERNAME}:admin",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(password_file),
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"{url}/execution/",
        AIRFLOW__API__HOST="127.0.0.1",
        AIRFLOW__API__PORT=str(port),
        AIRFLOW__API__BASE_URL=url,
        AIRFLOW__API__WORKERS="1",
        AIRFLOW__API__SECRET_KEY=keys["secret_key"],
        AIRFLOW__API_AUTH__JWT_SECRET=keys["jwt_secret"],
        AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="10",
        AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="2",
        # The scaler DAG (and any task) finds the API like `airtasks trigger` does.
        AIRTASKS_AIRFLOW_URL=url,
        AIRTASKS_AIRFLOW_USERNAME=USERNAME,
        AIRTASKS_AIRFLOW_PASSWORD_FILE=str(password_file),
    )
    env.update(extra or {})
    return env


def _airflow_bin() -> str:
    candidate = Path(sys.executable).with_name("airflow")
    return str(candidate) if candidate.exists() else "airflow"


def wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise AirflowStartError(f"airflow standalone exited with {proc.returncode}; see {log}")
        try:
            body = httpx.get(f"{url}/api/v2/monitor/health", timeout=3).json()
            if body.get("scheduler", {}).get("status") == "healthy":
                return
        except (httpx.HTTPError, ValueError):
            pass
        if time.monotonic() > deadline:
            raise AirflowStartError(f"Airflow at {url} not healthy within {timeout:.0f}s; see {log}")
        time.sleep(1)


def _layout(run_dir: Path, dags_folder: Path | None) -> tuple[Path, Path, Path]:
    """AIRFLOW_HOME, the password file (created once, 0600) and the DAG folder of `run_dir`."""
    home = run_dir.resolve() / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    dags = (dags_folder or Path(__file__).resolve().parents[3] / "dags").resolve()
    password_file = home / PASSWORD_FILE
    _private_json(password_file, lambda: {USERNAME: secrets.token_urlsafe(18)})
    return home, password_file, dags


def running(run_dir: Path) -> int | None:
    """The pid of the standalone Airflow started from `run_dir`, if it still runs."""
    pid_file = run_dir.resolve() / "airflow" / "standalone.pid"
    with contextlib.suppress(OSError, ValueError):
        pid = int(pid_file.read_text())
        if alive(pid):
            return pid
    return None


def _port_in_use(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


@dataclass
class Launched:
    """`airflow standalone` started in the background; `wait()` until it is healthy."""

    run_dir: Path
    proc: subprocess.Popen[bytes]
    url: str
    home: Path
    password_file: Path
    log: Path
    user_state: bool
    started: float

    def wait(self, timeout: float = 180.0, state_extra: Mapping[str, object] | None = None) -> AirflowHandle:
        """Until the API answers and the scheduler is healthy; then write the state file(s)."""
        try:
            wait_healthy(self.url, self.proc, self.log, timeout)
        except AirflowStartError:
            stop_airflow(self.run_dir)
            raise
        state = {
            "mode": "local",
            "url": self.url,
            "username": USERNAME,
            "password_file": str(self.password_file),
            "airflow_home": str(self.home),
            "log": str(self.log),
            "pid": self.proc.pid,
            **(state_extra or {}),
        }
        state_file = self.run_dir / STATE_NAME
        state_file.write_text(json.dumps(state, indent=2) + "\n")
        if self.user_state:
            user = user_state_file()
            user.parent.mkdir(parents=True, exist_ok=True)
            user.write_text(json.dumps(state, indent=2) + "\n")
        return AirflowHandle(
            self.url,
            USERNAME,
            self.password_file,
            self.home,
            self.log,
            self.proc.pid,
            state_file,
            time.monotonic() - self.started,
        )


def launch_airflow(
    run_dir: Path,
    port: int = 8080,
    env: Mapping[str, str] | None = None,
    *,
    dags_folder: Path | None = None,
    user_state: bool = True,
) -> Launched:
    """Start Airflow standalone in the background (its own session); `Launched.wait()` for it.

    `env` is added to Airflow's environment: e.g. `AIRTASKS_CONFIG` (the scaler config of
    `envs/local`) and `AWS_ENDPOINT_URL` + dummy keys, so the scaler DAG resizes the local groups.
    """
    run_dir = run_dir.resolve()
    pid = running(run_dir)
    if pid is not None:
        raise AirflowStartError(f"Airflow already runs from {run_dir} (pid {pid}); `make down` first")
    if _port_in_use(port):
        raise AirflowStartError(
            f"port {port} on 127.0.0.1 is taken by another program; free it, or pick another port "
            f"(`make up AIRFLOW_PORT={port + 1}`, `python -m airtasks_dev up --airflow-port {port + 1}`)"
        )
    home, password_file, dags = _layout(run_dir, dags_folder)
    log = home / "standalone.log"
    started = time.monotonic()
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [_airflow_bin(), "standalone"],
            env=airflow_env(home, port, dags, password_file, env),
            cwd=home,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    (home / "standalone.pid").write_text(f"{proc.pid}\n")
    url = f"http://127.0.0.1:{port}"
    return Launched(run_dir, proc, url, home, password_file, log, user_state, started)


def start_airflow(
    run_dir: Path,
    port: int = 8080,
    env: Mapping[str, str] | None = None,
    *,
    dags_folder: Path | None = None,
    timeout: float = 180.0,
    user_state: bool = True,
    state_extra: Mapping[str, object] | None = None,
) -> AirflowHandle:
    """Start Airflow standalone in the background and wait until it is healthy (see launch_airflow).

    `state_extra` goes into the state file too (what `make up` built besides Airflow).
    """
    launched = launch_airflow(run_dir, port, env, dags_folder=dags_folder, user_state=user_state)
    return launched.wait(timeout, state_extra)


def stop_airflow(run_dir: Path, timeout: float = 30.0) -> bool:
    """Stop the standalone Airflow started from `run_dir` with its running tasks; remove its state
    files. False if no Airflow ran."""
    run_dir = run_dir.resolve()
    home = run_dir / "airflow"
    stopped = False
    pid_file = home / "standalone.pid"
    with contextlib.suppress(OSError, ValueError):
        pid = int(pid_file.read_text())
        if alive(pid):
            stop_tree(pid, timeout)
            stopped = True
    pid_file.unlink(missing_ok=True)
    for state in (run_dir / STATE_NAME, user_state_file()):
        with contextlib.suppress(OSError, ValueError):
            if json.loads(state.read_text()).get("airflow_home") == str(home):
                state.unlink()
    return stopped
