"""`airtasks simulate`: run scaling policies on a workload trace, or generate a trace."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import click

from airtasks.errors import AirtasksError
from airtasks.simulate.engine import Interruptions
from airtasks.simulate.policies import POLICIES
from airtasks.simulate.report import check_policies, format_table, simulate
from airtasks.simulate.settings import Settings, load_settings
from airtasks.simulate.trace import KINDS, generate, read_trace, write_trace

NOTICE_SECONDS = {"aws": 120.0, "gcp": 30.0}
"""How long before an interrupted node goes: AWS's spot instance-action, GCP's instance/preempted."""


@click.command("simulate")
@click.option("--trace", "trace_path", type=click.Path(path_type=Path), help="CSV: submit_s,queue,duration_s")
@click.option(
    "--policy",
    "policies",
    multiple=True,
    metavar="NAME",
    help=f"repeatable, or comma-separated: {', '.join(POLICIES)} (default: all)",
)
@click.option(
    "--boot-seconds", type=float, default=60.0, show_default=True, help="launch -> node takes tasks"
)
@click.option(
    "--config", "config_path", type=click.Path(path_type=Path), help="scaler_config file (JSON/YAML)"
)
@click.option("--json", "as_json", is_flag=True, help="print the metrics per policy as JSON")
@click.option(
    "--plot", "plot_path", type=click.Path(path_type=Path), help="write queue/nodes over time to a PNG"
)
@click.option("--generate", "kind", metavar="KIND", help=f"write a trace instead: {', '.join(KINDS)}")
@click.option(
    "--interruptions",
    "per_node_hour",
    type=float,
    default=0.0,
    help="spot interruption notices per node-hour (0: none); shows tasks lost, retries used, extra wait",
)
@click.option(
    "--cloud",
    type=click.Choice(["aws", "gcp"]),
    default="aws",
    show_default=True,
    help="notice length with --interruptions: aws 120 s, gcp 30 s",
)
@click.option(
    "--seed", type=int, default=1, show_default=True, help="seed of --generate and of --interruptions"
)
@click.option(
    "--no-prescale",
    is_flag=True,
    help="do not raise groups before scheduled DAG runs (traces with `dag` and `scheduled_s`)",
)
@click.option(
    "--out", "out_path", type=click.Path(path_type=Path), help="where --generate writes (default: stdout)"
)
def simulate_command(
    *,
    trace_path: Path | None,
    policies: tuple[str, ...],
    boot_seconds: float,
    config_path: Path | None,
    as_json: bool,
    plot_path: Path | None,
    kind: str | None,
    per_node_hour: float,
    cloud: str,
    seed: int,
    no_prescale: bool,
    out_path: Path | None,
) -> None:
    """Simulate scaling policies on a trace: node-seconds paid and how long tasks wait.

    \b
      airtasks simulate --trace bench/traces/bursty.csv [--policy airtasks --policy keda] [--json]
      airtasks simulate --trace bench/traces/bursty.csv --interruptions 0.5 --cloud gcp
      airtasks simulate --trace bench/traces/scheduled.csv --no-prescale
      airtasks simulate --generate bursty --seed 1 --out bursty.csv
    """
    try:
        if kind is not None:
            if trace_path is not None:
                raise AirtasksError("--generate and --trace exclude each other; use one of them")
            _generate(kind, seed, out_path)
            return
        if trace_path is None:
            raise AirtasksError("nothing to simulate; pass --trace PATH (or --generate KIND to make a trace)")
        names = check_policies([p.strip() for raw in policies for p in raw.split(",") if p.strip()])
        settings = load_settings(config_path) if config_path else Settings()
        if no_prescale:
            settings = dataclasses.replace(settings, prescale=False)
        tasks = read_trace(trace_path)
        interruptions = (
            Interruptions(per_node_hour, NOTICE_SECONDS[cloud], seed) if per_node_hour != 0 else None
        )
        report = simulate(tasks, names, settings, boot_seconds, interruptions)
    except AirtasksError as exc:
        raise click.ClickException(str(exc)) from None
    if plot_path is not None:
        try:
            from airtasks.simulate.plot import plot  # noqa: PLC0415 - matplotlib only when plotting
        except ImportError:
            raise click.ClickException("--plot needs matplotlib: pip install 'airtasks[plot]'") from None
        plot(report, plot_path, title=trace_path.stem)
    if as_json:
        doc = {
            "trace": str(trace_path),
            "settings": {
                "interval_seconds": settings.interval_seconds,
                "stabilization_seconds": settings.stabilization_seconds,
                "idle_seconds": settings.idle_seconds,
                "prescale": settings.prescale,
            },
            **report.to_json(),
        }
        click.echo(json.dumps(doc, indent=2))
    else:
        click.echo(
            f"{trace_path}: {report.tasks} tasks, boot {boot_seconds:g} s, airtasks every "
            f"{settings.interval_seconds:g} s (window {settings.stabilization_seconds:g} s, "
            f"idle {settings.idle_seconds:g} s, pre-scaling {'on' if settings.prescale else 'off'})"
            + (
                f"; {per_node_hour:g} interruption notice(s) per node-hour, {NOTICE_SECONDS[cloud]:g} s "
                f"before the node goes ({cloud}, seed {seed})"
                if interruptions
                else ""
            )
        )
        click.echo(format_table(report))
    if plot_path is not None:
        click.echo(f"plot: {plot_path}", err=as_json)


def _generate(kind: str, seed: int, out_path: Path | None) -> None:
    tasks = generate(kind, seed)
    if out_path is None:
        write_trace(tasks, sys.stdout)
        return
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with out_path.open("w", encoding="utf-8") as fh:
        write_trace(tasks, fh)
    click.echo(f"wrote {len(tasks)} tasks to {out_path}", err=True)


__all__ = ["simulate_command"]
