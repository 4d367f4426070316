"""A burst of tasks on queue `default` for the cluster-in-a-box chain (tests/e2e/test_cluster.py).

Six tasks that each hold a slot for `seconds` (param, default 20; a retry holds at most 5 s) and
return the node they ran on; one retry each, two seconds apart, so a task whose node vanishes
mid-run is retried elsewhere.
Baked into the test image only (tests/e2e/images/airtasks-e2e.Dockerfile), never into the product.
"""

from __future__ import annotations

import socket
import time
from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

TASKS = 6


@dag(
    dag_id="airtasks_e2e_burst",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    is_paused_upon_creation=False,
    tags=["airtasks", "e2e"],
    params={"seconds": Param(20, type="integer", minimum=0, maximum=600)},
)
def airtasks_e2e_burst() -> None:
    @task(queue="default", retries=1, retry_delay=timedelta(seconds=2))
    def hold(index: int) -> str:
        context = get_current_context()
        seconds = int(context["params"]["seconds"])
        if context["ti"].try_number > 1:  # the retry only has to show where it ran
            seconds = min(seconds, 5)
        print(f"task {index}: holding a slot on {socket.gethostname()} for {seconds}s")
        time.sleep(seconds)
        return socket.gethostname()

    for i in range(TASKS):
        hold.override(task_id=f"hold_{i}")(i)


airtasks_e2e_burst()
