"""The `airtasks` command line: one module per command, registered in `airtasks.cli.main`."""

from airtasks.cli.main import cli, main

__all__ = ["cli", "main"]
