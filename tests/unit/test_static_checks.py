"""The package's static checks run in `make test` too, so CI holds them and not only `make lint`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, timeout=600, check=False
    )


def test_mypy_strict_is_clean_on_the_package() -> None:
    out = _run("mypy")  # the [tool.mypy] table: strict, glue/airtasks
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Success: no issues found" in out.stdout


@pytest.mark.parametrize("command", [("check",), ("format", "--check")], ids=["lint", "format"])
def test_ruff_is_clean(command: tuple[str, ...]) -> None:
    out = _run("ruff", *command, "glue", "tests", "dags", "bench")
    assert out.returncode == 0, out.stdout + out.stderr
