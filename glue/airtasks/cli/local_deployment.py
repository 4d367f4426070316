"""What `make up` leaves for the other commands: the state file `.run/local.json`.

`airtasks trigger` reads its Airflow part (URL, user, password *file*; see `airflow_access`). This
module reads the rest, for `airtasks scale|status|config --from-terraform envs/local` (or
`--config .run/scaler_config.json`) with no settings: where `make up` keeps the Terraform state of
the root it applied, and the environment that points AWS clients at the local endpoint (dummy
credentials) and logs in to the local Airflow. It applies only to a config that came from that
deployment, so a real env (`--from-terraform envs/aws`) never meets the local endpoint.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path

from airtasks.sources.airflow_access import find_state_file


@dataclass(frozen=True)
class LocalDeployment:
    state_file: Path
    terraform_root: Path
    terraform_state: Path
    terraform_data_dir: Path
    scaler_config: Path | None
    env: dict[str, str] = field(default_factory=dict)
    """AWS_* of the local endpoint, AIRTASKS_AIRFLOW_USERNAME / _PASSWORD_FILE (a path, never a value)."""

    def apply_env(self, target: MutableMapping[str, str] | None = None) -> dict[str, str]:
        """Fill in what `target` (default: os.environ) lacks; the environment wins, as for trigger."""
        target = os.environ if target is None else target
        added = {k: v for k, v in self.env.items() if not target.get(k)}
        if target.get("AIRTASKS_AIRFLOW_PASSWORD"):  # an explicit password beats the state's file
            added.pop("AIRTASKS_AIRFLOW_PASSWORD_FILE", None)
        target.update(added)
        return added


def record(
    terraform_root: Path,
    terraform_state: Path,
    terraform_data_dir: Path,
    scaler_config: Path | None,
    client_env: Mapping[str, str],
) -> dict[str, object]:
    """The part of local.json this module reads (`start_airflow(state_extra=...)` writes it)."""
    return {
        "terraform": {
            "root": str(terraform_root.resolve()),
            "state": str(terraform_state.resolve()),
            "data_dir": str(terraform_data_dir.resolve()),
        },
        "scaler_config": str(scaler_config.resolve()) if scaler_config else None,
        "client_env": dict(client_env),
    }


def _read(start: Path) -> tuple[Path, dict[str, object]] | None:
    path = find_state_file(start)
    if path is None:
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return (path, data) if isinstance(data, dict) and isinstance(data.get("terraform"), dict) else None


def _deployment(path: Path, data: dict[str, object]) -> LocalDeployment:
    tf = data["terraform"]
    assert isinstance(tf, dict)
    env = {str(k): str(v) for k, v in dict(data.get("client_env") or {}).items()}  # type: ignore[call-overload]
    if data.get("password_file"):
        env["AIRTASKS_AIRFLOW_USERNAME"] = str(data.get("username") or "admin")
        env["AIRTASKS_AIRFLOW_PASSWORD_FILE"] = str(data["password_file"])
    config = data.get("scaler_config")
    return LocalDeployment(
        path,
        Path(tf["root"]),
        Path(tf["state"]),
        Path(tf["data_dir"]),
        Path(str(config)) if config else None,
        env,
    )


def for_terraform_dir(directory: str | Path) -> LocalDeployment | None:
    """The local deployment that applied `directory` (e.g. envs/local), or None."""
    root = Path(directory).resolve()
    found = _read(root)
    if found is None:
        return None
    deployment = _deployment(*found)
    return deployment if deployment.terraform_root == root else None


def for_config_file(path: str | Path) -> LocalDeployment | None:
    """The local deployment whose scaler config file is `path` (.run/scaler_config.json), or None."""
    config = Path(path).resolve()
    found = _read(config.parent)
    if found is None:
        return None
    deployment = _deployment(*found)
    return deployment if deployment.scaler_config == config else None
