"""What a scheduled DAG's run needs when it starts, learned from its earlier runs: pure, no I/O.

The scaler (from Airflow's REST API) and the simulator (from a trace) both hand it the tasks of a
DAG's recent runs; `decide` raises the group one boot before the next run by what they return.
Demand counts from when a task was queued, not when it started, so a run that waited for nodes
still shows what it would have used.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from airtasks.intervals import coverage_profile, peak

WINDOW_SECONDS = 300.0
"""A run's first minutes: what it queues later meets a group that the load itself has raised."""
RUNS_LEARNED = 3
"""How many recent runs of a DAG count; the largest of them wins."""


@dataclass(frozen=True)
class PastTask:
    """One task instance of an earlier run."""

    queue: str
    queued_at: float
    """Seconds, on the same clock as the run's start."""
    duration: float


def first_minutes_slots(
    run_at: float, tasks: Iterable[PastTask], window: float = WINDOW_SECONDS
) -> dict[str, int]:
    """Per queue: the most tasks that ran at once among those queued within `window` of `run_at`,
    each counted from its queue time for its duration."""
    by_queue: dict[str, list[tuple[float, float]]] = {}
    for t in tasks:
        if 0 <= t.queued_at - run_at <= window and t.duration >= 0:
            by_queue.setdefault(t.queue, []).append((t.queued_at, t.queued_at + max(t.duration, 1e-3)))
    return {q: peak(spans) for q, spans in by_queue.items()}


@dataclass(frozen=True)
class DagTask:
    """One task of a DAG as its parsed structure shows it (Airflow's task listing of the DAG)."""

    task_id: str
    queue: str
    downstream: tuple[str, ...] = ()
    """The ids of the tasks that run after it."""


def root_slots(tasks: Iterable[DagTask]) -> dict[str, int]:
    """Per queue: the DAG's root tasks, those no other task of it lists downstream. Airflow queues
    all of them as a run starts, so every run needs at least this many slots then, its first one
    included. A mapped root counts as one: how many instances it expands to is known only then."""
    listed = list(tasks)
    below = {d for t in listed for d in t.downstream}
    out: dict[str, int] = {}
    for t in listed:
        if t.task_id not in below:
            out[t.queue] = out.get(t.queue, 0) + 1
    return out


def needed(runs: Sequence[Mapping[str, int]]) -> dict[str, int]:
    """Per queue: the most any of the last `RUNS_LEARNED` runs (oldest first) needed."""
    out: dict[str, int] = {}
    for run in runs[-RUNS_LEARNED:]:
        for queue, slots in run.items():
            out[queue] = max(out.get(queue, 0), slots)
    return out


Profile = tuple[tuple[float, int], ...]
"""Slots a run needs on one queue from `offset` seconds after its time on: (offset, slots from then
on), offsets increasing, the last value 0."""


def run_profile(run_at: float, tasks: Iterable[PastTask]) -> dict[str, Profile]:
    """Per queue: how many of the run's tasks ran at once at each offset from `run_at`, over the
    whole run, each counted from its queue time for its duration (a later stage included)."""
    by_queue: dict[str, list[tuple[float, float]]] = {}
    for t in tasks:
        if t.queued_at >= run_at and t.duration >= 0:
            start = t.queued_at - run_at
            by_queue.setdefault(t.queue, []).append((start, start + max(t.duration, 1e-3)))
    return {q: tuple(coverage_profile(spans)) for q, spans in by_queue.items()}


def value_at(profile: Sequence[tuple[float, int]], offset: float) -> int:
    """The profile's value at `offset` (0 before its first step)."""
    i = bisect_right([t for t, _ in profile], offset) - 1
    return profile[i][1] if i >= 0 else 0


def peak_between(profile: Sequence[tuple[float, int]], lo: float, hi: float) -> int:
    """The profile's largest value over [lo, hi]."""
    if hi < lo:
        return 0
    best = value_at(profile, lo)
    for t, v in profile:
        if lo < t <= hi:
            best = max(best, v)
    return best


def envelope(profiles: Sequence[Sequence[tuple[float, int]]]) -> Profile:
    """At each offset, the largest of `profiles`."""
    times = sorted({t for p in profiles for t, _ in p})
    out: list[tuple[float, int]] = []
    for t in times:
        v = max(value_at(p, t) for p in profiles)
        if not out or out[-1][1] != v:
            out.append((t, v))
    return tuple(out)


def profile_needed(runs: Sequence[Mapping[str, Profile]], learned: int = RUNS_LEARNED) -> dict[str, Profile]:
    """Per queue: the upper envelope of the last `learned` runs' profiles (oldest first)."""
    by_queue: dict[str, list[Profile]] = {}
    for run in runs[-learned:] if learned > 0 else []:
        for queue, prof in run.items():
            by_queue.setdefault(queue, []).append(prof)
    return {q: envelope(ps) for q, ps in by_queue.items()}


__all__ = [
    "RUNS_LEARNED",
    "WINDOW_SECONDS",
    "DagTask",
    "PastTask",
    "Profile",
    "envelope",
    "first_minutes_slots",
    "needed",
    "peak_between",
    "profile_needed",
    "root_slots",
    "run_profile",
    "value_at",
]
