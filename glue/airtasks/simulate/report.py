"""Run policies on a trace and summarise: the numbers users choose an autoscaler by."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from airtasks.errors import AirtasksError
from airtasks.simulate.engine import Outcome, percentile, run
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


@dataclass(frozen=True)
class Report:
    tasks: int
    boot_seconds: float
    metrics: Mapping[str, Metrics]
    outcomes: Mapping[str, Outcome]

    def to_json(self) -> dict[str, Any]:
        return {
            "tasks": self.tasks,
            "boot_seconds": self.boot_seconds,
            "policies": {name: asdict(m) for name, m in self.metrics.items()},
        }


def check_policies(names: Sequence[str]) -> list[str]:
    unknown = [n for n in names if n not in POLICIES]
    if unknown:
        raise AirtasksError(f"unknown policy {unknown[0]!r}; use --policy with one of: {', '.join(POLICIES)}")
    return list(dict.fromkeys(names)) or list(POLICIES)


def simulate(
    tasks: Sequence[Task], policies: Sequence[str], settings: Settings, boot_seconds: float = 60.0
) -> Report:
    """Every policy on the same tasks; the oracle is always computed for the ratio."""
    names = check_policies(policies)
    if boot_seconds < 0:
        raise AirtasksError(f"--boot-seconds must be >= 0 (got {boot_seconds:g})")
    bound = oracle(tasks, settings, boot_seconds)
    outcomes: dict[str, Outcome] = {}
    for name in names:
        outcomes[name] = (
            bound if name == "oracle" else run(tasks, make_policy(name, settings), settings, boot_seconds)
        )
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
        )
        for name, o in outcomes.items()
    }
    return Report(tasks=len(tasks), boot_seconds=boot_seconds, metrics=metrics, outcomes=outcomes)


HEADER = ("policy", "node-hours", "vs oracle", "wait p50", "wait p95", "killed", "scale actions")


def rows(report: Report) -> list[tuple[str, ...]]:
    return [
        (
            name,
            f"{m.node_seconds / 3600:.1f}",
            f"{m.node_seconds_vs_oracle:.2f}x",
            f"{m.wait_p50_s:.0f} s",
            f"{m.wait_p95_s:.0f} s",
            str(m.tasks_killed),
            str(m.scale_actions),
        )
        for name, m in report.metrics.items()
    ]


def format_table(report: Report, markdown: bool = False) -> str:
    body = rows(report)
    if markdown:
        lines = ["| " + " | ".join(HEADER) + " |", "|" + "|".join("---" for _ in HEADER) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in body]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in [HEADER, *body]) for i in range(len(HEADER))]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return "\n".join(fmt.format(*r) for r in [HEADER, *body])


__all__ = ["Metrics", "Report", "check_policies", "format_table", "simulate"]
