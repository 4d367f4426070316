"""What a scheduled DAG's run needs when it starts, learned from its earlier runs: pure, no I/O.

The scaler (from Airflow's REST API) and the simulator (from a trace) both hand it the tasks of a
DAG's recent runs; `decide` raises the group one boot before the next run by what they return.
Demand counts from when a task was queued, not when it started, so a run that waited for nodes
still shows what it would have used.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from airtasks.intervals import peak

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


def needed(runs: Sequence[Mapping[str, int]]) -> dict[str, int]:
    """Per queue: the most any of the last `RUNS_LEARNED` runs (oldest first) needed."""
    out: dict[str, int] = {}
    for run in runs[-RUNS_LEARNED:]:
        for queue, slots in run.items():
            out[queue] = max(out.get(queue, 0), slots)
    return out


__all__ = ["RUNS_LEARNED", "WINDOW_SECONDS", "PastTask", "first_minutes_slots", "needed"]
