"""Source clients at the HTTP boundary (httpx MockTransport): pagination, token refresh, retries."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest

from airtasks.config import AirflowSourceConfig, Credentials, RabbitMQSourceConfig, Secret
from airtasks.errors import SourceReadError
from airtasks.schedule import DagTask, PastTask, root_slots
from airtasks.sources import AirflowSource, RabbitMQSource
from airtasks.sources.airflow import FinishedTask, RunningTask, epoch, host_id

CREDS = Credentials(Secret("admin", "test"), Secret("pw", "test"))


def airflow(handler: httpx.MockTransport) -> AirflowSource:
    return AirflowSource(
        AirflowSourceConfig(url="http://af:8080", timeout_seconds=1), CREDS, transport=handler
    )


def test_running_pages_through_every_task_instance() -> None:
    tis = [
        {"dag_id": "d", "task_id": f"t{i}", "queue": "q", "hostname": f"i-{i % 3}.ec2.internal"}
        for i in range(230)
    ]
    seen_offsets = []

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/auth/token":
            assert json.loads(request.content) == {"username": "admin", "password": "pw"}
            return httpx.Response(201, json={"access_token": "jwt"})
        assert request.headers["Authorization"] == "Bearer jwt"
        params = request.url.params
        assert params.get_list("state") == ["running"]
        offset, limit = int(params["offset"]), int(params["limit"])
        seen_offsets.append(offset)
        return httpx.Response(
            200, json={"task_instances": tis[offset : offset + limit], "total_entries": len(tis)}
        )

    busy = airflow(httpx.MockTransport(handle)).busy(["q"])
    assert seen_offsets == [0, 100, 200]
    assert busy == {"q": {"i-0": 77, "i-1": 77, "i-2": 76}}


def test_restart_clears_that_running_task_instance_only() -> None:
    bodies = []

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/auth/token":
            return httpx.Response(201, json={"access_token": "jwt"})
        assert (request.method, request.url.path) == ("POST", "/api/v2/dags/etl/clearTaskInstances")
        bodies.append(json.loads(request.content))
        cleared = [{"task_id": "load"}] if len(bodies) == 1 else []
        return httpx.Response(200, json={"task_instances": cleared, "total_entries": len(cleared)})

    source = airflow(httpx.MockTransport(handle))
    task = RunningTask("q", "i-0abc", "etl.load.r1.3", "etl", "load", "r1", 3)
    assert source.restart(task, "spot notice") is True
    # A second clear finds it no longer running: nothing to do.
    assert source.restart(task, "spot notice") is False
    assert bodies[0] == {
        "dry_run": False,
        "dag_run_id": "r1",
        "task_ids": [["load", 3]],
        "only_failed": False,
        "only_running": True,
        "reset_dag_runs": False,
        "note": "spot notice",
    }
    unmapped = RunningTask("q", "i-0abc", "etl.load.r1.-1", "etl", "load", "r1", -1)
    source.restart(unmapped, "spot notice")
    assert bodies[-1]["task_ids"] == ["load"]


def test_count_uses_limit_zero_and_repeated_filters() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/auth/token":
            return httpx.Response(201, json={"access_token": "jwt"})
        assert request.url.params.get_list("state") == ["queued", "running"]
        assert request.url.params.get_list("queue") == ["gpu"]
        assert request.url.params["limit"] == "0"
        return httpx.Response(200, json={"task_instances": [], "total_entries": 42})

    assert airflow(httpx.MockTransport(handle)).count("gpu") == 42


def test_an_expired_token_is_refreshed_once() -> None:
    tokens = iter(["old", "new"])
    calls: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/auth/token":
            return httpx.Response(201, json={"access_token": next(tokens)})
        calls.append(request.headers["Authorization"])
        if request.headers["Authorization"] == "Bearer old":
            return httpx.Response(401, json={"detail": "expired"})
        return httpx.Response(200, json={"task_instances": [], "total_entries": 1})

    assert airflow(httpx.MockTransport(handle)).count("q") == 1
    assert calls == ["Bearer old", "Bearer new"]


def test_no_credentials_uses_the_all_admins_token() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/auth/token":
            assert request.method == "GET"
            return httpx.Response(200, json={"access_token": "jwt"})
        return httpx.Response(200, json={"task_instances": [], "total_entries": 0})

    source = AirflowSource(
        AirflowSourceConfig(url="http://af:8080"),
        Credentials(None, None),
        transport=httpx.MockTransport(handle),
    )
    assert source.count("q") == 0


def test_5xx_is_retried_a_bounded_number_of_times_then_names_the_source() -> None:
    hits = []

    def handle(request: httpx.Request) -> httpx.Response:
        hits.append(request.url.path)
        return httpx.Response(503)

    with pytest.raises(SourceReadError, match=r"^airflow: POST /auth/token: HTTP 503 after 3 tries$"):
        airflow(httpx.MockTransport(handle)).count("q")
    assert len(hits) == 3


def test_rabbitmq_depths_sum_ready_and_unacked_and_default_missing_to_zero() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        assert request.url.raw_path.split(b"?")[0] == b"/api/queues/%2F"
        assert request.headers["Authorization"].startswith("Basic ")
        return httpx.Response(
            200, json=[{"name": "a", "messages_ready": 3, "messages_unacknowledged": 2}, {"name": "z"}]
        )

    source = RabbitMQSource(
        RabbitMQSourceConfig(url="http://mq:15672"), CREDS, transport=httpx.MockTransport(handle)
    )
    assert source.depths(["a", "b"]) == {"a": 5, "b": 0}


@pytest.mark.parametrize(
    ("hostname", "expected"),
    [("i-0abc.eu-west-1.compute.internal", "i-0abc"), ("I-0ABC", "i-0abc"), (None, ""), ("w1", "w1")],
)
def test_host_id_is_the_first_dns_label(hostname: str | None, expected: str) -> None:
    assert host_id(hostname) == expected


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def test_next_runs_pages_in_logical_date_order_and_stops_past_the_horizon() -> None:
    """Unpaused DAGs only, ordered by next logical date; paging ends at the first DAG whose logical
    date is past the horizon (its run_after can only be later), and a run_after past it is left out."""
    t0 = 1_800_000_000.0
    dags = [
        {
            "dag_id": f"d{i}",
            "next_dagrun_logical_date": iso(t0 + i),
            "next_dagrun_run_after": iso(t0 + i + 60),
        }
        for i in range(150)
    ] + [{"dag_id": "manual", "next_dagrun_logical_date": None, "next_dagrun_run_after": None}]
    asked = []

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/auth/token":
            return httpx.Response(201, json={"access_token": "jwt"})
        assert request.url.path == "/api/v2/dags"
        params = request.url.params
        assert (params["paused"], params["order_by"]) == ("false", "next_dagrun")
        offset, limit = int(params["offset"]), int(params["limit"])
        asked.append(offset)
        return httpx.Response(200, json={"dags": dags[offset : offset + limit], "total_entries": len(dags)})

    source = airflow(httpx.MockTransport(handle))
    assert source.next_runs(t0 + 200) == [(f"d{i}", t0 + i + 60) for i in range(141)]
    assert asked == [0, 100]
    asked.clear()
    assert source.next_runs(t0 + 70) == [(f"d{i}", t0 + i + 60) for i in range(11)]
    assert asked == [0]  # d71's logical date is past the horizon: no second page


def test_recent_runs_reads_each_runs_task_instances_oldest_run_first() -> None:
    t0 = 1_800_000_000.0
    runs = [
        {"dag_run_id": "scheduled__2", "run_after": iso(t0 + 86400)},
        {"dag_run_id": "scheduled__1", "run_after": iso(t0)},
    ]
    tis = {
        "scheduled__1": [{"queue": "default", "queued_when": iso(t0 + 3), "duration": 42.5}],
        "scheduled__2": [
            {"queue": "default", "queued_when": iso(t0 + 86402), "duration": 10.0},
            {"queue": "gpu", "queued_when": None, "duration": None},  # skipped: never queued
        ],
    }

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/auth/token":
            return httpx.Response(201, json={"access_token": "jwt"})
        params = request.url.params
        if request.url.path == "/api/v2/dags/etl/dagRuns":
            assert params.get_list("run_type") == ["scheduled"]
            assert params.get_list("state") == ["success", "failed"]
            assert (params["order_by"], params["limit"]) == ("-run_after", "3")
            return httpx.Response(200, json={"dag_runs": runs, "total_entries": 2})
        run_id = request.url.path.split("/")[-2]
        return httpx.Response(200, json={"task_instances": tis[run_id], "total_entries": len(tis[run_id])})

    got = airflow(httpx.MockTransport(handle)).recent_runs("etl")
    assert got == [
        (t0, [PastTask("default", t0 + 3, 42.5)]),
        (t0 + 86400, [PastTask("default", t0 + 86402, 10.0)]),
    ]


def test_dag_tasks_reads_the_dags_structure_in_one_call() -> None:
    asked: list[str] = []
    listing = {
        "tasks": [
            {"task_id": "extract", "queue": "default", "downstream_task_ids": ["train", "load"]},
            {"task_id": "train", "queue": "gpu", "downstream_task_ids": []},
            {"task_id": "load", "queue": None, "downstream_task_ids": None},  # Airflow's default queue
        ],
        "total_entries": 3,
    }

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/auth/token":
            return httpx.Response(201, json={"access_token": "jwt"})
        asked.append(request.url.path)
        return httpx.Response(200, json=listing)

    got = airflow(httpx.MockTransport(handle)).dag_tasks("etl")
    assert asked == ["/api/v2/dags/etl/tasks"]
    assert got == [
        DagTask("extract", "default", ("train", "load")),
        DagTask("train", "gpu"),
        DagTask("load", "default"),
    ]
    assert root_slots(got) == {"default": 1}


def listing(tis: list[dict[str, object]], seen: list[dict[str, list[str]]]) -> httpx.MockTransport:
    """Airflow's task instance listing over `tis`, paged as asked; `seen` gets each request's params."""

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/auth/token":
            return httpx.Response(201, json={"access_token": "jwt"})
        params = request.url.params
        seen.append({k: params.get_list(k) for k in params})
        offset, limit = int(params["offset"]), int(params["limit"])
        return httpx.Response(
            200, json={"task_instances": tis[offset : offset + limit], "total_entries": len(tis)}
        )

    return httpx.MockTransport(handle)


def test_queued_keys_come_in_queued_order_and_none_past_the_limit() -> None:
    t0 = 1_800_000_000.0
    tis: list[dict[str, object]] = [
        {"dag_id": "etl", "task_id": f"t{i}", "queued_when": iso(t0 + (i * 7) % 150)} for i in range(150)
    ]
    seen: list[dict[str, list[str]]] = []
    keys = airflow(listing(tis, seen)).queued_keys("q", limit=200)
    assert keys is not None
    assert len(keys) == 150
    assert keys[:3] == ["etl.t0", "etl.t43", "etl.t86"]  # queued at t0, t0 + 1, t0 + 2
    assert (seen[0]["state"], seen[0]["queue"]) == (["queued"], ["q"])
    seen.clear()
    assert airflow(listing(tis, seen)).queued_keys("q", limit=50) is None
    assert len(seen) == 1  # stopped at the 51st: the second page is never asked for


def test_finished_reads_the_latest_successes_or_those_that_ended_after_a_time() -> None:
    t0 = 1_800_000_000.0
    newest_first: list[dict[str, object]] = [
        {"id": f"u{i}", "dag_id": "etl", "task_id": "load", "end_date": iso(t0 - i), "duration": 30.0 + i}
        for i in range(250)
    ]
    seen: list[dict[str, list[str]]] = []
    latest = airflow(listing(newest_first, seen)).finished("q", None, limit=150)
    assert [t.id for t in latest[-2:]] == ["u1", "u0"]  # oldest first
    assert (len(latest), len(seen)) == (150, 2)  # the third page is never asked for
    assert latest[-1] == FinishedTask("u0", "etl.load", 30.0, t0)
    assert (seen[0]["state"], seen[0]["order_by"]) == (["success"], ["-end_date"])

    seen.clear()
    oldest_first: list[dict[str, object]] = [
        *reversed(newest_first[:3]),
        {"id": "x", "dag_id": "etl", "task_id": "t", "end_date": None},
    ]
    since = airflow(listing(oldest_first, seen)).finished("q", t0 - 5, limit=150)
    assert [t.id for t in since] == ["u2", "u1", "u0"]  # without an end or a duration: skipped
    assert seen[0]["order_by"] == ["end_date"]
    assert [epoch(v) for v in seen[0]["end_date_gt"]] == [t0 - 5]


def test_running_task_instances_carry_their_start() -> None:
    t0 = 1_800_000_000.0
    tis: list[dict[str, object]] = [
        {"dag_id": "etl", "task_id": "load", "queue": "q", "hostname": "i-1", "start_date": iso(t0)},
        {"dag_id": "etl", "task_id": "load", "queue": "q", "hostname": "i-1", "start_date": None},
    ]
    got = airflow(listing(tis, [])).running(["q"])
    assert [(t.task, t.started) for t in got] == [("etl.load", t0), ("etl.load", None)]
