"""Serve moto on a listening socket that the parent bound and passed down (its fd is argv[1]).

The parent binds first, so no other process can take the port between "this port is free" and
"moto listens on it", and the server that answers on the port is always the one we started.
Usage: python -m airtasks_dev.devstack.moto_serve FD
"""

from __future__ import annotations

import os
import socket
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server


class OneAtATime:
    """moto's backends are not thread-safe (getmoto/moto#372), and the cluster in a box has many
    clients at once (Terraform, the node runner, the RDS emulator, nodes, the scaler). The threaded
    server still accepts every connection; requests are answered one at a time (each takes
    milliseconds). This does not stop a create that a client sends twice from failing the second
    time (see APPLY_ARGS in terraform.py)."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with self.lock:
            return list(self.app(environ, start_response))


def main(argv: list[str]) -> None:
    if len(argv) != 1 or not argv[0].isdigit():
        sys.exit("usage: python -m airtasks_dev.devstack.moto_serve FD (a listening TCP socket)")
    fd = int(argv[0])
    with socket.socket(fileno=os.dup(fd)) as probe:
        host, port = probe.getsockname()[:2]
    # moto builds some URLs (SQS queues, presigned links) from MOTO_PORT.
    os.environ["MOTO_PORT"] = str(port)

    app = OneAtATime(DomainDispatcherApplication(create_backend_app))
    server = make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler, fd=fd)
    print(f"moto serving on http://{host}:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
