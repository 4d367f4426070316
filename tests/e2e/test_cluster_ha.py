"""Manager high availability with the whole stack: the cluster in a box (envs/local applied with
the stack and `manager_count = 3`, shared with the chain in test_cluster.py, which runs first) loses
one manager, preferably while it runs the scaler's task.

What a user asks of three managers, each checked here:
- the Swarm keeps its quorum: the survivors still answer and show the lost manager Down;
- the stack keeps running: its services that ran on the lost manager start on the survivors, and
  the UI answers on a surviving manager (the proxy runs on every manager);
- the scaler keeps running: a task queued after the loss makes a scaler task on a survivor grow
  the queue's group, and the task runs on the node that joins;
- the group replaces the lost manager and the replacement joins as a manager.

PostgreSQL keeps its data in a volume on one manager's disk, and the test loses that manager: it
takes a backup first (`airtasks db backup` in the `db-backup` service), and the database comes
back from it on a survivor. The DAG runs from before the backup are there again, and the keeper
says so in its log. RabbitMQ's messages cannot come back that way (Airflow takes a lost queued task
back only after `task_queued_timeout`, test_stack_swarm.py's part), so the broker is moved off the
database's manager first when both run there. The stackless HA test (test_manager_ha.py) loses the
manager that initialised the Swarm, whose address is the published one.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from airtasks_dev.localcloud.box import Box
from airtasks_dev.localcloud.cloud import LocalCloud
from airtasks_dev.localcloud.node import HOST_DOCKER_CLI, Node
from tests.e2e.airflow_rest import SCALER_DAG, epoch, log_in, run_state, scaler_since, scaler_tasks
from tests.e2e.chain import BURST_DAG, MANAGERS, QUEUE
from tests.e2e.helpers import (
    clients,
    group_state,
    keep_service_log,
    keep_timeline,
    managers,
    move_broker_off,
    rest,
    running_on,
    service_container,
    service_tasks,
    swarm_answers,
    wait,
)
from tests.support.artifacts import ARTIFACTS

pytestmark = [pytest.mark.e2e, pytest.mark.chain, pytest.mark.loses_the_entry]

BACKUP_SERVICE = "db-backup"
AIRFLOW_SERVICES = ("airflow-scheduler", "airflow-apiserver", "airflow-dag-processor", "airflow-triggerer")


def broker_queues(node: Node) -> str:
    """RabbitMQ's queues as `node` (the one running the broker) sees them: ready, unacknowledged
    and consumers (a lost worker stays a consumer until the broker misses its heartbeats)."""
    container = service_container(node, "rabbitmq")
    columns = ["name", "messages_ready", "messages_unacknowledged", "consumers"]
    cmd = ["rabbitmqctl", "-q", "--no-table-headers", "list_queues", *columns]
    out = node.run([HOST_DOCKER_CLI, "exec", container, *cmd], timeout=30).stdout
    rows = [line.split() for line in out.splitlines()]
    # Celery's event and control queues (celeryev.*, *.pidbox) say nothing about tasks.
    return "; ".join(
        " ".join(r) for r in rows if r and not r[0].startswith("celeryev.") and "pidbox" not in r[0]
    )


def burst_runs(api: httpx.Client) -> set[str]:
    """The chain's runs of the burst DAG, as Airflow's database holds them."""
    r = api.get(f"/api/v2/dags/{BURST_DAG}/dagRuns", params={"limit": 100})
    r.raise_for_status()
    return {run["dag_run_id"] for run in r.json()["dag_runs"]}


def take_backup(node: Node) -> str:
    """`airtasks db backup` in the `db-backup` service's container on `node`, as an operator would
    before a risky change; returns the backup's URL."""
    container = service_container(node, BACKUP_SERVICE)
    out = node.run([HOST_DOCKER_CLI, "exec", container, "airtasks", "db", "backup"], timeout=300)
    return out.stdout.strip()


def restore_line(node: Node, since: float) -> tuple[float, str] | None:
    """The keeper's `restored backup ...` line since `since`, from every task of its service, with
    the time the Docker daemon logged it (seconds since the epoch)."""
    cmd = [HOST_DOCKER_CLI, "service", "logs", "--raw", "--timestamps", "--since", f"{int(since)}"]
    out = node.run([*cmd, f"airtasks_{BACKUP_SERVICE}"], timeout=60, check=False)
    for line in reversed((out.stdout + out.stderr).splitlines()):
        stamp, _, text = line.partition(" ")
        if "airtasks-db: restored backup" in text:
            # RFC 3339 with nanoseconds; seconds are all the timeline needs.
            return epoch(stamp[:19] + "Z") or since, text
    return None


@contextlib.contextmanager
def watched(api: httpx.Client, survivor: Node, broker: Node, since: float) -> Iterator[list[str]]:
    """Every 5 s while the stack recovers: the scaler's newest task instances, where the scheduler
    and the API server run, and the broker's queues. Written to
    tests/artifacts/cluster-ha-watch.txt; a failed wait shows the last lines."""
    lines: list[str] = []
    done = threading.Event()

    def probe(what: str, read: Any) -> str:
        try:
            return f"{what}: {read()}"
        except Exception as exc:  # a recovering stack may fail any read; keep watching
            return f"{what}: ({type(exc).__name__}: {str(exc)[:120]})"

    def tis() -> list[str]:
        return [
            f"{ti['dag_run_id'][-20:]} {ti['state']} on {ti.get('hostname') or '-'}"
            for ti in scaler_tasks(api)[:3]
        ]

    def runs() -> list[str]:
        """The newest runs, started or not: a run or task that never starts has no start date."""
        r = api.get(f"/api/v2/dags/{SCALER_DAG}/dagRuns", params={"order_by": "-run_after", "limit": 3})
        r.raise_for_status()
        waiting = [ti for ti in scaler_tasks(api) if not ti.get("start_date")]
        return [f"{run['dag_run_id'][-20:]} {run['state']}" for run in r.json()["dag_runs"]] + [
            f"not started: {ti['dag_run_id'][-20:]} {ti['state']}" for ti in waiting
        ]

    def loop() -> None:
        while not done.is_set():
            lines.append(
                " | ".join(
                    [
                        f"{time.time() - since:4.0f}s",
                        probe("scheduler on", lambda: sorted(running_on(survivor, "airflow-scheduler"))),
                        probe("api-server on", lambda: sorted(running_on(survivor, "airflow-apiserver"))),
                        probe("broker", lambda: broker_queues(broker)),
                        probe("scaler", tis),  # last: the API server may take its timeout to answer
                        probe("runs", runs),
                    ]
                )
            )
            done.wait(5)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield lines
    finally:
        done.set()
        thread.join(timeout=60)
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "cluster-ha-watch.txt").write_text("".join(f"{line}\n" for line in lines))


def test_losing_a_manager_keeps_the_swarm_the_stack_and_the_scaler(box: Box, cloud: LocalCloud) -> None:
    _, _, autoscaling = clients(cloud.moto)
    runner = box.runner

    # Three managers, one Swarm; the proxy and the `manager` queue's worker run on each.
    _, first = group_state(autoscaling, box.manager_group)
    assert len(first) == MANAGERS == 3
    # The chain left the queue's group empty; a scale-out below is the scaler's answer to the loss.
    wait(
        lambda: group_state(autoscaling, box.groups()[QUEUE]) == (0, set()),
        300,
        f"the {QUEUE} group to be empty",
        box,
    )
    assert box.manager_id == min(first)
    for iid in first:
        assert runner.wait_booted(iid, timeout=300).timings.exit_code == 0, runner.describe()

    def formed() -> bool:
        seen = swarm_answers(lambda: managers(box.manager)) or {}
        return set(seen) == first and all(m["reachability"] == "reachable" for m in seen.values())

    wait(formed, 120, "three reachable managers", box)
    for service in ("proxy", "worker-manager"):
        wait(
            lambda s=service: swarm_answers(lambda: running_on(box.manager, s)) == first,
            300,
            f"{service} running on every manager",
            box,
        )

    login = log_in(box)
    token = login.headers["Authorization"].removeprefix("Bearer ")
    login.close()
    api = rest(box.url, box.ca_bundle, token)
    wait(
        lambda: any(ti["state"] == "success" for ti in scaler_tasks(api)),
        240,
        "a successful scaler run",
        box,
    )

    # The manager to lose: the database's. Its volume goes with it, and the database comes back
    # from the backup taken just before. The broker is moved off it first if it runs there too.
    (victim,) = running_on(box.manager, "postgres")
    if victim in running_on(box.manager, "rabbitmq"):
        move_broker_off(box.manager, victim)
        wait(
            lambda: scaler_since(api, time.time() - 90),
            300,
            "a successful scaler run with the moved broker",
            box,
        )
    ran_scaler = any(ti["state"] == "running" and ti.get("hostname") == victim for ti in scaler_tasks(api))
    survivors = first - {victim}
    survivor = runner.node(box.manager_id if box.manager_id in survivors else min(survivors))
    scheduler_on = swarm_answers(lambda: running_on(box.manager, "airflow-scheduler"))
    before = burst_runs(api)
    assert before, f"no {BURST_DAG} run from the chain to find again after the restore"
    backup = take_backup(runner.node(min(running_on(box.manager, BACKUP_SERVICE))))
    lost = time.time()
    autoscaling.terminate_instance_in_auto_scaling_group(
        InstanceId=victim, ShouldDecrementDesiredCapacity=False
    )
    print(
        f"ha: lost manager {victim}, the database's (running the scaler's task: {ran_scaler}; the "
        f"scheduler ran on {scheduler_on}); backup {backup} taken just before"
    )

    # Quorum: the survivors still answer and show the lost manager unreachable.
    def lost_is_down() -> bool:
        seen = swarm_answers(lambda: managers(survivor)) or {}
        return seen.get(victim, {}).get("reachability") == "unreachable"

    wait(lost_is_down, 120, f"the survivors to show {victim} unreachable", box)
    down_after = time.time() - lost

    # The stack carries on: the UI answers on a survivor, and a task queued now is seen by a
    # scaler on a survivor, which grows the group; the task runs on the node that joins.
    api = rest(f"https://{survivor.address}", box.ca_bundle, token)
    run_id = f"after-loss-{int(lost)}"

    def triggered() -> bool:
        r = api.post(
            f"/api/v2/dags/{BURST_DAG}/dagRuns",
            json={"dag_run_id": run_id, "logical_date": None, "conf": {"seconds": 0}},
        )
        return r.status_code in (200, 409)  # 409: an earlier try did arrive

    broker = runner.node(min(running_on(survivor, "rabbitmq")))
    watch_api = rest(f"https://{survivor.address}", box.ca_bundle, token, timeout=10)
    with contextlib.closing(watch_api), watched(watch_api, survivor, broker, lost) as seen:
        try:
            wait(triggered, 300, f"{BURST_DAG} triggered through the proxy on {survivor.instance_id}", box)
            wait(
                lambda: group_state(autoscaling, box.groups()[QUEUE])[0] >= 1,
                300,
                f"the scaler to grow {QUEUE}",
                box,
            )
        except AssertionError as exc:
            raise AssertionError("\n".join([str(exc), "since the loss:", *seen[-40:]])) from None
        finally:
            # Where the scaler's tasks are scheduled and run (the manager queue's workers).
            for service in ("airflow-scheduler", "worker-manager"):
                keep_service_log(survivor, service, lost, "cluster-ha")
    grown_after = time.time() - lost

    # The database came back from the backup: the keeper said so, and the runs are all there.
    found = restore_line(survivor, lost)
    assert found is not None, "the keeper did not log a restore (docker service logs airtasks_db-backup)"
    restored_at, restored = found
    assert f"restored backup {backup} " in restored, restored
    after = burst_runs(api)
    assert before <= after, f"runs from before the backup missing after the restore: {sorted(before - after)}"

    def live() -> set[str]:
        """The managers' group now, without the lost one (the replacement joins it)."""
        return group_state(autoscaling, box.manager_group)[1] - {victim}

    acted = [
        ti
        for ti in scaler_tasks(api)
        if (epoch(ti.get("start_date")) or 0.0) > lost
        and ti.get("hostname")
        and ti["state"] in ("running", "success")
    ]
    assert acted, "no scaler task started after the loss"
    assert {ti["hostname"] for ti in acted} <= live(), acted

    def finished() -> str | None:
        state = run_state(api, BURST_DAG, run_id)
        return state if state in ("success", "failed") else None

    assert wait(finished, 420, f"{BURST_DAG} {run_id} to finish", box) == "success"
    ran_after = time.time() - lost

    # Every Airflow service runs on a live manager, the replacement included (one that ran on the
    # lost manager was started anew; Swarm counts it running once its health check passed).
    try:
        for service in AIRFLOW_SERVICES:
            wait(
                lambda s=service: (swarm_answers(lambda: running_on(survivor, s)) or {victim}) <= live(),
                300,
                f"{service} running on a surviving manager",
                box,
                why=functools.partial(service_tasks, survivor, service, nodes=box.runner.node),
            )
    finally:
        # How long each took to start again, and what a slow one said meanwhile.
        for service in ("airflow-dag-processor", "airflow-triggerer"):
            keep_service_log(survivor, service, lost, "cluster-ha")

    services_after = time.time() - lost

    # The group replaced the lost manager and the replacement joined as a manager (the leader's
    # removal of the lost node is test_manager_ha.py's part: it takes another timer round or more).
    (replacement,) = group_state(autoscaling, box.manager_group)[1] - first

    def rejoined() -> bool:
        seen = swarm_answers(lambda: managers(survivor)) or {}
        return seen.get(replacement, {}).get("reachability") == "reachable"

    wait(rejoined, 240, f"{replacement} to join as a manager", box)
    # It booted from the same launch template, so it left the running stack alone.
    boot_log = runner.wait_booted(replacement, timeout=300).boot_log.read_text()
    assert "already deployed with this manager's settings" in boot_log, boot_log[-3000:]
    text = (
        f"manager HA with the stack: lost {victim}, the database's (scaler's task on it: {ran_scaler}; "
        f"the scheduler on it: {victim in (scheduler_on or set())}); "
        f"unreachable after {down_after:.0f}s; at {restored_at - lost:.0f}s "
        f"{restored.split('airtasks-db: ', 1)[-1]}, "
        f"{len(before)} {BURST_DAG} run(s) from before the backup all present; "
        f"scaler grew {QUEUE} {grown_after:.0f}s after the loss; "
        f"the task queued after the loss done at {ran_after:.0f}s; Airflow's services all on live "
        f"managers at {services_after:.0f}s; replacement {replacement} a manager at "
        f"{time.time() - lost:.0f}s"
    )
    keep_timeline("cluster-ha-timeline.txt", text)
