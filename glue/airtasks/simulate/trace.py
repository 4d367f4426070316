"""Workload traces: the fixed CSV format, and deterministic generators.

A trace is one task per row, header `submit_s,queue,duration_s` (seconds from the trace start),
optionally followed by `key` (the task's identity across runs, e.g. `dag.task`, so a policy can learn
its duration), `dag` (the DAG whose run submitted it) and `scheduled_s` (when that run was
scheduled). An empty optional cell means "not known"; 3-column traces are read as they always were.
Generators are pure functions of their seed: the same kind and seed always give the same rows.
"""

from __future__ import annotations

import csv
import io
import math
import random
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from airtasks.errors import AirtasksError

COLUMNS = ("submit_s", "queue", "duration_s")
OPTIONAL_COLUMNS = ("key", "dag", "scheduled_s")
QUEUE_RE = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
# Airflow's own rule for DAG and task ids (letters, digits, '_', '-', '.'; at most 250 characters).
NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,250}$")


class TraceError(AirtasksError):
    """A trace file is missing, malformed, or has impossible values."""


@dataclass(frozen=True)
class Task:
    submit_s: float
    queue: str
    duration_s: float
    key: str | None = None
    """Which task this is across runs (e.g. `dag.task`): tasks of one key take similar times."""
    dag: str | None = None
    """The DAG whose run submitted it."""
    scheduled_s: float | None = None
    """When that run was scheduled (seconds from the trace start, at or before `submit_s`)."""


def read_trace(path: str | Path) -> list[Task]:
    """Read and validate a trace; rows come back sorted by submit time (stable)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise TraceError(f"cannot read trace {p}: {exc.strerror or exc}; pass an existing CSV file") from None
    return parse_trace(text, name=str(p))


def parse_trace(text: str, name: str = "trace") -> list[Task]:
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise TraceError(
            f"{name}: missing column(s) {', '.join(missing)}; the first line must be the header "
            f"{','.join(COLUMNS)}"
        )
    reader.fieldnames = header
    tasks: list[Task] = []
    for line, row in enumerate(reader, start=2):
        submit = _number(row.get("submit_s"), name, line, "submit_s", positive=False)
        duration = _number(row.get("duration_s"), name, line, "duration_s", positive=True)
        queue = (row.get("queue") or "").strip()
        if not QUEUE_RE.match(queue):
            raise TraceError(
                f"{name} line {line}: queue {queue!r} is not a queue name; use lower-case letters, "
                "digits and '-', starting with a letter (at most 31 characters)"
            )
        key = _name(row.get("key"), name, line, "key")
        dag = _name(row.get("dag"), name, line, "dag")
        scheduled = _scheduled(row.get("scheduled_s"), submit, name, line)
        tasks.append(Task(submit, queue, duration, key, dag, scheduled))
    if not tasks:
        raise TraceError(f"{name}: no tasks; add one row per task under the header {','.join(COLUMNS)}")
    tasks.sort(key=lambda t: t.submit_s)
    return tasks


def _number(raw: str | None, name: str, line: int, column: str, *, positive: bool) -> float:
    text = (raw or "").strip()
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    ok = math.isfinite(value) and (value > 0 if positive else value >= 0)
    if not ok:
        want = "a number > 0" if positive else "a number >= 0"
        raise TraceError(
            f"{name} line {line}: {column} must be {want} of seconds (got {text!r}); fix that row"
        )
    return value


def _name(raw: str | None, name: str, line: int, column: str) -> str | None:
    text = (raw or "").strip()
    if not text:
        return None
    if not NAME_RE.match(text):
        raise TraceError(
            f"{name} line {line}: {column} {text[:60]!r} is not a DAG or task id; use letters, digits, "
            "'_', '-' and '.' (at most 250 characters), or leave the cell empty"
        )
    return text


def _scheduled(raw: str | None, submit: float, name: str, line: int) -> float | None:
    if not (raw or "").strip():
        return None
    value = _number(raw, name, line, "scheduled_s", positive=False)
    if value > submit:
        raise TraceError(
            f"{name} line {line}: scheduled_s {value:g} is after submit_s {submit:g}; a run submits its "
            "tasks at or after its scheduled time, fix that row"
        )
    return value


def write_trace(tasks: Iterable[Task], out: TextIO) -> None:
    """CSV with the optional columns only when some task has one (old readers keep working)."""
    rows = list(tasks)
    extra = any(t.key is not None or t.dag is not None or t.scheduled_s is not None for t in rows)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS + OPTIONAL_COLUMNS if extra else COLUMNS)
    for t in rows:
        base = (_fmt(t.submit_s), t.queue, _fmt(t.duration_s))
        if extra:
            scheduled = "" if t.scheduled_s is None else _fmt(t.scheduled_s)
            writer.writerow((*base, t.key or "", t.dag or "", scheduled))
        else:
            writer.writerow(base)


def _fmt(x: float) -> str:
    return f"{x:.1f}"


ROOT_TOLERANCE_S = 1.0
"""Tasks a run submits within this of its first task are ready at its start: its DAG's roots."""


def dag_roots(tasks: Iterable[Task]) -> dict[str, dict[str, int]]:
    """Per DAG, per queue: its root tasks (no upstream), as parsing the DAG file tells before any run.

    A trace carries no task graph, so the tasks of a DAG's first run (earliest `scheduled_s`)
    submitted within `ROOT_TOLERANCE_S` of that run's first one stand for its roots: a root is
    queued as the run starts, every other task when its upstream ends (on `scheduled`, a stage
    after the previous stage's longest task). The same roots stand for every run of the DAG, as
    a DAG's structure changes only when its file does: they tell nothing of a later run's times or
    of how many tasks it submits (the generator varies a stage's width by up to 30 % per run)."""
    first: dict[str, tuple[float, list[Task]]] = {}
    for t in tasks:
        if t.dag is None or t.scheduled_s is None:
            continue
        at, run = first.get(t.dag, (math.inf, []))
        if t.scheduled_s < at:
            first[t.dag] = (t.scheduled_s, [t])
        elif t.scheduled_s == at:
            run.append(t)
    out: dict[str, dict[str, int]] = {}
    for dag, (_, run) in sorted(first.items()):
        start = min(t.submit_s for t in run)
        roots = out.setdefault(dag, {})
        for t in run:
            if t.submit_s - start <= ROOT_TOLERANCE_S:
                roots[t.queue] = roots.get(t.queue, 0) + 1
    return out


# ---------------------------------------------------------------- generators


def _task(
    submit: float,
    queue: str,
    duration: float,
    *,
    key: str | None = None,
    dag: str | None = None,
    scheduled: float | None = None,
) -> Task:
    return Task(
        round(submit, 1),
        queue,
        round(max(duration, 1.0), 1),
        key,
        dag,
        None if scheduled is None else round(scheduled, 1),
    )


def _poisson(
    rng: random.Random, rate: Callable[[float], float], peak: float, start: float, end: float
) -> Iterator[float]:
    """Arrival times of a Poisson process with rate(t) <= peak on [start, end) (thinning)."""
    t = start
    while True:
        t += rng.expovariate(peak)
        if t >= end:
            return
        if rng.random() * peak <= rate(t):
            yield t


def steady(rng: random.Random) -> list[Task]:
    """4 h of one task every ~15 s on `default`, log-normal durations around 5 minutes."""
    return [
        _task(t, "default", rng.lognormvariate(math.log(240), 0.6))
        for t in _poisson(rng, lambda _t: 1 / 15, 1 / 15, 0, 4 * 3600)
    ]


def bursty(rng: random.Random) -> list[Task]:
    """4 h: bursts of ~120 two-minute tasks every 10-30 min on `default`; a trickle of long tasks on `long`.

    A burst is a DAG fanning out: its tasks arrive within about a minute of each other.
    """
    tasks: list[Task] = []
    t = 120.0
    while t < 4 * 3600 - 600:
        n = rng.randint(100, 140)
        spread = rng.uniform(20, 90)
        tasks += [_task(t + rng.uniform(0, spread), "default", rng.uniform(100, 140)) for _ in range(n)]
        t += rng.uniform(600, 1800)
    tasks += [
        _task(s, "long", rng.uniform(600, 2400))
        for s in _poisson(rng, lambda _t: 1 / 300, 1 / 300, 0, 4 * 3600)
    ]
    return sorted(tasks, key=lambda x: x.submit_s)


def diurnal(rng: random.Random) -> list[Task]:
    """24 h on `default`: arrivals follow the working day (quiet at night, peak mid-afternoon)."""

    def rate(t: float) -> float:
        day = (t % 86400) / 86400
        return (1 / 60) * (1 + 0.9 * math.sin(2 * math.pi * (day - 0.375)))

    peak = (1 / 60) * 1.9
    return [
        _task(t, "default", rng.lognormvariate(math.log(300), 0.7))
        for t in _poisson(rng, rate, peak, 0, 86400)
    ]


def long_tail(rng: random.Random) -> list[Task]:
    """6 h of one task every ~30 s on `default`; Pareto durations: mostly a minute, a few for hours."""
    return [
        _task(t, "default", min(30 * rng.paretovariate(1.3), 3 * 3600))
        for t in _poisson(rng, lambda _t: 1 / 30, 1 / 30, 0, 6 * 3600)
    ]


def _working_day(t: float) -> float:
    """1 +- 0.9 over a day: quiet at night, peak mid-afternoon (as `diurnal`)."""
    return 1 + 0.9 * math.sin(2 * math.pi * ((t % 86400) / 86400 - 0.375))


def mixed(rng: random.Random) -> list[Task]:
    """24 h of three workloads at once, each task with its key, DAG and run's scheduled time.

    - `default`: single tasks of a dozen keys arriving with the working day (~1 every 2 min on
      average), each key with its own typical duration (1-10 min);
    - `default`: fan-out bursts, ~1 per hour by day and rarer at night, of 20-100 short tasks
      (20-90 s, one key per burst DAG) arriving within half a minute;
    - `long`: a trickle of 15-60 minute tasks (~1 every 15 min).
    """
    tasks: list[Task] = []
    singles = {f"ingest.task-{i}": rng.uniform(60, 600) for i in range(12)}
    names = sorted(singles)
    for t in _poisson(rng, lambda t: _working_day(t) / 120, 1.9 / 120, 0, 86400):
        key = rng.choice(names)
        tasks.append(
            _task(
                t,
                "default",
                rng.lognormvariate(math.log(singles[key]), 0.3),
                key=key,
                dag="ingest",
                scheduled=t,
            )
        )
    fanouts = {f"fanout-{i}": rng.uniform(20, 90) for i in range(4)}
    for t in _poisson(rng, lambda t: _working_day(t) / 3600, 1.9 / 3600, 0, 86400 - 600):
        dag = rng.choice(sorted(fanouts))
        n = rng.randint(20, 100)
        spread = rng.uniform(5, 30)
        tasks += [
            _task(
                t + rng.uniform(0, spread),
                "default",
                rng.lognormvariate(math.log(fanouts[dag]), 0.2),
                key=f"{dag}.shard",
                dag=dag,
                scheduled=t,
            )
            for _ in range(n)
        ]
    tasks += [
        _task(t, "long", rng.uniform(900, 3600), key="report.build", dag="report", scheduled=t)
        for t in _poisson(rng, lambda _t: 1 / 900, 1 / 900, 0, 86400)
    ]
    return sorted(tasks, key=lambda x: x.submit_s)


def scheduled(rng: random.Random) -> list[Task]:
    """8 h of cron-like DAGs: each runs on its own period, its stages fan out onto queues.

    Six DAGs, every 15 min to every 3 h, each with an offset; a run starts a few seconds after
    its scheduled time, and each stage's tasks are submitted when the previous stage's longest
    task ends (they all start at once: this is what the DAG submits, not how long they wait).
    A stage's tasks share a key and a typical duration.
    """
    tasks: list[Task] = []
    periods = (900, 1800, 3600, 3600, 7200, 10800)
    for d, period in enumerate(periods):
        dag = f"cron-{d}"
        offset = rng.uniform(0, min(period, 3600))
        stages = []
        for k in range(rng.randint(1, 3)):
            queue = "long" if rng.random() < 0.25 else "default"
            typical = rng.uniform(600, 2400) if queue == "long" else rng.uniform(20, 300)
            stages.append((f"{dag}.stage-{k}", queue, rng.randint(1, 24), typical))
        run = offset
        while run < 8 * 3600:
            at = run + rng.uniform(1, 10)
            for key, queue, width, typical in stages:
                n = max(1, round(width * rng.uniform(0.7, 1.3)))
                durations = [rng.lognormvariate(math.log(typical), 0.25) for _ in range(n)]
                tasks += [_task(at, queue, dur, key=key, dag=dag, scheduled=run) for dur in durations]
                at += max(durations) + rng.uniform(1, 5)
            run += period
    return sorted(tasks, key=lambda x: x.submit_s)


GENERATORS: dict[str, Callable[[random.Random], list[Task]]] = {
    "steady": steady,
    "bursty": bursty,
    "diurnal": diurnal,
    "long-tail": long_tail,
    "mixed": mixed,
    "scheduled": scheduled,
}
KINDS: Sequence[str] = tuple(GENERATORS)


def generate(kind: str, seed: int) -> list[Task]:
    """The trace of `kind` for `seed`: the same arguments always give the same tasks."""
    try:
        gen = GENERATORS[kind]
    except KeyError:
        raise TraceError(f"unknown trace kind {kind!r}; use one of: {', '.join(KINDS)}") from None
    return gen(random.Random(f"{kind}:{seed}"))


__all__ = [
    "COLUMNS",
    "KINDS",
    "OPTIONAL_COLUMNS",
    "ROOT_TOLERANCE_S",
    "Task",
    "TraceError",
    "dag_roots",
    "generate",
    "parse_trace",
    "read_trace",
    "write_trace",
]
