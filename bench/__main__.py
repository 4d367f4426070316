"""`make bench` (`python -m bench`): the figures users choose an autoscaler by, in one run.

1. The simulator table for every trace in bench/traces/ (all four policies, default settings).
   These are examples (generator seed 1, which the defaults were not tuned on).
2. The defaults on the held-out seeds (bench.heldout.HELDOUT_SEEDS, never seen by
   `python -m bench.sweep`): per trace kind, node-seconds vs the oracle bound, mean and worst seed,
   the worst seed's p95 wait and tasks killed. These are the results. Then the scheduled
   comparison: on the `scheduled` kind's held-out seeds, `airtasks` with and without pre-scaling
   for scheduled runs, at 5 s and 10 s passes, beside `keda` and the oracle. Then the box
   figure: tests/e2e/test_cluster_schedule.py run here on its own cluster in a box with a 45 s
   emulated boot (`make test` leaves it out: it holds a box for minutes), run 1 pre-scaled for
   its DAG's root tasks (nothing learned yet) against run 2 pre-scaled from run 1, from
   tests/artifacts/cluster-schedule-timeline.txt (about 10 minutes).
3. One scaling pass on real services: `bench/pass_timing.py`, `run() -> dict` with at least
   `p50_ms` and `p95_ms` (3 queues, real RabbitMQ + moto, 50 passes).
4. Reaction time on real services: `bench/reaction.py`, `run() -> dict` with at least `p50_s` and
   `p95_s` (task queued -> `set_size` called, 10 tries).
5. The scaler at scale: `bench/scale.py`, `run() -> dict` with at least `pass_p50_s`,
   `pass_p95_s`, `view_p50_s`, `describe_calls_per_pass` and its own `goals` (20 queues, 2,000
   instances in moto, 15,000 task instances behind a stand-in of Airflow's REST API).
6. The goals, each with its measured value and met / not met.

Writes bench/results/<trace>.json and .png, bench/results/bursty-burst.png (one burst, zoomed),
bench/results/heldout.json, bench/results/scale.json and bench/results/bench.json. A missing or
failing real-service part is reported and makes the exit status non-zero, after everything else
has run. Goals are printed, never asserted.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from airtasks.simulate.plot import plot
from airtasks.simulate.policies import POLICIES
from airtasks.simulate.report import Report, format_table, simulate
from airtasks.simulate.settings import Settings
from airtasks.simulate.trace import read_trace
from bench.heldout import (
    HELDOUT_SEEDS,
    ComparisonRow,
    KindSummary,
    evaluate,
    format_comparison,
    format_summaries,
    scheduled_comparison,
    scheduled_goal,
)
from tests.support.artifacts import ARTIFACTS

HERE = Path(__file__).resolve().parent
TRACES = HERE / "traces"
RESULTS = HERE / "results"
BOOT_SECONDS = 60.0
GOAL_HELDOUT_MEAN = 1.10
GOAL_HELDOUT_WORST = 1.12
GOAL_PASS_P50_MS = 300.0
GOAL_REACTION_P95_S = 10.0
BOX_TIMELINE = ARTIFACTS / "cluster-schedule-timeline.txt"
"""Written by tests/e2e/test_cluster_schedule.py: first task start minus run_after of a scheduled
DAG's run 1 (pre-scaled for its root tasks) and run 2 (pre-scaled from run 1) in the cluster in
a box."""
BOX_BOOT_DELAY = 45.0
"""What a cloud VM takes to boot, for the box figure's goal (first task within 15 s of run_after)."""


def _simulate_all(settings: Settings) -> dict[str, Report]:
    reports: dict[str, Report] = {}
    for path in sorted(TRACES.glob("*.csv")):
        started = time.perf_counter()
        report = simulate(read_trace(path), POLICIES, settings, BOOT_SECONDS)
        reports[path.stem] = report
        doc = {
            "trace": f"bench/traces/{path.name}",
            "settings": _settings_json(settings),
            **report.to_json(),
        }
        (RESULTS / f"{path.stem}.json").write_text(json.dumps(doc, indent=2) + "\n")
        plot(report, RESULTS / f"{path.stem}.png", title=path.stem)
        print(f"  simulated {path.name}: {report.tasks} tasks in {time.perf_counter() - started:.1f} s")
    if "bursty" in reports:
        plot(
            reports["bursty"], RESULTS / "bursty-burst.png", title="bursty, one burst", window=_burst(reports)
        )
    return reports


def _burst(reports: dict[str, Report]) -> tuple[float, float]:
    """The first big burst of the bursty trace, from 2 min before it to 10 min after."""
    s = reports["bursty"].outcomes["airtasks"].series
    start = next((t for t, q in zip(s.t, s.queued, strict=True) if q >= 20), 0.0)
    return max(start - 120, 0.0), start + 600


def _settings_json(settings: Settings) -> dict[str, float]:
    return {
        "interval_seconds": settings.interval_seconds,
        "stabilization_seconds": settings.stabilization_seconds,
        "idle_seconds": settings.idle_seconds,
        "boot_seconds": BOOT_SECONDS,
        "prescale": settings.prescale,
    }


def _heldout(settings: Settings) -> tuple[dict[str, KindSummary], list[ComparisonRow]]:
    started = time.perf_counter()
    summaries = evaluate(settings, HELDOUT_SEEDS, boot_seconds=BOOT_SECONDS)
    print(f"   {len(summaries) * len(HELDOUT_SEEDS)} traces in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    comparison = scheduled_comparison(HELDOUT_SEEDS, boot_seconds=BOOT_SECONDS)
    print(f"   scheduled comparison: {len(HELDOUT_SEEDS)} traces in {time.perf_counter() - started:.1f} s")
    doc = {
        "settings": _settings_json(settings),
        "seeds": list(HELDOUT_SEEDS),
        "policy": "airtasks",
        "kinds": {k: s.to_json() for k, s in summaries.items()},
        "scheduled_comparison": [r.to_json() for r in comparison],
    }
    (RESULTS / "heldout.json").write_text(json.dumps(doc, indent=2) + "\n")
    return summaries, comparison


def _side_by_side(reports: dict[str, Report]) -> str:
    """One row per policy, one column per trace: node-seconds vs oracle / p95 wait / tasks killed."""
    names = list(reports)
    head = ["policy", *names]
    body = []
    for policy in POLICIES:
        row = [policy]
        for n in names:
            m = reports[n].metrics[policy]
            row.append(f"{m.node_seconds_vs_oracle:.2f}x / {m.wait_p95_s:.0f} s / {m.tasks_killed}")
        body.append(row)
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [head, *body]]
    return "per trace: node-seconds vs oracle / wait p95 / tasks killed\n" + "\n".join(lines)


def box_figure(path: Path = BOX_TIMELINE) -> str | None:
    """The box's scheduled-run timeline the test wrote; None if it was never written."""
    try:
        return path.read_text().rstrip()
    except FileNotFoundError:
        return None


def run_box_test(boot_delay: float = BOX_BOOT_DELAY) -> tuple[str | None, str | None]:
    """Run the box's scheduled-run test on its own cluster in a box with `boot_delay` seconds of
    emulated boot; (its timeline, None) or (None, why not)."""
    BOX_TIMELINE.unlink(missing_ok=True)  # a figure from an earlier run must not pass for this one
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "e2e", "tests/e2e/test_cluster_schedule.py"]
    env = {**os.environ, "AIRTASKS_BOX_BOOT_DELAY": f"{boot_delay:g}"}
    try:
        done = subprocess.run(
            cmd, cwd=HERE.parent, env=env, capture_output=True, text=True, timeout=1800, check=False
        )
    except subprocess.TimeoutExpired:
        return None, "the box test ran past 30 minutes"
    if done.returncode != 0:
        tail = " | ".join(done.stdout.strip().splitlines()[-3:])
        return None, f"the box test failed (exit {done.returncode}): {tail}"
    return box_figure(), None


def box_section(timeline: str | None, why: str | None = None) -> str:
    """What `make bench` prints of the box figure: the timeline, or why it was not measured."""
    head = (
        f"== scheduled run in the cluster in a box ({BOX_BOOT_DELAY:g} s emulated boot, "
        f"tests/e2e/test_cluster_schedule.py): {BOX_TIMELINE.relative_to(HERE.parent)}"
    )
    if timeline is None:
        return f"{head}\n   NOT MEASURED: {why or 'the test wrote no timeline'}"
    return "\n".join([head, *(f"   {line}" if line else "" for line in timeline.splitlines())])


def _real_part(module: str, what: str) -> tuple[dict[str, Any] | None, str | None]:
    """Run bench/<module>.py's run(); (result, None) or (None, why it did not run)."""
    try:
        mod = importlib.import_module(f"bench.{module}")
    except ModuleNotFoundError as exc:
        if exc.name in (f"bench.{module}", "bench"):
            return None, f"bench/{module}.py is not on this branch (the scaler's part): {what} not measured"
        traceback.print_exc()
        return None, f"bench/{module}.py cannot be imported ({exc}): {what} not measured"
    except Exception as exc:
        traceback.print_exc()
        return (
            None,
            f"bench/{module}.py cannot be imported ({type(exc).__name__}: {exc}): {what} not measured",
        )
    entry: Callable[[], dict[str, Any]] | None = getattr(mod, "run", None) or getattr(mod, "main", None)
    if entry is None:
        return None, f"bench/{module}.py has no run() -> dict: {what} not measured"
    try:
        result = entry()
    except Exception as exc:
        traceback.print_exc()
        return None, f"bench/{module}.py failed ({type(exc).__name__}: {exc}): {what} not measured"
    if not isinstance(result, dict):
        return None, f"bench/{module}.py run() returned {type(result).__name__}, not a dict"
    return result, None


def _goals(
    reports: dict[str, Report],
    heldout: dict[str, KindSummary],
    wait_bound_s: float,
    pass_timing: dict[str, Any] | None,
    reaction: dict[str, Any] | None,
) -> list[dict[str, Any]]:
    goals: list[dict[str, Any]] = []

    def add(goal: str, measured: str, met: bool | None) -> None:
        goals.append({"goal": goal, "measured": measured, "met": met})

    for kind, h in heldout.items():
        add(
            f"{kind}, held-out seeds: airtasks within {GOAL_HELDOUT_MEAN}x oracle on average, "
            f"{GOAL_HELDOUT_WORST}x at worst",
            f"{h.mean_vs_oracle:.3f}x, worst {h.worst_vs_oracle:.3f}x",
            h.mean_vs_oracle <= GOAL_HELDOUT_MEAN and h.worst_vs_oracle <= GOAL_HELDOUT_WORST,
        )
        add(
            f"{kind}, held-out seeds: p95 wait within boot + 2 intervals ({wait_bound_s:g} s), 0 killed",
            f"{h.wait_p95_s:.1f} s, {h.tasks_killed} killed",
            h.wait_p95_s <= wait_bound_s and h.tasks_killed == 0,
        )
    b = reports.get("bursty")
    if b is None:
        add("bursty trace simulated", "bench/traces/bursty.csv missing", None)
    else:
        a, seed, keda = b.metrics["airtasks"], b.metrics["seed"], b.metrics["keda"]
        add(
            "bursty: fewer node-seconds than seed and keda",
            f"{a.node_seconds:.0f} vs seed {seed.node_seconds:.0f}, keda {keda.node_seconds:.0f}",
            a.node_seconds < seed.node_seconds and a.node_seconds < keda.node_seconds,
        )
        add(
            "bursty: p95 wait no worse than seed and keda",
            f"{a.wait_p95_s:.1f} s vs seed {seed.wait_p95_s:.1f} s, keda {keda.wait_p95_s:.1f} s",
            a.wait_p95_s <= seed.wait_p95_s and a.wait_p95_s <= keda.wait_p95_s,
        )
        add("bursty: 0 tasks killed by airtasks", str(a.tasks_killed), a.tasks_killed == 0)
    if pass_timing is not None and "p50_ms" in pass_timing:
        p50 = float(pass_timing["p50_ms"])
        add(
            f"one pass (3 queues) under {GOAL_PASS_P50_MS:.0f} ms p50",
            f"{p50:.0f} ms",
            p50 < GOAL_PASS_P50_MS,
        )
    else:
        add(f"one pass (3 queues) under {GOAL_PASS_P50_MS:.0f} ms p50", "not measured", None)
    if reaction is not None and "p95_s" in reaction:
        p95 = float(reaction["p95_s"])
        add(f"reaction under {GOAL_REACTION_P95_S:.0f} s p95", f"{p95:.1f} s", p95 < GOAL_REACTION_P95_S)
    else:
        add(f"reaction under {GOAL_REACTION_P95_S:.0f} s p95", "not measured", None)
    return goals


def _fmt_real(result: dict[str, Any] | None, why: str | None, keys: tuple[str, str], unit: str) -> str:
    if result is None:
        return f"NOT MEASURED: {why}"
    p50, p95 = (result.get(k) for k in keys)
    extra = {k: v for k, v in result.items() if k not in keys}
    return f"p50 {p50} {unit}, p95 {p95} {unit}" + (f"  {json.dumps(extra, default=str)}" if extra else "")


def main() -> int:
    RESULTS.mkdir(parents=True, exist_ok=True)
    settings = Settings()
    print(
        "== simulator (airtasks = the scaler's decide(); seed, keda, oracle as in airtasks.simulate.policies)"
    )
    print(
        f"   boot {BOOT_SECONDS:g} s; airtasks every {settings.interval_seconds:g} s, window "
        f"{settings.stabilization_seconds:g} s, idle {settings.idle_seconds:g} s; "
        "seed every 60 s; keda every 5 s"
    )
    reports = _simulate_all(settings)
    print()
    print(_side_by_side(reports))
    for name, report in reports.items():
        print(f"\n-- {name} ({report.tasks} tasks)")
        print(format_table(report))

    print(
        f"\n== held-out seeds {HELDOUT_SEEDS[0]}..{HELDOUT_SEEDS[-1]} of every trace kind (never tuned on): "
        "airtasks node-seconds vs oracle, p95 wait"
    )
    heldout, comparison = _heldout(settings)
    print(format_summaries(heldout))
    print(
        "\n== scheduled comparison, held-out seeds of `scheduled`: airtasks with and without "
        "pre-scaling for scheduled runs (worst seed's p95 waits)"
    )
    print(format_comparison(comparison))
    box, why_box = run_box_test()
    print("\n" + box_section(box, why_box))

    print("\n== one scaling pass, 3 queues, real RabbitMQ + moto (50 passes)")
    pass_timing, why_pass = _real_part("pass_timing", "pass time")
    print("   " + _fmt_real(pass_timing, why_pass, ("p50_ms", "p95_ms"), "ms"))
    print("\n== reaction time on real services: task queued -> set_size (10 tries)")
    reaction, why_reaction = _real_part("reaction", "reaction time")
    print("   " + _fmt_real(reaction, why_reaction, ("p50_s", "p95_s"), "s"))
    print("\n== at scale: 20 queues, 2,000 instances (moto), 15,000 task instances (Airflow REST stand-in)")
    at_scale, why_scale = _real_part("scale", "figures at scale")
    if at_scale is None:
        print(f"   NOT MEASURED: {why_scale}")
    else:
        print(
            f"   pass p50 {at_scale['pass_p50_s']} s, p95 {at_scale['pass_p95_s']} s; "
            f"{at_scale['describe_calls_per_pass']} describe calls a pass; "
            f"cluster page API p50 {at_scale['view_p50_s']} s (details: bench/results/scale.json)"
        )
        (RESULTS / "scale.json").write_text(json.dumps(at_scale, indent=2) + "\n")

    goals = _goals(reports, heldout, BOOT_SECONDS + 2 * settings.interval_seconds, pass_timing, reaction)
    goals.append(scheduled_goal(comparison))
    if at_scale is not None:
        goals.extend(at_scale.get("goals", []))
    else:
        goals.append(
            {"goal": "the scaler at scale (bench/scale.py)", "measured": "not measured", "met": None}
        )
    print("\n== goals")
    for g in goals:
        status = "met" if g["met"] else ("NOT MEASURED" if g["met"] is None else "NOT MET")
        print(f"   [{status}] {g['goal']}: {g['measured']}")
    summary = {
        "settings": _settings_json(settings),
        "traces": {n: r.to_json() for n, r in reports.items()},
        "heldout": {k: h.to_json() for k, h in heldout.items()},
        "scheduled_comparison": [r.to_json() for r in comparison],
        "cluster_schedule_timeline": box,
        "pass_timing": pass_timing,
        "reaction": reaction,
        "scale": at_scale,
        "goals": goals,
    }
    (RESULTS / "bench.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    print(f"\nwrote {RESULTS.relative_to(HERE.parent)}/*.json and *.png")
    missing = [w for w in (why_pass, why_reaction, why_scale) if w]
    if missing:
        print("\nbench incomplete:", file=sys.stderr)
        for w in missing:
            print(f"  - {w}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
