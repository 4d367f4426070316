"""`airtasks dev`: repo discovery, modes, the moto launcher, terraform variables, the summary."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from airtasks.cli import cli
from airtasks.devstack import moto
from airtasks.devstack.cli import MODES, find_repo
from airtasks.devstack.steps import LOCAL_STEPS, MotoStep, TerraformStep, describe
from airtasks.devstack.terraform import _vars
from airtasks.errors import AirtasksError

REPO = Path(__file__).resolve().parents[2]


def test_find_repo_from_a_subfolder() -> None:
    assert find_repo(REPO / "envs" / "local") == REPO


def test_find_repo_falls_back_to_the_package_checkout(tmp_path: Path) -> None:
    assert find_repo(tmp_path) == REPO  # editable install: the package lives in the checkout


@pytest.mark.parametrize("mode", ["swarm"])
def test_later_modes_say_not_yet_available(mode: str) -> None:
    result = CliRunner().invoke(cli, ["dev", "up", "--mode", mode])
    assert isinstance(result.exception, AirtasksError)
    assert f"--mode {mode} is not yet available" in str(result.exception)


def test_cluster_mode_summary_names_the_ui_login_and_how_to_watch_nodes(tmp_path: Path) -> None:
    from airtasks.devstack import cluster  # noqa: PLC0415

    assert [s.name for s in MODES["cluster"]] == [cluster.ClusterStep.name]
    text = cluster.describe(
        {
            "url": "https://10.213.0.10",
            "username": "admin",
            "password_file": "/repo/.run/cluster/admin_password",
            "ca_bundle": "/repo/.run/cluster/tls_cert.pem",
            "manager": "i-0abc",
            "manager_docker": "/repo/.run/cluster/manager.sock",
            "groups": {"default": "airtasks-local-default"},
            "nodes": "/repo/.run/cluster/cloud/nodes/local",
        },
        tmp_path,
    )
    assert "https://10.213.0.10" in text
    assert "/repo/.run/cluster/admin_password" in text
    assert "DOCKER_HOST=unix:///repo/.run/cluster/manager.sock docker node ls" in text
    assert "default: airtasks-local-default" in text


def test_cluster_mode_needs_the_checkout(tmp_path: Path) -> None:
    from airtasks.devstack import cluster  # noqa: PLC0415

    with pytest.raises(AirtasksError, match="full repository checkout"):
        cluster._checkout(tmp_path)


def test_local_mode_is_moto_then_terraform() -> None:
    assert [s.name for s in LOCAL_STEPS] == [MotoStep.name, TerraformStep.name]


def test_terraform_vars_are_hcl_literals() -> None:
    assert _vars({"airflow_port": 8080, "queues": {"q": {"min_size": 0}}}) == [
        "-var=airflow_port=8080",
        '-var=queues={"q": {"min_size": 0}}',
    ]


def test_describe_lists_groups_parameters_and_config() -> None:
    text = describe(
        {
            "manager_instance_id": "i-1",
            "manager_address": "10.0.0.4",
            "ssm_parameters": {"worker_token": "/airtasks/local/swarm/worker-token"},
            "scaler_config": {
                "cluster_name": "local",
                "region": "us-east-1",
                "queues": {
                    "default": {
                        "group": "airtasks-local-default",
                        "min_size": 0,
                        "max_size": 3,
                        "slots_per_node": 2,
                    }
                },
            },
        },
        {"AWS_ENDPOINT_URL": "http://127.0.0.1:1"},
    )
    assert "group airtasks-local-default: min 0, max 3, 2 slots per node" in text
    assert "/airtasks/local/swarm/worker-token" in text
    assert '"cluster_name": "local"' in text


def test_moto_starts_in_the_background_and_stops_by_pid(tmp_path: Path) -> None:
    info = moto.start(tmp_path)
    try:
        assert moto.is_running(info)
        assert moto.read(tmp_path) == info
        assert moto.start(tmp_path) == info  # already up: reused, not a second server
    finally:
        assert moto.stop(tmp_path)
    assert not moto.is_running(info)
    assert moto.read(tmp_path) is None
    assert not moto.stop(tmp_path)
