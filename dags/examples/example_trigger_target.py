"""[START example_trigger_target_doc]
Example: a DAG that takes parameters, validated by a JSON schema.

Shows: ``Param`` with a JSON schema (``n``: integer 1..100, default 1; ``message``: string), the
form the Airflow UI builds from it, and a task that prints both values in its log.

Trigger it
- UI: DAGs -> ``example_trigger_target`` -> Trigger; edit ``n`` and ``message`` in the form.
- CLI: ``airtasks trigger example_trigger_target --conf '{"n": 3, "message": "hi"}' --wait``
  (a value the schema rejects, e.g. ``{"n": 0}``, is refused before the run is created).
- From another DAG: ``example_multi_trigger`` triggers it once per item with its own conf.
[END example_trigger_target_doc]
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

QUEUE = "default"


# [START example_trigger_target]
@dag(
    dag_id="example_trigger_target",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    is_paused_upon_creation=False,  # schedule=None: runs only when triggered
    tags=["airtasks", "example"],
    doc_md=__doc__,
    params={
        "n": Param(1, type="integer", minimum=1, maximum=100, title="n", description="How many lines."),
        "message": Param(
            "hello from Air-Tasks",
            type="string",
            minLength=1,
            maxLength=200,
            title="message",
            description="Printed n times in the task log.",
        ),
    },
)
def example_trigger_target() -> None:
    """Print the params ``n`` and ``message`` (see the module docstring for how to trigger)."""

    @task(queue=QUEUE)
    def show_params() -> dict[str, object]:
        params = get_current_context()["params"]
        n, message = int(params["n"]), str(params["message"])
        print(f"airtasks example_trigger_target: n={n} message={message}")
        for i in range(1, n + 1):
            print(f"[{i}/{n}] {message}")
        return {"n": n, "message": message}

    show_params()


# [END example_trigger_target]

example_trigger_target()
