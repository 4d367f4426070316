"""The interval sweep shared by pre-scaling (`airtasks.schedule`) and the simulator's bounds."""

from __future__ import annotations

import random

import pytest

from airtasks.intervals import coverage_profile, peak


def test_no_intervals_cover_nothing() -> None:
    assert coverage_profile([]) == []
    assert peak([]) == 0


def test_profile_steps_up_and_down_at_each_start_and_end() -> None:
    assert coverage_profile([(0.0, 10.0), (2.0, 5.0), (3.0, 12.0)]) == [
        (0.0, 1),
        (2.0, 2),
        (3.0, 3),
        (5.0, 2),
        (10.0, 1),
        (12.0, 0),
    ]


def test_an_interval_ending_where_another_starts_does_not_overlap_it() -> None:
    # Half-open: [0, 5) and [5, 9) never run at once, so t = 5 has one step, to 1.
    assert coverage_profile([(0.0, 5.0), (5.0, 9.0)]) == [(0.0, 1), (5.0, 1), (9.0, 0)]
    assert peak([(0.0, 5.0), (5.0, 9.0)]) == 1


@pytest.mark.parametrize("empty", [(4.0, 4.0), (6.0, 3.0)])
def test_empty_and_reversed_intervals_cover_nothing(empty: tuple[float, float]) -> None:
    assert coverage_profile([empty]) == []
    assert coverage_profile([(0.0, 5.0), empty]) == [(0.0, 1), (5.0, 0)]
    assert peak([(0.0, 5.0), empty]) == 1


def test_peak_is_the_most_intervals_covering_one_instant() -> None:
    assert peak([(0.0, 10.0), (1.0, 2.0), (1.5, 3.0), (2.0, 4.0), (11.0, 20.0)]) == 3
    assert peak([(0.0, 1.0)] * 4) == 4


def test_peak_and_profile_agree_with_counting_at_every_start() -> None:
    rng = random.Random(7)
    for _ in range(300):
        # Whole-number starts and lengths make ends meet starts often: the ties the sweep must order.
        starts = [float(rng.randrange(6)) for _ in range(8)]
        intervals = [(s, s + rng.choice([0, 1, 2, rng.random() * 3])) for s in starts]
        covering = [sum(s <= t < e for s, e in intervals) for t, _ in intervals]
        assert peak(intervals) == max(covering)
        for t, count in coverage_profile(intervals):
            assert count == sum(s <= t < e for s, e in intervals)
