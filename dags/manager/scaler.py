"""Air-Tasks scaler: sizes every queue's worker group from its load, within seconds.

Runs every minute, unpaused on creation (it must work right after deploy), one run at a time;
the run's task does a pass every `interval_seconds` until its minute is over, so the reaction
time is the interval, not the schedule. The task runs on queue `manager` (the manager's own
worker, which the scaler never removes). Config: env `AIRTASKS_CONFIG` on that worker, or the
Variable `airtasks_scaler_config`. Trigger with `{"dry_run": true}` to decide without acting.
The logic lives in `airtasks.scaling`; this file only schedules it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import Param, dag, task


@dag(
    dag_id="airtasks_scaler",
    schedule="* * * * *",
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    is_paused_upon_creation=False,
    # A run whose manager is lost holds the next one back until this timeout (Airflow's own check
    # of the task's heartbeat takes 5 minutes by default): the run's minute plus room to start.
    dagrun_timeout=timedelta(minutes=2),
    tags=["airtasks"],
    params={"dry_run": Param(False, type="boolean", description="Read and decide, change nothing.")},
)
def airtasks_scaler() -> None:
    """Size each queue's worker group: scale out at once, remove only idle nodes."""

    @task(queue="manager", retries=0, execution_timeout=timedelta(seconds=100))
    def scale(**context: Any) -> dict[str, Any]:
        # Clients are built here, at run time, never while the DAG file is parsed.
        from airflow.sdk import Variable  # noqa: PLC0415

        from airtasks.scaling.task import run_minute  # noqa: PLC0415

        run = context.get("dag_run")
        start = getattr(run, "run_after", None) or context.get("logical_date")
        window_end = start.timestamp() + 60.0 if start is not None else None
        dry_run = bool(context["params"].get("dry_run", False))

        def get_variable(key: str) -> str | None:
            value = Variable.get(key, default=None)
            return None if value is None else str(value)

        return run_minute(get_variable, dry_run=dry_run, window_end=window_end)

    scale()


airtasks_scaler()
