"""Air-Tasks' Airflow cluster policy (entry point `airflow.policy`): loaded by every Airflow that
has `airtasks` installed, applied to each task when its DAG is parsed. It only acts on a stack
rendered with queue sizes (AIRTASKS_QUEUE_POOLS; see airtasks.pools)."""

from __future__ import annotations

from typing import Any

from airflow.policies import hookimpl

from airtasks.pools import pool_for


@hookimpl
def task_policy(task: Any) -> None:
    """A task of a pooled queue that names no pool of its own goes to its queue's pool."""
    task.pool = pool_for(task.queue, task.pool)


__all__ = ["task_policy"]
