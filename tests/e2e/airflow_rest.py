"""Airflow's REST API v2 as the cluster-in-a-box tests read it through the box's proxy: a login,
a run's state, its task instances and their tries, and timestamps as epoch seconds."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import httpx

from airtasks.sources.airflow_access import AirflowAccess, AirflowAccessError, api_client
from airtasks_dev.localcloud.box import Box
from tests.e2e.helpers import wait

WALL_CLOCK = time.time() - time.monotonic()  # runner timings are monotonic


def epoch(value: str | float | None) -> float | None:
    """An Airflow timestamp (ISO) or a runner timing (monotonic) as epoch seconds."""
    if value is None:
        return None
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return value + WALL_CLOCK


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
