"""A spot interruption in the cluster in a box, end to end: a worker of the (spot) queue runs a
long task and a short one, both without retries, when EC2's notice arrives (the node's IMDS
stand-in starts serving `spot/instance-action`, 2 minutes ahead, as EC2 does). The node's watcher
stops its intake and labels it; the scaler orders a replacement, leaves the short task alone,
and restarts the long one elsewhere before the deadline; the test then plays the cloud and takes
the instance at the deadline. Nothing is lost and no retry is used.

Runs on the shared box (tests/e2e/conftest.py `box`), before the manager-HA test, which may lose
the manager behind the box's URL; the timeline is kept in tests/artifacts/cluster-spot-timeline.txt.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from airtasks_dev.localcloud.box import Box
from airtasks_dev.localcloud.cloud import LocalCloud
from airtasks_dev.localcloud.node import HOST_DOCKER_CLI, Node
from tests.e2e.airflow_rest import epoch, log_in, run_state, since, span, task_instances, tries, trigger
from tests.e2e.chain import QUEUE, SPOT_DAG
from tests.e2e.helpers import clients, group_state, keep_timeline, service_container, swarm_nodes, wait

pytestmark = [pytest.mark.e2e, pytest.mark.chain]

NOTICE_SECONDS = 120  # what EC2 gives a spot instance
LONG_SECONDS = 150  # cannot end before the deadline
SHORT_SECONDS = 30  # ends well before it
WATCHER_LOG = "/var/log/localcloud-units/airtasks-spot-watcher.service.log"
CELERY_APP = "airflow.providers.celery.executors.celery_executor.app"


@pytest.fixture(scope="module")
def api(box: Box) -> Iterator[httpx.Client]:
    client = log_in(box)
    yield client
    client.close()


def consumed_queues(node: Node, instance: str) -> list[str]:
    """The queues the node's Celery worker consumes, as the worker itself answers."""
    cid = service_container(node, f"worker-{QUEUE}")
    inspect = ["celery", "--app", CELERY_APP, "inspect", "active_queues", "--json"]
    out = node.run(
        [HOST_DOCKER_CLI, "exec", cid, *inspect, "--destination", f"celery@{instance}"], timeout=120
    )
    answer: dict[str, list[dict[str, Any]]] = json.loads(out.stdout.strip().splitlines()[-1])
    return [q["name"] for q in answer[f"celery@{instance}"]]


def test_a_spot_notice_restarts_what_cannot_finish_and_loses_nothing(
    box: Box, api: httpx.Client, cloud: LocalCloud
) -> None:
    ec2, _, autoscaling = clients(cloud.moto)
    group = box.groups()[QUEUE]
    manager = box.manager
    wait(
        lambda: group_state(autoscaling, group) == (0, set()),
        300,
        f"{group} empty after the earlier tests",
        box,
    )

    run = trigger(box, SPOT_DAG, {"long_seconds": LONG_SECONDS, "short_seconds": SHORT_SECONDS})
    t: dict[str, float] = {}

    def mark(event: str) -> None:
        """Note when `event` was seen (printed at once, so a failed run still tells)."""
        t[event] = time.time()
        if "notice" in t:
            print(f"spot: {event} at {t[event] - t['notice']:+.1f}s from the notice")
        else:
            print(f"spot: {event} at {time.strftime('%H:%M:%S')}")

    mark("triggered")

    def both_on_one_node() -> str | None:
        tis = {ti["task_id"]: ti for ti in task_instances(api, SPOT_DAG, run)}
        if [tis.get(k, {}).get("state") for k in ("long", "short")] != ["running", "running"]:
            return None
        hosts = {tis["long"]["hostname"], tis["short"]["hostname"]}
        return hosts.pop() if len(hosts) == 1 else None

    # One node's two slots hold the run's two tasks.
    victim = str(wait(both_on_one_node, 300, "both tasks running on the group's one node", box))
    node = box.runner.node(victim)
    mark("running")

    deadline = time.time() + NOTICE_SECONDS
    node.serve_spot_notice(deadline)
    mark("notice")
    print(f"spot: notice served to {victim}, deadline in {NOTICE_SECONDS}s")

    def watcher_says(text: str) -> bool:
        return text in node.run(["cat", WATCHER_LOG], check=False).stdout

    def labelled() -> bool:
        labels = swarm_nodes(manager)[victim]["Description"]["Engine"]["Labels"]
        return labels.get("airtasks.interrupted") == str(int(deadline))

    # Watched side by side, each noted when first seen: the watcher's cancel, the scaler's
    # replacement (it reads the notice off the broker), the label's arrival in the Swarm.
    steps = {
        "intake stopped": lambda: watcher_says(f"consumer of {QUEUE} cancelled on celery@{victim}"),
        "replacement ordered": lambda: group_state(autoscaling, group)[0] == 2,
        "label in the Swarm": labelled,
    }

    def all_seen() -> bool:
        for name, seen in steps.items():
            if name not in t and seen():
                mark(name)
        return all(name in t for name in steps)

    wait(all_seen, 60, f"all of {', '.join(steps)}", box)
    assert consumed_queues(node, victim) == [], "the interrupted node still consumes its queue"

    # The short task ends on the interrupted node; the long one is restarted before the deadline.
    def long_restarted() -> dict[str, Any] | None:
        attempts = tries(api, SPOT_DAG, run, "long")
        return attempts[0] if len(attempts) > 1 else None

    first = wait(long_restarted, NOTICE_SECONDS + 30, "the long task to be restarted", box)
    mark("long restarted")
    assert time.time() < deadline, "the long task was restarted after the deadline"

    # The cloud takes the instance at the deadline, whatever still runs there.
    time.sleep(max(deadline - time.time(), 0))
    ec2.terminate_instances(InstanceIds=[victim])
    mark("reclaimed")

    wait(
        lambda: run_state(api, SPOT_DAG, run) in ("success", "failed"),
        LONG_SECONDS + 300,
        "the run to end",
        box,
    )
    mark("run ended")
    tis = {ti["task_id"]: ti for ti in task_instances(api, SPOT_DAG, run)}
    summary = {
        k: (ti["state"], ti["try_number"], ti["max_tries"], ti.get("hostname")) for k, ti in tis.items()
    }
    assert run_state(api, SPOT_DAG, run) == "success", summary

    # Nothing else was killed: the short task ran once, where it started.
    short = tis["short"]
    assert (short["state"], short["try_number"], short["hostname"]) == ("success", 1, victim), summary
    assert (epoch(short["end_date"]) or deadline) < deadline
    # The long task's first try ended on the victim before the deadline; it succeeded on another
    # node with no retry left and none used: retries=0 allowed none, and it still succeeded.
    long = tis["long"]
    assert first["hostname"] == victim, first
    assert (epoch(first.get("end_date")) or deadline) < deadline, first
    assert (long["state"], long["try_number"]) == ("success", 2), summary
    assert long["hostname"] != victim, summary
    assert long["max_tries"] == long["try_number"] - 1, summary
    # The task instance says why it ran twice.
    assert f"{victim} got a spot interruption notice" in (long.get("note") or ""), long.get("note")

    # Every step is a decision with its reason, on the Cluster page's API as in the scaler's log.
    view = api.get("/airtasks/api/view", timeout=60).json()
    reasons = [d["reason"] for d in view["decisions"] if d["queue"] == QUEUE]
    assert any(f"interrupted {victim}" in r and "replacement ordered" in r for r in reasons), reasons
    assert any(f"{victim}: restarted 1 task(s) elsewhere, no retry used" in r for r in reasons), reasons

    # The group ends at the size the load needs: nothing.
    wait(lambda: group_state(autoscaling, group) == (0, set()), 300, f"{group} back to 0", box)
    mark("group empty")
    report(t, victim, deadline, first, long, short, box)


def report(
    t: dict[str, float],
    victim: str,
    deadline: float,
    first: dict[str, Any],
    long: dict[str, Any],
    short: dict[str, Any],
    box: Box,
) -> None:
    """Print (and keep in tests/artifacts) what happened when, counted from the notice."""
    zero = t["notice"]
    at = functools.partial(since, zero=zero)
    lines = [
        f"spot notice in the cluster in a box ({NOTICE_SECONDS}s notice; tasks of {LONG_SECONDS}s "
        f"and {SHORT_SECONDS}s, retries=0); times from the notice"
    ]
    events = sorted({**t, "deadline": deadline}.items(), key=lambda kv: kv[1])
    lines += [f"  {at(v)}  {k}" for k, v in events]
    lines.append(f"  short, try 1: {span(short, zero)}")
    lines.append(f"  long, try 1: {span(first, zero)} (archived when the scaler cleared it)")
    lines.append(
        f"  long, try 2: {span(long, zero)}, max_tries {long.get('max_tries')}, note {long.get('note')!r}"
    )
    for iid, timing in box.runner.timings().items():
        seen = epoch(timing.seen)
        if iid == victim or (seen is not None and seen >= zero):
            joined, gone = epoch(timing.joined), epoch(timing.killed)
            lines.append(f"  node {iid}: seen {at(seen)}, joined {at(joined)}, gone {at(gone)}")
    keep_timeline("cluster-spot-timeline.txt", "\n".join(lines))
