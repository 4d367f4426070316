"""Python children that load Airflow or Celery with settings of the test's own.

The suite's environment may carry `AIRFLOW__*` settings of its own; a child started with
`clean_env()` reads only those the test gives it. `start_ready()` starts a `python -c` child that
prints `ready` once loaded and then answers over its pipes. Its stderr goes to a file, not a pipe:
Airflow logs enough to fill a pipe and block the child mid-answer.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def clean_env(**settings: str) -> dict[str, str]:
    """The test process's environment without its Airflow settings, plus `settings`."""
    return {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")} | settings


def stderr_tail(path: Path, chars: int = 3000) -> str:
    """The end of a child's stderr file ('' when it wrote none)."""
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


def start_ready(
    code: str, env: dict[str, str], stderr: Path, what: str, cwd: Path | None = None
) -> subprocess.Popen[str]:
    """`python -c code` with pipes for stdin and stdout, once it has printed `ready`; the test
    fails naming `what` and showing the child's stderr when it prints anything else or ends."""
    with stderr.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", code],
            env=env,
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if line != "ready":
        proc.kill()
        proc.wait(timeout=30)
        pytest.fail(f"{what} did not start: {line!r}\n{stderr_tail(stderr)}")
    return proc


__all__ = ["clean_env", "start_ready", "stderr_tail"]
