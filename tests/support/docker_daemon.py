"""The host's dockerd for tests: started if it is not running, shared under a lock.

Only one Swarm exists per dockerd, so tests that init or change it hold an exclusive file lock for
as long as they use it; two test sessions on one machine then wait for each other instead of
tearing down each other's Swarm.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import docker

SOCKET = Path("/var/run/docker.sock")
LOCK_FILE = Path("/tmp/airtasks-docker.lock")
START_LOCK_FILE = Path("/tmp/airtasks-dockerd-start.lock")
DOCKERD_LOG = Path("/tmp/airtasks-dockerd.log")
# Debian's client matches the Debian daemon; /usr/local/bin/docker may be newer than the daemon.
DOCKER_CLI = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else (shutil.which("docker") or "docker")


def _answers() -> bool:
    try:
        docker.DockerClient(base_url=f"unix://{SOCKET}", timeout=5).ping()
    except Exception:
        return False
    return True


def ensure_dockerd(timeout: float = 60.0) -> docker.DockerClient:
    """Return a client for the host dockerd, starting `dockerd` in the background if needed.

    Two sessions that start at once (make test's parts) must not both start one: the loser fails on
    the volume store's lock and, exiting, removes the socket the winner listens on. So the check
    and the start happen under a file lock of their own."""
    with open(START_LOCK_FILE, "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not _answers():
                _start_dockerd(timeout)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return docker.DockerClient(base_url=f"unix://{SOCKET}", timeout=120)


def _start_dockerd(timeout: float) -> None:
    if os.geteuid() != 0 or not shutil.which("dockerd"):
        raise RuntimeError("dockerd is not running and cannot be started here (needs root and docker.io)")
    with open(DOCKERD_LOG, "ab") as log:
        subprocess.Popen(["dockerd"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout
    while not _answers():
        if time.monotonic() > deadline:
            raise TimeoutError(f"dockerd did not answer within {timeout:.0f}s; see {DOCKERD_LOG}")
        time.sleep(0.5)


@contextlib.contextmanager
def docker_lock(timeout: float = 1800.0) -> Iterator[None]:
    """Hold the machine-wide lock on the host dockerd (and its Swarm)."""
    with open(LOCK_FILE, "a+") as fh:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"another test session held {LOCK_FILE} for {timeout:.0f}s") from None
                time.sleep(1)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextlib.contextmanager
def swarm_manager(
    client: docker.DockerClient, advertise_addr: str = "127.0.0.1"
) -> Iterator[docker.DockerClient]:
    """A single-node Swarm on the host dockerd; left again afterwards if this call created it."""
    created = client.info().get("Swarm", {}).get("LocalNodeState") != "active"
    if created:
        client.swarm.init(advertise_addr=advertise_addr, listen_addr=f"{advertise_addr}:2377")
    try:
        yield client
    finally:
        if created:
            with contextlib.suppress(docker.errors.APIError):
                client.swarm.leave(force=True)
