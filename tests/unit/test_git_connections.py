"""A private repository's credential in the stack and at container start: the Swarm secret mounted
into the services that clone (dag-processor, workers) and nowhere else, by name only; and the
entry point's helper putting the token (https) or deploy key (ssh) into the bundle's connection,
refusing one that does not fit the URL, never saying the value."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from airtasks.cli import cli
from airtasks.stack import git_credentials as gitcred
from airtasks.stack.bundles import BundleError, parse_dag_bundles
from airtasks.stack.git_connections import GitConnectionError, connections, with_credential
from airtasks.stack.render import render_stack
from tests.unit.test_git_credentials import KEY, TOKEN

PRIVATE = [
    {
        "name": "team",
        "git": {"url": "https://git.example.org/team/dags.git", "credential": "/team/git-token"},
    },
    {"name": "ops-x", "git": {"url": "git@git.example.org:ops/dags.git", "credential": "/ops/deploy-key"}},
    {"name": "public", "git": {"url": "https://git.example.org/public/dags.git"}},
]
NAMES = {"team": "airtasks_git_team_0123456789ab", "ops-x": "airtasks_git_ops_x_ba9876543210"}


# ---- the stack ---------------------------------------------------------------------------------


def rendered() -> tuple[str, dict[str, Any]]:
    text = render_stack(dag_bundles=parse_dag_bundles(json.dumps(PRIVATE)), git_secret_names=NAMES)
    return text, yaml.safe_load(text)


def test_the_services_that_clone_mount_each_credential_the_others_not() -> None:
    _, stack = rendered()
    cloning = {"airflow-dag-processor", "worker-manager", "worker-default"}
    expected = {
        "AIRFLOW_CONN_AIRTASKS_DAGS_TEAM": "airtasks_git_team",
        "AIRFLOW_CONN_AIRTASKS_DAGS_OPS_X": "airtasks_git_ops_x",
    }
    for name, service in stack["services"].items():
        secrets = set(service.get("secrets", []))
        env = service.get("environment") or {}
        if name in cloning:
            assert {"airtasks_git_team", "airtasks_git_ops_x"} <= secrets, name
            assert json.loads(env["AIRTASKS_GIT_CONNECTIONS"]) == expected, name
        else:  # the scheduler, triggerer, API server, init, Flower: they never clone
            assert not [s for s in secrets if s.startswith("airtasks_git_")], name
            assert "AIRTASKS_GIT_CONNECTIONS" not in env, name
    # Each mount is an external Swarm secret named by the value's fingerprint.
    assert stack["secrets"]["airtasks_git_team"] == {"external": True, "name": NAMES["team"]}
    assert stack["secrets"]["airtasks_git_ops_x"] == {"external": True, "name": NAMES["ops-x"]}


def test_the_stack_names_no_credential_and_holds_no_value() -> None:
    text, stack = rendered()
    assert "/team/git-token" not in text
    assert "/ops/deploy-key" not in text
    keyless = json.loads(
        stack["services"]["airflow-dag-processor"]["environment"]["AIRFLOW_CONN_AIRTASKS_DAGS_TEAM"]
    )
    assert keyless == {"conn_type": "git", "host": "https://git.example.org/team/dags.git"}


def test_no_private_bundle_no_git_secret() -> None:
    text = render_stack(dag_bundles=parse_dag_bundles(json.dumps(PRIVATE[2:])))
    assert "airtasks_git_" not in text
    assert "AIRTASKS_GIT_CONNECTIONS" not in text


def test_a_credential_without_its_swarm_secret_is_refused() -> None:
    with pytest.raises(BundleError, match=r"--git-credential team=/team/git-token"):
        render_stack(
            dag_bundles=parse_dag_bundles(json.dumps(PRIVATE)), git_secret_names={"ops-x": NAMES["ops-x"]}
        )


def test_render_reads_the_names_secrets_create_wrote(tmp_path: Path) -> None:
    names = tmp_path / "git_secrets.json"
    gitcred.write_names(names, NAMES)
    out = tmp_path / "stack.yml"
    args = [
        "stack",
        "render",
        "--dag-bundles",
        json.dumps(PRIVATE),
        "--git-secrets",
        str(names),
        "-o",
        str(out),
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(out.read_text())["secrets"]["airtasks_git_team"]["name"] == NAMES["team"]


# ---- the connection at container start ---------------------------------------------------------

HTTPS = {"conn_type": "git", "host": "https://git.example.org/team/dags.git"}
SSH = {"conn_type": "git", "host": "git@git.example.org:ops/dags.git"}


def test_https_takes_the_token_as_the_password() -> None:
    assert with_credential(HTTPS, f"{TOKEN}\n".encode(), "s") == {**HTTPS, "password": TOKEN}


def test_ssh_takes_the_deploy_key_in_the_extra() -> None:
    conn = with_credential(SSH, KEY.encode(), "s")
    assert conn["extra"] == {"private_key": KEY + "\n", "strict_host_key_checking": "accept-new"}
    assert "password" not in conn


@pytest.mark.parametrize(
    ("conn", "value", "words"),
    [
        (HTTPS, KEY.encode(), "holds several lines or a private key, but https://"),
        (SSH, TOKEN.encode(), "holds no private key, but git@git.example.org:ops/dags.git is an ssh URL"),
        (HTTPS, b"  \n", "is empty"),
        (HTTPS, b"\xff\xfe", "is not text"),
    ],
)
def test_a_credential_that_does_not_fit_the_url_is_refused(
    conn: dict[str, str], value: bytes, words: str
) -> None:
    with pytest.raises(GitConnectionError, match="secret airtasks_git_team") as info:
        with_credential(conn, value, "airtasks_git_team")
    assert words in str(info.value)
    assert TOKEN not in str(info.value)
    assert "OPENSSH" not in str(info.value)


def test_connections_reads_the_mounted_secret(tmp_path: Path) -> None:
    (tmp_path / "airtasks_git_team").write_text(TOKEN)
    environ = {
        "AIRTASKS_GIT_CONNECTIONS": json.dumps({"AIRFLOW_CONN_AIRTASKS_DAGS_TEAM": "airtasks_git_team"}),
        "AIRFLOW_CONN_AIRTASKS_DAGS_TEAM": json.dumps(HTTPS),
    }
    out = connections(environ, tmp_path)
    assert json.loads(out["AIRFLOW_CONN_AIRTASKS_DAGS_TEAM"]) == {**HTTPS, "password": TOKEN}
    with pytest.raises(
        GitConnectionError, match=r"cannot read .*airtasks_git_team.* must mount the Swarm secret"
    ):
        connections(environ, tmp_path / "nowhere")
