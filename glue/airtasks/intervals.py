"""Sweeps over half-open intervals [start, end): how many of them cover each instant. Pure, no I/O.

Both the scaling layer (`airtasks.schedule`, what a scheduled run needs) and the simulator's
bounds (`airtasks.simulate`) count overlapping intervals; this module holds that sweep so that
neither imports the other.
"""

from __future__ import annotations

from collections.abc import Sequence


def coverage_profile(intervals: Sequence[tuple[float, float]]) -> list[tuple[float, int]]:
    """How many of `intervals` (half-open) cover t, as (time, value from then on)."""
    events = sorted([(s, 1) for s, e in intervals if e > s] + [(e, -1) for s, e in intervals if e > s])
    out: list[tuple[float, int]] = []
    count = 0
    for time, delta in events:  # ends (-1) sort before starts at the same instant
        count += delta
        if out and out[-1][0] == time:
            out[-1] = (time, count)
        else:
            out.append((time, count))
    return out


def peak(intervals: Sequence[tuple[float, float]]) -> int:
    """The most of `intervals` (half-open) that cover one instant; 0 when there are none."""
    return max((count for _, count in coverage_profile(intervals)), default=0)


__all__ = ["coverage_profile", "peak"]
