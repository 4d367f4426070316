"""Passes on an interval: `airtasks scale --watch` and the scaler DAG's minute."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from airtasks.scaling.report import PassReport
from airtasks.scaling.scaler import Scaler


def watch(
    scaler: Scaler,
    interval: float,
    *,
    dry_run: bool = False,
    deadline: float | None = None,
    on_report: Callable[[PassReport], None] | None = None,
    stop: threading.Event | None = None,
    sleep: Callable[[float], None] | None = None,
    monotonic: Callable[[], float] | None = None,
) -> PassReport | None:
    """A pass every `interval` seconds, paced from the first pass's start; stops before a pass
    would start after `deadline` (monotonic), or when `stop` is set."""
    monotonic = monotonic or time.monotonic

    def pause(seconds: float) -> None:
        if sleep is not None:
            sleep(seconds)
        elif stop is not None:
            stop.wait(seconds)
        else:
            time.sleep(seconds)

    last: PassReport | None = None
    next_at = monotonic()
    while (deadline is None or next_at < deadline) and not (stop is not None and stop.is_set()):
        last = scaler.run_pass(dry_run=dry_run)
        if on_report is not None:
            on_report(last)
        next_at += interval
        now = monotonic()
        next_at = max(next_at, now)  # after a slow pass, start the next one now; no catching up
        if deadline is not None and next_at >= deadline:
            break
        pause(max(0.0, next_at - now))
    return last


__all__ = ["watch"]
