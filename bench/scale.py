"""The scaler at scale: 20 queues, 2,000 instances, 10,000 running and 5,000 queued task instances.

`python -m bench.scale [--json]`; `make bench` runs it too (`run() -> dict`).

- AWS: 20 Auto Scaling groups of 100 InService instances each, in moto in this process (created
  with boto3). The scaler's own `AwsBackend` reads them; every API call it makes is counted with a
  botocore `before-call` hook, per service and operation.
- Airflow: a stand-in for its REST API (`AirflowStandIn`) that holds the task instances as rows
  and answers the scaler's requests (`/auth/token`, the task-instance list with its `state`,
  `queue`, `limit`, `offset` filters and `total_entries`) with Airflow's own response models
  (`TaskInstanceCollectionResponse`), so pages have the size and shape a real Airflow sends.
  What the scaler pays for Airflow is the number and size of those calls and its own parsing;
  docs/measured-runs.md says why this measures the same thing as a real Airflow, and what not.

Scenarios, each `PASSES` passes after one warm-up pass (the first read of 2,000 launch times):

- surplus: 8 slots per node, so every group has more nodes than its load needs and every queue
  reads which node is busy (10,000 running task instances, 100 pages): the heaviest pass.
- saturated: 5 slots per node, the load needs every node; no node-level read.
- throttled: the saturated load with room to grow by one node, while AWS answers `Throttling` to
  every call naming one group: that queue must hold, every other must scale out, and no pass may
  take longer than the interval.

The cluster page's API (`/airtasks/api/view`: `build_view` + its JSON) is timed for all queues and
for one queue (`?queue=`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
import httpx

from airtasks.backends.aws import AwsBackend
from airtasks.config import Credentials, ScalerConfig, parse_config
from airtasks.ops.page import render_page
from airtasks.ops.view import NODES_PAGE, build_view
from airtasks.scaling.scaler import Scaler
from airtasks.sources.airflow import AirflowSource
from airtasks.state.history import HistoryStore
from airtasks.state.memory import MemoryStore
from airtasks.wiring import Clients
from bench._common import percentile
from tests.support.throttle import Throttle

REGION = "us-east-1"
QUEUES = 20
PER_GROUP = 100
RUNNING = 10_000
QUEUED = 5_000
PASSES = 20
VIEWS = 5
AIRFLOW_URL = "http://airflow.bench"
THROTTLED_QUEUE = "q07"
GOAL_PASS_P50_S = 1.0
GOAL_PASS_P95_S = 2.0
GOAL_VIEW_P50_S = 2.0


# ---------------------------------------------------------------------------------------------
# Airflow's REST API, stood in for
# ---------------------------------------------------------------------------------------------


def _task_instances(queues: list[str], hosts: dict[str, list[str]]) -> list[tuple[str, str, str]]:
    """(state, queue, JSON) per task instance, rendered once with Airflow's own response model."""
    from airflow.api_fastapi.core_api.datamodels.task_instances import (  # noqa: PLC0415 - heavy
        TaskInstanceResponse,
    )

    start = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.UTC)
    version = {
        "id": str(uuid.UUID(int=1)),
        "version_number": 1,
        "dag_id": "bench",
        "bundle_name": "dags-folder",
        "bundle_version": None,
        "created_at": start,
        "dag_display_name": "bench",
        "bundle_url": None,
    }
    rows: list[tuple[str, str, str]] = []
    for n in range(RUNNING + QUEUED):
        running = n < RUNNING
        queue = queues[n % len(queues)]
        host = hosts[queue][(n // len(queues)) % len(hosts[queue])] if running else None
        ti = TaskInstanceResponse.model_validate(
            {
                "id": uuid.UUID(int=n + 2),
                "task_id": f"work_{n % 50}",
                "dag_id": "bench",
                "dag_run_id": f"manual__2026-12-04T12:00:00+00:00_{n // 1000}",
                "map_index": n,
                "logical_date": start,
                "run_after": start,
                "start_date": start if running else None,
                "end_date": None,
                "duration": None,
                "state": "running" if running else "queued",
                "try_number": 1,
                "max_tries": 0,
                "task_display_name": f"work_{n % 50}",
                "dag_display_name": "bench",
                "hostname": host,
                "unixname": "airflow",
                "pool": "default_pool",
                "pool_slots": 1,
                "queue": queue,
                "priority_weight": 1,
                "operator": "PythonOperator",
                "operator_name": "@task",
                "queued_when": start,
                "scheduled_when": start,
                "pid": 1000 + n if running else None,
                "executor": None,
                "executor_config": "{}",
                "note": None,
                "rendered_map_index": None,
                "rendered_fields": {"op_args": "[]", "op_kwargs": "{}"},
                "trigger": None,
                "triggerer_job": None,
                "dag_version": version,
            }
        )
        rows.append((ti.state or "", queue, ti.model_dump_json(by_alias=True)))
    return rows


@dataclass
class AirflowStandIn:
    """`GET /auth/token`, `GET /api/v2/dags` (no DAG due) and the task instances over fixed rows, as an
    httpx transport; counts the calls and the response bytes."""

    rows: list[tuple[str, str, str]]
    calls: int = 0
    bytes: int = 0
    seconds: float = 0.0
    """Time spent answering (the stand-in's, not the scaler's)."""
    _by_key: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for state, queue, body in self.rows:
            self._by_key.setdefault((state, queue), []).append(body)

    def handle(self, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        try:
            return self._answer(request)
        finally:
            self.seconds += time.perf_counter() - started

    def _answer(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if request.url.path == "/auth/token":
            body = b'{"access_token": "bench"}'
        elif request.url.path == "/api/v2/dags/~/dagRuns/~/taskInstances":
            params = request.url.params
            states, queues = params.get_list("state"), params.get_list("queue")
            limit, offset = min(int(params.get("limit", 50)), 100), int(params.get("offset", 0))
            selected = [
                body
                for key, bodies in self._by_key.items()
                if key[0] in states and key[1] in queues
                for body in bodies
            ]
            page = selected[offset : offset + limit] if limit else []
            body = (
                f'{{"task_instances":[{",".join(page)}],"total_entries":{len(selected)},'
                '"total_entries_limit":null,"next_cursor":null,"previous_cursor":null}'
            ).encode()
        elif request.url.path == "/api/v2/dags":
            # The schedule read of pre-scaling: these task instances belong to manual runs, so no
            # unpaused DAG has a next run coming.
            body = b'{"dags":[],"total_entries":0}'
        else:
            return httpx.Response(404, json={"detail": "Not Found"})
        self.bytes += len(body)
        return httpx.Response(200, content=body, headers={"Content-Type": "application/json"})


# ---------------------------------------------------------------------------------------------
# AWS in moto, and the calls the scaler makes
# ---------------------------------------------------------------------------------------------


@contextmanager
def _moto() -> Iterator[None]:
    from moto import mock_aws  # noqa: PLC0415 - dev dependency

    saved = dict(os.environ)
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION=REGION)
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        os.environ.pop(key, None)
    try:
        with mock_aws():
            yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _make_groups(names: list[str]) -> dict[str, list[str]]:
    """A group of PER_GROUP InService, scale-in protected instances per name; their instance ids."""
    asg = boto3.client("autoscaling", region_name=REGION)
    ec2 = boto3.client("ec2", region_name=REGION)
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    ec2.create_launch_template(
        LaunchTemplateName="bench-workers",
        LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "t3.micro"},
    )
    for name in names:
        asg.create_auto_scaling_group(
            AutoScalingGroupName=name,
            LaunchTemplate={"LaunchTemplateName": "bench-workers", "Version": "$Latest"},
            MinSize=0,
            MaxSize=PER_GROUP + 1,
            DesiredCapacity=PER_GROUP,
            VPCZoneIdentifier=subnet,
            NewInstancesProtectedFromScaleIn=True,
        )
    found = asg.describe_auto_scaling_groups(AutoScalingGroupNames=names)["AutoScalingGroups"]
    return {g["AutoScalingGroupName"]: sorted(i["InstanceId"] for i in g["Instances"]) for g in found}


class CallCounter:
    """Every AWS API call of a backend (`service.Operation`), retries not counted, and the time
    spent inside them (mostly moto's, which a real AWS spends on its own machines)."""

    def __init__(self, backend: AwsBackend) -> None:
        self.calls: Counter[str] = Counter()
        self.seconds = 0.0
        self._started = 0.0
        for client in (backend.autoscaling, backend.ec2, backend._once("autoscaling"), backend._once("ec2")):
            client.meta.events.register("before-call", self._before)
            client.meta.events.register("after-call", self._after)

    def _before(self, model: Any, **_: Any) -> None:
        self.calls[f"{model.service_model.service_id.hyphenize()}.{model.name}"] += 1
        self._started = time.perf_counter()

    def _after(self, **_: Any) -> None:
        self.seconds += time.perf_counter() - self._started

    def take(self) -> tuple[Counter[str], float]:
        out = (self.calls, self.seconds)
        self.calls, self.seconds = Counter(), 0.0
        return out


def _config(queues: list[str], slots: int, max_size: int) -> ScalerConfig:
    return parse_config(
        {
            "backend": "aws",
            "region": REGION,
            "sources": {"airflow": {"url": AIRFLOW_URL}},
            "celery": None,
            "queues": {
                q: {"group": f"bench-{q}", "min_size": 0, "max_size": max_size, "slots_per_node": slots}
                for q in queues
            },
        }
    )


@dataclass
class World:
    backend: AwsBackend
    aws: CallCounter
    airflow: AirflowStandIn

    def clients(self) -> Clients:
        source = AirflowSource(
            _config(["q"], 1, 1).sources.airflow,  # type: ignore[arg-type]
            Credentials(None, None),
            transport=httpx.MockTransport(self.airflow.handle),
        )
        return Clients(
            self.backend, airflow=source, memory=MemoryStore.in_process(), history=HistoryStore.in_process()
        )


def _describes(calls: Counter[str]) -> int:
    return calls["auto-scaling.DescribeAutoScalingGroups"] + calls["ec2.DescribeInstances"]


def _passes(world: World, config: ScalerConfig, passes: int) -> dict[str, Any]:
    scaler = Scaler(config, world.clients())
    durations: list[float] = []
    aws: list[Counter[str]] = []
    rest: list[tuple[int, int]] = []
    own: list[float] = []
    aws_s: list[float] = []
    actions: Counter[str] = Counter()
    for _ in range(passes):
        world.aws.take()
        world.airflow.calls = world.airflow.bytes = 0
        world.airflow.seconds = 0.0
        started = time.perf_counter()
        report = scaler.run_pass()
        durations.append(time.perf_counter() - started)
        calls, in_aws = world.aws.take()
        aws.append(calls)
        aws_s.append(in_aws)
        own.append(durations[-1] - in_aws - world.airflow.seconds)
        rest.append((world.airflow.calls, world.airflow.bytes))
        actions.update(q.action for q in report.queues)
    scaler.close()
    last = aws[-1]
    return {
        "passes": passes,
        "pass_p50_s": round(percentile(durations, 50), 3),
        "pass_p95_s": round(percentile(durations, 95), 3),
        "pass_max_s": round(max(durations), 3),
        # Of a pass: inside the AWS calls (moto answering, in this process), and the rest less the
        # stand-in's answering (the scaler's own work: requests, parsing, deciding).
        "aws_calls_s_p50": round(percentile(aws_s, 50), 3),
        "scaler_own_s_p50": round(percentile(own, 50), 3),
        "aws_calls_per_pass": dict(sorted(last.items())),
        "describe_calls_per_pass": max(_describes(c) for c in aws),
        "airflow_calls_per_pass": max(c for c, _ in rest),
        "airflow_bytes_per_pass": max(b for _, b in rest),
        "actions": dict(sorted(actions.items())),
    }


def _views(world: World, config: ScalerConfig, queue: str | None) -> float:
    samples = []
    for _ in range(VIEWS):
        clients = world.clients()
        started = time.perf_counter()
        view = build_view(config, clients, queues=[queue] if queue else None)
        json.dumps(view.to_json(nodes_limit=NODES_PAGE))  # what /airtasks/api/view answers
        samples.append(time.perf_counter() - started)
    return round(percentile(samples, 50), 3)


def _page(world: World, config: ScalerConfig) -> dict[str, Any]:
    """The cluster page itself (`/airtasks/`, all queues): its time to render and its size."""
    view = build_view(config, world.clients())
    samples, html = [], ""
    for _ in range(VIEWS):
        started = time.perf_counter()
        html = render_page(view)
        samples.append(time.perf_counter() - started)
    return {
        "render_p50_s": round(percentile(samples, 50), 3),
        "html_bytes": len(html.encode()),
        "node_rows": html.count('class="node"'),
    }


def _throttled(world: World, queues: list[str], groups: list[str], passes: int) -> dict[str, Any]:
    """Saturated load, room for one more node per group, one group throttled."""
    config = _config(queues, 5, PER_GROUP + 1)
    throttle = Throttle(f"bench-{THROTTLED_QUEUE}").attach(
        world.backend.autoscaling, world.backend._once("autoscaling")
    )
    scaler = Scaler(config, world.clients())
    durations: list[float] = []
    held: set[str] = set()
    try:
        for _ in range(passes):
            started = time.perf_counter()
            report = scaler.run_pass()
            durations.append(time.perf_counter() - started)
            held |= {q.queue for q in report.queues if q.failed}
    finally:
        throttle.on = False
        scaler.close()
    asg = boto3.client("autoscaling", region_name=REGION)
    found = asg.describe_auto_scaling_groups(AutoScalingGroupNames=groups)["AutoScalingGroups"]
    sizes = {g["AutoScalingGroupName"].removeprefix("bench-"): g["DesiredCapacity"] for g in found}
    return {
        "passes": passes,
        "throttled_queue": THROTTLED_QUEUE,
        "refused_calls": throttle.refused,
        "held_queues": sorted(held),
        "scaled_out_queues": sum(1 for q, n in sizes.items() if n == PER_GROUP + 1),
        "throttled_queue_size": sizes[THROTTLED_QUEUE],
        "pass_max_s": round(max(durations), 3),
        "interval_s": config.interval_seconds,
    }


def scale(passes: int = PASSES) -> dict[str, Any]:
    # The pass logs a line per queue: 20 a pass would bury the figures (and botocore's on stdout
    # would break --json).
    for name in ("airtasks.scaling", "botocore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    load_before = os.getloadavg()[0]
    queues = [f"q{i:02}" for i in range(QUEUES)]
    groups = [f"bench-{q}" for q in queues]
    with _moto():
        started = time.perf_counter()
        members = _make_groups(groups)
        hosts = {q: members[f"bench-{q}"] for q in queues}
        airflow = AirflowStandIn(_task_instances(queues, hosts))
        setup_s = time.perf_counter() - started
        backend = AwsBackend(REGION)
        world = World(backend, CallCounter(backend), airflow)

        surplus_config = _config(queues, 8, PER_GROUP)
        warm = _passes(world, surplus_config, 1)  # first read: every instance's launch time
        surplus = _passes(world, surplus_config, passes)
        saturated = _passes(world, _config(queues, 5, PER_GROUP), passes)
        view_all = _views(world, surplus_config, None)
        view_one = _views(world, surplus_config, queues[0])
        page = _page(world, surplus_config)
        throttled = _throttled(world, queues, groups, 5)

    instances = sum(len(ids) for ids in members.values())
    result: dict[str, Any] = {
        "name": "the scaler at scale",
        "setup": (
            f"{QUEUES} queues, {instances} instances in moto (in process), Airflow REST stand-in with "
            f"{RUNNING} running + {QUEUED} queued task instances; {passes} passes a scenario"
        ),
        "queues": QUEUES,
        "instances": instances,
        "running": RUNNING,
        "queued": QUEUED,
        # The heaviest pass (every queue reads its busy nodes) is the headline.
        "pass_p50_s": surplus["pass_p50_s"],
        "pass_p95_s": surplus["pass_p95_s"],
        "pass_aws_calls_s_p50": surplus["aws_calls_s_p50"],
        "pass_scaler_own_s_p50": surplus["scaler_own_s_p50"],
        "view_p50_s": view_all,
        "view_queue_p50_s": view_one,
        "page": page,
        "describe_calls_per_pass": surplus["describe_calls_per_pass"],
        "aws_calls_per_pass": surplus["aws_calls_per_pass"],
        "airflow_calls_per_pass": surplus["airflow_calls_per_pass"],
        "airflow_bytes_per_pass": surplus["airflow_bytes_per_pass"],
        "setup_s": round(setup_s, 1),
        # The machine's 1-min load average before and after: the figures depend on what else ran.
        "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)],
        "cpus": os.cpu_count(),
        "first_pass": {
            "pass_s": warm["pass_p50_s"],
            "aws_calls": warm["aws_calls_per_pass"],
            "describe_calls": warm["describe_calls_per_pass"],
        },
        "scenarios": {"surplus": surplus, "saturated": saturated, "throttled": throttled},
    }
    result["goals"] = goals(result)
    return result


def goals(r: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's goals, each with its measured value and met / not met."""
    t = r["scenarios"]["throttled"]
    describe_budget = 2 * r["instances"] / 100 + 5
    others = r["queues"] - 1
    return [
        {
            "goal": f"pass p50 <= {GOAL_PASS_P50_S:g} s",
            "measured": f"{r['pass_p50_s']} s",
            "met": r["pass_p50_s"] <= GOAL_PASS_P50_S,
        },
        {
            "goal": f"pass p95 <= {GOAL_PASS_P95_S:g} s",
            "measured": f"{r['pass_p95_s']} s",
            "met": r["pass_p95_s"] <= GOAL_PASS_P95_S,
        },
        {
            "goal": f"describe calls per pass <= 2 per 100 instances + 5 ({describe_budget:g})",
            "measured": str(r["describe_calls_per_pass"]),
            "met": r["describe_calls_per_pass"] <= describe_budget,
        },
        {
            "goal": f"cluster page API p50 <= {GOAL_VIEW_P50_S:g} s",
            "measured": f"{r['view_p50_s']} s",
            "met": r["view_p50_s"] <= GOAL_VIEW_P50_S,
        },
        {
            "goal": "throttled group: only its queue holds, every other acts, passes within the interval",
            "measured": (
                f"held {t['held_queues']}, {t['scaled_out_queues']}/{others} others scaled out, "
                f"max pass {t['pass_max_s']} s of {t['interval_s']:g} s"
            ),
            "met": t["held_queues"] == [t["throttled_queue"]]
            and t["scaled_out_queues"] == others
            and t["pass_max_s"] <= t["interval_s"],
        },
    ]


def run() -> dict[str, Any]:
    """`make bench`'s entry (bench/__main__.py)."""
    return scale()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args(argv)
    result = scale()
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for g in result["goals"]:
            print(f"[{'met' if g['met'] else 'NOT MET'}] {g['goal']}: {g['measured']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
