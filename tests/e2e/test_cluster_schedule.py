"""Scheduled work on warm nodes, in the cluster in a box: every instance launched during this test
waits BOOT_DELAY seconds before it boots, as a cloud VM does (env AIRTASKS_BOX_BOOT_DELAY, 0 by
default). A benchmark (marker `bench`): `make bench` runs it on a box of its own with 45 s, and
`make test` leaves it out, since its two scheduled runs hold a box for 4-6 minutes:
`AIRTASKS_BOX_BOOT_DELAY=45 .venv/bin/pytest -m e2e tests/e2e/test_cluster_schedule.py`.

A DAG uploaded to the cluster's bucket runs every PERIOD seconds, two tasks on `default`:
- its first scheduled run has no history, but Airflow has parsed the DAG: its two tasks have no
  upstream, so the scaler raises the group for its two root tasks one boot before it is due
  (`pre-scale: ... (first run: 2 root task(s))`), where a reactive autoscaler would make it wait
  a boot from zero nodes;
- from that run the scaler learns what the DAG needs (two slots on `default`). One boot before
  the next run it raises the group again (or keeps run 1's node, if scale-in has not removed it
  yet), so that run starts on a warm node. The pre-scale decision shows on the Cluster page with
  its reason, and the timeline says whether the group was empty in between.

Both runs' first task start minus their `run_after` goes to
tests/artifacts/cluster-schedule-timeline.txt (the benchmark figure; a time goal is not asserted).
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest

from airtasks_dev.localcloud.box import Box
from airtasks_dev.localcloud.cloud import LocalCloud
from tests.e2e.airflow_rest import epoch, log_in, task_instances
from tests.e2e.chain import BUCKET_PREFIX, BUCKET_REFRESH, QUEUE
from tests.e2e.helpers import clients, group_state, wait
from tests.support.artifacts import ARTIFACTS

pytestmark = [pytest.mark.e2e, pytest.mark.chain, pytest.mark.bench]

DAG = "box_scheduled"
BOOT_DELAY = float(os.environ.get("AIRTASKS_BOX_BOOT_DELAY", "0"))
# Long enough for run 1's node to go (its boot, its tasks, scale-in) before run 2's pre-scale one
# boot ahead, in the box's usual times: two emulated boots on top.
PERIOD = 180 + 2 * round(BOOT_DELAY)
TASK_SECONDS = 10


def scheduled_dag(start: int) -> str:
    return f'''"""{DAG}: every {PERIOD} s from {start}, two tasks on `{QUEUE}`
(tests/e2e/test_cluster_schedule.py)."""

import time
from datetime import timedelta

import pendulum
from airflow.sdk import DeltaTriggerTimetable, dag, task


@dag(
    dag_id={DAG!r},
    schedule=DeltaTriggerTimetable(timedelta(seconds={PERIOD})),
    start_date=pendulum.from_timestamp({start}, tz="UTC"),
    catchup=False,
    max_active_runs=1,
)
def the_dag():
    @task(queue={QUEUE!r})
    def first():
        time.sleep({TASK_SECONDS})

    @task(queue={QUEUE!r})
    def second():
        time.sleep({TASK_SECONDS})

    first()
    second()


the_dag()
'''


@pytest.fixture(scope="module")
def api(box: Box) -> Iterator[httpx.Client]:
    client = log_in(box)
    yield client
    client.close()


def nth_run(api: httpx.Client, n: int) -> dict[str, Any] | None:
    """The DAG's n-th scheduled run (0 = the first), once it exists."""
    runs = scheduled_runs(api)
    return runs[n] if len(runs) > n else None


def scheduled_runs(api: httpx.Client) -> list[dict[str, Any]]:
    r = api.get(f"/api/v2/dags/{DAG}/dagRuns", params={"run_type": ["scheduled"], "order_by": "run_after"})
    r.raise_for_status()
    return list(r.json()["dag_runs"])


def first_start(api: httpx.Client, run: dict[str, Any]) -> float | None:
    """When the run's first task started (epoch seconds); None before both have started."""
    starts = [epoch(ti.get("start_date")) for ti in task_instances(api, DAG, run["dag_run_id"])]
    return min(s for s in starts if s is not None) if len(starts) == 2 and all(starts) else None


def test_a_scheduled_run_starts_on_a_node_raised_before_it_is_due(
    box: Box, api: httpx.Client, cloud: LocalCloud
) -> None:
    _, _, autoscaling = clients(cloud.moto)
    group = box.groups()[QUEUE]
    wait(lambda: group_state(autoscaling, group) == (0, set()), 300, f"{group} empty", box)
    t: dict[str, float] = {}

    def mark(event: str, at: float | None = None) -> None:
        t[event] = time.time() if at is None else at
        print(f"schedule: {event} at {time.strftime('%H:%M:%S', time.gmtime(t[event]))}")

    def size() -> int:
        return group_state(autoscaling, group)[0]

    box.runner.boot_delay_seconds = BOOT_DELAY
    try:
        # Uploaded as `aws s3 sync` would; the first run is due once the bundle has surely refreshed
        # and the DAG is unpaused.
        start = math.ceil(time.time()) + 5 * BUCKET_REFRESH
        s3 = boto3.client("s3", endpoint_url=cloud.moto.url, region_name=box.config.region)
        bucket = box.outputs["dag_bundles"]["bucket"]
        s3.put_object(Bucket=bucket, Key=f"{BUCKET_PREFIX}{DAG}.py", Body=scheduled_dag(start).encode())
        mark("uploaded")
        wait(
            lambda: api.get(f"/api/v2/dags/{DAG}").status_code == 200,
            4 * BUCKET_REFRESH + 5,
            f"{DAG} parsed",
            box,
        )
        api.patch(f"/api/v2/dags/{DAG}", json={"is_paused": False}).raise_for_status()
        mark("unpaused")
        assert time.time() < start - 5, "the DAG was not ready before its first run"

        # Run 1: nothing learned yet, but its two root tasks pre-scale it.
        run1 = wait(lambda: nth_run(api, 0), 120, f"{DAG}'s first scheduled run", box)
        mark("run 1 due", epoch(run1["run_after"]))
        mark("run 1 first task", wait(lambda: first_start(api, run1), 300, "run 1's tasks to start", box))

        # Run 2: one boot before it is due, the scaler raises the group again, or keeps run 1's
        # node if it has not gone yet; whether the group was empty in between is noted.
        due2 = t["run 1 due"] + PERIOD

        def run2_started() -> float | None:
            if "group empty" not in t and size() == 0:
                mark("group empty")
            run = nth_run(api, 1)
            return first_start(api, run) if run else None

        mark("run 2 first task", wait(run2_started, due2 - time.time() + 300, "run 2's tasks to start", box))
        run2 = nth_run(api, 1)
        assert run2 is not None
        mark("run 2 due", epoch(run2["run_after"]))
        assert abs(t["run 2 due"] - due2) < 1, run2
    finally:
        box.runner.boot_delay_seconds = 0.0
        # No more runs, whatever happened: the tests after this one share the group.
        with contextlib.suppress(httpx.HTTPError):
            api.patch(f"/api/v2/dags/{DAG}", json={"is_paused": True})

    # The pre-scale is a decision of its own on the Cluster page, taken before the run was due.
    view = api.get("/airtasks/api/view", timeout=60).json()
    decisions = [d for d in view["decisions"] if d["queue"] == QUEUE]
    prescaled = [
        d for d in decisions if d["reason"].startswith("pre-scale:") and f"{DAG} due " in d["reason"]
    ]
    assert prescaled, [d["reason"] for d in decisions]
    assert all("needs 2 slot(s)" in d["reason"] for d in prescaled), prescaled
    first_run = [d for d in prescaled if "(first run: 2 root task(s))" in d["reason"]]
    assert first_run, prescaled
    mark("pre-scaled run 1", min(float(d["t"]) for d in first_run))
    assert t["pre-scaled run 1"] < t["run 1 due"], "run 1 was not pre-scaled before it was due"
    # Run 2's need was learnt from run 1: its decisions name no root tasks.
    learned = [float(d["t"]) for d in prescaled if "(first run" not in d["reason"]]
    assert learned, prescaled
    mark("pre-scaled", min(learned))
    assert t["pre-scaled"] < due2, f"pre-scaled {t['pre-scaled'] - due2:+.0f}s after run 2 was due"

    wait1 = t["run 1 first task"] - t["run 1 due"]
    wait2 = t["run 2 first task"] - t["run 2 due"]
    timeline = "\n".join(
        [
            f"scheduled runs in the cluster in a box, {BOOT_DELAY:.0f}s emulated boot, every {PERIOD}s, "
            f"two {TASK_SECONDS}s tasks on {QUEUE}; first task start minus run_after:",
            f"  run 1 (first run, pre-scaled for its 2 root tasks): {wait1:+.1f}s",
            f"  run 2 (pre-scaled from run 1):                       {wait2:+.1f}s",
            f"  pre-scale decided {t['pre-scaled'] - t['run 2 due']:+.1f}s from run 2's run_after; the group "
            + (
                f"was empty from {t['group empty'] - t['run 2 due']:+.1f}s"
                if "group empty" in t
                else "kept run 1's node"
            ),
            "",
        ]
    )
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "cluster-schedule-timeline.txt").write_text(timeline)
    print(timeline)
    # The group's scale-in to nothing overlaps the next test, which waits for an empty group.
