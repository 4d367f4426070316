"""Cloud throttling on demand: make AWS refuse the calls that name one group (or one instance).

Hooked on botocore's `before-send`, so the refusal goes through everything a real one does: the
response parser, the client's retry mode (its backoff and attempt limit), the ClientError.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from botocore.awsrequest import AWSPreparedRequest, AWSResponse

# Each protocol's refusal: Auto Scaling (query) says Throttling, EC2 says RequestLimitExceeded.
THROTTLED = (
    b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message>"
    b"</Error><RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
)


EC2_THROTTLED = (
    b"<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message>"
    b"</Error></Errors><RequestID>00000000-0000-0000-0000-000000000000</RequestID></Response>"
)


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


class Throttle:
    """Refuses every request of `service` whose body names `group` (counted in `refused`): an
    Auto Scaling group's name, or (service "ec2") an instance id."""

    def __init__(self, group: str, service: str = "auto-scaling") -> None:
        self.group = group
        self.service = service
        self.refused = 0
        self.on = True
        """Set False to end the throttling."""

    def __call__(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
        body = request.body if isinstance(request.body, bytes) else str(request.body or "").encode()
        if not self.on or quote(self.group, safe="").encode() not in body:
            return None
        self.refused += 1
        body = EC2_THROTTLED if self.service == "ec2" else THROTTLED
        return AWSResponse(request.url, 400, {"Content-Type": "text/xml"}, _Raw(body))

    def attach(self, *clients: Any) -> Throttle:
        """Hook onto these boto3 clients of `service` (first, ahead of an in-process moto)."""
        for client in clients:
            client.meta.events.register_first(f"before-send.{self.service}", self)
        return self


__all__ = ["EC2_THROTTLED", "THROTTLED", "Throttle"]
