"""One Airflow pool per worker queue, sized to what the queue's group can run at its maximum size.

Why: Airflow hands a task to Celery (state `queued`) as soon as the scheduler's limits allow, and
a task that waits in `queued` longer than `[scheduler] task_queued_timeout` is taken back and, on
its third time, failed. A queue whose backlog exceeds its group's maximum capacity would lose tasks
that way. With a pool of `max_size x slots_per_node` slots per queue, at most that many of the
queue's tasks are queued or running; the rest wait in `scheduled`, which has no timeout, and the
scaler still sees the queue's full capacity as its load.

The stack sets `AIRTASKS_QUEUE_POOLS` (`queue=slots ...`, from `airtasks stack render --queue
NAME:SLOTS:MAX_NODES`) on every Airflow service. Then:
- `airtasks.policy.task_policy` (an Airflow cluster policy, entry point `airflow.policy`) puts each
  task of such a queue that names no pool of its own into the queue's pool, when Airflow parses
  its DAG;
- `python -m airtasks.pools` (run by the image's `init` after the migration) creates or resizes
  the pools.
Without the variable (`make up`, a stack rendered without sizes) both do nothing.
"""

from __future__ import annotations

import os
import re
import sys
from functools import cache

POOLS_ENV = "AIRTASKS_QUEUE_POOLS"
# Airflow's own pool (airflow.models.pool.Pool.DEFAULT_POOL_NAME), what a task names when its
# author set no pool; written out so parsing a DAG does not import the models.
DEFAULT_POOL = "default_pool"
_ITEM = re.compile(r"^([a-z][a-z0-9-]{0,30})=([0-9]{1,7})$")


class PoolsError(ValueError):
    """AIRTASKS_QUEUE_POOLS is malformed."""


def pool_name(queue: str) -> str:
    """The pool of a queue's tasks."""
    return f"airtasks-{queue}"


def format_pools(pools: dict[str, int]) -> str:
    """`queue=slots` items separated by spaces (the value of AIRTASKS_QUEUE_POOLS)."""
    return " ".join(f"{q}={n}" for q, n in pools.items())


@cache
def parse_pools(text: str) -> dict[str, int]:
    """queue -> slots from AIRTASKS_QUEUE_POOLS' value (empty: none)."""
    pools: dict[str, int] = {}
    for item in text.split():
        match = _ITEM.fullmatch(item)
        if match is None:
            raise PoolsError(
                f"{POOLS_ENV}: {item!r} is not QUEUE=SLOTS (e.g. default=40); "
                "render the stack again with `airtasks stack render --queue NAME:SLOTS:MAX_NODES`"
            )
        pools[match[1]] = int(match[2])
    return pools


def pool_for(queue: str, pool: str, environ: dict[str, str] | None = None) -> str:
    """The pool a task of `queue` that names `pool` runs in: its queue's pool when the queue has
    one and the task's author chose none, else its own."""
    pools = parse_pools((os.environ if environ is None else environ).get(POOLS_ENV, ""))
    return pool_name(queue) if queue in pools and pool == DEFAULT_POOL else pool


def apply_pools(pools: dict[str, int]) -> list[str]:
    """Create or resize each queue's pool in the metadata database; a line per pool."""
    from airflow.models.pool import Pool  # noqa: PLC0415 (a database client: only here)

    lines = []
    for queue, slots in pools.items():
        description = f"Air-Tasks: tasks of queue {queue}, at most its group's slots at max size"
        Pool.create_or_update_pool(pool_name(queue), slots, description, include_deferred=False)
        lines.append(f"pool {pool_name(queue)}: {slots} slots")
    return lines


def main() -> int:
    try:
        pools = parse_pools(os.environ.get(POOLS_ENV, ""))
    except PoolsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for line in apply_pools(pools) or [f"no {POOLS_ENV}: no queue pools"]:
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = [
    "DEFAULT_POOL",
    "POOLS_ENV",
    "PoolsError",
    "apply_pools",
    "format_pools",
    "parse_pools",
    "pool_for",
    "pool_name",
]
