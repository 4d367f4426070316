"""How the tests run Terraform: the repo's CLI config when the local provider mirror exists."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MIRROR = Path("/opt/tf-plugins")
TERRAFORM = shutil.which("terraform") or "terraform"


def terraform_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a terraform subprocess: mirror config where available, no prompts."""
    env = dict(os.environ)
    if MIRROR.is_dir():
        env["TF_CLI_CONFIG_FILE"] = str(REPO / "terraform.rc")
    elif not Path(env.get("TF_CLI_CONFIG_FILE", "/nonexistent")).is_file():
        env.pop("TF_CLI_CONFIG_FILE", None)
    env.setdefault("TF_IN_AUTOMATION", "1")
    env.setdefault("TF_INPUT", "0")
    env.setdefault("CHECKPOINT_DISABLE", "1")
    if extra:
        env.update(extra)
    return env


def google_provider_available() -> bool:
    """True where `terraform init` can get hashicorp/google (a mirror entry, or no mirror config)."""
    if (MIRROR / "registry.terraform.io" / "hashicorp" / "google").is_dir():
        return True
    return os.environ.get("AIRTASKS_GOOGLE_PROVIDER") == "registry"


def run_terraform(root: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`terraform <args>` in `root` with the project's CLI config; the caller checks the result."""
    return subprocess.run(
        [TERRAFORM, *args],
        cwd=root,
        env=terraform_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
