"""Serve moto on a listening socket that the parent bound and passed down (its fd is argv[1]).

The parent binds first, so no other process can take the port between "this port is free" and
"moto listens on it", and the server that answers on the port is always the one we started.
Usage: python -m airtasks_dev.devstack.moto_serve FD
"""

from __future__ import annotations

import os
import socket
import sys

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server


def main(argv: list[str]) -> None:
    if len(argv) != 1 or not argv[0].isdigit():
        sys.exit("usage: python -m airtasks_dev.devstack.moto_serve FD (a listening TCP socket)")
    fd = int(argv[0])
    with socket.socket(fileno=os.dup(fd)) as probe:
        host, port = probe.getsockname()[:2]
    # moto builds some URLs (SQS queues, presigned links) from MOTO_PORT.
    os.environ["MOTO_PORT"] = str(port)

    app = DomainDispatcherApplication(create_backend_app)
    server = make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler, fd=fd)
    print(f"moto serving on http://{host}:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
