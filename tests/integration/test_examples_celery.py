"""End to end on real services: PostgreSQL + RabbitMQ + Airflow 3.3 with CeleryExecutor and one
Celery worker per queue. Every example DAG is triggered through `airtasks trigger --wait`, and a
real browser (headless Chromium) triggers `example_trigger_target` through the UI's params form;
its screenshots are kept under tests/artifacts/."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import docker
import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from airtasks_dev.images import base_image
from tests import bad_input
from tests.support.browser import chromium, login
from tests.support.services.airflow import Airflow

pytestmark = pytest.mark.integration

AIRTASKS = str(Path(sys.executable).with_name("airtasks"))


def airtasks(cluster: Airflow, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRTASKS_")}
    env.update(cluster.access_env())
    return subprocess.run(
        [AIRTASKS, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def task_log(cluster: Airflow, dag_id: str, run_id: str, task_id: str) -> str:
    headers = {"Authorization": f"Bearer {cluster.token()}", "Accept": "application/json"}
    url = (
        f"{cluster.url}/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}"
        f"/taskInstances/{task_id}/logs/1?full_content=true"
    )
    r = httpx.get(url, headers=headers, timeout=30)
    r.raise_for_status()
    content = r.json()["content"]
    return "\n".join(str(e.get("event", e)) if isinstance(e, dict) else str(e) for e in content)


def task_instances(cluster: Airflow, dag_id: str, run_id: str) -> list[dict[str, object]]:
    r = httpx.get(
        f"{cluster.url}/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances",
        headers={"Authorization": f"Bearer {cluster.token()}"},
        timeout=30,
    )
    r.raise_for_status()
    return r.json()["task_instances"]  # type: ignore[no-any-return]


def assert_succeeded(out: subprocess.CompletedProcess[str], cluster: Airflow) -> str:
    cluster.check_alive()
    assert out.returncode == 0, f"stdout={out.stdout!r}\nstderr={out.stderr[-3000:]}"
    run_id, state = out.stdout.split()
    assert state == "success"
    return run_id


def test_trigger_target_with_params(airflow_celery: Airflow) -> None:
    out = airtasks(
        airflow_celery,
        "trigger",
        "example_trigger_target",
        "--conf",
        '{"n": 3, "message": "from the CLI"}',
        "--wait",
    )
    run_id = assert_succeeded(out, airflow_celery)
    log = task_log(airflow_celery, "example_trigger_target", run_id, "show_params")
    assert "n=3 message=from the CLI" in log
    assert "[3/3] from the CLI" in log
    [ti] = task_instances(airflow_celery, "example_trigger_target", run_id)
    assert ti["queue"] == "default"


def test_interleaved_runs_on_both_queues(airflow_celery: Airflow) -> None:
    run_id = assert_succeeded(
        airtasks(airflow_celery, "trigger", "example_interleaved", "--wait"), airflow_celery
    )
    tis = task_instances(airflow_celery, "example_interleaved", run_id)
    assert {ti["queue"] for ti in tis} == {"default", "manager"}
    assert {ti["state"] for ti in tis} == {"success"}


def test_multi_trigger_fans_out(airflow_celery: Airflow) -> None:
    run_id = assert_succeeded(
        airtasks(airflow_celery, "trigger", "example_multi_trigger", "--conf", '{"count": 2}', "--wait"),
        airflow_celery,
    )
    tis = task_instances(airflow_celery, "example_multi_trigger", run_id)
    mapped = [ti for ti in tis if ti["task_id"] == "trigger_target"]
    assert len(mapped) == 2
    for i in (1, 2):
        target_run = quote(f"{run_id}__item_{i}", safe="")
        r = httpx.get(
            f"{airflow_celery.url}/api/v2/dags/example_trigger_target/dagRuns/{target_run}",
            headers={"Authorization": f"Bearer {airflow_celery.token()}"},
            timeout=30,
        )
        assert r.status_code == 200
        assert r.json()["state"] == "success"
        assert r.json()["conf"] == {"n": i, "message": f"item {i} of 2"}


def test_docker_example_runs_a_container(airflow_celery: Airflow, docker_client: docker.DockerClient) -> None:
    image = base_image()  # any local image with /bin/sh: the one the stack images are built on
    before = {c.id for c in docker_client.containers.list(all=True)}
    out = airtasks(
        airflow_celery,
        "trigger",
        "example_docker",
        "--conf",
        f'{{"image": "{image}", "words": 4}}',
        "--wait",
    )
    run_id = assert_succeeded(out, airflow_celery)
    log = task_log(airflow_celery, "example_docker", run_id, "count_words")
    assert "4 words" in log
    leftovers = {c.id for c in docker_client.containers.list(all=True)} - before
    assert leftovers == set(), "auto_remove cleaned up the task container"


@pytest.mark.parametrize("row", bad_input.of_kind("dag-params"), ids=lambda r: r.id)
def test_schema_rejects_bad_param_before_a_run(airflow_celery: Airflow, row: bad_input.Row) -> None:
    """The bad-input catalogue's DAG-params rows: the REST API refuses the run with the row's error
    (400), `airtasks trigger` shows it in one line, and no run is created."""
    runs_url = f"{airflow_celery.url}/api/v2/dags/{row.where}/dagRuns"
    headers = {"Authorization": f"Bearer {airflow_celery.token()}"}

    def runs() -> int:
        r = httpx.get(runs_url, headers=headers, timeout=30)
        r.raise_for_status()
        return int(r.json()["total_entries"])

    before = runs()
    r = httpx.post(runs_url, headers=headers, json={"logical_date": None, "conf": row.input}, timeout=30)
    assert r.status_code == 400, r.text
    assert row.error in r.json()["detail"]
    out = airtasks(airflow_celery, "trigger", row.where, "--conf", json.dumps(row.input))
    assert out.returncode == 1
    assert "refused the run" in out.stderr
    assert row.error in out.stderr
    assert "Traceback" not in out.stderr
    assert runs() == before, "a run was created"


def test_failed_login_is_one_line(airflow_celery: Airflow) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRTASKS_")}
    env.update(airflow_celery.access_env(), AIRTASKS_AIRFLOW_PASSWORD="wrong")
    out = subprocess.run(
        [AIRTASKS, "trigger", "example_trigger_target"], env=env, capture_output=True, text=True, check=False
    )
    assert out.returncode == 1
    assert "refused the login" in out.stderr
    assert "wrong" not in out.stderr


def test_unknown_dag_is_a_clear_error(airflow_celery: Airflow) -> None:
    start = time.monotonic()
    out = airtasks(airflow_celery, "trigger", "no_such_dag", "--timeout", "3", timeout=120)
    assert out.returncode == 1
    assert "no DAG 'no_such_dag'" in out.stderr
    assert time.monotonic() - start < 30


# --- The UI ------------------------------------------------------------------------------------

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
DAG_ID = "example_trigger_target"


def set_field(driver: WebDriver, name: str, value: str) -> None:
    field = WebDriverWait(driver, 30).until(
        ec.element_to_be_clickable((By.CSS_SELECTOR, f"[name=element_{name}]"))
    )
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", field)
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(Keys.DELETE)
    field.send_keys(value)


def runs_with_conf(cluster: Airflow, n: int) -> list[dict[str, object]]:
    r = httpx.get(
        f"{cluster.url}/api/v2/dags/{DAG_ID}/dagRuns?order_by=-run_after&limit=20",
        headers={"Authorization": f"Bearer {cluster.token()}"},
        timeout=30,
    )
    r.raise_for_status()
    return [run for run in r.json()["dag_runs"] if (run.get("conf") or {}).get("n") == n]


@pytest.mark.browser
def test_trigger_with_params_from_the_ui(airflow_celery: Airflow) -> None:
    """Headless Chromium logs in, fills the params form with non-default values, submits."""
    ARTIFACTS.mkdir(exist_ok=True)
    n, message = 4, "hello from the UI"
    started = time.monotonic()
    with chromium(log=ARTIFACTS / "chromedriver.log") as driver:
        try:
            login(driver, airflow_celery.url, airflow_celery.username, airflow_celery.password)
            driver.get(f"{airflow_celery.url}/dags/{DAG_ID}")
            wait = WebDriverWait(driver, 60)
            wait.until(
                ec.element_to_be_clickable((By.CSS_SELECTOR, "[data-testid=trigger-dag-button]"))
            ).click()
            set_field(driver, "n", str(n))
            set_field(driver, "message", message)
            driver.save_screenshot(str(ARTIFACTS / "ui-trigger-form.png"))
            wait.until(
                ec.element_to_be_clickable((By.CSS_SELECTOR, "[data-testid=trigger-dag-submit]"))
            ).click()

            deadline = time.monotonic() + 120
            state = ""
            while time.monotonic() < deadline:
                runs = runs_with_conf(airflow_celery, n)
                state = str(runs[0]["state"]) if runs else ""
                if state in {"success", "failed"}:
                    break
                time.sleep(1)
            assert state == "success", f"run from the UI ended {state or 'never created'}"
            run_id = str(runs[0]["dag_run_id"])
            elapsed = time.monotonic() - started
            driver.get(f"{airflow_celery.url}/dags/{DAG_ID}/runs/{quote(run_id, safe='')}")
            time.sleep(3)
            driver.save_screenshot(str(ARTIFACTS / "ui-run-success.png"))
        except Exception:
            driver.save_screenshot(str(ARTIFACTS / "ui-failure.png"))
            (ARTIFACTS / "ui-failure.html").write_text(driver.page_source)
            raise
    assert runs[0]["conf"] == {"n": n, "message": message}
    r = httpx.get(
        f"{airflow_celery.url}/api/v2/dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}"
        "/taskInstances/show_params/logs/1?full_content=true",
        headers={"Authorization": f"Bearer {airflow_celery.token()}", "Accept": "application/json"},
        timeout=30,
    )
    r.raise_for_status()
    assert f"n={n} message={message}" in r.text
    (ARTIFACTS / "ui-trigger-seconds.txt").write_text(f"{elapsed:.1f}\n")
