"""The operations view model and page from fakes: node states, tasks per node, the Swarm (live, or
recorded by the scaler), decisions from the history, `airtasks status --json` = the view, and a
page that escapes what it shows and fetches nothing from elsewhere."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import airtasks.cli.status_cmd
from airtasks.backends.base import Instance
from airtasks.cli import cli
from airtasks.config import ScalerConfig, parse_config
from airtasks.control.docker_swarm import SwarmNode
from airtasks.decide import QueueMemory
from airtasks.errors import ControlError
from airtasks.ops.page import NODE_ROWS, PREVIEW_ROWS, render_content, render_page
from airtasks.ops.view import ClusterView, UnknownQueue, build_view, chart_window, empty_view
from airtasks.scaling.scaler import Scaler
from airtasks.schedule import PastTask
from airtasks.sources.airflow import RunningTask
from airtasks.state.history import HistoryStore
from airtasks.state.memory import GroupMemory, MemoryStore
from airtasks.wiring import Clients, build_clients
from tests.unit.fakes import FakeAirflow, FakeBackend, FakeControl, FakeRabbit

NOW = 1_800_000_000.0


class TaskAirflow:
    """A fake Airflow (counts and hosts from `FakeAirflow`) that also lists the running task
    instances with their dag, task, run and map index, as `AirflowSource.running` does."""

    name = "airflow"

    def __init__(self) -> None:
        self.fake = FakeAirflow()
        self.tasks: list[RunningTask] = []

    def count(self, queue: str) -> int:
        return self.fake.count(queue)

    def busy(self, queues: Iterable[str]) -> dict[str, Counter[str]]:
        return self.fake.busy(queues)

    def next_runs(self, until: float) -> list[tuple[str, float]]:
        return self.fake.next_runs(until)

    def recent_runs(self, dag_id: str) -> list[tuple[float, list[PastTask]]]:
        return self.fake.recent_runs(dag_id)

    def running(self, queues: Iterable[str]) -> list[RunningTask]:
        wanted = set(queues)
        return [t for t in self.tasks if t.queue in wanted]

    def get_variable(self, key: str) -> str | None:
        return self.fake.get_variable(key)

    def set_variable(self, key: str, value: str, description: str = "") -> None:
        self.fake.set_variable(key, value, description)


@dataclass
class FakeSwarm:
    nodes_: list[SwarmNode] = field(default_factory=list)
    down: bool = False

    def nodes(self) -> list[SwarmNode]:
        if self.down:
            raise ControlError("swarm: cannot list nodes: connection refused")
        return list(self.nodes_)

    def drain(self, instance_id: str) -> bool:
        return True

    def wait_drained(self, instance_id: str, timeout: float) -> bool:
        return True


def swarm_node(
    hostname: str, state: str = "ready", availability: str = "active", role: str = "worker"
) -> SwarmNode:
    labels = {} if role == "manager" else {"airtasks.queue": "default"}
    return SwarmNode(f"id-{hostname}", hostname, role, state, availability, labels, {})


def config(**extra: Any) -> ScalerConfig:
    return parse_config(
        {
            "backend": "aws",
            "cluster_name": "demo",
            "region": "us-east-1",
            "stabilization_seconds": 0,
            "sources": {"airflow": {"url": "http://127.0.0.1:1"}, "rabbitmq": {"url": "http://127.0.0.1:2"}},
            "idle_seconds": 3600,
            "history": {"store": "none"},
            "queues": {
                "default": {
                    "group": "airtasks-demo-default",
                    "min_size": 1,
                    "max_size": 10,
                    "slots_per_node": 2,
                },
                "gpu": {"group": "airtasks-demo-gpu", "min_size": 0, "max_size": 2, "slots_per_node": 1},
            },
            **extra,
        }
    )


@dataclass
class World:
    backend: FakeBackend = field(default_factory=FakeBackend)
    airflow: TaskAirflow = field(default_factory=TaskAirflow)
    rabbit: FakeRabbit = field(default_factory=FakeRabbit)
    swarm: FakeSwarm | None = None
    memory: MemoryStore = field(default_factory=MemoryStore.in_process)
    history: HistoryStore = field(default_factory=HistoryStore.in_process)
    clock: list[float] = field(default_factory=lambda: [NOW])

    def scaler(self, cfg: ScalerConfig | None = None) -> Scaler:
        cfg = cfg or config()
        return Scaler(cfg, self.clients(control=FakeControl()))

    def clients(self, control: FakeControl | None = None) -> Clients:
        return Clients(
            self.backend,
            airflow=self.airflow,  # type: ignore[arg-type]
            rabbitmq=self.rabbit,  # type: ignore[arg-type]
            control=control,
            swarm=self.swarm,  # type: ignore[arg-type]
            memory=self.memory,
            history=self.history,
            clock=lambda: self.clock[0],
        )


def busy_world() -> World:
    w = World()
    b = w.backend
    b.members["airtasks-demo-default"] = [
        Instance("i-busy", NOW - 600, "InService"),
        Instance("i-idle", NOW - 600, "InService"),
        Instance("i-new", NOW - 20, "Pending"),
        Instance("i-drain", NOW - 900, "InService"),
        Instance("i-gone", NOW - 900, "InService"),
        Instance("i-late", NOW - 30, "InService"),
    ]
    b.groups["airtasks-demo-default"] = 6
    w.airflow.fake.queued = {"default": 3}
    w.airflow.fake.on_hosts = {"default": Counter({"i-busy": 2, "i-drain": 1})}
    w.airflow.tasks = [
        RunningTask("default", "i-busy", "etl.load.r1.0", "etl", "load", "r1", 0),
        RunningTask("default", "i-busy", "etl.load.r1.1", "etl", "load", "r1", 1),
        RunningTask("default", "i-drain", "etl.report.r1.-1", "etl", "report", "r1", -1),
    ]
    w.rabbit.depth = {"default": 4, "gpu": 0}
    w.memory.save(
        {
            "airtasks-demo-default": GroupMemory(
                QueueMemory(last_busy={"i-idle": NOW - 45}), cordoned=frozenset({"i-drain"})
            )
        }
    )
    w.swarm = FakeSwarm(
        [
            swarm_node("manager-1", role="manager"),
            swarm_node("i-busy"),
            swarm_node("i-idle"),
            swarm_node("i-drain.ec2.internal", availability="drain"),
            swarm_node("i-gone", state="down"),
            swarm_node("i-stray"),
        ]
    )
    return w


def test_node_states_tasks_and_loads() -> None:
    w = busy_world()
    view = build_view(config(), w.clients())
    default = view.queues[0]
    assert (default.queue, default.loads, default.load, default.current, default.want) == (
        "default",
        {"airflow": 6, "rabbitmq": 4},
        6,
        6,
        3,
    )
    assert (default.min_size, default.max_size, default.slots_per_node) == (1, 10, 2)
    states = {n.id: (n.status, n.running) for n in default.nodes}
    assert states == {
        "i-busy": ("busy", 2),
        "i-idle": ("idle", 0),
        "i-new": ("booting", 0),  # Pending in the group
        "i-drain": ("draining", 1),  # cordoned by the scaler, finishing its task
        "i-gone": ("down", 0),  # the Swarm says down
        "i-late": ("booting", 0),  # InService, not joined to the Swarm yet
    }
    busy = next(n for n in default.nodes if n.id == "i-busy")
    assert [t.label for t in busy.tasks] == ["etl.load[0]", "etl.load[1]"]
    idle = next(n for n in default.nodes if n.id == "i-idle")
    assert idle.idle_seconds == 45
    assert (idle.swarm_state, idle.swarm_availability) == ("ready", "active")
    assert view.swarm.source == "live"
    members = {n.hostname: n.member_of for n in view.swarm.nodes}
    assert members == {
        "manager-1": None,
        "i-busy": "default",
        "i-idle": "default",
        "i-drain.ec2.internal": "default",
        "i-gone": "default",
        "i-stray": None,
    }
    assert view.queues[1].queue == "gpu"
    assert view.queues[1].nodes == ()


def test_a_failed_read_shows_on_its_queue_and_nothing_else_fails() -> None:
    w = busy_world()
    w.rabbit.down = True
    view = build_view(config(), w.clients())
    assert view.failed
    default = view.queues[0]
    assert default.load is None
    assert default.loads["rabbitmq"] is None
    assert "rabbitmq: GET /api/queues/%2F: cannot connect" in default.error
    assert {n.id for n in default.nodes} >= {"i-busy"}  # the group is still shown


def test_swarm_falls_back_to_what_the_scaler_recorded() -> None:
    w = busy_world()
    scaler = w.scaler()
    scaler.run_pass()  # records the decisions and the Swarm's node list
    assert w.swarm is not None
    w.swarm.down = True  # the view's own Docker API is out of reach (the API server has no socket)
    w.clock[0] += 30
    view = build_view(config(), w.clients())
    assert view.swarm.source == "recorded"
    assert view.swarm.as_of == NOW
    assert view.swarm.error == "swarm: cannot list nodes: connection refused"
    assert {n.id: n.status for n in view.queues[0].nodes}["i-gone"] == "down"
    decision = view.queues[0].last_decision
    assert decision is not None
    assert (decision.action, decision.t) == ("none", NOW)
    assert "waiting for" in decision.reason  # idle nodes are kept for idle_seconds (3600 here)
    assert view.decisions[0].queue in {"default", "gpu"}
    assert view.history_written_at == NOW
    assert not view.scaler_stale
    w.clock[0] += 3600
    assert build_view(config(), w.clients()).scaler_stale


def test_status_json_is_the_view(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    w = busy_world()
    monkeypatch.setattr(airtasks.cli.status_cmd, "build_clients", lambda cfg: w.clients())
    path = tmp_path / "scaler.json"
    path.write_text(json.dumps(config().model_dump(mode="json", exclude_none=True)))
    result = CliRunner().invoke(cli, ["status", "--json", "--config", str(path)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data == build_view(config(), w.clients()).to_json()
    node = data["queues"][0]["nodes"][0]
    assert {"id", "status", "running", "busy", "tasks", "cordoned", "lifecycle", "swarm_state"} <= set(node)
    assert node["tasks"][0] == {
        "dag_id": "etl",
        "task_id": "load",
        "run_id": "r1",
        "map_index": 0,
        "label": "etl.load[0]",
    }
    text = CliRunner().invoke(cli, ["status", "--config", str(path)]).stdout
    assert "i-drain  InService  busy (1) cordoned  [draining]  etl.report" in text


def test_chart_window_grows_with_the_history() -> None:
    w = busy_world()
    cfg = config()
    assert chart_window(cfg, w.history.load(), ["default"], NOW) == 120
    scaler = w.scaler()
    scaler.run_pass()
    h = w.history.load()
    assert chart_window(cfg, h, ["default"], NOW + 200) == 300  # 250 s, to whole minutes
    assert chart_window(cfg, h, ["default"], NOW + 2 * 3600) == 2.5 * 3600  # to quarters of an hour
    assert chart_window(cfg, h, ["default"], NOW + 10 * 86400) == cfg.history_config.max_age_seconds


def view_with_history(reason: str = "load 9 needs 3 node(s) of 4 slots") -> ClusterView:
    """One pass (a scale-out on `default`), two minutes ago."""
    w = busy_world()
    w.airflow.fake.queued = {"default": 13}
    w.backend.members["airtasks-demo-gpu"] = []
    scaler = w.scaler()
    scaler.run_pass()
    w.clock[0] += 120
    return build_view(config(), w.clients(), problems=[f"a problem with <b>{reason}</b>"])


def test_page_shows_queues_nodes_decisions_chart_and_swarm() -> None:
    view = view_with_history()
    html = render_page(view)
    assert html.startswith("<!doctype html>")
    assert 'data-queue="default"' in html
    assert 'class="load">16</b>' in html  # 13 queued + 3 running
    assert 'data-node="i-busy" data-status="busy"' in html
    assert 'href="/dags/etl/runs/r1/tasks/load/mapped/0" target="_top"' in html
    assert re.search(r'<path class="load" d="M[\d.]+,[\d.]+', html)
    assert re.search(r'<path class="nodes" d="M', html)
    assert 'class="decision" data-queue="default" data-action="scale_out"' in html
    assert "load 16 needs 8 node(s) of 2 slots" in html
    assert 'id="swarm"' in html
    assert "Cluster demo" in html
    nodes_only = render_page(view, "nodes")
    assert "<svg" not in nodes_only
    assert 'id="decisions"' not in nodes_only
    assert 'id="swarm"' in nodes_only
    fragment = render_content(view)
    assert not fragment.startswith("<!doctype")


def test_page_escapes_everything_and_loads_nothing_from_elsewhere() -> None:
    view = view_with_history()
    html = render_page(view)
    assert "<b>load 9" not in html
    assert "a problem with &lt;b&gt;" in html
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "@import" not in html
    # The refresh asks for the page's own URL, query included (the queue and the nodes' page).
    assert "var url = window.location.pathname + window.location.search;" in html


def test_empty_view_and_tolerant_scaler() -> None:
    page = render_page(empty_view("no scaler config: set env AIRTASKS_CONFIG", NOW))
    assert "no scaler config: set env AIRTASKS_CONFIG" in page
    # No RabbitMQ credentials in this process: the view goes on without that source, and says so.
    clients = build_clients(config(), env={}, read_only=True, airflow_token="jwt")
    assert clients.rabbitmq is None
    assert clients.airflow is not None
    assert clients.control is None
    assert list(clients.problems) == [
        "sources.rabbitmq: no credentials here; set AIRTASKS_RABBITMQ_USERNAME and "
        "AIRTASKS_RABBITMQ_PASSWORD (or their _FILE variants) in this process's environment"
    ]
    clients.close()


def big_world(nodes: int = 2000) -> World:
    """One queue of `nodes` InService nodes, a third of them running 2 task instances each."""
    w = World()
    ids = [f"i-{n:05}" for n in range(nodes)]
    w.backend.add("airtasks-demo-default", *ids, launched_at=NOW - 600)
    w.backend.add("airtasks-demo-gpu", "i-gpu")
    w.airflow.fake.on_hosts = {"default": Counter({i: 2 for i in ids[::3]})}
    w.airflow.tasks = [
        RunningTask("default", i, f"etl.load.r1.{i}", "etl", "load", "r1", 0) for i in ids[::3]
    ]
    return w


def test_nodes_are_counted_per_state_and_paged_in_the_json() -> None:
    view = build_view(config(), big_world().clients())
    default = view.queues[0]
    assert default.node_counts == {
        "busy": 667,
        "idle": 1333,
        "booting": 0,
        "draining": 0,
        "down": 0,
        "unknown": 0,
    }

    doc = view.to_json(nodes_offset=1900, nodes_limit=150)
    q = doc["queues"][0]
    assert (q["nodes_total"], q["nodes_offset"], q["node_counts"]["busy"]) == (2000, 1900, 667)
    assert [n["id"] for n in q["nodes"]] == [f"i-{n:05}" for n in range(1900, 2000)]
    # `airtasks status --json` (no limit) still lists every node.
    assert len(view.to_json()["queues"][0]["nodes"]) == 2000


def test_the_view_of_one_queue_reads_only_that_queue() -> None:
    w = big_world(10)
    view = build_view(config(), w.clients(), queues=["gpu"])
    assert [q.queue for q in view.queues] == ["gpu"]
    assert [n.id for n in view.queues[0].nodes] == ["i-gpu"]
    with pytest.raises(
        UnknownQueue,
        match=r"^no queue named cpu in the scaler config; ask for one of its queues: default, gpu$",
    ):
        build_view(config(), w.clients(), queues=["cpu"])


def test_the_page_at_2000_nodes_summarises_and_pages_them() -> None:
    w = big_world()
    html = render_page(build_view(config(), w.clients()))
    card = html[html.index('id="queue-default"') : html.index('id="queue-gpu"')]
    assert '<span class="badge s-busy" data-status="busy" data-count="667">busy 667</span>' in card
    assert '<span class="badge s-idle" data-status="idle" data-count="1333">idle 1333</span>' in card
    # Among several queues: closed until asked for, a few nodes, and a link to the queue's own page.
    assert '<details class="nodes" id="nodes-default"><summary>Nodes (2000)</summary>' in card
    assert card.count('class="node"') == PREVIEW_ROWS
    assert 'the first 20 of 2000: <a class="all" href="?queue=default">all nodes of default</a>' in card
    # The small group shows its node table open.
    assert '<details class="nodes" id="nodes-gpu" open>' in html

    alone = build_view(config(), w.clients(), queues=["default"])
    first = render_page(alone)
    assert first.count('class="node"') == NODE_ROWS
    assert 'href="?queue=default&amp;offset=200">next 200</a>' in first
    last = render_page(alone, nodes_offset=1800)
    assert 'data-node="i-01999"' in last
    assert 'data-node="i-01799"' not in last
    assert "nodes 1801-2000 of 2000" in last
    assert 'href="?queue=default&amp;offset=1600">previous 200</a>' in last
    assert "next 200" not in last
