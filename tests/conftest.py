"""Suite-wide rules: leaky environment cleared, and in CI a skip is a failure
(tests/support/ci_skips.py; the one skip CI tolerates is the GCP plans' "hashicorp/google
provider not installed")."""

from __future__ import annotations

import os

import pytest

pytest_plugins = ["tests.support.fixtures", "tests.support.ci_skips"]

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
