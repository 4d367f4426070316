"""Expected run times of task instances, learnt from finished ones of the same task: pure, no I/O.

The simulator feeds it from a trace's `key` column (`Settings.learn_durations`), the scaler from
Airflow's successful task instances of a queue that learns run times (`scaling.durations`);
`decide` then scales out only for the queued tasks that the group's slots would not start before a
new node could (docs/simulator.md, "Learnt run times").

A running task that has run longer than its mean is not about to end: with durations that vary
(a report over a day's data, a long tail), it is more likely one of the long ones. Its remaining
time is therefore the mean of the finished runs that lasted longer than it has run so far, minus
that time; past all of them it is unknown (`math.inf`), so its slot is not counted on to free.
"""

from __future__ import annotations

import math
from bisect import bisect_right, insort
from collections import deque
from collections.abc import Iterable

SAMPLES_PER_KEY = 50
"""How many recent finished runs of one task count: enough for the tail's mean, recent enough to
follow a task whose data grows."""


class RunTimes:
    """Recent run times per task key (for Airflow, `dag_id.task_id`)."""

    def __init__(self, samples_per_key: int = SAMPLES_PER_KEY) -> None:
        if samples_per_key < 1:
            raise ValueError("samples_per_key must be at least 1")
        self._limit = samples_per_key
        self._recent: dict[str, deque[float]] = {}
        self._sorted: dict[str, list[float]] = {}

    def add(self, key: str, seconds: float) -> None:
        """One finished run of `key` that took `seconds` (negative or NaN is ignored)."""
        if not seconds >= 0:
            return
        recent = self._recent.setdefault(key, deque())
        ordered = self._sorted.setdefault(key, [])
        if len(recent) == self._limit:
            ordered.pop(bisect_right(ordered, recent.popleft()) - 1)
        recent.append(seconds)
        insort(ordered, seconds)

    def expected(self, key: str | None) -> float | None:
        """Mean run time of `key`'s recent runs; None when none finished."""
        ordered = self._sorted.get(key) if key is not None else None
        return sum(ordered) / len(ordered) if ordered else None

    def remaining(self, key: str | None, elapsed: float) -> float | None:
        """Expected seconds until a run of `key` that has run `elapsed` seconds ends: the mean of the
        recent runs longer than `elapsed`, less `elapsed`; `math.inf` when it outran all of them;
        None when none finished."""
        ordered = self._sorted.get(key) if key is not None else None
        if not ordered:
            return None
        longer = ordered[bisect_right(ordered, elapsed) :]
        if not longer:
            return math.inf
        return sum(longer) / len(longer) - elapsed

    def expected_each(self, keys: Iterable[str | None]) -> list[float] | None:
        """`expected` of each key, in order; None when any is unknown (decide() then counts
        nodes as it does without run times)."""
        out = [self.expected(key) for key in keys]
        return None if any(e is None for e in out) else [e for e in out if e is not None]

    def remaining_each(self, runs: Iterable[tuple[str | None, float]]) -> list[float] | None:
        """`remaining` of each (key, elapsed) run, in order; None when any key is unknown."""
        out = [self.remaining(key, elapsed) for key, elapsed in runs]
        return None if any(r is None for r in out) else [r for r in out if r is not None]


__all__ = ["SAMPLES_PER_KEY", "RunTimes"]
