"""The checks' CPU-time bound: a command past it is stopped and named, one within it just runs."""

from __future__ import annotations

import sys

import pytest

from tests.support.computing import run_computing


def test_a_command_past_its_cpu_limit_is_stopped_and_named() -> None:
    with pytest.raises(pytest.fail.Exception, match=r"python3?[\d.]* was stopped after 1 s of CPU time"):
        run_computing([sys.executable, "-c", "while True: pass"], cpu_seconds=1)


def test_a_command_within_its_limit_keeps_its_output_and_status() -> None:
    proc = run_computing([sys.executable, "-c", "print('done'); raise SystemExit(3)"], cpu_seconds=30)
    assert (proc.returncode, proc.stdout) == (3, "done\n")
