"""Commands that only compute, bounded by the CPU time they use rather than by the clock.

`make test` runs the checks part at a lower CPU priority (tests/support/split_run.py). Beside the box
and the integration tests, a command there can wait minutes for a CPU, so a wall-clock timeout
would measure the other parts' load, not the command. A CPU-time limit (`prlimit --cpu`) still stops
a runaway; a command that hangs without computing is left to the test's own timeout.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

# The kernel sends SIGXCPU at the soft limit and SIGKILL at the hard one, a little later, for a
# command that ignores the first.
GRACE_SECONDS = 10


def run_computing(
    args: list[str],
    *,
    cpu_seconds: int,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`args` with its output captured, stopped once it has used `cpu_seconds` of CPU (each of its
    processes counts alone); the test fails naming the limit when that happens."""
    proc = subprocess.run(
        ["prlimit", f"--cpu={cpu_seconds}:{cpu_seconds + GRACE_SECONDS}", "--", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        pytest.fail(
            f"{Path(args[0]).name} was stopped after {cpu_seconds} s of CPU time, far more than it "
            f"needs on a quiet host: it loops, or its input grew.\n{proc.stderr[-3000:]}"
        )
    return proc
