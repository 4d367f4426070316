"""The steps of a local deployment. Each step brings one thing up and can take it down again.

`up` may leave slow work running and return a `finish` callable: the later steps start
meanwhile, and the `up` command (devstack/cli.py) calls the finishers in step order at the end.
So Airflow boots while Terraform applies (the saved plan already gave the scaler config Airflow
needs).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from airtasks.cli import local_deployment as state
from airtasks.errors import AirtasksError
from airtasks.stack.bundles import local_bundles_env
from airtasks_dev.devstack import airflow, moto
from airtasks_dev.devstack.terraform import Terraform

SCALER_CONFIG = "scaler_config.json"
# A destroy against the local moto takes ~6 s (11 s on a loaded host): past this
# it is stuck, and `make down` goes on without it.
DESTROY_TIMEOUT = 120.0


@dataclass
class DevContext:
    """What the steps share: where the repo and the run state are, the env for clients, outputs."""

    repo: Path
    run_dir: Path
    airflow_port: int = 8080
    echo: Callable[[str], None] = print
    env: dict[str, str] = field(default_factory=dict)  # e.g. AWS_ENDPOINT_URL for later steps
    outputs: dict[str, Any] = field(default_factory=dict)  # e.g. scaler_config from Terraform
    record: dict[str, Any] = field(default_factory=dict)  # for the state file local.json (devstack.state)
    summary: list[str] = field(default_factory=list)  # what `up` prints at the end, step by step
    user_dags: Path | None = None  # `make up DAGS=...`: a folder loaded as a bundle beside dags/

    def rel(self, path: Path) -> str:
        """`path` relative to the repo when it is inside it (shorter to read)."""
        try:
            return str(path.relative_to(self.repo))
        except ValueError:
            return str(path)


Finish = Callable[[], None]


class Step(Protocol):
    name: str

    def up(self, ctx: DevContext) -> Finish | None: ...

    def down(self, ctx: DevContext) -> None: ...


class MotoStep:
    """A moto server on a free loopback port: the AWS API for everything after it."""

    name = "moto"

    def up(self, ctx: DevContext) -> None:
        info = moto.start(ctx.run_dir)
        ctx.env.update(moto.client_env(info.url))
        ctx.echo(f"moto: AWS API on {info.url} (pid {info.pid}, log {ctx.rel(Path(info.log))})")

    def down(self, ctx: DevContext) -> None:
        if moto.stop(ctx.run_dir):
            ctx.echo("moto: stopped")

    @staticmethod
    def attach(ctx: DevContext) -> bool:
        """Point ctx.env at a moto server a previous `up` left running; False if there is none."""
        info = moto.read(ctx.run_dir)
        if info is None or not moto.is_running(info):
            return False
        ctx.env.update(moto.client_env(info.url))
        return True


class TerraformStep:
    """`envs/local` applied against the moto server; state under .run/terraform/."""

    name = "terraform"
    root = "envs/local"

    def _tf(self, ctx: DevContext) -> Terraform:
        return Terraform(ctx.repo / self.root, ctx.run_dir / "terraform", ctx.env, ctx.repo / "terraform.rc")

    def _vars(self, ctx: DevContext) -> dict[str, Any]:
        return {"airflow_port": ctx.airflow_port}

    def up(self, ctx: DevContext) -> Finish:
        """init and plan, write the scaler config the plan knows, then apply in the background."""
        tf = self._tf(ctx)
        ctx.echo(f"terraform: applying {self.root} (log {ctx.rel(tf.log)}) ...")
        started = time.monotonic()
        tf.init()
        plan = tf.plan(self._vars(ctx))
        config_file = ctx.run_dir / SCALER_CONFIG
        self._write_config(config_file, tf.planned_outputs(plan))
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="terraform-apply")
        applying = pool.submit(tf.apply_plan, plan)
        pool.shutdown(wait=False)

        def finish() -> None:
            applying.result()
            ctx.outputs.update(tf.outputs())
            self._write_config(config_file, ctx.outputs)
            ctx.echo(f"terraform: applied {self.root} in {time.monotonic() - started:.0f}s")
            ctx.record.update(
                state.record(
                    ctx.repo / self.root,
                    tf.state,
                    tf.data_dir,
                    config_file if config_file.exists() else None,
                    {k: v for k, v in ctx.env.items() if k.startswith("AWS_")},
                )
            )
            ctx.summary.append(describe(ctx.outputs, ctx.env))

        return finish

    @staticmethod
    def _write_config(path: Path, outputs: dict[str, Any]) -> None:
        config = outputs.get("scaler_config")
        if config is not None:
            path.write_text(json.dumps(config, indent=2) + "\n")

    def down(self, ctx: DevContext) -> None:
        if not (ctx.run_dir / "terraform" / "terraform.tfstate").exists():
            return
        if not MotoStep.attach(ctx):
            ctx.echo("terraform: the AWS API is gone, and with it everything applied; dropping the state")
            return
        try:
            self._tf(ctx).destroy(self._vars(ctx), timeout=DESTROY_TIMEOUT)
        except AirtasksError as exc:
            # Not fatal: everything this root applied lives only in the moto server, which stops next.
            ctx.echo(f"terraform: {exc}\nterraform: going on; moto, which stops next, takes it all with it")
            return
        ctx.echo(f"terraform: destroyed {self.root}")


def describe(outputs: dict[str, Any], env: dict[str, str]) -> str:
    """What the local deployment built, for humans: groups, parameters, scaler config."""
    config = outputs.get("scaler_config") or {}
    lines = ["", f"Built envs/local (cluster {config.get('cluster_name')}, region {config.get('region')}):"]
    lines.append(
        f"  manager          {outputs.get('manager_instance_id')} ({outputs.get('manager_address')})"
    )
    for queue, group in sorted((config.get("queues") or {}).items()):
        lines.append(
            f"  queue {queue:<10} group {group['group']}: min {group['min_size']}, max {group['max_size']},"
            f" {group['slots_per_node']} slots per node"
        )
    for key, name in sorted((outputs.get("ssm_parameters") or {}).items()):
        lines.append(f"  parameter        {name} ({key})")
    lines += ["", f"scaler_config (also in .run/{SCALER_CONFIG}):", json.dumps(config, indent=2)]
    if env.get("AWS_ENDPOINT_URL"):
        lines += ["", "AWS API: source .run/env; .venv/bin/aws autoscaling describe-auto-scaling-groups"]
    return "\n".join(lines)


# The bundle name of the folder `make up DAGS=...` names.
USER_BUNDLE = "my-dags"


class AirflowStep:
    """Airflow standalone (SQLite, LocalExecutor) on the repo's dags/, the scaler DAG included:
    it sizes the envs/local groups on the moto server (env AIRTASKS_CONFIG, AWS_ENDPOINT_URL)."""

    name = "airflow"

    def up(self, ctx: DevContext) -> Finish | None:
        if airflow.running(ctx.run_dir) is not None:
            ctx.echo("airflow: already running (`make down` stops it)")
            ctx.summary.append(_access_summary(ctx, ctx.run_dir / "airflow"))
            return None
        env = dict(ctx.env)
        if (ctx.run_dir / SCALER_CONFIG).is_file():
            env["AIRTASKS_CONFIG"] = str(ctx.run_dir.resolve() / SCALER_CONFIG)
        if ctx.user_dags is not None:
            env.update(local_bundles_env({USER_BUNDLE: str(ctx.user_dags)}))
            ctx.echo(f"airflow: your DAGs from {ctx.user_dags} (bundle {USER_BUNDLE}) beside dags/")
        ctx.echo(f"airflow: starting standalone on 127.0.0.1:{ctx.airflow_port} ...")
        launched = airflow.launch_airflow(ctx.run_dir, ctx.airflow_port, env, dags_folder=ctx.repo / "dags")

        def finish() -> None:
            handle = launched.wait(state_extra=ctx.record)
            ctx.echo(f"airflow: healthy after {handle.seconds:.0f}s")
            ctx.summary.append(_access_summary(ctx, handle.home))

        return finish

    def down(self, ctx: DevContext) -> None:
        if airflow.stop_airflow(ctx.run_dir):
            ctx.echo("airflow: stopped (with its running tasks)")


def _access_summary(ctx: DevContext, home: Path) -> str:
    password_file = ctx.rel(home / airflow.PASSWORD_FILE)
    logs = [home / "standalone.log", ctx.run_dir / moto.LOG_FILE, ctx.run_dir / "terraform" / "terraform.log"]
    return "\n".join(
        [
            "",
            f"Airflow UI   http://127.0.0.1:{ctx.airflow_port}",
            f"  login      user {airflow.USERNAME}, password in {password_file}",
            f"             (mode 0600, never printed or logged; `cat {password_file}` shows it)",
            f"  logs       {', '.join(ctx.rel(p) for p in logs)}",
            f"             task logs under {ctx.rel(home / 'logs')}/",
            "  scaler     DAG airtasks_scaler (unpaused) runs every minute, a pass every interval_seconds,",
            f"             config .run/{SCALER_CONFIG}; each run's task log has its decisions",
        ]
    )


class SwarmStep:
    """`make up MODE=swarm`: the images built (airtasks_dev.images), a single-node Swarm (made if
    needed), secrets, the stack."""

    name = "swarm"
    created_marker = "swarm-created-by-make-up"

    def up(self, ctx: DevContext) -> None:
        from airtasks_dev.devstack import swarm  # noqa: PLC0415 - needs Docker, only in this mode

        client = swarm.docker_client()
        if swarm.ensure_swarm(client):
            (ctx.run_dir / self.created_marker).write_text("make down leaves this Swarm\n")
            ctx.echo("swarm: initialised a single-node Swarm (advertise 127.0.0.1)")
        deployment = swarm.up_swarm(ctx.run_dir, progress=ctx.echo)
        where = deployment.password_file or "the Swarm secret airtasks_admin_password"
        ctx.summary.append(
            "\n".join(
                [
                    "",
                    f"Airflow UI   {deployment.url}  (self-signed: trust {ctx.rel(deployment.ca_bundle)})",
                    f"  login      user {deployment.username}; password in {where} (never printed)",
                    f"  logs       docker service logs {deployment.stack}_<service>",
                ]
            )
        )

    def down(self, ctx: DevContext) -> None:
        from airtasks_dev.devstack import swarm  # noqa: PLC0415

        if not (ctx.run_dir / "swarm").exists() and not (ctx.run_dir / self.created_marker).exists():
            return
        swarm.down_swarm(ctx.run_dir, remove_secrets=True)
        ctx.echo(f"swarm: stack {swarm.STACK_NAME} removed, with its secrets")
        if (ctx.run_dir / self.created_marker).exists():
            swarm.leave_swarm()
            ctx.echo("swarm: left the Swarm `make up` created")


# Mode `local`, in order: the AWS API, envs/local applied against it, Airflow with the scaler DAG.
LOCAL_STEPS: list[type[Step]] = [MotoStep, TerraformStep, AirflowStep]
# Mode `swarm`: the real stack on the local Docker (Airflow with CeleryExecutor, RabbitMQ, ...).
SWARM_STEPS: list[type[Step]] = [SwarmStep]
