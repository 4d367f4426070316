"""Group backends behind one protocol (`base.GroupBackend`): aws, gcp, swarm (single host)."""

from __future__ import annotations

from collections.abc import Callable

from airtasks.backends.base import (
    GroupBackend,
    GroupRead,
    Instance,
    read_group,
    read_groups,
    remove_instances,
    warm,
)
from airtasks.config import ScalerConfig


def _aws(config: ScalerConfig) -> GroupBackend:
    from airtasks.backends.aws import AwsBackend  # noqa: PLC0415 - only the chosen backend's SDK loads

    assert config.region is not None
    return AwsBackend(config.region)


def _gcp(config: ScalerConfig) -> GroupBackend:
    from airtasks.backends.gcp import GcpBackend  # noqa: PLC0415

    assert config.region is not None
    assert config.project is not None
    return GcpBackend(config.project, config.region)


def _swarm(config: ScalerConfig) -> GroupBackend:
    from airtasks.backends.swarm import SwarmBackend  # noqa: PLC0415

    url = config.swarm.docker_url if config.swarm else "unix:///var/run/docker.sock"
    return SwarmBackend(url)


BACKENDS: dict[str, Callable[[ScalerConfig], GroupBackend]] = {"aws": _aws, "gcp": _gcp, "swarm": _swarm}


def make_backend(config: ScalerConfig) -> GroupBackend:
    """The configured backend; nothing is contacted until its first call."""
    return BACKENDS[config.backend](config)


__all__ = [
    "BACKENDS",
    "GroupBackend",
    "GroupRead",
    "Instance",
    "make_backend",
    "read_group",
    "read_groups",
    "remove_instances",
    "warm",
]
