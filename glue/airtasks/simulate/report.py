"""Run policies on a trace and summarise: the numbers users choose an autoscaler by."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from airtasks.errors import AirtasksError
from airtasks.simulate.engine import Interruptions, Outcome, percentile, run
from airtasks.simulate.policies import POLICIES, make_policy, oracle
from airtasks.simulate.settings import Settings
from airtasks.simulate.trace import Task


@dataclass(frozen=True)
class Metrics:
    node_seconds: float
    wait_p50_s: float
    wait_p95_s: float
    tasks_killed: int
    scale_actions: int
    node_seconds_vs_oracle: float
    # With interruptions only (None otherwise, and left out of the JSON):
    notices: int | None = None
    lost: int | None = None
    """Runs killed when an interrupted node was reclaimed; each used one of its task's retries."""
    restarted: int | None = None
    """Runs restarted elsewhere before the deadline, using no retry."""
    extra_wait_mean_s: float | None = None
    """Mean wait per task minus the same policy's on the same trace without interruptions."""


@dataclass(frozen=True)
class Report:
    tasks: int
    boot_seconds: float
    metrics: Mapping[str, Metrics]
    outcomes: Mapping[str, Outcome]
    interruptions: Interruptions | None = None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "tasks": self.tasks,
            "boot_seconds": self.boot_seconds,
            "policies": {
                name: {k: v for k, v in asdict(m).items() if v is not None}
                for name, m in self.metrics.items()
            },
        }
        if self.interruptions is not None:
            doc["interruptions"] = asdict(self.interruptions)
        return doc


def check_policies(names: Sequence[str]) -> list[str]:
    unknown = [n for n in names if n not in POLICIES]
    if unknown:
        raise AirtasksError(f"unknown policy {unknown[0]!r}; use --policy with one of: {', '.join(POLICIES)}")
    return list(dict.fromkeys(names)) or list(POLICIES)


def simulate(
    tasks: Sequence[Task],
    policies: Sequence[str],
    settings: Settings,
    boot_seconds: float = 60.0,
    interruptions: Interruptions | None = None,
) -> Report:
    """Every policy on the same tasks; the oracle is always computed for the ratio. With
    `interruptions`, every policy but the oracle (which has none) also runs without them, for the
    extra wait they cause."""
    names = check_policies(policies)
    if boot_seconds < 0:
        raise AirtasksError(f"--boot-seconds must be >= 0 (got {boot_seconds:g})")
    if interruptions is not None and not 0 <= interruptions.per_node_hour < float("inf"):
        raise AirtasksError(
            f"--interruptions must be >= 0 notices per node-hour (got {interruptions.per_node_hour:g}); "
            "use e.g. --interruptions 0.5"
        )
    bound = oracle(tasks, settings, boot_seconds)
    outcomes: dict[str, Outcome] = {}
    extra: dict[str, float] = {}
    for name in names:
        if name == "oracle":
            outcomes[name] = bound
            continue
        outcomes[name] = run(tasks, make_policy(name, settings), settings, boot_seconds, interruptions)
        if interruptions is not None:
            calm = run(tasks, make_policy(name, settings), settings, boot_seconds)
            waits = outcomes[name].waits
            extra[name] = (sum(waits) - sum(calm.waits)) / len(waits) if waits else 0.0
    metrics = {
        name: Metrics(
            node_seconds=round(o.node_seconds, 1),
            wait_p50_s=round(percentile(o.waits, 50), 1),
            wait_p95_s=round(percentile(o.waits, 95), 1),
            tasks_killed=o.tasks_killed,
            scale_actions=o.scale_actions,
            node_seconds_vs_oracle=round(o.node_seconds / bound.node_seconds, 3)
            if bound.node_seconds
            else 0.0,
            notices=o.notices if name in extra else None,
            lost=o.lost if name in extra else None,
            restarted=o.restarted if name in extra else None,
            extra_wait_mean_s=round(extra[name], 1) if name in extra else None,
        )
        for name, o in outcomes.items()
    }
    return Report(len(tasks), boot_seconds, metrics, outcomes, interruptions)


HEADER = ("policy", "node-hours", "vs oracle", "wait p50", "wait p95", "killed", "scale actions")
INTERRUPTION_HEADER = ("notices", "lost (retries used)", "restarted (no retry)", "extra wait, mean")


def header(report: Report) -> tuple[str, ...]:
    return HEADER + (INTERRUPTION_HEADER if report.interruptions is not None else ())


def rows(report: Report) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for name, m in report.metrics.items():
        row: tuple[str, ...] = (
            name,
            f"{m.node_seconds / 3600:.1f}",
            f"{m.node_seconds_vs_oracle:.2f}x",
            f"{m.wait_p50_s:.0f} s",
            f"{m.wait_p95_s:.0f} s",
            str(m.tasks_killed),
            str(m.scale_actions),
        )
        if report.interruptions is not None:
            row += (
                ("-", "-", "-", "-")
                if m.lost is None
                else (str(m.notices), str(m.lost), str(m.restarted), f"{m.extra_wait_mean_s:.0f} s")
            )
        out.append(row)
    return out


def format_table(report: Report, markdown: bool = False) -> str:
    body = rows(report)
    head = header(report)
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in body]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return "\n".join(fmt.format(*r) for r in [head, *body])


__all__ = ["Metrics", "Report", "check_policies", "format_table", "simulate"]
