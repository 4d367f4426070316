"""A moto server subprocess: the AWS API for tests and `make up`."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from airtasks.devstack.moto import client_env, moto_command, wait_until_answers
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
    port = port or free_port(host)
    env = dict(os.environ)
    env.update(extra_env or {})
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [*moto_command(), "-H", host, "-p", str(port)], stdout=out, stderr=subprocess.STDOUT, env=env
    )
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
