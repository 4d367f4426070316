"""`airtasks config`: the resolved scaler config, each value with where it came from.
Credentials show only as set / not set, with their origin."""

from __future__ import annotations

import json

import click

from airtasks.cli.common import config_options, load_config


@click.command("config")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: {key: {value, origin}}.")
@config_options
def config(as_json: bool, config_path: str | None, from_terraform: str | None) -> None:
    """Validate the scaler config and print every value with its origin."""
    resolved = load_config(config_path, from_terraform)
    rows = resolved.describe()
    if as_json:
        click.echo(json.dumps({k: {"value": v, "origin": o} for k, v, o in rows}, sort_keys=True))
        return
    width = max(len(k) for k, _, _ in rows)
    for key, value, origin in rows:
        shown = json.dumps(value) if not isinstance(value, str) else value
        click.echo(f"{key:<{width}}  {shown}  ({origin})")
