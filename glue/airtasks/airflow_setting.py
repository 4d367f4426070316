"""An Airflow setting as Airflow's own processes read it from the environment:
`AIRFLOW__SECTION__KEY`, or else the output of the `AIRFLOW__SECTION__KEY_CMD` command. The stack
passes every URL with a password the second way (airtasks-secret-url fills it from the Swarm
secret when it is read), so a helper beside Airflow (a backup, a health check) reads it the same
way and never finds it in the environment."""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Mapping

from airtasks.errors import AirtasksError

COMMAND_TIMEOUT = 30  # seconds


class SettingError(AirtasksError):
    """A setting's `_CMD` failed."""


def airflow_setting(name: str, env: Mapping[str, str] | None = None) -> str | None:
    """The value of Airflow's setting `name` (e.g. AIRFLOW__DATABASE__SQL_ALCHEMY_CONN); None when
    neither it nor its `_CMD` is set."""
    env = os.environ if env is None else env
    value = env.get(name)
    if value:
        return value
    cmd = env.get(f"{name}_CMD")
    if not cmd:
        return None
    proc = subprocess.run(
        shlex.split(cmd), capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False
    )
    if proc.returncode != 0:
        # stderr only: the command's output is the value, often with a password in it.
        raise SettingError(f"{name}_CMD failed: {proc.stderr.strip()[-300:]}")
    return proc.stdout.strip()
