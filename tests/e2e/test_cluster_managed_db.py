"""A managed metadata database in the cluster in a box: the box (envs/local with the stack and three
managers, after test_cluster_ha.py) is switched over to RDS as docs/high-availability.md says,
then loses the manager that runs the scheduler (and one of the API servers, which run on every
manager).

The local cloud plays RDS: moto's DB instance becomes a real PostgreSQL (TLS, scram) at the endpoint
moto reports, and its password is in the instance's Secrets Manager secret, as RDS keeps it.

What a user asks of a managed database, one test each (the second runs on what the first left):
- switching an existing cluster over keeps its history: the documented steps (stop Airflow, dump,
  `database = { managed = true }`, restore into the instance, replace a manager) leave every DAG
  run, variable and connection in Airflow, and the stack without its own `postgres`, its
  dag-processor and triggerer healthy on the managed database;
- losing the manager that runs the scheduler loses nothing: the other managers' API servers,
  running since before the loss, answer through it; after recovery the same DAG runs, variables
  and connections are there, and a run triggered before the loss (some of its tasks running on
  workers, the others queued) succeeds.
"""

from __future__ import annotations

import contextlib
import functools
import json
import shutil
import time
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest

from airtasks.cli.trigger import transient
from airtasks_dev.localcloud.box import Box
from airtasks_dev.localcloud.cloud import LocalCloud
from airtasks_dev.localcloud.node import HOST_DOCKER_CLI, Node
from tests.e2e.airflow_rest import run_state, scaler_since, task_instances
from tests.e2e.chain import BURST_DAG, QUEUE
from tests.e2e.helpers import (
    clients,
    group_state,
    keep_service_log,
    keep_timeline,
    managers,
    move_broker_off,
    rest,
    running_on,
    running_tasks,
    service_container,
    service_tasks,
    swarm_answers,
    wait,
)
from tests.support.artifacts import ARTIFACTS

pytestmark = [pytest.mark.e2e, pytest.mark.chain, pytest.mark.loses_the_entry]

STACK = "airtasks"
# What writes to the database: stopped before the dump (docs/high-availability.md, step 2).
WRITERS = ("airflow-scheduler", "airflow-dag-processor", "airflow-triggerer", "airflow-apiserver")
DUMP = "/root/airflow.dump"  # on the manager that ran PostgreSQL
PROBE = "airtasks_e2e_managed"  # the variable's key and the connection's id made for this test
HOLD_SECONDS = 90  # each task of the run triggered before the loss


def token_from(address: str, box: Box) -> str | None:
    """A JWT from the API server behind `address` (None while it does not answer)."""
    with rest(f"https://{address}", box.ca_bundle, timeout=20) as client:
        r = client.post(
            "/auth/token", json={"username": "admin", "password": box.password_file.read_text().strip()}
        )
        if r.status_code not in (200, 201):
            return None
        return str(r.json()["access_token"])


def paged(api: httpx.Client, path: str, key: str, **params: Any) -> list[dict[str, Any]]:
    """Every item of a REST v2 collection, 100 at a time."""
    items: list[dict[str, Any]] = []
    while True:
        r = api.get(path, params={**params, "limit": 100, "offset": len(items)})
        r.raise_for_status()
        page = r.json()
        items += page[key]
        if not page[key] or len(items) >= page["total_entries"]:
            return items


def metadata(api: httpx.Client) -> dict[str, set[str]]:
    """What a team would miss: its DAG runs, variables and connections, as Airflow lists them."""
    runs = paged(api, "/api/v2/dags/~/dagRuns", "dag_runs", order_by="run_after")
    return {
        "dag runs": {f"{r['dag_id']}/{r['dag_run_id']}" for r in runs},
        # By key (the scaler's own variables change with every pass); the test's own by value too.
        "variables": {
            v["key"] if v["key"] != PROBE else f"{v['key']}={v['value']}"
            for v in paged(api, "/api/v2/variables", "variables")
        },
        "connections": {
            f"{c['connection_id']}:{c['conn_type']}:{c['host']}"
            for c in paged(api, "/api/v2/connections", "connections")
        },
    }


def missing(before: dict[str, set[str]], after: dict[str, set[str]]) -> dict[str, list[str]]:
    return {what: sorted(before[what] - after[what]) for what in before if before[what] - after[what]}


def scale(manager: Node, services: tuple[str, ...], replicas: int) -> None:
    args = [f"{STACK}_{service}={replicas}" for service in services]
    manager.run([HOST_DOCKER_CLI, "service", "scale", "--detach", *args], timeout=120)


def services(manager: Node) -> set[str]:
    out = manager.run([HOST_DOCKER_CLI, "service", "ls", "--format", "{{.Name}}"], timeout=30).stdout
    return {name.removeprefix(f"{STACK}_") for name in out.split()}


def only_one(manager: Node, service: str) -> str | None:
    """The node that runs the service's one task, None while it runs on none or (updating) two."""
    on = running_on(manager, service)
    return on.pop() if len(on) == 1 else None


def live_managers(box: Box, autoscaling: Any) -> list[Node]:
    """The managers of the group whose Swarm answers, lowest id first (an instance the runner has
    not started yet, such as a fresh replacement, is not one)."""
    found = []
    for iid in sorted(group_state(autoscaling, box.manager_group)[1]):
        node = box.runner.nodes.get(iid)
        if node is not None and swarm_answers(lambda n=node: managers(n)):
            found.append(node)
    return found


class Timeline:
    """A test's steps, each at its seconds since the test began, printed as they happen (so a
    failure's printed lines say how far it got) and kept as the test's artifact."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.started = time.time()
        self.steps: list[str] = []

    def mark(self, what: str) -> None:
        self.steps.append(f"{time.time() - self.started:5.0f}s {what}")
        print(f"{self.name}: {self.steps[-1]}", flush=True)

    def __str__(self) -> str:
        return "; ".join(self.steps)


def logged_in(box: Box, autoscaling: Any) -> tuple[Node, httpx.Client]:
    """A live manager and a REST client logged in through its proxy."""
    manager = wait(lambda: (live_managers(box, autoscaling) or [None])[0], 300, "a live manager", box)
    token = wait(lambda: token_from(manager.address, box), 300, "a login on a live manager", box)
    return manager, rest(f"https://{manager.address}", box.ca_bundle, token)


def api_tasks(box: Box, manager: Node) -> str:
    """What the API server's tasks went through, as `manager` sees them."""
    return service_tasks(manager, "airflow-apiserver", nodes=box.runner.node)


def path_tasks(box: Box, manager: Node) -> str:
    """The way in through `manager`: its proxy's tasks, then the API server's."""
    return f"{service_tasks(manager, 'proxy', nodes=box.runner.node)}\n{api_tasks(box, manager)}"


def test_switching_to_a_managed_database_keeps_the_history(box: Box, cloud: LocalCloud) -> None:
    _, _, autoscaling = clients(cloud.moto)
    rds = boto3.client("rds", endpoint_url=cloud.moto.url, region_name=box.config.region)
    secrets = boto3.client("secretsmanager", endpoint_url=cloud.moto.url, region_name=box.config.region)
    timeline = Timeline("managed switch")
    mark = timeline.mark

    # The box as test_cluster_ha.py left it: three managers, the stack's own PostgreSQL.
    manager, api = logged_in(box, autoscaling)
    for path, body in (
        ("/api/v2/variables", {"key": PROBE, "value": "kept across the switch and the loss"}),
        ("/api/v2/connections", {"connection_id": PROBE, "conn_type": "http", "host": "kept.example"}),
    ):
        r = api.post(path, json=body)
        assert r.status_code in (200, 201, 409), r.text

    # 1-2. Stop what writes, note what is there, dump the stack's database.
    (pg_host,) = running_on(manager, "postgres")
    scale(manager, WRITERS[:-1], 0)
    time.sleep(5)  # a scheduler loop in flight ends its transaction
    before = metadata(api)
    assert before["dag runs"]
    assert f"{PROBE}=kept across the switch and the loss" in before["variables"]
    scale(manager, WRITERS[-1:], 0)
    pg_node = box.runner.node(pg_host)
    container = service_container(pg_node, "postgres")
    dump = f"{HOST_DOCKER_CLI} exec {container} pg_dump -U airflow -d airflow -Fc > {DUMP}"
    pg_node.run(["sh", "-c", dump], timeout=300)
    mark(f"dumped the stack's database on {pg_host} ({pg_node.path(DUMP).stat().st_size} bytes)")

    # 3. `database = { managed = true }`: an RDS instance, which the local cloud serves.
    variables = {**box.variables, "database": {"managed": True}}
    box.terraform.apply(variables, timeout=900)
    outputs = box.terraform.outputs()
    box.outputs = outputs
    database = outputs["database"]
    assert database is not None, "envs/local has no database output with database.managed"
    (instance,) = [
        i
        for i in rds.describe_db_instances()["DBInstances"]
        if i["Endpoint"]["Address"] == database["address"]
    ]
    cloud.rds.wait_served(instance["DBInstanceIdentifier"])
    mark(f"applied database.managed: {database['address']}:{database['port']} served")

    # 4. Restore into it from the manager with the dump, the password from the instance's secret
    # (the operator's own credentials), handed to pg_restore in its environment only.
    secret = secrets.get_secret_value(SecretId=database["secret_arn"])["SecretString"]
    password = json.loads(secret)["password"]
    restore = (
        f"{HOST_DOCKER_CLI} exec -i -e PGPASSWORD -e PGSSLMODE=require {container} pg_restore --no-owner "
        f"--no-privileges -h {database['address']} -p {database['port']} -U {database['user']} "
        f"-d {database['name']} < {DUMP}"
    )
    pg_node.run(["sh", "-c", restore], env={"PGPASSWORD": password}, timeout=300)
    mark("restored the dump into the managed database")

    # 5. Replace a manager (the one with PostgreSQL's volume): it boots from the new launch
    # template and, its settings differing from the deployed stack's, deploys the stack without
    # `postgres`, the services now on the managed database.
    first = group_state(autoscaling, box.manager_group)[1]
    autoscaling.terminate_instance_in_auto_scaling_group(
        InstanceId=pg_host, ShouldDecrementDesiredCapacity=False
    )
    survivor = next(m for m in live_managers(box, autoscaling) if m.instance_id != pg_host)

    def replacement() -> str | None:
        new = group_state(autoscaling, box.manager_group)[1] - first
        return min(new) if new else None

    # The steps of the switch are marked: it is the longest part of this test, and varies most.
    launched = wait(replacement, 300, "a replacement manager", box)
    mark(f"the group launched {launched}")
    new_manager = box.runner.wait_booted(launched, timeout=600)
    assert new_manager.timings.exit_code == 0, box.runner.describe()
    mark(f"{launched}'s boot script ended")
    boot_log = new_manager.boot_log.read_text()
    assert f"stack {STACK} deployed with settings" in boot_log, boot_log[-3000:]
    assert "database: external (managed)" in boot_log, boot_log[-3000:]
    wait(lambda: "postgres" not in services(survivor), 120, "the stack without postgres", box)
    assert "db-backup" not in services(survivor)
    mark("the stack without postgres")
    updated = time.time()
    # The switch's slowest step, and the one that varies most with the host's load: what the API
    # server's tasks went through, if it times out, and in any case which API server the proxy
    # tried for each login and what each API server logged while it started.
    try:
        token = wait(
            lambda: token_from(survivor.address, box),
            600,
            "a login on the managed database",
            box,
            why=functools.partial(api_tasks, box, survivor),
        )
    finally:
        for service in ("proxy", "airflow-apiserver"):
            keep_service_log(survivor, service, updated, "cluster-managed-switch")
        # When each API server task of the old settings went and each of the new ones started.
        history = swarm_answers(lambda: service_tasks(survivor, "airflow-apiserver", last=12))
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "cluster-managed-switch-apiserver-tasks.txt").write_text(
            f"{history or '(the Swarm did not answer)'}\n"
        )
    mark("a login on the managed database")
    api = rest(f"https://{survivor.address}", box.ca_bundle, token)

    # Twice in about ten runs, a call through the survivor's proxy soon after the switch got no
    # answer for a minute (a read timeout once, a connect timeout once). A likely cause: the local
    # cloud's bridge then changed its MAC address with the nodes that came and went, and a node
    # answered to the old one until its ARP entry expired (fixed: `network.bridge_mac`). The calls
    # until the loss are still asked again, and if they stay unanswered the failure shows what the
    # proxy and the API server went through.
    switched = wait(
        lambda: metadata(api),
        300,
        "the metadata through the survivor",
        box,
        why=functools.partial(path_tasks, box, survivor),
    )
    assert not missing(before, switched), f"lost in the switch: {missing(before, switched)}"
    mark(f"{new_manager.instance_id} deployed the managed stack; all {len(before['dag runs'])} runs kept")
    # The heartbeat services' health checks read the managed database too: Swarm counts a task
    # running only once its check passed, and kills one that never passes.
    for service in ("airflow-dag-processor", "airflow-triggerer"):
        wait(
            lambda s=service: swarm_answers(lambda: running_on(survivor, s)),
            300,
            f"{service} healthy on the managed database",
            box,
            why=functools.partial(service_tasks, survivor, service, nodes=box.runner.node),
        )
    mark("the dag-processor and the triggerer healthy on the managed database")
    keep_timeline(
        "cluster-managed-switch-timeline.txt",
        f"managed database: switched over ({timeline}); {len(switched['dag runs'])} runs, "
        f"{len(switched['variables'])} variables, {len(switched['connections'])} connections kept",
    )
    with contextlib.suppress(OSError):
        pg_node.path(DUMP).unlink()


@pytest.fixture
def loss_logs(box: Box, cloud: LocalCloud) -> Iterator[None]:
    """The API servers' and the schedulers' logs over the loss test, as a live manager's Swarm
    has them, and the managed database's own log since it was created, kept from passing runs
    too: an error an API server answered names an ID to look up in its log, the database logs
    every statement that failed and every connection it lost, and the scheduler's log shows how
    the one on a survivor took over."""
    started = time.time()
    yield
    _, _, autoscaling = clients(cloud.moto)
    for manager in live_managers(box, autoscaling)[:1]:
        for service in ("airflow-apiserver", "airflow-scheduler"):
            keep_service_log(manager, service, started, "cluster-managed-loss")
    ARTIFACTS.mkdir(exist_ok=True)
    for log in cloud.rds.workdir.glob("*/postgres.log"):
        shutil.copyfile(log, ARTIFACTS / f"cluster-managed-rds-{log.parent.name}.log")


@pytest.mark.usefixtures("loss_logs")
def test_losing_the_schedulers_manager_on_a_managed_database_loses_nothing(
    box: Box, cloud: LocalCloud
) -> None:
    _, _, autoscaling = clients(cloud.moto)
    timeline = Timeline("managed loss")
    mark = timeline.mark
    survivor, api = logged_in(box, autoscaling)
    assert "postgres" not in services(survivor), (
        "the stack still runs its own PostgreSQL: the switch to the managed database (the test "
        "before this one) did not finish"
    )
    mark(f"logged in through {survivor.instance_id}")

    # The manager to lose: the one running the scheduler. The broker is moved off it first if it
    # runs there too, while its queues are empty: a lost broker's queued messages come back only
    # after `task_queued_timeout` (8 minutes; test_cluster_ha.py and test_stack_swarm.py cover
    # that), and this test is about the database.
    scheduler_on = wait(lambda: only_one(survivor, "airflow-scheduler"), 120, "one scheduler", box)
    if scheduler_on in running_on(survivor, "rabbitmq"):
        move_broker_off(survivor, scheduler_on)
        # The old broker is gone once the new one runs, so a scaler task that starts from now on
        # went through the new one. Its start says so; waiting for its success would add the
        # scaler task's whole minute of passes.
        moved = time.time()
        wait(
            lambda: scaler_since(api, moved, ("running", "success")),
            300,
            "a scaler task started through the moved broker",
            box,
        )
        mark(f"moved RabbitMQ off {scheduler_on}")

    # A run whose tasks run on workers while the manager is lost (they end while it is still away),
    # triggered first: its nodes boot while the scheduler moves.
    run_id = f"before-managed-loss-{int(time.time())}"

    def triggered() -> httpx.Response | None:
        """The answer to the run's create; None for one that `airtasks trigger` would try again
        (seen once, 1 s after the login: a 500 "Database error", the API server's node then out
        of the bridge's reach, see `network.bridge_mac`)."""
        r = api.post(
            f"/api/v2/dags/{BURST_DAG}/dagRuns",
            json={"dag_run_id": run_id, "logical_date": None, "conf": {"seconds": HOLD_SECONDS}},
        )
        if transient(r):
            mark(f"the trigger got {r.status_code} ({r.text[:300]}); trying again")
            return None
        return r

    r = wait(
        triggered,
        300,
        f"the run {run_id} triggered through the survivor",
        box,
        why=functools.partial(path_tasks, box, survivor),
    )
    assert r.status_code in (200, 409), r.text  # 409: an earlier try's answer was lost, the run exists

    # Every manager runs an API server (the replacement's deploy set one per manager), so the
    # survivors' go on answering through the loss: the UI, the REST API, and the calls of the
    # tasks running on workers.
    def on_every_manager() -> dict[str, str] | None:
        tasks = swarm_answers(lambda: running_tasks(survivor, "airflow-apiserver")) or {}
        return tasks if set(tasks) == {m.instance_id for m in live_managers(box, autoscaling)} else None

    api_servers = wait(
        on_every_manager,
        300,
        "an API server on every manager",
        box,
        why=functools.partial(api_tasks, box, survivor),
    )
    victim = wait(lambda: only_one(survivor, "airflow-scheduler"), 120, "one scheduler", box)

    def running() -> int:
        """How many of its tasks run on workers once two do (the rest wait, queued, for the nodes
        still booting); 0 before."""
        count = sum(ti["state"] == "running" for ti in task_instances(api, BURST_DAG, run_id))
        return count if count >= 2 else 0

    at_loss = wait(running, 420, f"tasks of {run_id} running on {QUEUE} workers", box)
    mark(f"{run_id}: {at_loss} of its tasks running")
    before = metadata(api)
    survivor = next(m for m in live_managers(box, autoscaling) if m.instance_id != victim)
    survivor_api = functools.partial(api_tasks, box, survivor)
    lost = time.time()
    autoscaling.terminate_instance_in_auto_scaling_group(
        InstanceId=victim, ShouldDecrementDesiredCapacity=False
    )
    mark(f"lost {victim}, the scheduler's")
    token = wait(
        lambda: token_from(survivor.address, box),
        300,
        "a login on a survivor after the loss",
        box,
        why=survivor_api,
    )
    api_answered = time.time() - lost
    # What answered was an API server that ran before the loss: the survivors' tasks are the same.
    after_loss = wait(
        lambda: swarm_answers(lambda: running_tasks(survivor, "airflow-apiserver")),
        120,
        "the API server's tasks after the loss",
        box,
    )
    kept = {node: task for node, task in api_servers.items() if node != victim}
    assert {node: after_loss.get(node) for node in kept} == kept, (kept, after_loss)
    api = rest(f"https://{survivor.address}", box.ca_bundle, token)

    def finished() -> str | None:
        state = run_state(api, BURST_DAG, run_id)
        return state if state in ("success", "failed") else None

    assert wait(finished, 600, f"{run_id} to finish", box) == "success"
    done_after = time.time() - lost
    tis = task_instances(api, BURST_DAG, run_id)
    assert all(ti["state"] == "success" for ti in tis), tis
    # Tasks may be tried again: the scheduler that takes over, on a survivor, resets the lost one's
    # tasks it cannot adopt. The run must still succeed.
    retried = sum(ti["try_number"] > 1 for ti in tis)
    after = metadata(api)
    assert not missing(before, after), f"lost with the manager: {missing(before, after)}"
    assert "postgres" not in services(survivor)
    text = (
        f"managed database: lost {victim} running the scheduler and one of {len(api_servers)} API "
        f"servers ({timeline}); a survivor's API server answered a login {api_answered:.0f}s after "
        f"the loss; {run_id} ({len(tis)} tasks of {HOLD_SECONDS}s, {at_loss} running at the loss) "
        f"succeeded at {done_after:.0f}s, {retried} task(s) tried again; {len(after['dag runs'])} runs, "
        f"{len(after['variables'])} variables, {len(after['connections'])} connections all kept"
    )
    keep_timeline("cluster-managed-loss-timeline.txt", text)
