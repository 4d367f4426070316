"""The one wiring: what `build_clients` makes for a pass and for the view, from the same config."""

from __future__ import annotations

from typing import Any

import pytest

from airtasks.backends import BACKENDS
from airtasks.config import ScalerConfig, parse_config
from airtasks.errors import ConfigError
from airtasks.wiring import UnavailableBackend, build_clients, shared_backend


def config(**extra: Any) -> ScalerConfig:
    return parse_config(
        {
            "backend": "aws",
            "region": "eu-west-1",
            "sources": {
                "airflow": {"url": "http://127.0.0.1:1"},
                "rabbitmq": {"url": "http://127.0.0.1:2"},
            },
            "queues": {"default": {"group": "g", "max_size": 4, "slots_per_node": 2}},
            **extra,
        }
    )


CREDS = {"AIRTASKS_RABBITMQ_USERNAME": "airflow", "AIRTASKS_RABBITMQ_PASSWORD": "pw"}


def test_a_pass_refuses_a_missing_credential_before_any_call() -> None:
    with pytest.raises(ConfigError, match=r"sources\.rabbitmq: no credentials; set AIRTASKS_RABBITMQ_USER"):
        build_clients(config(), env={})


def test_the_view_goes_on_without_what_it_cannot_build() -> None:
    clients = build_clients(config(), env={}, read_only=True, airflow_token="jwt")
    assert clients.rabbitmq is None
    assert clients.airflow is not None
    assert clients.control is None  # the view never cordons
    assert [p.split(";")[0] for p in clients.problems] == ["sources.rabbitmq: no credentials here"]
    clients.close()


def test_pass_and_view_read_the_same_stores() -> None:
    strict = build_clients(config(), env=CREDS)
    view = build_clients(config(), env=CREDS, read_only=True, airflow_token="jwt")
    assert (strict.memory.name, strict.history and strict.history.name) == ("airflow", "airflow")
    assert (view.memory.name, view.history and view.history.name) == ("airflow", "airflow")
    assert strict.rabbitmq is not None
    assert view.rabbitmq is not None
    strict.close()
    view.close()


def test_the_view_shares_one_backend_per_process_and_region() -> None:
    first = build_clients(config(), env=CREDS, read_only=True, share_backend=True)
    again = build_clients(config(), env=CREDS, read_only=True, share_backend=True)
    other = build_clients(config(region="us-east-2"), env=CREDS, read_only=True, share_backend=True)
    fresh = build_clients(config(), env=CREDS, read_only=True)
    assert first.backend is again.backend is shared_backend(config())
    assert other.backend is not first.backend
    assert fresh.backend is not first.backend


def test_a_backend_that_cannot_load_is_a_problem_for_the_view_and_an_error_for_a_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(cfg: ScalerConfig) -> Any:
        raise ImportError("No module named 'google.cloud'")

    monkeypatch.setitem(BACKENDS, "aws", broken)
    view = build_clients(config(region="ap-south-1"), env=CREDS, read_only=True)
    assert isinstance(view.backend, UnavailableBackend)
    assert view.problems == ("backend aws: No module named 'google.cloud'",)
    with pytest.raises(ImportError):
        build_clients(config(region="ap-south-1"), env=CREDS)
