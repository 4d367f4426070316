"""Pre-scaling's reads: a run's need per queue, and the plan kept between passes."""

from __future__ import annotations

from airtasks.decide import DueRun
from airtasks.scaling.schedule import REFRESH_S, WINDOW_S, ScheduleReader, peak
from tests.unit.fakes import FakeAirflow


def test_peak_counts_tasks_queued_or_running_at_once_in_the_first_window() -> None:
    tasks = [
        ("default", 2.0, 50.0),
        ("default", 3.0, 40.0),
        ("default", 45.0, 100.0),  # after one ended: still two at once
        ("default", WINDOW_S + 1, None),  # after the window
        ("gpu", 1.0, None),  # still running
        ("default", None, None),  # never queued
    ]
    assert peak(tasks, 0.0) == {"default": 2, "gpu": 1}


def test_the_plan_is_read_once_per_refresh_and_learns_the_most_of_recent_runs() -> None:
    now = 10_000.0
    af = FakeAirflow(
        dags={"etl": now + 30, "later": now + 5000},
        runs={
            "etl": [("b", now - 3570, [("default", now - 3568, now - 3500)] * 3)],
            "later": [("x", now - 100, [("default", now - 99, None)] * 9)],
        },
    )
    reader = ScheduleReader(af, ["default", "gpu"])  # type: ignore[arg-type]
    assert reader.due(now) == {"default": [DueRun("etl", now + 30, 3, "default")], "gpu": []}
    af.dags = {}
    assert reader.due(now + REFRESH_S - 1)["default"]  # not re-read yet
    assert reader.due(now + REFRESH_S)["default"] == []
