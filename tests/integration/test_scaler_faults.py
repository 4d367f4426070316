"""Faults on real services: RabbitMQ stopped mid-run, the Airflow API answering 500 or timing out,
AWS API errors. Each time the pass holds (exit code 2), terminates nothing, and the next pass
recovers. Each test has a group with one idle instance that a healthy pass removes at once."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from airtasks.config import parse_config
from airtasks.scaling.report import PassReport
from airtasks.scaling.scaler import Scaler, build_scaler
from airtasks_dev.devstack.moto import MotoServer
from tests.support.services import aws_groups
from tests.support.services.airflow import Airflow
from tests.support.services.fault_proxy import FaultProxy, fault_proxy
from tests.support.services.rabbitmq import RabbitMQ

pytestmark = pytest.mark.integration


@pytest.fixture
def creds(scaler_airflow: Airflow, scaler_rabbitmq: RabbitMQ) -> dict[str, str]:
    return {**scaler_airflow.credentials_env(), **scaler_rabbitmq.credentials_env()}


def make_scaler(
    queue: str,
    group: str,
    airflow_url: str,
    broker: RabbitMQ,
    creds: dict[str, str],
    airflow_timeout: float = 5,
) -> Scaler:
    config = parse_config(
        {
            "backend": "aws",
            "region": "us-east-1",
            "stabilization_seconds": 0,
            "idle_seconds": 0,
            "sources": {
                "airflow": {"url": airflow_url, "timeout_seconds": airflow_timeout},
                "rabbitmq": {
                    "url": broker.management_url,
                    "amqp_port": broker.amqp_port,
                    "timeout_seconds": 1,
                },
            },
            "celery": {"timeout_seconds": 1},
            "memory": {"store": "airflow", "variable": f"airtasks_scaler_memory_{queue}"},
            "queues": {queue: {"group": group, "max_size": 4, "slots_per_node": 2}},
        }
    )
    return build_scaler(config, creds)


def held(report: PassReport) -> str:
    assert report.exit_code == 2
    q = report.queues[0]
    assert q.action == "hold"
    assert q.failed
    assert q.removed == []
    return q.reason


def still_there(group: str, instance: str) -> None:
    assert aws_groups.instance_ids(group) == [instance]
    assert aws_groups.group(group)["DesiredCapacity"] == 1
    assert aws_groups.ec2_state(instance) == "running"


def recovered(report: PassReport, group: str, instance: str) -> None:
    assert report.exit_code == 0, report.queues[0].reason
    q = report.queues[0]
    assert (q.action, q.removed, q.desired) == ("scale_in", [instance], 0), q.reason
    assert aws_groups.instance_ids(group) == []


def test_rabbitmq_stopped_mid_run(
    scaler_airflow: Airflow,
    scaler_rabbitmq: RabbitMQ,
    creds: dict[str, str],
    aws_env: dict[str, str],
) -> None:
    group = aws_groups.make_group("faults", "rmq", 1)
    (instance,) = aws_groups.instance_ids(group)
    scaler_rabbitmq.publish("rmq", 1)
    scaler_rabbitmq.wait_depth("rmq", 1)
    scaler = make_scaler("rmq", group, scaler_airflow.url, scaler_rabbitmq, creds)
    first = scaler.run_pass()
    q = first.queues[0]
    assert (first.exit_code, q.action, q.load) == (0, "none", 1), q.reason
    scaler_rabbitmq.stop_app()
    try:
        started = time.monotonic()
        reason = held(scaler.run_pass())
        assert time.monotonic() - started < 10
        assert "rabbitmq: GET /api/queues/%2F: cannot connect" in reason
        still_there(group, instance)
    finally:
        scaler_rabbitmq.start_app()
    # The broker came back empty (the message was not persistent): load 0, the idle node goes.
    recovered(scaler.run_pass(), group, instance)


@pytest.fixture
def airflow_proxy(scaler_airflow: Airflow) -> Iterator[FaultProxy]:
    with fault_proxy(scaler_airflow.url, delay=3) as proxy:
        yield proxy


@pytest.mark.parametrize(("mode", "says"), [("500", "HTTP 500 after 3 tries"), ("timeout", "timed out")])
def test_airflow_api_failing(
    mode: str,
    says: str,
    airflow_proxy: FaultProxy,
    scaler_rabbitmq: RabbitMQ,
    creds: dict[str, str],
    aws_env: dict[str, str],
) -> None:
    queue = f"af{mode}"
    group = aws_groups.make_group("faults", queue, 1)
    (instance,) = aws_groups.instance_ids(group)
    scaler = make_scaler(queue, group, airflow_proxy.url, scaler_rabbitmq, creds, airflow_timeout=1)
    airflow_proxy.mode = mode
    started = time.monotonic()
    reason = held(scaler.run_pass())
    assert time.monotonic() - started < 15  # retries are bounded and short
    assert reason.startswith("read failed: airflow: ")
    assert says in reason
    assert airflow_proxy.seen[mode] >= 2  # it retried
    still_there(group, instance)
    airflow_proxy.mode = "pass"
    recovered(scaler.run_pass(), group, instance)


def test_aws_api_errors(
    scaler_airflow: Airflow,
    scaler_rabbitmq: RabbitMQ,
    creds: dict[str, str],
    moto_server: MotoServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in moto_server.env().items():
        monkeypatch.setenv(key, value)
    group = aws_groups.make_group("faults", "aws", 1)
    (instance,) = aws_groups.instance_ids(group)
    with fault_proxy(moto_server.url) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        scaler = make_scaler("aws", group, scaler_airflow.url, scaler_rabbitmq, creds)
        proxy.mode = "500"
        reason = held(scaler.run_pass())
        assert f"aws: describe {group} (us-east-1)" in reason
        monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.url)
        still_there(group, instance)

        # The read works but the terminate fails: the instance stays, and keeps its protection.
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        proxy.only_if = b"TerminateInstanceInAutoScalingGroup"
        report = scaler.run_pass()
        assert report.exit_code == 2
        q = report.queues[0]
        assert q.removed == []
        assert f"kept {instance}: aws: terminate {instance} in {group}" in q.reason
        monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.url)
        still_there(group, instance)
        assert aws_groups.group(group)["Instances"][0]["ProtectedFromScaleIn"] is True

        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        proxy.mode, proxy.only_if = "pass", None
        report = scaler.run_pass()
        monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.url)
        recovered(report, group, instance)
