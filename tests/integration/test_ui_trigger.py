"""A real browser triggers `example_trigger_target` through the Airflow UI's params form.

Headless Chromium logs in, opens the DAG, fills the form with non-default params, submits; the
run must succeed with those values in its task log. Screenshots are kept under tests/artifacts/.
"""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.airflow import AirflowCluster
from tests.support.browser import chromium

pytestmark = [pytest.mark.integration, pytest.mark.browser]

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
DAG_ID = "example_trigger_target"


def login(driver: WebDriver, cluster: AirflowCluster) -> None:
    wait = WebDriverWait(driver, 60)
    driver.get(f"{cluster.url}/auth/login")
    user = wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "input[name=username]")))
    user.send_keys(cluster.username)
    driver.find_element(By.CSS_SELECTOR, "input[name=password]").send_keys(cluster.password + Keys.ENTER)
    wait.until(lambda d: "/auth/login" not in d.current_url)


def set_field(driver: WebDriver, name: str, value: str) -> None:
    field = WebDriverWait(driver, 30).until(
        ec.element_to_be_clickable((By.CSS_SELECTOR, f"[name=element_{name}]"))
    )
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", field)
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(Keys.DELETE)
    field.send_keys(value)


def runs_with_conf(cluster: AirflowCluster, n: int) -> list[dict[str, object]]:
    r = httpx.get(
        f"{cluster.url}/api/v2/dags/{DAG_ID}/dagRuns?order_by=-run_after&limit=20",
        headers={"Authorization": f"Bearer {cluster.token()}"},
        timeout=30,
    )
    r.raise_for_status()
    return [run for run in r.json()["dag_runs"] if (run.get("conf") or {}).get("n") == n]


def test_trigger_with_params_from_the_ui(airflow_celery: AirflowCluster) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    n, message = 4, "hello from the UI"
    started = time.monotonic()
    with chromium(log=ARTIFACTS / "chromedriver.log") as driver:
        try:
            login(driver, airflow_celery)
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
