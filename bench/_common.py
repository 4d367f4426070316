"""Shared by the scaler benchmarks: percentiles, and the real services they run against."""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from airtasks_dev.devstack.moto import MotoServer, run_moto
from tests.support.services.rabbitmq import RabbitMQ, run_rabbitmq


def percentile(samples: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summary(samples: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(samples, 50), 1),
        "p95_ms": round(percentile(samples, 95), 1),
        "max_ms": round(max(samples), 1),
        "mean_ms": round(sum(samples) / len(samples), 1),
    }


@contextlib.contextmanager
def services() -> Iterator[tuple[MotoServer, RabbitMQ]]:
    """moto and a private RabbitMQ, with boto3 in this process pointed at moto."""
    saved = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="airtasks-bench-") as tmp, run_moto() as moto:
        os.environ.update(moto.env())
        try:
            with run_rabbitmq(Path(tmp) / "rabbitmq") as broker:
                yield moto, broker
        finally:
            os.environ.clear()
            os.environ.update(saved)


def credentials(broker: RabbitMQ) -> dict[str, str]:
    return broker.credentials_env()
