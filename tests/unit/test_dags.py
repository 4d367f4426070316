"""Every DAG in dags/ parses cleanly; the example DAGs keep their contract (ids, params, queues)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"
EXAMPLES = {"example_interleaved", "example_multi_trigger", "example_trigger_target", "example_docker"}


def parse(home: Path, **extra: str) -> dict[str, Any]:
    """What tests.support.dagbag prints for dags/, in a clean Airflow (and these variables)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AIRTASKS_"))}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(DAGS),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home}/airflow.db",
        PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "glue")]),
        **extra,
    )
    out = subprocess.run(
        [sys.executable, "-m", "tests.support.dagbag", str(DAGS)],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def parsed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return parse(tmp_path_factory.mktemp("airflow_home"))


def test_no_import_errors(parsed: dict[str, Any]) -> None:
    assert parsed["import_errors"] == {}


def test_no_deprecation_warnings_from_our_dags(parsed: dict[str, Any]) -> None:
    ours = [
        w
        for w in parsed["warnings"]
        if "Deprecat" in w["category"] or "deprecat" in w["message"].lower() or "RemovedIn" in w["category"]
    ]
    assert ours == []


def test_parse_time_hygiene(parsed: dict[str, Any]) -> None:
    assert parsed["lookups"] == [], "no Variable or Connection lookup at parse time"
    assert len(parsed["queries"]) <= 1, parsed["queries"]


def test_example_dags_exist_with_fixed_ids(parsed: dict[str, Any]) -> None:
    assert set(parsed["dags"]) >= EXAMPLES
    for dag_id in EXAMPLES:
        assert Path(parsed["dags"][dag_id]["fileloc"]).parent == DAGS / "examples"


@pytest.mark.parametrize("dag_id", sorted(EXAMPLES))
def test_example_dag_habits(parsed: dict[str, Any], dag_id: str) -> None:
    dag = parsed["dags"][dag_id]
    assert dag["catchup"] is False
    assert dag["start_date_tz"] == "UTC"
    assert {"airtasks", "example"} <= set(dag["tags"])
    doc = dag["doc_md"]
    assert "Shows" in doc, "the docstring says what the example shows"
    assert "UI:" in doc
    assert f"airtasks trigger {dag_id}" in doc, "the docstring says how to trigger it from the CLI"
    for task_id, task in dag["tasks"].items():
        assert task["queue"] in {"default", "manager"}, f"{task_id} routed to a queue explicitly"


def test_trigger_target_params(parsed: dict[str, Any]) -> None:
    params = parsed["dags"]["example_trigger_target"]["params"]
    assert set(params) == {"n", "message"}
    assert params["n"]["default"] == 1
    assert params["n"]["schema"]["type"] == "integer"
    assert params["message"]["schema"]["type"] == "string"
    assert isinstance(params["message"]["default"], str)


def test_interleaved_uses_two_queues(parsed: dict[str, Any]) -> None:
    queues = {t["queue"] for t in parsed["dags"]["example_interleaved"]["tasks"].values()}
    assert queues == {"default", "manager"}


def test_multi_trigger_maps_over_trigger_operator(parsed: dict[str, Any]) -> None:
    tasks = parsed["dags"]["example_multi_trigger"]["tasks"]
    assert tasks["trigger_target"]["type"] in {"MappedOperator", "TriggerDagRunOperator"}
    assert parsed["dags"]["example_multi_trigger"]["params"]["count"]["default"] == 3


def test_docker_example_uses_the_docker_provider(parsed: dict[str, Any]) -> None:
    tasks = parsed["dags"]["example_docker"]["tasks"]
    assert tasks["count_words"]["type"] == "DockerOperator"


def test_queue_pools_come_from_the_installed_cluster_policy(
    parsed: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """With the stack's AIRTASKS_QUEUE_POOLS, Airflow's own parsing (the `airflow.policy` entry point
    of the installed package) puts each task of a sized queue into its queue's pool; the manager
    queue, and every task without the variable, stay in Airflow's default pool."""
    pooled = parse(tmp_path_factory.mktemp("airflow_home"), AIRTASKS_QUEUE_POOLS="default=6")
    tasks = pooled["dags"]["example_interleaved"]["tasks"]
    assert {t["queue"]: t["pool"] for t in tasks.values()} == {
        "default": "airtasks-default",
        "manager": "default_pool",
    }
    assert {t["pool"] for t in parsed["dags"]["example_interleaved"]["tasks"].values()} == {"default_pool"}
