"""Cloud throttling on demand: make AWS answer `Throttling` to the calls that name one group.

Hooked on botocore's `before-send`, so the refusal goes through everything a real one does: the
response parser, the client's retry mode (its backoff and attempt limit), the ClientError.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from botocore.awsrequest import AWSPreparedRequest, AWSResponse

THROTTLED = (
    b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message>"
    b"</Error><RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
)


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


class Throttle:
    """Refuses every Auto Scaling request whose body names `group` (counted in `refused`)."""

    def __init__(self, group: str) -> None:
        self.group = group
        self.refused = 0
        self.on = True
        """Set False to end the throttling."""

    def __call__(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
        body = request.body if isinstance(request.body, bytes) else str(request.body or "").encode()
        if not self.on or quote(self.group, safe="").encode() not in body:
            return None
        self.refused += 1
        return AWSResponse(request.url, 400, {"Content-Type": "text/xml"}, _Raw(THROTTLED))

    def attach(self, *clients: Any) -> Throttle:
        """Hook onto these boto3 Auto Scaling clients (first, ahead of an in-process moto)."""
        for client in clients:
            client.meta.events.register_first("before-send.auto-scaling", self)
        return self


__all__ = ["THROTTLED", "Throttle"]
