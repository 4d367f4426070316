"""Where the scale-in memory lives between passes, and across a restart of the scaler.

One JSON document for the whole cluster: `{"version": 1, "groups": {<group>: {...}}}`, each
entry a `QueueMemory.to_json()` plus the nodes this scaler cordoned (`cordoned`). Kept in an
Airflow Variable (default when the Airflow source is configured: the DAG and `airtasks scale`
on a laptop then share it), or in a local file.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from airtasks.decide import QueueMemory
from airtasks.errors import SourceReadError
from airtasks.sources.airflow import AirflowSource


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


class MemoryStore(Protocol):
    name: str

    def load(self) -> dict[str, GroupMemory]: ...

    def save(self, memory: dict[str, GroupMemory]) -> None: ...


class InProcessMemoryStore:
    """For tests and dry runs: forgets everything when the process ends."""

    name = "in-process"

    def __init__(self) -> None:
        self.text: str | None = None

    def load(self) -> dict[str, GroupMemory]:
        return decode(self.text)

    def save(self, memory: dict[str, GroupMemory]) -> None:
        self.text = encode(memory)


class FileMemoryStore:
    name = "file"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()

    def load(self) -> dict[str, GroupMemory]:
        try:
            return decode(self.path.read_text())
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise SourceReadError(f"memory: cannot read {self.path}: {exc.strerror}") from None

    def save(self, memory: dict[str, GroupMemory]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".scaler-memory.")
        with os.fdopen(fd, "w") as fh:
            fh.write(encode(memory))
        os.replace(tmp, self.path)


class AirflowVariableMemoryStore:
    name = "airflow"

    def __init__(self, source: AirflowSource, key: str = "airtasks_scaler_memory") -> None:
        self.source = source
        self.key = key
        self._last: str | None = None

    def load(self) -> dict[str, GroupMemory]:
        try:
            text = self.source.get_variable(self.key)
        except SourceReadError as exc:
            raise SourceReadError(f"memory (Airflow Variable {self.key}): {exc}") from None
        self._last = text
        return decode(text)

    def save(self, memory: dict[str, GroupMemory]) -> None:
        text = encode(memory)
        if text == self._last:
            return
        self.source.set_variable(self.key, text, "Air-Tasks scaler: scale-in window and idle times per group")
        self._last = text


__all__ = [
    "AirflowVariableMemoryStore",
    "FileMemoryStore",
    "GroupMemory",
    "InProcessMemoryStore",
    "MemoryStore",
    "decode",
    "encode",
]
