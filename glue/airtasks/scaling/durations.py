"""Run times learnt from Airflow, for the queues with `learn_durations`: each task's recent
successful runs (`airtasks.runtimes.RunTimes`), kept on the scaler between passes.

A scaler's first pass reads the latest `FIRST_READ` successful task instances of each such queue;
every later pass reads only those that ended since, so a pass costs one page per queue. A task
instance's end is committed a moment after its end_date, so each read reaches back `OVERLAP_SECONDS`
and skips the ones it has seen.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from airtasks.runtimes import SAMPLES_PER_KEY, RunTimes
from airtasks.sources.airflow import AirflowSource

FIRST_READ = 2 * SAMPLES_PER_KEY
"""Successful task instances per queue that a scaler's first pass reads: a queue's usual tasks
get samples at once, and the read stays two pages."""
OVERLAP_SECONDS = 60.0
"""How far before the latest end seen each later read starts."""


@dataclass
class DurationReader:
    airflow: AirflowSource
    runtimes: RunTimes = field(default_factory=RunTimes)
    _latest: dict[str, float] = field(default_factory=dict)
    """Per queue: the latest end_date read."""
    _seen: dict[str, dict[str, float]] = field(default_factory=dict)
    """Per queue: task instance id -> end_date, of those that ended within the overlap."""

    def read(self, queues: Iterable[str]) -> RunTimes:
        """The run times learnt so far, after reading what ended since the last read. Raises
        SourceReadError when Airflow did not answer; what was learnt before is kept."""
        for queue in queues:
            latest = self._latest.get(queue)
            after = None if latest is None else latest - OVERLAP_SECONDS
            seen = self._seen.setdefault(queue, {})
            for task in self.airflow.finished(queue, after, FIRST_READ):
                if task.id in seen:
                    continue
                seen[task.id] = task.ended
                self.runtimes.add(task.task, task.seconds)
                latest = task.ended if latest is None else max(latest, task.ended)
            if latest is not None:
                self._latest[queue] = latest
                self._seen[queue] = {i: t for i, t in seen.items() if t >= latest - OVERLAP_SECONDS}
        return self.runtimes


__all__ = ["FIRST_READ", "OVERLAP_SECONDS", "DurationReader"]
