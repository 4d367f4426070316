"""The scaler at scale: 20 queues, 2,000 instances, 10,000 running and 5,000 queued task instances.

`python -m bench.scale [--json]` (and `make bench`, through `run()`):

- moto holds 20 Auto Scaling groups of 100 InService instances each, made with boto3 directly;
- an Airflow REST stand-in (bench/_airflow_standin.py, docs/scale.md) holds 500 running task
  instances per queue, 5 on each of its nodes (hostname = instance id), and 250 queued;
- the scaler runs over them as deployed: the clients `airtasks.wiring.build_clients` makes, its
  memory and history in Airflow Variables. 16 queues fit their size (`none`); 4 need fewer nodes
  and sit in their stabilization window, so a pass reads who runs what on their 400 nodes;
- the Cluster page's API (`build_view` + JSON, the API's default node page) is timed on the same;
- then one group is throttled (every Auto Scaling request naming it answers ThrottlingException)
  for a few passes: only its queue may hold, and no pass may take longer than the interval.

Figures: pass time p50/p95, AWS calls per pass by service and operation (HTTP requests, so retries
count), describe calls per pass, Airflow REST requests and response bytes per pass, view time.
Written to bench/results/scale.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import statistics
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

from botocore.awsrequest import AWSResponse

from airtasks.backends.aws import AwsBackend
from airtasks.config import parse_config
from airtasks.ops.view import build_view
from airtasks.scaling.scaler import Scaler
from airtasks.wiring import build_clients
from bench._airflow_standin import StandIn, TaskInstance, counters, serialise, serving
from bench._common import percentile
from tests.support.moto_server import run_moto
from tests.support.services import aws_groups

RESULTS = Path(__file__).resolve().parent / "results"
QUEUES = 20
NODES_PER_QUEUE = 100
RUNNING_PER_NODE = 5
QUEUED_PER_QUEUE = 250
SHRINKING = 4
"""Queues whose load needs fewer nodes than they have: their node-level reads are measured."""
PASSES = 30
VIEWS = 5
THROTTLED_PASSES = 5
API_NODE_LIMIT = 100
"""`/airtasks/api/view`'s default `?limit=` (airtasks.ops.plugin.API_NODE_LIMIT)."""

GOAL_PASS_P50_S = 1.0
GOAL_PASS_P95_S = 2.0
GOAL_VIEW_P50_S = 2.0
GOAL_DESCRIBES_PER_100 = 2.0
GOAL_DESCRIBES_CONSTANT = 5

THROTTLED_BODY = (
    b'<ErrorResponse xmlns="https://autoscaling.amazonaws.com/doc/2011-01-01/"><Error><Type>Sender</Type>'
    b"<Code>ThrottlingException</Code><Message>Rate exceeded</Message></Error>"
    b"<RequestId>bench</RequestId></ErrorResponse>"
)


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


class AwsCalls:
    """Counts HTTP requests per service and operation (`before-send`: retries count), and
    throttles every Auto Scaling request that names `throttled` when it is set."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.throttled: str | None = None

    def __call__(self, event_name: str, request: Any, **_: Any) -> AWSResponse | None:
        _, service, operation = event_name.split(".", 2)
        self.calls[f"{service}.{operation}"] += 1
        if self.throttled is not None and service == "auto-scaling":
            body = request.body
            text = unquote_plus(body.decode() if isinstance(body, bytes) else str(body or ""))
            if self.throttled in {p.partition("=")[2] for p in text.split("&")}:
                return AWSResponse(request.url, 400, {"Content-Type": "text/xml"}, _Raw(THROTTLED_BODY))
        return None

    def take(self) -> Counter[str]:
        done, self.calls = self.calls, Counter()
        return done


class AwsTime:
    """Wall time spent inside AWS calls (moto answering, botocore parsing, retries)."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def before(self, context: dict[str, Any], **_: Any) -> None:
        context["bench_started"] = time.perf_counter()

    def after(self, context: dict[str, Any], **_: Any) -> None:
        if "bench_started" in context:
            self.seconds += time.perf_counter() - context.pop("bench_started")

    def take(self) -> float:
        done, self.seconds = self.seconds, 0.0
        return done


class NoCordons:
    """Celery control that is never needed here (no queue leaves its window): without one, a
    queue that may shrink would hold with "no way to stop a node taking tasks"."""

    def cordon(self, node_id: str, queue: str) -> bool:
        raise AssertionError("the benchmark cordons nothing")

    def uncordon(self, node_id: str, queue: str) -> bool:
        raise AssertionError("the benchmark resumes nothing")

    def in_flight(self, node_id: str) -> int | None:
        raise AssertionError("the benchmark re-checks nothing")


def _instances(names: list[str], members: dict[str, list[str]]) -> list[TaskInstance]:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    out: list[TaskInstance] = []
    n = 0
    for q in names:
        for node in members[q]:
            for _ in range(RUNNING_PER_NODE):
                out.append(serialise(n, f"etl_{q}", q, "running", hostname=f"{node}.ec2.internal", now=now))
                n += 1
        for _ in range(QUEUED_PER_QUEUE):
            out.append(serialise(n, f"etl_{q}", q, "queued", hostname=None, now=now))
            n += 1
    out.sort(key=lambda ti: ti.json[:44])  # by id, as `order_by=id` asks
    return out


def _config(names: list[str], groups: dict[str, str], airflow_url: str) -> dict[str, Any]:
    """Each queue's load is 750 (500 running + 250 queued). 7 slots per node: 750 tasks want 108
    nodes, capped at max_size 100 = the size (`none`). 8 slots: 94 < 100, the queue may shrink."""
    return {
        "backend": "aws",
        "cluster_name": "scale",
        "region": "us-east-1",
        "interval_seconds": 5,
        # The shrinking queues stay in their window for the whole run: they read who runs what
        # every pass, and nothing is cordoned or terminated under the measurement.
        "stabilization_seconds": 3600,
        "sources": {"airflow": {"url": airflow_url, "timeout_seconds": 10}},
        "celery": None,
        "queues": {
            q: {
                "group": groups[q],
                "min_size": 0,
                "max_size": NODES_PER_QUEUE,
                "slots_per_node": 8 if i < SHRINKING else 7,
            }
            for i, q in enumerate(names)
        },
    }


def _stats(samples: list[float]) -> dict[str, float]:
    return {
        "p50": round(percentile(samples, 50), 3),
        "p95": round(percentile(samples, 95), 3),
        "max": round(max(samples), 3),
    }


def _mean_calls(per_pass: list[Counter[str]]) -> dict[str, dict[str, float]]:
    total: Counter[str] = Counter()
    for c in per_pass:
        total.update(c)
    out: dict[str, dict[str, float]] = {}
    for key, n in sorted(total.items()):
        service, operation = key.split(".", 1)
        out.setdefault(service, {})[operation] = round(n / len(per_pass), 2)
    return out


def _describes(calls: Counter[str]) -> int:
    return sum(n for k, n in calls.items() if k.split(".", 1)[1].startswith("Describe"))


def scale(passes: int = PASSES) -> dict[str, Any]:
    names = [f"q{i:02d}" for i in range(QUEUES)]
    saved = dict(os.environ)
    setup_started = time.perf_counter()
    with run_moto() as moto:
        os.environ.update(moto.env())
        try:
            groups = {
                q: aws_groups.make_group("scale", q, NODES_PER_QUEUE, max_size=NODES_PER_QUEUE) for q in names
            }
            members = {q: aws_groups.wait_in_service(groups[q], NODES_PER_QUEUE) for q in names}
            standin = StandIn(_instances(names, members))
            with serving(standin) as url:
                return _measure(
                    names, groups, standin, url, passes=passes, setup_s=time.perf_counter() - setup_started
                )
        finally:
            os.environ.clear()
            os.environ.update(saved)


def _measure(
    names: list[str], groups: dict[str, str], standin: StandIn, url: str, *, passes: int, setup_s: float
) -> dict[str, Any]:
    config = parse_config(_config(names, groups, url))
    env = {"AIRTASKS_AIRFLOW_USERNAME": "admin", "AIRTASKS_AIRFLOW_PASSWORD": "admin"}
    clients = build_clients(config, env)
    backend = clients.backend
    assert isinstance(backend, AwsBackend)
    aws = AwsCalls()
    aws_time = AwsTime()
    for client in (backend.autoscaling, backend.autoscaling_once, backend.ec2):
        client.meta.events.register("before-send", aws)
        client.meta.events.register("before-call", aws_time.before)
        client.meta.events.register("after-call", aws_time.after)
    scaler = Scaler(config, replace(clients, control=NoCordons()))

    durations: list[float] = []
    aws_per_pass: list[Counter[str]] = []
    rest_per_pass: list[tuple[int, int, dict[str, int]]] = []
    actions: Counter[str] = Counter()
    first: dict[str, Any] = {}
    cpu: list[float] = []
    aws_wait: list[float] = []
    for i in range(passes + 1):
        started, cpu_started = time.perf_counter(), time.process_time()
        aws_time.take()
        report = scaler.run_pass()
        took = time.perf_counter() - started
        cpu.append(time.process_time() - cpu_started)
        aws_wait.append(aws_time.take())
        calls, rest = aws.take(), counters(url)
        if i == 0:  # launch times unknown yet, no memory or history: reported apart
            first = {
                "pass_s": round(took, 3),
                "aws_calls": _mean_calls([calls]),
                "describe_calls": _describes(calls),
                "airflow_rest_calls": rest.requests,
                "airflow_rest_bytes": rest.bytes,
            }
            continue
        durations.append(took)
        aws_per_pass.append(calls)
        rest_per_pass.append((rest.requests, rest.bytes, rest.by_route))
        actions.update(q.action for q in report.queues)

    view_clients = build_clients(config, env, read_only=True)
    view_times: list[float] = []
    view_bytes = 0
    for _ in range(VIEWS):
        started = time.perf_counter()
        view = build_view(config, view_clients, node_limit=API_NODE_LIMIT)
        body = json.dumps(view.to_json())
        view_times.append(time.perf_counter() - started)
        view_bytes = len(body)
    view_rest = counters(url)
    one_queue = []
    for _ in range(VIEWS):
        started = time.perf_counter()
        view = build_view(config, view_clients, queue=names[-1], node_limit=API_NODE_LIMIT)
        json.dumps(view.to_json())
        one_queue.append(time.perf_counter() - started)
    counters(url)
    view_clients.close()

    # One group throttled: only its queue may hold, the pass stays within the interval.
    throttled_queue = names[QUEUES // 2]
    aws.throttled = groups[throttled_queue]
    throttled_times: list[float] = []
    held: set[str] = set()
    others_failed: set[str] = set()
    for _ in range(THROTTLED_PASSES):
        started = time.perf_counter()
        report = scaler.run_pass()
        throttled_times.append(time.perf_counter() - started)
        for q in report.queues:
            if q.queue == throttled_queue:
                if q.failed:
                    held.add(q.queue)
            elif q.failed:
                others_failed.add(q.queue)
    aws.throttled = None
    throttled_calls = aws.take()
    counters(url)
    scaler.close()

    instances = QUEUES * NODES_PER_QUEUE
    steady_describes = [_describes(c) for c in aws_per_pass]
    describe_limit = GOAL_DESCRIBES_PER_100 * instances / 100 + GOAL_DESCRIBES_CONSTANT
    pass_s = _stats(durations)
    view_s = _stats(view_times)
    result: dict[str, Any] = {
        "name": "scaler at scale",
        "queues": QUEUES,
        "instances": instances,
        "running_task_instances": QUEUES * NODES_PER_QUEUE * RUNNING_PER_NODE,
        "queued_task_instances": QUEUES * QUEUED_PER_QUEUE,
        "queues_reading_nodes": SHRINKING,
        "passes": passes,
        "pass_p50_s": pass_s["p50"],
        "pass_p95_s": pass_s["p95"],
        "pass_max_s": pass_s["max"],
        "pass_cpu_p50_s": _stats(cpu[1:])["p50"],
        "pass_aws_wait_p50_s": _stats(aws_wait[1:])["p50"],
        "pass_actions": dict(actions),
        "describe_calls_per_pass": max(steady_describes),
        "aws_calls_per_pass": _mean_calls(aws_per_pass),
        "airflow_rest_calls_per_pass": round(statistics.mean(r[0] for r in rest_per_pass), 1),
        "airflow_rest_bytes_per_pass": round(statistics.mean(r[1] for r in rest_per_pass)),
        "airflow_rest_calls_by_route": rest_per_pass[-1][2],
        "first_pass": first,
        "view_p50_s": view_s["p50"],
        "view_p95_s": view_s["p95"],
        "view_node_limit": API_NODE_LIMIT,
        "view_json_bytes": view_bytes,
        "view_airflow_rest_calls": round(view_rest.requests / VIEWS, 1),
        "view_airflow_rest_bytes": round(view_rest.bytes / VIEWS),
        "view_one_queue_p50_s": _stats(one_queue)["p50"],
        "throttled": {
            "queue": throttled_queue,
            "passes": THROTTLED_PASSES,
            "held": sorted(held),
            "other_queues_failed": sorted(others_failed),
            "pass_max_s": round(max(throttled_times), 3),
            "interval_s": config.interval_seconds,
            "aws_calls_per_pass": {
                service: {op: round(n / THROTTLED_PASSES, 2) for op, n in ops.items()}
                for service, ops in _mean_calls([throttled_calls]).items()
            },
        },
        "setup_s": round(setup_s, 1),
        "machine": {"cpus": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()]},
    }
    result["goals"] = [
        _goal(f"pass p50 <= {GOAL_PASS_P50_S:g} s", f"{pass_s['p50']} s", pass_s["p50"] <= GOAL_PASS_P50_S),
        _goal(f"pass p95 <= {GOAL_PASS_P95_S:g} s", f"{pass_s['p95']} s", pass_s["p95"] <= GOAL_PASS_P95_S),
        _goal(
            f"describe calls per pass <= {GOAL_DESCRIBES_PER_100:g} per 100 instances + "
            f"{GOAL_DESCRIBES_CONSTANT} (= {describe_limit:g})",
            f"{max(steady_describes)} (first pass {first['describe_calls']})",
            max(steady_describes) <= describe_limit and first["describe_calls"] <= describe_limit,
        ),
        _goal(f"view p50 <= {GOAL_VIEW_P50_S:g} s", f"{view_s['p50']} s", view_s["p50"] <= GOAL_VIEW_P50_S),
        _goal(
            "throttled group: only its queue holds, no pass over the interval",
            f"held {sorted(held)}, others failed {sorted(others_failed)}, "
            f"max pass {max(throttled_times):.2f} s of {config.interval_seconds:g} s",
            held == {throttled_queue}
            and not others_failed
            and max(throttled_times) < config.interval_seconds,
        ),
    ]
    return result


def _goal(goal: str, measured: str, met: bool) -> dict[str, Any]:
    return {"goal": goal, "measured": measured, "met": met}


def run() -> dict[str, Any]:
    """`make bench`'s entry (bench/__main__.py): measure, write bench/results/scale.json."""
    result = scale()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "scale.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print only the JSON document")
    args = parser.parse_args(argv)
    # One log line per queue per pass (and botocore's) would bury the figures: keep warnings only.
    for name in ("airtasks", "botocore", "boto3", "httpx"):
        logging.getLogger(name).setLevel(logging.WARNING)
    result = run()
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(json.dumps({k: v for k, v in result.items() if k != "goals"}, indent=2))
    print("\ngoals:")
    for g in result["goals"]:
        print(f"  [{'met' if g['met'] else 'NOT MET'}] {g['goal']}: {g['measured']}")
    print("\nwrote bench/results/scale.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
