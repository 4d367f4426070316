"""The cluster in a box: `envs/local` applied against the local cloud with its `stack` set.

Nothing is simulated past the AWS API: Terraform builds the network, the manager instance and the
worker groups in moto; the manager instance boots from its user data on a node (Swarm init, join
info to SSM, secrets, `docker stack deploy` of images pulled from the run's registry); the scaler
DAG on it resizes the groups, and every worker instance the group starts boots and joins.

    with local_cloud(workdir) as cloud:
        refs = push_stack_images(cloud.registry, stack_images())   # host images -> node refs
        with cloud.runner("demo") as runner:
            box = deploy(cloud, runner, workdir, BoxConfig("demo"), refs, progress=print)
            box.url, box.password_file, box.ca_bundle                 # the UI through the proxy

Used by the e2e chain (`tests/e2e/test_cluster.py`) and by `make up MODE=cluster`, whose
background process is `python -m airtasks_dev.localcloud.box serve` (`main()` below).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airtasks_dev.devstack.swarm import wait_ready
from airtasks_dev.devstack.terraform import Terraform
from airtasks_dev.localcloud._sys import LocalCloudError
from airtasks_dev.localcloud.cloud import LocalCloud, local_cloud
from airtasks_dev.localcloud.node import Node
from airtasks_dev.localcloud.registry import Registry
from airtasks_dev.localcloud.runner import NodeRunner

REPO = Path(__file__).resolve().parents[3]
ENV_ROOT = REPO / "envs" / "local"
# The stack's image variables (dev/airtasks_dev/images.py `stack_images()`) -> envs/local `stack` fields.
IMAGE_FIELDS = {
    "AIRTASKS_IMAGE": "image",
    "AIRTASKS_POSTGRES_IMAGE": "postgres_image",
    "AIRTASKS_RABBITMQ_IMAGE": "rabbitmq_image",
    "AIRTASKS_PROXY_IMAGE": "proxy_image",
}
STACK_DIR = "/etc/airtasks"  # where the manager's boot script leaves the login and the certificate
DEFAULT_QUEUES: dict[str, dict[str, Any]] = {
    "default": {"instance_types": ["t3.small"], "min_size": 0, "max_size": 3, "slots_per_node": 2}
}

Progress = Callable[[str], None]


@dataclass(frozen=True)
class BoxConfig:
    """What envs/local is applied with (besides the stack's images)."""

    cluster: str = "local"
    queues: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: dict(DEFAULT_QUEUES))
    scaler: Mapping[str, float] = field(default_factory=dict)  # interval/stabilization/idle seconds
    compose_override: str | None = None  # a compose file deployed on top of the stack
    region: str = "us-east-1"
    manager_count: int = 1  # 3 or 5: an Auto Scaling group of managers (high availability)
    # envs/local `dag_bundles` (docs/dag-bundles.md): your git repositories and bucket folders.
    dag_bundles: tuple[Mapping[str, Any], ...] = ()


@dataclass
class Box:
    """A deployed cluster: its manager node, the UI through the proxy, the login, the outputs."""

    config: BoxConfig
    runner: NodeRunner
    terraform: Terraform
    outputs: dict[str, Any]
    manager: Node
    url: str
    password_file: Path
    ca_bundle: Path
    timings: dict[str, float] = field(default_factory=dict)  # seconds, in order
    started: float = 0.0  # time.monotonic() when the deploy began
    variables: dict[str, Any] = field(default_factory=dict)  # what envs/local was applied with

    @property
    def manager_id(self) -> str:
        """The manager that initialised the Swarm (the lowest id of the managers' group)."""
        return str(self.outputs["manager_instance_id"])

    @property
    def manager_group(self) -> str:
        """The managers' Auto Scaling group."""
        return str(self.outputs["manager_group"])

    def groups(self) -> dict[str, str]:
        return {q: str(g) for q, g in self.outputs["worker_groups"].items()}


def _name(image: str) -> str:
    """The registry name of a host image: its repository, tag `box`."""
    last = image.rsplit("/", 1)[-1]
    repository = image.rsplit(":", 1)[0] if ":" in last else image
    return f"{repository}:box"


def stack_refs(registry: Registry, images: Mapping[str, str]) -> dict[str, str]:
    """The envs/local `stack` fields for the stack's host images (AIRTASKS_IMAGE, ...): the
    references the nodes pull from the run's registry (known before the push)."""
    return {
        IMAGE_FIELDS[var]: registry.ref(_name(image)) for var, image in images.items() if var in IMAGE_FIELDS
    }


def push_stack_images(registry: Registry, images: Mapping[str, str]) -> None:
    """Push the stack's host images to the run's registry, each distinct one once, two at a time."""
    distinct = sorted(set(images.values()))
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda image: registry.push(image, _name(image)), distinct))


def terraform(cloud: LocalCloud, workdir: Path) -> Terraform:
    """Terraform on envs/local against the run's moto (on the bridge, where nodes reach it too)."""
    return Terraform(ENV_ROOT, workdir, cloud.aws_env(), REPO / "terraform.rc")


def tf_variables(config: BoxConfig, stack: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "cluster_name": config.cluster,
        "region": config.region,
        "queues": {q: dict(v) for q, v in config.queues.items()},
        "scaler": dict(config.scaler),
        "manager_count": config.manager_count,
        "dag_bundles": [dict(b) for b in config.dag_bundles],
        "stack": {
            **stack,
            **({"compose_override": config.compose_override} if config.compose_override else {}),
        },
    }


def read_login(manager: Node, out_dir: Path) -> tuple[Path, Path]:
    """Copy the admin password (0600) and the proxy's certificate from the manager to out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    found = []
    for name, mode in (("admin_password", 0o600), ("tls_cert.pem", 0o644)):
        source = manager.path(f"{STACK_DIR}/{name}")
        if not source.is_file():
            raise LocalCloudError(f"the manager left no {STACK_DIR}/{name}; see {manager.boot_log}")
        target = out_dir / name
        target.unlink(missing_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(source.read_bytes())
        found.append(target)
    return found[0], found[1]


def deploy(
    cloud: LocalCloud,
    runner: NodeRunner,
    workdir: Path,
    config: BoxConfig,
    stack: Mapping[str, Any],
    *,
    images_pushed: Callable[[], None] | None = None,
    timeout: float = 600,
    progress: Progress = print,
) -> Box:
    """`terraform apply` of envs/local with the stack, then wait until the manager booted and the UI
    answers through the proxy. `images_pushed`, if given, blocks until the nodes can pull the
    images: Terraform runs meanwhile (the manager's boot script retries its pull)."""
    timings: dict[str, float] = {}
    start = time.monotonic()
    tf = terraform(cloud, workdir / "terraform")
    progress(f"terraform apply envs/local (cluster {config.cluster}; log {tf.log})")
    tf.init()
    variables = tf_variables(config, stack)
    tf.apply(variables)
    outputs = tf.outputs()
    timings["terraform_apply"] = time.monotonic() - start
    manager_id = str(outputs["manager_instance_id"])
    progress(f"manager {manager_id} booting (boot log {runner.workdir / manager_id / 'boot.log'})")
    if images_pushed is not None:
        images_pushed()
        timings["images_pushed"] = time.monotonic() - start
    manager = runner.wait_booted(manager_id, timeout=timeout)
    if manager.timings.exit_code != 0:
        raise LocalCloudError(f"the manager's boot script failed:\n{runner.describe()}")
    timings["manager_booted"] = time.monotonic() - start
    password_file, ca_bundle = read_login(manager, workdir)
    url = f"https://{manager.address}"
    progress(f"stack deployed; waiting for Airflow behind {url}")
    wait_ready(url, str(ca_bundle), timeout=timeout, progress=progress)
    timings["ui_ready"] = time.monotonic() - start
    return Box(config, runner, tf, outputs, manager, url, password_file, ca_bundle, timings, start, variables)


# ------------------------------------------------------------------------------------------------
# `make up MODE=cluster`: the local cloud as a background process until SIGTERM
# ------------------------------------------------------------------------------------------------
def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


def serve(run_dir: Path, config: BoxConfig, images: Mapping[str, str]) -> None:
    """Bring the box up under run_dir, record it in run_dir/box.json, and keep it (also when it
    failed, for a look at its logs) until the process is told to stop (SIGTERM: `make down`)."""
    state_file = run_dir / "box.json"
    state: dict[str, Any] = {"pid": os.getpid(), "status": "starting", "cluster": config.cluster}
    _write_json(state_file, state)

    def progress(line: str) -> None:
        print(f"cluster: {line}", flush=True)

    try:
        with local_cloud(run_dir / "cloud") as cloud, ThreadPoolExecutor(max_workers=1) as pool:
            state.update(moto=cloud.moto.url, registry=cloud.registry.address, gateway=cloud.network.gateway)
            _write_json(state_file, state)
            progress(f"local cloud: moto {cloud.moto.url}, registry {cloud.registry.address}")
            pushed = pool.submit(push_stack_images, cloud.registry, images)
            progress("pushing the stack's images to the registry (in the background)")
            with cloud.runner(config.cluster) as runner:
                try:
                    box = deploy(
                        cloud,
                        runner,
                        run_dir,
                        config,
                        stack_refs(cloud.registry, images),
                        images_pushed=pushed.result,
                        progress=progress,
                    )
                except Exception as exc:
                    traceback.print_exc()
                    state.update(status="failed", error=str(exc).splitlines()[0], nodes=str(runner.workdir))
                    _write_json(state_file, state)
                    while True:  # until SIGTERM
                        time.sleep(5)
                state.update(
                    status="ready",
                    url=box.url,
                    username="admin",
                    password_file=str(box.password_file),
                    ca_bundle=str(box.ca_bundle),
                    manager=box.manager_id,
                    manager_docker=str(_link_manager_socket(box, run_dir)),
                    groups=box.groups(),
                    nodes=str(runner.workdir),
                    timings={k: round(v, 1) for k, v in box.timings.items()},
                )
                _write_json(state_file, state)
                progress(f"ready: {box.url}")
                while True:  # until SIGTERM
                    time.sleep(5)
                    _link_manager_socket(box, run_dir)
    finally:
        progress("stopped: nodes, registry, moto and the network are gone")
        state["status"] = "stopped"
        _write_json(state_file, state)


def _stop(signum: int, frame: object) -> None:
    """SIGTERM / SIGINT: unwind (every context manager cleans up); a second signal is ignored."""
    del frame
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise SystemExit(128 + signum)


def _link_manager_socket(box: Box, run_dir: Path) -> Path:
    """run_dir/manager.sock -> the manager node's docker socket (`DOCKER_HOST=unix://...`)."""
    link = run_dir / "manager.sock"
    target = Path(box.manager.docker_socket)
    if not link.is_symlink() or Path(os.readlink(link)) != target:
        tmp = run_dir / "manager.sock.tmp"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(target)
        tmp.replace(link)
    return link


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m airtasks_dev.localcloud.box")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("serve", help="bring the cluster in a box up and keep it until SIGTERM")
    run.add_argument("--run-dir", type=Path, required=True)
    run.add_argument("--cluster", default="local")
    run.add_argument("--images", required=True, help="JSON: the stack's image variables -> host images")
    run.add_argument("--config", default="{}", help="JSON: queues, scaler, compose_override")
    args = parser.parse_args(argv)
    config = BoxConfig(cluster=args.cluster, **json.loads(args.config))
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _stop)
    args.run_dir.mkdir(parents=True, exist_ok=True)
    serve(args.run_dir, config, json.loads(args.images))
    return 0


if __name__ == "__main__":
    sys.exit(main())
