"""`airtasks status`: per queue the load from each source, the group's size, its nodes and
whether each is busy. Reads only."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from airtasks._cli_common import ConfigFailure, config_options, load_config
from airtasks.config import ScalerConfig
from airtasks.errors import ConfigError

if TYPE_CHECKING:
    from airtasks.scaling import Scaler


def build_scaler(config: ScalerConfig) -> Scaler:
    from airtasks.scaling import build_scaler as build  # noqa: PLC0415

    return build(config)


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@config_options
@click.pass_context
def status(ctx: click.Context, as_json: bool, config_path: str | None, from_terraform: str | None) -> None:
    """Show each queue's load, group size and nodes (busy or idle)."""
    resolved = load_config(config_path, from_terraform)
    try:
        scaler = build_scaler(resolved.config)
    except ConfigError as exc:
        raise ConfigFailure(str(exc)) from None
    try:
        reports = scaler.status()
    finally:
        scaler.close()
    if as_json:
        out = []
        for r in reports:
            item = r.to_json()
            for key in ("action", "removed", "cordoned", "uncordoned", "desired"):
                item.pop(key, None)
            item["nodes"] = [
                {
                    "id": n.id,
                    "running": n.running,
                    "busy": None if n.running is None else n.running > 0,
                    "cordoned": n.cordoned,
                    "state": n.state,
                    "launched_at": n.launched_at,
                }
                for n in r.nodes
            ]
            out.append(item)
        click.echo(json.dumps({"queues": out}, sort_keys=True))
    else:
        for r in reports:
            loads = " ".join(f"{k}={'?' if v is None else v}" for k, v in r.loads.items())
            size = "?" if r.current is None else r.current
            want = "?" if r.want is None else r.want
            click.echo(f"{r.queue}  group={r.group} size={size} want={want} load: {loads or '-'}")
            if r.reason:
                click.echo(f"  error: {r.reason}")
            for n in r.nodes:
                busy = "unknown" if n.running is None else (f"busy ({n.running})" if n.running else "idle")
                extra = " cordoned" if n.cordoned else ""
                click.echo(f"  {n.id}  {n.state or '-'}  {busy}{extra}")
    ctx.exit(2 if any(r.failed for r in reports) else 0)
