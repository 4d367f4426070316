"""Suite-wide rules: leaky environment cleared, and in CI a skip is a failure.

The one skip CI tolerates is the GCP plan tests' "hashicorp/google provider not installed".
"""

from __future__ import annotations

import os

import pytest

pytest_plugins = ["tests.support.fixtures"]

TOLERATED_SKIP = "hashicorp/google provider not installed"

# Names a developer's shell may carry that would point a test at a real cloud or another config.
_LEAKY_PREFIXES = ("AIRTASKS_", "AWS_", "GOOGLE_", "CLOUDSDK_")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(_LEAKY_PREFIXES):
            monkeypatch.delenv(name, raising=False)
    # boto3 must never find real credentials or a real region in a test.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


_bad_skips: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
        if TOLERATED_SKIP not in reason:
            _bad_skips.append(f"{report.nodeid}: {reason}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("CI") and _bad_skips and exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if os.environ.get("CI") and _bad_skips:
        terminalreporter.section("skips are failures in CI")
        for line in _bad_skips:
            terminalreporter.write_line(f"FAILED (skipped in CI) {line}")
