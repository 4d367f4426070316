"""Validation blocks of the GCP modules and envs/gcp (with modules/gcp/cluster), run by Terraform
itself without the provider.

Variable validation needs no provider: each case plans a root holding only the module's
`variables.tf`, with a valid baseline plus one bad value, and expects the failure to name the
variable and the fix. The baseline of envs/gcp is its `terraform.tfvars.example`, so the example
is checked too.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.terraform import REPO, TERRAFORM, terraform_env

pytestmark = pytest.mark.terraform

CLUSTER = "modules/gcp/cluster"

QUEUE = {"machine_type": "e2-standard-4", "min_size": 0, "max_size": 5, "slots_per_node": 4}

BASELINES: dict[str, dict[str, Any]] = {
    "envs/gcp": {},  # terraform.tfvars.example
    "modules/gcp/network": {"project_id": "my-project-123", "cluster_name": "demo", "region": "europe-west1"},
    "modules/gcp/swarm-manager": {
        "project_id": "my-project-123",
        "cluster_name": "demo",
        "zone": "europe-west1-b",
        "subnetwork": "projects/my-project-123/regions/europe-west1/subnetworks/airtasks-demo",
        "network_tags": ["airtasks-demo-node", "airtasks-demo-manager"],
    },
    "modules/gcp/worker-group": {
        "project_id": "my-project-123",
        "cluster_name": "demo",
        "queue": "default",
        "region": "europe-west1",
        "zones": ["europe-west1-b", "europe-west1-c"],
        "machine_type": "e2-standard-4",
        "max_size": 5,
        "subnetwork": "projects/my-project-123/regions/europe-west1/subnetworks/airtasks-demo",
        "network_tags": ["airtasks-demo-node"],
        "secret_ids": {
            "worker_token": "airtasks-demo-worker-token",
            "manager_token": "airtasks-demo-manager-token",
            "manager_address": "airtasks-demo-manager-address",
        },
    },
}

BAD: list[tuple[str, dict[str, Any], str]] = [
    # envs/gcp
    ("envs/gcp", {"cluster_name": "Demo_1"}, "cluster_name must match"),
    ("envs/gcp", {"cluster_name": "a-very-long-cluster-name-x"}, "cluster_name must match"),
    ("envs/gcp", {"project_id": "123456789012"}, "project_id must be a GCP project id"),
    ("envs/gcp", {"region": "europe-west1-b"}, "region must be a GCP region"),
    ("envs/gcp", {"zones": ["europe-west1-b"]}, "zones must be empty"),
    ("envs/gcp", {"admin_cidrs": ["0.0.0.0/0"]}, "admin_cidrs must hold IPv4 CIDR ranges"),
    ("envs/gcp", {"admin_cidrs": ["10.0.0.300/32"]}, "admin_cidrs must hold IPv4 CIDR ranges"),
    ("envs/gcp", {"web_cidrs": ["everyone"]}, "web_cidrs must hold IPv4 CIDR ranges"),
    ("envs/gcp", {"subnet_cidr": "10.20.0.0/28"}, "subnet_cidr must be an IPv4 CIDR range of /26"),
    ("envs/gcp", {"image": "Debian 12"}, "image must be an image family or path"),
    ("envs/gcp", {"manager_machine_type": "big"}, "manager_machine_type must be a GCE machine type"),
    ("envs/gcp", {"manager_count": 2}, "manager_count must be 1, 3 or 5"),
    ("envs/gcp", {"queues": {}}, "queues must define at least one queue"),
    ("envs/gcp", {"queues": {"manager": QUEUE}}, 'queues must not have a "manager" key'),
    ("envs/gcp", {"queues": {"Default": QUEUE}}, "queues keys must be queue names"),
    ("envs/gcp", {"queues": {"gpu-": QUEUE}}, "queues keys must be queue names"),
    (
        "envs/gcp",
        {"queues": {"q": {**QUEUE, "min_size": 6}}},
        "queues.<name>.min_size must not exceed max_size",
    ),
    (
        "envs/gcp",
        {"queues": {"q": {**QUEUE, "min_size": -1}}},
        "queues.<name>.min_size must be a whole number",
    ),
    ("envs/gcp", {"queues": {"q": {**QUEUE, "max_size": 101}}}, "queues.<name>.max_size must be a whole"),
    ("envs/gcp", {"queues": {"q": {**QUEUE, "slots_per_node": 0}}}, "queues.<name>.slots_per_node must be"),
    ("envs/gcp", {"queues": {"q": {**QUEUE, "machine_type": ""}}}, "queues.<name>.machine_type must be"),
    ("envs/gcp", {"scaler": {"interval_seconds": 0}}, "scaler.interval_seconds must be >= 1"),
    ("envs/gcp", {"scaler": {"airflow_url": "airflow:8080"}}, "scaler.airflow_url must be an http(s) URL"),
    ("envs/gcp", {"stack": {"image": "my image"}}, "stack.image must be an image reference"),
    (
        "envs/gcp",
        {"task_logs": {"retention_days": 0}},
        "task_logs.retention_days must be a whole number of days from 1 to 3650 (e.g. 30), "
        "or set task_logs = null to keep logs on the nodes.",
    ),
    ("envs/gcp", {"task_logs": {"retention_days": 3651}}, "task_logs.retention_days must be a whole number"),
    ("envs/gcp", {"task_logs": {"retention_days": 1.5}}, "task_logs.retention_days must be a whole number"),
    (
        "envs/gcp",
        {"backups": {"every_minutes": 1441}},
        "backups.every_minutes must be a whole number of minutes from 5 to 1440 (once a day), e.g. 60, "
        "or set backups = null to take no backups.",
    ),
    ("envs/gcp", {"backups": {"every_minutes": 2}}, "backups.every_minutes must be a whole number"),
    ("envs/gcp", {"backups": {"every_minutes": 7.5}}, "backups.every_minutes must be a whole number"),
    (
        "envs/gcp",
        {"backups": {"retention_days": 3651}},
        "backups.retention_days must be a whole number of days from 1 to 3650 (e.g. 14), "
        "or set backups = null to take no backups.",
    ),
    ("envs/gcp", {"backups": {"retention_days": 0}}, "backups.retention_days must be a whole number"),
    (
        "envs/gcp",
        {"database": {"managed": True, "tier": "db-n1-standard-2"}},
        "database.tier must be a Cloud SQL for PostgreSQL tier",
    ),
    ("envs/gcp", {"database": {"disk_size": 5}}, "database.disk_size must be a whole number of GB from 10"),
    ("envs/gcp", {"database": {"disk_size": 20.5}}, "database.disk_size must be a whole number of GB"),
    (
        "envs/gcp",
        {"database": {"backup_retention_days": 0}},
        "database.backup_retention_days must be a whole number of daily backups to keep from 1 to 365",
    ),
    ("envs/gcp", {"database": {"backup_retention_days": 366}}, "database.backup_retention_days must be"),
    (
        "envs/gcp",
        {"database": {"engine_version": "16.4"}},
        "database.engine_version must be a PostgreSQL major version Airflow 3 supports, 13 to 17, "
        'such as "16"',
    ),
    ("envs/gcp", {"database": {"engine_version": "12"}}, "database.engine_version must be"),
    ("envs/gcp", {"database": {"password_version": 0}}, "database.password_version must be a whole number"),
    # network
    ("modules/gcp/network", {"admin_cidrs": ["0.0.0.0/0"]}, "admin_cidrs must not contain 0.0.0.0/0"),
    ("modules/gcp/network", {"subnet_cidr": "10.20.1.5/20"}, "subnet_cidr must start at its network address"),
    ("modules/gcp/network", {"region": "europe-west1-b"}, "region must be a GCP region"),
    # swarm-manager
    ("modules/gcp/swarm-manager", {"zone": "europe-west1"}, "zone must be a GCP zone"),
    ("modules/gcp/swarm-manager", {"manager_count": 4}, "set manager_count = 3 for high availability"),
    ("modules/gcp/swarm-manager", {"zones": ["europe-west1"]}, "zones must hold GCP zones"),
    ("modules/gcp/swarm-manager", {"network_tags": []}, "network_tags must list at least one tag"),
    ("modules/gcp/swarm-manager", {"subnetwork": "airtasks-demo"}, "subnetwork must be a subnet self link"),
    ("modules/gcp/swarm-manager", {"boot_disk": {"size_gb": 10}}, "boot_disk.size_gb must be a whole number"),
    ("modules/gcp/swarm-manager", {"gcp_labels": {"Team": "x"}}, "gcp_labels keys must match"),
    ("modules/gcp/swarm-manager", {"labels": {"airtasks.role": "x"}}, "labels must not set airtasks.cluster"),
    ("modules/gcp/swarm-manager", {"stack": {"image": "a b"}}, "stack.image must be an image reference"),
    (
        "modules/gcp/swarm-manager",
        {"stack": {"image": "ghcr.io/acme/airtasks:1.0", "task_logs": "s3://acme-logs/logs"}},
        "stack.task_logs must be a gs://BUCKET/PREFIX URL",
    ),
    (
        "modules/gcp/swarm-manager",
        {
            "stack": {
                "image": "ghcr.io/acme/airtasks:1.0",
                "backups": '{"url": "s3://acme-backups/backups", "every_minutes": 60}',
            }
        },
        "stack.backups must be JSON with a gs://BUCKET/PREFIX url",
    ),
    (
        "modules/gcp/swarm-manager",
        {"stack": {"image": "ghcr.io/acme/airtasks:1.0", "backups": "gs://acme-backups/backups"}},
        "stack.backups must be JSON with a gs://BUCKET/PREFIX url",
    ),
    # worker-group
    ("modules/gcp/worker-group", {"queue": "manager"}, "queue must match"),
    ("modules/gcp/worker-group", {"queue": "gpu-"}, "queue must match"),
    ("modules/gcp/worker-group", {"zones": ["europe-west1-b"]}, "zones must list two or more distinct zones"),
    (
        "modules/gcp/worker-group",
        {"zones": ["europe-west1-b", "europe-west1-b"]},
        "zones must list two or more",
    ),
    ("modules/gcp/worker-group", {"max_size": 0}, "max_size must be a whole number between 1 and 1000"),
    ("modules/gcp/worker-group", {"min_size": 1.5}, "min_size must be a whole number >= 0"),
    ("modules/gcp/worker-group", {"join_timeout_seconds": 0}, "join_timeout_seconds must be a whole number"),
    ("modules/gcp/worker-group", {"boot_disk": {"type": "local-ssd"}}, "boot_disk.type must be"),
    ("modules/gcp/worker-group", {"gcp_labels": {"airtasks-queue": "x"}}, "gcp_labels must not set"),
    (
        "modules/gcp/worker-group",
        {
            "secret_ids": {
                **BASELINES["modules/gcp/worker-group"]["secret_ids"],
                "worker_token": "projects/p/s",
            }
        },
        "secret_ids must hold secret ids",
    ),
]


@pytest.fixture(scope="module")
def variable_roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Per module/env: a root holding only its variables.tf (no provider). envs/gcp passes its
    variables to modules/gcp/cluster, which validates most of them: its root is the env's
    variables.tf and main.tf (the module call) over a copy of the cluster's variables.tf alone."""
    roots = {}
    for rel in BASELINES:
        root = tmp_path_factory.mktemp(rel.replace("/", "-"))
        shutil.copy(REPO / rel / "variables.tf", root / "variables.tf")
        roots[rel] = root
    env = roots["envs/gcp"]
    (env / "cluster").mkdir()
    shutil.copy(REPO / CLUSTER / "variables.tf", env / "cluster" / "variables.tf")
    main = (REPO / "envs/gcp/main.tf").read_text()
    assert f'"../../{CLUSTER}"' in main, "envs/gcp calls modules/gcp/cluster"
    (env / "main.tf").write_text(main.replace(f'"../../{CLUSTER}"', '"./cluster"'))
    init = subprocess.run(
        [TERRAFORM, "init", "-input=false", "-no-color", "-backend=false"],
        cwd=env,
        env=terraform_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert init.returncode == 0, init.stdout + init.stderr
    return roots


def _plan(root: Path, rel: str, values: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    var_files = []
    if rel == "envs/gcp":
        var_files.append(REPO / "envs/gcp/terraform.tfvars.example")
    case = root / "case.tfvars.json"
    case.write_text(json.dumps({**BASELINES[rel], **values}))
    var_files.append(case)
    args = [TERRAFORM, "plan", "-input=false", "-no-color", "-lock=false", "-refresh=false"]
    args += [f"-var-file={f}" for f in var_files]
    return subprocess.run(
        args, cwd=root, env=terraform_env(), capture_output=True, text=True, timeout=120, check=False
    )


def _flat(text: str) -> str:
    return " ".join(text.replace("│", " ").split())


@pytest.mark.parametrize("rel", sorted(BASELINES))
def test_baseline_is_valid(variable_roots: dict[str, Path], rel: str) -> None:
    result = _plan(variable_roots[rel], rel, {})
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("rel", "values", "message"),
    BAD,
    ids=[f"{r.split('/')[-1]}-{next(iter(v))}-{i}" for i, (r, v, _) in enumerate(BAD)],
)
def test_bad_value_fails_naming_variable_and_fix(
    variable_roots: dict[str, Path], rel: str, values: dict[str, Any], message: str
) -> None:
    result = _plan(variable_roots[rel], rel, values)
    output = _flat(result.stdout + result.stderr)
    assert result.returncode != 0, f"{rel}: {values} was accepted"
    assert "Invalid value for variable" in output, output[-2000:]
    assert _flat(message) in output, output[-2000:]
