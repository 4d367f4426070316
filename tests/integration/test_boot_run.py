"""The boot scripts run for real: bash, the aws CLI and a moto server, with a small IMDSv2
stand-in on loopback. Each run is in its own mount and UTS namespace, so setting the hostname and
writing /etc/docker/daemon.json touch nothing on this machine.

- worker, join info absent or still the placeholder: one log line per try with bounded back-off,
  then a clear error and exit 1 when the budget runs out;
- manager on the host's Swarm (docker lock held): publishes both tokens and its address to SSM,
  never prints a token, and a second run changes nothing; a worker then finds the join info.
The join of a worker VM itself is exercised by the cluster-in-a-box tests (a dockerd per node).
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import docker
import pytest

from airtasks_dev.devstack.moto import MotoServer, run_moto
from tests.support.services.http_stub import QuietHandler, serving
from tests.support.services.imds_stub import imds_stub
from tests.terraform.render import render_boot_scripts

pytestmark = pytest.mark.integration

INSTANCE_ID = "i-0123456789abcdef0"
BUDGET = 15  # seconds of back-off the worker gets here (production default: 900)


class _Gcp(QuietHandler):
    """The GCE metadata server and the Secret Manager REST API (`:access`, `:addVersion`)."""

    secrets: dict[str, list[str]] = {}  # secret id -> base64 payloads, newest last
    meta = {
        "instance/name": "airtasks-boot-default-x1z2",
        "instance/network-interfaces/0/ip": "127.0.0.1",
        "project/project-id": "demo-project",
        "instance/service-accounts/default/token": json.dumps(
            {"access_token": "ya29.fake", "expires_in": 3599}
        ),
    }

    def do_GET(self) -> None:
        if self.path.startswith("/computeMetadata/v1/"):
            if self.headers.get("Metadata-Flavor") != "Google":
                self._send(403, "")
                return
            value = self.meta.get(self.path.removeprefix("/computeMetadata/v1/"))
            self._send(200 if value else 404, value or "")
            return
        match = re.fullmatch(r"/v1/projects/demo-project/secrets/([\w-]+)/versions/latest:access", self.path)
        if not match or self.headers.get("Authorization") != "Bearer ya29.fake":
            self._send(403, "{}")
        elif not self.secrets.get(match.group(1)):
            self._send(404, json.dumps({"error": {"code": 404, "status": "NOT_FOUND"}}))
        else:
            self._send(200, json.dumps({"payload": {"data": self.secrets[match.group(1)][-1]}}))

    def do_POST(self) -> None:
        match = re.fullmatch(r"/v1/projects/demo-project/secrets/([\w-]+):addVersion", self.path)
        if not match or self.headers.get("Authorization") != "Bearer ya29.fake":
            self._send(403, "{}")
            return
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.secrets.setdefault(match.group(1), []).append(body["payload"]["data"])
        self._send(200, "{}")


@pytest.fixture
def gcp() -> Iterator[tuple[str, dict[str, list[str]]]]:
    _Gcp.secrets = {}
    with serving(_Gcp) as address:
        yield address, _Gcp.secrets


@pytest.fixture(scope="module")
def imds() -> Iterator[str]:
    with imds_stub(INSTANCE_ID) as url:
        yield url


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    with run_moto(log=tmp_path_factory.mktemp("moto-boot") / "moto.log") as server:
        yield server


@pytest.fixture(scope="module")
def scripts() -> dict[str, str]:
    return render_boot_scripts(cluster_name="boot", region="us-east-1", join_timeout_seconds=BUDGET)


@pytest.fixture
def ssm(moto: MotoServer) -> boto3.client:
    moto.reset()
    return boto3.client("ssm", endpoint_url=moto.url, region_name="us-east-1")


def run_boot(
    script: str, moto: MotoServer, imds: str, tmp_path: Path, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a rendered script as root in private mount + UTS namespaces (hostname, /etc stay ours)."""
    (tmp_path / "boot.sh").write_text(script)
    (tmp_path / "hostname").write_text("builder\n")
    (tmp_path / "hosts").write_text("127.0.0.1 localhost\n")
    private = (
        "set -e; mount -t tmpfs tmpfs /etc/docker; mount -t tmpfs tmpfs /usr/local/sbin; "
        f"mount --bind {tmp_path}/hostname /etc/hostname; mount --bind {tmp_path}/hosts /etc/hosts; "
        f'exec bash {tmp_path}/boot.sh; echo "hostname is $(hostname)"'
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        **moto.env(),
        "AWS_EC2_METADATA_SERVICE_ENDPOINT": imds,
        # the venv's aws CLI; Debian's docker CLI (it matches the Debian daemon)
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin:/usr/sbin:/sbin:/usr/local/bin",
        **(extra_env or {}),
    }
    return subprocess.run(
        ["unshare", "--mount", "--uts", "--propagation", "private", "bash", "-c", private],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("state", ["absent", "placeholder"])
def test_worker_backs_off_then_fails_clearly(
    state: str, scripts: dict[str, str], moto: MotoServer, imds: str, ssm: boto3.client, tmp_path: Path
) -> None:
    if state == "placeholder":  # what Terraform leaves until the manager publishes
        for name in ("manager-address", "worker-token"):
            ssm.put_parameter(Name=f"/airtasks/boot/swarm/{name}", Value="airtasks:pending", Type="String")
    started = time.monotonic()
    proc = run_boot(scripts["worker-aws"], moto, imds, tmp_path)
    elapsed = time.monotonic() - started
    log = proc.stdout + proc.stderr

    assert proc.returncode == 1, log
    assert f"airtasks-boot: instance {INSTANCE_ID}, address 127.0.0.1" in log
    assert f"airtasks-boot: hostname set to {INSTANCE_ID}" in log
    assert "engine labels written to /etc/docker/daemon.json" in log
    tries = [line for line in log.splitlines() if line.startswith("airtasks-boot: try ")]
    reason = "does not exist yet" if state == "absent" else "still holds the placeholder"
    assert len(tries) >= 2, log
    assert all(reason in line and "/airtasks/boot/swarm/manager-address" in line for line in tries), log
    assert_backoff(tries)
    error = [line for line in log.splitlines() if "ERROR" in line]
    assert len(error) == 1, log
    assert f"gave up after {BUDGET}s and {len(tries) + 1} tries" in error[0]  # the last try is the error
    assert reason in error[0]
    assert "Is the manager up?" in error[0]
    assert BUDGET - 1 <= elapsed < BUDGET + 60, f"took {elapsed:.0f}s"  # bash SECONDS counts whole seconds
    assert (
        not Path("/etc/docker/daemon.json").exists()
        or "airtasks" not in Path("/etc/docker/daemon.json").read_text()
    )


def test_manager_publishes_join_info_once_and_never_prints_it(
    swarm: docker.DockerClient,
    scripts: dict[str, str],
    moto: MotoServer,
    imds: str,
    ssm: boto3.client,
    tmp_path: Path,
) -> None:
    first = run_boot(scripts["manager-aws"], moto, imds, tmp_path)
    log = first.stdout + first.stderr
    assert first.returncode == 0, log
    assert "Swarm already active here; not initialising" in log
    for name in ("worker-token", "manager-token", "manager-address"):
        assert f"published /airtasks/boot/swarm/{name}" in log

    def value(name: str) -> str:
        param = ssm.get_parameter(Name=f"/airtasks/boot/swarm/{name}", WithDecryption=True)["Parameter"]
        return str(param["Value"])

    worker_token = value("worker-token")
    assert worker_token == swarm.swarm.attrs["JoinTokens"]["Worker"]
    assert value("manager-token") == swarm.swarm.attrs["JoinTokens"]["Manager"]
    assert value("manager-address") == "127.0.0.1:2377"
    assert ssm.get_parameter(Name="/airtasks/boot/swarm/worker-token")["Parameter"]["Type"] == "SecureString"
    assert "SWMTKN" not in log

    again = run_boot(scripts["manager-aws"], moto, imds, tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.count("is up to date") == 3
    assert "published" not in again.stdout
    assert "SWMTKN" not in again.stdout + again.stderr

    worker = run_boot(scripts["worker-aws"], moto, imds, tmp_path)
    wlog = worker.stdout + worker.stderr
    assert "try 1: manager address 127.0.0.1:2377 and worker token found" in wlog, wlog
    assert worker_token not in wlog
    assert "SWMTKN" not in wlog


def assert_backoff(tries: list[str]) -> None:
    """Pauses 2, 4, 8, 16, 30, 30 ... s, each cut to the time left; one line per try."""
    for i, line in enumerate(tries):
        match = re.search(r"try (\d+): .*; next try in (\d+)s \((\d+)s left of \d+s\)$", line)
        assert match, line
        number, pause, left = (int(g) for g in match.groups())
        assert number == i + 1
        assert pause == min(2 ** (i + 1), 30, left), line


def _gcp_env(host: str) -> dict[str, str]:
    return {"GCE_METADATA_HOST": host, "CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER": f"http://{host}/"}


def test_gcp_worker_backs_off_on_missing_secret_versions(
    scripts: dict[str, str],
    moto: MotoServer,
    imds: str,
    gcp: tuple[str, dict[str, list[str]]],
    tmp_path: Path,
) -> None:
    proc = run_boot(scripts["worker-gcp"], moto, imds, tmp_path, _gcp_env(gcp[0]))
    log = proc.stdout + proc.stderr
    assert proc.returncode == 1, log
    assert "instance airtasks-boot-default-x1z2, address 127.0.0.1" in log
    tries = [line for line in log.splitlines() if line.startswith("airtasks-boot: try ")]
    assert len(tries) >= 2, log
    assert all("secret airtasks-boot-manager-address has no version yet" in line for line in tries), log
    assert_backoff(tries)
    assert "ERROR: gave up after" in log


def test_gcp_manager_adds_secret_versions_once(
    swarm: docker.DockerClient,
    scripts: dict[str, str],
    moto: MotoServer,
    imds: str,
    gcp: tuple[str, dict[str, list[str]]],
    tmp_path: Path,
) -> None:
    host, secrets = gcp
    first = run_boot(scripts["manager-gcp"], moto, imds, tmp_path, _gcp_env(host))
    assert first.returncode == 0, first.stdout + first.stderr
    decoded = {k: [base64.b64decode(v).decode() for v in vs] for k, vs in secrets.items()}
    assert decoded == {
        "airtasks-boot-worker-token": [swarm.swarm.attrs["JoinTokens"]["Worker"]],
        "airtasks-boot-manager-token": [swarm.swarm.attrs["JoinTokens"]["Manager"]],
        "airtasks-boot-manager-address": ["127.0.0.1:2377"],
    }
    assert "SWMTKN" not in first.stdout + first.stderr
    again = run_boot(scripts["manager-gcp"], moto, imds, tmp_path, _gcp_env(host))
    assert again.returncode == 0, again.stdout + again.stderr
    assert all(len(v) == 1 for v in secrets.values()), "a second run must not add versions"
    worker = run_boot(scripts["worker-gcp"], moto, imds, tmp_path, _gcp_env(host))
    assert "try 1: manager address 127.0.0.1:2377 and worker token found" in worker.stdout, worker.stdout
    assert "SWMTKN" not in worker.stdout + worker.stderr
