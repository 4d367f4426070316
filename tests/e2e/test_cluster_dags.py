"""Your DAGs in the cluster in a box: a git bundle on a real git server and a bucket bundle in the
cluster's bucket (docs/dag-bundles.md), through the REST API as a user sees them.

The git server is `git http-backend` over HTTPS with its own CA on the box's bridge
(tests/e2e/conftest.py `box_git`); the nodes trust the CA as a user's would, from an image built on
the Air-Tasks image (tests/e2e/images/airtasks-e2e-git-ca.Dockerfile). Nothing is faked past the
git protocol: the dag-processor on a manager fetches the repository, a worker the scaler started
checks out the commit its run recorded. The bucket bundle reads the cluster's bucket in moto, where
the test uploads as `aws s3 sync` would.

Runs on the shared box after the chain (test_cluster.py, which leaves the group empty) and before
the manager-HA test: pytest's file order, kept by tests/e2e/conftest.py. What it measured goes to
tests/artifacts/dag-bundles-box.txt.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import httpx
import pytest

from airtasks_dev.localcloud.box import Box
from airtasks_dev.localcloud.cloud import LocalCloud
from airtasks_dev.localcloud.node import HOST_DOCKER_CLI
from tests.e2e.airflow_rest import epoch, log_in, run_state, task_instances, trigger
from tests.e2e.chain import (
    BUCKET_BUNDLE,
    BUCKET_PREFIX,
    BUCKET_REFRESH,
    GIT_BUNDLE,
    GIT_REFRESH,
    GIT_REPO,
    GIT_SUBDIR,
    QUEUE,
    VERSIONED_DAG,
    bundle_dag,
)
from tests.e2e.helpers import clients, group_state, wait
from tests.support.artifacts import ARTIFACTS
from tests.support.services.git_server import GitServer

pytestmark = [pytest.mark.e2e, pytest.mark.chain]

# A change must show within its bundle's refresh plus this: one parse, the dag-processor's loop and
# the API's answer, on a 2-core machine that also runs three managers.
MARGIN = 60
# A worker node boots and joins in a minute or two on that machine; then the task runs.
RUN_TIMEOUT = 480
HOLD = 75  # the versioned run's first task: long enough for the next commit to land meanwhile
ADDED_DAG = "box_team_added"
BUCKET_DAG = "box_shared_hello"
DAG_PROCESSOR = "airtasks_airflow-dag-processor"
MEASURED: dict[str, str] = {}


@pytest.fixture(scope="module")
def api(box: Box) -> Iterator[httpx.Client]:
    client = log_in(box)
    yield client
    client.close()


def record(key: str, line: str) -> None:
    """Keep a measurement in tests/artifacts/dag-bundles-box.txt (rewritten as each one lands)."""
    MEASURED[key] = line
    print(f"dag bundles: {line}")
    ARTIFACTS.mkdir(exist_ok=True)
    text = "DAG bundles in the cluster in a box, one run\n" + "".join(f"  {v}\n" for v in MEASURED.values())
    (ARTIFACTS / "dag-bundles-box.txt").write_text(text)


def seen(box: Box, api: httpx.Client) -> str:
    """What a failing wait reports: the DAGs of the bundles, the import errors, the dag-processor's
    latest log lines."""
    parts = []
    try:
        dags = api.get("/api/v2/dags", params={"dag_id_pattern": "box_", "limit": 100}).json()
        parts.append(
            "DAGs: "
            + json.dumps(
                [
                    (d["dag_id"], d.get("bundle_name"), d.get("bundle_version"), d.get("is_paused"))
                    for d in dags.get("dags", [])
                ]
            )
        )
        errors = api.get("/api/v2/importErrors", params={"limit": 20}).json()
        parts.append("import errors: " + json.dumps(errors.get("import_errors", []))[-3000:])
    except (httpx.HTTPError, ValueError) as exc:
        parts.append(f"the API did not answer: {exc}")
    logs = box.manager.run(
        [HOST_DOCKER_CLI, "service", "logs", "--tail", "60", DAG_PROCESSOR], check=False, timeout=60
    )
    parts.append(f"{DAG_PROCESSOR} logs:\n{(logs.stdout + logs.stderr)[-6000:]}")
    return "\n".join(parts)


def waited(box: Box, api: httpx.Client, predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """`wait`, and on a timeout also what the API and the dag-processor showed."""
    try:
        return wait(predicate, timeout, what, box)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{seen(box, api)}") from None


def dag_of(api: httpx.Client, dag_id: str) -> dict[str, Any] | None:
    r = api.get(f"/api/v2/dags/{dag_id}")
    if r.status_code == 404:
        return None
    r.raise_for_status()
    found: dict[str, Any] = r.json()
    return found


def dag_run(api: httpx.Client, dag_id: str, run_id: str) -> dict[str, Any]:
    r = api.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
    r.raise_for_status()
    found: dict[str, Any] = r.json()
    return found


def task_log(box: Box, api: httpx.Client, dag_id: str, run_id: str, task_id: str) -> str:
    """The last try's log of a task, as the REST API serves it (its lines' text, as JSON), once it
    is read from the cluster's bucket: a worker uploads the log as its task ends, a moment after
    the run's state may say so, and the worker's own copy is out of the API server's reach."""
    (ti,) = [t for t in task_instances(api, dag_id, run_id) if t["task_id"] == task_id]
    logs = box.outputs["task_logs"]
    source = f"s3://{logs['bucket']}/{logs['prefix']}"
    shown: list[str] = []

    def uploaded() -> str | None:
        r = api.get(
            f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{ti['try_number']}",
            params={"full_content": "true"},
            timeout=60,
        )
        assert r.status_code == 200, r.text
        shown[:] = [json.dumps(r.json()["content"])]
        return shown[0] if source in shown[0] else None

    try:
        text: str = wait(uploaded, 120, f"{dag_id} {run_id} {task_id}: its log in {source}", box)
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}\nthe log as last served: {shown[-1][-3000:] if shown else None}"
        ) from None
    return text


def finished(box: Box, api: httpx.Client, dag_id: str, run_id: str, timeout: float) -> None:
    """Wait for the run to end; it must have succeeded (else the test shows its task instances)."""
    waited(
        box,
        api,
        lambda: run_state(api, dag_id, run_id) in ("success", "failed"),
        timeout,
        f"{dag_id} {run_id} to finish",
    )
    state = run_state(api, dag_id, run_id)
    summary = [(t["task_id"], t["state"], t.get("hostname")) for t in task_instances(api, dag_id, run_id)]
    assert state == "success", (dag_id, run_id, state, summary)


def marker_line(marker: str) -> str:
    return f"the marker is {marker}"


# ------------------------------------------------------------------------------------------------
def test_a_pushed_dag_appears_and_runs_on_a_worker_the_scaler_started(
    box: Box, api: httpx.Client, cloud: LocalCloud, box_git: GitServer
) -> None:
    _, _, autoscaling = clients(cloud.moto)
    group = box.groups()[QUEUE]
    # The chain leaves the group empty; idle workers of an earlier test would be drained first.
    waited(box, api, lambda: group_state(autoscaling, group) == (0, set()), 240, f"{group} to be empty")
    assert dag_of(api, ADDED_DAG) is None

    marker = "added-dag-marker"
    sha = box_git.commit(
        GIT_REPO, {f"{GIT_SUBDIR}/{ADDED_DAG}.py": bundle_dag(ADDED_DAG, marker)}, f"add {ADDED_DAG}"
    )
    pushed = time.monotonic()
    dag = waited(box, api, lambda: dag_of(api, ADDED_DAG), GIT_REFRESH + MARGIN, f"{ADDED_DAG} in the API")
    appeared = time.monotonic() - pushed
    record(
        "git",
        f"git: a pushed commit's new DAG in GET /api/v2/dags after {appeared:.1f}s (refresh {GIT_REFRESH}s)",
    )
    assert dag["bundle_name"] == GIT_BUNDLE, dag
    assert dag["is_paused"], dag  # a new DAG waits for its user
    # The dag-processor's version of the bundle is the pushed commit (it may have parsed the file
    # a moment before the API shows the version).
    waited(
        box,
        api,
        lambda: (dag_of(api, ADDED_DAG) or {}).get("bundle_version") == sha,
        30,
        f"{ADDED_DAG} at {sha}",
    )

    run_id = trigger(box, ADDED_DAG, unpause=True)
    members: set[str] = set()

    def done() -> bool:
        _, instances = group_state(autoscaling, group)
        members.update(instances)
        return run_state(api, ADDED_DAG, run_id) in ("success", "failed")

    waited(box, api, done, RUN_TIMEOUT, f"{ADDED_DAG} {run_id} to finish on a worker the scaler starts")
    finished(box, api, ADDED_DAG, run_id, 0)
    assert members, f"{group} never grew"
    tis = task_instances(api, ADDED_DAG, run_id)
    assert {t["task_id"] for t in tis} == {"hold", "say"}, tis
    for ti in tis:
        assert ti["hostname"] in members, (ti["task_id"], ti["hostname"], members)
        assert ti["queue"] == QUEUE, ti
    assert dag_run(api, ADDED_DAG, run_id)["bundle_version"] == sha
    log = task_log(box, api, ADDED_DAG, run_id, "say")
    assert marker_line(marker) in log, log[-3000:]


def test_a_run_keeps_its_commit_while_a_new_one_lands(
    box: Box, api: httpx.Client, box_git: GitServer
) -> None:
    old_marker, new_marker = "first-commit-marker", "second-commit-marker"
    old = box_git.head(GIT_REPO)
    # The DAG came with the first commit; the bundle's latest version is the head.
    waited(
        box,
        api,
        lambda: (dag_of(api, VERSIONED_DAG) or {}).get("bundle_version") == old,
        GIT_REFRESH + MARGIN,
        f"{VERSIONED_DAG} at {old}",
    )

    first = trigger(box, VERSIONED_DAG, {"seconds": HOLD}, unpause=True)
    assert dag_run(api, VERSIONED_DAG, first)["bundle_version"] == old

    def holding() -> bool:
        return any(
            t["task_id"] == "hold" and t["state"] == "running"
            for t in task_instances(api, VERSIONED_DAG, first)
        )

    waited(box, api, holding, RUN_TIMEOUT, f"{VERSIONED_DAG} {first}: hold running")
    new = box_git.commit(
        GIT_REPO, {f"{GIT_SUBDIR}/{VERSIONED_DAG}.py": bundle_dag(VERSIONED_DAG, new_marker)}, "a new marker"
    )
    pushed = time.monotonic()
    waited(
        box,
        api,
        lambda: (dag_of(api, VERSIONED_DAG) or {}).get("bundle_version") == new,
        GIT_REFRESH + MARGIN,
        f"{VERSIONED_DAG} at {new}",
    )
    landed = time.time()
    record(
        "version",
        f"git: a changed DAG's new commit is the DAG's bundle_version after {time.monotonic() - pushed:.1f}s",
    )
    assert run_state(api, VERSIONED_DAG, first) == "running", (
        "the first run ended before the new commit landed"
    )

    second = trigger(box, VERSIONED_DAG)
    finished(box, api, VERSIONED_DAG, first, RUN_TIMEOUT)
    finished(box, api, VERSIONED_DAG, second, RUN_TIMEOUT)

    # The first run's `say` started after the new commit was the bundle's version: still the old one.
    (say,) = [t for t in task_instances(api, VERSIONED_DAG, first) if t["task_id"] == "say"]
    assert (epoch(say["start_date"]) or 0) > landed, (say["start_date"], landed)
    assert dag_run(api, VERSIONED_DAG, first)["bundle_version"] == old
    log = task_log(box, api, VERSIONED_DAG, first, "say")
    assert marker_line(old_marker) in log, log[-3000:]
    assert new_marker not in log, log[-3000:]
    assert dag_run(api, VERSIONED_DAG, second)["bundle_version"] == new
    log = task_log(box, api, VERSIONED_DAG, second, "say")
    assert marker_line(new_marker) in log, log[-3000:]
    assert old_marker not in log, log[-3000:]


def test_a_dag_uploaded_to_the_bucket_appears_and_runs(
    box: Box, api: httpx.Client, cloud: LocalCloud
) -> None:
    bucket = box.outputs["dag_bundles"]["bucket"]
    assert bucket, box.outputs["dag_bundles"]
    marker = "bucket-dag-marker"
    # What `aws s3 sync dags/ s3://<bucket>/shared/` does for one file (terraform output dag_bundles).
    s3 = boto3.client("s3", endpoint_url=cloud.moto.url, region_name=box.config.region)
    s3.put_object(
        Bucket=bucket, Key=f"{BUCKET_PREFIX}{BUCKET_DAG}.py", Body=bundle_dag(BUCKET_DAG, marker).encode()
    )
    uploaded = time.monotonic()
    dag = waited(
        box, api, lambda: dag_of(api, BUCKET_DAG), BUCKET_REFRESH + MARGIN, f"{BUCKET_DAG} in the API"
    )
    record(
        "bucket",
        f"bucket: an uploaded DAG in GET /api/v2/dags after {time.monotonic() - uploaded:.1f}s"
        f" (refresh {BUCKET_REFRESH}s)",
    )
    assert dag["bundle_name"] == BUCKET_BUNDLE, dag

    run_id = trigger(box, BUCKET_DAG, unpause=True)
    finished(box, api, BUCKET_DAG, run_id, RUN_TIMEOUT)
    assert dag_run(api, BUCKET_DAG, run_id)["bundle_version"] is None  # a bucket is not versioned
    log = task_log(box, api, BUCKET_DAG, run_id, "say")
    assert marker_line(marker) in log, log[-3000:]
