"""The view at scale: one queue (`?queue=`), node pages (`offset`/`limit`) with counts per state
over the whole group, and the page's summary, expandable table and page links."""

from __future__ import annotations

from airtasks.ops.page import render_page
from airtasks.ops.view import build_view
from tests.unit.test_ops_view import busy_world, config


def test_one_queue_one_page_of_nodes_all_counted() -> None:
    w = busy_world()
    view = build_view(config(), w.clients(), queue="default", node_offset=1, node_limit=2)
    assert [q.queue for q in view.queues] == ["default"]
    q = view.queues[0]
    assert (q.nodes_total, q.nodes_offset) == (6, 1)
    # Sorted by id: i-busy, i-drain, i-gone, i-idle, i-late, i-new.
    assert [n.id for n in q.nodes] == ["i-drain", "i-gone"]
    assert sum(q.node_counts.values()) == 6
    assert q.node_counts["busy"] == 1
    data = view.to_json()
    assert (data["queue_filter"], data["node_limit"]) == ("default", 2)
    assert data["queues"][0]["nodes_total"] == 6
    assert data["queues"][0]["node_counts"] == dict(q.node_counts)
    assert len(data["queues"][0]["nodes"]) == 2


def test_busy_counts_come_from_one_read_of_the_running_task_instances() -> None:
    w = busy_world()
    view = build_view(config(), w.clients())
    default = next(q for q in view.queues if q.queue == "default")
    assert {n.id: n.running for n in default.nodes}["i-busy"] == 2
    assert w.airflow.fake.busy_calls == 0  # the view lists the task instances once, for both


def test_an_unknown_queue_is_a_problem_not_an_error() -> None:
    w = busy_world()
    view = build_view(config(), w.clients(), queue="nope")
    assert view.queues == ()
    assert "no queue named nope in the scaler config" in view.problems


def test_page_summarises_a_large_group_and_links_the_next_nodes() -> None:
    w = busy_world()
    view = build_view(config(), w.clients(), node_limit=2)
    html = render_page(view)
    assert 'section class="card queue" id="queue-default" data-queue="default"' in html
    assert '<details class="nodes" data-queue="default" open>' in html  # 6 nodes: open
    assert 'data-count="busy">1 busy</span>' in html
    assert '<a href="?queue=default&offset=2">next 2</a>' in html
    assert html.count('<tr class="node"') == 2
    assert "window.location.search" in html  # the refresh keeps ?queue= and ?offset=
