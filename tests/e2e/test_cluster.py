"""The chain, end to end: `terraform apply` of envs/local -> the manager instance boots the Swarm
and the stack from its own user data -> tasks queue on `default` -> the scaler DAG on the manager
grows the group in moto -> every instance the group starts boots, joins with its labels and runs
the queue's worker -> the runs succeed (one node is lost mid-task on the way; its task is retried
elsewhere) -> the queue empties -> the scaler drains and terminates exactly the idle nodes, and
the Swarm forgets them, and every task's log is still there, read from the cluster's bucket.
Nothing is faked past the AWS API (moto): see dev/airtasks_dev/localcloud.

One deployment for everything (the stack takes minutes to converge on two cores), with three
managers: the box is shared with the manager-HA test (test_cluster_ha.py), which runs after this
one (tests/e2e/conftest.py `box`, tests/e2e/chain.py `config()`). The timeline of the run is
printed and kept in tests/artifacts/cluster-timeline.txt (docs/measured-runs.md quotes one).
The boot-script faults (a worker that boots before the manager published, a refused token) are
in test_swarm_boot.py.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import httpx
import pytest

from airtasks.sources.airflow_access import tls_verify
from airtasks_dev.localcloud.box import Box
from airtasks_dev.localcloud.cloud import LocalCloud
from airtasks_dev.localcloud.node import HOST_DOCKER_CLI
from tests.e2e.airflow_rest import epoch, log_in, run_state, span, task_instances, tries, trigger
from tests.e2e.chain import BURST_DAG, CLUSTER, MANAGERS, MAX_NODES, QUEUE, SLOTS
from tests.e2e.helpers import clients, group_state, keep_timeline, swarm_nodes, wait
from tests.support.artifacts import ARTIFACTS
from tests.support.browser import cluster_page_shows_decision, task_log_page_shows

pytestmark = [pytest.mark.e2e, pytest.mark.chain, pytest.mark.browser]

HOLD_SECONDS = 40
# The node to lose runs tasks that started at most this long ago, so at least 15 s of each is left
# to terminate it in. The margin outlasts a read of the tasks on the box's busiest minute (up to
# 14 s in CI): with 20 s tasks and 10 s, a worker could start and pass the mark between two reads.
FRESH_SECONDS = 25


# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def api(box: Box) -> Iterator[httpx.Client]:
    client = log_in(box)
    yield client
    client.close()


# ------------------------------------------------------------------------------------------------
def test_the_manager_boots_the_swarm_and_the_stack_from_its_user_data(box: Box, cloud: LocalCloud) -> None:
    log = box.manager.boot_log.read_text()
    assert "airtasks-boot: Swarm initialised" in log
    assert "airtasks-boot: stack airtasks deployed" in log
    assert box.manager.hostname() == box.manager_id
    _, ssm, _ = clients(cloud.moto)
    token = ssm.get_parameter(Name=f"/airtasks/{CLUSTER}/swarm/worker-token", WithDecryption=True)
    worker_token = box.manager.run([HOST_DOCKER_CLI, "swarm", "join-token", "-q", "worker"]).stdout.strip()
    assert token["Parameter"]["Value"] == worker_token
    assert worker_token not in log
    assert worker_token not in box.manager.instance.user_data.decode(errors="replace")
    assert box.password_file.read_text().strip() not in log

    with box.manager.client() as docker:
        secrets = {s.name for s in docker.secrets.list()}
        assert {"airtasks_admin_password", "airtasks_tls_cert", "airtasks_fernet_key"} <= secrets
        worker = docker.services.get("airtasks_worker-default").attrs["Spec"]["TaskTemplate"]
        manager_worker = docker.services.get("airtasks_worker-manager").attrs["Spec"]["TaskTemplate"]
    # Placed by the engine labels each worker's boot script writes: a node runs its worker on join.
    assert worker["Placement"]["Constraints"] == [f"engine.labels.airtasks.queue == {QUEUE}"]
    env = dict(item.split("=", 1) for item in manager_worker["ContainerSpec"]["Env"])
    scaler_config = json.loads(env["AIRTASKS_CONFIG"])
    assert scaler_config["queues"][QUEUE]["group"] == box.groups()[QUEUE]
    assert scaler_config["sources"]["airflow"]["url"] == "http://airflow-apiserver:8080"
    assert env["AWS_ENDPOINT_URL"] == cloud.moto.url  # the same endpoint as the boot script's
    assert env["AIRTASKS_DOCKER_URL"] == "unix:///var/run/docker.sock"

    # The UI through the proxy on the manager's address (443; 80 redirects).
    r = httpx.get(
        f"{box.url}/dags", headers={"Accept": "text/html"}, verify=tls_verify(str(box.ca_bundle)), timeout=30
    )
    assert r.status_code == 302
    assert r.headers["location"].startswith("/auth/login")
    assert httpx.get(f"http://{box.manager.address}/dags", timeout=30).status_code == 301


def test_tasks_scale_the_group_out_run_and_scale_it_in_a_lost_node_included(
    box: Box, api: httpx.Client, cloud: LocalCloud
) -> None:
    ec2, _, autoscaling = clients(cloud.moto)
    group = box.groups()[QUEUE]
    manager = box.manager
    _, manager_ids = group_state(autoscaling, box.manager_group)
    assert len(manager_ids) == MANAGERS

    def members() -> tuple[int, list[str]]:
        desired, instances = group_state(autoscaling, group)
        return desired, sorted(instances)

    assert members() == (0, [])
    interleaved = trigger(box, "example_interleaved")
    burst = trigger(box, BURST_DAG, {"seconds": HOLD_SECONDS})
    triggered = time.time()
    print(f"chain: triggered example_interleaved {interleaved} and {BURST_DAG} {burst}")

    # The scaler grows the group to its maximum (7 tasks over 2 slots per node).
    wait(lambda: members()[0] == MAX_NODES, 180, f"the scaler to raise {group} to {MAX_NODES}", box)
    workers = members()[1]
    assert len(workers) == MAX_NODES

    def joined() -> bool:
        nodes = swarm_nodes(manager)
        return all(nodes.get(w, {}).get("Status", {}).get("State") == "ready" for w in workers)

    wait(joined, 180, "every worker Ready in the Swarm", box)
    nodes = swarm_nodes(manager)
    for w in workers:
        assert nodes[w]["Spec"]["Role"] == "worker"
        labels = nodes[w]["Description"]["Engine"]["Labels"]
        assert labels["airtasks.role"] == "worker", labels
        assert labels["airtasks.queue"] == QUEUE, labels

    # A node is lost mid-task: the instance is terminated (the group replaces it, as an ASG does).
    # The victim runs burst tasks in both its slots, all started in the last FRESH_SECONDS (counted
    # to when the answer came): mid-task, and no task of example_interleaved (no retries) can be there.
    def busy_worker() -> list[dict[str, Any]] | None:
        answer = task_instances(api, BURST_DAG, burst)
        now = time.time()
        running: dict[str, list[dict[str, Any]]] = {}
        for ti in answer:
            if ti["state"] == "running" and ti.get("hostname") in workers:
                running.setdefault(ti["hostname"], []).append(ti)
        for tis in running.values():
            if len(tis) == SLOTS and all(
                now - (epoch(ti.get("start_date")) or 0) < FRESH_SECONDS for ti in tis
            ):
                return tis
        return None

    def burst_tasks() -> str:
        """When and where each burst task ran, from the trigger: why no worker qualified."""
        try:
            tis = task_instances(api, BURST_DAG, burst)
        except httpx.HTTPError as exc:
            return f"(the burst's tasks could not be read: {exc!r})"
        return "\n".join(f"{ti['task_id']}[{ti.get('map_index', -1)}]: {span(ti, triggered)}" for ti in tis)

    # The Cluster page's API must list the scale-out. Its reads fall in the box's busiest minute,
    # the workers' boot (up to 45 s a read in CI), so they run beside the search for the node to
    # lose instead of delaying it; a read after the loss need not list the lost node.
    gone: set[str] = set()

    def view_lists_the_scale_out() -> str:
        viewer = log_in(box)  # its own client: httpx's are not shared between threads here
        try:
            return cluster_view_lists_the_scale_out(box, viewer, group, workers, gone)
        finally:
            viewer.close()

    with ThreadPoolExecutor(1, thread_name_prefix="cluster-view") as pool:
        listed = pool.submit(view_lists_the_scale_out)
        searching = f"a worker running {SLOTS} burst tasks that started just now"
        victim_tis = wait(busy_worker, 240, searching, box, why=burst_tasks)
        victim = str(victim_tis[0]["hostname"])
        gone.add(victim)
        ec2.terminate_instances(InstanceIds=[victim])
        lost = time.time()
        print(f"chain: terminated {victim} while it ran {', '.join(ti['task_id'] for ti in victim_tis)}")
        scale_out = listed.result()

    def forgotten() -> bool:
        return victim not in swarm_nodes(manager)

    wait(forgotten, 120, f"the scaler to remove the Down node {victim} from the Swarm", box)
    removed = time.time()

    for dag_id, run_id in ((BURST_DAG, burst), ("example_interleaved", interleaved)):
        wait(
            lambda d=dag_id, r=run_id: run_state(api, d, r) in ("success", "failed"),
            300,
            f"{dag_id} to finish",
            box,
        )
        summary = [
            (t["task_id"], t["state"], t["try_number"], t.get("hostname"))
            for t in task_instances(api, dag_id, run_id)
        ]
        assert run_state(api, dag_id, run_id) == "success", (dag_id, summary, victim)

    # Scale-in: every worker goes, each after its last task; the Swarm forgets them.
    def scaled_in() -> bool:
        vms_gone = all(t.killed is not None for i, t in box.runner.timings().items() if i not in manager_ids)
        return members() == (0, []) and set(swarm_nodes(manager)) == manager_ids and vms_gone

    wait(scaled_in, 240, "the scaler to drain and remove every idle worker", box)
    done = time.time()

    # Every task succeeded; only the lost node's tasks were retried, and elsewhere.
    history: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for dag_id, run_id in ((BURST_DAG, burst), ("example_interleaved", interleaved)):
        for ti in task_instances(api, dag_id, run_id):
            assert ti["state"] == "success", ti
            history[(dag_id, ti["task_id"])] = tries(api, dag_id, run_id, ti["task_id"])
    # The queue's tasks ran in its pool, which holds what the group runs at its maximum size.
    assert {ti["pool"] for ti in task_instances(api, BURST_DAG, burst)} == {f"airtasks-{QUEUE}"}
    pool = api.get(f"/api/v2/pools/airtasks-{QUEUE}").json()
    assert pool["slots"] == MAX_NODES * SLOTS, pool
    retried = {key for key, attempts in history.items() if len(attempts) > 1}
    cut_short = {
        key
        for key, attempts in history.items()
        if attempts[0].get("hostname") == victim and (epoch(attempts[0].get("end_date")) or lost) >= lost
    }
    unexplained = {
        key: [
            (a.get("try_number"), a.get("hostname"), a.get("state"), a.get("start_date"), a.get("end_date"))
            for a in history[key]
        ]
        for key in retried ^ cut_short
    }
    assert retried == cut_short, (retried, cut_short, victim, unexplained)
    assert {(BURST_DAG, ti["task_id"]) for ti in victim_tis} <= retried
    for key in retried:
        assert history[key][-1]["hostname"] != victim, (key, history[key])
    for key, attempts in history.items():
        assert [int(a["try_number"]) for a in attempts] == list(range(1, len(attempts) + 1)), key

    # Every worker the scaler removed had finished its last task before it went.
    node_of = box.runner.timings()
    for iid, timing in node_of.items():
        if iid in manager_ids | {victim}:
            continue
        last_end = max(
            (
                epoch(a.get("end_date")) or 0.0
                for attempts in history.values()
                for a in attempts
                if a.get("hostname") == iid
            ),
            default=0.0,
        )
        assert timing.killed is not None, f"{iid} still runs"
        assert epoch(timing.killed) > last_end, f"{iid} was gone before its last task ended"

    task_logs_outlive_their_nodes(box, api, cloud, burst, history)
    # The browser's view of the scale-out comes last: rendering the page in Chromium takes tens of
    # seconds on a busy host, and before the loss it would eat the burst tasks' first seconds, the
    # window in which the lost node is chosen. The decision stays on the page after the scale-in.
    cluster_page_shows_decision(
        box.url,
        box.password_file.read_text().strip(),
        QUEUE,
        "scale_out",
        scale_out,
        ARTIFACTS / "cluster-page-box.png",
    )
    report_timeline(box, history, triggered, lost, removed, done, victim, manager_ids)


def task_logs_outlive_their_nodes(
    box: Box,
    api: httpx.Client,
    cloud: LocalCloud,
    burst: str,
    history: dict[tuple[str, str], list[dict[str, Any]]],
) -> None:
    """Every worker is terminated and gone; still, each burst task's last try has its log: the REST
    API serves it from the cluster's bucket with the line the task printed, the objects are in
    S3 under logs/, and the UI shows one (screenshot in tests/artifacts). A try cut short with its
    node has no log there: Airflow uploads a log when its task ends."""
    logs = box.outputs["task_logs"]
    s3 = boto3.client("s3", endpoint_url=cloud.moto.url, region_name=box.config.region)
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=logs["bucket"], Prefix=logs["prefix"])
    keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    shown: tuple[str, str] | None = None
    for (dag_id, task_id), attempts in sorted(history.items()):
        if dag_id != BURST_DAG:
            continue
        last = attempts[-1]
        index, try_number = task_id.removeprefix("hold_"), int(last["try_number"])
        seconds = HOLD_SECONDS if try_number == 1 else min(HOLD_SECONDS, 5)
        line = f"task {index}: holding a slot on {last['hostname']} for {seconds}s"
        suffix = f"/task_id={task_id}/attempt={try_number}.log"
        assert any(k.endswith(suffix) and f"dag_id={BURST_DAG}/" in k for k in keys), (suffix, keys)
        r = api.get(
            f"/api/v2/dags/{BURST_DAG}/dagRuns/{burst}/taskInstances/{task_id}/logs/{try_number}",
            params={"full_content": "true"},
            timeout=60,
        )
        assert r.status_code == 200, r.text
        # Structured lines: each line's `event`, and first the sources the log was read from.
        text = json.dumps(r.json()["content"])
        assert line in text, f"{task_id} try {try_number}: {line!r} not in its log:\n{text[-2000:]}"
        assert f"s3://{logs['bucket']}/{logs['prefix']}" in text, text[:1000]  # where it was read
        shown = (task_id, line)
    assert shown is not None
    task_id, line = shown
    task_log_page_shows(
        box.url,
        box.password_file.read_text().strip(),
        f"/dags/{BURST_DAG}/runs/{burst}/tasks/{task_id}",
        line,
        ARTIFACTS / "task-log-box.png",
    )


def cluster_view_lists_the_scale_out(
    box: Box, api: httpx.Client, group: str, workers: list[str], gone: set[str]
) -> str:
    """The Cluster page's API on the cloud path: the API server's view (the same config as the
    scaler, read with the viewer's token) lists the queue, its scale-out decision and its nodes
    (every worker of the scale-out but those in `gone`, which the caller fills as it terminates
    them). Returns that decision's reason, for the browser's check of the page."""

    read_failures: list[str] = []
    reads: list[str] = []  # each read's time, duration and what it listed, for a timeout's message

    def view() -> dict[str, Any] | None:
        began = time.time()
        try:
            r = api.get("/airtasks/api/view", timeout=60)
        except httpx.HTTPError as exc:
            reads.append(f"{began:.0f} after {time.time() - began:.1f}s: {exc!r}")
            raise
        assert r.status_code == 200, r.text
        data: dict[str, Any] = r.json()
        (queue,) = [q for q in data["queues"] if q["queue"] == QUEUE] or [None]
        listed = sorted(n["id"] for n in queue["nodes"]) if queue is not None else None
        reads.append(f"{began:.0f} after {time.time() - began:.1f}s: nodes {listed}")
        if listed is None or not set(listed) >= set(workers) - gone:
            return None  # the view reads live; a node may still be joining the group's list
        failures = [str(queue["reason"])] if queue["failed"] else []
        failures += [str(p) for p in data["problems"]]
        if failures:
            # A read that failed (a queue's or the cluster-wide one of running task instances) is
            # shown as such, and the page reads again at its next refresh (10 s), as a user sees
            # it; every failure is kept for the message below.
            read_failures.extend(failures)
            return None
        return data

    try:
        data = wait(view, 120, "the Cluster page's API to list every worker, read without a failure", box)
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}\nthe view's read failures: {read_failures}\nits reads: {reads[-10:]}"
        ) from None
    assert data["cluster_name"] == CLUSTER
    assert data["backend"] == "aws"
    (queue,) = [q for q in data["queues"] if q["queue"] == QUEUE]
    assert queue["group"] == group
    assert queue["current"] == MAX_NODES
    assert not queue["failed"], queue["reason"]
    outs = [d for d in data["decisions"] if d["queue"] == QUEUE and d["action"] == "scale_out"]
    assert outs, data["decisions"]
    assert max(d["desired"] for d in outs) == MAX_NODES
    assert data["history"]["store"] == "airflow"
    return str(outs[0]["reason"])


def report_timeline(
    box: Box,
    history: dict[tuple[str, str], list[dict[str, Any]]],
    triggered: float,
    lost: float,
    removed: float,
    done: float,
    victim: str,
    manager_ids: set[str],
) -> None:
    """Print (and keep in tests/artifacts) what happened when, from one run."""
    burst = [a for (dag, _), attempts in history.items() if dag == BURST_DAG for a in attempts]
    queued = min(epoch(a.get("queued_when")) or triggered for a in burst)
    lines = [f"cluster in a box, one run ({MAX_NODES} nodes max, {SLOTS} slots each, {HOLD_SECONDS}s tasks)"]
    lines.append(f"  t=0 first burst task queued (triggered {triggered - queued:+.1f}s)")
    rows = []
    for iid, t in box.runner.timings().items():
        if iid in manager_ids or t.seen is None:
            continue
        starts = [epoch(a.get("start_date")) for a in burst if a.get("hostname") == iid]
        first = min((s for s in starts if s is not None), default=None)
        rows.append((epoch(t.seen) or 0.0, iid, t, first))

    def at(moment: float | None) -> str:
        return "    -" if moment is None else f"{moment - queued:5.1f}s"

    for seen, iid, t, first in sorted(rows):
        note = " (terminated mid-task)" if iid == victim else ""
        lines.append(
            f"  {iid}: group resized {at(seen)}, joined {at(epoch(t.joined))}, "
            f"first task running {at(first)}, gone {at(epoch(t.killed))} "
            f"(disk freed {at(epoch(t.stopped))}){note}"
        )
    lines.append(f"  node lost {lost - queued:.1f}s -> removed from the Swarm {removed - lost:.1f}s later")
    lines.append(f"  every worker drained, terminated and removed at {done - queued:.1f}s")
    lines.append(f"  box up: {', '.join(f'{k} {v:.0f}s' for k, v in box.timings.items() if v)}")
    lines.append(f"  chain wall time (box up to scaled in): {time.monotonic() - box.started:.0f}s")
    keep_timeline("cluster-timeline.txt", "\n".join(lines))
