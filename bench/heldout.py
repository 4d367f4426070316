"""`python -m bench.heldout`: the defaults on HELD-OUT seeds of every generated trace kind.

The seeds are `bench.sweep.HELD_OUT_SEEDS`, which the sweep refuses to tune on. Per kind: the
`airtasks` policy's node-seconds vs the oracle bound (mean and worst seed), its p95 wait (mean and
worst seed) and tasks killed. On the `scheduled` kind also the comparison of `airtasks` with and
without pre-scaling beside `keda` and `oracle`, with the p95 wait of the scheduled runs' tasks.
`make bench` prints both and writes bench/results/heldout.json.

    python -m bench.heldout [--stabilization S] [--idle S] [--workers 2]   (defaults: the scaler's)
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from airtasks.simulate.settings import Settings
from airtasks.simulate.trace import KINDS
from bench.sweep import BOOT_SECONDS, HELD_OUT_SEEDS, RESULTS, run_jobs, summarise

SCHEDULED_POLICIES = ("airtasks", "airtasks-no-prescale", "keda", "oracle")


def measure(window: float, idle: float, interval: float, workers: int = 2) -> dict[str, Any]:
    jobs = [
        (k, s, window, idle, interval, SCHEDULED_POLICIES if k == "scheduled" else ("airtasks",))
        for k in KINDS
        for s in HELD_OUT_SEEDS
    ]
    rows = run_jobs(jobs, workers)
    scheduled = [r for r in rows if r["kind"] == "scheduled"]
    compare = {}
    for p in SCHEDULED_POLICIES:
        ms = [r["policies"][p] for r in scheduled]
        compare[p] = {
            "mean": sum(m["node_seconds_vs_oracle"] for m in ms) / len(ms),
            "worst": max(m["node_seconds_vs_oracle"] for m in ms),
            "p95_wait_scheduled_mean": sum(m["wait_p95_scheduled_s"] for m in ms) / len(ms),
            "p95_wait_scheduled_worst": max(m["wait_p95_scheduled_s"] for m in ms),
            "p95_wait_warm_mean": sum(m["wait_p95_scheduled_warm_s"] for m in ms) / len(ms),
            "p95_wait_warm_worst": max(m["wait_p95_scheduled_warm_s"] for m in ms),
            "p95_wait_mean": sum(m["wait_p95_s"] for m in ms) / len(ms),
            "killed": sum(m["tasks_killed"] for m in ms),
        }
    return {
        "settings": {
            "interval_seconds": interval,
            "stabilization_seconds": window,
            "idle_seconds": idle,
            "boot_seconds": BOOT_SECONDS,
        },
        "held_out_seeds": list(HELD_OUT_SEEDS),
        "per_kind": summarise(rows),
        "scheduled": compare,
        "runs": rows,
    }


def format_held_out(doc: dict[str, Any]) -> str:
    lines = [
        f"{'kind':<10} {'mean':>6} {'worst':>6} {'p95 wait':>9} {'worst p95':>9} {'killed':>6}",
    ]
    for kind, s in doc["per_kind"].items():
        lines.append(
            f"{kind:<10} {s['mean']:>5.3f}x {s['worst']:>5.3f}x {s['p95_wait_mean']:>7.1f} s "
            f"{s['p95_wait_worst']:>7.1f} s {int(s['killed']):>6}"
        )
    return "\n".join(lines)


def format_scheduled(doc: dict[str, Any]) -> str:
    lines = [
        f"{'policy':<21} {'mean':>6} {'worst':>6} {'sched p95':>9} {'worst':>7} "
        f"{'warm p95':>8} {'worst':>7} {'all p95':>8}"
    ]
    for p, s in doc["scheduled"].items():
        lines.append(
            f"{p:<21} {s['mean']:>5.3f}x {s['worst']:>5.3f}x {s['p95_wait_scheduled_mean']:>7.1f} s "
            f"{s['p95_wait_scheduled_worst']:>5.1f} s {s['p95_wait_warm_mean']:>6.1f} s "
            f"{s['p95_wait_warm_worst']:>5.1f} s {s['p95_wait_mean']:>6.1f} s"
        )
    return "\n".join(lines)


def main() -> None:
    base = Settings()
    ap = argparse.ArgumentParser(prog="python -m bench.heldout")
    ap.add_argument("--stabilization", type=float, default=base.stabilization_seconds)
    ap.add_argument("--idle", type=float, default=base.idle_seconds)
    ap.add_argument("--interval", type=float, default=base.interval_seconds)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default=None, help="also write the figures to this JSON file")
    args = ap.parse_args()
    doc = measure(args.stabilization, args.idle, args.interval, args.workers)
    print(
        f"held-out seeds {list(HELD_OUT_SEEDS)}, boot {BOOT_SECONDS:g} s, window {args.stabilization:g} s, "
        f"idle {args.idle:g} s, every {args.interval:g} s: airtasks node-seconds vs oracle"
    )
    print(format_held_out(doc))
    print(
        "\nscheduled kind: node-seconds vs oracle / p95 wait of the scheduled runs' tasks (warm: "
        "without each DAG's first run)"
    )
    print(format_scheduled(doc))
    if args.out:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / args.out).write_text(
            json.dumps({k: v for k, v in doc.items() if k != "runs"}, indent=2) + "\n"
        )


if __name__ == "__main__":
    main()
