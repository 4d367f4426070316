"""Load on queue `default` for the `make up` test: four tasks that sleep, so the scaler DAG (which
counts queued + running task instances per queue) sees them for a while and grows the group."""

from __future__ import annotations

import time

import pendulum
from airflow.sdk import Param, dag, task


@dag(
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    is_paused_upon_creation=False,
    params={"seconds": Param(45, type="integer")},
)
def airtasks_default_load() -> None:
    @task(queue="default")
    def sleep(i: int, params: dict[str, int] | None = None) -> int:
        time.sleep((params or {}).get("seconds", 45))
        return i

    sleep.expand(i=[0, 1, 2, 3])


airtasks_default_load()
