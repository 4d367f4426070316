"""`python -m airtasks.pools` (what the image's `init` runs after the migration) against a real
Airflow: it creates each sized queue's pool, resizes it on a second run, and refuses a malformed
AIRTASKS_QUEUE_POOLS without touching the pools."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.services.airflow import Airflow

pytestmark = pytest.mark.integration


def apply(af: Airflow, pools: str) -> subprocess.CompletedProcess[str]:
    env = {**af.env, "AIRTASKS_QUEUE_POOLS": pools}
    return subprocess.run(
        [sys.executable, "-m", "airtasks.pools"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def slots(af: Airflow, name: str) -> int | None:
    with af.api() as api:
        r = api.get(f"/api/v2/pools/{name}")
    return None if r.status_code == 404 else int(r.json()["slots"])


def test_init_creates_and_resizes_the_queue_pools(airflow_celery: Airflow) -> None:
    af = airflow_celery
    first = apply(af, "pooltest-a=6 pooltest-b=2")
    assert first.returncode == 0, first.stderr
    assert "pool airtasks-pooltest-a: 6 slots" in first.stdout
    assert (slots(af, "airtasks-pooltest-a"), slots(af, "airtasks-pooltest-b")) == (6, 2)

    second = apply(af, "pooltest-a=10")
    assert second.returncode == 0, second.stderr
    assert slots(af, "airtasks-pooltest-a") == 10

    bad = apply(af, "pooltest-a:3")
    assert bad.returncode == 1
    assert "'pooltest-a:3' is not QUEUE=SLOTS" in bad.stderr
    assert slots(af, "airtasks-pooltest-a") == 10
