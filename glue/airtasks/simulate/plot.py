"""Queue length and node count over time, one line per policy, to a PNG (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from airtasks.simulate.report import Report

COLOURS = {"airtasks": "tab:blue", "seed": "tab:red", "keda": "tab:orange", "oracle": "tab:gray"}


def plot(report: Report, out: str | Path, title: str = "", window: tuple[float, float] | None = None) -> Path:
    """Write the PNG; `window` (start, end in seconds) zooms in on part of the trace."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    end = max(o.end_s for o in report.outcomes.values())
    span = (window[1] - window[0]) if window else end
    hours = span > 3 * 3600
    scale, unit = (3600.0, "hours") if hours else (60.0, "minutes")
    fig = Figure(figsize=(11, 6.5), layout="constrained")  # no pyplot: Agg canvas, no global state
    ax_q, ax_n = fig.subplots(2, 1, sharex=True)
    for name, o in report.outcomes.items():
        s = o.series
        if not s.t:
            continue
        ts = [t / scale for t in s.t] + [o.end_s / scale]
        colour = COLOURS.get(name)
        width = 1.6 if name == "airtasks" else 1.0
        z = 3 if name == "airtasks" else 2  # on top where policies coincide
        if name != "oracle":
            ax_q.step(
                ts, [*s.queued, s.queued[-1]], where="post", color=colour, lw=width, zorder=z, label=name
            )
        style = "--" if name == "oracle" else "-"
        ax_n.step(
            ts, [*s.nodes, s.nodes[-1]], where="post", color=colour, lw=width, ls=style, zorder=z, label=name
        )
    ax_q.set_ylabel("tasks waiting")
    ax_n.set_ylabel("nodes (booting included)")
    ax_n.set_xlabel(f"time ({unit})")
    ax_q.legend(loc="upper right", ncols=4, fontsize="small")
    ax_n.legend(loc="upper right", ncols=4, fontsize="small")
    if window:
        ax_n.set_xlim(window[0] / scale, window[1] / scale)
    m = report.metrics
    summary = ", ".join(f"{k} {v.node_seconds_vs_oracle:.2f}x" for k, v in m.items() if k != "oracle")
    ax_q.set_title(
        f"{title} — node-seconds vs oracle: {summary}" if title else f"node-seconds vs oracle: {summary}"
    )
    fig.savefig(path, dpi=110)
    return path


__all__ = ["plot"]
