"""The Swarm stack on a Swarm started by the test, with images built here (airtasks_dev.images).

Deploys docker/docker-compose-CeleryExecutor.yml (rendered for the queue `default`), then checks:
the services carry their constraints, secrets, network and grace periods; the proxy answers HTTPS,
redirects HTTP, refuses requests without credentials (UI, Flower, the RabbitMQ management UI and
the /visualizer node view) and lets a logged-in client through; and a DAG triggered through the
proxy with `airtasks trigger --wait` succeeds on the Swarm's Celery workers, with every task's log
in the deployment's local S3, read back by the API server. Last, a task queued when the broker is
lost with its messages is taken back after `[scheduler] task_queued_timeout` and still runs.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import docker
import httpx
import pytest
import yaml

from airtasks.sources.airflow_access import AirflowAccess, api_client, tls_verify
from airtasks.stack import secrets as sec
from airtasks.stack.render import QueueSpec
from airtasks_dev.devstack import swarm as swarm_dev
from tests.support.ports import free_port

pytestmark = pytest.mark.integration

STACK = "airtasks-test"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
AIRTASKS = str(Path(sys.executable).with_name("airtasks"))
REPO = Path(__file__).resolve().parents[2]
TEST_OVERRIDES = REPO / "docker" / "docker-compose.test.yml"
BROKER_LOSS_OVERRIDES = Path(__file__).with_name("broker-loss.override.yml")


@pytest.fixture(scope="module")
def deployed(
    swarm: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory, stack_image_env: dict[str, str]
) -> Iterator[dict[str, Any]]:
    """`make up MODE=swarm`'s function, with the images built here and the test's timing overrides."""
    timings: dict[str, float] = {}
    start = time.monotonic()
    images = stack_image_env  # built in the background since the session started (conftest.py)
    timings["images_wait"] = time.monotonic() - start
    project = tmp_path_factory.mktemp("clone")
    run_dir = project / ".run"
    node = swarm.nodes.get(swarm.info()["Swarm"]["NodeID"])
    old_spec = dict(node.attrs["Spec"])
    clear_leftovers(swarm, tmp_path_factory.mktemp("leftovers"))
    preexisting = sec.existing_secrets(swarm) & set(sec.SECRET_NAMES)
    assert not preexisting, f"stack secrets {preexisting} are in use by another stack on this Swarm"
    admin_password = secrets.token_urlsafe(18)
    progress: list[str] = []
    try:
        up = swarm_dev.up_swarm(
            run_dir,
            queues=[QueueSpec("default", 2)],
            manager_slots=1,
            https_port=free_port(),
            http_port=free_port(),
            images=images,
            stack=STACK,
            extra_stack_files=[TEST_OVERRIDES, BROKER_LOSS_OVERRIDES],
            given_secrets={sec.ADMIN_PASSWORD: admin_password.encode()},
            timeout=420,
            progress=progress.append,
        )
        timings["deploy_to_healthy"] = up.seconds
        http_port = load_stack_http_port(swarm)
        yield {
            "url": up.url,
            "http_url": f"http://127.0.0.1:{http_port}",
            "ca": str(up.ca_bundle),
            "password": admin_password,
            "password_file": up.password_file,
            "project": project,
            "progress": progress,
            "timings": timings,
        }
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        dump_services(swarm)
        swarm_dev.down_swarm(run_dir, stack=STACK, remove_secrets=True)
        node.reload()
        node.update(old_spec)
        (ARTIFACTS / "stack-timings.txt").write_text("".join(f"{k} {v:.1f}\n" for k, v in timings.items()))


def clear_leftovers(swarm: docker.DockerClient, run_dir: Path) -> None:
    """What a killed earlier run of this module left: its stack and volumes (a database volume keeps
    the old password), and stack secrets no service uses (the test needs secrets it generated
    itself). Secrets another stack uses are left alone."""
    swarm_dev.down_swarm(run_dir, stack=STACK)  # quick when nothing is left
    in_use = {
        ref["SecretName"]
        for service in swarm.services.list()
        for ref in service.attrs["Spec"]["TaskTemplate"]["ContainerSpec"].get("Secrets", [])
    }
    for secret in swarm.secrets.list():
        if secret.name in sec.SECRET_NAMES and secret.name not in in_use:
            secret.remove()


def load_stack_http_port(swarm: docker.DockerClient) -> int:
    ports = swarm.services.get(f"{STACK}_proxy").attrs["Spec"]["EndpointSpec"]["Ports"]
    return int(next(p["PublishedPort"] for p in ports if p["TargetPort"] == 80))


def dump_services(swarm: docker.DockerClient) -> None:
    """`docker service ps` and the log tails of every service, for a failed run's post-mortem."""
    with open(ARTIFACTS / "stack-services.log", "w") as fh:
        for svc in swarm.services.list(filters={"label": f"com.docker.stack.namespace={STACK}"}):
            fh.write(f"== {svc.name}\n")
            for args in (
                ["service", "ps", "--no-trunc", svc.name],
                ["service", "logs", "--tail", "60", svc.name],
            ):
                out = subprocess.run(
                    [swarm_dev.DOCKER_CLI, *args], check=False, capture_output=True, text=True, timeout=60
                )
                fh.write(out.stdout[-6000:] + out.stderr[-6000:])


def service(swarm: docker.DockerClient, name: str) -> dict[str, Any]:
    return swarm.services.get(f"{STACK}_{name}").attrs["Spec"]  # type: ignore[no-any-return]


def test_services_carry_constraints_secrets_networks_grace(
    deployed: dict[str, Any], swarm: docker.DockerClient
) -> None:
    names = {
        s.name.removeprefix(f"{STACK}_")
        for s in swarm.services.list(filters={"label": f"com.docker.stack.namespace={STACK}"})
    }
    assert names >= {
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
        "worker-default",
    }
    worker = service(swarm, "worker-default")
    task = worker["TaskTemplate"]
    assert task["Placement"]["Constraints"] == ["node.labels.airtasks.queue == default"]
    assert "Global" in worker["Mode"]
    assert task["ContainerSpec"]["Hostname"] == "{{.Node.Hostname}}"
    assert task["ContainerSpec"]["StopGracePeriod"] == 3600 * 10**9
    assert {s["SecretName"] for s in task["ContainerSpec"]["Secrets"]} >= {sec.FERNET_KEY, sec.API_SECRET_KEY}
    assert len(task["Networks"]) == 1
    api = service(swarm, "airflow-apiserver")["TaskTemplate"]
    assert api["Placement"]["Constraints"] == ["node.role == manager"]
    assert "Healthcheck" in api["ContainerSpec"]
    assert service(swarm, "airflow-init")["TaskTemplate"]["RestartPolicy"]["Condition"] == "none"


def test_worker_celery_hostname_is_the_node_hostname(
    deployed: dict[str, Any], swarm: docker.DockerClient
) -> None:
    hostname = swarm.info()["Name"]
    [container] = swarm.containers.list(
        filters={"label": f"com.docker.swarm.service.name={STACK}_worker-default"}
    )
    assert container.attrs["Config"]["Hostname"] == hostname
    # `docker top` (the daemon's own ps), not `exec ps`: exec loses a quick command's output at times.
    commands = [process[-1] for process in container.top()["Processes"]]
    assert any(f"celery@{hostname}" in c for c in commands), commands


def test_broker_lets_go_of_a_vanished_worker_within_half_a_minute(
    deployed: dict[str, Any], swarm: docker.DockerClient
) -> None:
    """A worker node that vanishes without closing its connection is a consumer until the broker
    misses its heartbeats: every worker's connection runs on a 30 s heartbeat, not 60 s or 120 s.
    Connections without a heartbeat are the scheduler's and API server's publishers."""
    [rabbit] = swarm.containers.list(filters={"label": f"com.docker.swarm.service.name={STACK}_rabbitmq"})
    listed = rabbit.exec_run(
        ["rabbitmqctl", "-q", "--no-table-headers", "list_connections", "user", "timeout"]
    )
    assert listed.exit_code == 0, listed.output.decode()
    heartbeats = [int(line.split()[1]) for line in listed.output.decode().splitlines() if line.strip()]
    assert any(heartbeats), f"no worker connection with a heartbeat: {heartbeats}"
    assert {h for h in heartbeats if h} == {30}, heartbeats


def test_proxy_refuses_without_credentials(deployed: dict[str, Any]) -> None:
    url, ca = deployed["url"], deployed["ca"]
    with httpx.Client(verify=tls_verify(ca), timeout=20) as client:
        for path in ("/", "/flower/", "/dags", "/rabbitmq/", "/visualizer", "/airtasks/api/view"):
            r = client.get(url + path, headers={"Accept": "text/html"})
            assert r.status_code == 302, path
            assert r.headers["location"].startswith("/auth/login"), path
            r = client.get(url + path, headers={"Accept": "application/json"})
            assert r.status_code == 401, path
        r = client.get(url + "/flower/", headers={"Authorization": "Bearer not-a-token"})
        assert r.status_code == 401
        assert client.get(url + "/api/v2/dags").status_code == 401  # Airflow's own check
        assert client.get(url + "/execution/").status_code == 404
    r = httpx.get(deployed["http_url"] + "/dags", timeout=10)
    assert r.status_code == 301
    assert r.headers["location"] == "https://127.0.0.1/dags"


def test_logged_in_client_reaches_ui_flower_and_api(deployed: dict[str, Any]) -> None:
    url, ca = deployed["url"], deployed["ca"]
    assert deployed["password"] not in "\n".join(deployed["progress"]), "never printed"
    assert deployed["password_file"].stat().st_mode & 0o777 == 0o600
    with httpx.Client(verify=tls_verify(ca), timeout=30) as client:
        r = client.post(url + "/auth/token", json={"username": "admin", "password": deployed["password"]})
        assert r.status_code == 201, r.text
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        assert client.get(url + "/flower/", headers=headers).status_code == 200
        # RabbitMQ's UI under its path prefix (its own broker login comes next, in the page).
        rabbit = client.get(url + "/rabbitmq/", headers=headers)
        assert rabbit.status_code == 200
        assert "RabbitMQ Management" in rabbit.text
        # The Swarm view is the Air-Tasks plugin's node page (no scaler config here: it says so).
        nodes = client.get(url + "/visualizer", headers=headers)
        assert nodes.status_code == 200
        assert 'id="swarm"' in nodes.text
        assert "no scaler config" in nodes.text
        assert client.get(url + "/", headers=headers).status_code == 200
        dags = client.get(url + "/api/v2/dags", headers=headers).json()["dags"]
        assert {"example_trigger_target", "example_interleaved"} <= {d["dag_id"] for d in dags}
    # The browser's way: the session cookie set at login opens Flower too.
    with httpx.Client(
        verify=tls_verify(ca), timeout=30, cookies={"_token": r.json()["access_token"]}
    ) as browser:
        assert browser.get(url + "/flower/").status_code == 200


def test_dag_runs_on_the_swarm_workers(deployed: dict[str, Any]) -> None:
    """After `make up MODE=swarm`, `airtasks trigger` needs no settings (the state file in .run/)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRTASKS_")}
    env["XDG_STATE_HOME"] = str(deployed["project"] / "xdg")
    start = time.monotonic()
    out = subprocess.run(
        [AIRTASKS, "trigger", "example_interleaved", "--wait", "--timeout", "240"],
        cwd=deployed["project"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.split()[-1] == "success"
    deployed["timings"]["trigger_interleaved"] = time.monotonic() - start
    run_id = out.stdout.split()[0]

    # Every task's log is in the local S3, and the API server reads it from there. A worker uploads
    # a log just after it reports the task's state, so the last one may land after the run ends.
    tasks = ("extract_a", "transform_a", "load_a", "extract_b", "transform_b", "load_b")
    wanted = {f"logs/dag_id=example_interleaved/run_id={run_id}/task_id={t}/attempt=1.log" for t in tasks}
    deadline = time.monotonic() + 60
    while not wanted <= set(keys := task_log_keys(deployed)) and time.monotonic() < deadline:
        time.sleep(2)
    assert wanted <= set(keys), sorted(wanted - set(keys))
    access = AirflowAccess(deployed["url"], "admin", deployed["password"], "test", deployed["ca"])
    api = api_client(access)
    try:
        r = api.get(
            f"{deployed['url']}/api/v2/dags/example_interleaved/dagRuns/{run_id}/taskInstances/load_a/logs/1",
            params={"full_content": "true"},
        )
    finally:
        api.close()
    assert r.status_code == 200, r.text
    text = json.dumps(r.json()["content"])
    assert "a: total=6" in text, text[-2000:]
    assert f"s3://{swarm_dev.LOG_BUCKET}/logs/" in text, text[:1000]


def log_store(deployed: dict[str, Any]) -> Any:
    """A client of the deployment's local S3 (make up's state file names it)."""
    state = json.loads((deployed["project"] / ".run" / "local.json").read_text())
    return boto3.client(
        "s3",
        endpoint_url=state["task_logs"]["endpoint_url"],
        region_name=swarm_dev.LOG_REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def task_log_keys(deployed: dict[str, Any]) -> list[str]:
    pages = log_store(deployed).get_paginator("list_objects_v2").paginate(Bucket=swarm_dev.LOG_BUCKET)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


# ---- hardening (issue 9): HTTPS only, no default login, no secret where it does not belong -------


def stack_containers(swarm: docker.DockerClient) -> list[Any]:
    return swarm.containers.list(filters={"label": f"com.docker.stack.namespace={STACK}"})


def mounted_secret(swarm: docker.DockerClient, container: Any, name: str) -> str:
    """The secret `name` as Swarm mounted it in `container` (at /run/secrets/<name>), read from the
    file Swarm wrote for it on this host. Not with `docker exec cat`: exec sometimes loses the whole
    output of a command that ends at once (moby/moby#27289), and a read came back empty in a run."""
    service = swarm.services.get(container.labels["com.docker.swarm.service.id"])
    refs = service.attrs["Spec"]["TaskTemplate"]["ContainerSpec"].get("Secrets", [])
    ids = [r["SecretID"] for r in refs if r["File"]["Name"] == name]
    assert ids, f"{name} is not mounted in {service.name}"
    root = Path(swarm.info()["DockerRootDir"])
    return (root / "containers" / container.id / "mounts" / "secrets" / ids[0]).read_text()


def secret_values(swarm: docker.DockerClient) -> dict[str, str]:
    """The generated secrets, read from their source (the files Swarm mounts): in the api-server,
    and the TLS key in the proxy, the one service that mounts it."""
    containers = {c.labels.get("com.docker.swarm.service.name"): c for c in stack_containers(swarm)}
    values = {}
    for name in sec.SECRET_NAMES:
        if name == sec.TLS_CERT:
            continue  # public
        service = "proxy" if name == sec.TLS_KEY else "airflow-apiserver"
        value = mounted_secret(swarm, containers[f"{STACK}_{service}"], name).strip()
        values[name] = value.splitlines()[1] if name == sec.TLS_KEY else value  # a line of the key
    short = {name: len(v) for name, v in values.items() if len(v) < 24}
    assert not short, f"generated secrets are long; these are not (name: length): {short}"
    return values


def test_https_only_every_path_redirects(deployed: dict[str, Any]) -> None:
    for path in ("/", "/flower/", "/api/v2/dags", "/auth/login", "/execution/"):
        r = httpx.get(deployed["http_url"] + path, timeout=10)
        assert r.status_code == 301, path
        assert r.headers["location"].startswith("https://"), path
        assert not r.content or b"airflow" not in r.content.lower(), f"HTTP served content for {path}"
    https_port = deployed["url"].rsplit(":", 1)[1]
    r = httpx.get(f"http://127.0.0.1:{https_port}/", timeout=10)  # plain HTTP on the TLS port
    assert r.status_code == 400
    with httpx.Client(verify=tls_verify(deployed["ca"]), timeout=20) as client:
        assert client.get(deployed["url"] + "/").headers["strict-transport-security"].startswith("max-age=")


def test_no_default_or_guessable_login(deployed: dict[str, Any], swarm: docker.DockerClient) -> None:
    url, ca = deployed["url"], deployed["ca"]
    with httpx.Client(verify=tls_verify(ca), timeout=30) as client:
        for user, password in (("admin", "admin"), ("airflow", "airflow"), ("admin", ""), ("guest", "guest")):
            r = client.post(url + "/auth/token", json={"username": user, "password": password})
            assert r.status_code >= 400, f"{user}:{password} logged in"
            assert "access_token" not in r.text
        for path in ("/", "/flower/"):
            r = client.get(url + path, auth=("admin", "admin"), headers={"Accept": "application/json"})
            assert r.status_code == 401, f"basic auth admin:admin opened {path}"
    values = secret_values(swarm)
    assert len(set(values.values())) == len(values), "every secret is its own random value"
    rabbit = [
        c
        for c in stack_containers(swarm)
        if c.labels.get("com.docker.swarm.service.name") == f"{STACK}_rabbitmq"
    ]
    for container in rabbit:  # the broker's users: ours, no guest
        listed = container.exec_run(["rabbitmqctl", "-q", "list_users"])
        if listed.exit_code == 0:  # (needs the node's Erlang cookie; the image's root has it)
            assert "guest" not in listed.output.decode(), listed.output.decode()


def test_no_secret_in_stack_file_container_env_or_logs(
    deployed: dict[str, Any], swarm: docker.DockerClient
) -> None:
    values = secret_values(swarm)
    tokens = swarm.swarm.attrs["JoinTokens"]
    needles = {
        **values,
        "worker token": tokens["Worker"],
        "manager token": tokens["Manager"],
        "any token": "SWMTKN-",
    }
    swarm_dir = deployed["project"] / ".run" / "swarm"
    places: dict[str, str] = {
        "the stack file": (swarm_dir / "docker-compose-CeleryExecutor.yml").read_text(),
        "the proxy config": (swarm_dir / "proxy" / "nginx.conf").read_text(),
        "the make up state file": (deployed["project"] / ".run" / "local.json").read_text(),
        "make up's progress": "\n".join(deployed["progress"]),
    }
    for svc in swarm.services.list(filters={"label": f"com.docker.stack.namespace={STACK}"}):
        places[f"service spec {svc.name}"] = json.dumps(svc.attrs["Spec"])
        logs = subprocess.run(
            [swarm_dev.DOCKER_CLI, "service", "logs", "--raw", "--no-trunc", svc.name],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        places[f"logs of {svc.name}"] = logs.stdout + logs.stderr
    for container in stack_containers(swarm):
        name = container.labels.get("com.docker.swarm.service.name", container.name)
        places[f"environment of {name}"] = "\n".join(container.attrs["Config"].get("Env") or [])
        places[f"labels of {name}"] = json.dumps(container.attrs["Config"].get("Labels") or {})
        if "worker-" in name:  # task logs, the scaler's among them on the manager's worker
            found = container.exec_run(
                ["sh", "-c", 'find "${AIRFLOW_HOME:-/opt/airflow}/logs" -type f -exec cat {} + 2>/dev/null']
            )
            places[f"task logs in {name}"] = found.output.decode(errors="replace")
    s3 = log_store(deployed)
    places["task logs in the local S3"] = "\n".join(
        s3.get_object(Bucket=swarm_dev.LOG_BUCKET, Key=key)["Body"].read().decode(errors="replace")
        for key in task_log_keys(deployed)
    )
    leaks = [
        f"{what} is in {where}"
        for where, text in places.items()
        for what, value in needles.items()
        if value and value in text
    ]
    assert leaks == [], "\n".join(leaks)


# ---- broker loss (issue 19): tasks queued when the broker died still run -------------------------

SHIPPED_STACK = REPO / "docker" / "docker-compose-CeleryExecutor.yml"
# What the shipped stack sets (argued in glue/airtasks/stack/templates/stack.yml).
SHIPPED_QUEUED_TIMEOUT = 480.0
SHIPPED_QUEUED_CHECK = 30.0
# This test's own values, deployed with the module's stack (broker-loss.override.yml) so that it
# lasts minutes, not eight. The timeout still leaves room to lose and restart the broker before
# the scheduler takes the task back: a re-queue while the broker is still down fails the task.
TEST_QUEUED_TIMEOUT = 120.0
TEST_QUEUED_CHECK = 10.0
# Beyond timeout + check interval: a scheduler loop, the worker's start and the task's own run.
RECOVERY_MARGIN = 120
REQUEUE_EVENT = "stuck in queued reschedule"  # Airflow's event log name for a taken-back task
HOLD = "node.labels.airtasks.broker-loss-test == hold"  # a constraint no node meets


def docker_cli(*args: str, timeout: float = 300) -> str:
    out = subprocess.run(
        [swarm_dev.DOCKER_CLI, *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    assert out.returncode == 0, f"docker {' '.join(args)}: {out.stdout}{out.stderr}"
    return out.stdout


def service_containers(swarm: docker.DockerClient, name: str) -> list[Any]:
    return swarm.containers.list(  # type: ignore[no-any-return]
        filters={"label": f"com.docker.swarm.service.name={STACK}_{name}"}
    )


def wait_for(what: str, check: Any, timeout: float, interval: float = 2.0) -> Any:
    """Poll `check()` until it returns a truthy value; that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f} s waiting for {what}"
        time.sleep(interval)


def healthy_container(swarm: docker.DockerClient, name: str) -> Any:
    for container in service_containers(swarm, name):
        if container.attrs["State"].get("Health", {}).get("Status") == "healthy":
            return container
    return None


def broker_messages(swarm: docker.DockerClient) -> dict[str, int] | None:
    """queue -> messages, as `rabbitmqctl list_queues` shows them; None while the broker is down."""
    containers = service_containers(swarm, "rabbitmq")
    if not containers:
        return None
    listed = containers[0].exec_run(
        ["rabbitmqctl", "-q", "--no-table-headers", "list_queues", "name", "messages"]
    )
    if listed.exit_code != 0:
        return None
    rows = (line.split() for line in listed.output.decode().splitlines())
    return {row[0]: int(row[1]) for row in rows if len(row) == 2 and row[1].isdigit()}


def lose_the_broker(swarm: docker.DockerClient) -> None:
    """The broker's node is lost: RabbitMQ dies at once (SIGKILL, no goodbye to its clients) and
    its volume with it; a new, empty one starts (as Swarm would start it on a surviving manager,
    with a new local volume). A restart alone would not do: Celery's queues
    are durable and its messages persistent, so RabbitMQ would read them back from its volume;
    and purging the queue would lose the messages but keep every connection alive."""
    for container in service_containers(swarm, "rabbitmq"):
        container.kill()
    # Before Swarm's restart delay (5 s) is over, so no new task starts on the old volume.
    docker_cli("service", "scale", "--detach", f"{STACK}_rabbitmq=0")
    wait_for("the broker's task to stop", lambda: not service_containers(swarm, "rabbitmq"), 120)
    volume = f"{STACK}_rabbitmq-data"

    def volume_removed() -> bool:
        # The restart Swarm scheduled for the killed broker before the scale to 0 can create its
        # container (on the old volume) after a look at the service's containers: remove whatever
        # holds the volume, then the volume, until nothing holds it.
        for container in swarm.containers.list(all=True, filters={"volume": volume}):
            container.remove(force=True)
        try:
            swarm.volumes.get(volume).remove(force=True)
        except docker.errors.NotFound:
            return True
        except docker.errors.APIError as exc:
            if exc.status_code == 409:  # in use by a container created since the look above
                return False
            raise
        return True

    wait_for("the old broker's volume to be removed", volume_removed, 60)
    docker_cli("service", "scale", "--detach", f"{STACK}_rabbitmq=1")
    wait_for("a new broker to answer", lambda: broker_messages(swarm) is not None, 240, interval=3)


def airflow_config(container: Any, key: str) -> float:
    out = container.exec_run(["airflow", "config", "get-value", "scheduler", key], user="airflow")
    assert out.exit_code == 0, out.output.decode()
    return float(out.output.decode().strip().splitlines()[-1])


def test_tasks_queued_when_the_broker_is_lost_still_run(
    deployed: dict[str, Any], swarm: docker.DockerClient
) -> None:
    """The worker is held off, a run's task is queued and its message waits in RabbitMQ; the broker
    is lost with its messages. The scheduler takes the task back after `task_queued_timeout` and
    queues it again on the new broker, in the same try, and the run succeeds, with the re-queue
    in the task's event log. Runs last in this module: it restarts the broker."""
    # The shipped default is in the file; the deployed scheduler runs with the module's override's
    # shorter values, which shows the setting reaches Airflow's config from the service's env.
    timeout_env = "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT"
    check_env = "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL"
    shipped = yaml.safe_load(SHIPPED_STACK.read_text())["services"]["airflow-scheduler"]["environment"]
    assert float(shipped[timeout_env]) == SHIPPED_QUEUED_TIMEOUT
    assert float(shipped[check_env]) == SHIPPED_QUEUED_CHECK
    scheduler = healthy_container(swarm, "airflow-scheduler")
    assert scheduler is not None, "the scheduler is not healthy"
    assert airflow_config(scheduler, "task_queued_timeout") == TEST_QUEUED_TIMEOUT
    assert airflow_config(scheduler, "task_queued_timeout_check_interval") == TEST_QUEUED_CHECK

    worker_svc = f"{STACK}_worker-default"

    def release_worker(*, wait: bool = True) -> None:
        """Lift the placement rule that holds the worker off (a no-op when it is not there); with
        `wait`, until the worker runs (which needs a broker)."""
        docker_cli(
            "service", "update", f"--detach={str(not wait).lower()}", "--constraint-rm", HOLD, worker_svc
        )

    access = AirflowAccess(deployed["url"], "admin", deployed["password"], "test", deployed["ca"])
    run_id = f"broker-loss-{secrets.token_hex(4)}"  # its own run: other tests count theirs
    dag_url = f"{deployed['url']}/api/v2/dags/example_trigger_target"
    ti_url = f"{dag_url}/dagRuns/{run_id}/taskInstances/show_params"
    api = api_client(access)
    try:
        # No worker takes the queue's tasks (a global service: placed on no node).
        # (`--detach`: a global service placed on no node never "converges".)
        docker_cli("service", "update", "--detach", "--constraint-add", HOLD, worker_svc)
        wait_for("the worker to stop", lambda: not service_containers(swarm, "worker-default"), 300)

        r = api.post(
            f"{dag_url}/dagRuns",
            json={
                "dag_run_id": run_id,
                "logical_date": None,
                "conf": {"n": 2, "message": "after the broker loss"},
            },
        )
        assert r.status_code == 200, r.text
        wait_for("the task to be queued", lambda: api.get(ti_url).json().get("state") == "queued", 180)
        wait_for("its message in the broker", lambda: (broker_messages(swarm) or {}).get("default"), 60)

        lost_at = time.monotonic()
        lose_the_broker(swarm)
        back_at = time.monotonic()
        assert not (broker_messages(swarm) or {}).get("default"), "the new broker kept the message"
        assert api.get(ti_url).json()["state"] == "queued", "nothing but the timeout moves the task"
        release_worker()

        run_url = f"{dag_url}/dagRuns/{run_id}"
        state = wait_for(
            "the run to end",
            lambda: (s := api.get(run_url).json()["state"]) in ("success", "failed") and s,
            TEST_QUEUED_TIMEOUT + TEST_QUEUED_CHECK + RECOVERY_MARGIN,
            interval=3,
        )
        done_at = time.monotonic()
        deployed["timings"]["broker_loss_to_success"] = done_at - lost_at
        deployed["timings"]["broker_back_to_success"] = done_at - back_at
        assert state == "success", api.get(ti_url).text
        ti = api.get(ti_url).json()
        assert ti["state"] == "success"
        assert ti["try_number"] == 1, "a re-queue is the same try, not a retry"

        # As a user would look: the task's event log (Audit Log) shows why it was queued again.
        logs = api.get(
            f"{deployed['url']}/api/v2/eventLogs",
            params={"dag_id": "example_trigger_target", "run_id": run_id},
        ).json()["event_logs"]
        requeues = [e for e in logs if e["event"] == REQUEUE_EVENT]
        assert len(requeues) == 1, logs
        assert requeues[0]["task_id"] == "show_params"
        assert requeues[0]["try_number"] == 1
        assert f"longer than {float(TEST_QUEUED_TIMEOUT)} seconds" in requeues[0]["extra"]
        assert not [e for e in logs if e["event"] == "stuck in queued tries exceeded"], logs
    finally:
        api.close()
        # Back to the stack as deployed, without waiting: after a failure the broker may be gone,
        # and the worker would never converge.
        release_worker(wait=False)
