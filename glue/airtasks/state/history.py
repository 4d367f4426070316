"""The scaler's decision history: a bounded ring the operations view reads (and charts).

Where: by default an Airflow Variable, `airtasks_scaler_history` (JSON), the same way the scale-in
memory is kept (`airtasks.state.memory`): the page reads it with no database of its own, and it survives
a restart of the scheduler, the worker or the scaler. A local file (or nothing) for laptops.
Why not XComs: each scaler run is a new task instance, so the page would have to walk runs and
their XComs to draw six hours; one document holds them in one read, and its size is bounded.

When: a pass appends one entry per queue when the decision changed (action, group size, want,
desired, failed, the nodes acted on: see `HistoryEntry.signature`), and otherwise a "sample" at most
every `history.sample_seconds` (a point for the chart). The store is written only when an entry
was appended, so at most once per pass and, while nothing changes, once per `sample_seconds`
(default 60 s) instead of every 5 s pass. Bounded by age (`max_age_seconds`, default 6 h) and
count (`max_entries` per queue). Dry runs are not recorded: they scale nothing.

The last Swarm node list the scaler saw is kept too (written only when it changed), so a view
that cannot reach the Docker API itself (the API server never mounts the Docker socket) still
shows the Swarm's nodes.

Two writers (the DAG and `airtasks scale --watch` on a laptop) re-read before writing; an entry
may still be lost in a race, which costs one chart point, never a scaling decision. A pass whose
read or write failed keeps its entries for the next pass (`HistoryRecorder`), so a busy store
delays a decision on the page instead of dropping it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, cast, get_args

from airtasks.config import HistoryConfig
from airtasks.decide import Action
from airtasks.errors import AirtasksError
from airtasks.state.stores import Document

if TYPE_CHECKING:
    from airtasks.control.docker_swarm import SwarmNode
    from airtasks.scaling.report import QueueReport

LOG = logging.getLogger("airtasks.history")
VERSION = 1
Kind = Literal["decision", "sample"]
ACTIONS = frozenset(get_args(Action))


def _opt_int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _strs(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, list | tuple) else ()


@dataclass(frozen=True)
class HistoryEntry:
    """What one pass read and decided for one queue."""

    t: float
    queue: str
    kind: Kind
    action: Action
    reason: str
    load: int | None
    loads: Mapping[str, int | None] = field(default_factory=dict)
    current: int | None = None
    want: int | None = None
    desired: int | None = None
    removed: tuple[str, ...] = ()
    cordoned: tuple[str, ...] = ()
    uncordoned: tuple[str, ...] = ()
    restarted: tuple[str, ...] = ()
    """Task instances of interrupted nodes cleared to run elsewhere."""
    failed: bool = False

    def signature(self) -> tuple[Any, ...]:
        """What makes a new decision (the load and the reason's wording alone do not)."""
        return (
            self.action,
            self.current,
            self.want,
            self.desired,
            self.failed,
            self.removed,
            self.cordoned,
            self.uncordoned,
            self.restarted,
        )

    @property
    def acted(self) -> bool:
        return self.action in {"scale_out", "scale_in"} or bool(
            self.removed or self.cordoned or self.uncordoned or self.restarted
        )

    @classmethod
    def from_report(cls, report: QueueReport, t: float, kind: Kind = "decision") -> HistoryEntry:
        return cls(
            t=t,
            queue=report.queue,
            kind=kind,
            action=report.action,
            reason=report.reason,
            load=report.load,
            loads=dict(report.loads),
            current=report.current,
            want=report.want,
            desired=report.desired,
            removed=tuple(report.removed),
            cordoned=tuple(report.cordoned),
            uncordoned=tuple(report.uncordoned),
            restarted=tuple(report.restarted),
            failed=report.failed,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "t": round(self.t, 3),
            "kind": self.kind,
            "action": self.action,
            "reason": self.reason,
            "load": self.load,
            "loads": dict(self.loads),
            "current": self.current,
            "want": self.want,
            "desired": self.desired,
            "removed": list(self.removed),
            "cordoned": list(self.cordoned),
            "uncordoned": list(self.uncordoned),
            "restarted": list(self.restarted),
            "failed": self.failed,
        }

    @classmethod
    def from_json(cls, queue: str, data: Any) -> HistoryEntry | None:
        """None for an entry that is damaged beyond use (no time or action)."""
        if not isinstance(data, dict):
            return None
        t, action = data.get("t"), data.get("action")
        if not isinstance(t, int | float) or action not in ACTIONS:
            return None
        loads = data.get("loads")
        return cls(
            t=float(t),
            queue=queue,
            kind="sample" if data.get("kind") == "sample" else "decision",
            action=cast(Action, action),
            reason=str(data.get("reason") or ""),
            load=_opt_int(data.get("load")),
            loads={str(k): _opt_int(v) for k, v in loads.items()} if isinstance(loads, dict) else {},
            current=_opt_int(data.get("current")),
            want=_opt_int(data.get("want")),
            desired=_opt_int(data.get("desired")),
            removed=_strs(data.get("removed")),
            cordoned=_strs(data.get("cordoned")),
            uncordoned=_strs(data.get("uncordoned")),
            restarted=_strs(data.get("restarted")),
            failed=bool(data.get("failed")),
        )


@dataclass(frozen=True)
class SwarmNodeRecord:
    hostname: str
    role: str
    state: str
    availability: str
    queue: str = ""

    @classmethod
    def from_node(cls, node: SwarmNode) -> SwarmNodeRecord:
        labels = {**node.engine_labels, **node.labels}
        return cls(node.hostname, node.role, node.state, node.availability, labels.get("airtasks.queue", ""))

    def to_json(self) -> dict[str, str]:
        return {
            "hostname": self.hostname,
            "role": self.role,
            "state": self.state,
            "availability": self.availability,
            "queue": self.queue,
        }

    @classmethod
    def from_json(cls, data: Any) -> SwarmNodeRecord | None:
        if not isinstance(data, dict) or not data.get("hostname"):
            return None
        return cls(
            str(data["hostname"]),
            str(data.get("role") or ""),
            str(data.get("state") or ""),
            str(data.get("availability") or ""),
            str(data.get("queue") or ""),
        )


@dataclass(frozen=True)
class SwarmSnapshot:
    t: float
    nodes: tuple[SwarmNodeRecord, ...]


@dataclass(frozen=True)
class History:
    queues: Mapping[str, tuple[HistoryEntry, ...]] = field(default_factory=dict)
    """Per queue, oldest first."""
    swarm: SwarmSnapshot | None = None
    written_at: float | None = None
    """When a scaler last wrote it (at least every `sample_seconds` while one runs)."""

    def entries(self, queue: str) -> tuple[HistoryEntry, ...]:
        return tuple(self.queues.get(queue, ()))

    def last(self, queue: str) -> HistoryEntry | None:
        entries = self.queues.get(queue, ())
        return entries[-1] if entries else None


def decode(text: str | None) -> History:
    """Tolerant: a damaged document loads as empty history, a damaged entry is skipped."""
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        return History()
    if not isinstance(data, dict):
        return History()
    queues: dict[str, tuple[HistoryEntry, ...]] = {}
    raw_queues = data.get("queues")
    if isinstance(raw_queues, dict):
        for name, raw in raw_queues.items():
            if not isinstance(raw, list):
                continue
            entries = (HistoryEntry.from_json(str(name), e) for e in raw)
            queues[str(name)] = tuple(sorted((e for e in entries if e is not None), key=lambda e: e.t))
    swarm = None
    raw_swarm = data.get("swarm")
    if isinstance(raw_swarm, dict) and isinstance(raw_swarm.get("t"), int | float):
        nodes = (SwarmNodeRecord.from_json(n) for n in raw_swarm.get("nodes") or [])
        swarm = SwarmSnapshot(float(raw_swarm["t"]), tuple(n for n in nodes if n is not None))
    written = data.get("written_at")
    return History(queues, swarm, float(written) if isinstance(written, int | float) else None)


def encode(history: History) -> str:
    data: dict[str, Any] = {
        "version": VERSION,
        "written_at": history.written_at,
        "queues": {q: [e.to_json() for e in entries] for q, entries in sorted(history.queues.items())},
        "swarm": None,
    }
    if history.swarm is not None:
        data["swarm"] = {"t": history.swarm.t, "nodes": [n.to_json() for n in history.swarm.nodes]}
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


# ---------------------------------------------------------------------------------------------
# The rule (pure)
# ---------------------------------------------------------------------------------------------


def due(history: History, entry: HistoryEntry, sample_seconds: float) -> HistoryEntry | None:
    """The entry to append for this pass (as a decision or a sample), or None."""
    last = history.last(entry.queue)
    if last is None or entry.acted or entry.signature() != last.signature():
        return replace(entry, kind="decision")
    if entry.t - last.t >= sample_seconds:
        return replace(entry, kind="sample")
    return None


def prune(history: History, now: float, config: HistoryConfig) -> History:
    """Drop entries older than `max_age_seconds`, then keep the newest `max_entries` per queue."""
    oldest = now - config.max_age_seconds
    queues = {}
    for name, entries in history.queues.items():
        kept = tuple(e for e in entries if e.t >= oldest)[-config.max_entries :]
        if kept:
            queues[name] = kept
    return replace(history, queues=queues)


def _append_due(
    history: History, entries: Iterable[HistoryEntry], sample_seconds: float
) -> tuple[dict[str, tuple[HistoryEntry, ...]], list[HistoryEntry]]:
    """The queues with each due entry appended in turn, and the entries appended."""
    queues = {k: tuple(v) for k, v in history.queues.items()}
    appended = []
    for entry in entries:
        keep = due(History(queues), entry, sample_seconds)
        if keep is not None:
            queues[entry.queue] = (*queues.get(entry.queue, ()), keep)
            appended.append(keep)
    return queues, appended


def add(
    history: History,
    entries: Iterable[HistoryEntry],
    now: float,
    config: HistoryConfig,
    swarm: Sequence[SwarmNodeRecord] | None = None,
) -> tuple[History, bool]:
    """`history` with this pass recorded, and whether anything changed (i.e. it must be written)."""
    queues, appended = _append_due(history, entries, config.sample_seconds)
    changed = bool(appended)
    snapshot = history.swarm
    if swarm is not None:
        nodes = tuple(sorted(swarm, key=lambda n: (n.role != "manager", n.hostname)))
        if snapshot is None or snapshot.nodes != nodes:
            snapshot = SwarmSnapshot(now, nodes)
            changed = True
    if not changed:
        return history, False
    return prune(History(queues, snapshot, now), now, config), True


# ---------------------------------------------------------------------------------------------
# Stores
# ---------------------------------------------------------------------------------------------


class HistoryStore(Document[History]):
    """The decision history, in one document (see `airtasks.state.stores`)."""

    what = "history"
    description = "Air-Tasks scaler: recent decisions per queue (operations view)"

    def decode(self, text: str | None) -> History:
        return decode(text)

    def encode(self, value: History) -> str:
        return encode(value)


class HistoryRecorder:
    """What the scaler calls after each pass. Never raises: history is for people, not for scaling.

    Entries that a failed read or write kept out of the store are kept here and go in with the next
    pass's (then `due` weighs them again against what the store holds). Without that, the one pass
    that scaled out, on a host too busy for the store to answer, would leave the page only the calm
    passes after it."""

    def __init__(self, store: HistoryStore, config: HistoryConfig, logger: logging.Logger = LOG) -> None:
        self.store = store
        self.config = config
        self.log = logger
        self._cached: History | None = None
        self._pending: list[HistoryEntry] = []

    @property
    def pending(self) -> tuple[HistoryEntry, ...]:
        """Entries still to be written, oldest first."""
        return tuple(self._pending)

    def record(
        self, reports: Iterable[QueueReport], now: float, swarm: Sequence[SwarmNodeRecord] | None = None
    ) -> bool:
        """Append this pass where due (after any entries kept from failed passes); True when the
        store was written."""
        entries = [*self._pending, *(HistoryEntry.from_report(r, now) for r in reports)]
        try:
            if self._cached is None:
                self._cached = self.store.load()
            _, changed = add(self._cached, entries, now, self.config, swarm)
            if not changed:
                self._pending = []
                return False
            # Re-read just before writing: another scaler (or an older run) may have written meanwhile.
            fresh, changed = add(self.store.load(), entries, now, self.config, swarm)
            if changed:
                self.store.save(fresh)
            self._cached = fresh
            self._pending = []
            return changed
        except (AirtasksError, OSError) as exc:
            _, kept = _append_due(self._cached or History(), entries, self.config.sample_seconds)
            # Bounded for a store that stays down: the newest `max_entries`, what `prune` keeps of a queue.
            self._pending = kept[-self.config.max_entries :]
            self._cached = None
            self.log.warning(
                "history: not recorded (%s); %d entries kept for the next pass; scaling is not affected",
                exc,
                len(self._pending),
            )
            return False

    def flush(self, now: float) -> bool:
        """Write the entries kept from failed passes, if any (the scaler's last chance, at close)."""
        return self.record([], now) if self._pending else False


__all__ = [
    "History",
    "HistoryEntry",
    "HistoryRecorder",
    "HistoryStore",
    "SwarmNodeRecord",
    "SwarmSnapshot",
    "add",
    "decode",
    "due",
    "encode",
    "prune",
]
