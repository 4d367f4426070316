"""checkov (offline) on modules/ and envs/: no failed check. A check that does not apply is
suppressed in the resource block itself with `#checkov:skip=ID:one-line reason`, never here.

checkov pins packages that clash with Airflow's, so it lives in its own venv, `.venv/tools`
(`make setup`); this test creates it when it is missing (about a minute, once).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.computing import run_computing
from tests.support.terraform import REPO

TOOLS = REPO / ".venv" / "tools"
REQUIREMENTS = REPO / ".ci" / "tools-requirements.txt"
CHECKOV = TOOLS / "bin" / "checkov"
OFFLINE = {"BC_SKIP_MAPPING": "TRUE", "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true", "PYTHONWARNINGS": "ignore"}
# checkov needs about 10 s of CPU for each directory.
CPU_SECONDS = 120
SKIP_COMMENT = re.compile(r"#\s*checkov:skip=([A-Z0-9_]+)(?::(.*))?")


def ensure_checkov() -> Path:
    """The tools venv with the pinned checkov, created here when `make setup` has not made it."""
    stamp = TOOLS / ".installed"
    if CHECKOV.exists() and stamp.exists() and stamp.stat().st_mtime >= REQUIREMENTS.stat().st_mtime:
        return CHECKOV
    python = os.environ.get("PYTHON", "python3.11")
    if subprocess.run(["which", python], capture_output=True, check=False).returncode:
        python = sys.executable
    subprocess.run([python, "-m", "venv", str(TOOLS)], check=True, capture_output=True)
    pip = [str(TOOLS / "bin" / "pip"), "install", "--quiet"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True, capture_output=True)
    subprocess.run([*pip, "-r", str(REQUIREMENTS)], check=True, capture_output=True, timeout=600)
    stamp.touch()
    return CHECKOV


def run_checkov(directory: str) -> list[dict[str, Any]]:
    """checkov's JSON report(s) for one directory (a list: one per framework run)."""
    proc = run_computing(
        [
            str(ensure_checkov()),
            "-d",
            str(REPO / directory),
            "--framework",
            "terraform",
            "--skip-download",
            "--quiet",
            "--output",
            "json",
        ],
        cpu_seconds=CPU_SECONDS,
        env={**os.environ, **OFFLINE},
    )
    assert proc.returncode in (0, 1), f"checkov failed to run ({proc.returncode}):\n{proc.stderr[-3000:]}"
    out = proc.stdout.strip()
    if not out or out == "[]":
        return []
    report = json.loads(out)
    return report if isinstance(report, list) else [report]


@pytest.fixture(scope="module", params=["modules", "envs"])
def report(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    return request.param, run_checkov(request.param)


def test_no_failed_checks(report: tuple[str, list[dict[str, Any]]]) -> None:
    directory, runs = report
    failed = [c for run in runs for c in run.get("results", {}).get("failed_checks", [])]
    lines = [
        f"{c['check_id']} {c['check_name']}: {c['resource']} ({c['file_path']}:{c['file_line_range'][0]})"
        for c in failed
    ]
    assert not failed, (
        f"checkov found {len(failed)} failed checks in {directory}/ (fix them, or suppress one that does "
        "not apply with `#checkov:skip=ID:reason` inside the resource block):\n" + "\n".join(lines)
    )
    passed = sum(run.get("summary", {}).get("passed", 0) for run in runs)
    assert passed > 50, f"checkov passed only {passed} checks in {directory}/: did it see the files?"


def test_every_suppression_gives_a_reason() -> None:
    """`#checkov:skip=ID:reason` with a real one-line reason, for every skip in modules/ and envs/."""
    skips = []
    for path in sorted([*REPO.glob("modules/**/*.tf"), *REPO.glob("envs/**/*.tf")]):
        if ".terraform" in path.parts:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            match = SKIP_COMMENT.search(line)
            if match:
                skips.append((f"{path.relative_to(REPO)}:{number}", match.group(1), (match.group(2) or "")))
    assert skips, "no suppression at all: then this test can go"
    for where, check, reason in skips:
        assert len(reason.split()) >= 4, f"{where}: skip of {check} needs a one-line reason"
