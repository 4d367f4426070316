"""A moto server subprocess: the AWS API for tests and `make up`."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from airtasks.devstack.moto import moto_command as _moto_command
from tests.support.ports import free_port


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
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": region,
            "AWS_REGION": region,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

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
    port = port or free_port(host)
    env = dict(os.environ)
    env.update(extra_env or {})
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [*_moto_command(), "-H", host, "-p", str(port)], stdout=out, stderr=subprocess.STDOUT, env=env
    )
    server = MotoServer(host, port, proc)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"moto_server exited with {proc.returncode}; see {log or 'its output'}")
            try:
                httpx.get(f"{server.url}/moto-api/", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"moto_server on {server.url} did not answer within 30s") from None
                time.sleep(0.2)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        if log:
            out.close()  # type: ignore[union-attr]
