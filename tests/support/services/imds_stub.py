"""An IMDSv2 stand-in on loopback for boot scripts run on the host (not in a local-cloud node).

A session token from `PUT /latest/api/token` (with a TTL header), then `/latest/meta-data/<key>`
only with that token (IMDSv1 is off, as the modules configure it). Point the AWS CLI and the boot
script at it with `AWS_EC2_METADATA_SERVICE_ENDPOINT=<url>`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping

from tests.support.services.http_stub import QuietHandler, serving

TOKEN = "imds-session-token"


def _handler(data: Mapping[str, str]) -> type[QuietHandler]:
    class Imds(QuietHandler):
        def do_PUT(self) -> None:
            ok = self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
            self._send(200 if ok else 403, TOKEN if ok else "")

        def do_GET(self) -> None:
            if self.headers.get("X-aws-ec2-metadata-token") != TOKEN:
                self._send(401, "")  # IMDSv1 is off
                return
            value = data.get(self.path.removeprefix("/latest/meta-data/"))
            self._send(200 if value else 404, value or "")

    return Imds


@contextlib.contextmanager
def imds_stub(instance_id: str, region: str = "us-east-1", address: str = "127.0.0.1") -> Iterator[str]:
    """Serve an instance's metadata; yields the endpoint URL."""
    data = {"instance-id": instance_id, "local-ipv4": address, "placement/region": region}
    with serving(_handler(data)) as served:
        yield f"http://{served}"
