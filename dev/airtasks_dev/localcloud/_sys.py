"""Small wrappers around the host tools the local cloud drives (ip, iptables, kill)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path


class LocalCloudError(RuntimeError):
    """The local cloud could not do what was asked; the message names the command and its output."""


def run(cmd: Sequence[str], check: bool = True, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run a host command; on failure raise LocalCloudError with its stderr."""
    proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        out = (proc.stderr or proc.stdout).strip()
        raise LocalCloudError(f"`{' '.join(cmd)}` exited {proc.returncode}: {out}")
    return proc


def require_root() -> None:
    if os.geteuid() != 0:
        raise LocalCloudError("the local cloud needs root (network namespaces, mounts, iptables)")


def process_start_time(pid: int) -> str | None:
    """The start time of `pid` in clock ticks (field 22 of /proc/PID/stat), None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces; it ends at the last ')'.
    return stat.rsplit(")", 1)[1].split()[19]


def alive(pid: int, start_time: str | None = None) -> bool:
    """True while `pid` runs (and, with start_time, is still the same process, not a reused PID)."""
    now = process_start_time(pid)
    return now is not None and (start_time is None or now == start_time)


def kill(pid: int, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
