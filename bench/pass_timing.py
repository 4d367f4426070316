"""How long one scaling pass takes: 3 queues, real RabbitMQ (management API) + Auto Scaling
groups on moto, 50 passes; p50/p95 in ms. `python -m bench.pass_timing` prints the dict."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from airtasks.config import parse_config
from airtasks.scaling.scaler import Scaler
from airtasks.state.history import HistoryStore
from airtasks.state.memory import MemoryStore
from airtasks.wiring import build_clients
from bench._common import credentials, services, summary
from tests.support.services import aws_groups


def pass_timing(passes: int = 50, queues: int = 3) -> dict[str, Any]:
    """One scaler, `passes` passes over `queues` queues with messages waiting; the first pass
    scales every group out, the rest find the sizes right (the steady state)."""
    with services() as (_moto, broker):
        names = [f"q{i}" for i in range(queues)]
        config = parse_config(
            {
                "backend": "aws",
                "region": "us-east-1",
                "sources": {"rabbitmq": {"url": broker.management_url, "amqp_port": broker.amqp_port}},
                "celery": None,
                "queues": {
                    q: {"group": aws_groups.make_group("bench", q, 1), "max_size": 10, "slots_per_node": 4}
                    for q in names
                },
            }
        )
        for i, q in enumerate(names):
            broker.publish(q, 4 * (i + 1))
        for i, q in enumerate(names):
            broker.wait_depth(q, 4 * (i + 1))
        clients = build_clients(config, credentials(broker))
        # In-process stores: no file in ~.
        clients = replace(clients, memory=MemoryStore.in_process(), history=HistoryStore.in_process())
        scaler = Scaler(config, clients)
        reports = [scaler.run_pass() for _ in range(passes)]
        scaler.close()
    durations = [r.duration_ms for r in reports]
    return {
        "name": "one scaling pass",
        "setup": f"{queues} queues, RabbitMQ management API + moto Auto Scaling, {passes} passes",
        "passes": passes,
        "queues": queues,
        "first_pass_ms": round(durations[0], 1),
        "first_pass_actions": [q.action for q in reports[0].queues],
        **summary(durations),
    }


def run() -> dict[str, Any]:
    """`make bench`'s entry (bench/__main__.py): 50 passes over 3 queues."""
    return pass_timing()


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
