"""Airflow's REST API v2 as the cluster-in-a-box tests read it through the box's proxy: a login,
`airtasks trigger`, a run's state, its task instances and their tries, the scaler's task
instances, timestamps as epoch seconds, and when a task instance ran."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from airtasks.sources.airflow import epoch as airflow_epoch
from airtasks.sources.airflow_access import AirflowAccess, AirflowAccessError, api_client
from airtasks_dev.localcloud.box import Box
from tests.e2e.helpers import wait

SCALER_DAG = "airtasks_scaler"
WALL_CLOCK = time.time() - time.monotonic()  # runner timings are monotonic
AIRTASKS = str(Path(sys.executable).with_name("airtasks"))


def epoch(value: str | float | None) -> float | None:
    """An Airflow timestamp (ISO) or a runner timing (monotonic) as epoch seconds."""
    if value is None or isinstance(value, str):
        return airflow_epoch(value)
    return value + WALL_CLOCK


def since(moment: float | None, zero: float) -> str:
    """An epoch moment as signed seconds from `zero` for a timeline, `-` for one not reached yet."""
    return "-" if moment is None else f"{moment - zero:+6.1f}s"


def span(ti: dict[str, Any], zero: float) -> str:
    """When a task instance ran, in seconds from `zero` (epoch; `-` for a time it has not got yet),
    where and in which state: a timeline's line, or why a wait on its tasks timed out."""
    start, end = epoch(ti.get("start_date")), epoch(ti.get("end_date"))
    return f"{since(start, zero)} -> {since(end, zero)} on {ti.get('hostname')} ({ti.get('state')})"


def log_in(box: Box) -> httpx.Client:
    """A logged-in REST client on the box's proxy URL (a fresh api-server can be slow to answer at
    first, so failed logins are tried again for up to 3 minutes)."""
    access = AirflowAccess(
        box.url, "admin", box.password_file.read_text().strip(), "test", str(box.ca_bundle)
    )

    def attempt() -> httpx.Client | None:
        try:
            return api_client(access, timeout=60)
        except AirflowAccessError as exc:
            print(f"box {box.config.cluster}: login failed ({exc}); trying again")
            return None

    client: httpx.Client = wait(attempt, 180, "a login through the proxy", box)
    client.base_url = httpx.URL(box.url)
    return client


def trigger(box: Box, dag_id: str, conf: dict[str, Any] | None = None, *, unpause: bool = False) -> str:
    """`airtasks trigger` against the proxy URL, as a user would (CA bundle and password file);
    `unpause`: a DAG that is new, so paused, is unpaused first (`--unpause`)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRTASKS_")}
    env.update(
        AIRTASKS_AIRFLOW_URL=box.url,
        AIRTASKS_AIRFLOW_USERNAME="admin",
        AIRTASKS_AIRFLOW_PASSWORD_FILE=str(box.password_file),
        AIRTASKS_AIRFLOW_CA_BUNDLE=str(box.ca_bundle),
    )
    cmd = [AIRTASKS, "trigger", dag_id, *(["--conf", json.dumps(conf)] if conf else [])]
    cmd += ["--unpause"] if unpause else []
    for _ in range(3):
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180, check=False)
        # Refused before any run was created (the login timed out): the user's next try.
        if out.returncode == 0 or "cannot reach Airflow" not in out.stderr:
            break
        print(f"box {box.config.cluster}: {out.stderr.strip()}; trying again")
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout.split()[0]


def task_instances(api: httpx.Client, dag_id: str, run_id: str) -> list[dict[str, Any]]:
    r = api.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 100})
    r.raise_for_status()
    return list(r.json()["task_instances"])


def tries(api: httpx.Client, dag_id: str, run_id: str, task_id: str) -> list[dict[str, Any]]:
    r = api.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/tries")
    r.raise_for_status()
    return sorted(r.json()["task_instances"], key=lambda t: int(t["try_number"]))


def run_state(api: httpx.Client, dag_id: str, run_id: str) -> str:
    r = api.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
    r.raise_for_status()
    return str(r.json()["state"])


def scaler_tasks(api: httpx.Client) -> list[dict[str, Any]]:
    """The scaler's task instances of every run, newest first."""
    r = api.get(f"/api/v2/dags/{SCALER_DAG}/dagRuns/~/taskInstances", params={"limit": 100})
    r.raise_for_status()
    tis = list(r.json()["task_instances"])
    return sorted(tis, key=lambda ti: epoch(ti.get("start_date")) or 0.0, reverse=True)


def scaler_since(api: httpx.Client, moment: float, states: tuple[str, ...] = ("success",)) -> bool:
    """Whether a scaler task that started after `moment` (epoch) is in one of `states`: with
    running too, the scheduler sent it through the broker and a worker took it from there."""
    return any(
        ti["state"] in states and (epoch(ti.get("start_date")) or 0.0) > moment for ti in scaler_tasks(api)
    )
