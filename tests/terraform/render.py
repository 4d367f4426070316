"""Render the swarm-boot scripts (both roles, both clouds) with plain terraform: no provider."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from tests.support.terraform import TERRAFORM, terraform_env

RENDER_ROOT = Path(__file__).parent / "swarm-boot" / "render"


def render_boot_scripts(**tf_vars: Any) -> dict[str, str]:
    """{"manager-aws": script, "manager-gcp": ..., "worker-aws": ..., "worker-gcp": ...}."""
    with tempfile.TemporaryDirectory(prefix="airtasks-render-") as tmp:
        env = terraform_env({"TF_DATA_DIR": str(Path(tmp) / "data")})
        plan = str(Path(tmp) / "render.tfplan")
        args = [f"-var={k}={v}" for k, v in tf_vars.items()]

        def tf(*cmd: str) -> str:
            proc = subprocess.run(
                [TERRAFORM, *cmd], cwd=RENDER_ROOT, env=env, capture_output=True, text=True, check=False
            )
            if proc.returncode != 0:
                raise AssertionError(f"terraform {cmd[0]} failed:\n{proc.stdout}\n{proc.stderr}")
            return proc.stdout

        tf("init", "-backend=false", "-input=false", "-no-color")
        tf("plan", "-input=false", "-no-color", "-lock=false", f"-out={plan}", *args)
        shown = json.loads(tf("show", "-json", plan))
    return dict(shown["planned_values"]["outputs"]["scripts"]["value"])
