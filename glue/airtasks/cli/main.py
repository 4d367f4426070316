"""The `airtasks` command line: parse, resolve configuration, call the core, print.

Commands live in their own modules and register here; this file stays thin.
"""

from __future__ import annotations

import sys

import click

from airtasks import __version__
from airtasks.errors import AirtasksError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="airtasks")
def cli() -> None:
    """Air-Tasks: size the worker groups of an Airflow cluster from its queues."""


def main() -> None:
    """Console-script entry point: package errors become one line on stderr and exit 1."""
    try:
        # Without standalone mode click returns (not raises) the code of `click.exceptions.Exit`.
        code = cli.main(standalone_mode=False)
        if isinstance(code, int) and not isinstance(code, bool) and code:
            sys.exit(code)
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


# Each command lives in its own module; registering here keeps this file the one index of them.
from airtasks.cli.config_cmd import config as _config_cmd  # noqa: E402
from airtasks.cli.db_cmd import db_command  # noqa: E402
from airtasks.cli.scale_cmd import scale as _scale_cmd  # noqa: E402
from airtasks.cli.status_cmd import status as _status_cmd  # noqa: E402
from airtasks.cli.trigger import trigger_command  # noqa: E402
from airtasks.simulate.cli import simulate_command  # noqa: E402
from airtasks.stack.render import stack_command  # noqa: E402
from airtasks.stack.secrets import secrets_command  # noqa: E402

for _command in (
    _scale_cmd,
    _status_cmd,
    _config_cmd,
    trigger_command,
    stack_command,
    secrets_command,
    db_command,
    simulate_command,
):
    cli.add_command(_command)
