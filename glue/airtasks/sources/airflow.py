"""The Airflow REST API (v2) as a load source: queued + running task instances per queue, and
which host runs what (the `hostname` of running task instances = the instance id of the node).

For queues that learn run times: the keys of queued task instances in the order they were queued,
when each running one started, and how long the recent successful ones ran (`scaling.durations`).

Auth: a JWT from `POST /auth/token` (username + password), or `GET /auth/token` when no
credentials are configured (SimpleAuthManager with all-admins). Refreshed once on a 401.
Also keeps the scaler's memory in an Airflow Variable (see `airtasks.state.memory`), and reads
the schedule for pre-scaling: unpaused DAGs' next run times, the tasks of their recent
scheduled runs (`airtasks.schedule` learns from those what a run needs), and each DAG's tasks
(its structure: the root tasks a run, even its first, queues as it starts).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from airtasks.config import AirflowSourceConfig, Credentials
from airtasks.errors import SourceReadError
from airtasks.schedule import RUNS_LEARNED, DagTask, PastTask
from airtasks.sources._http import request, tls_context

TI_PATH = "/api/v2/dags/~/dagRuns/~/taskInstances"
PAGE = 100
DEFAULT_QUEUE = "default"
"""Airflow's `[operators] default_queue`: the queue of a task that names none."""


def epoch(value: object) -> float | None:
    """An Airflow timestamp (ISO 8601) as epoch seconds; None when absent or not a timestamp."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def host_id(hostname: str | None) -> str:
    """The node id a hostname stands for: its first DNS label (`i-0abc.ec2.internal` -> `i-0abc`)."""
    return (hostname or "").split(".", 1)[0].strip().lower()


def task_key(dag_id: object, task_id: object) -> str:
    """What run times are learnt per: the task (`dag_id.task_id`), across its runs and map indexes."""
    return f"{dag_id}.{task_id}"


@dataclass(frozen=True)
class RunningTask:
    queue: str
    host: str
    """First DNS label of the task instance's hostname ('' when not reported yet)."""
    key: str
    dag_id: str = ""
    task_id: str = ""
    run_id: str = ""
    map_index: int = -1
    started: float | None = None
    """Its start_date (epoch seconds); None when Airflow reports none."""

    @property
    def task(self) -> str:
        """Its task's key for learnt run times (`task_key`)."""
        return task_key(self.dag_id, self.task_id)


@dataclass(frozen=True)
class FinishedTask:
    """A task instance that ended in success: one sample of its task's run time."""

    id: str
    task: str
    """`task_key`: `dag_id.task_id`."""
    seconds: float
    ended: float
    """Its end_date (epoch seconds)."""


class AirflowSource:
    """Airflow REST API v2, hook-style: lazy client, `test_connection()`, `SourceReadError`."""

    name = "airflow"

    def __init__(
        self,
        config: AirflowSourceConfig,
        credentials: Credentials,
        *,
        transport: httpx.BaseTransport | None = None,
        token: str | None = None,
    ) -> None:
        """`token`: call with this JWT instead of logging in (the operations view passes on the
        token of the user who asked, so it reads what that user may read)."""
        self.config = config
        self._credentials = credentials
        self._transport = transport
        self._client: httpx.Client | None = None
        self._given_token = token
        self._token: str | None = token

    # -- connection ----------------------------------------------------------------------------

    def get_conn(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(
                base_url=self.config.url,
                timeout=self.config.timeout_seconds,
                verify=tls_context(self.config.verify_tls),
                transport=self._transport,
                headers={"Accept": "application/json"},
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _budget(self) -> float:
        return max(2.0 * self.config.timeout_seconds, 3.0)

    def _fetch_token(self) -> str:
        if self._given_token is not None:
            return self._given_token
        user, password = self._credentials.username, self._credentials.password
        if user is None and password is None:
            response = request(
                self.get_conn(), self.name, "GET", "/auth/token", budget_seconds=self._budget()
            )
        else:
            body = {"username": user.get() if user else "", "password": password.get() if password else ""}
            response = request(
                self.get_conn(), self.name, "POST", "/auth/token", json=body, budget_seconds=self._budget()
            )
        try:
            token = response.json()["access_token"]
        except (ValueError, KeyError, TypeError):
            raise SourceReadError(f"{self.name}: /auth/token returned no access_token") from None
        return str(token)

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        ok = tuple(kwargs.pop("ok", ()))
        for attempt in (1, 2):
            if self._token is None:
                self._token = self._fetch_token()
            response = request(
                self.get_conn(),
                self.name,
                method,
                path,
                headers={"Authorization": f"Bearer {self._token}"},
                budget_seconds=self._budget(),
                ok=(401, *ok),
                **kwargs,
            )
            if response.status_code != 401:
                return response
            self._token = None
            if attempt == 2 or self._given_token is not None:
                break
        if self._given_token is not None:
            raise SourceReadError(f"{self.name}: {method} {path}: HTTP 401; the token passed on was refused")
        raise SourceReadError(
            f"{self.name}: {method} {path}: HTTP 401 with a fresh token; check the Airflow credentials "
            f"({self.config.username_env}/{self.config.password_env})"
        )

    def test_connection(self) -> tuple[bool, str]:
        try:
            self._call("GET", TI_PATH, params={"limit": 0})
        except SourceReadError as exc:
            return False, str(exc)
        return True, f"{self.name}: connected to {self.config.url}"

    # -- reads ---------------------------------------------------------------------------------

    def count(self, queue: str, states: Iterable[str] = ("queued", "running")) -> int:
        """Task instances of `queue` in `states` (one request: `limit=0`, `total_entries`)."""
        response = self._call("GET", TI_PATH, params={"state": list(states), "queue": [queue], "limit": 0})
        try:
            return int(response.json()["total_entries"])
        except (ValueError, KeyError, TypeError):
            raise SourceReadError(
                f"{self.name}: task instance count for {queue} has no total_entries"
            ) from None

    def counts(self, queues: Iterable[str]) -> dict[str, int]:
        return {q: self.count(q) for q in queues}

    def _pages(self, path: str, key: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Every item under `key` of a list endpoint, read `PAGE` at a time with `params` plus
        `limit` and `offset`. Lazy: a caller that stops early asks for no further page."""
        offset = 0
        while True:
            data = self._call("GET", path, params={**params, "limit": PAGE, "offset": offset}).json()
            items = data.get(key) or []
            yield from items
            offset += len(items)
            # An empty page ends it too: rows that changed while paging can leave `total_entries`
            # above what is left to read.
            if not items or offset >= int(data.get("total_entries") or 0):
                return

    def _running_items(self, queues: list[str]) -> Iterator[dict[str, Any]]:
        """Every running task instance of these queues as Airflow returns it (all pages of 100)."""
        params = {"state": ["running"], "queue": queues, "order_by": "id"}
        yield from self._pages(TI_PATH, "task_instances", params)

    def running(self, queues: Iterable[str]) -> list[RunningTask]:
        """Every running task instance of these queues, with the host it runs on (all pages)."""
        out: list[RunningTask] = []
        for ti in self._running_items(list(queues)):
            key = f"{ti.get('dag_id')}.{ti.get('task_id')}.{ti.get('dag_run_id')}.{ti.get('map_index')}"
            map_index = ti.get("map_index")
            out.append(
                RunningTask(
                    str(ti.get("queue") or ""),
                    host_id(ti.get("hostname")),
                    key,
                    str(ti.get("dag_id") or ""),
                    str(ti.get("task_id") or ""),
                    str(ti.get("dag_run_id") or ""),
                    map_index if isinstance(map_index, int) else -1,
                    epoch(ti.get("start_date")),
                )
            )
        return out

    def queued_keys(self, queue: str, limit: int) -> list[str] | None:
        """The task keys (`task_key`) of the queue's queued task instances, in the order they were
        queued; None when more than `limit` are queued (the pass then scales on the count alone:
        past that many, the group must grow anyway, and reading them all would cost a page per
        hundred every pass)."""
        params = {"state": ["queued"], "queue": [queue], "order_by": "id"}
        items: list[dict[str, Any]] = []
        for ti in self._pages(TI_PATH, "task_instances", params):
            if len(items) == limit:
                return None
            items.append(ti)
        # Airflow cannot order this listing by queued_when; the workers take them in about that order.
        items.sort(key=lambda ti: epoch(ti.get("queued_when")) or 0.0)
        return [task_key(ti.get("dag_id"), ti.get("task_id")) for ti in items]

    def finished(self, queue: str, after: float | None, limit: int) -> list[FinishedTask]:
        """The queue's successful task instances that ended after `after` (all pages), or, with
        `after` None, the latest `limit` of them; oldest first either way."""
        params: dict[str, Any] = {"state": ["success"], "queue": [queue]}
        if after is None:
            params["order_by"] = "-end_date"
        else:
            params["order_by"] = "end_date"
            params["end_date_gt"] = datetime.fromtimestamp(after, UTC).isoformat()
        out: list[FinishedTask] = []
        for ti in self._pages(TI_PATH, "task_instances", params):
            if after is None and len(out) == limit:
                break
            ended, duration = epoch(ti.get("end_date")), ti.get("duration")
            if ended is not None and isinstance(duration, int | float):
                key = task_key(ti.get("dag_id"), ti.get("task_id"))
                out.append(FinishedTask(str(ti.get("id") or ""), key, float(duration), ended))
        return sorted(out, key=lambda t: t.ended)

    def busy(self, queues: Iterable[str]) -> dict[str, Counter[str]]:
        """queue -> host -> running task instances, counted straight from the pages (a pass needs
        no RunningTask per task instance; at 10,000 of them that saved 10-20% of this read)."""
        result: dict[str, Counter[str]] = {q: Counter() for q in queues}
        for ti in self._running_items(list(result)):
            result.setdefault(str(ti.get("queue") or ""), Counter())[host_id(ti.get("hostname"))] += 1
        return result

    def restart(self, task: RunningTask, note: str) -> bool:
        """Clear one running task instance so that Airflow runs it again elsewhere without using a
        retry: Airflow puts it in `restarting`, its worker kills it at the next heartbeat, and the
        scheduler queues it again with `max_tries` raised by the one try it lost. True when Airflow
        cleared it; False when it no longer ran (it ended, or was cleared already)."""
        ti: str | list[str | int] = task.task_id if task.map_index < 0 else [task.task_id, task.map_index]
        body = {
            "dry_run": False,
            "dag_run_id": task.run_id,
            "task_ids": [ti],
            "only_failed": False,
            "only_running": True,
            # The run is running: leave its state and start date alone.
            "reset_dag_runs": False,
            "note": note[:1000],
        }
        path = f"/api/v2/dags/{task.dag_id}/clearTaskInstances"
        data = self._call("POST", path, json=body).json()
        return bool(data.get("task_instances"))

    # -- the schedule (pre-scaling) -----------------------------------------------------------

    def next_runs(self, until: float) -> list[tuple[str, float]]:
        """(dag_id, run_after as epoch seconds) of every unpaused DAG whose next scheduled run is
        due before `until`. Pages in order of the next run's logical date, which is never later
        than its run_after, so paging stops at the first DAG whose logical date is past `until`."""
        out: list[tuple[str, float]] = []
        params = {"paused": False, "order_by": "next_dagrun"}
        for dag in self._pages("/api/v2/dags", "dags", params):
            logical = epoch(dag.get("next_dagrun_logical_date"))
            if logical is None or logical > until:
                break
            run_after = epoch(dag.get("next_dagrun_run_after"))
            if run_after is not None and run_after <= until:
                out.append((str(dag.get("dag_id")), run_after))
        return out

    def recent_runs(self, dag_id: str) -> list[tuple[float, list[PastTask]]]:
        """The DAG's last finished scheduled runs (oldest first): each run's run_after and its
        task instances as queued, with how long they ran."""
        params = {
            "run_type": ["scheduled"],
            "state": ["success", "failed"],
            "order_by": "-run_after",
            "limit": RUNS_LEARNED,
        }
        runs = self._call("GET", f"/api/v2/dags/{dag_id}/dagRuns", params=params).json().get("dag_runs") or []
        out: list[tuple[float, list[PastTask]]] = []
        for run in reversed(runs):
            run_at = epoch(run.get("run_after"))
            if run_at is None:
                continue
            path = f"/api/v2/dags/{dag_id}/dagRuns/{run.get('dag_run_id')}/taskInstances"
            tasks: list[PastTask] = []
            for ti in self._pages(path, "task_instances", {"order_by": "id"}):
                queued = epoch(ti.get("queued_when"))
                duration = ti.get("duration")
                if queued is not None and isinstance(duration, int | float):
                    tasks.append(PastTask(str(ti.get("queue") or ""), queued, float(duration)))
            out.append((run_at, tasks))
        return out

    def dag_tasks(self, dag_id: str) -> list[DagTask]:
        """The DAG's tasks as its latest parsed version shows them: id, queue and downstream ids.
        Airflow answers this listing whole (it takes no limit or offset), so it is one call."""
        data = self._call("GET", f"/api/v2/dags/{dag_id}/tasks").json()
        out: list[DagTask] = []
        for task in data.get("tasks") or []:
            downstream = task.get("downstream_task_ids") or []
            out.append(
                DagTask(
                    str(task.get("task_id") or ""),
                    str(task.get("queue") or DEFAULT_QUEUE),
                    tuple(str(d) for d in downstream),
                )
            )
        return out

    # -- Variables (scaler memory) -----------------------------------------------------------------

    def get_variable(self, key: str) -> str | None:
        response = self._call("GET", f"/api/v2/variables/{key}", ok=(404,))
        if response.status_code == 404:
            return None
        value = response.json().get("value")
        return None if value is None else str(value)

    def set_variable(self, key: str, value: str, description: str = "") -> None:
        body = {"key": key, "value": value, "description": description}
        response = self._call("PATCH", f"/api/v2/variables/{key}", json=body, ok=(404,))
        if response.status_code == 404:
            self._call("POST", "/api/v2/variables", json=body)


__all__ = ["AirflowSource", "FinishedTask", "RunningTask", "epoch", "host_id", "task_key"]
