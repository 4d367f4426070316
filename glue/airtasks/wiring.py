"""The one place that builds the scaler's clients from a config.

A scaling pass (`airtasks scale`, the scaler DAG) and the operations view (`airtasks status`, the
Cluster page) talk to the same things: the Airflow REST API, RabbitMQ's management API, the
group backend, Celery's worker control, the Swarm, and the stores of the scaler's memory and
history. `build_clients` makes them all, in two modes:

- for a pass (`read_only=False`): a missing or half-set credential is a ConfigError raised before
  any call is made, so nothing acts on a half-built cluster view;
- for the view (`read_only=True`): no worker control (the view never cordons), Airflow may be read
  with the viewer's own token, and a part that cannot be built is left out and named in
  `problems`, so the page shows what it can instead of failing.
"""

from __future__ import annotations

import importlib
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3

from airtasks.backends import GroupBackend, Instance, make_backend
from airtasks.backup.settings import BackupSettings
from airtasks.backup.store import BackupStore, GcsStore, S3Store
from airtasks.config import Credentials, ScalerConfig, broker_url, source_credentials
from airtasks.control.celery import CeleryControl, WorkerControl
from airtasks.control.docker_swarm import SwarmManager
from airtasks.errors import AirtasksError, BackendError, ConfigError
from airtasks.sources.airflow import AirflowSource
from airtasks.sources.rabbitmq import RabbitMQSource
from airtasks.state.history import HistoryStore
from airtasks.state.memory import MemoryStore


@dataclass
class Clients:
    """Everything a pass or the view reads and acts through. Tests build one from fakes."""

    backend: GroupBackend
    airflow: AirflowSource | None = None
    rabbitmq: RabbitMQSource | None = None
    control: WorkerControl | None = None
    swarm: SwarmManager | None = None
    memory: MemoryStore = field(default_factory=MemoryStore.in_process)
    history: HistoryStore | None = None
    problems: tuple[str, ...] = ()
    """What could not be built (read-only mode only)."""
    clock: Callable[[], float] = time.time
    """What time it is (tests move it by hand)."""

    def close(self) -> None:
        for part in (self.airflow, self.rabbitmq, self.control):
            closer = getattr(part, "close", None)
            if callable(closer):
                closer()


class UnavailableBackend:
    """A backend that could not be built: every call fails with the reason (its queues show failed)."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason

    def size(self, group: str) -> int:
        raise BackendError(f"{self.name}: {self.reason}")

    def instances(self, group: str) -> list[Instance]:
        raise BackendError(f"{self.name}: {self.reason}")

    def set_size(self, group: str, size: int) -> None:
        raise BackendError(f"{self.name}: {self.reason}")

    def remove(self, group: str, instance_id: str) -> None:
        raise BackendError(f"{self.name}: {self.reason}")


def _airflow(
    config: ScalerConfig,
    env: Mapping[str, str] | None,
    read_only: bool,
    token: str | None,
    problems: list[str],
) -> AirflowSource | None:
    src = config.sources.airflow
    if src is None:
        return None
    if token is not None:
        return AirflowSource(src, Credentials(None, None), token=token)
    try:
        creds = source_credentials(src, env)
    except ConfigError as exc:
        if not read_only:
            raise
        problems.append(str(exc))
        return None
    if (creds.username is None) != (creds.password is None):
        message = (
            f"sources.airflow: only one of username/password is set; set both {src.username_env} and "
            f"{src.password_env} (or their _FILE variants), or neither for an all-admins Airflow"
        )
        if not read_only:
            raise ConfigError(message)
        problems.append(message)
        return None
    return AirflowSource(src, creds)


def _rabbitmq(
    config: ScalerConfig, env: Mapping[str, str] | None, read_only: bool, problems: list[str]
) -> RabbitMQSource | None:
    src = config.sources.rabbitmq
    if src is None:
        return None
    try:
        creds = source_credentials(src, env)
    except ConfigError as exc:
        if not read_only:
            raise
        problems.append(str(exc))
        return None
    if creds.username is None or creds.password is None:
        if not read_only:
            raise ConfigError(
                f"sources.rabbitmq: no credentials; set {src.username_env} and {src.password_env} "
                "(or their _FILE variants)"
            )
        problems.append(
            f"sources.rabbitmq: no credentials here; set {src.username_env} and {src.password_env} "
            "(or their _FILE variants) in this process's environment"
        )
        return None
    return RabbitMQSource(src, creds)


_SHARED_BACKENDS: dict[str, GroupBackend] = {}
_SHARED_LOCK = threading.Lock()


def shared_backend(config: ScalerConfig) -> GroupBackend:
    """One backend per process for the config's cloud and region, built on first use.

    Building a backend builds its SDK clients, and boto3 reads and parses its service models each
    time (most of a second of CPU, holding the GIL). The Cluster page asks on every request, in
    the API server's process that also serves the page's own REST calls, so it reuses one; the
    SDK clients are safe to share between threads.
    """
    swarm_url = config.swarm.docker_url if config.swarm is not None else None
    key = json.dumps([config.backend, config.region, config.project, swarm_url])
    with _SHARED_LOCK:
        backend = _SHARED_BACKENDS.get(key)
        if backend is None:
            backend = _SHARED_BACKENDS[key] = make_backend(config)
        return backend


def build_clients(
    config: ScalerConfig,
    env: Mapping[str, str] | None = None,
    *,
    read_only: bool = False,
    airflow_token: str | None = None,
    share_backend: bool = False,
) -> Clients:
    """Clients from the config (see the module docstring for the two modes). `share_backend`:
    take the process's backend for this config (`shared_backend`) instead of a new one."""
    problems: list[str] = []
    airflow = _airflow(config, env, read_only, airflow_token, problems)
    rabbitmq = _rabbitmq(config, env, read_only, problems)

    control: WorkerControl | None = None
    url = broker_url(config, env)
    if not read_only and url is not None and config.celery is not None:
        control = CeleryControl(
            url, worker_name=config.celery.worker_name, timeout=config.celery.timeout_seconds
        )

    backend: Any
    try:
        backend = shared_backend(config) if share_backend else make_backend(config)
    except (ImportError, AirtasksError) as exc:
        if not read_only:
            raise
        backend = UnavailableBackend(config.backend, f"cannot load the backend here ({exc})")
        problems.append(f"backend {config.backend}: {exc}")

    mem = config.memory_config
    memory = (
        MemoryStore.airflow(airflow, mem.variable)
        if mem.store == "airflow" and airflow is not None
        else MemoryStore.file(mem.path)
    )
    hist = config.history_config
    history: HistoryStore | None = None
    if hist.store == "airflow" and airflow is not None:
        history = HistoryStore.airflow(airflow, hist.variable)
    elif hist.store != "none":
        history = HistoryStore.file(hist.path)

    return Clients(
        backend=backend,
        airflow=airflow,
        rabbitmq=rabbitmq,
        control=control,
        swarm=SwarmManager(config.swarm.docker_url) if config.swarm is not None else None,
        memory=memory,
        history=history,
        problems=tuple(problems),
    )


__all__ = ["Clients", "UnavailableBackend", "build_clients", "shared_backend"]


def backup_store(settings: BackupSettings) -> BackupStore:
    """The bucket of the metadata database's backups, with this machine's identity (a manager's
    role or service account; AWS_ENDPOINT_URL points boto3 at moto in the local cloud)."""
    if settings.scheme == "gs":
        # Only GCP managers need it: it comes with the image's google provider (and the gcp extra).
        storage = importlib.import_module("google.cloud.storage")
        return GcsStore(storage.Client(), settings.bucket, settings.prefix)
    return S3Store(boto3.client("s3", region_name=settings.region), settings.bucket, settings.prefix)
