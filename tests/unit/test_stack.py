"""The Swarm stack file: rendered from one template, shipped as the default rendering, and every
service carries the placement, secrets, network, healthcheck and grace period the design needs."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from airtasks.cli import cli
from airtasks.stack.render import (
    QueueSpec,
    StackError,
    TaskLogs,
    render_nginx,
    render_rabbitmq,
    render_stack,
)
from airtasks.stack.secrets import SECRET_NAMES

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "docker" / "docker-compose-CeleryExecutor.yml"
MANAGER_SERVICES = {
    "postgres",
    "rabbitmq",
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "flower",
    "proxy",
    "worker-manager",
}
# A client with `docker stack config` (Debian's 20.10 CLI lacks it; the newer one has it).
STACK_CONFIG_CLIENTS = ["/usr/local/bin/docker", shutil.which("docker") or "docker"]


def load(text: str) -> dict[str, Any]:
    return yaml.safe_load(text)  # type: ignore[no-any-return]


def test_shipped_stack_is_the_default_rendering() -> None:
    assert SHIPPED.read_text() == render_stack(), (
        "run: airtasks stack render -o docker/docker-compose-CeleryExecutor.yml"
    )
    assert (REPO / "docker" / "proxy" / "nginx.conf").read_text() == render_nginx()
    assert (REPO / "docker" / "rabbitmq" / "20-airtasks.conf").read_text() == render_rabbitmq()


def test_services_and_names_follow_the_contract() -> None:
    stack = load(render_stack())
    assert set(stack["services"]) == MANAGER_SERVICES | {"worker-default"}
    assert set(stack["secrets"]) == set(SECRET_NAMES)
    assert all(s == {"external": True} for s in stack["secrets"].values())


def test_manager_services_are_placed_on_the_manager() -> None:
    services = load(render_stack())["services"]
    for name in MANAGER_SERVICES:
        assert "node.role == manager" in services[name]["deploy"]["placement"]["constraints"], name


def test_one_worker_service_per_queue() -> None:
    services = load(render_stack([QueueSpec("default", 4), QueueSpec("gpu", 1)]))["services"]
    for queue, slots in (("default", "4"), ("gpu", "1")):
        worker = services[f"worker-{queue}"]
        assert worker["deploy"]["mode"] == "global"
        assert worker["deploy"]["placement"]["constraints"] == [f"node.labels.airtasks.queue == {queue}"]
        assert worker["environment"]["AIRTASKS_QUEUE"] == queue
        assert worker["environment"]["AIRTASKS_SLOTS"] == slots
        assert worker["environment"]["AIRTASKS_WAIT_MIGRATIONS"] == "0"  # a node joins long after init
    manager_env = services["worker-manager"]["environment"]
    assert manager_env["AIRTASKS_QUEUE"] == "manager"
    assert manager_env["AIRTASKS_AIRFLOW_URL"] == "http://airflow-apiserver:8080"
    assert manager_env["AIRTASKS_AIRFLOW_PASSWORD_FILE"] == "/run/secrets/airtasks_admin_password"
    assert "AIRTASKS_AIRFLOW_URL" not in services["worker-gpu"]["environment"]


def test_engine_label_placement_for_nodes_labelled_at_boot() -> None:
    services = load(render_stack([QueueSpec("default", 2)], placement="engine"))["services"]
    assert services["worker-default"]["deploy"]["placement"]["constraints"] == [
        "engine.labels.airtasks.queue == default"
    ]
    assert services["worker-manager"]["deploy"]["placement"]["constraints"] == ["node.role == manager"]
    assert services["worker-manager"]["environment"]["AIRTASKS_DOCKER_URL"] == "unix:///var/run/docker.sock"
    with pytest.raises(StackError, match="placement"):
        render_stack(placement="anywhere")
    out = CliRunner().invoke(cli, ["stack", "render", "--queue", "default:2", "--worker-placement", "engine"])
    assert "- engine.labels.airtasks.queue == default" in out.output


def test_workers_are_named_after_the_node_and_shut_down_warm() -> None:
    services = load(render_stack())["services"]
    for name in ("worker-default", "worker-manager"):
        worker = services[name]
        assert worker["hostname"] == "{{.Node.Hostname}}"
        assert worker["command"] == ["worker"]
        assert worker["stop_grace_period"] == "${AIRTASKS_WORKER_STOP_GRACE:-1h}"
        assert "/var/run/docker.sock:/var/run/docker.sock" in worker["volumes"]
        assert "healthcheck" in worker


def test_a_settings_change_restarts_every_worker_at_once_after_its_tasks() -> None:
    """A rolling update one node at a time would leave workers on the old settings taking tasks
    (after a switch to a managed database, their result backend is gone) for as long as the slowest
    node's running task."""
    services = load(render_stack([QueueSpec("default", 4), QueueSpec("gpu", 1)]))["services"]
    workers = [name for name in services if name.startswith("worker-")]
    assert sorted(workers) == ["worker-default", "worker-gpu", "worker-manager"]
    for name in workers:
        assert services[name]["deploy"]["update_config"] == {"parallelism": 0, "order": "stop-first"}, name


def test_every_service_has_network_secrets_and_healthcheck() -> None:
    services = load(render_stack())["services"]
    for name, svc in services.items():
        assert svc["networks"] == ["airtasks"], name
        assert svc.get("secrets"), name
        assert svc["deploy"]["endpoint_mode"] == "dnsrr", name
        if name != "airflow-init":
            assert "healthcheck" in svc, name
            assert svc["deploy"].get("restart_policy", {}).get("condition") == "any", name
    assert services["airflow-init"]["deploy"]["restart_policy"]["condition"] == "none"
    assert services["airflow-init"]["command"] == ["init"]


def test_no_secret_values_in_the_stack() -> None:
    text = render_stack()
    stack = load(text)
    for svc in stack["services"].values():
        env = svc.get("environment") or {}
        for key in env:
            assert not re.search(
                r"(PASSWORD|FERNET_KEY|SECRET_KEY|JWT_SECRET|SQL_ALCHEMY_CONN|BROKER_URL)$", key
            ), key
    assert "airflow:airflow" not in text


def test_proxy_publishes_https_and_http_and_mounts_the_config() -> None:
    proxy = load(render_stack())["services"]["proxy"]
    assert [(p["target"], p["published"], p["mode"]) for p in proxy["ports"]] == [
        (443, "${AIRTASKS_HTTPS_PORT:-443}", "host"),
        (80, "${AIRTASKS_HTTP_PORT:-80}", "host"),
    ]
    assert proxy["secrets"] == ["airtasks_tls_cert", "airtasks_tls_key"]
    # One per manager: the UI answers on every manager, so losing one of 3 keeps it reachable.
    assert proxy["deploy"]["mode"] == "global"
    assert proxy["deploy"]["placement"]["constraints"] == ["node.role == manager"]
    assert proxy["configs"][0]["target"] == "/etc/nginx/nginx.conf"
    nginx = render_nginx()
    assert "return 301 https://" in nginx
    assert nginx.count("auth_request /_airtasks_auth;") == 4  # /, /flower/, /rabbitmq/, /visualizer
    assert "proxy_pass $airflow/airtasks/visualizer;" in nginx


def test_an_api_server_runs_on_each_manager() -> None:
    """Losing a manager leaves the UI, the REST API and the workers' execution API answering: the
    boot script sets one replica per manager, and Swarm puts at most one on a node, so the lost
    manager's replica waits for its replacement instead of crowding a survivor."""
    client = next((c for c in STACK_CONFIG_CLIENTS if Path(c).exists()), None)
    assert client, "a docker CLI with `docker stack config`"
    for env, replicas in (({}, 1), ({"AIRTASKS_API_REPLICAS": "3"}, 3)):
        res = subprocess.run(
            [client, "stack", "config", "-c", str(SHIPPED)],
            capture_output=True,
            text=True,
            check=False,
            env={"PATH": "/usr/bin:/bin", **env},
        )
        assert res.returncode == 0, res.stderr
        deploy = load(res.stdout)["services"]["airflow-apiserver"]["deploy"]
        assert deploy["replicas"] == replicas
        assert deploy["placement"] == {"constraints": ["node.role == manager"], "max_replicas_per_node": 1}
    # A proxy tries the next API server soon when one does not answer a connect.
    assert "proxy_connect_timeout 5s;" in render_nginx()
    script = (REPO / "modules" / "swarm-boot" / "templates" / "manager.sh").read_text()
    assert 'vars+=(AIRTASKS_API_REPLICAS="$AIRTASKS_MANAGER_COUNT")' in script


def test_rabbitmq_management_lives_under_rabbitmq_for_the_proxy_and_the_scaler() -> None:
    services = load(render_stack())["services"]
    assert services["rabbitmq"]["configs"] == [
        {"source": "rabbitmq_conf", "target": "/etc/rabbitmq/conf.d/20-airtasks.conf"}
    ]
    assert "management.path_prefix = /rabbitmq\n" in render_rabbitmq()
    for name in ("worker-manager", "airflow-apiserver"):  # the scaler, and the plugin's cluster page
        env = services[name]["environment"]
        assert env["AIRTASKS_RABBITMQ_URL"] == "http://rabbitmq:15672/rabbitmq", name
        assert env["AIRTASKS_RABBITMQ_PASSWORD_FILE"] == "/run/secrets/airtasks_rabbitmq_password", name
    assert services["airflow-apiserver"]["environment"]["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert "/var/run/docker.sock:/var/run/docker.sock" not in services["airflow-apiserver"].get("volumes", [])


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("GPU:2", "must match"),
        ("manager:2", "reserved"),
        ("gpu", "NAME:SLOTS"),
        ("gpu:0", "NAME:SLOTS"),
    ],
)
def test_bad_queue_specs_are_rejected(spec: str, message: str) -> None:
    with pytest.raises(StackError, match=message):
        QueueSpec.parse(spec)


def test_duplicate_queues_are_rejected() -> None:
    with pytest.raises(StackError, match="unique"):
        render_stack([QueueSpec("a", 1), QueueSpec("a", 2)])


def test_render_cli_writes_stack_and_proxy_config(tmp_path: Path) -> None:
    out = tmp_path / "stack.yml"
    result = CliRunner().invoke(
        cli, ["stack", "render", "--queue", "default:4", "--queue", "gpu:1", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "worker-gpu:" in out.read_text()
    assert (tmp_path / "proxy" / "nginx.conf").read_text() == render_nginx()
    assert (tmp_path / "rabbitmq" / "20-airtasks.conf").read_text() == render_rabbitmq()
    bad = CliRunner().invoke(cli, ["stack", "render", "--queue", "Bad:1"])
    assert bad.exit_code == 2


def test_docker_stack_config_accepts_the_stack(tmp_path: Path) -> None:
    out = tmp_path / "stack.yml"
    CliRunner().invoke(cli, ["stack", "render", "--queue", "default:4", "--queue", "gpu:1", "-o", str(out)])
    client = next((c for c in STACK_CONFIG_CLIENTS if Path(c).exists()), None)
    assert client, "a docker CLI with `docker stack config`"
    test_overrides = ["-c", str(REPO / "docker" / "docker-compose.test.yml")]
    for args in (["-c", str(SHIPPED)], ["-c", str(out)], ["-c", str(SHIPPED), *test_overrides]):
        res = subprocess.run([client, "stack", "config", *args], capture_output=True, text=True, check=False)
        assert res.returncode == 0, res.stderr
        assert "worker-default" in res.stdout


def test_task_logs_off_by_default_and_on_for_every_airflow_service() -> None:
    """Without a location nothing logs remotely (the shipped stack); with one, every Airflow service
    does, through a connection that carries no key (the node's own cloud identity signs)."""
    off = load(render_stack())["services"]
    assert not any("AIRFLOW__LOGGING__REMOTE_LOGGING" in s.get("environment", {}) for s in off.values())
    for url, region, conn in (
        ("s3://acme-logs/logs", "eu-west-1", {"conn_type": "aws", "extra": {"region_name": "eu-west-1"}}),
        ("gs://acme-logs/logs/", None, {"conn_type": "google_cloud_platform", "extra": {}}),
    ):
        services = load(render_stack(task_logs=TaskLogs.parse(url, region)))["services"]
        airflow = {n: s for n, s in services.items() if n.startswith(("airflow-", "worker-"))}
        assert set(airflow) == {n for n in MANAGER_SERVICES if n.startswith(("airflow-", "worker-"))} | {
            "worker-default"
        }
        for name, service in airflow.items():
            env = service["environment"]
            assert env["AIRFLOW__LOGGING__REMOTE_LOGGING"] == "True", name
            assert env["AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER"] == url.rstrip("/"), name
            assert env["AIRFLOW__LOGGING__REMOTE_LOG_CONN_ID"] == "airtasks_task_logs", name
            assert json.loads(env["AIRFLOW_CONN_AIRTASKS_TASK_LOGS"]) == conn, name
        assert "postgres" not in airflow


@pytest.mark.parametrize(
    ("url", "region", "words"),
    [
        ("ftp://logs/x", None, "must be s3://BUCKET/PREFIX or gs://BUCKET/PREFIX"),
        ("s3://Bad_Bucket/logs", "us-east-1", "must be s3://BUCKET/PREFIX"),
        ("s3://acme-logs/logs", None, "need the bucket's region"),
        ("s3://acme-logs/logs", "Europe", "need the bucket's region"),
    ],
)
def test_task_logs_location_is_checked(url: str, region: str | None, words: str) -> None:
    with pytest.raises(StackError, match=re.escape(words)):
        TaskLogs.parse(url, region)


def test_queue_sizes_set_airflow_limits_and_pools_on_every_airflow_service() -> None:
    """With each group's maximum size, Airflow may run what the cluster can run at its largest
    (parallelism 32 and 16 per DAG run would cap a big cluster), and each queue gets a pool of its
    group's slots; without sizes (the shipped stack) Airflow's defaults stay."""
    off = load(render_stack())["services"]
    assert not any("AIRTASKS_QUEUE_POOLS" in s.get("environment", {}) for s in off.values())
    services = load(render_stack([QueueSpec("default", 4, 10), QueueSpec("heavy", 8, 5)], manager_slots=2))[
        "services"
    ]
    airflow = {n: s for n, s in services.items() if n.startswith(("airflow-", "worker-"))}
    for name, service in airflow.items():
        env = service["environment"]
        # 10 x 4 + 5 x 8, plus the manager queue's 2 slots on each of up to 5 managers
        assert env["AIRFLOW__CORE__PARALLELISM"] == "90", name
        assert env["AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG"] == "90", name
        assert env["AIRTASKS_QUEUE_POOLS"] == "default=40 heavy=40", name


def test_queue_sizes_are_given_for_every_queue_or_none() -> None:
    assert QueueSpec.parse("gpu:1:0") == QueueSpec("gpu", 1, 0)
    assert QueueSpec.parse("gpu:1") == QueueSpec("gpu", 1, None)
    with pytest.raises(StackError, match="MAX_NODES must be a whole number from 0 to 10000"):
        QueueSpec.parse("gpu:1:10001")
    with pytest.raises(StackError, match=r"for every queue or for none.*none for: gpu"):
        render_stack([QueueSpec("default", 4, 10), QueueSpec("gpu", 1)])
