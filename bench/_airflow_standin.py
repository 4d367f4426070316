"""A stand-in for the Airflow REST API v2: the reads a scaling pass and the Cluster page make.

It serves what `airtasks.sources.airflow.AirflowSource` calls: `/auth/token`, the task instance
list (`/api/v2/dags/~/dagRuns/~/taskInstances` filtered by `state` and `queue`, `limit`/`offset`
paging, `total_entries`), and Variables (the scaler's memory and history). Each task instance is
serialised once with Airflow's own response model (`TaskInstanceResponse`, from the installed
apache-airflow), so the bodies have the fields and sizes a real API server sends. It counts
requests and response bytes, which is what the scale benchmark reports per pass
(docs/scale.md says why this measures the same thing as a real Airflow).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import multiprocessing
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx

from tests.support.services.http_stub import QuietHandler

TI_PATH = "/api/v2/dags/~/dagRuns/~/taskInstances"
COUNTERS_PATH = "/_standin/counters"
MAX_PAGE = 100
"""Airflow's `[api] maximum_page_limit` default: a larger `limit` is cut to this."""


@dataclass(frozen=True)
class TaskInstance:
    queue: str
    state: str
    json: str
    """The instance as Airflow's API serialises it."""


def serialise(
    n: int, dag_id: str, queue: str, state: str, *, hostname: str | None, now: dt.datetime
) -> TaskInstance:
    """Task instance number `n` through Airflow's own response model."""
    from airflow.api_fastapi.core_api.datamodels.task_instances import (  # noqa: PLC0415
        TaskInstanceResponse,
    )

    running = state == "running"
    model = TaskInstanceResponse.model_validate(
        {
            "id": uuid.UUID(int=n),
            "task_id": f"work_{n % 50}",
            "dag_id": dag_id,
            "dag_run_id": f"manual__{now.isoformat()}",
            "map_index": n,
            "logical_date": now,
            "run_after": now,
            "start_date": now if running else None,
            "end_date": None,
            "duration": None,
            "state": state,
            "try_number": 1,
            "max_tries": 0,
            "task_display_name": f"work_{n % 50}",
            "dag_display_name": dag_id,
            "hostname": hostname or "",
            "unixname": "airflow",
            "pool": "default_pool",
            "pool_slots": 1,
            "queue": queue,
            "priority_weight": 1,
            "operator": "_PythonDecoratedOperator",
            "operator_name": "@task",
            "queued_when": now,
            "scheduled_when": now,
            "pid": 4000 + n % 1000 if running else None,
            "executor": None,
            "executor_config": "{}",
            "note": None,
            "rendered_map_index": str(n),
            "rendered_fields": {"op_args": "[]", "op_kwargs": "{}"},
            "trigger": None,
            "triggerer_job": None,
            "dag_version": None,
        }
    )
    return TaskInstance(queue, state, model.model_dump_json(by_alias=True))


@dataclass
class Counters:
    requests: int = 0
    bytes: int = 0
    by_route: dict[str, int] = field(default_factory=dict)


class StandIn:
    def __init__(self, instances: list[TaskInstance]) -> None:
        self.instances = instances
        # Indexed by (state, queue), in id order: a page costs the stand-in little, as a page of an
        # indexed query costs the API server's database little.
        self.index: dict[tuple[str, str], list[TaskInstance]] = {}
        for ti in instances:
            self.index.setdefault((ti.state, ti.queue), []).append(ti)
        self.variables: dict[str, str] = {}
        self.counters = Counters()
        self.lock = threading.Lock()

    def reset(self) -> Counters:
        with self.lock:
            done, self.counters = self.counters, Counters()
        return done

    def count(self, route: str, size: int) -> None:
        with self.lock:
            self.counters.requests += 1
            self.counters.bytes += size
            self.counters.by_route[route] = self.counters.by_route.get(route, 0) + 1

    def task_instances(self, query: dict[str, list[str]]) -> str:
        states, queues = set(query.get("state", [])), set(query.get("queue", []))
        if states and queues:
            keys = [k for k in self.index if k[0] in states and k[1] in queues]
            matching = sorted((ti for k in keys for ti in self.index[k]), key=lambda ti: ti.json[:44])
        else:
            matching = [
                ti
                for ti in self.instances
                if (not states or ti.state in states) and (not queues or ti.queue in queues)
            ]
        limit = min(int(query.get("limit", ["50"])[0]), MAX_PAGE)
        offset = int(query.get("offset", ["0"])[0])
        page = matching[offset : offset + limit]
        return f'{{"task_instances":[{",".join(ti.json for ti in page)}],"total_entries":{len(matching)}}}'


def _handler(standin: StandIn) -> type[QuietHandler]:
    class Handler(QuietHandler):
        protocol_version = "HTTP/1.1"

        def _reply(self, code: int, body: str, route: str) -> None:
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            standin.count(route, len(data))

        def _body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            return dict(json.loads(self.rfile.read(length) or b"{}")) if length else {}

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == COUNTERS_PATH:  # the benchmark's own question, not counted
                done = standin.reset()
                body = json.dumps({"requests": done.requests, "bytes": done.bytes, "by_route": done.by_route})
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            elif url.path == "/auth/token":
                self._reply(200, '{"access_token": "standin"}', "token")
            elif url.path == TI_PATH:
                self._reply(200, standin.task_instances(parse_qs(url.query)), "task_instances")
            elif url.path.startswith("/api/v2/variables/"):
                key = unquote(url.path.rsplit("/", 1)[1])
                value = standin.variables.get(key)
                if value is None:
                    self._reply(404, '{"detail": "not found"}', "variables")
                else:
                    self._reply(200, json.dumps({"key": key, "value": value}), "variables")
            else:
                self._reply(404, '{"detail": "not found"}', "other")

        def do_POST(self) -> None:
            body = self._body()
            if self.path == "/auth/token":
                self._reply(201, '{"access_token": "standin"}', "token")
            elif self.path == "/api/v2/variables":
                standin.variables[str(body["key"])] = str(body["value"])
                self._reply(201, json.dumps({"key": body["key"]}), "variables")
            else:
                self._reply(404, '{"detail": "not found"}', "other")

        def do_PATCH(self) -> None:
            body = self._body()
            key = unquote(urlsplit(self.path).path.rsplit("/", 1)[1])
            if key not in standin.variables:
                self._reply(404, '{"detail": "not found"}', "variables")
                return
            standin.variables[key] = str(body["value"])
            self._reply(200, json.dumps({"key": key}), "variables")

    return Handler


def _serve(server: ThreadingHTTPServer) -> None:
    server.serve_forever()


@contextlib.contextmanager
def serving(standin: StandIn) -> Iterator[str]:
    """Serve the stand-in from its own process (as Airflow's API server is: its work does not
    share the scaler's interpreter) on a free loopback port; yields its base URL. Ask
    `counters(url)` for the requests and bytes served since the last ask."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(standin))
    server.daemon_threads = True
    proc = multiprocessing.get_context("fork").Process(target=_serve, args=(server,), daemon=True)
    proc.start()
    server.server_close()  # the child has the listening socket
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        proc.terminate()
        proc.join(10)


def counters(url: str) -> Counters:
    data = httpx.get(url + COUNTERS_PATH, timeout=30).json()
    return Counters(int(data["requests"]), int(data["bytes"]), dict(data["by_route"]))
