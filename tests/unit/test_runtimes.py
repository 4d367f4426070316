"""Expected run times learnt from finished task instances (`airtasks.runtimes`)."""

from __future__ import annotations

import math

import pytest

from airtasks.runtimes import RunTimes


def learnt(key: str, *seconds: float) -> RunTimes:
    times = RunTimes()
    for s in seconds:
        times.add(key, s)
    return times


def test_a_key_never_finished_has_no_expectation() -> None:
    times = RunTimes()
    times.add("etl.load", 30)
    assert times.expected("etl.other") is None
    assert times.remaining("etl.other", 10) is None
    assert times.expected(None) is None


def test_expected_is_the_mean_of_recent_runs() -> None:
    times = RunTimes(samples_per_key=3)
    for seconds in (10, 20, 30, 40):
        times.add("etl.load", seconds)
    assert times.expected("etl.load") == pytest.approx(30)  # 20, 30, 40: the oldest is forgotten
    assert times.remaining("etl.load", 5) == pytest.approx(25)  # and from the remaining time


def test_a_run_within_its_mean_ends_after_the_longer_runs_mean() -> None:
    times = learnt("report.build", 100, 200, 300, 400)
    assert times.remaining("report.build", 0) == pytest.approx(250)
    # 150 s in: it is one of 200, 300, 400, so about 300 - 150 s are left, not 250 - 150.
    assert times.remaining("report.build", 150) == pytest.approx(150)


def test_a_run_past_its_mean_is_not_expected_to_end_at_once() -> None:
    times = learnt("report.build", 100, 200, 300, 400)
    assert times.remaining("report.build", 350) == pytest.approx(50)
    assert times.remaining("report.build", 400) == math.inf  # longer than every run seen


def test_bad_run_times_are_ignored_and_a_zero_limit_refused() -> None:
    times = RunTimes()
    times.add("etl.load", -1)
    times.add("etl.load", math.nan)
    assert times.expected("etl.load") is None
    with pytest.raises(ValueError, match="samples_per_key"):
        RunTimes(samples_per_key=0)
