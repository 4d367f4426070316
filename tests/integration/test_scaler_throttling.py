"""AWS throttling one queue's group, on moto: that queue holds, every other queue scales, and the
pass ends within its interval.

The throttle is a botocore `before-send` hook on the backend's session: every Auto Scaling request
that names the throttled group is answered `400 ThrottlingException` without reaching moto, the way
AWS answers a rate-limited call; the client's standard retry mode backs off and retries it as it
would against AWS. The batched describe that names all groups is throttled too, so this also
shows the pass finding which group the failure was about.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import unquote_plus

import boto3
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse

from airtasks.backends.aws import AwsBackend
from airtasks.config import parse_config
from airtasks.scaling.scaler import Scaler
from airtasks.state.memory import MemoryStore
from airtasks.wiring import Clients
from tests.support.services import aws_groups
from tests.unit.fakes import FakeAirflow

pytestmark = pytest.mark.integration

THROTTLED_BODY = (
    b'<ErrorResponse xmlns="https://autoscaling.amazonaws.com/doc/2011-01-01/"><Error><Type>Sender</Type>'
    b"<Code>ThrottlingException</Code><Message>Rate exceeded</Message></Error>"
    b"<RequestId>throttled-by-test</RequestId></ErrorResponse>"
)


class _Raw:
    """What AWSResponse reads a body from."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


class Throttle:
    """Answers every Auto Scaling request that names `group` with ThrottlingException."""

    def __init__(self, group: str) -> None:
        self.group = group
        self.throttled: list[str] = []
        self.sent: list[str] = []

    def __call__(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
        body = request.body
        text = unquote_plus(body.decode() if isinstance(body, bytes) else str(body or ""))
        params = dict(p.partition("=")[::2] for p in text.split("&"))
        action = params.get("Action", "?")
        self.sent.append(action)
        if self.group in params.values():
            self.throttled.append(action)
            return AWSResponse(request.url, 400, {"Content-Type": "text/xml"}, _Raw(THROTTLED_BODY))
        return None


def test_a_throttled_group_holds_its_queue_only(aws_env: dict[str, str]) -> None:
    queues = ["red", "green", "blue", "amber"]
    groups = {q: aws_groups.make_group("throttle", q, 0) for q in queues}
    throttle = Throttle(groups["blue"])
    session = boto3.session.Session(region_name="us-east-1")
    session.events.register("before-send.auto-scaling", throttle)
    config = parse_config(
        {
            "backend": "aws",
            "region": "us-east-1",
            "interval_seconds": 5,
            "sources": {"airflow": {"url": "http://airflow.invalid"}},
            "celery": None,
            "queues": {q: {"group": groups[q], "max_size": 10, "slots_per_node": 2} for q in queues},
        }
    )
    airflow = FakeAirflow(queued=dict.fromkeys(queues, 6))  # each queue wants 3 nodes
    backend = AwsBackend("us-east-1", session=session)
    # The loop (airtasks.scaling.loop) builds its clients once and passes with them: so here.
    for client in (backend.autoscaling, backend.autoscaling_once, backend.ec2):
        assert client is not None
    clients = Clients(
        backend=backend,
        airflow=airflow,  # type: ignore[arg-type]
        memory=MemoryStore.in_process(),
    )
    scaler = Scaler(config, clients)

    started = time.monotonic()
    report = scaler.run_pass()
    took = time.monotonic() - started

    by_queue = {q.queue: q for q in report.queues}
    blue = by_queue.pop("blue")
    assert (blue.action, blue.failed, blue.current) == ("hold", True, None), blue.reason
    assert "ThrottlingException" in blue.reason
    for q, r in by_queue.items():
        assert (r.action, r.desired, r.failed) == ("scale_out", 3, False), (q, r.reason)
        assert aws_groups.group(groups[q])["DesiredCapacity"] == 3
    assert aws_groups.group(groups["blue"])["DesiredCapacity"] == 0
    assert report.exit_code == 2  # a queue held: the pass says so
    # Within the interval on a quiet host (1 to 3 s here). What the throttle adds is bounded
    # whatever the host's load: at most 1 + 2 s of backoff, and one describe per group, each no
    # slower than an unthrottled pass (timed below, once the throttle is lifted).
    throttle.group = "no-group-is-throttled"
    plain_started = time.monotonic()
    after = scaler.run_pass()
    plain = time.monotonic() - plain_started
    assert after.exit_code == 0
    assert took < max(config.interval_seconds, 3.0 + plain * (1 + len(queues))), (took, plain)
    # The batched describe was tried 3 times (standard mode), then each group was asked
    # for once on its own: blue's own describe is the one more throttled call.
    assert throttle.throttled == ["DescribeAutoScalingGroups"] * 4
    assert throttle.sent.count("SetDesiredCapacity") == 3 + 1  # and blue's, once lifted
