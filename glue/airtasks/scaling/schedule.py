"""Pre-scaling's reads: which scheduled DAG runs are due soon, and what each needs per queue.

From the Airflow REST API (v2, Airflow 3.3):
- `GET /api/v2/dags?paused=false`: `next_dagrun_run_after` of every unpaused DAG (when the
  scheduler will create its next run; the DAG model's `next_dagrun_create_after`).
- `GET /api/v2/dags/{dag_id}/dagRuns?run_type=scheduled&order_by=-run_after&limit=3`: its last
  scheduled runs, and for each `.../dagRuns/{run_id}/taskInstances`: `queue`, `queued_when` (or
  `start_date`) and `end_date`.
A run's need on a queue is the most of its task instances that were queued or running at once in
its first `WINDOW_S` (the slots that would have let them all start at once); a DAG needs the most of
its last `RUNS` runs (the simulator chose these: docs/simulator.md). Only DAGs due within
`HORIZON_S` are looked at, a finished run's figures are kept, and the DAG list is re-read every
`REFRESH_S`: a pass costs no extra request most of the time. Paused DAGs have no next run here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from airtasks.decide import DueRun
from airtasks.sources.airflow import AirflowSource

WINDOW_S = 120.0
RUNS = 3
HORIZON_S = 900.0
REFRESH_S = 60.0


def peak(tasks: Iterable[tuple[str, float | None, float | None]], run_after: float) -> dict[str, int]:
    """Per queue: the most task instances queued or running at once in the run's first window."""
    end = run_after + WINDOW_S
    events: dict[str, list[tuple[float, int]]] = {}
    for queue, begin, done in tasks:
        if begin is None or begin >= end or not queue:
            continue
        stop = min(done if done is not None else end, end)
        events.setdefault(queue, []).extend([(max(begin, run_after), 1), (stop, -1)])
    out = {}
    for queue, ev in events.items():
        n = top = 0
        for _, d in sorted(ev):
            n += d
            top = max(top, n)
        out[queue] = top
    return out


@dataclass
class ScheduleReader:
    """Keeps the plan (DAGs due soon and their needs) between passes of one scaler process."""

    airflow: AirflowSource
    queues: Sequence[str]
    _plan: list[tuple[str, float, dict[str, int]]] = field(default_factory=list)
    _read_at: float | None = None
    _need: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)
    """(dag_id, run_id) -> queue -> slots, for runs whose first window is over (they do not change)."""

    def due(self, now: float) -> dict[str, list[DueRun]]:
        """queue -> runs due within the horizon with what they need there. Raises SourceReadError."""
        if self._read_at is None or now - self._read_at >= REFRESH_S:
            self._plan = self._read(now)
            self._read_at = now
        out: dict[str, list[DueRun]] = {q: [] for q in self.queues}
        for dag_id, when, need in self._plan:
            for q in self.queues:
                if need.get(q):
                    out[q].append(DueRun(dag_id, when, need[q], q))
        return out

    def _read(self, now: float) -> list[tuple[str, float, dict[str, int]]]:
        plan = []
        for dag_id, when in self.airflow.next_runs():
            if when - now > HORIZON_S:
                continue
            need: dict[str, int] = {}
            for run_id, run_after in self.airflow.recent_runs(dag_id, RUNS):
                got = self._need.get((dag_id, run_id))
                if got is None:
                    got = peak(self.airflow.run_tasks(dag_id, run_id), run_after)
                    if run_after + WINDOW_S < now:
                        self._need[(dag_id, run_id)] = got
                for q, n in got.items():
                    need[q] = max(need.get(q, 0), n)
            plan.append((dag_id, when, need))
        return plan


__all__ = ["HORIZON_S", "REFRESH_S", "RUNS", "WINDOW_S", "ScheduleReader", "peak"]
