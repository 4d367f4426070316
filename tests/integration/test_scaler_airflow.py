"""The scaler against real services: Airflow 3 (CeleryExecutor, PostgreSQL), RabbitMQ, Celery
workers, and Auto Scaling groups on moto. A queue without a worker keeps its tasks queued; a
worker named after an instance id makes that instance busy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airtasks.config import (
    AirflowSourceConfig,
    RabbitMQSourceConfig,
    Secret,
    broker_url,
    parse_config,
    source_credentials,
)
from airtasks.control.celery import CeleryControl
from airtasks.schedule import first_minutes_slots, needed, root_slots
from airtasks.sources import AirflowSource, RabbitMQSource
from airtasks.state.memory import decode
from airtasks_dev.devstack.moto import MotoServer
from tests.integration.conftest import DAG_GROUP, Scenario
from tests.support.child import clean_env
from tests.support.services import aws_groups
from tests.support.services.airflow import Airflow
from tests.support.services.rabbitmq import RabbitMQ

pytestmark = pytest.mark.integration


def creds_env(af: Airflow, broker: RabbitMQ) -> dict[str, str]:
    return {**af.credentials_env(), **broker.credentials_env()}


def airflow_source(af: Airflow, url: str | None = None, timeout: float = 5) -> AirflowSource:
    config = AirflowSourceConfig(url=url or af.url, timeout_seconds=timeout)
    return AirflowSource(config, source_credentials(config, af.credentials_env()))


def scaler_config(af: Airflow, broker: RabbitMQ, queues: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "backend": "aws",
        "cluster_name": "itest",
        "region": "us-east-1",
        "interval_seconds": 2,
        "stabilization_seconds": 0,
        "idle_seconds": 0,
        "sources": {
            "airflow": {"url": af.url, "timeout_seconds": 5},
            "rabbitmq": {"url": broker.management_url, "amqp_port": broker.amqp_port},
        },
        "queues": queues,
        **extra,
    }


def test_airflow_source_counts_queued_and_running_and_maps_hosts(
    scaler_airflow: Airflow, scaler_scenario: Scenario
) -> None:
    source = airflow_source(scaler_airflow)
    assert source.test_connection()[0]
    assert source.counts(["alpha", "beta", "nothing"]) == {"alpha": 5, "beta": 2, "nothing": 0}
    busy = source.busy(["alpha", "beta"])
    assert busy["alpha"] == {}
    assert busy["beta"] == {scaler_scenario.busy: 2}


def test_airflow_source_rejects_wrong_credentials(scaler_airflow: Airflow) -> None:
    config = AirflowSourceConfig(url=scaler_airflow.url)
    env = {"AIRTASKS_AIRFLOW_USERNAME": "admin", "AIRTASKS_AIRFLOW_PASSWORD": "wrong"}
    ok, message = AirflowSource(config, source_credentials(config, env)).test_connection()
    assert not ok
    assert message.startswith("airflow: POST /auth/token: HTTP 401")


def test_rabbitmq_source_reads_ready_plus_unacked(
    scaler_rabbitmq: RabbitMQ, scaler_scenario: Scenario
) -> None:
    config = RabbitMQSourceConfig(url=scaler_rabbitmq.management_url)
    source = RabbitMQSource(config, source_credentials(config, scaler_rabbitmq.credentials_env()))
    assert source.test_connection()[0]
    scaler_rabbitmq.publish("epsilon", 7)
    deadline = time.monotonic() + 30
    while True:  # the broker's counters are sampled: poll
        depths = source.depths(["alpha", "beta", "epsilon", "nothing"])
        if depths == {"alpha": 5, "beta": 2, "epsilon": 7, "nothing": 0} or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert depths == {"alpha": 5, "beta": 2, "epsilon": 7, "nothing": 0}


def settles(read: Callable[[], object], expected: object, timeout: float = 20.0) -> bool:
    """True once `read()` returns `expected`; False if it never did within `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        got = read()
        if got == expected:
            return True
        if time.monotonic() > deadline:
            print(f"last read: {got!r}, expected {expected!r}")
            return False
        time.sleep(1)


def test_celery_control_cordons_and_uncordons_one_worker(
    scaler_airflow: Airflow, scaler_rabbitmq: RabbitMQ, scaler_scenario: Scenario
) -> None:
    config = parse_config(
        scaler_config(scaler_airflow, scaler_rabbitmq, {"beta": {"group": "g", "max_size": 1}})
    )
    url = broker_url(config, creds_env(scaler_airflow, scaler_rabbitmq))
    assert url is not None
    control = CeleryControl(url, timeout=3)
    busy = scaler_scenario.busy
    try:
        # A loaded worker may miss a broadcast reply within the timeout: ask again, bounded.
        assert settles(lambda: control.consuming(busy), ["beta"])
        assert settles(lambda: control.in_flight(busy), 2)
        assert control.cordon(busy, "beta") is True
        assert settles(lambda: control.consuming(busy), [])
        assert settles(lambda: control.in_flight(busy), 2)  # running tasks carry on
        assert control.uncordon(busy, "beta") is True
        assert settles(lambda: control.consuming(busy), ["beta"])
    finally:
        control.uncordon(busy, "beta")
        control.close()
    absent = CeleryControl(url, timeout=0.5)  # no worker answers: we wait the timeout, once
    assert absent.cordon("i-0nosuchworker", "beta") is False
    assert absent.in_flight("i-0nosuchworker") is None
    absent.close()
    bad = CeleryControl(
        Secret(f"amqp://nobody:wrong@127.0.0.1:{scaler_rabbitmq.amqp_port}//", "test"), timeout=1
    )
    with pytest.raises(Exception, match="celery: cancel_consumer to celery@i-1 failed"):
        bad.cordon("i-1", "beta")


def test_a_worker_s_health_check_pings_the_node_s_own_worker_over_the_broker(
    scaler_airflow: Airflow, scaler_rabbitmq: RabbitMQ, scaler_scenario: Scenario, tmp_path: Path
) -> None:
    """The workers' health check as the stack runs it (`python -m airtasks.stack.health
    CeleryWorker`, the broker URL from Airflow's `_CMD` setting, the node's hostname): the node's
    own worker answers; a node whose worker is not there is unhealthy; a broker that refuses the
    login is named, never the password."""
    config = parse_config(
        scaler_config(scaler_airflow, scaler_rabbitmq, {"beta": {"group": "g", "max_size": 1}})
    )
    url = broker_url(config, creds_env(scaler_airflow, scaler_rabbitmq))
    assert url is not None

    def health(hostname: str, broker: str) -> subprocess.CompletedProcess[str]:
        # The URL in a file read by the setting's command, as airtasks-secret-url reads the secret.
        (tmp_path / "broker").write_text(broker)
        env = clean_env(HOSTNAME=hostname, AIRFLOW__CELERY__BROKER_URL_CMD=f"cat {tmp_path / 'broker'}")
        cmd = [sys.executable, "-m", "airtasks.stack.health", "CeleryWorker"]
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=90, check=False)

    busy = scaler_scenario.busy
    answered = health(busy, url.get())
    assert (answered.returncode, answered.stdout.strip()) == (0, f"celery@{busy} answered a ping"), answered
    absent = health("i-0nosuchworker", url.get())
    assert absent.returncode == 1
    assert absent.stdout.strip() == "celery@i-0nosuchworker did not answer a ping within 20s"
    refused = health(busy, f"amqp://nobody:s3cret-pw@127.0.0.1:{scaler_rabbitmq.amqp_port}//")
    assert refused.returncode == 1
    assert refused.stdout.startswith(f"unhealthy: celery: ping to celery@{busy} failed"), refused.stdout
    assert "s3cret-pw" not in refused.stdout + refused.stderr


def test_scale_once_grows_alpha_and_removes_exactly_the_idle_beta_instance(
    scaler_airflow: Airflow,
    scaler_rabbitmq: RabbitMQ,
    scaler_scenario: Scenario,
    moto_server: MotoServer,
    tmp_path: Path,
) -> None:
    """`airtasks scale --once --json` as a user runs it: a subprocess, credentials from the env.
    alpha learns run times: its group may grow, so the pass reads its queued and running task
    instances and its successes; none of its tasks has succeeded yet, so it grows for the load."""
    s = scaler_scenario
    config = tmp_path / "scaler.json"
    queues = {
        "alpha": {
            "group": s.alpha_group,
            "min_size": 0,
            "max_size": 10,
            "slots_per_node": 4,
            "learn_durations": True,
        },
        "beta": {"group": s.beta_group, "min_size": 0, "max_size": 10, "slots_per_node": 2},
    }
    config.write_text(json.dumps(scaler_config(scaler_airflow, scaler_rabbitmq, queues)))
    env = {**os.environ, **moto_server.env(), **creds_env(scaler_airflow, scaler_rabbitmq)}
    out = subprocess.run(
        [sys.executable, "-m", "airtasks", "scale", "--once", "--json", "--config", str(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    by_queue = {q["queue"]: q for q in report["queues"]}
    assert by_queue["alpha"] | {"reason": ""} == by_queue["alpha"] | {
        "queue": "alpha",
        "group": s.alpha_group,
        "load": 5,
        "current": 0,
        "desired": 2,
        "action": "scale_out",
        "removed": [],
        "reason": "",
    }
    assert by_queue["alpha"]["loads"]["airflow"] == 5
    assert by_queue["alpha"]["reason"] == "load 5 needs 2 node(s) of 4 slots"  # no read failed
    assert (by_queue["beta"]["action"], by_queue["beta"]["removed"], by_queue["beta"]["desired"]) == (
        "scale_in",
        [s.idle],
        1,
    )
    assert by_queue["beta"]["load"] == 2
    lines = [ln for ln in out.stderr.splitlines() if ln.startswith("queue=")]
    assert lines[0].startswith("queue=alpha load=5 current=0 want=2 action=scale_out reason=")
    assert lines[1].startswith("queue=beta load=2 current=2 want=1 action=scale_in reason=")

    with pytest.MonkeyPatch.context() as mp:
        for key, value in moto_server.env().items():
            mp.setenv(key, value)
        assert aws_groups.group(s.alpha_group)["DesiredCapacity"] == 2
        beta = aws_groups.group(s.beta_group)
        assert beta["DesiredCapacity"] == 1
        assert [(i["InstanceId"], i["ProtectedFromScaleIn"]) for i in beta["Instances"]] == [(s.busy, True)]
        assert aws_groups.ec2_state(s.idle) in {"shutting-down", "terminated"}
        assert aws_groups.ec2_state(s.busy) == "running"

    # The busy node's tasks still run, and the window/idle memory is kept in an Airflow Variable.
    running = scaler_airflow.task_instances(state=["running"], queue=["beta"])
    assert {t["hostname"] for t in running} == {s.busy}
    assert len(running) == 2
    memory = decode(airflow_source(scaler_airflow).get_variable("airtasks_scaler_memory"))
    assert memory[s.beta_group].queue.last_busy.keys() == {s.busy}

    status = subprocess.run(
        [sys.executable, "-m", "airtasks", "status", "--json", "--config", str(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    beta_status = next(q for q in json.loads(status.stdout)["queues"] if q["queue"] == "beta")
    assert [(n["id"], n["busy"]) for n in beta_status["nodes"]] == [(s.busy, True)]


def test_the_scaler_dag_auto_runs_and_resizes_its_group(
    scaler_airflow: Airflow, moto_server: MotoServer
) -> None:
    """Unpaused on creation, every minute, on the manager's worker: tasks queued on `delta` make it
    grow airtasks-dagtest-delta within a pass or two, without anyone clicking anything."""
    af = scaler_airflow
    with af.api() as api:
        af.wait_for("DAGs parsed", lambda: api.get("/api/v2/dags/airtasks_delta").status_code == 200)
        dag = api.get("/api/v2/dags/airtasks_scaler").json()
    assert dag["is_paused"] is False
    af.trigger("airtasks_delta")

    def grown() -> bool:
        with pytest.MonkeyPatch.context() as mp:
            for key, value in moto_server.env().items():
                mp.setenv(key, value)
            return bool(aws_groups.group(DAG_GROUP)["DesiredCapacity"] == 3)

    af.wait_for("the scaler DAG resizes airtasks-dagtest-delta to 3", grown, timeout=150)
    with af.api() as api:
        tis = api.get("/api/v2/dags/airtasks_scaler/dagRuns/~/taskInstances").json()["task_instances"]
    assert {t["queue"] for t in tis} == {"manager"}
    assert {t["hostname"] for t in tis if t["hostname"]} == {"airtasks-manager"}


def test_the_schedule_reads_for_pre_scaling_work_on_airflow(scaler_airflow: Airflow) -> None:
    """Against Airflow 3 itself: the scaler DAG (every minute, unpaused) shows its next run time
    within the minute, and its finished scheduled runs give what a run needs: one slot on
    `manager`, its one task queued within seconds of the run's time. A DAG's task listing gives
    its root tasks per queue."""
    source = airflow_source(scaler_airflow)
    scaler_airflow.wait_for(
        "a finished scheduled run of the scaler DAG",
        lambda: bool(source.recent_runs("airtasks_scaler")),
        timeout=180,
    )
    now = time.time()
    due = dict(source.next_runs(now + 120))
    assert "airtasks_scaler" in due, due
    assert now - 60 < due["airtasks_scaler"] <= now + 61
    assert "airtasks_scaler" not in dict(source.next_runs(now - 3600))
    runs = source.recent_runs("airtasks_scaler")
    assert 1 <= len(runs) <= 3
    for at, tasks in runs:
        assert [t.queue for t in tasks] == ["manager"]
        assert 0 <= tasks[0].queued_at - at < 60
        assert tasks[0].duration > 0
    assert needed([first_minutes_slots(at, tasks) for at, tasks in runs]) == {"manager": 1}
    # The parsed DAGs' structure, which a DAG's first run is pre-scaled for: the scaler DAG's one
    # task, and the example's two chains, whose first tasks (one per queue) are its roots.
    assert root_slots(source.dag_tasks("airtasks_scaler")) == {"manager": 1}
    assert root_slots(source.dag_tasks("example_interleaved")) == {"default": 1, "manager": 1}


def test_the_run_time_reads_work_on_airflow(scaler_airflow: Airflow, scaler_scenario: Scenario) -> None:
    """Against Airflow 3 itself, what a queue that learns run times reads: its queued tasks' keys,
    when its running task instances started, and how long its successful ones ran (on `manager`,
    where the scaler DAG's `scale` task succeeds every minute), the latest of them and only those
    that ended after a time."""
    source = airflow_source(scaler_airflow)
    assert source.queued_keys("alpha", 100) == ["airtasks_load.alpha"] * 5
    assert source.queued_keys("alpha", 4) is None
    running = source.running(["beta"])
    now = time.time()
    assert [t.task for t in running] == ["airtasks_load.beta"] * 2
    assert all(t.started is not None and now - 900 < t.started <= now for t in running), running

    # Other DAGs of the suite run tasks on `manager` too; the scaler's succeeds every minute.
    scaler_airflow.wait_for(
        "a successful scale task of the scaler DAG",
        lambda: "airtasks_scaler.scale" in {t.task for t in source.finished("manager", None, 10)},
        timeout=180,
    )
    latest = source.finished("manager", None, 10)
    assert "airtasks_scaler.scale" in {t.task for t in latest}
    assert all(0 < t.seconds < 100 and t.ended <= time.time() for t in latest), latest
    assert [t.ended for t in latest] == sorted(t.ended for t in latest)
    last = latest[-1]
    assert last.id in {t.id for t in source.finished("manager", last.ended - 1, 10)}
    assert last.id not in {t.id for t in source.finished("manager", last.ended, 10)}
