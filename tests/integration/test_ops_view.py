"""The operations view on real services: the Air-Tasks plugin loaded by a real Airflow 3 api-server
(the scaler suite's session Airflow: PostgreSQL, RabbitMQ, Celery workers, groups on moto).

Known state: queue `alpha` has 5 queued task instances and no worker, its group (made here) is
empty; queue `beta` runs 2 task instances on the instance `busy` of its group, next to the idle
instance `idle` (tests/integration/conftest.py, `scaler_scenario`). One pass of the scaler, run
here, grows alpha's group to 2 and records its decisions in the history Variable; the Swarm is a
fake (a real one adds nothing: its node names could not be the moto instance ids), whose node list
the pass records. Then the plugin's API, `airtasks status --json` (a fresh process) and the page in
headless Chromium must all show that state.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from airtasks.config import RabbitMQSourceConfig, parse_config, source_credentials
from airtasks.control.docker_swarm import SwarmNode
from airtasks.scaling.report import PassReport
from airtasks.scaling.scaler import build_scaler
from airtasks.sources import RabbitMQSource
from airtasks.state.history import decode
from airtasks_dev.devstack.moto import MotoServer
from tests import bad_input
from tests.integration.conftest import Scenario
from tests.support.browser import chromium, login, open_cluster_page
from tests.support.services import aws_groups
from tests.support.services.airflow import Airflow
from tests.support.services.rabbitmq import RabbitMQ

pytestmark = pytest.mark.integration

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CONFIG_VARIABLE = "airtasks_scaler_config"
HISTORY_VARIABLE = "airtasks_scaler_history_opstest"
ALPHA_REASON = "load 5 needs 2 node(s) of 4 slots"


class FakeSwarm:
    """The manager, the two beta instances, and a node whose instance is long gone (down)."""

    def __init__(self, busy: str, idle: str) -> None:
        def node(host: str, role: str = "worker", state: str = "ready", queue: str = "beta") -> SwarmNode:
            labels = {"airtasks.queue": queue} if role == "worker" else {}
            return SwarmNode(f"id-{host}", host, role, state, "active", labels, {})

        self._nodes = [
            node("manager-1", "manager"),
            node(busy),
            node(idle),
            node("i-0000000000000dead", state="down", queue="alpha"),
        ]

    def nodes(self) -> list[SwarmNode]:
        return list(self._nodes)


@dataclass(frozen=True)
class Ops:
    af: Airflow
    scenario: Scenario
    alpha_group: str
    config: dict[str, Any]
    report: PassReport
    passed_at: float
    env: dict[str, str]


def wait_for_broker_counts(broker: RabbitMQ, expected: dict[str, int], timeout: float = 30) -> None:
    """The management API samples its counters every few seconds: wait until they show the scenario."""
    cfg = RabbitMQSourceConfig(url=broker.management_url)
    creds = {"AIRTASKS_RABBITMQ_USERNAME": broker.username, "AIRTASKS_RABBITMQ_PASSWORD": broker.password}
    source = RabbitMQSource(cfg, source_credentials(cfg, creds))
    deadline = time.monotonic() + timeout
    try:
        while source.depths(list(expected)) != expected:
            assert time.monotonic() < deadline, f"broker counts never reached {expected}"
            time.sleep(0.5)
    finally:
        source.close()


@pytest.fixture(scope="module")
def ops(
    scaler_airflow: Airflow, scaler_rabbitmq: RabbitMQ, scaler_scenario: Scenario, moto_server: MotoServer
) -> Iterator[Ops]:
    af, s = scaler_airflow, scaler_scenario
    with pytest.MonkeyPatch.context() as mp:
        for key, value in moto_server.env().items():
            mp.setenv(key, value)
        alpha_group = aws_groups.make_group("opstest", "alpha", 0)
    config = {
        "backend": "aws",
        "cluster_name": "opstest",
        "region": "us-east-1",
        "interval_seconds": 5,
        "stabilization_seconds": 0,
        "idle_seconds": 3600,  # beta's idle node stays: this test changes nothing the others see
        "sources": {
            "airflow": {"url": af.url, "timeout_seconds": 10},
            "rabbitmq": {"url": scaler_rabbitmq.management_url},
        },
        "celery": None,
        "memory": {"store": "airflow", "variable": "airtasks_scaler_memory_opstest"},
        "history": {"store": "airflow", "variable": HISTORY_VARIABLE},
        "queues": {
            "alpha": {"group": alpha_group, "min_size": 0, "max_size": 10, "slots_per_node": 4},
            "beta": {"group": s.beta_group, "min_size": 0, "max_size": 10, "slots_per_node": 2},
        },
    }
    env = {
        **moto_server.env(),
        "AIRTASKS_AIRFLOW_USERNAME": af.username,
        "AIRTASKS_AIRFLOW_PASSWORD": af.password,
        "AIRTASKS_RABBITMQ_USERNAME": scaler_rabbitmq.username,
        "AIRTASKS_RABBITMQ_PASSWORD": scaler_rabbitmq.password,
    }
    with af.api() as api:
        r = api.post(
            "/api/v2/variables",
            json={"key": CONFIG_VARIABLE, "value": json.dumps(config), "description": "test"},
        )
        assert r.status_code == 201, r.text
    try:
        wait_for_broker_counts(scaler_rabbitmq, {"alpha": 5, "beta": 2})
        with pytest.MonkeyPatch.context() as mp:
            for key, value in moto_server.env().items():
                mp.setenv(key, value)
            scaler = build_scaler(parse_config(config), env)
            scaler.clients.swarm = FakeSwarm(s.busy, s.idle)  # type: ignore[assignment]
            passed_at = time.time()
            scaler.clock = lambda: passed_at
            report = scaler.run_pass()
            scaler.close()
        yield Ops(af, s, alpha_group, config, report, passed_at, env)
    finally:
        with af.api() as api:
            api.delete(f"/api/v2/variables/{CONFIG_VARIABLE}")


def get_view(ops: Ops) -> dict[str, Any]:
    r = httpx.get(
        f"{ops.af.url}/airtasks/api/view", headers={"Authorization": f"Bearer {ops.af.token()}"}, timeout=60
    )
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_the_pass_scaled_alpha_out_and_held_beta(ops: Ops) -> None:
    by_queue = {q.queue: q for q in ops.report.queues}
    alpha, beta = by_queue["alpha"], by_queue["beta"]
    assert (alpha.action, alpha.current, alpha.desired, alpha.reason) == ("scale_out", 0, 2, ALPHA_REASON)
    assert (beta.action, beta.current, beta.removed) == ("none", 2, [])


def test_plugin_api_returns_the_view_of_the_known_state(ops: Ops) -> None:
    s = ops.scenario
    view = get_view(ops)
    assert (view["cluster_name"], view["backend"]) == ("opstest", "aws")
    assert view["problems"] == []
    queues = {q["queue"]: q for q in view["queues"]}

    alpha = queues["alpha"]
    assert (alpha["loads"], alpha["load"], alpha["current"], alpha["want"]) == (
        {"airflow": 5, "rabbitmq": 5},
        5,
        2,
        2,
    )
    assert (alpha["min_size"], alpha["max_size"], alpha["slots_per_node"], alpha["failed"]) == (
        0,
        10,
        4,
        False,
    )
    with pytest.MonkeyPatch.context() as mp:
        for key, value in ops.env.items():
            mp.setenv(key, value)
        launched = aws_groups.instance_ids(ops.alpha_group)
    assert sorted(n["id"] for n in alpha["nodes"]) == launched
    # In the group, not (yet) in the Swarm the scaler saw: booting.
    assert {n["status"] for n in alpha["nodes"]} == {"booting"}
    decision = alpha["last_decision"]
    assert (decision["action"], decision["current"], decision["desired"], decision["reason"]) == (
        "scale_out",
        0,
        2,
        ALPHA_REASON,
    )
    assert decision["loads"] == {"airflow": 5, "rabbitmq": 5}
    assert decision["t"] == pytest.approx(ops.passed_at, abs=0.01)

    beta = queues["beta"]
    assert (beta["loads"], beta["current"], beta["want"]) == ({"airflow": 2, "rabbitmq": 2}, 2, 1)
    nodes = {n["id"]: n for n in beta["nodes"]}
    assert set(nodes) == {s.busy, s.idle}
    busy, idle = nodes[s.busy], nodes[s.idle]
    assert (busy["status"], busy["running"], busy["busy"]) == ("busy", 2, True)
    assert sorted(t["label"] for t in busy["tasks"]) == ["airtasks_load.beta[0]", "airtasks_load.beta[1]"]
    assert {t["run_id"] for t in busy["tasks"]} == {s.run_id}
    assert (idle["status"], idle["running"], idle["tasks"]) == ("idle", 0, [])
    assert (busy["swarm_state"], busy["swarm_availability"], busy["lifecycle"]) == (
        "ready",
        "active",
        "InService",
    )
    assert "waiting for" in beta["last_decision"]["reason"]

    assert sorted((d["queue"], d["action"]) for d in view["decisions"]) == [
        ("alpha", "scale_out"),
        ("beta", "none"),
    ]
    swarm = view["swarm"]
    assert (swarm["source"], swarm["as_of"]) == ("recorded", pytest.approx(ops.passed_at, abs=0.01))
    members = {n["hostname"]: (n["state"], n["member_of"]) for n in swarm["nodes"]}
    assert members == {
        "manager-1": ("ready", None),
        s.busy: ("ready", "beta"),
        s.idle: ("ready", "beta"),
        "i-0000000000000dead": ("down", None),
    }
    assert view["history"] == {
        "store": "airflow",
        "written_at": pytest.approx(ops.passed_at, abs=0.01),
        "error": None,
        "stale": False,
    }
    narrowed = httpx.get(
        f"{ops.af.url}/airtasks/api/view?hours=0.5",
        headers={"Authorization": f"Bearer {ops.af.token()}"},
        timeout=60,
    ).json()
    assert narrowed["window_seconds"] == 1800


def test_status_json_in_a_fresh_process_reads_the_same_history(ops: Ops, tmp_path: Path) -> None:
    """The history survives the scaler's process: another process reads it back from the Variable,
    and `airtasks status --json` and the plugin's API give the same view."""
    with ops.af.api() as api:
        stored = decode(api.get(f"/api/v2/variables/{HISTORY_VARIABLE}").json()["value"])
    assert [e.action for e in stored.entries("alpha")] == ["scale_out"]
    path = tmp_path / "scaler.json"
    path.write_text(json.dumps(ops.config))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRTASKS_", "AWS_"))}
    env.update(ops.env)
    out = subprocess.run(
        [sys.executable, "-m", "airtasks", "status", "--json", "--config", str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    cli = json.loads(out.stdout)
    api = get_view(ops)
    assert cli["decisions"] == api["decisions"]
    assert cli["swarm"] == api["swarm"]

    def stable(view: dict[str, Any]) -> list[Any]:
        return [
            (
                q["queue"],
                q["loads"],
                q["current"],
                q["want"],
                [(n["id"], n["status"], n["running"]) for n in q["nodes"]],
            )
            for q in view["queues"]
        ]

    assert stable(cli) == stable(api)


def test_api_and_page_refuse_requests_without_a_login(ops: Ops) -> None:
    url = ops.af.url
    with httpx.Client(timeout=30) as client:
        for path in ("/airtasks/api/view", "/airtasks/", "/airtasks/visualizer"):
            r = client.get(url + path)
            assert r.status_code == 401, path
            assert "opstest" not in r.text
            r = client.get(url + path, headers={"Authorization": "Bearer not-a-token"})
            assert r.status_code in {401, 403}, path
            with httpx.Client(timeout=30, cookies={"_token": "not-a-token"}) as forged:
                assert forged.get(url + path).status_code in {401, 403}, path
        r = client.get(url + "/airtasks/", headers={"Accept": "text/html"})
        assert r.status_code == 302
        assert r.headers["location"].startswith("/auth/login")
        assert "next=" in r.headers["location"]
        assert client.get(url + "/airtasks/icon.svg").status_code == 200  # the nav icon only
    with httpx.Client(timeout=60, cookies={"_token": ops.af.token()}) as browser:  # the UI's session cookie
        r = browser.get(url + "/airtasks/visualizer")
        assert r.status_code == 200
        assert 'id="swarm"' in r.text
        assert "<svg" not in r.text  # nodes only


@pytest.mark.browser
def test_cluster_page_in_the_airflow_ui_shows_the_scale_out(ops: Ops) -> None:
    """Headless Chromium: the "Cluster" entry of the Airflow UI's navigation frames the page, which
    shows queue alpha, its load and the scale-out decision with its reason."""
    ARTIFACTS.mkdir(exist_ok=True)
    with chromium(log=ARTIFACTS / "chromedriver-cluster.log") as driver:
        try:
            driver.set_window_size(1440, 1300)
            login(driver, ops.af.url, ops.af.username, ops.af.password)
            wait = WebDriverWait(driver, 60)
            driver.get(f"{ops.af.url}/")
            open_cluster_page(driver)
            card = wait.until(
                ec.presence_of_element_located((By.CSS_SELECTOR, "section[data-queue='alpha']"))
            )
            assert "Queue alpha" in card.text
            assert card.find_element(By.CSS_SELECTOR, "b.load").text == "5"
            assert "rabbitmq" in card.text
            assert ALPHA_REASON in card.find_element(By.CSS_SELECTOR, ".last-decision").text
            row = driver.find_element(
                By.CSS_SELECTOR, "tr.decision[data-queue='alpha'][data-action='scale_out']"
            )
            assert ALPHA_REASON in row.find_element(By.CSS_SELECTOR, "td.reason").text
            assert driver.find_elements(By.CSS_SELECTOR, "section[data-queue='alpha'] svg path.nodes")
            driver.switch_to.default_content()
            driver.save_screenshot(str(ARTIFACTS / "cluster-page.png"))
        except Exception:
            driver.switch_to.default_content()
            driver.save_screenshot(str(ARTIFACTS / "cluster-page-failure.png"))
            (ARTIFACTS / "cluster-page-failure.html").write_text(driver.page_source)
            raise


def test_plugin_api_reads_one_queue_and_pages_its_nodes(ops: Ops) -> None:
    s = ops.scenario
    auth = {"Authorization": f"Bearer {ops.af.token()}"}

    def get(query: str) -> httpx.Response:
        return httpx.get(f"{ops.af.url}/airtasks/api/view?{query}", headers=auth, timeout=60)

    first = get("queue=beta&limit=1").json()
    assert [q["queue"] for q in first["queues"]] == ["beta"]
    beta = first["queues"][0]
    assert (beta["nodes_total"], beta["nodes_offset"], len(beta["nodes"])) == (2, 0, 1)
    assert beta["node_counts"] == {"busy": 1, "idle": 1, "booting": 0, "draining": 0, "down": 0, "unknown": 0}
    second = get("queue=beta&limit=1&offset=1").json()["queues"][0]
    assert {beta["nodes"][0]["id"], second["nodes"][0]["id"]} == {s.busy, s.idle}


@pytest.mark.parametrize("row", bad_input.of_kind("api-query"), ids=lambda r: r.id)
def test_plugin_api_refuses_a_bad_query(ops: Ops, row: bad_input.Row) -> None:
    """Each bad query of tests/bad_input.yaml: refused with its status, the error naming the
    parameter and the fix, and nothing read (the 404 comes before any read, a 422 before the route)."""
    auth = {"Authorization": f"Bearer {ops.af.token()}"}
    r = httpx.get(f"{ops.af.url}{row.where}?{row.input['query']}", headers=auth, timeout=60)
    assert r.status_code == row.input["status"], r.text
    assert row.error in r.text
