"""What the `airtasks_scaler` DAG's task runs: passes every `interval_seconds` until its minute is over.

Kept out of the DAG file so that parsing the DAG imports nothing but the Airflow SDK, and so the
loop is testable without Airflow. Config: env `AIRTASKS_CONFIG` (path or inline JSON), else the
Airflow Variable `airtasks_scaler_config` (JSON or YAML text).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from airtasks.config import CONFIG_ENV, ResolvedConfig, load_text, resolve
from airtasks.errors import ConfigError, SourceReadError
from airtasks.scaling.loop import watch
from airtasks.scaling.report import PassReport
from airtasks.scaling.scaler import build_scaler

CONFIG_VARIABLE = "airtasks_scaler_config"
LOG = logging.getLogger("airtasks.dag")


def load_task_config(
    get_variable: Callable[[str], str | None], env: Mapping[str, str] | None = None
) -> ResolvedConfig:
    env = os.environ if env is None else env
    if env.get(CONFIG_ENV):
        return resolve(env=env)
    text = get_variable(CONFIG_VARIABLE)
    if not text:
        raise ConfigError(
            f"no scaler config: set env {CONFIG_ENV} on the manager's worker, or the Airflow Variable "
            f"{CONFIG_VARIABLE} (JSON, the shape of `terraform output -json scaler_config`)"
        )
    data = load_text(text, f"Variable {CONFIG_VARIABLE}")
    if not isinstance(data, dict):
        raise ConfigError(f"Variable {CONFIG_VARIABLE}: must be a JSON object")
    resolved = resolve(env=env, data=data)
    origins = {
        k: (f"Variable {CONFIG_VARIABLE}" if v == "argument" else v) for k, v in resolved.origins.items()
    }
    return ResolvedConfig(resolved.config, origins)


def run_minute(
    get_variable: Callable[[str], str | None],
    *,
    dry_run: bool = False,
    window_end: float | None = None,
    env: Mapping[str, str] | None = None,
    margin_seconds: float = 2.0,
) -> dict[str, Any]:
    """Passes until `window_end` (epoch seconds; default: a minute from now). Returns a summary.

    Raises SourceReadError when the last pass held a queue for a failed read, so the run shows
    failed in the UI; the next run (a minute later) starts afresh.
    """
    resolved = load_task_config(get_variable, env)
    config = resolved.config
    scaler = build_scaler(config, env)
    end = window_end if window_end is not None else time.time() + 60.0
    deadline = time.monotonic() + max(end - time.time() - margin_seconds, 0.0)
    passes: list[PassReport] = []
    try:
        watch(scaler, config.interval_seconds, dry_run=dry_run, deadline=deadline, on_report=passes.append)
        if not passes:  # started after its minute: still do one pass
            passes.append(scaler.run_pass(dry_run=dry_run))
    finally:
        scaler.close()
    last = passes[-1]
    summary = {
        "passes": len(passes),
        "held_passes": sum(1 for p in passes if p.exit_code != 0),
        "max_duration_ms": round(max(p.duration_ms for p in passes), 1),
        "last": last.to_json(),
    }
    if last.exit_code != 0:
        held = ", ".join(f"{q.queue}: {q.reason}" for q in last.queues if q.failed)
        raise SourceReadError(f"the last pass held for a failed read ({held})")
    return summary


__all__ = ["CONFIG_VARIABLE", "load_task_config", "run_minute"]
