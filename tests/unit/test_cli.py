"""The CLI's outer contract: version, help, one-line errors."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from airtasks import __version__
from airtasks.cli import cli


def test_version_prints_package_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_help_lists_usage() -> None:
    result = CliRunner().invoke(cli, ["--help"], prog_name="airtasks")
    assert result.exit_code == 0
    assert "Usage: airtasks" in result.output


def test_python_dash_m_runs_the_same_cli() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "airtasks", "--version"], capture_output=True, text=True, check=True
    )
    assert __version__ in out.stdout


def test_unknown_command_is_one_line_error_exit_2() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "airtasks", "nope"], check=False, capture_output=True, text=True
    )
    assert out.returncode == 2
    assert "No such command 'nope'" in out.stderr
    assert "Traceback" not in out.stderr
