"""A moto server (the AWS API on localhost): a background process that outlives the CLI, or one
that lives as long as a `with` block (`run_moto`, for tests and the local cloud).

For `make up`, its pid, port and log live in the run directory, so `make down` can stop exactly
the process `make up` started.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from airtasks.errors import AirtasksError

STATE_FILE = "moto.json"
LOG_FILE = "moto.log"


def listen(host: str, port: int | None) -> socket.socket:
    """A listening socket on host:port (a free port when port is None), bound here so that no other
    process can take the port before moto serves it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port or 0))
    except OSError as exc:
        sock.close()
        raise AirtasksError(
            f"cannot listen on {host}:{port} for moto ({exc.strerror}); "
            "stop what uses the port or choose another"
        ) from exc
    sock.listen(128)
    return sock


def spawn(
    host: str, port: int | None, out: Any, env: dict[str, str] | None = None, **popen: Any
) -> tuple[subprocess.Popen[bytes], int]:
    """Start moto (airtasks_dev.devstack.moto_serve) on a socket bound here; its process and port."""
    with listen(host, port) as sock:
        fd = sock.fileno()
        proc = subprocess.Popen(
            [sys.executable, "-m", "airtasks_dev.devstack.moto_serve", str(fd)],
            pass_fds=(fd,),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            **popen,
        )
        return proc, int(sock.getsockname()[1])


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_until_answers(url: str, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise AirtasksError(f"moto_server exited with {proc.returncode} before answering on {url}")
        try:
            httpx.get(f"{url}/moto-api/", timeout=1)
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise AirtasksError(f"moto_server did not answer on {url} within {timeout:.0f}s") from None
            time.sleep(0.2)


def client_env(url: str, region: str = "us-east-1") -> dict[str, str]:
    """What boto3, terraform and the aws CLI need to talk to this server (dummy credentials)."""
    return {
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


@dataclass(frozen=True)
class MotoInfo:
    pid: int
    host: str
    port: int
    log: str

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def start(run_dir: Path, host: str = "127.0.0.1", port: int | None = None) -> MotoInfo:
    """Start moto in the background (its own session) and wait until it answers."""
    running = read(run_dir)
    if running and is_running(running):
        return running
    run_dir.mkdir(parents=True, exist_ok=True)
    log = run_dir / LOG_FILE
    with open(log, "ab") as out:
        proc, port = spawn(host, port, out, start_new_session=True)
    info = MotoInfo(proc.pid, host, port, str(log))
    try:
        wait_until_answers(info.url, proc=proc)
    except AirtasksError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        raise
    (run_dir / STATE_FILE).write_text(json.dumps(asdict(info)))
    return info


def read(run_dir: Path) -> MotoInfo | None:
    path = run_dir / STATE_FILE
    if not path.exists():
        return None
    return MotoInfo(**json.loads(path.read_text()))


def is_running(info: MotoInfo) -> bool:
    """True when info.pid is alive and still a moto server (pids get reused)."""
    try:
        cmdline = Path(f"/proc/{info.pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"moto" in cmdline


def stop(run_dir: Path, timeout: float = 10.0) -> bool:
    """Stop the moto server recorded in run_dir; True when one was running."""
    info = read(run_dir)
    if info is None:
        return False
    stopped = False
    if is_running(info):
        os.kill(info.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while is_running(info) and time.monotonic() < deadline:
            _reap(info.pid)
            time.sleep(0.1)
        if is_running(info):
            os.kill(info.pid, signal.SIGKILL)
        stopped = True
    (run_dir / STATE_FILE).unlink(missing_ok=True)
    return stopped


def _reap(pid: int) -> None:
    """Collect the exit status when the caller is moto's parent (tests); harmless otherwise."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


@dataclass(frozen=True)
class MotoServer:
    host: str
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def env(self, region: str = "us-east-1") -> dict[str, str]:
        """What a client (boto3, terraform, aws CLI) needs to talk to this server."""
        return client_env(self.url, region)

    def reset(self) -> None:
        httpx.post(f"{self.url}/moto-api/reset", timeout=10).raise_for_status()


@contextlib.contextmanager
def run_moto(
    host: str = "127.0.0.1",
    port: int | None = None,
    log: Path | None = None,
    extra_env: dict[str, str] | None = None,
) -> Iterator[MotoServer]:
    """Start moto on host:port (a free port by default), wait until it answers, stop it after."""
    env = dict(os.environ)
    env.update(extra_env or {})
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    try:
        proc, port = spawn(host, port, out, env)
    except BaseException:
        if log:
            out.close()  # type: ignore[union-attr]
        raise
    server = MotoServer(host, port, proc)
    try:
        wait_until_answers(server.url, proc=proc)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        if log:
            out.close()  # type: ignore[union-attr]
