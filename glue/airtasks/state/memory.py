"""Where the scale-in memory lives between passes, and across a restart of the scaler.

One JSON document for the whole cluster: `{"version": 1, "groups": {<group>: {...}}}`, each
entry a `QueueMemory.to_json()` plus the nodes this scaler cordoned (`cordoned`). Kept in an
Airflow Variable (default when the Airflow source is configured: the DAG and `airtasks scale`
on a laptop then share it), or in a local file; `airtasks.state.stores` keeps it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from airtasks.decide import QueueMemory
from airtasks.state.stores import Document


@dataclass(frozen=True)
class GroupMemory:
    queue: QueueMemory = field(default_factory=QueueMemory)
    cordoned: frozenset[str] = frozenset()
    """Nodes this scaler told to stop taking tasks (cancel_consumer) and has not resumed."""

    def to_json(self) -> dict[str, Any]:
        return {**self.queue.to_json(), "cordoned": sorted(self.cordoned)}

    @classmethod
    def from_json(cls, data: Any) -> GroupMemory:
        cordoned = data.get("cordoned") if isinstance(data, dict) else None
        return cls(
            QueueMemory.from_json(data if isinstance(data, dict) else None),
            frozenset(str(c) for c in cordoned) if isinstance(cordoned, list) else frozenset(),
        )


def decode(text: str | None) -> dict[str, GroupMemory]:
    """Tolerant: damaged memory loads as empty (the worst case is a fresh window)."""
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        return {}
    groups = data.get("groups") if isinstance(data, dict) else None
    if not isinstance(groups, dict):
        return {}
    return {str(k): GroupMemory.from_json(v) for k, v in groups.items()}


def encode(memory: dict[str, GroupMemory]) -> str:
    return json.dumps(
        {"version": 1, "groups": {k: v.to_json() for k, v in sorted(memory.items())}}, sort_keys=True
    )


class MemoryStore(Document[dict[str, GroupMemory]]):
    """The scale-in memory of every group, in one document (see `airtasks.state.stores`)."""

    what = "memory"
    description = "Air-Tasks scaler: scale-in window and idle times per group"

    def decode(self, text: str | None) -> dict[str, GroupMemory]:
        return decode(text)

    def encode(self, value: dict[str, GroupMemory]) -> str:
        return encode(value)


__all__ = [
    "GroupMemory",
    "MemoryStore",
    "decode",
    "encode",
]
