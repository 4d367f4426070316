"""PollLoop: what NodeRunner and RdsEmulator share, one background thread calling `poll()`.

Both mirror moto's state into real things (nodes, database servers) by listing it every
`poll_interval` seconds. A failed pass (a moto hiccup) is recorded in `errors` and logged, and
the loop goes on: the next pass sees the same state again.
"""

from __future__ import annotations

import logging
import threading
from typing import Self

log = logging.getLogger("airtasks.localcloud")


class PollLoop:
    """Subclasses implement `poll()` and may extend `stop()` to tear down what they started."""

    def __init__(self, name: str, poll_interval: float) -> None:
        self.poll_interval = poll_interval
        self.errors: list[str] = []
        self._name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll(self) -> None:
        raise NotImplementedError

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
        self._thread.start()
        return self

    def stop_polling(self, timeout: float) -> None:
        """End the loop; a pass under way finishes first (up to `timeout`)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)

    def stop(self) -> None:
        self.stop_polling(timeout=30)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll()
            except Exception as exc:
                self.errors.append(f"poll: {exc!r}")
                log.warning("%s: poll failed: %r", self._name, exc)
            self._stop.wait(self.poll_interval)
