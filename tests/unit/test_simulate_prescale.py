"""The simulator feeds decide() scheduled runs as Airflow would show them: each DAG's next run
only, with what its earlier runs needed, learnt from finished tasks only."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import airtasks.decide
from airtasks.cli import cli
from airtasks.decide import DEFAULT_BOOT_SECONDS, Decision, DueRun, Observation, QueueMemory, QueuePolicy
from airtasks.simulate.engine import percentile
from airtasks.simulate.policies import Schedules, periodic
from airtasks.simulate.report import simulate
from airtasks.simulate.settings import QueueSettings, Settings
from airtasks.simulate.trace import Task, dag_roots, write_trace

# No broker lag, instant removal. The window outlasts the gap between a run's time (when Airflow
# shows the next one instead) and its tasks being queued, so the nodes raised for it stay.
EAGER = Settings(
    interval_seconds=10,
    stabilization_seconds=30,
    idle_seconds=0,
    rabbitmq=False,
    removal_seconds=0,
    queues={"default": QueueSettings(), "long": QueueSettings()},
)
PERIOD = 600.0


def cron(runs: int, width: int = 8, duration: float = 60.0, delay: float = 10.0) -> list[Task]:
    """`etl` every 10 minutes from t=600: `width` tasks submitted `delay` s after each run's time."""
    return [
        Task(r * PERIOD + delay, "default", duration, key="etl.load", dag="etl", scheduled_s=r * PERIOD)
        for r in range(1, runs + 1)
        for _ in range(width)
    ]


HISTORY_ONLY = dataclasses.replace(EAGER, prescale_roots=False)
"""Pre-scaling from the DAG's earlier runs alone, without its root tasks."""


def test_pre_scaling_cuts_the_scheduled_tasks_wait() -> None:
    tasks = cron(25)  # the first run (8 of 200 tasks) has no history and waits a boot
    on = simulate(tasks, ["airtasks"], HISTORY_ONLY, boot_seconds=60).outcomes["airtasks"]
    off = simulate(tasks, ["airtasks"], dataclasses.replace(EAGER, prescale=False), boot_seconds=60)
    assert percentile(off.outcomes["airtasks"].waits, 95) == 60
    assert percentile(on.waits, 95) == 0
    assert on.waits[:8] == [60.0] * 8
    assert max(on.waits[8:]) == 0
    # Two nodes are raised one lead (boot 60 s + margin 15 s, on 10 s passes) before each later run.
    assert on.node_seconds <= off.outcomes["airtasks"].node_seconds + 24 * 2 * (15 + 10 + 10)


def due_runs_seen(monkeypatch: pytest.MonkeyPatch) -> list[tuple[float, tuple[DueRun, ...]]]:
    """Every pass's time and the due runs the simulator gave decide(), filled as it runs."""
    seen: list[tuple[float, tuple[DueRun, ...]]] = []
    real = airtasks.decide.decide

    def spy(policy: QueuePolicy, obs: Observation, memory: QueueMemory, now: float) -> Decision:
        seen.append((now, tuple(obs.due)))
        return real(policy, obs, memory, now)

    monkeypatch.setattr(airtasks.decide, "decide", spy)
    return seen


def test_a_dags_first_run_has_no_history_and_is_not_pre_scaled(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = due_runs_seen(monkeypatch)
    out = simulate(cron(2), ["airtasks"], HISTORY_ONLY, boot_seconds=60).outcomes["airtasks"]
    assert out.waits[:8] == [60.0] * 8
    # No due run until the first run's tasks have finished (610 + 60 s boot + 60 s): a running
    # task's duration is not known yet.
    assert all(due == () for now, due in seen if now < 730)
    # Then the second run is due, with what the first needed.
    assert (730.0, (DueRun("etl", 2 * PERIOD, 8),)) in seen


def test_a_dags_root_tasks_pre_scale_its_first_run(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = due_runs_seen(monkeypatch)
    tasks = cron(25)
    out = simulate(tasks, ["airtasks"], EAGER, boot_seconds=60).outcomes["airtasks"]
    assert max(out.waits) == 0  # the first run's 8 roots too: its nodes were up when it came
    # Before any task of the DAG finished, its first run is due with its roots only.
    assert (0.0, (DueRun("etl", PERIOD, 0, roots=8, first_run=True),)) in seen
    # The cost: a group that is only ever pre-scaled never sees a boot (its nodes wait for their
    # run), so it leads by the default boot, 30 s more than the 60 s that the first run's waiting
    # tasks taught it without the roots: per run, two nodes for about that long.
    off = simulate(tasks, ["airtasks"], HISTORY_ONLY, boot_seconds=60).outcomes["airtasks"]
    assert off.node_seconds < out.node_seconds <= off.node_seconds + 25 * 2 * (DEFAULT_BOOT_SECONDS - 60 + 10)


def test_a_dags_roots_are_its_first_runs_tasks_queued_at_its_start() -> None:
    tasks = [
        Task(5, "default", 30, dag="etl", scheduled_s=0),
        Task(5.5, "long", 30, dag="etl", scheduled_s=0),
        Task(40, "default", 30, dag="etl", scheduled_s=0),  # after the first stage: not a root
        Task(105, "default", 30, dag="etl", scheduled_s=100),  # a later run's width is not told
        Task(105, "default", 30, dag="etl", scheduled_s=100),
        Task(105, "default", 30, dag="etl", scheduled_s=100),
        Task(1, "default", 30),
    ]
    assert dag_roots(tasks) == {"etl": {"default": 1, "long": 1}}
    s = Schedules(tasks, roots=True)
    assert s.due(tasks, [], 50, "long") == [DueRun("etl", 100, 0, roots=1, first_run=True)]
    # Once the first run is learnt, the next run needs the larger of its history and its roots.
    assert s.due(tasks, [0, 1, 2], 90, "default") == [DueRun("etl", 100, 1, roots=1)]
    assert Schedules(tasks).due(tasks, [], 50, "long") == []  # without the roots: nothing to go on


def test_only_finished_tasks_teach_a_run_s_need() -> None:
    tasks = [
        Task(2, "default", 500, dag="etl", scheduled_s=0),
        Task(2, "default", 100, dag="etl", scheduled_s=0),
        Task(302, "default", 50, dag="etl", scheduled_s=300),
    ]
    s = Schedules(tasks)
    assert s.due(tasks, [], 200, "default") == []  # the first run's tasks still run: no peeking
    assert s.due(tasks, [1], 250, "default") == [DueRun("etl", 300, 1)]
    assert s.due(tasks, [1, 0], 502, "default") == []  # no run after 300
    # The result for a pass is cached: the same instant reads the same.
    assert s.due(tasks, [1, 0], 502, "default") == []


def test_only_the_next_run_counts_and_each_queue_gets_its_own_slots() -> None:
    tasks = [
        Task(at + 1, queue, 30, dag="etl", scheduled_s=at)
        for at in (0.0, 100.0, 200.0, 300.0)
        for queue in ("default", "default", "long")
    ]
    s = Schedules(tasks)
    finished = [i for i, t in enumerate(tasks) if t.scheduled_s == 0]
    assert s.due(tasks, finished, 50, "default") == [DueRun("etl", 100, 2)]
    assert s.due(tasks, finished, 50, "long") == [DueRun("etl", 100, 1)]
    # At a run's own time Airflow already shows the one after it; the run itself is not earlier yet.
    assert s.due(tasks, finished, 100, "default") == [DueRun("etl", 200, 2)]
    assert s.due(tasks, finished, 300, "default") == []  # the last run is not followed by any


def test_tasks_without_a_dag_or_run_time_are_never_due() -> None:
    tasks = [Task(1, "default", 10), Task(1, "default", 10, dag="adhoc"), Task(61, "default", 10)]
    s = Schedules(tasks)
    assert s.due(tasks, [0, 1], 30, "default") == []


def test_only_evenly_spaced_run_times_make_a_schedule() -> None:
    assert periodic([0, 600, 1200, 1800])
    assert periodic([1800.3, 0, 1200, 600.4, 600.4])  # within 1 s of the first gap; duplicates are one run
    assert not periodic([0, 600, 1200, 1802])
    assert not periodic([0, 600, 1500])
    assert not periodic([600, 600])  # one run: no period
    assert not periodic([])


def test_an_unevenly_spaced_dag_is_never_pre_scaled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs at random times (triggered, like `mixed`'s): Airflow shows no next run, so none is due
    however much history there is, and every run waits a boot as without pre-scaling."""
    seen: list[tuple[DueRun, ...]] = []
    real = airtasks.decide.decide

    def spy(policy: QueuePolicy, obs: Observation, memory: QueueMemory, now: float) -> Decision:
        seen.append(tuple(obs.due))
        return real(policy, obs, memory, now)

    monkeypatch.setattr(airtasks.decide, "decide", spy)
    times = [600.0 + r * PERIOD + (r % 3) * 47.0 for r in range(12)]
    tasks = [
        Task(at + 10, "default", 60, key="ingest.load", dag="ingest", scheduled_s=at)
        for at in times
        for _ in range(8)
    ]
    assert not periodic(times)
    on = simulate(tasks, ["airtasks"], EAGER, boot_seconds=60).outcomes["airtasks"]
    assert seen
    assert all(due == () for due in seen)
    off = simulate(tasks, ["airtasks"], dataclasses.replace(EAGER, prescale=False), boot_seconds=60)
    assert on.waits == off.outcomes["airtasks"].waits
    assert min(on.waits) >= 60
    s = Schedules(tasks)
    assert s.due(tasks, list(range(len(tasks) // 2)), times[6] - 30, "default") == []


def test_cli_no_prescale_turns_it_off(tmp_path: Path) -> None:
    trace = tmp_path / "cron.csv"
    with trace.open("w") as fh:
        write_trace(cron(25), fh)
    runner = CliRunner()
    base = ["simulate", "--trace", str(trace), "--policy", "airtasks", "--json"]
    on = json.loads(runner.invoke(cli, base).output)
    off = json.loads(runner.invoke(cli, [*base, "--no-prescale"]).output)
    assert (on["settings"]["prescale"], off["settings"]["prescale"]) == (True, False)
    assert on["policies"]["airtasks"]["wait_p95_s"] < off["policies"]["airtasks"]["wait_p95_s"]
    table = runner.invoke(cli, ["simulate", "--trace", str(trace), "--no-prescale"]).output
    assert "pre-scaling off" in table


def test_whole_run_pre_scaling_serves_a_later_stage() -> None:
    # A DAG every 30 min: 4 tasks at its time, then 8 tasks 10 minutes later.
    tasks = []
    for k in range(4):
        run_at = 600.0 + 1800 * k
        tasks += [Task(run_at + 2, "default", 120, "a", "etl", run_at) for _ in range(4)]
        tasks += [Task(run_at + 600, "default", 120, "b", "etl", run_at) for _ in range(8)]
    tasks.sort(key=lambda t: t.submit_s)
    first = simulate(tasks, ["airtasks"], EAGER, boot_seconds=60)
    whole = simulate(
        tasks, ["airtasks"], dataclasses.replace(EAGER, prescale_whole_run=True), boot_seconds=60
    )
    later = [i for i, t in enumerate(tasks) if t.key == "b" and t.scheduled_s > 600]
    assert max(first.outcomes["airtasks"].waits[i] for i in later) >= 60
    assert max(whole.outcomes["airtasks"].waits[i] for i in later) <= 5
    assert whole.outcomes["airtasks"].tasks_killed == 0
