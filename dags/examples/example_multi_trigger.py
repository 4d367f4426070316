"""[START example_multi_trigger_doc]
Example: an unbounded fan-out that triggers another DAG once per item.

Shows the "unbounded" pattern: ``list_items`` decides at run time how many items there are (param
``count``, default 3; in real life: files in a bucket, rows in a table); dynamic task mapping then
makes one ``trigger_target`` task per item, each triggering ``example_trigger_target`` with its own
conf (``{"n": <i>, "message": "item <i> of <count>"}``) and waiting for it, deferred (no worker
slot is held while waiting; the triggerer polls).

Trigger it
- UI: DAGs -> ``example_multi_trigger`` -> Trigger; set ``count``.
- CLI: ``airtasks trigger example_multi_trigger --conf '{"count": 5}' --wait``
[END example_multi_trigger_doc]
"""

from __future__ import annotations

import pendulum
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import Param, dag, get_current_context, task

QUEUE = "default"
TARGET_DAG_ID = "example_trigger_target"


# [START example_multi_trigger]
@dag(
    dag_id="example_multi_trigger",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    is_paused_upon_creation=False,  # schedule=None: runs only when triggered
    tags=["airtasks", "example"],
    doc_md=__doc__,
    params={"count": Param(3, type="integer", minimum=0, maximum=50, description="How many items.")},
)
def example_multi_trigger() -> None:
    """Fan out over a run-time list and trigger ``example_trigger_target`` per item."""

    @task(queue=QUEUE)
    def list_items() -> list[dict[str, object]]:
        ctx = get_current_context()
        count = int(ctx["params"]["count"])
        run_id = ctx["run_id"]
        return [
            {
                "trigger_run_id": f"{run_id}__item_{i}",
                "conf": {"n": i, "message": f"item {i} of {count}"},
            }
            for i in range(1, count + 1)
        ]

    TriggerDagRunOperator.partial(
        task_id="trigger_target",
        trigger_dag_id=TARGET_DAG_ID,
        queue=QUEUE,
        wait_for_completion=True,
        deferrable=True,
        poke_interval=2,
    ).expand_kwargs(list_items())


# [END example_multi_trigger]

example_multi_trigger()
