"""The scheduled runs a pass may raise groups for: each unpaused DAG's next run time, and what its
recent scheduled runs needed per queue in their first minutes (`airtasks.schedule`). A DAG with
no such run yet has no history, but Airflow has parsed it: its root tasks per queue, which a run
queues as it starts, are what its first run needs.

Reads are cached on the scaler, so a pass every few seconds costs one listing of the DAGs due soon
every `REFRESH_SECONDS`, a DAG's recent runs once per `LEARN_SECONDS` (per `UNLEARNED_SECONDS`
while it has no finished run to learn from), and such a DAG's tasks once per `STRUCTURE_SECONDS`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from airtasks.decide import DueRun
from airtasks.schedule import first_minutes_slots, needed, root_slots
from airtasks.sources.airflow import AirflowSource

HORIZON_SECONDS = 900.0
"""How far ahead next runs are listed: beyond any boot a group may have learned."""
REFRESH_SECONDS = 30.0
"""Airflow's next run times change only when a run is created; a listing this old still holds."""
LEARN_SECONDS = 600.0
"""How long what a DAG's runs needed is kept before its recent runs are read again."""
UNLEARNED_SECONDS = 60.0
"""How long a DAG with no finished scheduled run yet waits before its runs are read again: its
first run may end any moment, and the next one should find what it needed."""
STRUCTURE_SECONDS = 600.0
"""How long a DAG's root tasks are kept before its tasks are read again: a DAG's structure changes
only when its file does."""


@dataclass
class DueReader:
    airflow: AirflowSource
    _listed_at: float | None = None
    _next: list[tuple[str, float]] = field(default_factory=list)
    _needs: dict[str, tuple[float, dict[str, int]]] = field(default_factory=dict)
    _roots: dict[str, tuple[float, dict[str, int]]] = field(default_factory=dict)

    def read(self, queues: Iterable[str], now: float) -> dict[str, list[DueRun]]:
        """Per queue: the DAGs due within the horizon that needed slots on it. Raises
        SourceReadError when Airflow did not answer; the pass then pre-scales nothing."""
        if self._listed_at is None or now - self._listed_at >= REFRESH_SECONDS:
            self._next = self.airflow.next_runs(now + HORIZON_SECONDS + REFRESH_SECONDS)
            self._listed_at = now
        wanted = set(queues)
        out: dict[str, list[DueRun]] = {q: [] for q in wanted}
        for dag_id, at in self._next:
            if at < now - REFRESH_SECONDS:
                continue  # created since the listing; its tasks count as load now
            learned = self._learned(dag_id, now)
            if learned:
                for queue, slots in learned.items():
                    if queue in wanted and slots > 0:
                        out[queue].append(DueRun(dag_id, at, slots))
                continue
            # No run to learn from yet: the parsed DAG's roots are what its first run needs.
            for queue, roots in self._root_slots(dag_id, now).items():
                if queue in wanted and roots > 0:
                    out[queue].append(DueRun(dag_id, at, 0, roots=roots, first_run=True))
        return out

    def _root_slots(self, dag_id: str, now: float) -> dict[str, int]:
        cached = self._roots.get(dag_id)
        if cached is not None and now - cached[0] < STRUCTURE_SECONDS:
            return cached[1]
        roots = root_slots(self.airflow.dag_tasks(dag_id))
        self._roots[dag_id] = (now, roots)
        return roots

    def _learned(self, dag_id: str, now: float) -> dict[str, int]:
        cached = self._needs.get(dag_id)
        if cached is not None and now - cached[0] < (LEARN_SECONDS if cached[1] else UNLEARNED_SECONDS):
            return cached[1]
        runs = self.airflow.recent_runs(dag_id)
        learned = needed([first_minutes_slots(at, tasks) for at, tasks in runs])
        self._needs[dag_id] = (now, learned)
        return learned


__all__ = [
    "HORIZON_SECONDS",
    "LEARN_SECONDS",
    "REFRESH_SECONDS",
    "STRUCTURE_SECONDS",
    "UNLEARNED_SECONDS",
    "DueReader",
]
