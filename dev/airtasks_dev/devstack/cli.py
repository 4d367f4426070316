"""`python -m airtasks_dev up|down` (`make up` / `make down`): bring the local deployment up and
take it down again."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import click

from airtasks.errors import AirtasksError
from airtasks_dev.devstack.cluster import ClusterStep
from airtasks_dev.devstack.steps import LOCAL_STEPS, SWARM_STEPS, DevContext, Step

RUN_DIR = ".run"
STATE_FILE = "state.json"
MODES: dict[str, list[type[Step]]] = {"local": LOCAL_STEPS, "swarm": SWARM_STEPS, "cluster": [ClusterStep]}


def find_repo(start: Path | None = None) -> Path:
    """The Air-Tasks checkout: the first parent of `start` (default: cwd) with envs/local."""
    candidates = [start or Path.cwd(), Path(__file__).resolve()]
    for candidate in candidates:
        for path in [candidate, *candidate.parents]:
            if (path / "envs" / "local" / "main.tf").is_file():
                return path
    raise AirtasksError(
        "not inside an Air-Tasks checkout (no envs/local/main.tf above here); cd into the repo"
    )


def _load_state(run_dir: Path) -> dict[str, object]:
    path = run_dir / STATE_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def _save_state(run_dir: Path, state: dict[str, object]) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")


def _write_env(ctx: DevContext) -> None:
    lines = [f"export {k}={v}" for k, v in sorted(ctx.env.items())]
    (ctx.run_dir / "env").write_text(
        "# source this file to talk to the local deployment\n" + "\n".join(lines) + "\n"
    )


@click.group("airtasks_dev", context_settings={"help_option_names": ["-h", "--help"]})
def dev() -> None:
    """The local deployment (`make up` / `make down`)."""


def main(args: list[str] | None = None) -> None:
    """`python -m airtasks_dev`: errors become one line on stderr and exit 1, as in `airtasks`."""
    try:
        dev.main(args, prog_name="python -m airtasks_dev", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except AirtasksError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


@dev.command("up")
@click.option(
    "--mode",
    type=click.Choice(list(MODES)),
    default="local",
    show_default=True,
    help="local: a local AWS API, envs/local applied, Airflow standalone with the scaler DAG. "
    "swarm: the real stack on the local Docker Swarm. cluster: the cluster in a box (root): every "
    "instance boots as a Swarm node, the manager runs the stack and the scaler.",
)
@click.option("--airflow-port", type=int, default=8080, show_default=True, help="Port of the local Airflow.")
@click.option(
    "--dags",
    type=click.Path(exists=True, file_okay=False, resolve_path=True, path_type=Path),
    default=None,
    help="local mode: a folder of your DAGs, loaded as a bundle beside the repo's dags/ (make up DAGS=...).",
)
def up(mode: str, airflow_port: int, dags: Path | None) -> None:
    """Start the local deployment and print what it built, the UI address and the login."""
    started = time.monotonic()
    if dags is not None and mode != "local":
        raise AirtasksError(
            f"DAGS= works in local mode only (got MODE={mode}); run make up MODE=local DAGS={dags}"
        )
    repo = find_repo()
    run_dir = repo / RUN_DIR
    state = _load_state(run_dir)
    if state.get("mode") not in (None, mode):
        raise AirtasksError(f"a {state['mode']} deployment is up; run `make down` first")
    ctx = DevContext(repo=repo, run_dir=run_dir, airflow_port=airflow_port, echo=click.echo, user_dags=dags)
    done: list[str] = []
    _save_state(run_dir, {"mode": mode, "airflow_port": airflow_port, "steps": done})
    finishers = []
    try:
        for step_type in MODES[mode]:
            step: Step = step_type()
            finish = step.up(ctx)  # may leave work running (see steps.py); finished below, in order
            if finish is not None:
                finishers.append(finish)
            done.append(step.name)
            _save_state(run_dir, {"mode": mode, "airflow_port": airflow_port, "steps": done})
            _write_env(ctx)
        for finish in finishers:
            finish()
    except AirtasksError as exc:
        raise AirtasksError(f"{exc}\n`make up` stopped half-way; `make down` cleans up") from None
    for block in ctx.summary:
        click.echo(block)
    click.echo(
        f"\nUp in {time.monotonic() - started:.0f}s ({mode} mode: {', '.join(done)}). "
        "Take it down with `make down`."
    )


@dev.command("down")
def down() -> None:
    """Undo what `up` did, in reverse order, and remove the run state (.run/)."""
    repo = find_repo()
    run_dir = repo / RUN_DIR
    state = _load_state(run_dir)
    if not run_dir.exists():
        click.echo("nothing is up")
        return
    mode = str(state.get("mode", "local"))
    ctx = DevContext(
        repo=repo, run_dir=run_dir, airflow_port=int(str(state.get("airflow_port", 8080))), echo=click.echo
    )
    steps: list[Step] = [t() for t in MODES.get(mode, LOCAL_STEPS)]
    errors: list[str] = []
    took: list[str] = []
    for step in reversed(steps):
        started = time.monotonic()
        try:
            step.down(ctx)
        except AirtasksError as exc:
            errors.append(f"{step.name}: {exc}")
        took.append(f"{step.name} {time.monotonic() - started:.0f}s")
    if errors:
        raise AirtasksError("some steps did not come down cleanly (.run/ kept):\n" + "\n".join(errors))
    shutil.rmtree(run_dir)
    click.echo(f"Down ({', '.join(took)}): everything `make up` started is stopped, and .run/ is removed.")
