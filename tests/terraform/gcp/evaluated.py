"""What the GCP tests that evaluate modules/gcp/cluster's locals with Terraform share (the google
provider cannot be had here, so a test copies the parts it needs into a root of its own): the
parsed module, a stand-in for modules/gcp/swarm-manager's boot call and the cluster's call of it,
and applying a case.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from tests.support.terraform import REPO, run_terraform
from tests.support.tfdocs import TfModule, load_module

CLUSTER = "modules/gcp/cluster"
MANAGER = "modules/gcp/swarm-manager"
QUEUE = {"machine_type": "e2-standard-4", "min_size": 0, "max_size": 5, "slots_per_node": 4}

# modules/gcp/swarm-manager's boot call, its `stack` passed as the manager passes it
# (test_static.py checks the rest).
MANAGER_TF = """
module "boot" {
  source              = "%(boot)s"
  cloud               = "gcp"
  role                = "manager"
  cluster_name        = var.cluster_name
  project_id          = var.project_id
  worker_token_ref    = "airtasks-demo-worker-token"
  manager_token_ref   = "airtasks-demo-manager-token"
  manager_address_ref = "airtasks-demo-manager-address"
  stack               = var.stack
}

output "script" {
  value = module.boot.script
}
"""


def manager_call(addition: str) -> str:
    """modules/gcp/cluster's call of the manager (main.tf), made on the stand-in of `add_manager`,
    with `addition` (e.g. "backups = local.backups_setting") the one part of the cluster's `stack`
    a test evaluates: the cluster's others need the rest of the module."""
    return f"""
module "manager" {{
  source       = "./manager"
  project_id   = var.project_id
  cluster_name = var.cluster_name
  zone         = "europe-west1-b"
  subnetwork   = "projects/my-project-123/regions/europe-west1/subnetworks/airtasks-demo"
  network_tags = ["airtasks-demo-node", "airtasks-demo-manager"]
  # As modules/gcp/cluster hands it over (main.tf), the cluster's other additions left out.
  stack = one([for s in var.stack[*] : merge(s, {{ {addition} }})])
}}
"""


@cache
def cluster() -> TfModule:
    return load_module(REPO / CLUSTER)


def add_manager(root: Path) -> None:
    """A `manager` module in `root` with the swarm-manager's variables and its boot call."""
    (root / "manager").mkdir()
    (root / "manager" / "variables.tf").write_text((REPO / MANAGER / "variables.tf").read_text())
    (root / "manager" / "main.tf").write_text(MANAGER_TF % {"boot": REPO / "modules/swarm-boot"})


def init(root: Path) -> None:
    done = run_terraform(root, "init", "-input=false", "-no-color", "-backend=false")
    assert done.returncode == 0, done.stdout + done.stderr


def case_tfvars(tmp_path: Path, values: dict[str, Any]) -> Path:
    """The cluster's required inputs, a stack, and the case's own values."""
    tfvars = tmp_path / "case.tfvars.json"
    tfvars.write_text(
        json.dumps(
            {
                "project_id": "my-project-123",
                "cluster_name": "demo",
                "queues": {"default": QUEUE},
                "stack": {"image": "ghcr.io/acme/airtasks:1.0"},
                **values,
            }
        )
    )
    return tfvars


def outputs(root: Path, tmp_path: Path, **values: Any) -> dict[str, Any]:
    """Apply `root` (locals and outputs only) with the case's values; its outputs."""
    state = tmp_path / "state.tfstate"
    applied = run_terraform(
        root,
        "apply",
        "-auto-approve",
        "-input=false",
        "-no-color",
        f"-state={state}",
        f"-var-file={case_tfvars(tmp_path, values)}",
    )
    assert applied.returncode == 0, applied.stdout + applied.stderr
    out = run_terraform(root, "output", "-json", f"-state={state}")
    return {k: v["value"] for k, v in json.loads(out.stdout).items()}


def script_setting(script: str, name: str) -> str:
    """A stack setting (AIRTASKS_STACK_<NAME>) as the boot script carries it."""
    (setting,) = re.findall(rf"^AIRTASKS_STACK_{name}='(.*)'$", script, re.M)
    return str(setting)
