"""In CI (env CI set) every skip is a failure, except the GCP plans' "hashicorp/google provider not
installed". Skips at collection time (a module-level `pytest.skip`, `importorskip`) count too.

A pytest plugin (tests/conftest.py loads it): the run's exit status turns to 1 and the summary
lists each offending skip.
"""

from __future__ import annotations

import os

import pytest

TOLERATED_SKIP = "hashicorp/google provider not installed"

_bad_skips: list[str] = []


def _record(report: pytest.TestReport | pytest.CollectReport) -> None:
    if not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
    if TOLERATED_SKIP not in reason:
        _bad_skips.append(f"{report.nodeid}: {reason}")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _record(report)


def pytest_collectreport(report: pytest.CollectReport) -> None:
    _record(report)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("CI") and _bad_skips and exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if os.environ.get("CI") and _bad_skips:
        terminalreporter.section("skips are failures in CI")
        for line in _bad_skips:
            terminalreporter.write_line(f"FAILED (skipped in CI) {line}")
