"""`make up MODE=swarm`: build the image, init a Swarm if needed, create secrets, deploy the stack
with its task logs in a local S3 (moto), as a cluster keeps them in its bucket.

Functions for `python -m airtasks_dev up --mode swarm` / `down` (the CLI wiring lives in
devstack/cli.py). Everything it generates lives under `<run_dir>/swarm/`; the admin password is
written once to a 0600 file there (never printed), and `<run_dir>/local.json` points
`airtasks trigger` at the proxy.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import boto3
import docker
import httpx
import yaml

from airtasks.errors import AirtasksError
from airtasks.sources.airflow_access import tls_verify
from airtasks.stack import secrets as sec
from airtasks.stack.render import QueueSpec, TaskLogs, write_stack
from airtasks_dev.devstack import moto
from airtasks_dev.images import base_image, stack_images

STACK_NAME = "airtasks"
# Task logs: a bucket in a moto server of this deployment's own (state under <run_dir>/swarm/s3).
LOG_BUCKET = "airtasks-local-logs"
LOG_REGION = "us-east-1"
DOCKER_CLI = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else (shutil.which("docker") or "docker")


class SwarmDevError(AirtasksError):
    """The local Swarm deployment failed; the message says where to look."""


@dataclass(frozen=True)
class SwarmDeployment:
    stack: str
    url: str
    username: str
    password_file: Path | None  # None when the secret existed before and no file was kept
    ca_bundle: Path
    stack_file: Path
    state_file: Path
    seconds: float  # deploy to healthy


def docker_client() -> docker.DockerClient:
    """The local Docker daemon, or a SwarmDevError that says how to get one."""
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except docker.errors.DockerException as exc:
        raise SwarmDevError(
            f"cannot reach Docker ({exc}); start dockerd (MODE=swarm needs Docker), or use MODE=local"
        ) from None
    return client


def leave_swarm() -> None:
    """Leave (and so dissolve) the single-node Swarm `make up` created."""
    with contextlib.suppress(docker.errors.APIError):
        docker_client().swarm.leave(force=True)


def ensure_swarm(client: docker.DockerClient, advertise_addr: str = "127.0.0.1") -> bool:
    """Init a single-node Swarm unless this daemon is in one; True if it was created now."""
    state = client.info().get("Swarm", {})
    if state.get("LocalNodeState") == "active":
        if not state.get("ControlAvailable"):
            raise SwarmDevError("this Docker daemon is a Swarm worker; run `make up MODE=swarm` on a manager")
        return False
    client.swarm.init(advertise_addr=advertise_addr, listen_addr=f"{advertise_addr}:2377")
    return True


def label_local_node(client: docker.DockerClient, queues: Sequence[QueueSpec]) -> None:
    """On a one-node Swarm the manager also serves the first worker queue (label it so)."""
    node = client.nodes.get(client.info()["Swarm"]["NodeID"])
    spec = node.attrs["Spec"]
    labels = dict(spec.get("Labels") or {})
    labels.update({"airtasks.role": "manager"})
    if queues:
        labels.setdefault("airtasks.queue", queues[0].name)
    spec["Labels"] = labels
    node.update(spec)


def deploy(stack_file: Path | Sequence[Path], env: Mapping[str, str], stack: str = STACK_NAME) -> None:
    """`docker stack deploy` of one or more compose files (the CLI interpolates `env` into them)."""
    files = [stack_file] if isinstance(stack_file, Path) else list(stack_file)
    out = subprocess.run(
        [DOCKER_CLI, "stack", "deploy", "--prune", *[a for f in files for a in ("-c", str(f))], stack],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode:
        raise SwarmDevError(f"docker stack deploy failed: {out.stderr.strip() or out.stdout.strip()}")


def wait_ready(
    url: str,
    ca_bundle: str | bool,
    timeout: float = 600.0,
    progress: Callable[[str], None] | None = None,
) -> float:
    """Until the UI answers through the proxy and Airflow reports a healthy scheduler; seconds taken."""
    start = time.monotonic()
    last = ""
    while True:
        try:
            r = httpx.get(f"{url}/api/v2/monitor/health", verify=tls_verify(ca_bundle), timeout=5)
            body = r.json() if r.status_code == 200 else {}
            status = (body.get("scheduler") or {}).get("status", f"http {r.status_code}")
        except (httpx.HTTPError, ValueError) as exc:
            status = type(exc).__name__
        if status == "healthy":
            return time.monotonic() - start
        if progress is not None and status != last:
            progress(f"waiting for Airflow behind {url}: {status}")
        last = status
        if time.monotonic() - start > timeout:
            raise SwarmDevError(
                f"Airflow did not become healthy behind {url} within {timeout:.0f}s; "
                f"see `docker stack ps {STACK_NAME}` and `docker service logs {STACK_NAME}_airflow-apiserver`"
            )
        time.sleep(3)


def create_stack_secrets(
    client: docker.DockerClient,
    run_dir: Path,
    tls_hostnames: Sequence[str],
    given: Mapping[str, bytes] | None = None,
) -> tuple[Path | None, Path]:
    """Secrets absent from the Swarm are created; returns (admin password file, CA bundle for the proxy)."""
    out = run_dir / "swarm"
    out.mkdir(parents=True, exist_ok=True)
    password_file = out / "admin_password"
    ca_file = out / "tls_cert.pem"
    values = dict(given or {})
    present = sec.existing_secrets(client)
    if sec.TLS_CERT not in present and sec.TLS_KEY not in present and sec.TLS_CERT not in values:
        cert, key = sec.self_signed(tls_hostnames)
        values[sec.TLS_CERT], values[sec.TLS_KEY] = cert, key
    if sec.TLS_CERT in values:
        ca_file.write_bytes(values[sec.TLS_CERT])  # public: the client's trust anchor
    if sec.ADMIN_PASSWORD not in present and password_file.exists():
        password_file.unlink()  # a stale file from an earlier Swarm

    def keep(password: bytes) -> None:
        sec.write_private_file(password_file, password)

    sec.create_secrets(client, given=values, on_admin_password=keep)
    if sec.ADMIN_PASSWORD in values and not password_file.exists():
        sec.write_private_file(password_file, values[sec.ADMIN_PASSWORD])
    return (password_file if password_file.exists() else None), ca_file


def start_log_store(client: docker.DockerClient, run_dir: Path) -> str:
    """The local S3 for task logs: moto on docker_gwbridge's gateway, the host address the stack's
    containers reach, with the log bucket made. Returns the endpoint URL."""
    try:
        gateway = client.networks.get("docker_gwbridge").attrs["IPAM"]["Config"][0]["Gateway"]
    except (docker.errors.NotFound, KeyError, IndexError):
        raise SwarmDevError(
            "no docker_gwbridge network with a gateway: the Swarm's containers have no way to the host; "
            "re-create the Swarm (docker swarm leave --force, then make up MODE=swarm)"
        ) from None
    info = moto.start(run_dir / "swarm" / "s3", host=str(gateway))
    s3 = boto3.client(
        "s3",
        endpoint_url=info.url,
        region_name=LOG_REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=LOG_BUCKET)
    return info.url


def _s3_env(url: str) -> dict[str, str]:
    """What the Airflow services need to reach the local S3: its endpoint and moto's dummy keys
    (not secrets: moto accepts any)."""
    return {"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def write_log_store_override(stack_file: Path, url: str) -> Path:
    """A compose file that points every Airflow service of the stack at the local S3."""
    services = yaml.safe_load(stack_file.read_text())["services"]
    env = _s3_env(url)
    override = {
        "version": "3.8",
        "services": {n: {"environment": env} for n in services if n.startswith(("airflow-", "worker-"))},
    }
    path = stack_file.with_name("task-logs.override.yml")
    path.write_text(yaml.safe_dump(override, sort_keys=True))
    return path


def up_swarm(
    run_dir: Path,
    *,
    queues: Sequence[QueueSpec] = (QueueSpec("default", 4),),
    https_port: int = 8443,
    http_port: int = 8480,
    images: Mapping[str, str] | None = None,
    stack: str = STACK_NAME,
    manager_slots: int = 2,
    extra_stack_files: Sequence[Path] = (),
    given_secrets: Mapping[str, bytes] | None = None,
    timeout: float = 600.0,
    progress: Callable[[str], None] = print,
) -> SwarmDeployment:
    """Build (unless `images` names them), Swarm, secrets, deploy, wait; write the state file.

    `images`: the stack's image variables (`AIRTASKS_IMAGE`, `AIRTASKS_POSTGRES_IMAGE`, ...); by
    default `airtasks_dev.images.stack_images()` builds them (build logs in `<run_dir>/images/`).
    `extra_stack_files` are deployed on top (compose overrides); `given_secrets` supplies values for
    secrets that do not exist yet.
    """
    client = docker_client()
    if ensure_swarm(client):
        progress("initialised a single-node Swarm (advertise 127.0.0.1)")
    label_local_node(client, queues)
    if images is None:
        progress(f"building the stack's images on {base_image()} (cached by content; minutes the first time)")
        images = stack_images(run_dir / "images")
    env = dict(images)
    env.update(AIRTASKS_HTTPS_PORT=str(https_port), AIRTASKS_HTTP_PORT=str(http_port))
    password_file, ca_file = create_stack_secrets(client, run_dir, ["localhost", "127.0.0.1"], given_secrets)
    stack_file = run_dir / "swarm" / "docker-compose-CeleryExecutor.yml"
    logs_url = start_log_store(client, run_dir)
    task_logs = TaskLogs.parse(f"s3://{LOG_BUCKET}/logs", LOG_REGION)
    write_stack(stack_file, queues, manager_slots, task_logs=task_logs)
    progress(f"task logs: {task_logs.url} on the local S3 {logs_url}")
    progress(f"docker stack deploy {stack}")
    deploy([stack_file, write_log_store_override(stack_file, logs_url), *extra_stack_files], env, stack)
    url = f"https://127.0.0.1:{https_port}"
    seconds = wait_ready(url, str(ca_file), timeout, progress)
    state_file = run_dir / "local.json"
    state = {
        "mode": "swarm",
        "url": url,
        "username": "admin",
        "ca_bundle": str(ca_file),
        "stack": stack,
        "seconds_to_healthy": round(seconds, 1),
        "task_logs": {"url": task_logs.url, "endpoint_url": logs_url},
    }
    if password_file is not None:
        state["password_file"] = str(password_file)
    state_file.write_text(json.dumps(state, indent=2) + "\n")
    where = password_file or "the Swarm secret airtasks_admin_password"
    progress(f"Air-Tasks is up after {seconds:.0f}s: {url} (user admin, password in {where})")
    return SwarmDeployment(stack, url, "admin", password_file, ca_file, stack_file, state_file, seconds)


def down_swarm(
    run_dir: Path,
    *,
    stack: str = STACK_NAME,
    remove_secrets: bool = False,
    timeout: float = 120.0,
    grace: float = 30.0,
) -> None:
    """`docker stack rm`, wait until its containers and network are gone; optionally drop the secrets.

    Containers that outlive the stack are removed by force: a stopped one at once, since Swarm never
    removes a container whose task it has lost (a daemon restart), and a running one after `grace`,
    since a worker's warm shutdown waits out its running task for up to the stack's stop grace
    period (1 h), and the stack's database is going anyway."""
    client = docker_client()
    subprocess.run([DOCKER_CLI, "stack", "rm", stack], capture_output=True, text=True, check=False)
    started = time.monotonic()
    label = {"label": f"com.docker.stack.namespace={stack}"}
    while time.monotonic() < started + timeout:
        # The low-level list: `containers.list` inspects each container, and one that Swarm removes
        # meanwhile makes it raise NotFound.
        containers = client.api.containers(all=True, filters=label)
        networks = client.networks.list(filters=label)
        if not containers and not networks:
            break
        overdue = time.monotonic() - started >= grace
        for container in containers:
            if overdue or container["State"] != "running":
                with contextlib.suppress(docker.errors.APIError):
                    client.api.remove_container(container["Id"], force=True)
        if overdue and not containers:
            # `stack rm` leaves a network that a container still held when it ran.
            for network in networks:
                with contextlib.suppress(docker.errors.APIError):
                    network.remove()
        time.sleep(1)
    for volume in client.volumes.list(filters=label):
        with contextlib.suppress(docker.errors.APIError):
            volume.remove(force=True)
    for config in client.configs.list(filters=label):
        with contextlib.suppress(docker.errors.APIError):
            config.remove()
    moto.stop(run_dir / "swarm" / "s3")  # the local S3 and the task logs in it go with the stack
    if remove_secrets:
        for secret in client.secrets.list():
            if secret.name in sec.SECRET_NAMES:
                with contextlib.suppress(docker.errors.APIError):
                    secret.remove()
        shutil.rmtree(run_dir / "swarm", ignore_errors=True)
    state = run_dir / "local.json"
    if state.exists() and json.loads(state.read_text()).get("mode") == "swarm":
        state.unlink()
