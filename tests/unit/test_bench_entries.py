"""`make bench` finds its real-service parts: each module has the `run() -> dict` entry that
bench/__main__.py calls (without it the figures are reported as not measured)."""

from __future__ import annotations

import importlib
import inspect

import pytest


@pytest.mark.parametrize("module", ["bench.pass_timing", "bench.reaction", "bench.scale"])
def test_real_parts_have_the_entry_make_bench_calls(module: str) -> None:
    run = getattr(importlib.import_module(module), "run", None)
    assert callable(run), f"{module} has no run()"
    assert not [p for p in inspect.signature(run).parameters.values() if p.default is p.empty]
