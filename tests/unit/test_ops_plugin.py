"""The plugin's app as Airflow's API server starts it: its lifespan builds the Cluster page's
backend clients in the background, and a warm-up that cannot happen is a log line, not a failed
start. The page's routes on a real API server: tests/integration/test_ops_view.py."""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import threading
from types import ModuleType

import pytest

from airtasks.backends import BACKENDS
from airtasks.backends.aws import AwsBackend
from airtasks.config import ScalerConfig, parse_config
from airtasks.wiring import shared_backend


@pytest.fixture
def plugin(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The plugin module, imported by the tests that need it rather than at collection: importing
    Airflow sets up its logging (the root logger at INFO) for the rest of the process, and its
    home (a temporary one, as tests/unit/test_scaler_dag.py does, when this comes first)."""
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow-home")))
    return importlib.import_module("airtasks.ops.plugin")


def start_and_stop_the_api_server(plugin: ModuleType) -> None:
    """What Airflow's API server does with a plugin's app as it starts and stops (its lifespan
    enters every mounted FastAPI app's lifespan context), then wait for the warm-up."""

    async def run() -> None:
        async with plugin.app.router.lifespan_context(plugin.app):
            pass

    asyncio.run(run())
    for thread in threading.enumerate():
        if thread.name == "airtasks-warm-up":
            thread.join(30)


CONFIG = {
    "backend": "aws",
    "region": "ap-east-1",  # a region no other test shares: the shared backends are per process
    "sources": {"airflow": {"url": "http://127.0.0.1:1"}},
    "queues": {"default": {"group": "g", "max_size": 4, "slots_per_node": 2}},
}


class ColdBackend:
    """Counts its warm-ups, and says which thread ran them."""

    name = "aws"

    def __init__(self) -> None:
        self.warmed = threading.Event()
        self.threads: list[str] = []

    def warm(self) -> None:
        self.threads.append(threading.current_thread().name)
        self.warmed.set()


def test_the_api_server_s_start_warms_the_backend_the_page_reads_with(
    plugin: ModuleType, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    cold = ColdBackend()

    def make(config: ScalerConfig) -> ColdBackend:
        return cold

    monkeypatch.setitem(BACKENDS, "aws", make)
    monkeypatch.setenv("AIRTASKS_CONFIG", json.dumps(CONFIG))
    caplog.set_level(logging.INFO, logger=plugin.__name__)
    start_and_stop_the_api_server(plugin)
    assert cold.warmed.is_set(), "the lifespan never warmed the backend"
    assert cold.threads == ["airtasks-warm-up"]  # beside the server's start, not in its way
    assert shared_backend(parse_config(CONFIG)) is cold  # the one every read of the page takes
    assert "the Cluster page's aws clients are ready" in caplog.text


def test_a_warm_up_without_a_config_is_a_warning_and_the_app_still_starts(
    plugin: ModuleType, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("AIRTASKS_CONFIG", raising=False)
    monkeypatch.setattr(plugin, "_get_variable", lambda key: None)
    caplog.set_level(logging.INFO, logger=plugin.__name__)
    start_and_stop_the_api_server(plugin)  # and raises nothing
    assert "the Cluster page did not warm up (no scaler config" in caplog.text


def test_warming_the_aws_backend_builds_its_clients_without_a_call(monkeypatch: pytest.MonkeyPatch) -> None:
    # Nothing listens on port 1: a call would fail after its retries.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    backend = AwsBackend("eu-west-3", max_attempts=1)
    backend.warm()
    assert backend.autoscaling.can_paginate("describe_auto_scaling_groups")
    assert backend.ec2.meta.region_name == "eu-west-3"
