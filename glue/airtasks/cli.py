"""The `airtasks` command line: parse, resolve configuration, call the core, print.

Commands live in their own modules and register here; this file stays thin.
"""

from __future__ import annotations

import sys

import click

from airtasks import __version__
from airtasks.devstack.cli import dev
from airtasks.errors import AirtasksError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="airtasks")
def cli() -> None:
    """Air-Tasks: size the worker groups of an Airflow cluster from its queues."""


cli.add_command(dev)


def main() -> None:
    """Console-script entry point: package errors become one line on stderr and exit 1."""
    try:
        cli.main(standalone_mode=False)
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
