"""What the cluster-in-a-box tests deploy: the test image (the Air-Tasks image plus tests/e2e/dags)
and the compose override (docker/docker-compose.test.yml plus tests/e2e/cluster.override.yml);
`boxed()` brings such a box up for a test module (the chain, manager HA) and keeps a post-mortem."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from airtasks_dev.images import ImageSpec, build
from airtasks_dev.localcloud.box import Box, BoxConfig, deploy, push_stack_images, stack_refs
from airtasks_dev.localcloud.cloud import LocalCloud
from airtasks_dev.localcloud.node import HOST_DOCKER_CLI
from tests.support.artifacts import ARTIFACTS

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
OVERRIDES = (REPO / "docker" / "docker-compose.test.yml", HERE / "cluster.override.yml")

# The box every cluster-in-a-box test shares (tests/e2e/conftest.py `box`): three managers (high
# availability), one worker queue of up to 3 nodes with 2 slots each.
CLUSTER = "chain"
MANAGERS = 3
QUEUE = "default"
SLOTS = 2
MAX_NODES = 3
# Short windows so the chain fits in CI: a pass every 3 s, the group may shrink after 10 s below
# its size, a node after 5 s without a task.
SCALER = {"interval_seconds": 3, "stabilization_seconds": 10, "idle_seconds": 5}
BURST_DAG = "airtasks_e2e_burst"  # tests/e2e/dags: six tasks on `default`, `seconds` long each


def e2e_image(base: str) -> str:
    """`base` (the Air-Tasks image) with the e2e DAGs on top; built once per content hash."""
    spec = ImageSpec(
        repository="airtasks-e2e",
        dockerfile=HERE / "images" / "airtasks-e2e.Dockerfile",
        context=HERE,
        include=(".dockerignore", "images/airtasks-e2e.Dockerfile", "dags"),
        build_args={"BASE_IMAGE": base},
    )
    return build(spec, log=ARTIFACTS / "build-airtasks-e2e.log").tag


def _merge(into: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    for key, value in other.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value
    return into


def compose_override() -> str:
    """One compose file: the stack tests' timing overrides and the chain's own."""
    merged: dict[str, Any] = {}
    for path in OVERRIDES:
        _merge(merged, yaml.safe_load(path.read_text()))
    return yaml.safe_dump(merged, sort_keys=False)


def config() -> BoxConfig:
    """envs/local's variables for the shared box (besides the stack's images)."""
    return BoxConfig(
        cluster=CLUSTER,
        queues={
            QUEUE: {
                "instance_types": ["t3.small"],
                "min_size": 0,
                "max_size": MAX_NODES,
                "slots_per_node": SLOTS,
            }
        },
        scaler=SCALER,
        compose_override=compose_override(),
        manager_count=MANAGERS,
    )


@contextlib.contextmanager
def boxed(
    cloud: LocalCloud, stack_images: Mapping[str, str], workdir: Path, config: BoxConfig
) -> Iterator[Box]:
    """envs/local applied with the stack (the test image), images pushed while Terraform runs;
    yields once the UI answers through the proxy; on the way out the stack's state goes to
    tests/artifacts/<cluster>-services.log."""
    started = time.monotonic()
    images = {**stack_images, "AIRTASKS_IMAGE": e2e_image(stack_images["AIRTASKS_IMAGE"])}
    with ThreadPoolExecutor(max_workers=1) as pool, cloud.runner(config.cluster) as runner:
        pushed = pool.submit(push_stack_images, cloud.registry, images)
        box = deploy(
            cloud,
            runner,
            workdir,
            config,
            stack_refs(cloud.registry, images),
            images_pushed=pushed.result,
            progress=lambda line: print(f"box {config.cluster}: {line}", flush=True),
        )
        print(f"box {config.cluster}: up after {time.monotonic() - started:.0f}s: {box.timings}")
        try:
            yield box
        finally:
            dump_stack(box)


def dump_stack(box: Box) -> None:
    """`docker service ps` and log tails of the stack on the manager, for a post-mortem."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{box.config.cluster}-services.log"
    with contextlib.suppress(Exception), open(path, "w") as fh:
        fh.write(box.runner.describe() + "\n")
        for args in (["service", "ls"], ["node", "ls"]):
            fh.write(box.manager.run([HOST_DOCKER_CLI, *args], check=False).stdout)
        names = box.manager.run([HOST_DOCKER_CLI, "service", "ls", "--format", "{{.Name}}"], check=False)
        for name in names.stdout.split():
            fh.write(f"== {name}\n")
            for args in (["service", "ps", "--no-trunc", name], ["service", "logs", "--tail", "40", name]):
                out = box.manager.run([HOST_DOCKER_CLI, *args], check=False, timeout=60)
                fh.write(out.stdout[-5000:] + out.stderr[-5000:])
