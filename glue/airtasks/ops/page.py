"""The cluster page as HTML: rendered on the server from a `ClusterView`, charts as inline SVG.

Nothing is fetched from anywhere else (no CDN, no web font, no chart library): the page is one
response; a few lines of inline script re-fetch the same URL every 10 s (header
`X-Airtasks-Fragment: 1` asks for the content only) and swap it in, keeping open what was open.

At scale each queue shows its nodes counted per state, and its node table opens on a click (open
at once for a small group). With many queues a table shows the first `PREVIEW_ROWS` nodes and links
to the queue's own page (`?queue=`), which lists `NODE_ROWS` nodes a page: a page of all queues
stays small however many nodes there are.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from html import escape
from typing import Literal
from urllib.parse import quote, urlencode

from airtasks.ops.view import ClusterView, NodeView, Point, QueueView, SwarmView
from airtasks.state.history import HistoryEntry

Section = Literal["all", "nodes"]
REFRESH_SECONDS = 10
NODE_ROWS = 200
"""Nodes per page of a queue's node table, on the queue's own page."""
PREVIEW_ROWS = 20
"""Nodes a queue lists on a page of several queues; a group this small shows its table open."""

CSS = """
:root { color-scheme: light dark; --fg:#1a202c; --muted:#5a6474; --line:#d5dae1; --bg:#fff; --card:#f7f9fb;
  --load:#2563eb; --nodes:#15803d; --desired:#c2410c; --warn:#b45309; --bad:#b91c1c; }
@media (prefers-color-scheme: dark) { :root { --fg:#e5e7eb; --muted:#9ca3af; --line:#374151; --bg:#111827;
  --card:#1f2937; --load:#60a5fa; --nodes:#4ade80; --desired:#fb923c; --warn:#fbbf24; --bad:#f87171; } }
* { box-sizing: border-box; }
body { margin: 0; padding: 16px 20px; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
  color: var(--fg); background: var(--bg); }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 0; }
h3 { font-size: 14px; margin: 14px 0 6px; }
.muted { color: var(--muted); } .warn { color: var(--warn); } .bad { color: var(--bad); }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px;
  margin: 14px 0; }
.head { display: flex; gap: 16px; align-items: baseline; flex-wrap: wrap; }
.figures { display: flex; gap: 22px; flex-wrap: wrap; margin: 8px 0; }
.figure b { display: block; font-size: 20px; } .figure span { color: var(--muted); font-size: 12px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 600; font-size: 12px; }
.badge { display: inline-block; padding: 0 7px; border-radius: 9px; font-size: 12px; font-weight: 600;
  border: 1px solid currentColor; white-space: nowrap; }
.s-busy { color: #2563eb; } .s-idle { color: #15803d; } .s-booting { color: #7c3aed; }
.s-draining { color: #c2410c; } .s-down { color: #b91c1c; } .s-unknown { color: var(--muted); }
.a-scale_out { color: #2563eb; } .a-scale_in { color: #c2410c; } .a-hold { color: #b91c1c; }
.a-none { color: var(--muted); }
svg text { fill: var(--muted); font-size: 11px; } .problems li { color: var(--bad); }
a { color: inherit; }
details.nodes > summary { cursor: pointer; margin: 14px 0 6px; font-weight: 600; }
.node-counts .badge { margin-right: 6px; } .pager { margin: 6px 0; }
"""

SCRIPT = """
(function () {
  var every = REFRESH_MS;
  var busy = false;
  setInterval(function () {
    if (busy || document.hidden) { return; }
    busy = true;
    var url = window.location.pathname + window.location.search;
    fetch(url, {headers: {"X-Airtasks-Fragment": "1"}, credentials: "same-origin", cache: "no-store"})
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.text(); })
      .then(function (html) {
        var content = document.getElementById("content");
        var open = {};
        content.querySelectorAll("details[id]").forEach(function (d) { open[d.id] = d.open; });
        content.innerHTML = html;
        content.querySelectorAll("details[id]").forEach(function (d) {
          if (d.id in open) { d.open = open[d.id]; }
        });
      })
      .catch(function (e) {
        var el = document.getElementById("refresh");
        if (el) { el.textContent = "refresh failed (" + e.message + "); reload, log in again if asked"; }
      })
      .finally(function () { busy = false; });
  }, every);
})();
""".replace("REFRESH_MS", str(REFRESH_SECONDS * 1000))


def _t(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))


def _hm(epoch: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(epoch))


def _ago(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _n(value: int | None) -> str:
    return "?" if value is None else str(value)


def _e(value: object) -> str:
    return escape(str(value), quote=True)


# ---------------------------------------------------------------------------------------------
# Chart
# ---------------------------------------------------------------------------------------------


def _step_path(
    points: Sequence[tuple[float, int | None]],
    x: Callable[[float], float],
    y: Callable[[float], float],
    x_end: float,
) -> str:
    """An SVG path that holds each value until the next point; None breaks the line."""
    parts: list[str] = []
    last_y: float | None = None
    for i, (t, v) in enumerate(points):
        if v is None:
            last_y = None
            continue
        px, py = x(t), y(v)
        if last_y is None:
            parts.append(f"M{px:.1f},{py:.1f}")
        else:
            parts.append(f"H{px:.1f}V{py:.1f}")
        last_y = py
        nxt = points[i + 1][0] if i + 1 < len(points) else x_end
        parts.append(f"H{x(nxt):.1f}")
    return "".join(parts)


def chart(q: QueueView, now: float, window: float, width: int = 680) -> str:
    """Load (top) and nodes (bottom: group size solid, want dashed, max_size dotted) over the window."""
    pad_l, pad_r, panel, gap, axis = 44, 10, 64, 18, 18
    height = 2 * panel + gap + axis + 8
    start = now - window
    pts: list[Point] = [p for p in q.series if p.t >= start]
    if q.current is not None or q.load is not None:  # the live reading, so the lines reach "now"
        pts.append(Point(now, q.load, q.current, q.want))

    def x(t: float) -> float:
        return pad_l + (t - start) / window * (width - pad_l - pad_r)

    load_max = max([p.load or 0 for p in pts] + [q.slots_per_node, 1])
    node_max = max([p.size or 0 for p in pts] + [p.want or 0 for p in pts] + [q.max_size, 1])

    def y_load(v: float) -> float:
        return 6 + panel - v / load_max * panel

    def y_nodes(v: float) -> float:
        return 6 + panel + gap + panel - v / node_max * panel

    out = [
        f'<svg class="chart" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'aria-label="load and nodes of {_e(q.queue)} over the last {_ago(window)}">'
    ]
    for top, label, vmax in ((6, "load", load_max), (6 + panel + gap, "nodes", node_max)):
        out.append(
            f'<line x1="{pad_l}" y1="{top + panel}" x2="{width - pad_r}" y2="{top + panel}" '
            'stroke="currentColor" stroke-opacity=".25"/>'
        )
        out.append(f'<text x="{pad_l - 6}" y="{top + 9}" text-anchor="end">{vmax}</text>')
        out.append(f'<text x="{pad_l - 6}" y="{top + panel}" text-anchor="end">0</text>')
        out.append(f'<text x="{pad_l + 4}" y="{top + 10}">{label}</text>')
    step = next((st for st in (60.0, 300.0, 900.0, 1800.0) if window / st <= 8), 3600.0)
    back = 0.0
    while back <= window + 1:
        label = "now" if back < 1 else (f"-{back / 3600:g} h" if back >= 3600 else f"-{back / 60:g} min")
        out.append(f'<text x="{x(now - back):.1f}" y="{height - 4}" text-anchor="middle">{label}</text>')
        back += step
    y_max = y_nodes(q.max_size)
    out.append(
        f'<line x1="{pad_l}" y1="{y_max:.1f}" x2="{width - pad_r}" y2="{y_max:.1f}" stroke="var(--desired)" '
        'stroke-opacity=".5" stroke-dasharray="1 3"><title>max_size</title></line>'
    )
    load_path = _step_path([(p.t, p.load) for p in pts], x, y_load, now)
    size_path = _step_path([(p.t, p.size) for p in pts], x, y_nodes, now)
    want_path = _step_path([(p.t, p.want) for p in pts], x, y_nodes, now)
    if load_path:
        out.append(
            f'<path class="load" d="{load_path}" fill="none" stroke="var(--load)" stroke-width="2">'
            "<title>load (tasks)</title></path>"
        )
    if want_path:
        out.append(
            f'<path class="want" d="{want_path}" fill="none" stroke="var(--desired)" '
            'stroke-width="1.5" stroke-dasharray="5 3"><title>want (nodes the load needs)</title></path>'
        )
    if size_path:
        out.append(
            f'<path class="nodes" d="{size_path}" fill="none" stroke="var(--nodes)" stroke-width="2">'
            "<title>group size</title></path>"
        )
    if not q.series:
        out.append(
            f'<text x="{width / 2:.0f}" y="{6 + panel / 2:.0f}" text-anchor="middle">'
            "no history yet: the scaler records its passes here</text>"
        )
    out.append("</svg>")
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------------------------


def _task_links(n: NodeView) -> str:
    links = []
    for t in n.tasks:
        if t.run_id:
            dag, run, task = (quote(v, safe="") for v in (t.dag_id, t.run_id, t.task_id))
            href = f"/dags/{dag}/runs/{run}/tasks/{task}"
            if t.map_index >= 0:
                href += f"/mapped/{t.map_index}"
            links.append(f'<a href="{_e(href)}" target="_top">{_e(t.label)}</a>')
        else:
            links.append(_e(t.label))
    return "<br>".join(links)


def _node_counts(q: QueueView) -> str:
    counts = [(s, n) for s, n in q.node_counts.items() if n]
    if not counts:
        return ""
    badges = "".join(
        f'<span class="badge s-{status}" data-status="{status}" data-count="{n}">{status} {n}</span>'
        for status, n in counts
    )
    return f'<p class="node-counts">{len(q.nodes)} node(s): {badges}</p>'


def _pager(q: QueueView, offset: int, rows: int) -> str:
    """Where these nodes are in the group; links to the previous and next page (this queue alone),
    or, on a page of several queues, to the queue's own page."""
    if len(q.nodes) <= rows and offset == 0:
        return ""
    if rows == PREVIEW_ROWS:
        own = urlencode({"queue": q.queue})
        return (
            f'<p class="pager muted">the first {rows} of {len(q.nodes)}: '
            f'<a class="all" href="?{_e(own)}">all nodes of {_e(q.queue)}</a></p>'
        )
    shown = q.nodes[offset : offset + NODE_ROWS]
    first, last = (offset + 1, offset + len(shown)) if shown else (0, 0)
    links = [f"nodes {first}-{last} of {len(q.nodes)}"]
    if offset > 0:
        prev = urlencode({"queue": q.queue, "offset": max(offset - NODE_ROWS, 0)})
        links.append(f'<a class="prev" href="?{_e(prev)}">previous {NODE_ROWS}</a>')
    if offset + NODE_ROWS < len(q.nodes):
        nxt = urlencode({"queue": q.queue, "offset": offset + NODE_ROWS})
        links.append(f'<a class="next" href="?{_e(nxt)}">next {NODE_ROWS}</a>')
    return f'<p class="pager muted">{" &middot; ".join(links)}</p>'


def _nodes_table(q: QueueView, now: float, offset: int, count: int) -> str:
    if not q.nodes:
        return '<p class="muted">No nodes in the group.</p>'
    rows = []
    for n in q.nodes[offset : offset + count]:
        running = f" {n.running}" if n.running and n.status in {"busy", "draining"} else ""
        swarm = "-" if n.swarm_state is None else f"{n.swarm_state}, {n.swarm_availability or '-'}"
        times = f"up {_ago(now - n.launched_at)}" if n.launched_at else ""
        if n.idle_seconds is not None:
            times += f"; idle {_ago(n.idle_seconds)}"
        flags = " (cordoned)" if n.cordoned else ""
        rows.append(
            f'<tr class="node" data-node="{_e(n.id)}" data-status="{n.status}">'
            f"<td><code>{_e(n.id)}</code></td>"
            f'<td><span class="badge s-{n.status}">{n.status}{running}</span>{flags}</td>'
            f"<td>{_task_links(n) or '<span class=muted>-</span>'}</td><td>{_e(n.lifecycle or '-')}</td>"
            f"<td>{_e(swarm)}</td><td class=muted>{_e(times)}</td></tr>"
        )
    return (
        '<table class="nodes"><tr><th>Node (instance)</th><th>State</th><th>Running task instances</th>'
        "<th>Group lifecycle</th><th>Swarm</th><th>Times</th></tr>" + "".join(rows) + "</table>"
    )


def _queue_card(q: QueueView, view: ClusterView, with_chart: bool, offset: int = 0) -> str:
    loads = "".join(
        f'<div class="figure load-{_e(src)}"><b>{_n(v)}</b><span>{_e(src)}</span></div>'
        for src, v in q.loads.items()
    )
    size = (
        f'<div class="figure"><b>{_n(q.current)}</b>'
        f"<span>group size (min {q.min_size}, max {q.max_size})</span></div>"
        f'<div class="figure"><b>{_n(q.want)}</b><span>want ({q.slots_per_node} slots per node)</span></div>'
    )
    parts = [
        f'<section class="card queue" id="queue-{_e(q.queue)}" data-queue="{_e(q.queue)}">',
        f'<div class="head"><h2>Queue {_e(q.queue)}</h2>',
        f'<span class="muted">group <code>{_e(q.group)}</code></span>',
    ]
    if q.failed:
        parts.append('<span class="badge a-hold">read failed</span>')
    parts.append("</div>")
    parts.append(
        '<div class="figures">'
        f'<div class="figure"><b class="load">{_n(q.load)}</b><span>load (tasks)</span></div>'
        f"{loads}{size}</div>"
    )
    if q.error:
        parts.append(f'<p class="bad">{_e(q.error)}</p>')
    if q.stray_hosts:
        parts.append(
            f'<p class="warn">Tasks of this queue run on {_e(", ".join(q.stray_hosts))}, not an instance of '
            "the group: the scaler will not scale it in.</p>"
        )
    if q.last_decision is not None:
        d = q.last_decision
        parts.append(
            f'<p class="last-decision">Last decision {_ago(view.generated_at - d.t)} ago: '
            f'<span class="badge a-{d.action}">{d.action}</span> {_n(d.current)} &rarr; {_n(d.desired)} '
            f"&middot; {_e(d.reason)}</p>"
        )
    if with_chart:
        parts.append(chart(q, view.generated_at, view.window_seconds or 3600.0))
    parts.append(_node_counts(q))
    alone = len(view.queues) == 1
    rows, offset = (NODE_ROWS, offset) if alone else (PREVIEW_ROWS, 0)
    is_open = " open" if alone or len(q.nodes) <= PREVIEW_ROWS else ""
    parts.append(
        f'<details class="nodes" id="nodes-{_e(q.queue)}"{is_open}><summary>Nodes ({len(q.nodes)})</summary>'
        f"{_pager(q, offset, rows)}{_nodes_table(q, view.generated_at, offset, rows)}</details></section>"
    )
    return "".join(parts)


def _acted(e: HistoryEntry) -> str:
    bits = []
    acts = (
        ("removed", e.removed),
        ("cordoned", e.cordoned),
        ("resumed", e.uncordoned),
        ("restarted", e.restarted),
    )
    for label, ids in acts:
        if ids:
            bits.append(f"{label} {', '.join(ids)}")
    return "; ".join(bits)


def _decisions(view: ClusterView) -> str:
    if not view.decisions:
        return (
            '<section class="card" id="decisions"><h2>Scaling decisions</h2>'
            '<p class="muted">None recorded yet.</p></section>'
        )
    rows = []
    for e in view.decisions:
        loads = ", ".join(f"{k} {_n(v)}" for k, v in e.loads.items())
        rows.append(
            f'<tr class="decision" data-queue="{_e(e.queue)}" data-action="{e.action}">'
            f'<td title="{_e(_t(e.t))}">{_hm(e.t)}<br>'
            f"<span class=muted>{_ago(view.generated_at - e.t)} ago</span></td>"
            f"<td>{_e(e.queue)}</td>"
            f'<td><span class="badge a-{e.action}">{e.action}</span></td>'
            f"<td>{_n(e.load)}<br><span class=muted>{_e(loads)}</span></td>"
            f"<td>{_n(e.current)} &rarr; {_n(e.desired)}<br><span class=muted>want {_n(e.want)}</span></td>"
            f'<td class="reason">{_e(e.reason)}</td><td>{_e(_acted(e))}</td></tr>'
        )
    return (
        '<section class="card" id="decisions"><h2>Scaling decisions</h2>'
        '<p class="muted">Newest first; an entry each time a decision changed '
        "(the periodic samples only feed the charts).</p>"
        "<table><tr><th>Time (UTC)</th><th>Queue</th><th>Action</th><th>Load</th><th>Size</th>"
        "<th>Reason</th><th>Nodes acted on</th></tr>" + "".join(rows) + "</table></section>"
    )


def _swarm(swarm: SwarmView, now: float) -> str:
    head = '<section class="card" id="swarm"><h2>Swarm nodes</h2>'
    if swarm.source == "none":
        why = f" ({_e(swarm.error)})" if swarm.error else ""
        return (
            head + f'<p class="muted">No Swarm information{why}: configure <code>swarm</code> in the scaler '
            "config; the scaler then records the node list for this page.</p></section>"
        )
    where = (
        "live from the Docker API"
        if swarm.source == "live"
        else f"as the scaler last recorded them, {_ago(now - (swarm.as_of or now))} ago"
    )
    rows = "".join(
        f'<tr class="swarm-node" data-state="{_e(n.state)}"><td><code>{_e(n.hostname)}</code></td>'
        f"<td>{_e(n.role)}</td>"
        f"<td>{_e(n.queue or '-')}</td><td>{_e(n.state)}</td><td>{_e(n.availability)}</td>"
        f"<td>{_e(n.member_of or ('-' if n.role == 'manager' else 'no group lists it'))}</td></tr>"
        for n in swarm.nodes
    )
    return (
        head + f'<p class="muted">{where}</p><table><tr><th>Hostname</th><th>Role</th><th>Queue label</th>'
        "<th>State</th><th>Availability</th><th>Group member of</th></tr>" + rows + "</table></section>"
    )


def _header(view: ClusterView) -> str:
    name = _e(view.cluster_name or "Air-Tasks")
    bits = [f"backend {_e(view.backend)}" if view.backend else "", f"updated {_t(view.generated_at)}"]
    if view.history_store != "none" and view.history_written_at is not None:
        bits.append(f"scaler history written {_ago(view.generated_at - view.history_written_at)} ago")
    line = " &middot; ".join(b for b in bits if b)
    out = [f'<header><h1>Cluster {name}</h1><p class="muted">{line} <span id="refresh"></span></p>']
    if view.queues and view.scaler_stale:
        out.append(
            '<p class="warn" id="stale">The scaler has not recorded a pass for a while: is the '
            "<code>airtasks_scaler</code> DAG unpaused and running on the <code>manager</code> queue?</p>"
        )
    problems = list(view.problems)
    if view.history_error:
        problems.append(view.history_error)
    if problems:
        out.append('<ul class="problems">' + "".join(f"<li>{_e(p)}</li>" for p in problems) + "</ul>")
    out.append("</header>")
    return "".join(out)


def render_content(view: ClusterView, section: Section = "all", *, nodes_offset: int = 0) -> str:
    parts = [_header(view)]
    queues: Iterable[QueueView] = view.queues
    parts.extend(_queue_card(q, view, with_chart=section == "all", offset=nodes_offset) for q in queues)
    if section == "all":
        parts.append(_decisions(view))
    parts.append(_swarm(view.swarm, view.generated_at))
    return "".join(parts)


def render_page(view: ClusterView, section: Section = "all", *, nodes_offset: int = 0) -> str:
    title = "Cluster" if section == "all" else "Nodes"
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Air-Tasks &middot; {title}</title><style>{CSS}</style></head>"
        f'<body><div id="content">{render_content(view, section, nodes_offset=nodes_offset)}</div>'
        f"<script>{SCRIPT}</script></body></html>"
    )


__all__ = ["chart", "render_content", "render_page"]
