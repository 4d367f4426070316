"""Serve moto on a listening socket that the parent bound and passed down (its fd is argv[1]).

The parent binds first, so no other process can take the port between "this port is free" and
"moto listens on it", and the server that answers on the port is always the one we started.
Usage: python -m airtasks_dev.devstack.moto_serve FD
"""

from __future__ import annotations

import io
import os
import re
import socket
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from moto.ec2.models.launch_templates import LaunchTemplate
from moto.ec2.utils import parse_user_data
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

# Actions that make something (CreateSecurityGroup, RunInstances, PutParameter,
# AddRoleToInstanceProfile, ...): the calls that a client sending them twice can fail as duplicates.
CREATING = (
    "Create",
    "Run",
    "Put",
    "Allocate",
    "Authorize",
    "Register",
    "Attach",
    "Associate",
    "Add",
    "Import",
    "Request",
)


# Reads: answered afresh every time. Every other call's answer is kept for a retry (below).
READING = ("Describe", "Get", "List", "Head")
# Answers kept for retries: SDKs retry within seconds, so the latest few hundred calls are plenty.
KEPT_ANSWERS = 512


class OneAtATime:
    """moto's backends are not thread-safe (getmoto/moto#372), and the cluster in a box has many
    clients at once (Terraform, the node runner, the RDS emulator, nodes, the scaler). The threaded
    server still accepts every connection; requests are answered one at a time (each takes
    milliseconds).

    An SDK sometimes loses the answer to a call on this loaded host (the connection fails after moto
    answered) and sends the call again: Terraform's AWS provider then fails a create that had
    succeeded (RouteAlreadyExists, InvalidPermission.Duplicate, InvalidGroup.Duplicate). Every try
    of one call carries the same `amz-sdk-invocation-id` (AWS SDKs and botocore alike), so a call
    that changes something and succeeded is answered once, and a retry of it gets the kept answer,
    as a call with an idempotency token does on AWS."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.answers: OrderedDict[str, tuple[str, list[tuple[str, str]], list[bytes]]] = OrderedDict()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        action = _action(environ)
        invocation = str(environ.get("HTTP_AMZ_SDK_INVOCATION_ID", ""))
        keep = bool(action and invocation and not action.startswith(READING))
        status = ""
        headers: list[tuple[str, str]] = []

        def start(code: str, given: list[tuple[str, str]], exc_info: Any = None) -> Any:
            nonlocal status, headers
            status, headers = code, list(given)
            return start_response(code, given, exc_info)

        arrived = time.monotonic()
        with self.lock:
            waited = time.monotonic() - arrived
            started = time.monotonic()
            kept = self.answers.get(invocation) if keep else None
            if kept is not None:
                status, headers, body = kept
                start_response(status, headers)
            else:
                body = list(self.app(environ, start))
                # Only a success is kept: an SDK also retries a 5xx, and that retry deserves a fresh try.
                if keep and status.startswith("2"):
                    self.answers[invocation] = (status, headers, body)
                    while len(self.answers) > KEPT_ANSWERS:
                        self.answers.popitem(last=False)
        # The access log has no action: say which call a create, a refusal or a retry was, and how
        # long it waited. Reads that succeed (the box's steady Describe* polling) say nothing a trace
        # needs, so they get no line.
        if kept is not None:
            # e.g. "attempt=2; max=25" (Go SDK) or "ttl=...; attempt=2; max=5" (botocore)
            tries = re.search(r"attempt=\d+", str(environ.get("HTTP_AMZ_SDK_REQUEST", "")))
            print(
                f"moto: {action} sent again ({tries.group() if tries else 'a retry'}): "
                f"the first answer ({status}) given",
                file=sys.stderr,
                flush=True,
            )
        elif action and (action.startswith(CREATING) or not status.startswith("2")):
            took = time.monotonic() - started
            print(f"moto: {action} waited {waited:.2f}s took {took:.2f}s", file=sys.stderr, flush=True)
        return body


def _action(environ: dict[str, Any]) -> str:
    """The API action of a query-protocol call (EC2, Auto Scaling, RDS, IAM: `Action=` in the form
    body) or a JSON one (`X-Amz-Target`); the body is put back for moto."""
    target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
    if target:
        return target.rsplit(".", 1)[-1]
    if environ.get("REQUEST_METHOD") != "POST" or "x-www-form-urlencoded" not in str(
        environ.get("CONTENT_TYPE", "")
    ):
        return ""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(raw)
    fields = parse_qs(raw.decode("utf-8", "replace"))
    return fields.get("Action", [""])[0]


def keep_version_user_data_encoded() -> None:
    """moto keeps a launch template's first version's user data as a Base64EncodedString but a
    later version's (CreateLaunchTemplateVersion, what Terraform sends when the user data
    changes) as the plain string, and its Auto Scaling then fails an assertion launching from that
    version (a 500 to TerminateInstanceInAutoScalingGroup). Parse it the same way for every
    version, as moto's CloudFormation path already does."""
    original = LaunchTemplate.create_version

    def create_version(self: LaunchTemplate, data: dict[str, Any], description: str) -> Any:
        if isinstance(data.get("UserData"), (str, bytes)):
            data = {**data, "UserData": parse_user_data(data["UserData"])}
        return original(self, data, description)

    LaunchTemplate.create_version = create_version  # type: ignore[method-assign]


def main(argv: list[str]) -> None:
    if len(argv) != 1 or not argv[0].isdigit():
        sys.exit("usage: python -m airtasks_dev.devstack.moto_serve FD (a listening TCP socket)")
    fd = int(argv[0])
    with socket.socket(fileno=os.dup(fd)) as probe:
        host, port = probe.getsockname()[:2]
    # moto builds some URLs (SQS queues, presigned links) from MOTO_PORT.
    os.environ["MOTO_PORT"] = str(port)

    keep_version_user_data_encoded()
    app = OneAtATime(DomainDispatcherApplication(create_backend_app))
    server = make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler, fd=fd)
    print(f"moto serving on http://{host}:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
