"""`python -m bench.sweep`: how `stabilization_seconds` and `idle_seconds` trade node-seconds for waits.

Runs the `airtasks` policy (the scaler's decide()) on every trace kind for the TUNING seeds of
bench.heldout (never the held-out ones: it refuses them), over a grid of window and idle times,
and prints per kind: mean node-seconds vs oracle (worst seed) / worst seed's p95 wait. It ends with
the cell it would choose: the lowest worst-kind mean among cells with no task killed and every p95
wait within boot + two intervals. That is how decide.QueuePolicy's defaults were chosen; their
figures on the held-out seeds are what `make bench` prints.

    python -m bench.sweep [--seeds 2,3] [--stabilization 0,30] [--idle 0,10] [--learn-durations] [--pack]
"""

from __future__ import annotations

import argparse
import dataclasses

from airtasks.simulate.trace import KINDS
from bench.heldout import BOOT_SECONDS, TUNING_SEEDS, KindSummary, evaluate, tuning_only
from bench.options import add_pass_options, pass_settings


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def choose(
    cells: dict[tuple[int, int], dict[str, KindSummary]], wait_bound_s: float
) -> tuple[tuple[int, int], bool]:
    """The (window, idle) cell to pick, and whether it meets the wait bound with no task killed.

    Lowest worst-kind mean ratio first, then lowest worst-kind worst ratio: a default must hold on
    every kind of workload, not on average over them.
    """

    def score(cell: tuple[int, int]) -> tuple[float, float]:
        s = cells[cell].values()
        return max(k.mean_vs_oracle for k in s), max(k.worst_vs_oracle for k in s)

    def ok(cell: tuple[int, int]) -> bool:
        return all(k.wait_p95_s <= wait_bound_s and k.tasks_killed == 0 for k in cells[cell].values())

    good = [c for c in cells if ok(c)]
    best = min(good or list(cells), key=score)
    return best, bool(good)


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.sweep")
    add_pass_options(ap)
    ap.add_argument("--boot-seconds", type=float, default=BOOT_SECONDS)
    ap.add_argument("--seeds", type=_ints, default=list(TUNING_SEEDS))
    ap.add_argument("--stabilization", type=_ints, default=[0, 15, 30, 60])
    ap.add_argument("--idle", type=_ints, default=[0, 10, 20, 40])
    args = ap.parse_args()
    seeds = tuning_only(args.seeds)
    bound = args.boot_seconds + 2 * args.interval
    print(
        f"airtasks every {args.interval:g} s, learnt run times {args.learn_durations}, packing {args.pack}, "
        f"boot {args.boot_seconds:g} s, tuning seeds {list(seeds)}: "
        "node-seconds vs oracle, mean (worst seed) / p95 wait, worst seed"
    )
    print(f"{'window':>6} {'idle':>5}  " + "  ".join(f"{k:<22}" for k in KINDS))
    cells: dict[tuple[int, int], dict[str, KindSummary]] = {}
    for window in args.stabilization:
        for idle in args.idle:
            settings = dataclasses.replace(
                pass_settings(args), stabilization_seconds=window, idle_seconds=idle
            )
            cells[window, idle] = got = evaluate(settings, seeds, KINDS, args.boot_seconds)
            row = [
                f"{s.mean_vs_oracle:.3f} ({s.worst_vs_oracle:.3f}) / {s.wait_p95_s:3.0f} s"
                for s in got.values()
            ]
            print(f"{window:>6} {idle:>5}  " + "  ".join(f"{c:<22}" for c in row), flush=True)
    (window, idle), met = choose(cells, bound)
    print(
        f"choose: window {window} s, idle {idle} s"
        + ("" if met else f" (no cell kept every p95 wait within {bound:g} s with no task killed)")
        + "; report it on the held-out seeds with `python -m bench`"
    )


if __name__ == "__main__":
    main()
