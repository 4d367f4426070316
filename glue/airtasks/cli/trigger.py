"""`airtasks trigger DAG_ID [--conf JSON] [--wait]`: start a DAG run through Airflow's REST API v2."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import click
import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    retry_if_result,
    stop_after_attempt,
    wait_exponential,
)
from tenacity.wait import wait_base

from airtasks.errors import AirtasksError
from airtasks.sources import airflow_access

FINISHED = {"success", "failed"}
# Tries of one call that got no answer (a timeout or a dropped connection) or a transient server
# error: a busy API server can take longer than the client's 30 s once, and every call here is
# safe to send again.
ATTEMPTS = 3
RETRY_WAIT: wait_base = wait_exponential(multiplier=2, max=10)
# The proxy found no API server to answer (one restarting, or on a lost manager).
GATEWAY_ERRORS = frozenset({502, 503, 504})
# Airflow's answer to a SQLAlchemy error it has no better name for: in practice a connection to
# the database lost or not opened (a restart, a managed database's failover, a network blip),
# which the next request opens again.
DATABASE_ERROR = "Database error"


class TriggerError(AirtasksError):
    """The run could not be created, or Airflow could not be asked about it."""


@dataclass(frozen=True)
class RunResult:
    dag_id: str
    run_id: str
    state: str


def parse_conf(text: str | None) -> dict[str, Any]:
    """The `--conf` value: a JSON object, or nothing. Raises ValueError with a readable reason."""
    if text is None or not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    if not isinstance(value, dict):
        raise ValueError(f"must be a JSON object like '{{\"n\": 3}}', not {type(value).__name__}")
    return value


def _detail(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:300]
    detail = body.get("detail", body) if isinstance(body, dict) else body
    return json.dumps(detail)[:500] if not isinstance(detail, str) else detail[:500]


def _dag_url(base: str, dag_id: str) -> str:
    return f"{base}/api/v2/dags/{quote(dag_id, safe='')}"


def transient(resp: httpx.Response) -> bool:
    """Whether an answer is a server error that the same call may not meet a moment later."""
    if resp.status_code in GATEWAY_ERRORS:
        return True
    if resp.status_code != 500:
        return False
    try:
        detail = resp.json().get("detail")
    except (ValueError, AttributeError):
        return False
    return isinstance(detail, dict) and detail.get("reason") == DATABASE_ERROR


def _last_answer(state: RetryCallState) -> httpx.Response:
    """After the last try: its answer, for the caller to report, or the error it raised."""
    assert state.outcome is not None
    return state.outcome.result()  # type: ignore[no-any-return]


def _send(send: Callable[[], httpx.Response], what: str) -> httpx.Response:
    """One REST call, sent again while no answer comes or the answer is `transient`; TriggerError
    naming `what` if no answer ever came."""
    retrying = Retrying(
        stop=stop_after_attempt(ATTEMPTS),
        wait=RETRY_WAIT,
        retry=retry_if_exception_type(httpx.TransportError) | retry_if_result(transient),
        retry_error_callback=_last_answer,
    )
    try:
        response: httpx.Response = retrying(send)
    except httpx.TransportError as exc:
        reason = (
            "timed out"
            if isinstance(exc, httpx.TimeoutException)
            else f"failed ({exc or type(exc).__name__})"
        )
        raise TriggerError(
            f"{what} {reason}, {ATTEMPTS} tries: is Airflow's API server up and not overloaded "
            "(`docker service ps airtasks_airflow-apiserver`)?"
        ) from None
    return response


def new_run_id(now: datetime | None = None) -> str:
    """The run's id, chosen here as Airflow would (`manual__<time>`), so that a create sent again
    after a lost answer finds the first one's run (409) instead of making a second."""
    return f"manual__{(now or datetime.now(UTC)).isoformat()}"


def check_dag(client: httpx.Client, base: str, dag_id: str, appear_timeout: float = 30.0) -> None:
    """The DAG exists (waiting a little for a fresh scheduler to parse it) and is not paused."""
    deadline = time.monotonic() + appear_timeout
    while True:
        resp = _send(lambda: client.get(_dag_url(base, dag_id)), f"reading DAG {dag_id!r} at {base}")
        if resp.status_code != 404 or time.monotonic() > deadline:
            break
        time.sleep(2)
    if resp.status_code == 404:
        raise TriggerError(f"no DAG {dag_id!r} in Airflow at {base} (is its file in dags/ and importable?)")
    if resp.status_code >= 400:
        raise TriggerError(f"Airflow answered {resp.status_code} for DAG {dag_id!r}: {_detail(resp)}")
    if resp.json().get("is_paused"):
        raise TriggerError(f"DAG {dag_id!r} is paused: unpause it in the UI, or pass --unpause")


def unpause(client: httpx.Client, base: str, dag_id: str) -> None:
    resp = _send(
        lambda: client.patch(_dag_url(base, dag_id), json={"is_paused": False}), f"unpausing {dag_id!r}"
    )
    if resp.status_code >= 400:
        raise TriggerError(f"cannot unpause {dag_id!r}: {resp.status_code} {_detail(resp)}")


def create_run(client: httpx.Client, base: str, dag_id: str, conf: dict[str, Any]) -> str:
    """Create the run and return its id. A create sent again (the first answer lost) that meets
    its own run (409) has made it: the run id is ours, and Airflow keeps run ids unique per DAG."""
    run_id = new_run_id()
    sent = 0

    def post() -> httpx.Response:
        nonlocal sent
        sent += 1
        return client.post(
            f"{_dag_url(base, dag_id)}/dagRuns",
            json={"dag_run_id": run_id, "logical_date": None, "conf": conf},
        )

    resp = _send(post, f"creating run {run_id!r} of {dag_id!r} at {base}")
    if resp.status_code == 409 and sent > 1:
        return run_id
    if resp.status_code >= 400:
        raise TriggerError(f"Airflow refused the run of {dag_id!r} ({resp.status_code}): {_detail(resp)}")
    return str(resp.json()["dag_run_id"])


def run_state(client: httpx.Client, base: str, dag_id: str, run_id: str) -> str:
    url = f"{_dag_url(base, dag_id)}/dagRuns/{quote(run_id, safe='')}"
    resp = _send(lambda: client.get(url), f"reading run {run_id!r}")
    if resp.status_code >= 400:
        raise TriggerError(f"cannot read run {run_id!r}: {resp.status_code} {_detail(resp)}")
    return str(resp.json()["state"])


def wait_for(
    client: httpx.Client,
    base: str,
    dag_id: str,
    run_id: str,
    *,
    timeout: float,
    interval: float = 2.0,
    on_change: Callable[[str], None] | None = None,
) -> str:
    """Poll the run until it finished; return its final state, or raise on timeout."""
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        state = run_state(client, base, dag_id, run_id)
        if state != last and on_change is not None:
            on_change(state)
        last = state
        if state in FINISHED:
            return state
        if time.monotonic() > deadline:
            raise TriggerError(f"run {run_id!r} still {state} after {timeout:.0f}s (see the UI)")
        time.sleep(interval)


def trigger(
    dag_id: str,
    conf: dict[str, Any],
    *,
    wait: bool = False,
    timeout: float = 600.0,
    do_unpause: bool = False,
    access: airflow_access.AirflowAccess | None = None,
    on_change: Callable[[str], None] | None = None,
) -> RunResult:
    """Create a run of `dag_id` with `conf`; with `wait`, return once it finished."""
    access = access or airflow_access.resolve()
    client = airflow_access.api_client(access)
    with contextlib.closing(client):
        try:
            check_dag(client, access.url, dag_id, appear_timeout=min(30.0, timeout))
        except TriggerError as exc:
            if not (do_unpause and "is paused" in str(exc)):
                raise
            unpause(client, access.url, dag_id)
        run_id = create_run(client, access.url, dag_id, conf)
        if on_change is not None:
            on_change(f"run_id={run_id}")
        if not wait:
            return RunResult(dag_id, run_id, "queued")
        # A long wait outlives the JWT: log in again every poll cycle would be wasteful, so
        # refresh the token only when the API says it expired.
        try:
            state = wait_for(client, access.url, dag_id, run_id, timeout=timeout, on_change=on_change)
        except TriggerError as exc:
            if "401" not in str(exc):
                raise
            client.headers["Authorization"] = f"Bearer {airflow_access.get_token(access, client)}"
            state = wait_for(client, access.url, dag_id, run_id, timeout=timeout, on_change=on_change)
        return RunResult(dag_id, run_id, state)


def _conf_option(ctx: click.Context, param: click.Parameter, value: str | None) -> dict[str, Any]:
    try:
        return parse_conf(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


@click.command("trigger")
@click.argument("dag_id")
@click.option("--conf", callback=_conf_option, metavar="JSON", help="Run conf (params), a JSON object.")
@click.option("--wait", is_flag=True, help="Wait until the run finished; exit 1 unless it succeeded.")
@click.option("--timeout", type=click.FloatRange(min=1), default=600.0, show_default=True, help="Seconds.")
@click.option("--unpause", "do_unpause", is_flag=True, help="Unpause the DAG first if it is paused.")
def trigger_command(dag_id: str, conf: dict[str, Any], wait: bool, timeout: float, do_unpause: bool) -> None:
    """Trigger DAG_ID through Airflow's REST API and print the run id (and the final state).

    Finds Airflow through AIRTASKS_AIRFLOW_URL / _USERNAME / _PASSWORD (or _PASSWORD_FILE), else
    through the state file `make up` writes.
    """

    def show(event: str) -> None:
        if event.startswith("run_id="):
            click.echo(event.removeprefix("run_id="))
        elif wait:
            click.echo(f"state: {event}", err=True)

    result = trigger(dag_id, conf, wait=wait, timeout=timeout, do_unpause=do_unpause, on_change=show)
    if wait:
        click.echo(result.state)
        if result.state != "success":
            raise click.exceptions.Exit(1)
