"""Three tasks on queue `delta`, which has no worker: load for the scaler DAG to react to."""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task


@dag(
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    is_paused_upon_creation=False,
)
def airtasks_delta() -> None:
    @task(queue="delta")
    def wait(i: int) -> int:
        return i

    wait.expand(i=[0, 1, 2])


airtasks_delta()
