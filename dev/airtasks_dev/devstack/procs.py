"""Stopping a background process tree by pid: its process group, and what left the group.

Airflow runs each task in a process of its own session, outside the process group of the component
that started it, so killing the group alone would leave running tasks behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie, dead but not yet reaped, does not count)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError, IndexError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def descendants(roots: Iterable[int]) -> set[int]:
    """Every live process below `roots` (from /proc), whatever its process group or session."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = list(roots)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _reap(pid: int) -> None:
    """Collect the exit status when we are the parent (tests); harmless otherwise."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def stop_tree(pid: int, timeout: float = 30.0) -> None:
    """SIGTERM the group `pid` leads and every descendant; SIGKILL what is left after `timeout`."""
    strays = descendants({pid})
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    for stray in strays:
        with contextlib.suppress(ProcessLookupError):
            os.kill(stray, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (alive(pid) or any(alive(s) for s in strays)):
        _reap(pid)
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    for stray in strays | descendants({pid}):
        with contextlib.suppress(ProcessLookupError):
            os.kill(stray, signal.SIGKILL)
    _reap(pid)
