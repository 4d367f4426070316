"""Load for the scaler's integration tests: N sleeping tasks on a queue, held as long as asked."""

from __future__ import annotations

import time

import pendulum
from airflow.sdk import Param, dag, task


@dag(
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    is_paused_upon_creation=False,
    max_active_tasks=64,
    params={"seconds": Param(120, type="integer")},
)
def airtasks_load() -> None:
    @task(queue="alpha")
    def alpha(i: int, params: dict[str, int] | None = None) -> int:
        time.sleep((params or {}).get("seconds", 120))
        return i

    @task(queue="beta")
    def beta(i: int, params: dict[str, int] | None = None) -> int:
        time.sleep((params or {}).get("seconds", 120))
        return i

    alpha.expand(i=list(range(5)))
    beta.expand(i=list(range(2)))


airtasks_load()
