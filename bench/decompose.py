"""Where the `airtasks` policy's node time goes, beside the oracle's, per trace kind and queue.

    python -m bench.decompose [--kinds bursty,mixed] [--seeds 2,3,4,5,6,7] [--pack] [--learn-durations]
        [--stabilization 0] [--idle 0]

Each node's time from launch to removal is split into:
- boot: launch to ready (joined, able to take tasks);
- pre: ready to its first task; gaps: idle between its tasks; tail: its last task's end to its
  removal (the stabilisation window, idle time, the pass and the drain); never used: ready to
  removal of a node that ran no task;
- partial: slots left empty while it ran some task, (1 - k / slots) of the time it ran k, split
  into not cordoned (`partial`) and cordoned (`partial_cordoned`: the scale-in's surplus node,
  packing);
- work: k / slots of that time, which adds up to the tasks' run time over slots per node (more if
  runs were killed).
The oracle's node time is split into work, its own rounding up to whole nodes, and the rest (boots
and the gaps it keeps a node through; `policies.oracle_queues`). Figures are shares of the
oracle's node time over all queues, summed over the seeds. Default settings, boot 60 s, the
tuning seeds (`bench.heldout.TUNING_SEEDS`).
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from airtasks.simulate.engine import History, NodeLife, TaskRun, run
from airtasks.simulate.policies import AirtasksPolicy, oracle_queues
from airtasks.simulate.settings import Settings
from airtasks.simulate.trace import KINDS, Task, generate
from bench.heldout import BOOT_SECONDS, TUNING_SEEDS
from bench.options import add_policy_options, describe, policy_settings

CATEGORIES: tuple[str, ...] = (
    "boot",
    "pre",
    "gaps",
    "tail",
    "never_used",
    "partial",
    "partial_cordoned",
    "work",
)
"""The parts of a node's time, in the order printed; they add up to its launch-to-removal time."""


@dataclass(frozen=True)
class Parts:
    """Node-seconds of one queue (or one node) by where they went, with the oracle's beside."""

    nodes: int = 0
    never_used_nodes: int = 0
    boot: float = 0.0
    pre: float = 0.0
    gaps: float = 0.0
    tail: float = 0.0
    never_used: float = 0.0
    partial: float = 0.0
    partial_cordoned: float = 0.0
    work: float = 0.0
    oracle_work: float = 0.0
    oracle_rounding: float = 0.0
    oracle_boot_gaps: float = 0.0

    @property
    def total(self) -> float:
        """The policy's node-seconds: every category."""
        return (
            self.boot
            + self.pre
            + self.gaps
            + self.tail
            + self.never_used
            + self.partial
            + self.partial_cordoned
            + self.work
        )

    @property
    def oracle_total(self) -> float:
        return self.oracle_work + self.oracle_rounding + self.oracle_boot_gaps

    def __add__(self, other: Parts) -> Parts:
        return Parts(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in dataclasses.fields(Parts)}
        )


def node_parts(node: NodeLife, runs: Sequence[TaskRun], slots: int) -> Parts:
    """Split one node's launch-to-removal time; `runs` are the runs on it."""
    ready = node.ready_at if node.ready_at is not None else node.gone_at
    boot = ready - node.launched_at
    if not runs:
        return Parts(nodes=1, never_used_nodes=1, boot=boot, never_used=node.gone_at - ready)
    first = min(r.start for r in runs)
    last = max(r.end for r in runs)
    delta: dict[float, int] = {}
    for r in runs:
        delta[r.start] = delta.get(r.start, 0) + 1
        delta[r.end] = delta.get(r.end, 0) - 1
    cordon: dict[float, bool] = {}
    for t, state in node.cordons:  # in order: the last change at an instant holds
        cordon[t] = state
    gaps = work = partial = partial_cordoned = 0.0
    running = 0
    cordoned = False
    prev: float | None = None
    for t in sorted(delta.keys() | cordon.keys()):
        if prev is not None and t > prev:
            span = t - prev
            if running > 0:
                work += span * running / slots
                if cordoned:
                    partial_cordoned += span * (1 - running / slots)
                else:
                    partial += span * (1 - running / slots)
            elif first <= prev and t <= last:
                gaps += span
        running += delta.get(t, 0)
        cordoned = cordon.get(t, cordoned)
        prev = t
    return Parts(
        nodes=1,
        boot=boot,
        pre=first - ready,
        gaps=gaps,
        tail=node.gone_at - last,
        partial=partial,
        partial_cordoned=partial_cordoned,
        work=work,
    )


def history_parts(history: History, slots: Mapping[str, int]) -> dict[str, Parts]:
    """Per queue, the sum of its nodes' `node_parts`; `slots` per queue."""
    on: dict[str, list[TaskRun]] = {}
    for r in history.runs:
        on.setdefault(r.node, []).append(r)
    out: dict[str, Parts] = {}
    for node in history.nodes:
        out[node.queue] = out.get(node.queue, Parts()) + node_parts(
            node, on.get(node.id, []), slots[node.queue]
        )
    return out


def decompose(
    tasks: Sequence[Task], settings: Settings, boot_seconds: float = BOOT_SECONDS
) -> dict[str, Parts]:
    """`airtasks` on `tasks`, recorded and split per queue, with the oracle's parts beside."""
    outcome = run(tasks, AirtasksPolicy(settings), settings, boot_seconds, record=True)
    assert outcome.history is not None
    slots = {q: settings.queue(q).slots_per_node for q in {t.queue for t in tasks}}
    out = history_parts(outcome.history, slots)
    for q, o in oracle_queues(tasks, settings, boot_seconds).items():
        out[q] = out.get(q, Parts()) + Parts(
            oracle_work=o.work, oracle_rounding=o.rounding, oracle_boot_gaps=o.boot_and_gaps
        )
    return out


def decompose_kind(
    kind: str, seeds: Iterable[int], settings: Settings, boot_seconds: float = BOOT_SECONDS
) -> dict[str, Parts]:
    """`decompose` summed over the seeds of one trace kind, per queue."""
    total: dict[str, Parts] = {}
    for seed in seeds:
        for q, p in decompose(generate(kind, seed), settings, boot_seconds).items():
            total[q] = total.get(q, Parts()) + p
    return total


def _share(x: float, whole: float) -> str:
    return f"{round(x / whole, 3) + 0.0:.3f}"  # + 0.0: no "-0.000"


def format_kind(kind: str, parts: Mapping[str, Parts]) -> str:
    """Every figure as a share of the oracle's node time over all queues."""
    oracle_all = sum(p.oracle_total for p in parts.values())
    policy_all = sum(p.total for p in parts.values())
    lines = [f"== {kind}: airtasks/oracle {policy_all / oracle_all:.3f} (shares of the oracle's node time)"]
    for q, p in sorted(parts.items()):
        beyond = p.partial + p.partial_cordoned - p.oracle_rounding
        lines += [
            f"  queue {q}: nodes {p.nodes}, never used {p.never_used_nodes}; "
            f"airtasks {p.total / oracle_all:.3f} vs oracle {p.oracle_total / oracle_all:.3f}",
            "    airtasks: " + " ".join(f"{c}={getattr(p, c) / oracle_all:.3f}" for c in CATEGORIES),
            f"    oracle:   work={p.oracle_work / oracle_all:.3f}"
            f" rounding={p.oracle_rounding / oracle_all:.3f} boot+gaps={p.oracle_boot_gaps / oracle_all:.3f}",
            f"    partly empty beyond the oracle's rounding {_share(beyond, oracle_all)}, "
            f"boot beyond the oracle's boot+gaps {_share(p.boot - p.oracle_boot_gaps, oracle_all)}",
        ]
    tail = sum(p.tail for p in parts.values())
    lines.append(f"  all queues: tail {tail / oracle_all:.3f}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        prog="python -m bench.decompose",
        description="Where the airtasks policy's node time goes, beside the oracle's.",
    )
    ap.add_argument("--kinds", default=",".join(KINDS), help="comma-separated trace kinds")
    ap.add_argument(
        "--seeds",
        default=",".join(map(str, TUNING_SEEDS)),
        help="comma-separated generator seeds (default: the tuning seeds)",
    )
    add_policy_options(ap)
    args = ap.parse_args(argv)
    kinds = [k for k in args.kinds.split(",") if k]
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        ap.error(f"unknown trace kinds {unknown}; use some of: {', '.join(KINDS)}")
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s]
    except ValueError:
        ap.error(f"--seeds must be comma-separated integers, not {args.seeds!r}")
    settings = policy_settings(args)
    print(f"seeds {','.join(map(str, seeds))}, boot {BOOT_SECONDS:g} s, {describe(settings)}")
    for kind in kinds:
        print(format_kind(kind, decompose_kind(kind, seeds, settings)))


if __name__ == "__main__":
    main()
