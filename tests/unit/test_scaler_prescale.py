"""The scaler pre-scales for scheduled runs: it reads the next run times and the recent runs from
Airflow (fakes here), raises the group one boot ahead, says so in the decision history that the
Cluster page shows, and caches its reads across passes."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from airtasks.config import ScalerConfig
from airtasks.decide import DEFAULT_BOOT_SECONDS
from airtasks.errors import SourceReadError
from airtasks.scaling.due import LEARN_SECONDS, REFRESH_SECONDS, STRUCTURE_SECONDS, UNLEARNED_SECONDS
from airtasks.scaling.scaler import Scaler
from airtasks.schedule import DagTask, PastTask
from airtasks.state.history import HistoryStore
from airtasks.state.memory import MemoryStore
from airtasks.wiring import Clients
from tests.unit.fakes import FakeAirflow, FakeBackend, FakeControl

NOW = 7200.0  # 02:00:00 UTC
GROUP = "airtasks-demo-default"


def config(prescale: bool = True) -> ScalerConfig:
    queue: dict[str, Any] = {"group": GROUP, "min_size": 0, "max_size": 10, "slots_per_node": 4}
    if not prescale:
        queue["prescale"] = False
    return ScalerConfig.model_validate(
        {
            "backend": "aws",
            "cluster_name": "demo",
            "region": "us-east-1",
            "sources": {"airflow": {"url": "http://127.0.0.1:1"}},
            "queues": {"default": queue},
        }
    )


def nightly(run_at: float, width: int) -> tuple[float, list[PastTask]]:
    """A past run: `width` tasks on default queued 5 s after its time, and one on another queue."""
    return run_at, [PastTask("default", run_at + 5, 120.0) for _ in range(width)] + [
        PastTask("gpu", run_at + 5, 60.0)
    ]


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def scaler(
    tmp_path: Path, airflow: FakeAirflow, backend: FakeBackend, clock: Clock, prescale: bool = True
) -> tuple[Scaler, HistoryStore]:
    history = HistoryStore.in_process()
    clients = Clients(
        backend,
        airflow=airflow,  # type: ignore[arg-type]
        control=FakeControl(),
        memory=MemoryStore.file(tmp_path / "memory.json"),
        history=history,
    )
    return Scaler(config(prescale), clients, clock=clock), history


def test_a_due_run_raises_the_group_and_the_history_says_why(tmp_path: Path) -> None:
    airflow = FakeAirflow(
        next_run={"nightly_etl": NOW + 60},
        past_runs={"nightly_etl": [nightly(NOW - 2 * 86400, 5), nightly(NOW - 86400, 6)]},
    )
    backend = FakeBackend()
    s, history = scaler(tmp_path, airflow, backend, Clock())
    (q,) = s.run_pass().queues
    assert (q.action, q.desired) == ("scale_out", 2)
    assert backend.groups[GROUP] == 2
    assert q.reason.startswith("pre-scale: nightly_etl due 02:01 needs 6 slot(s)")
    (entry,) = [e for e in history.load().entries("default") if e.kind == "decision"]
    assert entry.reason == q.reason


def test_no_pre_scale_when_the_run_is_far_off_or_turned_off(tmp_path: Path) -> None:
    far = FakeAirflow(
        next_run={"nightly_etl": NOW + DEFAULT_BOOT_SECONDS + 60},
        past_runs={"nightly_etl": [nightly(NOW - 86400, 6)]},
    )
    backend = FakeBackend()
    s, _ = scaler(tmp_path, far, backend, Clock())
    assert s.run_pass().queues[0].action == "none"
    off = FakeAirflow(
        next_run={"nightly_etl": NOW + 30}, past_runs={"nightly_etl": [nightly(NOW - 86400, 6)]}
    )
    s, _ = scaler(tmp_path, off, backend, Clock(), prescale=False)
    assert s.run_pass().queues[0].action == "none"
    assert off.schedule_reads == []  # no queue pre-scales: the schedule is not read at all
    assert backend.groups.get(GROUP, 0) == 0


def test_a_dag_without_history_is_not_pre_scaled_until_a_run_finished(tmp_path: Path) -> None:
    airflow = FakeAirflow(next_run={"new_dag": NOW + 300})
    backend = FakeBackend()
    clock = Clock()
    s, _ = scaler(tmp_path, airflow, backend, clock)
    assert s.run_pass().queues[0].action == "none"
    # Its first run ends; a minute later the scaler reads its runs again and, once the next run is
    # a boot away, raises the group.
    airflow.past_runs["new_dag"] = [nightly(NOW - 100, 3)]
    clock.now = NOW + UNLEARNED_SECONDS
    assert s.run_pass().queues[0].action == "none"
    assert airflow.schedule_reads.count("new_dag") == 2
    clock.now = NOW + 240
    assert (s.run_pass().queues[0].action, backend.groups[GROUP]) == ("scale_out", 1)


def test_a_first_run_is_pre_scaled_for_its_dags_root_tasks(tmp_path: Path) -> None:
    # extract_a and extract_b have no upstream; load runs after both; report is on another queue.
    tasks = [
        DagTask("extract_a", "default", ("load",)),
        DagTask("extract_b", "default", ("load",)),
        DagTask("load", "default", ("report",)),
        DagTask("report", "gpu"),
    ]
    airflow = FakeAirflow(next_run={"new_dag": NOW + 300}, tasks={"new_dag": tasks})
    backend = FakeBackend()
    clock = Clock()
    s, history = scaler(tmp_path, airflow, backend, clock)
    assert s.run_pass().queues[0].action == "none"  # a boot and the margin away: not yet
    clock.now = NOW + 240
    (q,) = s.run_pass().queues
    assert (q.action, q.desired, backend.groups[GROUP]) == ("scale_out", 1, 1)
    assert q.reason.startswith("pre-scale: new_dag due 02:05 needs 2 slot(s) (first run: 2 root task(s))")
    decisions = [e for e in history.load().entries("default") if e.kind == "decision"]
    assert decisions[-1].reason == q.reason
    # The DAG's tasks are read once per STRUCTURE_SECONDS, not every pass.
    assert airflow.schedule_reads.count("tasks:new_dag") == 1
    airflow.next_run["new_dag"] = NOW + STRUCTURE_SECONDS + 300  # its first run did not come
    clock.now = NOW + STRUCTURE_SECONDS
    s.run_pass()
    assert airflow.schedule_reads.count("tasks:new_dag") == 2


def test_a_dag_that_ran_counts_its_history_and_its_tasks_are_not_read(tmp_path: Path) -> None:
    roots = [DagTask(f"shard_{i}", "default") for i in range(9)]
    airflow = FakeAirflow(
        next_run={"nightly_etl": NOW + 60},
        past_runs={"nightly_etl": [nightly(NOW - 86400, 6)]},
        tasks={"nightly_etl": roots},
    )
    backend = FakeBackend()
    s, _ = scaler(tmp_path, airflow, backend, Clock())
    (q,) = s.run_pass().queues
    assert (q.action, q.desired) == ("scale_out", 2)
    assert q.reason.startswith("pre-scale: nightly_etl due 02:01 needs 6 slot(s): ")
    assert "tasks:nightly_etl" not in airflow.schedule_reads


def test_reads_are_cached_across_passes(tmp_path: Path) -> None:
    airflow = FakeAirflow(
        next_run={"nightly_etl": NOW + 600}, past_runs={"nightly_etl": [nightly(NOW - 86400, 6)]}
    )
    clock = Clock()
    s, _ = scaler(tmp_path, airflow, FakeBackend(), clock)
    for _ in range(5):
        s.run_pass()
        clock.now += 5
    read_once = ["next_runs", "nightly_etl"]
    assert airflow.schedule_reads == read_once
    clock.now = NOW + REFRESH_SECONDS
    s.run_pass()
    assert airflow.schedule_reads == [*read_once, "next_runs"]
    clock.now = NOW + LEARN_SECONDS
    s.run_pass()
    assert airflow.schedule_reads[-2:] == read_once


def test_a_failed_schedule_read_scales_on_the_load_and_says_so(tmp_path: Path) -> None:
    airflow = FakeAirflow(queued={"default": 1}, next_run={"nightly_etl": NOW + 30})

    def down(until: float) -> list[tuple[str, float]]:
        raise SourceReadError("airflow: GET /api/v2/dags: HTTP 503 after 3 tries")

    airflow.next_runs = down  # type: ignore[method-assign]
    backend = FakeBackend()
    s, _ = scaler(tmp_path, airflow, backend, Clock())
    (q,) = s.run_pass().queues
    assert (q.action, q.desired) == ("scale_out", 1)
    assert "pre-scale: schedule not read (airflow: GET /api/v2/dags: HTTP 503" in q.reason


def test_a_node_the_load_needs_whole_still_gives_its_boot_sample(tmp_path: Path) -> None:
    """The load needs every node, so the pass would skip reading which node runs what; it reads
    the queue anyway while its young node's boot sample is pending, learns the boot (45 s, not
    the 90 s default) and pre-scales the next run one learned boot (plus the margin) ahead."""
    due_at = NOW + 400
    airflow = FakeAirflow(
        queued={"default": 3},
        next_run={"nightly_etl": due_at},
        past_runs={"nightly_etl": [nightly(NOW - 86400, 6)]},
    )
    backend = FakeBackend()
    clock = Clock()
    s, _ = scaler(tmp_path, airflow, backend, clock)
    assert s.run_pass().queues[0].action == "scale_out"  # 3 queued tasks, no node
    backend.members[GROUP] = []
    backend.add(GROUP, "i-new", launched_at=NOW + 2)

    clock.now = NOW + 5  # booting: it runs nothing yet, and the group is the size the load needs
    assert s.run_pass().queues[0].action == "none"
    airflow.queued, airflow.on_hosts = {}, {"default": Counter({"i-new": 3})}
    clock.now = NOW + 47  # its first tasks run: the load (3) still needs the whole group
    assert s.run_pass().queues[0].action == "none"
    memory = MemoryStore.file(tmp_path / "memory.json").load()
    assert memory[GROUP].queue.boot_samples == (45.0,)
    assert airflow.busy_asked == [["default"], ["default"]]

    # Learned: no more node reads for the whole group, and the lead is 45 + 15 s, not 90 + 15 s.
    clock.now = due_at - 100
    assert s.run_pass().queues[0].action == "none"
    clock.now = due_at - 55
    (q,) = s.run_pass().queues
    assert (q.action, q.desired) == ("scale_out", 3)
    assert q.reason.startswith("pre-scale: nightly_etl due")
    assert airflow.busy_asked == [["default"], ["default"]]
