"""What a scaling pass reports: per queue what it read, decided and did (`--json`, the log, history)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from airtasks.decide import Action


@dataclass
class NodeReport:
    id: str
    running: int | None
    """Task instances running on it (None: unknown)."""
    cordoned: bool
    state: str
    launched_at: float


@dataclass
class QueueReport:
    queue: str
    group: str
    load: int | None
    current: int | None
    want: int | None
    desired: int | None
    action: Action
    reason: str
    removed: list[str] = field(default_factory=list)
    cordoned: list[str] = field(default_factory=list)
    uncordoned: list[str] = field(default_factory=list)
    restarted: list[str] = field(default_factory=list)
    """Task instances of interrupted nodes cleared to run elsewhere (`dag.task.run.map_index`)."""
    loads: dict[str, int | None] = field(default_factory=dict)
    """Per source: what it read (None: failed)."""
    failed: bool = False
    """Held (or an action failed) because a read or a call failed."""
    nodes: list[NodeReport] = field(default_factory=list)

    def log_line(self) -> str:
        def n(value: int | None) -> str:
            return "?" if value is None else str(value)

        return (
            f"queue={self.queue} load={n(self.load)} current={n(self.current)} want={n(self.want)} "
            f"action={self.action} reason={self.reason}"
        )

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("nodes")
        return data


@dataclass
class SwarmReport:
    removed_nodes: list[str] = field(default_factory=list)
    labelled_nodes: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass
class PassReport:
    queues: list[QueueReport]
    swarm: SwarmReport
    duration_ms: float
    dry_run: bool = False

    @property
    def exit_code(self) -> int:
        """0: every queue decided; 2: a queue held because a read (or a call) failed."""
        return 2 if any(q.failed for q in self.queues) else 0

    def to_json(self) -> dict[str, Any]:
        return {
            "queues": [q.to_json() for q in self.queues],
            "swarm": asdict(self.swarm),
            "duration_ms": round(self.duration_ms, 1),
            "dry_run": self.dry_run,
        }


__all__ = ["NodeReport", "PassReport", "QueueReport", "SwarmReport"]
