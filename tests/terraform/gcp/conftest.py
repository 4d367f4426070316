"""GCP plan tests: dummy credentials for the google provider.

Plans need no real credentials (no data source is read when `zones` is given), but the google
provider refuses to configure without any: the tests give it a dummy access token, the way
cloud-foundation-fabric's CI gives it a dummy credentials file.
"""

from __future__ import annotations

import pytest


@pytest.fixture
def google_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A dummy token: enough for the provider to configure and plan, useless for any API call."""
    monkeypatch.setenv("GOOGLE_OAUTH_ACCESS_TOKEN", "dummy-token-for-offline-plans")
    monkeypatch.setenv("GOOGLE_PROJECT", "my-project-123")
