"""`airtasks status`: per queue the load from each source, the group's size, its nodes (booting,
idle, busy with which task instances, draining, down) and the last decisions. Reads only.

The same view model as the cluster page in the Airflow UI (`airtasks.ops.view.build_view`):
`--json` prints exactly what the page's API (`/airtasks/api/view`) returns.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from airtasks.cli.common import ConfigFailure, config_options, load_config
from airtasks.config import ScalerConfig
from airtasks.errors import ConfigError

if TYPE_CHECKING:
    from airtasks.ops.view import ClusterView, NodeView
    from airtasks.wiring import Clients

DECISIONS_PRINTED = 5


def build_clients(config: ScalerConfig) -> Clients:
    """The same clients a pass uses (imported here, so `airtasks --help` stays fast)."""
    from airtasks.wiring import build_clients as build  # noqa: PLC0415

    return build(config)


def _age(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def _node_line(n: NodeView) -> str:
    busy = "unknown" if n.running is None else (f"busy ({n.running})" if n.running else "idle")
    extra = " cordoned" if n.cordoned else ""
    tasks = f"  {', '.join(t.label for t in n.tasks)}" if n.tasks else ""
    return f"  {n.id}  {n.lifecycle or '-'}  {busy}{extra}  [{n.status}]{tasks}"


def print_text(view: ClusterView) -> None:
    for q in view.queues:
        loads = " ".join(f"{k}={'?' if v is None else v}" for k, v in q.loads.items())
        size = "?" if q.current is None else q.current
        want = "?" if q.want is None else q.want
        click.echo(
            f"{q.queue}  group={q.group} size={size} (min {q.min_size}, max {q.max_size}) want={want} "
            f"load: {loads or '-'}"
        )
        if q.error:
            click.echo(f"  error: {q.error}")
        for n in q.nodes:
            click.echo(_node_line(n))
    if view.decisions:
        click.echo("last decisions:")
        for e in view.decisions[:DECISIONS_PRINTED]:
            ago = _age(max(view.generated_at - e.t, 0.0))
            click.echo(f"  {ago} ago  {e.queue}  {e.action}  {e.current}->{e.desired}  {e.reason}")
    for problem in view.problems:
        click.echo(f"problem: {problem}", err=True)


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout (the cluster page's view).")
@config_options
@click.pass_context
def status(ctx: click.Context, as_json: bool, config_path: str | None, from_terraform: str | None) -> None:
    """Show each queue's load, group size, nodes (booting/idle/busy/draining/down), last decisions."""
    from airtasks.ops.view import build_view  # noqa: PLC0415

    resolved = load_config(config_path, from_terraform)
    try:
        clients = build_clients(resolved.config)
    except ConfigError as exc:
        raise ConfigFailure(str(exc)) from None
    try:
        view = build_view(resolved.config, clients)
    finally:
        clients.close()
    if as_json:
        click.echo(json.dumps(view.to_json(), sort_keys=True))
    else:
        print_text(view)
    ctx.exit(2 if view.failed else 0)
