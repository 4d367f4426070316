"""`make up` (local mode), the Airflow part: standalone Airflow from the repo's dags/, healthy
well within the 90 s budget, and `airtasks trigger ... --wait` works with no settings at all."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from airtasks.devstack.airflow import start_airflow, stop_airflow
from tests.support.ports import free_port

pytestmark = pytest.mark.integration

AIRTASKS = str(Path(sys.executable).with_name("airtasks"))
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


def test_make_up_airflow_then_trigger_with_no_settings(tmp_path: Path) -> None:
    project = tmp_path / "clone"
    run_dir = project / ".run"
    handle = start_airflow(
        run_dir, free_port(), {"AIRTASKS_EXAMPLE_MARKER": "1"}, timeout=120, user_state=False
    )
    try:
        assert handle.seconds < 90, f"UI healthy after {handle.seconds:.0f}s"
        state = json.loads((run_dir / "local.json").read_text())
        assert state["url"] == handle.url
        password = json.loads(Path(state["password_file"]).read_text())["admin"]
        assert Path(state["password_file"]).stat().st_mode & 0o777 == 0o600
        assert password not in (run_dir / "local.json").read_text()

        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRTASKS_")}
        env["XDG_STATE_HOME"] = str(tmp_path / "xdg")  # only the repo's .run/local.json may help
        out = subprocess.run(
            [
                AIRTASKS,
                "trigger",
                "example_trigger_target",
                "--conf",
                '{"n": 3}',
                "--wait",
                "--timeout",
                "120",
            ],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert out.returncode == 0, out.stdout + out.stderr
        assert out.stdout.split()[-1] == "success"
        log = handle.log.read_text(errors="replace")
        assert password not in log, "the admin password never reaches a log"

        # The Air-Tasks plugin (cluster page) is loaded, and behind the login.
        assert httpx.get(f"{handle.url}/airtasks/api/view", timeout=30).status_code == 401
        token = httpx.post(
            f"{handle.url}/auth/token", json={"username": "admin", "password": password}, timeout=30
        ).json()["access_token"]
        view = httpx.get(
            f"{handle.url}/airtasks/api/view", headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        assert view.status_code == 200, view.text
        assert "no scaler config" in view.json()["problems"][0]  # this test starts Airflow without one
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "make-up-airflow-seconds.txt").write_text(f"{handle.seconds:.1f}\n")
    finally:
        assert stop_airflow(run_dir)
    assert not (run_dir / "local.json").exists()
    assert not stop_airflow(run_dir)
