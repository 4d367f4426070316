"""A small stand-in for the Compute Engine REST API: just the calls the gcp backend makes.

The real `google-cloud-compute` client (REST transport) is pointed at it with
`client_options={"api_endpoint": "http://127.0.0.1:PORT"}` and anonymous credentials. It keeps
regional MIGs with their managed instances, answers operations as DONE (or, with
`operations_pending`, as RUNNING until the client polls them), records every call, and can be
switched to answer HTTP 500. An instance with `exists=False` is one the group is still creating:
listed with currentAction CREATING and no status, while `instances.get` answers 404, as GCE does.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.ports import free_port

MIG = re.compile(r"^/compute/v1/projects/([^/]+)/regions/([^/]+)/instanceGroupManagers/([^/:]+)(?:/(\w+))?$")
INSTANCE = re.compile(r"^/compute/v1/projects/([^/]+)/zones/([^/]+)/instances/([^/]+)$")
OPERATION = re.compile(r"^/compute/v1/projects/([^/]+)/regions/([^/]+)/operations/([^/]+)$")


@dataclass
class FakeInstance:
    name: str
    zone: str
    created: dt.datetime
    status: str = "RUNNING"
    exists: bool = True


@dataclass
class FakeMig:
    project: str
    region: str
    name: str
    target_size: int = 0
    instances: list[FakeInstance] = field(default_factory=list)


class FakeCompute:
    def __init__(self) -> None:
        self.migs: dict[str, FakeMig] = {}
        self.calls: list[tuple[str, str]] = []
        self.fail = False
        self.operations_pending = False
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.port = free_port()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def instance_url(self, project: str, inst: FakeInstance) -> str:
        return f"https://www.googleapis.com/compute/v1/projects/{project}/zones/{inst.zone}/instances/{inst.name}"

    def add_mig(
        self, project: str, region: str, name: str, size: int = 0, age_seconds: float = 3600
    ) -> FakeMig:
        mig = FakeMig(project, region, name)
        self.migs[name] = mig
        self._grow(mig, size, dt.datetime.now(dt.UTC) - dt.timedelta(seconds=age_seconds))
        return mig

    def _grow(self, mig: FakeMig, size: int, created: dt.datetime | None = None) -> None:
        while len(mig.instances) < size:
            zone = f"{mig.region}-{'abc'[next(self._ids) % 3]}"
            mig.instances.append(
                FakeInstance(f"{mig.name}-{next(self._ids):04x}", zone, created or dt.datetime.now(dt.UTC))
            )
        mig.target_size = size

    def _operation(self, project: str, region: str, kind: str) -> dict[str, Any]:
        return {
            "kind": "compute#operation",
            "name": f"operation-{next(self._ids)}",
            "operationType": kind,
            "status": "RUNNING" if self.operations_pending and kind != "get" else "DONE",
            "progress": 100,
            "region": region,
            "selfLink": f"https://www.googleapis.com/compute/v1/projects/{project}/regions/{region}/operations/x",
        }

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        with self._lock:
            self.calls.append((method, path))
            if self.fail:
                return 500, {"error": {"code": 500, "message": "injected fault"}}
            if m := OPERATION.match(path):
                return 200, self._operation(m[1], m[2], "get") | {"name": m[3]}
            if m := INSTANCE.match(path):
                for mig in self.migs.values():
                    for inst in mig.instances:
                        if inst.name == m[3] and inst.zone == m[2] and inst.exists:
                            stamp = inst.created.isoformat(timespec="milliseconds")
                            return 200, {"name": inst.name, "status": inst.status, "creationTimestamp": stamp}
                return 404, {"error": {"code": 404, "message": f"instance {m[3]} not found"}}
            m = MIG.match(path)
            if not m or m[3] not in self.migs:
                return 404, {"error": {"code": 404, "message": f"not found: {path}"}}
            project, region, mig, verb = m[1], m[2], self.migs[m[3]], m[4]
            if method == "GET" and verb is None:
                return 200, {"name": mig.name, "targetSize": mig.target_size, "region": region}
            if method == "POST" and verb == "resize":
                size = int(query["size"][0])
                self._grow(mig, size)
                del mig.instances[size:]
                return 200, self._operation(project, region, "compute.instanceGroupManagers.resize")
            if method == "POST" and verb == "listManagedInstances":
                items = [
                    {"instance": self.instance_url(project, i), "name": i.name}
                    | (
                        {"instanceStatus": i.status, "currentAction": "NONE"}
                        if i.exists
                        else {"currentAction": "CREATING"}
                    )
                    for i in mig.instances
                ]
                return 200, {"managedInstances": items}
            if method == "POST" and verb == "deleteInstances":
                urls = set((body or {}).get("instances", []))
                before = len(mig.instances)
                mig.instances = [i for i in mig.instances if self.instance_url(project, i) not in urls]
                mig.target_size -= before - len(mig.instances)
                return 200, self._operation(project, region, "compute.instanceGroupManagers.deleteInstances")
            return 400, {"error": {"code": 400, "message": f"unsupported {method} {path}"}}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                status, payload = fake.handle(self.command, parts.path, parse_qs(parts.query), body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _serve

        return Handler

    def start(self) -> FakeCompute:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextlib.contextmanager
def fake_compute() -> Iterator[FakeCompute]:
    server = FakeCompute().start()
    try:
        yield server
    finally:
        server.close()
