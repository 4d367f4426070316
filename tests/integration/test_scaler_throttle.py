"""Cloud throttling on one queue's group (real Auto Scaling groups on the moto server): AWS answers
`Throttling` to every call that names that group, through the client's retries. Only that queue
holds; the others scale out and in within the same pass, and it recovers on the next one."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from airtasks.backends.aws import AwsBackend
from airtasks.config import parse_config
from airtasks.scaling.scaler import Scaler
from airtasks.state.memory import MemoryStore
from airtasks.wiring import Clients
from tests.support.services import aws_groups
from tests.support.throttle import Throttle
from tests.unit.fakes import FakeAirflow, FakeControl

pytestmark = pytest.mark.integration
_n = itertools.count()


def test_a_throttled_group_holds_only_its_queue(aws_env: dict[str, str]) -> None:
    cluster = f"thr{next(_n)}"
    groups = {
        "grow": aws_groups.make_group(cluster, "grow", 1),
        "slow": aws_groups.make_group(cluster, "slow", 1),
        "shrink": aws_groups.make_group(cluster, "shrink", 2),
    }
    idle = aws_groups.instance_ids(groups["shrink"])
    config = parse_config(
        {
            "backend": "aws",
            "region": "us-east-1",
            "stabilization_seconds": 0,
            "idle_seconds": 0,
            "sources": {"airflow": {"url": "http://127.0.0.1:1"}},
            "queues": {q: {"group": g, "max_size": 4, "slots_per_node": 2} for q, g in groups.items()},
        }
    )
    backend = AwsBackend("us-east-1")
    throttle = Throttle(groups["slow"]).attach(backend.autoscaling, backend._once("autoscaling"))
    # Tasks wait on grow and slow (both want 3 nodes); shrink's two nodes run nothing.
    airflow = FakeAirflow(queued={"grow": 6, "slow": 6}, on_hosts={"grow": Counter(), "slow": Counter()})
    clients = Clients(
        backend,
        airflow=airflow,  # type: ignore[arg-type]
        control=FakeControl(workers=set(idle)),
        memory=MemoryStore.in_process(),
    )
    scaler = Scaler(config, clients)

    report = scaler.run_pass()

    by_queue = {q.queue: q for q in report.queues}
    slow = by_queue["slow"]
    assert (slow.action, slow.failed) == ("hold", True)
    assert f"aws: describe {groups['slow']} (us-east-1): Throttling: Rate exceeded" in slow.reason
    # The batched read was retried (3 tries), then the group was asked alone once.
    assert throttle.refused == 4
    assert aws_groups.group(groups["slow"])["DesiredCapacity"] == 1
    # The others acted in the same pass.
    assert (by_queue["grow"].action, by_queue["grow"].desired) == ("scale_out", 3)
    assert aws_groups.group(groups["grow"])["DesiredCapacity"] == 3
    assert (by_queue["shrink"].action, sorted(by_queue["shrink"].removed)) == ("scale_in", idle)
    assert aws_groups.group(groups["shrink"])["DesiredCapacity"] == 0
    assert report.exit_code == 2

    # The throttling ends: the next pass scales the held queue out.
    throttle.on = False
    report = scaler.run_pass()
    assert report.exit_code == 0, [q.reason for q in report.queues]
    assert aws_groups.group(groups["slow"])["DesiredCapacity"] == 3
