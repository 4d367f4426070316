"""`make bench` finds its parts: each real-service module has the `run() -> dict` entry that
bench/__main__.py calls (without it the figures are reported as not measured), and the box figure
is read from where the e2e test leaves it."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest
from bench.__main__ import BOX_BOOT_DELAY, BOX_TIMELINE, box_figure, box_section, run_box_test

from tests.support.artifacts import ARTIFACTS


@pytest.mark.parametrize("module", ["bench.pass_timing", "bench.reaction", "bench.scale"])
def test_real_parts_have_the_entry_make_bench_calls(module: str) -> None:
    run = getattr(importlib.import_module(module), "run", None)
    assert callable(run), f"{module} has no run()"
    assert not [p for p in inspect.signature(run).parameters.values() if p.default is p.empty]


TIMELINE = "scheduled runs, 45s emulated boot:\n  run 1 (nothing learned): +52.0s\n  run 2 (pre-scaled): +3s"


def test_bench_prints_the_box_figure_the_e2e_test_left(tmp_path: Path) -> None:
    assert BOX_TIMELINE == ARTIFACTS / "cluster-schedule-timeline.txt"
    timeline = tmp_path / "cluster-schedule-timeline.txt"
    timeline.write_text(TIMELINE + "\n\n")
    text = box_figure(timeline)
    assert text == TIMELINE
    section = box_section(text).splitlines()
    assert section[0] == (
        "== scheduled run in the cluster in a box (45 s emulated boot, "
        "tests/e2e/test_cluster_schedule.py): tests/artifacts/cluster-schedule-timeline.txt"
    )
    assert section[1:] == [f"   {line}" for line in TIMELINE.splitlines()]


def test_a_box_test_that_did_not_run_says_why(tmp_path: Path) -> None:
    assert box_figure(tmp_path / "cluster-schedule-timeline.txt") is None
    why = "the box test failed (exit 1): 1 failed in 300.00s"
    assert box_section(None, why).splitlines()[1] == f"   NOT MEASURED: {why}"


def test_the_box_figure_is_measured_with_a_cloud_like_boot() -> None:
    """make bench runs the box test itself, with the emulated boot its goal assumes."""
    assert BOX_BOOT_DELAY == 45.0
    source = inspect.getsource(run_box_test)
    assert "AIRTASKS_BOX_BOOT_DELAY" in source
    assert "tests/e2e/test_cluster_schedule.py" in source
