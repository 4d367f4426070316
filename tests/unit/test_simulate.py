"""The simulator on tiny traces whose answers are known by hand, plus its determinism and its CLI."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import airtasks.decide
from airtasks.cli import cli
from airtasks.decide import Decision, Observation, QueueMemory, QueuePolicy
from airtasks.simulate import policies
from airtasks.simulate.engine import Cluster, Interruptions, percentile, run
from airtasks.simulate.policies import oracle
from airtasks.simulate.report import simulate
from airtasks.simulate.settings import QueueSettings, Settings, settings_from
from airtasks.simulate.trace import KINDS, Task, TraceError, generate, parse_trace, write_trace

REPO = Path(__file__).resolve().parents[2]
# Scale in as soon as possible, no broker lag, instant removal: the figures below are then exact.
EAGER = Settings(
    interval_seconds=10, stabilization_seconds=0, idle_seconds=0, rabbitmq=False, removal_seconds=0
)


def one_queue(slots: int = 4, **kw: object) -> Settings:
    return dataclasses.replace(EAGER, queues={"default": QueueSettings(slots_per_node=slots)}, **kw)


# ---------------------------------------------------------------- hand-known answers


def test_one_task_waits_one_boot_and_pays_boot_plus_duration() -> None:
    r = simulate([Task(0, "default", 120)], ["airtasks", "oracle"], EAGER, boot_seconds=60)
    a = r.metrics["airtasks"]
    assert (a.wait_p50_s, a.wait_p95_s) == (60, 60)
    assert a.node_seconds == 60 + 120
    assert (a.tasks_killed, a.scale_actions) == (0, 2)  # one launch, one removal
    o = r.metrics["oracle"]
    assert (o.node_seconds, o.wait_p95_s) == (60 + 120, 0)
    assert a.node_seconds_vs_oracle == 1.0


def test_broker_lag_delays_scale_in_by_one_pass() -> None:
    """The RabbitMQ count is 5 s old: at t=180 it still shows the task, so the node goes at 190."""
    r = simulate([Task(0, "default", 120)], ["airtasks"], dataclasses.replace(EAGER, rabbitmq=True))
    assert r.metrics["airtasks"].node_seconds == 190


def test_drain_and_terminate_is_paid_for() -> None:
    r = simulate([Task(0, "default", 120)], ["airtasks"], dataclasses.replace(EAGER, removal_seconds=5))
    assert r.metrics["airtasks"].node_seconds == 60 + 120 + 5


def test_keda_keeps_the_node_for_its_stabilisation_window() -> None:
    """Last recommendation of 1 at t=175 (5 s polls); it leaves the 300 s window at t=475."""
    r = simulate([Task(0, "default", 120)], ["keda"], EAGER)
    k = r.metrics["keda"]
    assert (k.node_seconds, k.wait_p95_s, k.tasks_killed) == (475, 60, 0)


class Scripted:
    """A test policy: at given pass times, run a function on the cluster."""

    name = "scripted"
    interval_seconds = 60.0

    def __init__(self, script: dict[float, str]) -> None:
        self.script = script

    def on_pass(self, cluster: Cluster, queue: str) -> None:
        step = self.script.get(cluster.now)
        if step == "launch":
            cluster.launch(queue)
        elif step == "replace":  # terminate the (busy) node, start a fresh one
            for node in cluster.group(queue):
                cluster.terminate(node)
            cluster.launch(queue)
        elif step == "retire":
            for node in cluster.group(queue):
                cluster.retire(node, grace_seconds=100)
        elif step == "stop" or (cluster.now > 0 and not cluster.remaining):
            for node in cluster.group(queue):
                cluster.terminate(node)


def test_removing_a_busy_node_kills_its_task_and_requeues_it() -> None:
    # launch at 0, joins 60, task runs 60..120, killed at 120; fresh node joins 180, runs 180..480.
    out = run([Task(0, "default", 300)], Scripted({0: "launch", 120: "replace"}), one_queue(), 60)
    assert out.tasks_killed == 1
    assert out.waits == [180]  # submission to the start of the run that finished
    assert out.node_seconds == 120 + (480 - 120)
    assert out.end_s == 480


def test_retired_node_finishes_within_grace_or_is_killed() -> None:
    # joins 60, task 60..360; retired at 120 with 100 s grace -> killed at 220, never rescheduled
    # until the script launches again at 240: joins 300, runs 300..600.
    script = {0: "launch", 120: "retire", 240: "launch"}
    out = run([Task(0, "default", 300)], Scripted(script), one_queue(), 60)
    assert out.tasks_killed == 1
    assert out.node_seconds == 220 + (600 - 240)


def test_seed_resizes_onto_busy_nodes_and_kills() -> None:
    """Two nodes each keep one long task; 2 unacked on 4-slot nodes -> seed wants 1 and kills one."""
    tasks = (
        [Task(0, "default", 1000)] + [Task(0, "default", 30) for _ in range(3)] + [Task(0, "default", 1000)]
    )
    r = simulate(tasks, ["seed", "airtasks"], one_queue())
    assert r.metrics["seed"].tasks_killed == 1
    assert r.metrics["airtasks"].tasks_killed == 0


@pytest.mark.parametrize(
    ("tasks", "slots", "expected"),
    [
        # slots 1: level 1 busy 0..150 (+boot), level 2 busy 50..100 (+boot)
        ([(0, 100), (50, 100)], 1, (150 + 60) + (50 + 60)),
        # a 20 s gap is cheaper to bridge than a boot
        ([(0, 10), (30, 10)], 1, 10 + 20 + 10 + 60),
        # a 190 s gap costs a second boot instead
        ([(0, 10), (200, 10)], 1, 10 + 60 + 10 + 60),
        # four tasks pack onto one 4-slot node, a fifth needs a second node
        ([(0, 100)] * 4, 4, 100 + 60),
        ([(0, 100)] * 5, 4, 2 * (100 + 60)),
        # back to back on one slot: the node never stops
        ([(0, 100), (100, 100)], 1, 200 + 60),
    ],
)
def test_oracle_bound_on_known_cases(tasks: list[tuple[float, float]], slots: int, expected: float) -> None:
    trace = [Task(s, "default", d) for s, d in tasks]
    out = oracle(trace, one_queue(slots), boot_seconds=60)
    assert out.node_seconds == pytest.approx(expected)
    assert set(out.waits) == {0.0}


def test_oracle_keeps_min_size_for_the_whole_trace() -> None:
    settings = dataclasses.replace(EAGER, queues={"default": QueueSettings(min_size=1, slots_per_node=1)})
    out = oracle([Task(100, "default", 50), Task(100, "default", 50)], settings, boot_seconds=60)
    assert out.node_seconds == 150 + (50 + 60)


def test_every_task_runs_once_to_completion_and_nodes_cover_the_work() -> None:
    tasks = generate("bursty", 3)[:300]
    for name in ("airtasks", "seed", "keda"):
        out = run(tasks, policies.make_policy(name, Settings()), Settings(), 60)
        assert len(out.waits) == len(tasks)
        assert min(out.waits) >= 0
        busy = sum(t.duration_s for t in tasks) / 4
        assert out.node_seconds >= busy, name


# ---------------------------------------------------------------- the scaler's own policy


def test_airtasks_policy_calls_the_scalers_decide(monkeypatch: pytest.MonkeyPatch) -> None:
    real = airtasks.decide.decide
    assert policies.decide_mod is airtasks.decide
    calls: list[float] = []

    def spy(policy: QueuePolicy, obs: Observation, memory: QueueMemory, now: float) -> Decision:
        calls.append(now)
        return real(policy, obs, memory, now)

    trace = [Task(0, "default", 120)]
    baseline = simulate(trace, ["airtasks"], EAGER).metrics["airtasks"]
    monkeypatch.setattr(airtasks.decide, "decide", spy)
    assert simulate(trace, ["airtasks"], EAGER).metrics["airtasks"] == baseline
    assert calls == [10.0 * i for i in range(19)]  # every pass, 0..180 s

    def one_spare(policy: QueuePolicy, obs: Observation, memory: QueueMemory, now: float) -> Decision:
        d = real(policy, obs, memory, now)
        return dataclasses.replace(d, desired=max(d.desired, 1 if now < 300 else 0))

    monkeypatch.setattr(airtasks.decide, "decide", one_spare)
    changed = simulate(trace, ["airtasks"], EAGER).metrics["airtasks"]
    assert changed.node_seconds > baseline.node_seconds


def test_settings_default_to_the_scalers_policy_defaults() -> None:
    s, p = Settings(), QueuePolicy(min_size=0, max_size=1, slots_per_node=1)
    assert (s.stabilization_seconds, s.idle_seconds) == (p.stabilization_seconds, p.idle_seconds)


# ---------------------------------------------------------------- determinism, traces


@pytest.mark.parametrize("kind", KINDS)
def test_generators_are_deterministic_for_a_seed(kind: str) -> None:
    assert generate(kind, 7) == generate(kind, 7)
    assert generate(kind, 7) != generate(kind, 8)


def test_simulation_is_deterministic() -> None:
    tasks = generate("bursty", 5)[:400]
    assert simulate(tasks, [], Settings()).metrics == simulate(tasks, [], Settings()).metrics


@pytest.mark.parametrize("kind", KINDS)
def test_shipped_traces_are_the_generators_seed_1(kind: str) -> None:
    out = io.StringIO()
    write_trace(generate(kind, 1), out)
    path = REPO / "bench" / "traces" / f"{kind}.csv"
    assert path.read_text() == out.getvalue(), (
        f"regenerate: airtasks simulate --generate {kind} --seed 1 --out {path}"
    )
    assert path.stat().st_size < 200_000


@pytest.mark.parametrize("kind", ["mixed", "scheduled"])
def test_dag_kinds_name_each_tasks_key_dag_and_run(kind: str) -> None:
    tasks = generate(kind, 3)
    assert {t.queue for t in tasks} == {"default", "long"}
    assert all(t.key and t.dag and t.key.startswith(t.dag) for t in tasks)
    assert all(t.scheduled_s is not None and t.scheduled_s <= t.submit_s for t in tasks)
    out = io.StringIO()
    write_trace(tasks, out)
    assert parse_trace(out.getvalue()) == tasks


def test_scheduled_runs_repeat_on_their_period() -> None:
    runs: dict[str, set[float]] = {}
    for t in generate("scheduled", 3):
        assert t.dag is not None
        assert t.scheduled_s is not None
        runs.setdefault(t.dag, set()).add(t.scheduled_s)
    assert len(runs) >= 5
    for times in runs.values():
        gaps = {round(b - a) for a, b in zip(sorted(times), sorted(times)[1:], strict=False)}
        assert len(gaps) <= 1, gaps  # one period per DAG


def test_trace_round_trips() -> None:
    tasks = generate("steady", 2)
    out = io.StringIO()
    write_trace(tasks, out)
    assert out.getvalue().startswith("submit_s,queue,duration_s\n")
    assert parse_trace(out.getvalue()) == tasks


def test_trace_with_optional_columns_round_trips() -> None:
    tasks = [
        Task(0.0, "default", 5.0, key="etl.extract", dag="etl", scheduled_s=0.0),
        Task(3.5, "long", 60.0),
    ]
    out = io.StringIO()
    write_trace(tasks, out)
    assert out.getvalue().splitlines()[0] == "submit_s,queue,duration_s,key,dag,scheduled_s"
    assert parse_trace(out.getvalue()) == tasks


def test_three_column_trace_and_empty_optional_cells_mean_unknown() -> None:
    old = parse_trace("submit_s,queue,duration_s\n2,default,5\n")
    blank = parse_trace("submit_s,queue,duration_s,key,dag,scheduled_s\n2,default,5,,,\n")
    assert old == blank == [Task(2.0, "default", 5.0)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("submit_s,queue\n0,default\n", "missing column(s) duration_s"),
        ("a,b,c\n", "missing column(s) submit_s, queue, duration_s"),
        ("submit_s,queue,duration_s\n0,default,-5\n", "line 2: duration_s must be a number > 0"),
        ("submit_s,queue,duration_s\n0,default,0\n", "duration_s must be a number > 0"),
        ("submit_s,queue,duration_s\n-1,default,5\n", "submit_s must be a number >= 0"),
        (
            "submit_s,queue,duration_s\nsoon,default,5\n",
            "submit_s must be a number >= 0 of seconds (got 'soon')",
        ),
        ("submit_s,queue,duration_s\n0,Default Queue,5\n", "queue 'Default Queue' is not a queue name"),
        ("submit_s,queue,duration_s\n", "no tasks"),
        (
            "submit_s,queue,duration_s,key\n0,default,5,etl/load\n",
            "line 2: key 'etl/load' is not a DAG or task id",
        ),
        ("submit_s,queue,duration_s,dag\n0,default,5,my dag\n", "dag 'my dag' is not a DAG or task id"),
        (
            "submit_s,queue,duration_s,scheduled_s\n0,default,5,noon\n",
            "scheduled_s must be a number >= 0 of seconds (got 'noon')",
        ),
        (
            "submit_s,queue,duration_s,scheduled_s\n10,default,5,30\n",
            "line 2: scheduled_s 30 is after submit_s 10",
        ),
    ],
)
def test_bad_traces_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(TraceError) as info:
        parse_trace(text, name="t.csv")
    assert message in str(info.value)


def test_percentile_interpolates() -> None:
    assert percentile([], 95) == 0
    assert percentile([60], 95) == 60
    assert percentile([0, 10], 50) == 5
    assert percentile(list(range(101)), 95) == 95


# ---------------------------------------------------------------- config


def test_config_in_scaler_config_shape_sets_the_knobs() -> None:
    doc = {
        "backend": "aws",
        "interval_seconds": 5,
        "stabilization_seconds": 0,
        "idle_seconds": 0,
        "sources": {"airflow": {"url": "http://x"}, "rabbitmq": None},
        "queues": {"default": {"group": "g", "min_size": 0, "max_size": 3, "slots_per_node": 1}},
    }
    s = settings_from({"sensitive": False, "type": "object", "value": doc})  # terraform output -json
    assert (s.interval_seconds, s.rabbitmq, s.queue("default").max_size) == (5, False, 3)
    r = simulate([Task(0, "default", 100) for _ in range(5)], ["airtasks"], s)
    # 3 nodes at most, 1 slot each: 3 tasks 60..160, 2 more 160..260, each removal drains 5 s
    assert r.metrics["airtasks"].node_seconds == 3 * 160 + 2 * 100 + 3 * 5


def test_config_queue_switches_reach_the_simulated_policy() -> None:
    switches = {"prescale": False, "pack": True, "learn_durations": True}
    s = settings_from({"queues": {"etl": {"slots_per_node": 2, **switches}, "web": {}}})
    assert (s.policy("etl").prescale, s.policy("etl").pack, s.learns("etl")) == (False, True, True)
    assert (s.policy("web").prescale, s.policy("web").pack, s.learns("web")) == (True, False, False)
    assert not dataclasses.replace(s, prescale=False).policy("web").prescale  # --no-prescale: all off

    # The learnt run times test's trace, run from a config: the queue's own switch turns them on.
    tasks = [Task(at, "etl", 25, key="etl.load") for at in (0, 78, 88, 88)]
    knobs = {
        "interval_seconds": 10,
        "stabilization_seconds": 0,
        "idle_seconds": 0,
        "sources": {"rabbitmq": None},
    }
    runs = {
        learn: simulate(
            tasks,
            ["airtasks"],
            settings_from({**knobs, "queues": {"etl": {"slots_per_node": 2, "learn_durations": learn}}}),
        ).metrics["airtasks"]
        for learn in (False, True)
    }
    assert (runs[False].scale_actions, runs[True].scale_actions) == (4, 2)


def test_config_missing_a_trace_queue_is_an_error() -> None:
    s = settings_from({"queues": {"default": {"slots_per_node": 2}}})
    with pytest.raises(Exception, match="the trace has queue 'gpu'"):
        simulate([Task(0, "gpu", 10)], ["airtasks"], s)


# ---------------------------------------------------------------- CLI


def _trace(tmp_path: Path, body: str = "0,default,120\n5,long,600\n") -> Path:
    path = tmp_path / "t.csv"
    path.write_text("submit_s,queue,duration_s\n" + body)
    return path


def test_cli_json_has_every_metric_per_policy(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["simulate", "--trace", str(_trace(tmp_path)), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert set(doc["policies"]) == {"airtasks", "seed", "keda", "oracle"}
    for metrics in doc["policies"].values():
        assert set(metrics) == {
            "node_seconds",
            "wait_p50_s",
            "wait_p95_s",
            "tasks_killed",
            "scale_actions",
            "node_seconds_vs_oracle",
        }
        assert all(isinstance(v, int | float) for v in metrics.values())
    assert doc["policies"]["oracle"]["node_seconds_vs_oracle"] == 1.0


def test_cli_table_for_chosen_policies_and_plot(tmp_path: Path) -> None:
    png = tmp_path / "out.png"
    args = ["simulate", "--trace", str(_trace(tmp_path)), "--policy", "airtasks,keda", "--plot", str(png)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [ln.split()[0] for ln in lines[2:4]] == ["airtasks", "keda"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_generate_writes_a_trace(tmp_path: Path) -> None:
    out = tmp_path / "g.csv"
    result = CliRunner().invoke(
        cli, ["simulate", "--generate", "long-tail", "--seed", "3", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("submit_s,queue,duration_s\n")
    stdout = CliRunner().invoke(cli, ["simulate", "--generate", "long-tail", "--seed", "3"])
    assert stdout.output == out.read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--policy", "hpa"], "unknown policy 'hpa'; use --policy with one of: airtasks, seed, keda, oracle"),
        (["--boot-seconds", "-1"], "--boot-seconds must be >= 0"),
        (["--config", "nope.json"], "cannot read config nope.json"),
        (["--interruptions", "-1"], "--interruptions must be >= 0 notices per node-hour (got -1)"),
        (["--interruptions", "inf"], "--interruptions must be >= 0 notices per node-hour (got inf)"),
    ],
)
def test_cli_bad_input_is_one_line_exit_1(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["simulate", "--trace", str(_trace(tmp_path)), *args])
    assert result.exit_code == 1
    assert result.output.startswith("Error: ")
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--generate", "spiky"],
            "unknown trace kind 'spiky'; use one of: steady, bursty, diurnal, long-tail, mixed, scheduled",
        ),
        ([], "pass --trace PATH"),
        (["--trace", "missing.csv"], "cannot read trace missing.csv"),
    ],
)
def test_cli_bad_kind_or_missing_trace(args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["simulate", *args])
    assert result.exit_code == 1
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_cli_bad_trace_names_the_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("submit_s,queue,duration_s\n0,default,-3\n")
    result = CliRunner().invoke(cli, ["simulate", "--trace", str(path)])
    assert result.exit_code == 1
    assert "line 2: duration_s must be a number > 0 of seconds (got '-3'); fix that row" in result.output


def test_learnt_run_times_spare_a_boot_for_a_task_a_busy_node_ends_first() -> None:
    # One 2-slot node, launched for a: the pass that sees a run learns the group's boot (60-70 s),
    # and a's end teaches the key's run time (25 s). At the pass at 90 s, d is queued behind b and
    # c, which end in 13 s and 23 s: sooner than a new node could take d.
    a, b, c, d = (Task(at, "default", 25, key="etl.load") for at in (0, 78, 88, 88))
    settings = dataclasses.replace(EAGER, queues={"default": QueueSettings(slots_per_node=2)})
    plain = simulate([a, b, c, d], ["airtasks"], settings, boot_seconds=60).metrics["airtasks"]
    learnt = simulate(
        [a, b, c, d], ["airtasks"], dataclasses.replace(settings, learn_durations=True), boot_seconds=60
    ).metrics["airtasks"]
    assert plain.scale_actions == 4  # launched for a, for d (unused), both removed
    assert learnt.scale_actions == 2
    assert learnt.node_seconds < plain.node_seconds
    assert learnt.wait_p95_s <= plain.wait_p95_s  # d started when b ended, at 103 s


def test_learnt_run_times_boot_a_node_for_a_task_behind_one_that_outran_them() -> None:
    # a teaches the key 100 s; b, the same task, runs 1000 s; c queues behind b at 400 s, when b
    # has run longer than any run seen. Counting on b to end at once, c would wait until 1160 s.
    a, b, c = (Task(at, "default", d, key="report.build") for at, d in ((0, 100), (110, 1000), (400, 50)))
    settings = dataclasses.replace(
        EAGER, queues={"default": QueueSettings(min_size=1, slots_per_node=1)}, learn_durations=True
    )
    out = simulate([a, b, c], ["airtasks"], settings, boot_seconds=60).outcomes["airtasks"]
    assert out.waits[2] <= 60 + 2 * settings.interval_seconds


# ---------------------------------------------------------------- interruptions


@dataclasses.dataclass(frozen=True)
class FirstNodeNotice(Interruptions):
    """A notice for the group's first node only, `after` seconds from its launch."""

    after: float = 100.0

    def first_notice(self, node_id: str) -> float | None:
        return self.after if node_id == "default-00001" else None


def test_airtasks_restarts_the_long_task_before_the_deadline_and_seed_loses_it() -> None:
    """A 1000 s task and a 50 s one on one node; its notice comes 100 s after launch, 120 s ahead.

    airtasks: launched 0, joined 60, both start 60; notice at 100, so the pass at 100 orders a
    replacement (joins 160). The short task ends at 110 on the interrupted node. Run times are
    unknown, so at deadline (220) minus the 20 s margin the pass at 200 restarts the long task on
    the new node: 200..1200, no retry used, nothing lost.
    seed: sees the broker at 60, node joins 120; notice at 160, deadline 280. Its node keeps the
    long task until the reclaim at 280 (lost: a retry used); the pass at 300 launches, joins 360."""
    tasks = [Task(0, "default", 1000), Task(0, "default", 50)]
    notice = FirstNodeNotice(per_node_hour=1, notice_seconds=120)
    a = run(tasks, policies.AirtasksPolicy(one_queue()), one_queue(), 60, notice)
    assert (a.notices, a.lost, a.restarted, a.tasks_killed) == (1, 0, 1, 0)
    assert a.waits == [200, 60]
    seed = run(tasks, policies.SeedPolicy(one_queue()), one_queue(), 60, notice)
    assert (seed.notices, seed.lost, seed.restarted) == (1, 1, 0)
    assert seed.waits == [360, 120]


def test_interrupted_idle_node_takes_no_new_task_under_airtasks() -> None:
    """The notice cordons the node at once (the watcher): a task arriving later goes elsewhere."""
    tasks = [Task(0, "default", 30), Task(120, "default", 30)]
    notice = FirstNodeNotice(per_node_hour=1, notice_seconds=120, after=100)
    out = run(tasks, policies.AirtasksPolicy(one_queue()), one_queue(), 60, notice)
    assert (out.lost, out.restarted) == (0, 0)
    assert out.waits[1] > 0, "it waited for the replacement instead of starting on the leaving node"


def test_no_interruptions_leave_the_outcome_unchanged() -> None:
    tasks = generate("bursty", 1)[:200]
    settings = Settings()
    calm = run(tasks, policies.AirtasksPolicy(settings), settings, 60)
    zero = run(tasks, policies.AirtasksPolicy(settings), settings, 60, Interruptions(0, 120))
    assert calm == zero
    assert calm.notices == calm.lost == calm.restarted == 0


def test_interruptions_are_deterministic_and_airtasks_loses_fewer_than_seed() -> None:
    tasks = generate("long-tail", 1)
    spot = Interruptions(per_node_hour=1.0, notice_seconds=120, seed=7)
    first = simulate(tasks, ["airtasks", "seed"], Settings(), 60, spot)
    again = simulate(tasks, ["airtasks", "seed"], Settings(), 60, spot)
    assert first.metrics == again.metrics
    a, s = first.metrics["airtasks"], first.metrics["seed"]
    assert a.notices
    assert s.notices
    assert a.lost is not None
    assert s.lost is not None
    assert a.lost < s.lost
    assert a.restarted
    assert not s.restarted


def test_cli_interruptions_add_lost_restarted_and_extra_wait(tmp_path: Path) -> None:
    trace = _trace(tmp_path, "".join(f"{i * 30},default,900\n" for i in range(40)))
    args = ["simulate", "--trace", str(trace), "--interruptions", "2", "--cloud", "gcp", "--seed", "3"]
    table = CliRunner().invoke(cli, [*args, "--policy", "airtasks,seed,oracle"])
    assert table.exit_code == 0, table.output
    assert "2 interruption notice(s) per node-hour, 30 s before the node goes (gcp, seed 3)" in table.output
    head, *rows = table.output.splitlines()[1:]
    assert head.split("  ")[-1].strip() == "extra wait, mean"
    assert "lost (retries used)" in head
    assert rows[2].split()[-4:] == ["-", "-", "-", "-"], "the oracle has no interruptions"
    doc = json.loads(CliRunner().invoke(cli, [*args, "--json"]).output)
    assert doc["interruptions"] == {"per_node_hour": 2.0, "notice_seconds": 30.0, "seed": 3}
    assert {"notices", "lost", "restarted", "extra_wait_mean_s"} <= set(doc["policies"]["seed"])
    assert "lost" not in doc["policies"]["oracle"]
