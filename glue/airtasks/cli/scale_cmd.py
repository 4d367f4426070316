"""`airtasks scale`: one pass (`--once`) or a pass every interval (`--watch`).

Exit 0 when every queue was decided, 2 when any queue held because a read failed, 1 on a bad
config (before any cloud call).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from airtasks.cli.common import ConfigFailure, config_options, load_config, setup_logging
from airtasks.config import ScalerConfig
from airtasks.errors import ConfigError

if TYPE_CHECKING:
    from airtasks.scaling.report import PassReport
    from airtasks.scaling.scaler import Scaler


def build_scaler(config: ScalerConfig) -> Scaler:
    """Clients for a pass (imported here, so `airtasks --help` stays fast)."""
    from airtasks.scaling.scaler import build_scaler as build  # noqa: PLC0415

    return build(config)


@click.command("scale")
@click.option("--once", "mode", flag_value="once", default=True, help="One pass, then exit (the default).")
@click.option("--watch", "mode", flag_value="watch", help="A pass every --interval seconds until stopped.")
@click.option(
    "--interval", type=click.FloatRange(min=1), default=None, help="Seconds between passes (--watch)."
)
@click.option("--dry-run", is_flag=True, help="Read and decide, change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print each pass's report as JSON on stdout.")
@config_options
@click.pass_context
def scale(  # noqa: PLR0917 - click passes options positionally
    ctx: click.Context,
    mode: str,
    interval: float | None,
    dry_run: bool,
    as_json: bool,
    config_path: str | None,
    from_terraform: str | None,
) -> None:
    """Size every queue's worker group from its load; remove only idle nodes."""
    resolved = load_config(config_path, from_terraform)
    try:
        scaler = build_scaler(resolved.config)
    except ConfigError as exc:
        raise ConfigFailure(str(exc)) from None
    setup_logging()

    def show(report: PassReport) -> None:
        if as_json:
            click.echo(json.dumps(report.to_json(), sort_keys=True))
        elif report.swarm.removed_nodes or report.swarm.error:
            click.echo(
                f"swarm: removed {report.swarm.removed_nodes or 'none'} {report.swarm.error or ''}".rstrip()
            )

    from airtasks.scaling.loop import watch  # noqa: PLC0415

    try:
        if mode == "watch":
            try:
                watch(scaler, interval or resolved.config.interval_seconds, dry_run=dry_run, on_report=show)
            except KeyboardInterrupt:
                ctx.exit(0)
            return
        report = scaler.run_pass(dry_run=dry_run)
        show(report)
    finally:
        scaler.close()
    ctx.exit(report.exit_code)
