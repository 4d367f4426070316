"""What the cluster-in-a-box tests deploy: the test image (the Air-Tasks image plus tests/e2e/dags,
and the CA of the box's git server), the compose override (docker/docker-compose.test.yml plus
tests/e2e/cluster.override.yml) and two DAG bundles (a git repository on the box's git server, a
folder of the cluster's bucket); `boxed()` brings such a box up for a test module (the chain,
manager HA) and keeps a post-mortem."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
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
# availability), one worker queue of up to 3 spot nodes with 2 slots each (spot: every worker runs
# the interruption watcher, which test_cluster_spot.py serves a notice).
CLUSTER = "chain"
MANAGERS = 3
QUEUE = "default"
SLOTS = 2
MAX_NODES = 3
# Short windows so the chain fits in CI: a pass every 3 s, the group may shrink after 10 s below
# its size, a node after 5 s without a task.
SCALER = {"interval_seconds": 3, "stabilization_seconds": 10, "idle_seconds": 5}
BURST_DAG = "airtasks_e2e_burst"  # tests/e2e/dags: six tasks on `default`, `seconds` long each
SPOT_DAG = "airtasks_e2e_spot"  # tests/e2e/dags: a long and a short task on `default`, no retries

# The box's DAG bundles (tests/e2e/test_cluster_dags.py): a repository on the box's git server,
# fetched every GIT_REFRESH seconds, and the cluster bucket's `shared/` folder. Short refreshes so a
# change lands within the test; 10 s is the least the modules take.
GIT_REPO = "team"
GIT_BUNDLE = "team"
GIT_SUBDIR = "dags"
GIT_REFRESH = 10
BUCKET_BUNDLE = "shared"
BUCKET_PREFIX = "shared/"
BUCKET_REFRESH = 10
VERSIONED_DAG = "box_team_versioned"  # in the repository's first commit


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


def git_ca_image(base: str, ca_file: Path) -> str:
    """`base` with `ca_file` trusted by git (images/airtasks-e2e-git-ca.Dockerfile). The context is
    a directory of its own holding the CA alone: the git server's key stays out of every image."""
    with tempfile.TemporaryDirectory(prefix="airtasks-git-ca-") as tmp:
        context = Path(tmp)
        dockerfile = context / "Dockerfile"
        shutil.copyfile(HERE / "images" / "airtasks-e2e-git-ca.Dockerfile", dockerfile)
        shutil.copyfile(ca_file, context / "git-ca.pem")
        spec = ImageSpec(
            repository="airtasks-e2e-git-ca",
            dockerfile=dockerfile,
            context=context,
            include=("Dockerfile", "git-ca.pem"),
            build_args={"BASE_IMAGE": base},
        )
        return build(spec, log=ARTIFACTS / "build-airtasks-e2e-git-ca.log").tag


def bundle_dag(dag_id: str, marker: str) -> str:
    """A user's DAG for a bundle: `hold` sleeps `seconds` (a param, default 0), then `say` prints
    `marker`, a module constant: which commit a task ran shows in its log."""
    return f'''"""{dag_id}: a DAG of the box's bundles (tests/e2e/test_cluster_dags.py)."""

import time

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

MARKER = {marker!r}


@dag(
    dag_id={dag_id!r},
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    params={{"seconds": Param(0, type="integer", minimum=0, maximum=600)}},
)
def the_dag():
    @task(queue="default")
    def hold():
        time.sleep(int(get_current_context()["params"]["seconds"]))

    @task(queue="default")
    def say():
        print(f"the marker is {{MARKER}}")
        return MARKER

    hold() >> say()


the_dag()
'''


def first_commit() -> dict[str, str]:
    """The repository's first commit: the versioned test's DAG, and a file outside the DAG folder."""
    return {
        f"{GIT_SUBDIR}/{VERSIONED_DAG}.py": bundle_dag(VERSIONED_DAG, "first-commit-marker"),
        "README.md": "The box's DAG repository; the DAGs are under dags/.\n",
    }


def dag_bundles(git_url: str) -> tuple[dict[str, Any], ...]:
    """envs/local `dag_bundles` of the shared box."""
    return (
        {
            "name": GIT_BUNDLE,
            "git": {"url": git_url, "ref": "main", "subdir": GIT_SUBDIR, "refresh_seconds": GIT_REFRESH},
        },
        {"name": BUCKET_BUNDLE, "bucket": {"prefix": BUCKET_PREFIX, "refresh_seconds": BUCKET_REFRESH}},
    )


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


def config(git_url: str) -> BoxConfig:
    """envs/local's variables for the shared box (besides the stack's images); `git_url` is the
    repository of its git bundle."""
    return BoxConfig(
        cluster=CLUSTER,
        queues={
            QUEUE: {
                "instance_types": ["t3.small"],
                "min_size": 0,
                "max_size": MAX_NODES,
                "slots_per_node": SLOTS,
                "spot": True,
            }
        },
        scaler=SCALER,
        compose_override=compose_override(),
        manager_count=MANAGERS,
        dag_bundles=dag_bundles(git_url),
    )


@contextlib.contextmanager
def boxed(
    cloud: LocalCloud,
    stack_images: Mapping[str, str],
    workdir: Path,
    config: BoxConfig,
    git_ca: Path | None = None,
) -> Iterator[Box]:
    """envs/local applied with the stack (the test image; with `git_ca`, one whose git trusts that
    CA), images pushed while Terraform runs; yields once the UI answers through the proxy; on the
    way out the stack's state goes to tests/artifacts/<cluster>-services.log."""
    started = time.monotonic()
    image = e2e_image(stack_images["AIRTASKS_IMAGE"])
    if git_ca is not None:
        image = git_ca_image(image, git_ca)
    images = {**stack_images, "AIRTASKS_IMAGE": image}
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
