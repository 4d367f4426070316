"""The GCP manager's publish (gcp.sh `store_write` -> `store_put`, rendered by modules/swarm-boot)
run by bash against a stand-in metadata server and Secret Manager that refuses `:addVersion`
with 403 for a while, as it does until a new IAM grant has reached it. No Docker: the script's
`main` is replaced by the publish of one secret."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.services.http_stub import QuietHandler, serving
from tests.terraform.render import render_boot_scripts

pytestmark = pytest.mark.integration

BUDGET = 30  # join_timeout_seconds: also the manager's budget for adding a version
SHORT_BUDGET = 6  # for the run that gives up
SECRET = "airtasks-boot-worker-token"
TOKEN = "SWMTKN-1-fake-worker-token"  # what the manager would publish


class _SecretManager(QuietHandler):
    """Metadata server + Secret Manager: `:access` finds no version; `:addVersion` answers
    `refusals` with their status, in order, then 200 and keeps the version."""

    refusals: list[int] = []
    versions: list[str] = []
    posts: list[float] = []
    meta = {
        "instance/name": "airtasks-boot-manager",
        "instance/network-interfaces/0/ip": "127.0.0.1",
        "instance/service-accounts/default/token": json.dumps(
            {"access_token": "ya29.fake", "expires_in": 3599}
        ),
    }

    def do_GET(self) -> None:
        if self.path.startswith("/computeMetadata/v1/"):
            value = self.meta.get(self.path.removeprefix("/computeMetadata/v1/"))
            self._send(200 if value else 404, value or "")
        else:
            self._send(404, json.dumps({"error": {"code": 404, "status": "NOT_FOUND"}}))

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        assert self.path == f"/v1/projects/demo-project/secrets/{SECRET}:addVersion", self.path
        assert self.headers.get("Authorization") == "Bearer ya29.fake"
        self.posts.append(time.monotonic())
        if self.refusals:
            code = self.refusals.pop(0)
            self._send(code, json.dumps({"error": {"code": code, "status": "PERMISSION_DENIED"}}))
            return
        self.versions.append(body["payload"]["data"])
        self._send(200, "{}")


@pytest.fixture(scope="module")
def publish_script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    script = render_boot_scripts(cluster_name="boot", join_timeout_seconds=BUDGET)["manager-gcp"]
    body, last = script.rstrip().rsplit("\n", 1)
    assert last == 'main "$@"', last
    path = tmp_path_factory.mktemp("publish") / "publish.sh"
    # The budget comes from the environment, so that one rendering serves a long and a short run.
    publish = [
        'AIRTASKS_JOIN_TIMEOUT="$BUDGET"',
        "read_metadata",
        f'store_write "$AIRTASKS_WORKER_TOKEN_REF" {TOKEN} x',
    ]
    path.write_text("\n".join([body, *publish, ""]))
    return path


@pytest.fixture
def secret_manager() -> Iterator[str]:
    _SecretManager.refusals, _SecretManager.versions, _SecretManager.posts = [], [], []
    with serving(_SecretManager) as address:
        yield address


def _run(script: Path, host: str, budget: int = BUDGET) -> tuple[int, str]:
    env = {
        **os.environ,
        "BUDGET": str(budget),
        "GCE_METADATA_HOST": host,
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER": f"http://{host}/",
    }
    proc = subprocess.run(
        ["bash", str(script)], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    return proc.returncode, proc.stdout + proc.stderr


def test_publishes_after_two_403s_logging_each_try(publish_script: Path, secret_manager: str) -> None:
    _SecretManager.refusals = [403, 403]
    code, log = _run(publish_script, secret_manager)
    assert code == 0, log
    assert [base64.b64decode(v).decode() for v in _SecretManager.versions] == [TOKEN]
    tries = [line for line in log.splitlines() if line.startswith("airtasks-boot: try ")]
    assert len(tries) == 3, log
    for number, (line, pause) in enumerate(zip(tries[:2], (2, 4), strict=True), start=1):
        assert re.search(
            rf"try {number}: adding a version to secret {SECRET} failed: HTTP 403, permission denied .*; "
            rf"next try in {pause}s \(\d+s left of {BUDGET}s\)$",
            line,
        ), line
    assert tries[2] == f"airtasks-boot: try 3: added a version to secret {SECRET}"
    assert f"airtasks-boot: published {SECRET}" in log
    gaps = [b - a for a, b in zip(_SecretManager.posts, _SecretManager.posts[1:], strict=False)]
    assert gaps[0] >= 1.9, f"back-off between tries: {gaps}"
    assert gaps[1] >= 3.9, f"back-off between tries: {gaps}"
    assert TOKEN not in log


def test_gives_up_clearly_when_the_budget_runs_out(publish_script: Path, secret_manager: str) -> None:
    _SecretManager.refusals = [403] * 20
    started = time.monotonic()
    code, log = _run(publish_script, secret_manager, SHORT_BUDGET)
    assert code == 1, log
    assert not _SecretManager.versions
    assert SHORT_BUDGET - 1 <= time.monotonic() - started < SHORT_BUDGET + 20
    errors = [line for line in log.splitlines() if "ERROR" in line]
    assert len(errors) == 1, log
    tries = len(_SecretManager.posts)
    assert f"could not add a version to secret {SECRET} after {tries} tries: HTTP 403" in errors[0]
    assert "secretmanager.versions.add" in errors[0]
    assert TOKEN not in log


def test_a_bad_request_is_not_retried(publish_script: Path, secret_manager: str) -> None:
    _SecretManager.refusals = [400]
    code, log = _run(publish_script, secret_manager)
    assert code == 1, log
    assert len(_SecretManager.posts) == 1
    assert f"could not add a version to secret {SECRET} after 1 tries: HTTP 400" in log
