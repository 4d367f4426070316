"""`python -m bench.decompose`: the engine's record and the split of node time it feeds."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
from bench.decompose import CATEGORIES, Parts, decompose, history_parts, main, node_parts

from airtasks.simulate.engine import History, Interruptions, NodeLife, Policy, TaskRun, run
from airtasks.simulate.policies import AirtasksPolicy, SeedPolicy, oracle, oracle_queues
from airtasks.simulate.report import simulate
from airtasks.simulate.settings import QueueSettings, Settings
from airtasks.simulate.trace import Task, generate

# Scale in at the first pass after the last task, no broker lag: the figures are then exact.
EAGER = Settings(
    interval_seconds=10, stabilization_seconds=0, idle_seconds=0, rabbitmq=False, removal_seconds=5
)
TWO_QUEUES = dataclasses.replace(
    EAGER,
    queues={"default": QueueSettings(slots_per_node=2), "long": QueueSettings(slots_per_node=4)},
)
TASKS = [
    Task(0, "default", 120),
    Task(0, "default", 60),
    Task(0, "default", 200),
    Task(400, "default", 30),
    Task(5, "long", 100),
]


def _by_node(history: History) -> dict[str, list[TaskRun]]:
    on: dict[str, list[TaskRun]] = {}
    for r in history.runs:
        on.setdefault(r.node, []).append(r)
    return on


def test_recording_changes_nothing_and_is_off_by_default() -> None:
    settings = Settings()
    tasks = generate("steady", 2)
    plain = run(tasks, AirtasksPolicy(settings), settings, 60)
    recorded = run(tasks, AirtasksPolicy(settings), settings, 60, record=True)
    assert plain.history is None
    assert recorded.history is not None
    assert dataclasses.replace(recorded, history=None) == plain


def test_the_categories_add_up_to_the_node_seconds_node_by_node() -> None:
    out = run(TASKS, AirtasksPolicy(TWO_QUEUES), TWO_QUEUES, 60, record=True)
    assert out.history is not None
    on = _by_node(out.history)
    slots = {"default": 2, "long": 4}
    for node in out.history.nodes:
        parts = node_parts(node, on.get(node.id, []), slots[node.queue])
        assert parts.total == pytest.approx(node.gone_at - node.launched_at)
    by_queue = history_parts(out.history, slots)
    assert sum(p.total for p in by_queue.values()) == pytest.approx(out.node_seconds)
    assert sum(p.nodes for p in by_queue.values()) == len(out.history.nodes)
    # every task ran once, to the end: the work is the run time over the slots
    assert by_queue["default"].work == pytest.approx((120 + 60 + 200 + 30) / 2)
    assert by_queue["long"].work == pytest.approx(100 / 4)


def test_a_nodes_tail_is_its_removal_minus_its_last_tasks_end() -> None:
    out = run(TASKS, AirtasksPolicy(TWO_QUEUES), TWO_QUEUES, 60, record=True)
    assert out.history is not None
    on = _by_node(out.history)
    (long_node,) = [n for n in out.history.nodes if n.queue == "long"]
    # launched at the pass at 10 (the task came at 5), ready at 70, runs 70-170; the pass at 170
    # sees it idle and drains it, gone 5 s later
    assert (long_node.launched_at, long_node.ready_at, long_node.gone_at) == (10, 70, 175)
    (only,) = on[long_node.id]
    assert (only.start, only.end, only.completed) == (70, 170, True)
    parts = node_parts(long_node, on[long_node.id], 4)
    assert parts.tail == long_node.gone_at - only.end == 5
    assert (parts.boot, parts.pre, parts.work, parts.partial) == (60, 0, 25, 75)
    for node in out.history.nodes:
        runs = on.get(node.id, [])
        if runs:
            tail = node_parts(node, runs, 2 if node.queue == "default" else 4).tail
            assert tail == node.gone_at - max(r.end for r in runs)


def test_partly_empty_time_splits_at_the_cordon_changes() -> None:
    node = NodeLife("n", "default", 0, 60, 300, ((80, True), (90, False)))
    runs = [TaskRun(0, "n", 60, 160, True), TaskRun(1, "n", 60, 100, True), TaskRun(2, "n", 200, 260, True)]
    p = node_parts(node, runs, 4)
    assert (p.boot, p.pre, p.gaps, p.tail, p.never_used) == (60, 0, 40, 40, 0)
    # 60-100 two of four slots busy (80-90 cordoned), 100-160 and 200-260 one
    assert p.work == pytest.approx(40 * 2 / 4 + 120 / 4)
    assert p.partial_cordoned == pytest.approx(10 * 2 / 4)
    assert p.partial == pytest.approx(30 * 2 / 4 + 120 * 3 / 4)
    assert p.total == pytest.approx(300)
    idle = node_parts(NodeLife("m", "default", 0, 60, 100, ()), [], 4)
    assert (idle.nodes, idle.never_used_nodes, idle.boot, idle.never_used) == (1, 1, 60, 40)
    early = node_parts(NodeLife("x", "default", 0, None, 30, ()), [], 4)
    assert (early.boot, early.never_used) == (30, 0)  # gone before it joined


@pytest.mark.parametrize(
    ("policy", "spot"),
    [
        pytest.param(AirtasksPolicy, Interruptions(2.0, 30, seed=3), id="restarted-before-reclaim"),
        pytest.param(SeedPolicy, None, id="killed-by-terminate"),
    ],
)
def test_cut_runs_end_when_cut_and_still_add_up(
    policy: Callable[[Settings], Policy], spot: Interruptions | None
) -> None:
    settings = Settings()
    tasks = generate("steady", 2)
    out = run(tasks, policy(settings), settings, 60, spot, record=True)
    assert out.history is not None
    cut = [r for r in out.history.runs if not r.completed]
    assert cut
    assert len(cut) == out.tasks_killed + out.restarted  # runs lost at a reclaim are among the killed
    assert all(r.start <= r.end < r.start + tasks[r.task].duration_s for r in cut)
    assert sum(r.completed for r in out.history.runs) == len(tasks)
    slots = {q: settings.queue(q).slots_per_node for q in {t.queue for t in tasks}}
    parts = history_parts(out.history, slots)
    assert sum(p.total for p in parts.values()) == pytest.approx(out.node_seconds)


def test_the_oracle_parts_add_up_to_the_oracle_node_time() -> None:
    got = oracle_queues(TASKS, TWO_QUEUES, 60)
    assert sum(q.node_seconds for q in got.values()) == pytest.approx(
        oracle(TASKS, TWO_QUEUES, 60).node_seconds
    )
    d = got["default"]
    # running: 3 for 0-60, 2 for 60-120, 1 for 120-200, 0, 1 for 400-430; two slots a node
    assert d.work == pytest.approx(410 / 2)
    assert d.rounding == pytest.approx(60 * 0.5 + 80 * 0.5 + 30 * 0.5)
    # level 1: -60..200 and, 200 s later (more than a boot), 340..430; level 2: -60..60
    assert d.node_seconds == pytest.approx(260 + 90 + 120)
    assert d.boot_and_gaps == pytest.approx(d.node_seconds - d.work - d.rounding)
    assert d.boot_and_gaps == pytest.approx(3 * 60)  # three boots, no gap kept
    long = got["long"]
    assert (long.node_seconds, long.work, long.rounding) == (160, 25, 75)
    parts = decompose(TASKS, TWO_QUEUES, 60)
    assert parts["default"].oracle_total == pytest.approx(d.node_seconds)
    assert sum(p.oracle_total for p in parts.values()) == pytest.approx(
        oracle(TASKS, TWO_QUEUES, 60).node_seconds
    )


def test_parts_add_field_by_field() -> None:
    a = Parts(nodes=1, boot=60, work=10, oracle_work=10)
    b = Parts(nodes=2, never_used_nodes=1, tail=5, oracle_rounding=3)
    s = a + b
    assert (s.nodes, s.never_used_nodes, s.boot, s.tail, s.work) == (3, 1, 60, 5, 10)
    assert (s.total, s.oracle_total) == (75, 13)
    assert set(CATEGORIES) < {f.name for f in dataclasses.fields(Parts)}


def test_command_prints_each_queue_and_the_ratio_simulate_reports(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--kinds", "steady", "--seeds", "2"])
    out = capsys.readouterr().out
    ratio = (
        simulate(generate("steady", 2), ["airtasks"], Settings()).metrics["airtasks"].node_seconds_vs_oracle
    )
    assert f"== steady: airtasks/oracle {ratio:.3f}" in out
    assert "  queue default: nodes " in out
    assert "partial_cordoned=" in out


def test_command_takes_the_window_and_idle_time(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--kinds", "steady", "--seeds", "2", "--stabilization", "0", "--idle", "0"])
    out = capsys.readouterr().out
    quick = Settings(stabilization_seconds=0, idle_seconds=0)
    ratio = simulate(generate("steady", 2), ["airtasks"], quick).metrics["airtasks"].node_seconds_vs_oracle
    default = (
        simulate(generate("steady", 2), ["airtasks"], Settings()).metrics["airtasks"].node_seconds_vs_oracle
    )
    assert "window 0 s, idle 0 s" in out
    assert f"== steady: airtasks/oracle {ratio:.3f}" in out
    assert f"{ratio:.3f}" != f"{default:.3f}"


def test_command_refuses_an_unknown_kind() -> None:
    with pytest.raises(SystemExit):
        main(["--kinds", "nope"])
