"""[START example_interleaved_doc]
Example: two chains of tasks, interleaved, on two Celery queues.

Shows the "standard" pattern: chain A (``extract_a -> transform_a -> load_a``) runs on the worker
queue ``default``; chain B (``extract_b -> transform_b -> load_b``) runs on queue ``manager`` (the
small always-on worker of the manager node). Dependencies across the chains interleave them:
``transform_b`` needs ``extract_a``, and ``load_a`` needs ``transform_b``. Route your own tasks with
``@task(queue="<queue>")``; each queue has its own autoscaled worker group.

Trigger it
- UI: DAGs -> ``example_interleaved`` -> Trigger.
- CLI: ``airtasks trigger example_interleaved --wait``
[END example_interleaved_doc]
"""

from __future__ import annotations

import time

import pendulum
from airflow.sdk import dag, task

WORK_QUEUE = "default"  # a worker group's queue (scaled from zero by the scaler)
LIGHT_QUEUE = "manager"  # the manager's own worker (always on)


# [START example_interleaved]
@dag(
    dag_id="example_interleaved",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    is_paused_upon_creation=False,  # schedule=None: runs only when triggered
    tags=["airtasks", "example"],
    doc_md=__doc__,
)
def example_interleaved() -> None:
    """Two interleaved chains of tasks on two queues (see the module docstring)."""

    @task(queue=WORK_QUEUE)
    def extract_a() -> list[int]:
        return [1, 2, 3]

    @task(queue=WORK_QUEUE)
    def transform_a(values: list[int]) -> int:
        time.sleep(1)  # stands in for real work
        return sum(values)

    @task(queue=WORK_QUEUE)
    def load_a(total: int, ratio: float) -> str:
        result = f"a: total={total} ratio={ratio:.2f}"
        print(result)
        return result

    @task(queue=LIGHT_QUEUE)
    def extract_b() -> list[int]:
        return [4, 5]

    @task(queue=LIGHT_QUEUE)
    def transform_b(values: list[int], from_a: list[int]) -> float:
        return sum(values) / max(1, sum(from_a))

    @task(queue=LIGHT_QUEUE)
    def load_b(ratio: float) -> str:
        result = f"b: ratio={ratio:.2f}"
        print(result)
        return result

    a = extract_a()
    ratio = transform_b(extract_b(), a)  # B waits for A's extract
    load_a(transform_a(a), ratio)  # A's load waits for B's transform
    load_b(ratio)


# [END example_interleaved]

example_interleaved()
