"""Terraform on one root module with its working data and state kept in the run directory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from airtasks.errors import AirtasksError

PROVIDER_MIRROR = Path("/opt/tf-plugins")


class Terraform:
    """`terraform -chdir=<root>` with TF_DATA_DIR and -state under `work_dir`; output logged."""

    def __init__(
        self, root: Path, work_dir: Path, env: dict[str, str], cli_config: Path | None = None
    ) -> None:
        self.root = root
        self.work_dir = work_dir
        self.state = work_dir / "terraform.tfstate"
        self.log = work_dir / "terraform.log"
        self.data_dir = work_dir / "data"
        self.binary = shutil.which("terraform")
        self.env = {**os.environ, **env, "TF_DATA_DIR": str(self.data_dir), "TF_IN_AUTOMATION": "1"}
        self.env.setdefault("CHECKPOINT_DISABLE", "1")
        if cli_config and PROVIDER_MIRROR.is_dir() and cli_config.is_file():
            self.env["TF_CLI_CONFIG_FILE"] = str(cli_config)

    def run(self, *args: str, timeout: float = 900) -> str:
        if not self.binary:
            raise AirtasksError("terraform is not on PATH; install Terraform >= 1.11")
        self.work_dir.mkdir(parents=True, exist_ok=True)
        cmd = [self.binary, f"-chdir={self.root}", *args]
        proc = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=timeout, check=False)
        with self.log.open("a") as log:
            log.write(f"$ terraform {' '.join(args)}\n{proc.stdout}{proc.stderr}\n")
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise AirtasksError(f"terraform {args[0]} in {self.root} failed (full log: {self.log}):\n{tail}")
        return proc.stdout

    def init(self) -> None:
        self.run("init", "-input=false", "-no-color")

    def apply(self, variables: dict[str, Any] | None = None) -> None:
        self.run(
            "apply", "-auto-approve", "-input=false", "-no-color", f"-state={self.state}", *_vars(variables)
        )

    def destroy(self, variables: dict[str, Any] | None = None) -> None:
        self.run(
            "destroy", "-auto-approve", "-input=false", "-no-color", f"-state={self.state}", *_vars(variables)
        )

    def outputs(self) -> dict[str, Any]:
        raw = json.loads(self.run("output", "-json", f"-state={self.state}"))
        return {name: item.get("value") for name, item in raw.items()}


def _vars(variables: dict[str, Any] | None) -> list[str]:
    return [
        f"-var={k}={json.dumps(v) if isinstance(v, dict | list) else v}" for k, v in (variables or {}).items()
    ]
