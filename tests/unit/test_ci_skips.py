"""In CI a skip fails the run (exit 1), wherever it happens, except the GCP provider one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.ci_skips import TOLERATED_SKIP

REPO = Path(__file__).resolve().parents[2]
TESTS = {
    "test_ok.py": "def test_ok():\n    pass\n",
    "test_gcp.py": f"import pytest\n\n\ndef test_gcp():\n    pytest.skip({TOLERATED_SKIP!r})\n",
    "test_runtime.py": "import pytest\n\n\ndef test_runtime():\n    pytest.skip('no dockerd')\n",
    "test_module.py": "import pytest\n\npytest.skip('no chromium', allow_module_level=True)\n",
    "test_import.py": "import pytest\n\npytest.importorskip('no_such_module_here')\n",
}


def run(tmp_path: Path, files: list[str], ci: bool = True) -> subprocess.CompletedProcess[str]:
    for name in files:
        (tmp_path / name).write_text(TESTS[name])
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = str(REPO)
    if ci:
        env["CI"] = "true"
    cmd = [sys.executable, "-m", "pytest", "-p", "tests.support.ci_skips", "-c", os.devnull, "-q"]
    cmd += ["--rootdir", str(tmp_path), *files]
    return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, check=False)


def test_the_gcp_skip_is_tolerated(tmp_path: Path) -> None:
    assert run(tmp_path, ["test_ok.py", "test_gcp.py"]).returncode == 0


@pytest.mark.parametrize("skipping", ["test_runtime.py", "test_module.py", "test_import.py"])
def test_any_other_skip_fails_ci(tmp_path: Path, skipping: str) -> None:
    out = run(tmp_path, ["test_ok.py", "test_gcp.py", skipping])
    assert out.returncode == 1, out.stdout
    assert f"FAILED (skipped in CI) {skipping}" in out.stdout
    assert "test_gcp" not in out.stdout.split("skips are failures in CI")[1]


def test_outside_ci_a_skip_is_a_skip(tmp_path: Path) -> None:
    assert run(tmp_path, ["test_ok.py", "test_runtime.py"], ci=False).returncode == 0
