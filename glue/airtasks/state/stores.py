"""Where the scaler's documents live: one small text store, three places to keep it.

The scale-in memory (`airtasks.state.memory`) and the decision history
(`airtasks.state.history`) are each one JSON document. Both are kept the same way, so the places
are written once, here: in the process (tests, dry runs), in a local file (a laptop), or in an
Airflow Variable (the default on a cluster: the scaler DAG, `airtasks scale` and the Cluster page
then share it, and it survives a restart of any of them).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import ClassVar, Generic, Protocol, Self, TypeVar

from airtasks.errors import SourceReadError
from airtasks.sources.airflow import AirflowSource

T = TypeVar("T")


class TextStore(Protocol):
    """Reads and writes one text document; `name` says where ("in-process", "file", "airflow")."""

    name: str

    def read(self) -> str | None: ...

    def write(self, text: str) -> None: ...


class InProcessText:
    """Forgets everything when the process ends."""

    name = "in-process"

    def __init__(self, text: str | None = None) -> None:
        self.text = text

    def read(self) -> str | None:
        return self.text

    def write(self, text: str) -> None:
        self.text = text


class FileText:
    name = "file"

    def __init__(self, path: str | Path, what: str) -> None:
        self.path = Path(path).expanduser()
        self.what = what

    def read(self) -> str | None:
        try:
            return self.path.read_text()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SourceReadError(f"{self.what}: cannot read {self.path}: {exc.strerror}") from None

    def write(self, text: str) -> None:
        # Write beside the target and rename, so a reader never sees half a document.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".scaler-{self.what}.")
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, self.path)


class AirflowVariableText:
    name = "airflow"

    def __init__(self, source: AirflowSource, key: str, what: str, description: str) -> None:
        self.source = source
        self.key = key
        self.what = what
        self.description = description

    def read(self) -> str | None:
        try:
            return self.source.get_variable(self.key)
        except SourceReadError as exc:
            raise SourceReadError(f"{self.what} (Airflow Variable {self.key}): {exc}") from None

    def write(self, text: str) -> None:
        self.source.set_variable(self.key, text, self.description)


class Document(Generic[T]):
    """One JSON document in a TextStore: decoded on load, encoded on save.

    A save that would write the text this store last read or wrote is skipped: most passes change
    nothing, and an Airflow Variable write is a REST call.
    """

    what: ClassVar[str] = "document"
    description: ClassVar[str] = ""

    def __init__(self, store: TextStore) -> None:
        self.store = store
        self.writes = 0
        self._last: str | None = None

    @property
    def name(self) -> str:
        return self.store.name

    def load(self) -> T:
        text = self.store.read()
        self._last = text
        return self.decode(text)

    def save(self, value: T) -> None:
        text = self.encode(value)
        if text == self._last:
            return
        self.store.write(text)
        self._last = text
        self.writes += 1

    def decode(self, text: str | None) -> T:
        raise NotImplementedError

    def encode(self, value: T) -> str:
        raise NotImplementedError

    @classmethod
    def in_process(cls) -> Self:
        return cls(InProcessText())

    @classmethod
    def file(cls, path: str | Path) -> Self:
        return cls(FileText(path, cls.what))

    @classmethod
    def airflow(cls, source: AirflowSource, key: str) -> Self:
        return cls(AirflowVariableText(source, key, cls.what, cls.description))


__all__ = ["AirflowVariableText", "Document", "FileText", "InProcessText", "TextStore"]
