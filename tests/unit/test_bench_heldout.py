"""The tuning / held-out split of generator seeds: the sweep never sees what `make bench` reports."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest
from bench.__main__ import _goals
from bench.heldout import (
    GOAL_SCHEDULED_WAIT_P95_S,
    HELDOUT_SEEDS,
    TUNING_SEEDS,
    ComparisonRow,
    KindSummary,
    evaluate,
    format_comparison,
    format_floors,
    format_summaries,
    history_floors,
    scheduled_comparison,
    scheduled_goal,
    tuning_only,
)
from bench.heldout import main as heldout_main
from bench.sweep import choose

from airtasks.simulate.bound import clairvoyant, lower_bound
from airtasks.simulate.policies import oracle
from airtasks.simulate.report import simulate
from airtasks.simulate.settings import Settings
from airtasks.simulate.trace import generate
from tests.support.computing import run_computing

REPO = Path(__file__).resolve().parents[2]


def test_tuning_and_heldout_seeds_are_disjoint_and_skip_the_shipped_seed() -> None:
    assert TUNING_SEEDS
    assert len(HELDOUT_SEEDS) >= 5
    assert not set(TUNING_SEEDS) & set(HELDOUT_SEEDS)
    assert 1 not in TUNING_SEEDS  # bench/traces/ are seed 1: examples, not tuned on
    assert 1 not in HELDOUT_SEEDS


def test_sweep_refuses_heldout_seeds() -> None:
    assert tuning_only([2, 3]) == (2, 3)
    with pytest.raises(SystemExit, match=f"seeds \\[{HELDOUT_SEEDS[0]}\\] are held out"):
        tuning_only([2, HELDOUT_SEEDS[0]])


def test_sweep_command_refuses_heldout_seeds_before_simulating() -> None:
    result = run_computing(
        [sys.executable, "-m", "bench.sweep", "--seeds", f"2,{HELDOUT_SEEDS[-1]}"],
        cpu_seconds=60,
        cwd=REPO,
        env={"PYTHONPATH": f"{REPO / 'glue'}:{REPO / 'dev'}:{REPO}", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode != 0
    assert "held out" in result.stderr
    assert "window" not in result.stdout  # no grid was run


def test_evaluate_summarises_every_seed_of_a_kind() -> None:
    settings = Settings()
    got = evaluate(settings, (2, 3), kinds=("steady",))
    reports = [simulate(generate("steady", s), ["airtasks"], settings) for s in (2, 3)]
    ratios = [r.metrics["airtasks"].node_seconds_vs_oracle for r in reports]
    s = got["steady"]
    assert s.seeds == (2, 3)
    assert s.worst_vs_oracle == max(ratios)
    assert s.mean_vs_oracle == round(sum(ratios) / 2, 3)
    assert s.tasks_killed == 0
    # the bound and the clairvoyant schedule allow the goal's wait, boot + two passes
    assert s.max_wait_s == 60 + 2 * settings.interval_seconds
    bounds = [lower_bound(generate("steady", x), settings, 60, s.max_wait_s).node_seconds for x in (2, 3)]
    vs_bound = [r.outcomes["airtasks"].node_seconds / b for r, b in zip(reports, bounds, strict=True)]
    assert s.mean_vs_bound == round(sum(vs_bound) / 2, 3)
    assert s.worst_vs_bound == round(max(vs_bound), 3)
    assert s.wait_max_s == round(max(max(r.outcomes["airtasks"].waits) for r in reports), 1)
    assert s.wait_max_s <= s.max_wait_s  # so the scaler is in the class the bound holds for
    planned = [
        clairvoyant(generate("steady", x), settings, 60, s.max_wait_s).node_seconds
        / oracle(generate("steady", x), settings, 60).node_seconds
        for x in (2, 3)
    ]
    assert s.clairvoyant_worst_vs_oracle == round(max(planned), 3)
    assert s.clairvoyant_mean_vs_oracle == round(sum(planned) / 2, 3)
    doc = s.to_json()
    assert doc["mean_vs_oracle"] == s.mean_vs_oracle  # the existing keys are unchanged
    assert doc["worst_vs_bound"] == s.worst_vs_bound
    assert doc["bound_max_wait_s"] == s.max_wait_s


def test_report_keeps_the_oracle_columns_and_adds_the_bound() -> None:
    summary = KindSummary("steady", (2,), 1.073, 1.082, 41.0, 0, 1.251, 1.267, 65.0, 70.0, 0.961, 0.969)
    lines = format_summaries({"steady": summary}).splitlines()
    head = lines[0].split("  ")
    cols = [c.strip() for c in head if c.strip()]
    assert cols[:5] == ["trace kind", "vs oracle, mean", "vs oracle, worst", "wait p95, worst", "killed"]
    assert cols[5:7] == ["vs bound, mean", "vs bound, worst"]
    assert lines[1].split() == [
        "steady",
        "1.073x",
        "1.082x",
        "41",
        "s",
        "0",
        "1.251x",
        "1.267x",
        "65",
        "s",
        "0.961x",
        "0.969x",
    ]


def _summary(mean: float, worst: float, p95: float = 60.0, killed: int = 0) -> KindSummary:
    return KindSummary("k", (2,), mean, worst, p95, killed)


def test_choose_takes_the_best_worst_kind_within_the_wait_bound() -> None:
    cells = {
        (0, 0): {"a": _summary(1.01, 1.02, p95=90.0), "b": _summary(1.01, 1.02)},  # waits too long
        (30, 10): {"a": _summary(1.05, 1.08), "b": _summary(1.09, 1.10)},
        (60, 10): {"a": _summary(1.07, 1.08), "b": _summary(1.07, 1.09)},  # best on its worst kind
        (60, 30): {"a": _summary(1.02, 1.03), "b": _summary(1.02, 1.03, killed=1)},  # kills
    }
    assert choose(cells, wait_bound_s=70.0) == ((60, 10), True)
    slow = {c: {k: dataclasses.replace(v, wait_p95_s=99.0) for k, v in s.items()} for c, s in cells.items()}
    assert choose(slow, wait_bound_s=70.0) == ((0, 0), False)


def test_make_bench_goals_are_judged_on_the_heldout_figures() -> None:
    def goals(mean: float, worst: float, p95: float, killed: int = 0) -> list[bool | None]:
        summary = dataclasses.replace(_summary(mean, worst, p95, killed), kind="mixed")
        out = _goals({}, {"mixed": summary}, 80.0, None, None)
        return [g["met"] for g in out if g["goal"].startswith("mixed, held-out")]

    assert goals(1.099, 1.119, 69.0) == [True, True]
    assert goals(1.099, 1.13, 69.0) == [False, True]  # one seed beyond 1.12x
    assert goals(1.11, 1.119, 69.0) == [False, True]
    assert goals(1.099, 1.119, 81.0) == [True, False]
    assert goals(1.099, 1.119, 69.0, killed=1) == [True, False]


def test_scheduled_comparison_sets_prescaling_beside_keda_and_the_oracle() -> None:
    rows = scheduled_comparison((2,), intervals=(10.0,))
    assert [(r.policy, r.interval_s) for r in rows] == [
        ("airtasks", 10.0),
        ("airtasks, history only", 10.0),
        ("airtasks --prescale-whole-run", 10.0),
        ("airtasks --no-prescale", 10.0),
        ("keda", None),
        ("oracle", None),
    ]
    by = {r.policy: r for r in rows}
    assert (by["oracle"].mean_vs_oracle, by["oracle"].wait_p95_s) == (1.0, 0.0)
    for r in rows:  # every task of the `scheduled` kind belongs to a scheduled run
        assert r.scheduled_wait_p95_s == r.wait_p95_s
        assert r.worst_vs_oracle >= r.mean_vs_oracle
    plain = simulate(
        generate("scheduled", 2), ["airtasks"], dataclasses.replace(Settings(), interval_seconds=10)
    )
    assert by["airtasks"].mean_vs_oracle == plain.metrics["airtasks"].node_seconds_vs_oracle


def test_scheduled_comparison_table_and_goal() -> None:
    rows = [
        ComparisonRow("airtasks", 5.0, 1.3, 1.4, 64.0, 0.0, 64.0, 63.0, 0),
        ComparisonRow("airtasks --no-prescale", 10.0, 1.24, 1.29, 69.0, 31.0, 69.0, 69.0, 0),
        ComparisonRow("keda", None, 1.58, 1.68, 1452.0, 0.0, 1452.0, 1360.0, 209),
    ]
    lines = format_comparison(rows).splitlines()
    cols = [c.strip() for c in lines[0].split("  ") if c.strip()]
    assert cols == [
        "policy",
        "passes",
        "vs oracle, mean",
        "vs oracle, worst",
        "wait p95, worst",
        "scheduled wait p50, worst",
        "scheduled wait p95, worst",
        "later runs' first 5 min p95, worst",
        "killed",
    ]
    assert lines[1].split() == [
        "airtasks",
        "5",
        "s",
        "1.300x",
        "1.400x",
        "64",
        "s",
        "0",
        "s",
        "64",
        "s",
        "63",
        "s",
        "0",
    ]
    assert lines[3].split()[:2] == ["keda", "-"]
    assert scheduled_goal(rows)["met"] is None  # no airtasks row at the goal's 10 s passes
    at_10 = ComparisonRow("airtasks", 10.0, 1.2, 1.25, 20.0, 0.0, 15.0, 10.0, 0)
    assert scheduled_goal([at_10])["met"] is True
    assert scheduled_goal([dataclasses.replace(at_10, scheduled_wait_p95_s=15.1)])["met"] is False
    assert scheduled_goal([dataclasses.replace(at_10, worst_vs_oracle=1.26)])["met"] is False


def test_history_floor_rows_and_table() -> None:
    (row,) = history_floors((2,))
    assert row.seed == 2
    assert 0 < row.unservable_share <= row.first_run_share < 1
    assert row.min_p95_s > GOAL_SCHEDULED_WAIT_P95_S  # more than 5 % cannot be served in time
    assert row.warm_to_goal_vs_oracle <= row.warm_vs_oracle
    lines = format_floors([row]).splitlines()
    assert lines[0].split()[:4] == ["seed", "in", "first", "runs"]
    assert lines[1].split()[0] == "2"


def test_evaluate_with_packing_runs_the_packing_policy() -> None:
    packed = Settings(pack=True)
    got = evaluate(packed, (2,), kinds=("steady",))["steady"]
    m = simulate(generate("steady", 2), ["airtasks"], packed).metrics["airtasks"]
    plain = simulate(generate("steady", 2), ["airtasks"], Settings()).metrics["airtasks"]
    assert got.worst_vs_oracle == m.node_seconds_vs_oracle != plain.node_seconds_vs_oracle
    assert got.tasks_killed == 0


def test_heldout_command_takes_the_window_and_idle_time(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(
        sys, "argv", ["heldout", "--kinds", "steady", "--seeds", "1", "--stabilization", "0", "--idle", "0"]
    )
    heldout_main()
    out = capsys.readouterr().out
    assert "window 0 s, idle 0 s" in out
    quick = Settings(stabilization_seconds=0, idle_seconds=0)
    got = evaluate(quick, HELDOUT_SEEDS[:1], kinds=("steady",))["steady"]
    default = evaluate(Settings(), HELDOUT_SEEDS[:1], kinds=("steady",))["steady"]
    assert got.mean_vs_oracle != default.mean_vs_oracle
    assert f"{got.mean_vs_oracle:.3f}x" in out
