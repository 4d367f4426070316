"""The built wheel stands alone: installed into a clean venv outside the checkout, `airtasks` works.

The wheel is built from a copy of what it is made of (pyproject.toml, README.md, glue/), so the
build leaves nothing in the checkout. The venv has no system site-packages: a dependency missing
from pyproject.toml fails here as it would for a user (pip fetches the declared ones from PyPI;
its cache makes a second run quick). Every command runs from a scratch directory with no
PYTHONPATH, so nothing of the checkout (glue/, dev/, tests/) can stand in for the installed package.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.artifacts import ARTIFACTS

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
# A small valid scaler config (the shape of tests/unit/test_config.py's `good()`).
CONFIG = {
    "backend": "aws",
    "cluster_name": "demo",
    "region": "eu-west-1",
    "sources": {
        "airflow": {"url": "http://airflow-apiserver:8080"},
        "rabbitmq": {"url": "http://rabbitmq:15672", "vhost": "/"},
    },
    "queues": {"default": {"group": "airtasks-demo-default", "min_size": 0, "max_size": 10}},
}


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float) -> str:
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert out.returncode == 0, f"{' '.join(cmd)} exited {out.returncode}:\n{out.stdout}\n{out.stderr}"
    return out.stdout


def _clean_env(home: Path) -> dict[str, str]:
    """The environment of a user's shell: no PYTHONPATH, no active venv, no Air-Tasks settings."""
    drop = ("PYTHON", "VIRTUAL_ENV", "AIRTASKS_", "AIRFLOW", "AWS_", "PIP_REQUIRE")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env["XDG_STATE_HOME"] = str(home / "state")  # no per-user `make up` state file to fall back on
    return env


def test_wheel_installs_into_a_clean_venv_and_runs(tmp_path: Path) -> None:
    timings: dict[str, float] = {}
    env = _clean_env(tmp_path)

    started = time.monotonic()
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    junk = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".mypy_cache")
    shutil.copytree(REPO / "glue", src / "glue", ignore=junk)
    dist = tmp_path / "dist"
    # Build isolation installs the build backend (pyproject's build-system) from the index.
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(src)],
        tmp_path,
        env,
        600,
    )
    (wheel,) = dist.glob("airtasks-*.whl")
    timings["build"] = time.monotonic() - started

    started = time.monotonic()
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], tmp_path, env, 120)
    python, airtasks = str(venv / "bin" / "python"), str(venv / "bin" / "airtasks")
    no_site = _run(
        [python, "-c", "import sys; print(sys.flags.no_site, sys.prefix != sys.base_prefix)"],
        tmp_path,
        env,
        60,
    )
    assert no_site.split() == ["0", "True"]
    _run(
        [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)], tmp_path, env, 900
    )
    timings["install"] = time.monotonic() - started

    started = time.monotonic()
    work = tmp_path / "work"
    work.mkdir()
    where = _run([python, "-c", "import airtasks; print(airtasks.__file__)"], work, env, 60).strip()
    assert Path(where).is_relative_to(venv), f"airtasks came from {where}, not the venv"
    dev_tool = subprocess.run(
        [python, "-c", "import airtasks_dev"], cwd=work, env=env, capture_output=True, check=False
    )
    assert dev_tool.returncode != 0, "the development tooling must not be in the wheel"

    help_text = _run([airtasks, "--help"], work, env, 120)
    for command in ("scale", "status", "config", "trigger", "stack", "secrets", "simulate"):
        assert f"  {command}" in help_text, f"`airtasks --help` lists no {command}:\n{help_text}"
    assert "  dev " not in help_text

    _run([airtasks, "simulate", "--generate", "bursty", "--seed", "3", "--out", "t.csv"], work, env, 120)
    assert (work / "t.csv").stat().st_size > 0
    report = json.loads(_run([airtasks, "simulate", "--trace", "t.csv", "--json"], work, env, 300))
    assert {"airtasks", "seed", "keda", "oracle"} <= set(report["policies"]), report["policies"].keys()
    assert report["tasks"] > 0

    (work / "c.json").write_text(json.dumps(CONFIG))
    shown = _run([airtasks, "config", "--config", "c.json"], work, env, 120)
    rows = {line.split()[0]: line for line in shown.splitlines() if line.strip()}
    assert rows["backend"].split()[1] == "aws", shown
    assert rows["queues.default.group"].split()[1] == "airtasks-demo-default", shown
    timings["commands"] = time.monotonic() - started

    # A figure to read (tests/artifacts), not a pass mark: install time swings with PyPI and the cache.
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "wheel-seconds.txt").write_text("".join(f"{k} {v:.1f}\n" for k, v in timings.items()))
