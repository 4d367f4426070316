"""The steps of a local deployment. Each step brings one thing up and can take it down again."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from airtasks.devstack import moto
from airtasks.devstack.terraform import Terraform


@dataclass
class DevContext:
    """What the steps share: where the repo and the run state are, the env for clients, outputs."""

    repo: Path
    run_dir: Path
    airflow_port: int = 8080
    echo: Callable[[str], None] = print
    env: dict[str, str] = field(default_factory=dict)  # e.g. AWS_ENDPOINT_URL for later steps
    outputs: dict[str, Any] = field(default_factory=dict)  # e.g. scaler_config from Terraform


class Step(Protocol):
    name: str

    def up(self, ctx: DevContext) -> None: ...

    def down(self, ctx: DevContext) -> None: ...


class MotoStep:
    """A moto server on a free loopback port: the AWS API for everything after it."""

    name = "moto"

    def up(self, ctx: DevContext) -> None:
        info = moto.start(ctx.run_dir)
        ctx.env.update(moto.client_env(info.url))
        ctx.echo(f"moto: AWS API on {info.url} (pid {info.pid}, log {_rel(ctx, Path(info.log))})")

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

    def up(self, ctx: DevContext) -> None:
        tf = self._tf(ctx)
        ctx.echo(f"terraform: applying {self.root} (log {_rel(ctx, tf.log)}) ...")
        tf.init()
        tf.apply(self._vars(ctx))
        ctx.outputs.update(tf.outputs())
        config = ctx.outputs.get("scaler_config")
        if config is not None:
            (ctx.run_dir / "scaler_config.json").write_text(json.dumps(config, indent=2) + "\n")
        ctx.echo(describe(ctx.outputs, ctx.env))

    def down(self, ctx: DevContext) -> None:
        if not (ctx.run_dir / "terraform" / "terraform.tfstate").exists():
            return
        if not MotoStep.attach(ctx):
            ctx.echo("terraform: the AWS API is gone, and with it everything applied; dropping the state")
            return
        self._tf(ctx).destroy(self._vars(ctx))
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
    lines += ["", "scaler_config (also in .run/scaler_config.json):", json.dumps(config, indent=2)]
    if env.get("AWS_ENDPOINT_URL"):
        lines += ["", "Talk to it: source .run/env, then e.g. aws autoscaling describe-auto-scaling-groups"]
    return "\n".join(lines)


def _rel(ctx: DevContext, path: Path) -> str:
    try:
        return str(path.relative_to(ctx.repo))
    except ValueError:
        return str(path)


# Mode `local`, in order. Later: Airflow standalone + the scaler DAG go after TerraformStep.
LOCAL_STEPS: list[type[Step]] = [MotoStep, TerraformStep]  # type: ignore[list-item]
