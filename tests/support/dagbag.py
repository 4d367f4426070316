"""Parse `dags/` with Airflow's DagBag in a clean subprocess and report what the tests assert.

Run as `python -m tests.support.dagbag DAGS_DIR`: prints one JSON object with the import errors,
the warnings raised while parsing, the metadata-DB queries and connection/variable lookups made at
parse time, and per DAG its ids, params, tags, schedule and task queues and pools.
"""

from __future__ import annotations

import json
import sys
import warnings
from typing import Any


def probe(dags_dir: str) -> dict[str, Any]:
    # Imported here, in the subprocess, after the caller set AIRFLOW_HOME and friends.
    queries: list[str] = []
    lookups: list[str] = []

    from sqlalchemy import event  # noqa: PLC0415
    from sqlalchemy.engine import Engine  # noqa: PLC0415

    @event.listens_for(Engine, "before_cursor_execute")
    def _count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        queries.append(statement.split("\n", 1)[0][:120])

    from airflow.sdk import BaseHook, Variable  # noqa: PLC0415

    def _no_conn(conn_id: str, *a: Any, **k: Any) -> Any:
        lookups.append(f"connection:{conn_id}")
        raise RuntimeError("connection lookup at parse time")

    def _no_var(key: str, *a: Any, **k: Any) -> Any:
        lookups.append(f"variable:{key}")
        raise RuntimeError("variable lookup at parse time")

    BaseHook.get_connection = classmethod(lambda cls, conn_id, *a, **k: _no_conn(conn_id))  # type: ignore[method-assign, assignment]
    Variable.get = staticmethod(_no_var)  # type: ignore[method-assign]

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from airflow.dag_processing.dagbag import DagBag  # noqa: PLC0415

        queries.clear()  # what importing Airflow itself did does not count
        bag = DagBag(dag_folder=dags_dir, safe_mode=False)

    dags: dict[str, Any] = {}
    for dag_id, dag in bag.dags.items():
        dags[dag_id] = {
            "fileloc": dag.fileloc,
            "doc_md": dag.doc_md or "",
            "description": dag.description,
            "tags": sorted(dag.tags),
            "catchup": dag.catchup,
            "max_active_runs": dag.max_active_runs,
            "is_paused_upon_creation": dag.is_paused_upon_creation,
            "schedule": str(getattr(dag.timetable, "summary", None) or type(dag.timetable).__name__),
            "start_date_tz": str(dag.start_date.tzinfo) if dag.start_date else None,
            "params": {k: {"default": p.value, "schema": p.schema} for k, p in dag.params.items()},
            "tasks": {
                t.task_id: {"queue": t.queue, "pool": t.pool, "type": type(t).__name__} for t in dag.tasks
            },
        }
    return {
        "import_errors": {str(k): str(v) for k, v in bag.import_errors.items()},
        "warnings": [
            {"category": w.category.__name__, "message": str(w.message), "file": w.filename} for w in caught
        ],
        "queries": queries,
        "lookups": lookups,
        "dags": dags,
    }


if __name__ == "__main__":
    print(json.dumps(probe(sys.argv[1]), default=str))
