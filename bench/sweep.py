"""`python -m bench.sweep`: how `stabilization_seconds` and `idle_seconds` trade node-seconds for waits.

Runs the `airtasks` policy (the scaler's decide()) on every trace kind for several generator seeds,
over a grid of window and idle times, and prints per kind: mean node-seconds vs oracle (worst seed)
/ mean p95 wait. This is the evidence behind decide.QueuePolicy's defaults.

    python -m bench.sweep [--interval 5] [--seeds 1,2,3,4,5] [--stabilization 0,10,...] [--idle 0,10,...]
"""

from __future__ import annotations

import argparse
import dataclasses

from airtasks.simulate.report import simulate
from airtasks.simulate.settings import Settings
from airtasks.simulate.trace import KINDS, generate


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.sweep")
    ap.add_argument("--interval", type=float, default=Settings().interval_seconds)
    ap.add_argument("--boot-seconds", type=float, default=60.0)
    ap.add_argument("--seeds", type=_ints, default=[1, 2, 3, 4, 5])
    ap.add_argument("--stabilization", type=_ints, default=[0, 10, 20, 30, 45, 60, 120, 300])
    ap.add_argument("--idle", type=_ints, default=[0, 10, 20, 30, 60, 120])
    args = ap.parse_args()
    traces = {k: [generate(k, s) for s in args.seeds] for k in KINDS}
    print(
        f"airtasks every {args.interval:g} s, boot {args.boot_seconds:g} s, seeds {args.seeds}: "
        "node-seconds vs oracle, mean (worst seed) / p95 wait, mean"
    )
    print(f"{'window':>6} {'idle':>5}  " + "  ".join(f"{k:<22}" for k in KINDS))
    for window in args.stabilization:
        for idle in args.idle:
            settings = dataclasses.replace(
                Settings(), interval_seconds=args.interval, stabilization_seconds=window, idle_seconds=idle
            )
            cells = []
            for kind in KINDS:
                ms = [
                    simulate(t, ["airtasks"], settings, args.boot_seconds).metrics["airtasks"]
                    for t in traces[kind]
                ]
                ratio = [m.node_seconds_vs_oracle for m in ms]
                p95 = sum(m.wait_p95_s for m in ms) / len(ms)
                cells.append(f"{sum(ratio) / len(ratio):.3f} ({max(ratio):.3f}) / {p95:3.0f} s")
            print(f"{window:>6} {idle:>5}  " + "  ".join(f"{c:<22}" for c in cells), flush=True)


if __name__ == "__main__":
    main()
