"""Reaction time: from tasks queued (messages published to a queue's broker queue) to the
scaler calling `set_size` on that queue's group, with the scaler running passes every
`interval_seconds` as the DAG does. 10 tries at random moments; p50/p95 in ms.

The floor is set by the interval and by the broker's statistics interval (the management API
counts are sampled every `collect_statistics_interval`: 1 s in the stack's RabbitMQ and the test
broker; RabbitMQ's own default is 5 s).
`python -m bench.reaction` prints the dict.
"""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import replace
from typing import Any

from airtasks.backends.aws import AwsBackend
from airtasks.config import ScalerConfig, parse_config
from airtasks.scaling.loop import watch
from airtasks.scaling.scaler import Scaler
from airtasks.state.history import HistoryStore
from airtasks.state.memory import MemoryStore
from airtasks.wiring import build_clients
from bench._common import credentials, services, summary
from tests.support.services import aws_groups


class _Recording(AwsBackend):
    """The real backend, noting when set_size was first called per group."""

    def __init__(self, region: str) -> None:
        super().__init__(region)
        self.first_set: dict[str, float] = {}

    def set_size(self, group: str, size: int) -> None:
        self.first_set.setdefault(group, time.monotonic())
        super().set_size(group, size)


def reaction(tries: int = 10, interval_seconds: float | None = None, seed: int = 4) -> dict[str, Any]:
    """`interval_seconds` defaults to the scaler's own default (what a deployment runs with)."""
    if interval_seconds is None:
        interval_seconds = float(ScalerConfig.model_fields["interval_seconds"].default)
    rng = random.Random(seed)
    with services() as (_moto, broker):
        names = [f"r{i}" for i in range(tries)]
        groups = {q: aws_groups.make_group("react", q, 0) for q in names}
        config = parse_config(
            {
                "backend": "aws",
                "region": "us-east-1",
                "interval_seconds": interval_seconds,
                "sources": {"rabbitmq": {"url": broker.management_url, "amqp_port": broker.amqp_port}},
                "celery": None,
                "queues": {q: {"group": groups[q], "max_size": 10, "slots_per_node": 4} for q in names},
            }
        )
        for q in names:  # queues exist and are empty before the clock starts
            broker.publish(q, 0)
        backend = _Recording("us-east-1")
        clients = build_clients(config, credentials(broker))
        # In-process stores: no file in ~.
        clients = replace(
            clients, backend=backend, memory=MemoryStore.in_process(), history=HistoryStore.in_process()
        )
        scaler = Scaler(config, clients)
        stop = threading.Event()
        loop = threading.Thread(target=lambda: watch(scaler, interval_seconds, stop=stop), name="scaler")
        loop.start()
        queued_at: dict[str, float] = {}
        for q in names:
            time.sleep(rng.uniform(0, interval_seconds))
            queued_at[q] = time.monotonic()
            broker.publish(q, 3)
        deadline = time.monotonic() + 6 * interval_seconds + 30
        while len(backend.first_set) < tries and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        loop.join(timeout=60)
        scaler.close()
        missing = [q for q in names if groups[q] not in backend.first_set]
        if missing:
            raise RuntimeError(f"no set_size for {missing} within the deadline")
    samples = [(backend.first_set[groups[q]] - queued_at[q]) * 1000.0 for q in names]
    return {
        "name": "reaction time (tasks queued -> set_size)",
        "setup": f"RabbitMQ source (stats every 1 s), moto Auto Scaling, pass every {interval_seconds:g} s",
        "tries": tries,
        "interval_seconds": interval_seconds,
        **summary(samples),
    }


def run() -> dict[str, Any]:
    """`make bench`'s entry (bench/__main__.py): the figures also in seconds, as it prints them."""
    result = reaction()
    return {**result, "p50_s": round(result["p50_ms"] / 1000, 2), "p95_s": round(result["p95_ms"] / 1000, 2)}


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
