"""Process tracking by cgroup: everything a node (or a run's services) starts can be found and killed.

A node's processes enter `airtasks-localcloud/<run>/<node>/node` before they exec, and the node's
dockerd puts its containers under `.../<node>/containers` (`--cgroup-parent`). Killing a node is
then "SIGKILL every PID in its subtree until none is left", which also reaches container processes
that live in namespaces of their own, and still works after the Python process that made them died.

cgroup v2 (unified) is used where it is the only hierarchy; on a v1/hybrid host the `pids`
hierarchy tracks the processes (docker creates its container cgroups in every v1 hierarchy, so
removal walks all of them).
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from airtasks_dev.localcloud._sys import LocalCloudError, kill

CGROUP_ROOT = Path("/sys/fs/cgroup")
TOP = "airtasks-localcloud"
# The kernel weighs the nodes' containers (all under TOP) as one group against each process outside
# it. At the default weight, with a test suite's other processes runnable on a two-core host, a
# box's Airflow, RabbitMQ and PostgreSQL shared about one host process's worth of CPU: their
# threads waited 18 s for each second they ran, host processes 7 s. The nodes stand for machines,
# so together they weigh as much as this many host processes.
NODES_CPU_WEIGHT = 8


def tracking_root() -> Path:
    """The hierarchy whose cgroup.procs files tell which processes belong to a subtree."""
    if (CGROUP_ROOT / "cgroup.controllers").exists():
        return CGROUP_ROOT
    for name in ("pids", "freezer", "systemd"):
        if (CGROUP_ROOT / name / "cgroup.procs").exists():
            return CGROUP_ROOT / name
    raise LocalCloudError(f"no usable cgroup hierarchy under {CGROUP_ROOT} (need v2 or v1 pids)")


def all_roots() -> list[Path]:
    """Every mounted cgroup hierarchy (v1 controllers and the v2/unified one)."""
    roots: list[Path] = []
    for line in Path("/proc/mounts").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[2] in ("cgroup", "cgroup2"):
            roots.append(Path(parts[1]))
    return roots


def path_of(*parts: str) -> str:
    """The cgroup path (as docker's --cgroup-parent wants it) of a subtree."""
    return "/" + "/".join((TOP, *parts))


def create(*parts: str) -> Path:
    """Create the subtree in the tracking hierarchy; returns its directory (write PIDs to cgroup.procs)."""
    directory = tracking_root().joinpath(TOP, *parts)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def weigh_run(run_id: str) -> None:
    """Give TOP its CPU weight (NODES_CPU_WEIGHT) where a cpu controller is mounted, and hold the
    run's directory there, so that TOP (and its weight) lasts as long as a run does: docker makes
    the containers' directories under it, and would make a missing TOP at the default weight."""
    for root in all_roots():
        if (root / "cpu.shares").exists():  # v1: 1024 is one process's weight
            weight, value = "cpu.shares", 1024 * NODES_CPU_WEIGHT
        elif "cpu" in _read(root / "cgroup.subtree_control").split():  # v2: 100 is one's
            weight, value = "cpu.weight", 100 * NODES_CPU_WEIGHT
        else:
            continue
        (root / TOP / run_id).mkdir(parents=True, exist_ok=True)
        (root / TOP / weight).write_text(str(value))


def cpu_weights() -> dict[str, int]:
    """TOP's CPU weight in each hierarchy that has one (cpu.shares or cpu.weight)."""
    found = {}
    for root in all_roots():
        for name in ("cpu.shares", "cpu.weight"):
            if (root / TOP / name).exists():
                found[name] = int(_read(root / TOP / name))
    return found


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def procs_file(*parts: str) -> Path:
    return create(*parts) / "cgroup.procs"


def add(pid: int, *parts: str) -> None:
    """Move an already running process (not its existing children) into the subtree."""
    procs_file(*parts).write_text(str(pid))


def pids(*parts: str) -> list[int]:
    """Every process in the subtree (in any of its descendant cgroups)."""
    found: list[int] = []
    base = tracking_root().joinpath(TOP, *parts)
    if not base.is_dir():
        return found
    for procs in base.rglob("cgroup.procs"):
        with contextlib.suppress(OSError):
            found.extend(int(p) for p in procs.read_text().split())
    return found


def kill_all(*parts: str, timeout: float = 15.0) -> None:
    """SIGKILL every process in the subtree until none is left (forks racing the kill are caught)."""
    deadline = time.monotonic() + timeout
    while True:
        left = [p for p in pids(*parts) if p != os.getpid()]
        if not left:
            return
        for pid in left:
            kill(pid)
        if time.monotonic() > deadline:
            raise LocalCloudError(f"processes {left} in cgroup {path_of(*parts)} survived SIGKILL")
        time.sleep(0.05)


def remove(*parts: str) -> None:
    """Remove the (empty) subtree from every hierarchy, deepest directories first."""
    for root in all_roots():
        base = root.joinpath(TOP, *parts)
        if not base.is_dir():
            continue
        dirs = sorted((d for d in base.rglob("*") if d.is_dir()), key=lambda d: len(d.parts), reverse=True)
        for d in [*dirs, base]:
            for _ in range(50):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)  # the last exiting processes leave it a moment later


def remove_top() -> None:
    """Remove the top directory of every hierarchy when no run is left in it."""
    for root in all_roots():
        with contextlib.suppress(OSError):
            (root / TOP).rmdir()


def runs() -> list[str]:
    """Run ids that have a subtree in any hierarchy."""
    found: set[str] = set()
    for root in all_roots():
        top = root / TOP
        if top.is_dir():
            found.update(d.name for d in top.iterdir() if d.is_dir())
    return sorted(found)
