"""The scaler's configuration: one validated model, resolved from a file, the environment or Terraform.

Order (highest first): `--config PATH` / `--from-terraform DIR` on the command line, then env
`AIRTASKS_CONFIG` (a path, or inline JSON); after that, single-value overrides from the
environment (`AIRTASKS_AIRFLOW_URL`, `AIRTASKS_RABBITMQ_URL`, `AIRTASKS_DOCKER_URL`).
`ResolvedConfig.origins` records where every value came from; `airtasks config` prints it.

Credentials are never part of the config text: the config names environment variables or files
to read them from (defaults `AIRTASKS_AIRFLOW_USERNAME`/`_PASSWORD`, `AIRTASKS_RABBITMQ_USERNAME`/
`_PASSWORD`, each also as a `*_FILE` variable holding a path). `Secret` keeps a value out of reprs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from airtasks.decide import QueuePolicy
from airtasks.errors import ConfigError

Backend = Literal["aws", "gcp", "swarm"]
CLUSTER_RE = re.compile(r"^[a-z][a-z0-9-]{1,20}[a-z0-9]$")
QUEUE_RE = re.compile(r"^[a-z](?:[a-z0-9-]{0,29}[a-z0-9])?$")
RESERVED_QUEUES = frozenset({"manager"})
CONFIG_ENV = "AIRTASKS_CONFIG"
URL_OVERRIDES = {
    "AIRTASKS_AIRFLOW_URL": ("sources", "airflow", "url"),
    "AIRTASKS_RABBITMQ_URL": ("sources", "rabbitmq", "url"),
}
DOCKER_URL_ENV = "AIRTASKS_DOCKER_URL"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError(f"{value!r} is not an http(s) URL; use e.g. http://host:port")
    if parts.username or parts.password:
        raise ValueError(
            "credentials do not belong in the URL; remove them and set the *_USERNAME/_PASSWORD env"
        )
    return value.rstrip("/")


class _Credentials(_Model):
    """Where a source's username and password come from (never the values themselves)."""

    username_env: str = ""
    password_env: str = ""
    username_file: str | None = None
    password_file: str | None = None
    timeout_seconds: float = Field(default=5.0, gt=0, le=120)

    @field_validator("url", check_fields=False)
    @classmethod
    def _url(cls, value: str) -> str:
        return _http_url(value)


class AirflowSourceConfig(_Credentials):
    url: str = "http://airflow-apiserver:8080"
    username_env: str = "AIRTASKS_AIRFLOW_USERNAME"
    password_env: str = "AIRTASKS_AIRFLOW_PASSWORD"
    verify_tls: bool = True


class RabbitMQSourceConfig(_Credentials):
    url: str = "http://rabbitmq:15672/rabbitmq"  # the stack serves management under /rabbitmq
    vhost: str = "/"
    username_env: str = "AIRTASKS_RABBITMQ_USERNAME"
    password_env: str = "AIRTASKS_RABBITMQ_PASSWORD"
    amqp_port: int = Field(default=5672, ge=1, le=65535)
    """Where Celery control messages go when no broker URL is given (same host as `url`)."""
    verify_tls: bool = True


class SourcesConfig(_Model):
    airflow: AirflowSourceConfig | None = None
    rabbitmq: RabbitMQSourceConfig | None = None

    @model_validator(mode="after")
    def _at_least_one(self) -> SourcesConfig:
        if self.airflow is None and self.rabbitmq is None:
            raise ValueError("no load source; configure sources.airflow (and/or sources.rabbitmq) with a url")
        return self


class QueueConfig(_Model):
    group: str = Field(min_length=1, max_length=255)
    min_size: int = Field(default=0, ge=0)
    max_size: int = Field(ge=0)
    slots_per_node: int = Field(default=1, ge=1)
    prescale: bool = True
    """Raise the group one boot before a scheduled DAG run that needed it before (decide.py)."""
    pack: bool = False
    """Steer new tasks onto the fullest busy nodes, so the others empty and go sooner (decide.py)."""
    learn_durations: bool = False
    """Scale out only for the queued tasks that the group's slots would not start before a new node
    could, by the run times of each task's recent successful runs (decide.py, `scaling.durations`)."""

    @model_validator(mode="after")
    def _bounds(self) -> QueueConfig:
        if self.max_size < self.min_size:
            raise ValueError(
                f"max_size ({self.max_size}) is below min_size ({self.min_size}); "
                f"set max_size >= {self.min_size} or lower min_size"
            )
        return self


class CeleryControlConfig(_Model):
    """How the scaler tells one Celery worker to stop (cancel_consumer) or resume taking tasks.

    The broker URL carries a password, so it comes from env `broker_url_env` (or its `_FILE`
    variant, or `broker_url_file`); without one it is built from sources.rabbitmq (same host,
    `amqp_port`, vhost and credentials).
    """

    enabled: bool = True
    broker_url_env: str = "AIRTASKS_BROKER_URL"
    broker_url_file: str | None = None
    worker_name: str = "celery@{id}"
    timeout_seconds: float = Field(default=2.0, gt=0, le=30)

    @field_validator("worker_name")
    @classmethod
    def _has_id(cls, value: str) -> str:
        if "{id}" not in value:
            raise ValueError("must contain {id} (the instance id), e.g. celery@{id}")
        return value


class SwarmConfig(_Model):
    """Swarm hygiene and drain through the manager's Docker API (None: no Swarm steps)."""

    docker_url: str = "unix:///var/run/docker.sock"
    drain_wait_seconds: float = Field(default=10.0, ge=0, le=600)
    remove_down_nodes: bool = True
    copy_labels: bool = True


class MemoryConfig(_Model):
    """Where the per-queue scale-in memory lives between passes and restarts."""

    store: Literal["airflow", "file"] = "airflow"
    variable: str = "airtasks_scaler_memory"
    path: str = "~/.local/state/airtasks/scaler-memory.json"


class HistoryConfig(_Model):
    """The scaler's decision history (`airtasks.state.history`): a bounded ring the operations view charts.

    A pass appends an entry per queue when its decision changed (action, sizes, nodes acted on),
    and otherwise at most every `sample_seconds` (a point for the chart), so the store is written
    at most once per pass and, while nothing changes, once per `sample_seconds`.
    """

    store: Literal["airflow", "file", "none"] = "airflow"
    variable: str = "airtasks_scaler_history"
    path: str = "~/.local/state/airtasks/scaler-history.json"
    max_entries: int = Field(default=720, ge=10, le=10000)
    """Per queue."""
    max_age_seconds: float = Field(default=6 * 3600.0, ge=60, le=7 * 86400)
    sample_seconds: float = Field(default=60.0, ge=1, le=3600)


class ScalerConfig(_Model):
    backend: Backend
    cluster_name: str | None = None
    region: str | None = None
    project: str | None = None
    # Defaults checked with the simulator (decide.QueuePolicy says how: tuning seeds for
    # `python -m bench.sweep`, held-out seeds for `make bench`): a long group-wide window is what
    # makes autoscalers expensive; per-node idle time is the lever (README, "How scaling works").
    interval_seconds: float = Field(default=5.0, ge=1, le=3600)
    stabilization_seconds: float = Field(default=QueuePolicy.stabilization_seconds, ge=0, le=86400)
    idle_seconds: float = Field(default=QueuePolicy.idle_seconds, ge=0, le=86400)
    sources: SourcesConfig
    queues: dict[str, QueueConfig]
    celery: CeleryControlConfig | None = CeleryControlConfig()
    swarm: SwarmConfig | None = None
    memory: MemoryConfig | None = None
    """None: an Airflow Variable when sources.airflow is set, else a local file."""
    history: HistoryConfig | None = None
    """None: like memory (an Airflow Variable when sources.airflow is set, else a local file)."""

    @field_validator("cluster_name")
    @classmethod
    def _cluster(cls, value: str | None) -> str | None:
        if value is not None and not CLUSTER_RE.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a valid cluster name; use 3-22 lowercase letters, digits and '-', "
                "starting with a letter (e.g. demo)"
            )
        return value

    @field_validator("queues")
    @classmethod
    def _queue_names(cls, value: dict[str, QueueConfig]) -> dict[str, QueueConfig]:
        if not value:
            raise ValueError('no queues; add at least one, e.g. {"default": {"group": ..., "max_size": 10}}')
        for name in value:
            if name in RESERVED_QUEUES:
                raise ValueError(f"queue {name!r} is reserved for the manager's own worker; remove it")
            if not QUEUE_RE.fullmatch(name):
                raise ValueError(
                    f"queue name {name!r} is invalid; use lowercase letters, digits and '-', "
                    "starting with a letter, not ending in '-', at most 31 characters"
                )
        return value

    @model_validator(mode="after")
    def _backend_needs(self) -> ScalerConfig:
        if self.backend in {"aws", "gcp"} and not self.region:
            raise ValueError(f"backend {self.backend!r} needs region; set region (e.g. eu-west-1)")
        if self.backend == "gcp" and not self.project:
            raise ValueError("backend 'gcp' needs project; set project to the GCP project id")
        if self.memory is not None and self.memory.store == "airflow" and self.sources.airflow is None:
            raise ValueError("memory.store 'airflow' needs sources.airflow; configure it or use store 'file'")
        if self.history is not None and self.history.store == "airflow" and self.sources.airflow is None:
            raise ValueError(
                "history.store 'airflow' needs sources.airflow; configure it or use store 'file' or 'none'"
            )
        return self

    def policy(self, queue: str) -> QueuePolicy:
        q = self.queues[queue]
        return QueuePolicy(
            min_size=q.min_size,
            max_size=q.max_size,
            slots_per_node=q.slots_per_node,
            stabilization_seconds=self.stabilization_seconds,
            idle_seconds=self.idle_seconds,
            prescale=q.prescale,
            pack=q.pack,
        )

    @property
    def memory_config(self) -> MemoryConfig:
        if self.memory is not None:
            return self.memory
        return MemoryConfig(store="airflow" if self.sources.airflow is not None else "file")

    @property
    def history_config(self) -> HistoryConfig:
        if self.history is not None:
            return self.history
        return HistoryConfig(store="airflow" if self.sources.airflow is not None else "file")


# ---------------------------------------------------------------------------------------------
# Secrets: values read from env or files, never printed
# ---------------------------------------------------------------------------------------------


class Secret:
    """A credential value that never shows in repr/str/logs."""

    __slots__ = ("_value", "origin")

    def __init__(self, value: str, origin: str) -> None:
        self._value = value
        self.origin = origin

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret(origin={self.origin!r})"

    __str__ = __repr__


def read_secret(env_name: str, file_path: str | None, env: Mapping[str, str] | None = None) -> Secret | None:
    """A credential from `file_path`, else env `env_name`, else a path in env `<env_name>_FILE`."""
    env = os.environ if env is None else env
    if file_path:
        return Secret(_read_file(file_path, f"file {file_path}"), f"file {file_path}")
    if env_name and env.get(env_name):
        return Secret(env[env_name], f"env {env_name}")
    if env_name and env.get(f"{env_name}_FILE"):
        path = env[f"{env_name}_FILE"]
        return Secret(_read_file(path, f"env {env_name}_FILE"), f"file {path} (env {env_name}_FILE)")
    return None


def _read_file(path: str, named_by: str) -> str:
    try:
        return Path(path).expanduser().read_text().strip()
    except OSError as exc:
        raise ConfigError(
            f"cannot read the credential file {path} (named by {named_by}): {exc.strerror}; "
            "fix the path or its permissions"
        ) from None


@dataclass(frozen=True)
class Credentials:
    username: Secret | None
    password: Secret | None


def source_credentials(source: _Credentials, env: Mapping[str, str] | None = None) -> Credentials:
    """A source's username and password. An Airflow password *file* may also be the JSON object
    {username: password} of Airflow's simple auth manager (what `make up` writes)."""
    username = read_secret(source.username_env, source.username_file, env)
    password = read_secret(source.password_env, source.password_file, env)
    if (
        isinstance(source, AirflowSourceConfig)
        and password is not None
        and password.origin.startswith("file ")
        and password.get().startswith("{")
    ):
        from airtasks.sources.airflow_access import DEFAULT_USERNAME, password_from_text  # noqa: PLC0415

        user = username.get() if username is not None else DEFAULT_USERNAME
        try:
            password = Secret(password_from_text(password.get(), user, password.origin), password.origin)
        except ValueError as exc:
            raise ConfigError(f"sources.airflow: {exc}; fix the file or name another user") from None
    return Credentials(username, password)


def broker_url(config: ScalerConfig, env: Mapping[str, str] | None = None) -> Secret | None:
    """The AMQP URL for Celery control, or None when it cannot be known."""
    if config.celery is None or not config.celery.enabled:
        return None
    explicit = read_secret(config.celery.broker_url_env, config.celery.broker_url_file, env)
    if explicit is not None:
        return explicit
    rabbit = config.sources.rabbitmq
    if rabbit is None:
        return None
    creds = source_credentials(rabbit, env)
    host = urlsplit(rabbit.url).hostname or "localhost"
    auth = ""
    if creds.username is not None:
        auth = quote(creds.username.get(), safe="")
        if creds.password is not None:
            auth += ":" + quote(creds.password.get(), safe="")
        auth += "@"
    vhost = quote(rabbit.vhost, safe="")
    return Secret(f"amqp://{auth}{host}:{rabbit.amqp_port}/{vhost}", "built from sources.rabbitmq")


# ---------------------------------------------------------------------------------------------
# Resolution with origins
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResolvedConfig:
    config: ScalerConfig
    origins: dict[str, str] = field(default_factory=dict)
    """Dotted key -> where its value came from (`file PATH`, `env NAME`, `terraform DIR`, `default`)."""

    def describe(self, env: Mapping[str, str] | None = None) -> list[tuple[str, Any, str]]:
        """(key, value, origin) for every leaf, credentials as `set`/`not set` only."""
        rows: list[tuple[str, Any, str]] = []
        data = self.config.model_dump(mode="json")
        data["memory"] = self.config.memory_config.model_dump(mode="json")
        data["history"] = self.config.history_config.model_dump(mode="json")
        for key, value in _flatten(data):
            rows.append((key, value, self.origins.get(key, "default")))
        env = os.environ if env is None else env
        for name in ("airflow", "rabbitmq"):
            src = getattr(self.config.sources, name)
            if src is None:
                continue
            try:
                creds = source_credentials(src, env)
            except ConfigError as exc:
                rows.append((f"sources.{name}.credentials", "error", str(exc)))
                continue
            for label, secret in (("username", creds.username), ("password", creds.password)):
                shown = "set" if secret is not None else "not set"
                rows.append((f"sources.{name}.{label}", shown, secret.origin if secret else "-"))
        if self.config.celery is not None and self.config.celery.enabled:
            try:
                url = broker_url(self.config, env)
            except ConfigError as exc:
                rows.append(("celery.broker_url", "error", str(exc)))
            else:
                rows.append(("celery.broker_url", "set" if url else "not set", url.origin if url else "-"))
        return rows


def _flatten(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(data, dict) and data:
        out: list[tuple[str, Any]] = []
        for key, value in data.items():
            out.extend(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return [(prefix, data)]


def _leaf_keys(data: Any, prefix: str = "") -> list[str]:
    return [k for k, _ in _flatten(data, prefix)]


def format_validation_error(exc: ValidationError) -> str:
    """One `key: problem; fix` line per problem."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-")) or "(top level)"
        kind = err["type"]
        msg = str(err["msg"])
        if kind == "missing":
            text = "is required; add it"
        elif kind == "extra_forbidden":
            text = "unknown key; remove it or fix its spelling"
        elif kind == "value_error":
            text = msg.removeprefix("Value error, ")
        elif kind == "literal_error":
            text = f"{msg}; use one of those"
        elif kind in {"greater_than_equal", "greater_than", "less_than_equal", "less_than"}:
            text = f"{msg}; change the value"
        elif kind.endswith("_type") or kind.endswith("_parsing"):
            text = f"{msg} (got {err.get('input')!r}); fix its type"
        else:
            text = msg
        lines.append(f"{loc}: {text}")
    return "\n".join(lines)


def parse_config(data: Any, origin: str = "config") -> ScalerConfig:
    if not isinstance(data, dict):
        raise ConfigError(
            f"{origin}: the config must be a JSON/YAML object (mapping), got {type(data).__name__}"
        )
    try:
        return ScalerConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid scaler config ({origin}):\n{format_validation_error(exc)}") from None


def load_text(text: str, origin: str) -> Any:
    stripped = text.lstrip()
    try:
        if stripped.startswith("{"):
            return json.loads(text)
        return yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        first = str(exc).splitlines()[0]
        raise ConfigError(f"{origin}: not valid JSON/YAML: {first}; fix the syntax") from None


def load_file(path: str | Path) -> Any:
    p = Path(path).expanduser()
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError(
            f"cannot read config file {p}: {exc.strerror}; check --config / {CONFIG_ENV}"
        ) from None
    return load_text(text, f"file {p}")


def terraform_output(
    directory: str | Path,
    env: Mapping[str, str] | None = None,
    *,
    state: Path | None = None,
    data_dir: Path | None = None,
) -> Any:
    """`terraform output -json scaler_config` in `directory`.

    `state` and `data_dir` point at a root's state and working data kept elsewhere (the CLI passes
    those of a root that `make up` applied). Reading outputs needs no provider, so no plugin
    configuration is needed here.
    """
    env = dict(os.environ if env is None else env)
    env.setdefault("TF_IN_AUTOMATION", "1")
    env.setdefault("CHECKPOINT_DISABLE", "1")
    tf = shutil.which("terraform", path=env.get("PATH"))
    if tf is None:
        raise ConfigError("--from-terraform needs the terraform CLI on PATH; install it or use --config")
    if not Path(directory).is_dir():
        raise ConfigError(
            f"--from-terraform {directory}: no such directory; pass a Terraform env (e.g. envs/aws)"
        )
    args = [tf, f"-chdir={directory}", "output", "-no-color", "-json"]
    if data_dir is not None:
        env["TF_DATA_DIR"] = str(data_dir)
    if state is not None:
        args.append(f"-state={state}")
    proc = subprocess.run(
        [*args, "scaler_config"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    if proc.returncode != 0:
        lines = [ln.strip(" │╷╵") for ln in proc.stderr.splitlines()]
        detail = next((ln for ln in lines if ln and not ln.startswith("Error:")), "") or (
            lines[0] if lines else "no output"
        )
        raise ConfigError(
            f"terraform output scaler_config failed in {directory}: {detail.strip()}; "
            f"run `terraform apply` there first"
        )
    return load_text(proc.stdout, f"terraform {directory}")


def resolve(
    config_path: str | Path | None = None,
    from_terraform: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    data: Mapping[str, Any] | None = None,
    *,
    terraform_state: Path | None = None,
    terraform_data_dir: Path | None = None,
) -> ResolvedConfig:
    """Merge the config sources in order and validate once. Raises ConfigError (no cloud call made).

    `terraform_state` / `terraform_data_dir`: where the `from_terraform` root keeps its state, when
    not in the root itself (see `terraform_output`).
    """
    env = os.environ if env is None else env
    if config_path is not None and from_terraform is not None:
        raise ConfigError("give either --config or --from-terraform, not both")
    if data is not None:
        raw, origin = dict(data), "argument"
    elif config_path is not None:
        raw, origin = load_file(config_path), f"file {config_path}"
    elif from_terraform is not None:
        raw = terraform_output(from_terraform, env, state=terraform_state, data_dir=terraform_data_dir)
        origin = f"terraform {from_terraform}"
    elif env.get(CONFIG_ENV):
        value = env[CONFIG_ENV]
        if value.lstrip().startswith("{"):
            raw, origin = load_text(value, f"env {CONFIG_ENV}"), f"env {CONFIG_ENV}"
        else:
            raw, origin = load_file(value), f"file {value} (env {CONFIG_ENV})"
    else:
        raise ConfigError(
            f"no scaler config; pass --config PATH or --from-terraform DIR, or set {CONFIG_ENV} "
            "(a path or inline JSON)"
        )
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{origin}: the config must be a JSON/YAML object (mapping), got {type(raw).__name__}"
        )
    raw = json.loads(json.dumps(raw))  # a deep copy we may edit
    origins = dict.fromkeys(_leaf_keys(raw), origin)

    for var, path in URL_OVERRIDES.items():
        if env.get(var):
            node = raw.setdefault(path[0], {}) or {}
            raw[path[0]] = node
            src = node.get(path[1])
            if src is None:
                src = {}
                node[path[1]] = src
            src[path[2]] = env[var]
            origins[".".join(path)] = f"env {var}"
    if env.get(DOCKER_URL_ENV):
        swarm = raw.get("swarm") or {}
        swarm["docker_url"] = env[DOCKER_URL_ENV]
        raw["swarm"] = swarm
        origins["swarm.docker_url"] = f"env {DOCKER_URL_ENV}"

    config = parse_config(raw, origin)
    return ResolvedConfig(config, origins)


__all__ = [
    "AirflowSourceConfig",
    "CeleryControlConfig",
    "Credentials",
    "HistoryConfig",
    "MemoryConfig",
    "QueueConfig",
    "RabbitMQSourceConfig",
    "ResolvedConfig",
    "ScalerConfig",
    "Secret",
    "SwarmConfig",
    "broker_url",
    "format_validation_error",
    "parse_config",
    "read_secret",
    "resolve",
    "source_credentials",
]
