"""A private repository's credential, end to end on real parts: an SSM SecureString on the session's
moto server, the real `airtasks secrets create --git-credential` (this checkout's package, in a
process of its own) against the host's Swarm, and the real docker/entrypoint.sh with this venv's
Airflow resolving the bundle's connection.

- The Swarm secret exists, labelled with its bundle and named by the value's fingerprint, and holds
  the value: a one-shot service mounts it beside a secret the test made from the same value, and
  compares the two inside the container (the value is in no service spec and no log). The command's
  output has the secret's name and not the value; a rerun keeps it.
- A parameter that does not exist: the command fails naming it and the fix, and no secret is made.
- The entry point, given the stack's keyless connection, AIRTASKS_GIT_CONNECTIONS and the mounted
  secret, hands the command it runs a connection that `airflow connections get` resolves with the
  token as the password; the environment it was started with never had it.
- The same in the image (`airtasks_image`, built from this checkout), as a Swarm service with the
  secret mounted: Airflow resolves the connection with the secret as its password, while the
  container's own environment (PID 1: what `docker inspect` shows) and the service spec lack it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import docker
import pytest
from docker.models.services import Service

from airtasks.stack.git_credentials import BUNDLE_LABEL, SECRET_PREFIX
from tests.support.services.swarm_node import tiny_image

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def airtasks(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """This checkout's `airtasks` (not whichever the venv's script points at)."""
    return subprocess.run(
        [sys.executable, "-m", "airtasks", *args],
        env={**env, "PYTHONPATH": str(REPO / "glue")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def cleanup(swarm: docker.DockerClient) -> Iterator[list[Any]]:
    """Services and secrets this test made, removed afterwards (services first: they hold secrets)."""
    made: list[Any] = []
    yield made
    for obj in sorted(made, key=lambda o: not isinstance(o, Service)):
        with contextlib.suppress(docker.errors.NotFound):
            obj.remove()
    for secret in swarm.secrets.list(filters={"label": BUNDLE_LABEL}):
        if secret.attrs["Spec"]["Labels"].get(BUNDLE_LABEL, "").startswith("itest"):
            secret.remove()


def same_content(swarm: docker.DockerClient, a: str, b: str, made: list[Any]) -> bool:
    """Whether two Swarm secrets hold the same (one-line) text, compared inside a container."""
    refs = [docker.types.SecretReference(swarm.secrets.get(n).id, n) for n in (a, b)]
    service = swarm.services.create(
        tiny_image(swarm),
        [
            "/bin/sh",
            "-c",
            f'IFS= read -r x < /run/secrets/{a}; IFS= read -r y < /run/secrets/{b}; [ "$x" = "$y" ]',
        ],
        name=f"itest-git-compare-{uuid.uuid4().hex[:8]}",
        secrets=refs,
        restart_policy=docker.types.RestartPolicy(condition="none"),
    )
    made.append(service)
    return finished(service) == "complete"


def finished(service: Service, timeout: float = 180) -> str:
    """The end state of a one-shot service's task: complete (exit 0), failed, rejected."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = [str(t["Status"]["State"]) for t in service.tasks()]
        if states and states[0] in {"complete", "failed", "rejected"}:
            return states[0]
        time.sleep(1)
    raise TimeoutError(f"service {service.name} did not finish: {service.tasks()}")


def test_secrets_create_makes_the_swarm_secret_from_an_ssm_securestring(
    aws_env: dict[str, str], swarm: docker.DockerClient, tmp_path: Path, cleanup: list[Any]
) -> None:
    bundle = f"itest{uuid.uuid4().hex[:6]}"
    parameter = f"/airtasks-itest/{bundle}/git-token"
    token = "ghp_" + secrets.token_hex(20)
    boto3.client("ssm").put_parameter(Name=parameter, Value=token, Type="SecureString")
    names_file = tmp_path / "git_secrets.json"
    args = ["secrets", "create", "--git-only", "--git-credential", f"{bundle}={parameter}"]
    run = airtasks([*args, "--git-secrets-out", str(names_file)], dict(os.environ))
    assert run.returncode == 0, run.stderr
    assert token not in run.stdout + run.stderr

    name = json.loads(names_file.read_text())[bundle]
    assert name == f"{SECRET_PREFIX}{bundle}_{hashlib.sha256(token.encode()).hexdigest()[:12]}"
    assert run.stdout.split() == ["created", name]
    secret = swarm.secrets.get(name)
    assert secret.attrs["Spec"]["Labels"][BUNDLE_LABEL] == bundle
    assert token not in json.dumps(secret.attrs)  # Swarm never hands a value back; nor a label
    expected = swarm.secrets.create(name=f"itest_expected_{bundle}", data=token.encode())
    cleanup.append(expected)
    assert same_content(swarm, name, f"itest_expected_{bundle}", cleanup)
    wrong = swarm.secrets.create(name=f"itest_wrong_{bundle}", data=b"ghp_not_it")
    cleanup.append(wrong)
    assert not same_content(swarm, name, f"itest_wrong_{bundle}", cleanup)  # the comparison can fail

    again = airtasks(args, dict(os.environ))
    assert again.returncode == 0, again.stderr
    assert again.stdout.split() == ["exists", name]


def test_a_missing_parameter_fails_naming_it_and_makes_nothing(
    aws_env: dict[str, str], swarm: docker.DockerClient, tmp_path: Path
) -> None:
    before = {s.name for s in swarm.secrets.list()}
    parameter = f"/airtasks-itest/{uuid.uuid4().hex[:6]}/missing"
    run = airtasks(
        [
            "secrets",
            "create",
            "--git-credential",
            f"team={parameter}",
            "--git-secrets-out",
            str(tmp_path / "n.json"),
        ],
        dict(os.environ),
    )
    assert run.returncode != 0
    assert f"SSM parameter {parameter} does not exist in {aws_env['AWS_DEFAULT_REGION']}" in run.stderr
    assert "aws ssm put-parameter" in run.stderr
    assert {s.name for s in swarm.secrets.list()} == before  # not even the stack's own secrets
    assert not (tmp_path / "n.json").exists()


def test_the_entrypoint_gives_the_bundles_connection_its_token(tmp_path: Path) -> None:
    token = "ghp_" + secrets.token_hex(20)
    run_secrets = tmp_path / "run-secrets"
    run_secrets.mkdir()
    (run_secrets / "airtasks_git_team").write_text(token + "\n")  # as `docker secret create` stores it
    keyless = {"conn_type": "git", "host": "https://git.example.org/team/dags.git"}
    # What the rendered stack gives the dag-processor and the workers (names only).
    env = {
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "PYTHONPATH": str(REPO / "glue"),
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRTASKS_STAY_ROOT": "1",
        "AIRTASKS_SECRETS_DIR": str(run_secrets),
        "AIRFLOW_CONN_AIRTASKS_DAGS_TEAM": json.dumps(keyless),
        "AIRTASKS_GIT_CONNECTIONS": json.dumps({"AIRFLOW_CONN_AIRTASKS_DAGS_TEAM": "airtasks_git_team"}),
    }
    assert token not in json.dumps(env)
    run = subprocess.run(
        [
            "bash",
            str(REPO / "docker" / "entrypoint.sh"),
            "airflow",
            "connections",
            "get",
            "airtasks_dags_team",
            "-o",
            "json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert token not in run.stderr
    (connection,) = json.loads(run.stdout[run.stdout.index("[") :])
    assert connection["conn_type"] == "git"
    assert connection["host"] == keyless["host"]
    assert connection["password"] == token

    # A missing secret stops the service with a message naming it.
    env["AIRTASKS_SECRETS_DIR"] = str(tmp_path / "nowhere")
    failed = subprocess.run(
        ["bash", str(REPO / "docker" / "entrypoint.sh"), "true"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert failed.returncode != 0
    assert "airtasks_git_team" in failed.stderr
    assert "must mount the Swarm secret" in failed.stderr


# In the image: the connection Airflow resolves has the mounted secret as its password, and the
# container's own environment (PID 1, tini: what `docker inspect` shows) and the service spec do not.
IN_IMAGE_CHECK = """
import json, sys
from airflow.models.connection import Connection
token = open("/run/secrets/airtasks_git_team").read().strip()
conn = Connection.get_connection_from_secrets("airtasks_dags_team")
with open("/proc/1/environ", "rb") as fh:
    container_env = fh.read().decode()
ok = conn.password == token and conn.host == "https://git.example.org/team/dags.git"
sys.exit(0 if ok and token not in container_env else 3)
"""


def test_in_the_image_the_entrypoint_fills_the_connection_from_the_swarm_secret(
    swarm: docker.DockerClient, airtasks_image: str, cleanup: list[Any]
) -> None:
    token = "ghp_" + secrets.token_hex(20)
    bundle = f"itest{uuid.uuid4().hex[:6]}"
    secret = swarm.secrets.create(
        name=f"{SECRET_PREFIX}{bundle}_x", data=token.encode(), labels={BUNDLE_LABEL: bundle}
    )
    cleanup.append(secret)
    keyless = {"conn_type": "git", "host": "https://git.example.org/team/dags.git"}
    env = {
        "AIRFLOW_CONN_AIRTASKS_DAGS_TEAM": json.dumps(keyless),
        "AIRTASKS_GIT_CONNECTIONS": json.dumps({"AIRFLOW_CONN_AIRTASKS_DAGS_TEAM": "airtasks_git_team"}),
    }
    service = swarm.services.create(
        airtasks_image,
        args=["python", "-c", IN_IMAGE_CHECK],  # the image's entry point runs it
        name=f"itest-git-image-{bundle}",
        env=[f"{k}={v}" for k, v in env.items()],
        secrets=[docker.types.SecretReference(secret.id, secret.name, filename="airtasks_git_team")],
        restart_policy=docker.types.RestartPolicy(condition="none"),
    )
    cleanup.append(service)
    assert finished(service) == "complete", service.tasks()
    assert token not in json.dumps(service.attrs)
