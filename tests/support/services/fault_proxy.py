"""An HTTP proxy in front of a real service that can be told to fail: the faults tests' switch.

Modes: `pass` (forward), `500` (answer HTTP 500), `timeout` (hold the request for `delay`
seconds, then drop it), `refuse` (close the connection at once). Count of requests seen per mode
is kept, so a test can assert that a client retried (and gave up) within bounds.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

from tests.support.ports import free_port

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-encoding", "content-length", "host"}


class FaultProxy:
    def __init__(self, target: str, *, delay: float = 30.0) -> None:
        self.target = target.rstrip("/")
        self.mode = "pass"
        self.only_if: bytes | None = None
        """When set, only requests whose path or body contain it get the fault; others pass."""
        self.delay = delay
        self.seen: Counter[str] = Counter()
        self.port = free_port()
        self._client = httpx.Client(timeout=60)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                mode = proxy.mode
                if proxy.only_if is not None and proxy.only_if not in self.path.encode() + body:
                    mode = "pass"
                proxy.seen[mode] += 1
                if mode == "refuse":
                    self.close_connection = True
                    return
                if mode == "timeout":
                    time.sleep(proxy.delay)
                    self.close_connection = True
                    return
                if mode == "500":
                    payload = b'{"detail": "injected fault"}'
                    self.send_response(500)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                upstream = proxy._client.request(
                    self.command, proxy.target + self.path, headers=headers, content=body
                )
                self.send_response(upstream.status_code)
                for key, value in upstream.headers.items():
                    if key.lower() not in HOP_BY_HOP:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(upstream.content)))
                self.end_headers()
                self.wfile.write(upstream.content)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._client.close()


@contextlib.contextmanager
def fault_proxy(target: str, *, delay: float = 30.0) -> Iterator[FaultProxy]:
    proxy = FaultProxy(target, delay=delay).start()
    try:
        yield proxy
    finally:
        proxy.mode = "pass"
        proxy.close()
