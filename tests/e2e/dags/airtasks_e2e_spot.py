"""Two tasks on queue `default` for the spot-notice test of the cluster in a box
(tests/e2e/test_cluster_spot.py): `long` runs longer than a spot notice lasts, `short` ends well
inside it. Neither has a retry: an interruption must not need one. A restarted try only has to
show where it ran, so it holds its slot for at most 10 s.
Baked into the test image only (tests/e2e/images/airtasks-e2e.Dockerfile), never into the product.
"""

from __future__ import annotations

import socket
import time

import pendulum
from airflow.sdk import Param, dag, get_current_context, task


@dag(
    dag_id="airtasks_e2e_spot",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    is_paused_upon_creation=False,
    tags=["airtasks", "e2e"],
    params={
        "long_seconds": Param(150, type="integer", minimum=0, maximum=1800),
        "short_seconds": Param(30, type="integer", minimum=0, maximum=600),
    },
)
def airtasks_e2e_spot() -> None:
    @task(queue="default", retries=0)
    def hold(param: str) -> str:
        context = get_current_context()
        seconds = int(context["params"][param])
        if context["ti"].try_number > 1:
            seconds = min(seconds, 10)
        print(f"try {context['ti'].try_number}: holding a slot on {socket.gethostname()} for {seconds}s")
        time.sleep(seconds)
        return socket.gethostname()

    hold.override(task_id="long")("long_seconds")
    hold.override(task_id="short")("short_seconds")


airtasks_e2e_spot()
