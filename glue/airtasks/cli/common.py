"""What the scaler's commands share: config options, logging to stderr, one-line errors."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from airtasks.cli import local_deployment
from airtasks.config import ResolvedConfig, resolve
from airtasks.errors import ConfigError

F = TypeVar("F", bound=Callable[..., Any])


class ConfigFailure(click.ClickException):
    """A bad config: the message (one line per problem) on stderr, exit 1, no traceback."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def config_options(func: F) -> F:
    @click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False),
        default=None,
        help="Scaler config file (JSON or YAML). Default: env AIRTASKS_CONFIG (a path or inline JSON).",
    )
    @click.option(
        "--from-terraform",
        "from_terraform",
        type=click.Path(file_okay=False),
        default=None,
        help="A Terraform env directory: read `terraform output -json scaler_config` there.",
    )
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def load_config(config_path: str | None, from_terraform: str | None) -> ResolvedConfig:
    """Resolve the config; for one that `make up` deployed, fill in the client env from its state file.

    That env (the local AWS endpoint with dummy keys, the local Airflow's user and password file)
    only fills gaps in os.environ, and only for a config that came from that deployment.
    """
    deployment = (
        local_deployment.for_terraform_dir(from_terraform)
        if from_terraform
        else local_deployment.for_config_file(config_path)
        if config_path
        else None
    )
    try:
        resolved = resolve(
            config_path=config_path,
            from_terraform=from_terraform,
            terraform_state=deployment.terraform_state if deployment else None,
            terraform_data_dir=deployment.terraform_data_dir if deployment else None,
        )
    except ConfigError as exc:
        raise ConfigFailure(str(exc)) from None
    if deployment is not None:
        deployment.apply_env()
    return resolved


def setup_logging(level: int = logging.INFO) -> None:
    """`airtasks.*` log lines to stderr, message only (stdout stays clean for --json)."""
    logger = logging.getLogger("airtasks")
    logger.setLevel(level)
    for handler in list(logger.handlers):
        if getattr(handler, "_airtasks_cli", False):
            logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler._airtasks_cli = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.propagate = False
