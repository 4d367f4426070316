"""`make up` / `make down` (local mode) as a user runs them, in a copy of the repo: `make up`
starts moto, applies envs/local, starts Airflow standalone with the scaler DAG; then, with no
settings at all, `airtasks trigger ... --wait` succeeds, tasks on queue `default` make the scaler
DAG grow the group on moto, `airtasks scale --once --dry-run --json --from-terraform
envs/local` works, and DAGs in a folder of the user's own (`make up DAGS=...`) run, one saved
after `make up` included; `make down` leaves no process and no state behind. Both run the dev tool,
`python -m airtasks_dev up|down`, as the Makefile does."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from airtasks_dev.devstack.procs import alive, descendants
from tests.support.artifacts import ARTIFACTS
from tests.support.browser import cluster_page_shows_decision
from tests.support.ports import free_port

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
AIRTASKS = str(Path(sys.executable).with_name("airtasks"))
LOAD_DAG = REPO / "tests" / "integration" / "dags" / "airtasks_default_load.py"
LOAD_SECONDS = 150  # the load DAG's tasks: through two of the scaler DAG's minutely runs, late ones included
MY_DAG = """
import pendulum
from airflow.sdk import dag, task


@dag(dag_id="{dag_id}", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False)
def build():
    @task
    def hello() -> None:
        print("hello from my own folder")

    hello()


build()
"""
SKIP = (
    ".venv",
    ".git",
    ".run",
    "tests",
    "bench",
    "docs",
    ".terraform",
    "*.tfstate*",
    "__pycache__",
    ".*_cache",
)


def clone_of_the_repo(tmp_path: Path) -> Path:
    """What `make up` reads (envs/, modules/, dags/, terraform.rc), plus a DAG that makes load."""
    clone = tmp_path / "clone"
    shutil.copytree(REPO, clone, ignore=shutil.ignore_patterns(*SKIP))
    shutil.copy(LOAD_DAG, clone / "dags" / LOAD_DAG.name)
    return clone


def clean_view(url: str, token: str, attempts: list[str], seconds: float = 120) -> dict[str, Any]:
    """The Cluster page's API, read as the page does: again every 10 s until a read answers with no
    failure. Every attempt (status or error, and how long it took) is kept in `attempts`, which the
    test writes to tests/artifacts: on a host shared with the box a read can wait long for a CPU."""
    deadline = time.monotonic() + seconds
    while True:
        started = time.monotonic()
        data: dict[str, Any] | None = None
        try:
            r = httpx.get(
                f"{url}/airtasks/api/view", headers={"Authorization": f"Bearer {token}"}, timeout=30
            )
        except httpx.HTTPError as exc:
            outcome = f"{type(exc).__name__}: {exc}"
        else:
            data = r.json() if r.status_code == 200 else None
            outcome = f"{r.status_code} problems={data['problems'] if data else r.text[:200]}"
        attempts.append(f"{time.strftime('%H:%M:%S')} {time.monotonic() - started:.1f}s {outcome}")
        if data is not None and not data["problems"]:
            return data
        if time.monotonic() > deadline:
            pytest.fail("the Cluster page's API gave no clean read:\n" + "\n".join(attempts))
        time.sleep(10)


def scaler_story(url: str, token: str) -> str:
    """What the scaler DAG's last runs and the load's tasks went through, as Airflow lists them."""
    lines = []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as api:
        runs = api.get("/api/v2/dags/airtasks_scaler/dagRuns", params={"order_by": "-run_after", "limit": 4})
        for r in runs.json().get("dag_runs", []) if runs.status_code == 200 else []:
            lines.append(
                f"scaler run {r['run_after']}: {r['state']} (start {r['start_date']}, end {r['end_date']})"
            )
        tis = api.get("/api/v2/dags/airtasks_default_load/dagRuns/~/taskInstances")
        for ti in tis.json().get("task_instances", []) if tis.status_code == 200 else []:
            lines.append(
                f"load task {ti['map_index']}: {ti['state']} ({ti['start_date']} to {ti['end_date']})"
            )
    return "\n".join(lines) or f"no runs listed ({runs.status_code}, {tis.status_code})"


def dag_listed(api: httpx.Client, dag_id: str) -> bool:
    """Whether Airflow lists the DAG yet. An answer slower than the client waits is a "not yet", as
    for the page's reads: beside the box, make up's API server can take that long, and the caller
    asks again until its deadline."""
    try:
        return api.get(f"/api/v2/dags/{dag_id}").status_code == 200
    except httpx.TimeoutException:
        return False


def run(
    clone: Path, env: dict[str, str], *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [AIRTASKS, *args], cwd=clone, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def dev_tool(
    clone: Path, env: dict[str, str], *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """What `make up` / `make down` run: the clone's dev tool (the Makefile's venv finds it by a
    .pth file), with `airtasks` from this venv as for the other commands here."""
    return subprocess.run(
        [sys.executable, "-m", "airtasks_dev", *args],
        cwd=clone,
        env={**env, "PYTHONPATH": str(clone / "dev")},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_make_up_trigger_scale_then_down(tmp_path: Path) -> None:
    clone = clone_of_the_repo(tmp_path)
    # No settings: nothing from the developer's shell, and no per-user state file to fall back on.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRTASKS_", "AWS_"))}
    env["XDG_STATE_HOME"] = str(tmp_path / "xdg")
    started = time.monotonic()
    # A folder of the user's own DAGs, outside the repo (make up DAGS=...): one DAG now, one later.
    my_dags = tmp_path / "my-dags"
    my_dags.mkdir()
    (my_dags / "my_hello.py").write_text(MY_DAG.format(dag_id="my_hello"))
    up = dev_tool(clone, env, "up", "--airflow-port", str(free_port()), "--dags", str(my_dags), timeout=600)
    up_seconds = time.monotonic() - started
    run_dir = clone / ".run"
    pids: set[int] = set()
    view_reads: list[str] = []
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        state = json.loads((run_dir / "local.json").read_text())
        moto_pid = json.loads((run_dir / "moto.json").read_text())["pid"]
        pids = {state["pid"], moto_pid} | descendants({state["pid"], moto_pid})
        # How long it took is a figure to read (tests/artifacts), not a pass mark: it swings with load.
        healthy = re.search(r"airflow: healthy after (\d+)s", up.stdout)
        assert healthy, up.stdout
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "make-up-seconds.txt").write_text(f"up {up_seconds:.1f}\nairflow {healthy[1]}\n")

        # What `make up` printed: the UI, the login (a file, never the password), the logs, what it built.
        password_file = Path(state["password_file"])
        password = json.loads(password_file.read_text())["admin"]
        assert password_file.stat().st_mode & 0o777 == 0o600
        assert password not in (run_dir / "local.json").read_text()
        assert f"Airflow UI   {state['url']}" in up.stdout
        assert (
            "user admin, password in .run/airflow/simple_auth_manager_passwords.json.generated" in up.stdout
        )
        assert ".run/airflow/standalone.log" in up.stdout
        assert "group airtasks-local-default: min 0, max 3, 2 slots per node" in up.stdout
        assert re.search(r"Up in \d+s \(local mode: moto, terraform, airflow\)", up.stdout)

        # The Air-Tasks plugin (cluster page) is loaded, behind the login, with make up's scaler config.
        assert httpx.get(f"{state['url']}/airtasks/api/view", timeout=30).status_code == 401
        token = httpx.post(
            f"{state['url']}/auth/token", json={"username": "admin", "password": password}, timeout=30
        ).json()["access_token"]
        first = clean_view(state["url"], token, view_reads)
        assert first["cluster_name"] == "local"
        assert [q["group"] for q in first["queues"]] == ["airtasks-local-default"]

        trigger = run(clone, env, "trigger", "example_trigger_target", "--conf", '{"n": 3}', "--wait")
        assert trigger.returncode == 0, trigger.stdout + trigger.stderr
        assert trigger.stdout.split()[-1] == "success"

        # Four sleeping tasks on queue `default` (2 slots per node): the scaler DAG wants 2 nodes. They
        # sleep through two of its runs (one a minute): a 45 s load could fall between two runs,
        # started late on a busy host, and no run would see it.
        load = run(clone, env, "trigger", "airtasks_default_load", "--conf", f'{{"seconds": {LOAD_SECONDS}}}')
        assert load.returncode == 0, load.stdout + load.stderr
        asg = boto3.client("autoscaling", **_moto_client(state["client_env"]))
        deadline = time.monotonic() + 150
        desired = 0
        while desired < 2 and time.monotonic() < deadline:
            (group,) = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["airtasks-local-default"])[
                "AutoScalingGroups"
            ]
            desired = group["DesiredCapacity"]
            time.sleep(2)
        assert desired >= 2, (
            f"the scaler DAG did not grow airtasks-local-default\n{scaler_story(state['url'], token)}"
        )

        # The cluster page shows that scale-out with its reason: API and the page in the UI.
        view = clean_view(state["url"], token, view_reads)
        outs = [d for d in view["decisions"] if d["queue"] == "default" and d["action"] == "scale_out"]
        assert outs, view["decisions"]
        assert outs[0]["desired"] >= 2
        assert "load" in outs[0]["reason"], outs[0]
        cluster_page_shows_decision(
            state["url"],
            password,
            "default",
            "scale_out",
            outs[0]["reason"],
            ARTIFACTS / "make-up-cluster-page.png",
        )

        scale = run(clone, env, "scale", "--once", "--dry-run", "--json", "--from-terraform", "envs/local")
        assert scale.returncode == 0, scale.stdout + scale.stderr
        (queue,) = json.loads(scale.stdout)["queues"]
        assert (queue["queue"], queue["group"], queue["current"]) == (
            "default",
            "airtasks-local-default",
            desired,
        )
        assert queue["loads"] == {"airflow": queue["load"]}

        # The user's folder is a bundle of its own: its DAG runs, and one saved there after `make up`
        # shows up (next scan) and runs, with no restart.
        with httpx.Client(
            base_url=state["url"], headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as api:
            assert api.get("/api/v2/dags/my_hello").json()["bundle_name"] == "my-dags"
            mine = run(clone, env, "trigger", "my_hello", "--unpause", "--wait")
            assert mine.returncode == 0, mine.stdout + mine.stderr
            assert mine.stdout.split()[-1] == "success"
            (my_dags / "my_later.py").write_text(MY_DAG.format(dag_id="my_later"))
            deadline = time.monotonic() + 180
            while not dag_listed(api, "my_later") and time.monotonic() < deadline:
                time.sleep(5)
            later = run(clone, env, "trigger", "my_later", "--unpause", "--wait")
            assert later.returncode == 0, later.stdout + later.stderr
            assert later.stdout.split()[-1] == "success"

        logs = (run_dir / "airflow" / "standalone.log").read_text(errors="replace")
        for text, where in ((up.stdout + up.stderr, "make up's output"), (logs, "Airflow's log")):
            assert password not in text, f"the admin password is in {where}"
    finally:
        if view_reads:
            ARTIFACTS.mkdir(exist_ok=True)
            (ARTIFACTS / "make-up-view-reads.txt").write_text("\n".join(view_reads) + "\n")
        pids |= descendants(pids)  # with the load's running tasks
        try:
            down = dev_tool(clone, env, "down", timeout=300)
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"`make down` ran over {exc.timeout:.0f}s\n{_stuck_down(run_dir, exc)}")
    assert down.returncode == 0, down.stdout + down.stderr
    took = re.search(r"^Down \((.*)\)", down.stdout, re.M)
    assert took, down.stdout
    with (ARTIFACTS / "make-up-seconds.txt").open("a") as figures:
        figures.write(f"down {took[1]}\n")
    assert not run_dir.exists()
    assert not (tmp_path / "xdg" / "airtasks" / "local.json").exists()
    assert [p for p in pids if _ours(p)] == [], "make down left processes running"


def _stuck_down(run_dir: Path, exc: subprocess.TimeoutExpired) -> str:
    """Where a `dev down` that did not finish was: its output so far, the end of Terraform's log,
    and the requests moto refused (the logs are kept in tests/artifacts)."""
    out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout or ""
    lines = [f"its output: {out.strip() or '(none)'}"]
    logs = {"terraform": run_dir / "terraform" / "terraform.log", "moto": run_dir / "moto.log"}
    ARTIFACTS.mkdir(exist_ok=True)
    for name, log in logs.items():
        text = log.read_text(errors="replace") if log.exists() else ""
        (ARTIFACTS / f"make-down-{name}.log").write_text(text)
        if name == "terraform":
            lines += ["terraform.log ends:", *text.strip().splitlines()[-8:]]
        else:
            refused = [line for line in text.splitlines() if re.search(r'" [45]\d\d ', line)]
            lines += [f"moto refused {len(refused)} requests; the last:", *refused[-4:]]
    return "\n".join(lines)


def _ours(pid: int) -> bool:
    """Still running, and still one of ours (a pid may be reused)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return alive(pid) and (b"airflow" in cmdline or b"moto" in cmdline)


def _moto_client(client_env: dict[str, str]) -> dict[str, str]:
    return {
        "endpoint_url": client_env["AWS_ENDPOINT_URL"],
        "region_name": client_env["AWS_DEFAULT_REGION"],
        "aws_access_key_id": client_env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": client_env["AWS_SECRET_ACCESS_KEY"],
    }
