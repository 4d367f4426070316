"""What the simulator needs from the scaler's configuration (the `scaler_config` shape).

Only the scaling knobs are read: `interval_seconds`, `stabilization_seconds`, `idle_seconds`,
whether a RabbitMQ source is configured, and per queue `min_size`, `max_size`, `slots_per_node`
and the switches `prescale`, `pack` and `learn_durations`. Anything else in the file (backend,
region, group names, URLs) is ignored. Defaults are the scaler config's defaults, so the
simulator always runs what the scaler would.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError

from airtasks.config import ScalerConfig
from airtasks.decide import QueuePolicy
from airtasks.errors import ConfigError

_BOOL = TypeAdapter(bool)


def _policy_default(name: str) -> float:
    """The scaler's own default for a knob, so the simulator always runs what the scaler would."""
    return float(ScalerConfig.model_fields[name].default)


@dataclass(frozen=True)
class QueueSettings:
    min_size: int = 0
    max_size: int = 100
    slots_per_node: int = 4
    prescale: bool = True
    """The queue's `prescale` in the scaler's config; `Settings.prescale` off turns it off for all."""
    pack: bool | None = None
    """The queue's `pack` in the scaler's config; None: `Settings.pack`."""
    learn_durations: bool | None = None
    """The queue's `learn_durations` in the scaler's config; None: `Settings.learn_durations`."""


@dataclass(frozen=True)
class Settings:
    interval_seconds: float = field(default_factory=lambda: _policy_default("interval_seconds"))
    """The scaler's pass interval (default 5 s, not 10: at 10 s it reacts up to 5 s later than KEDA's
    5 s polling (bursty p95 wait 69 s vs 64 s), and a 10 s pass cannot promise reaction < 10 s p95."""
    stabilization_seconds: float = field(default_factory=lambda: _policy_default("stabilization_seconds"))
    idle_seconds: float = field(default_factory=lambda: _policy_default("idle_seconds"))
    rabbitmq: bool = True
    """A RabbitMQ source is configured (the `airtasks` policy also reads the broker, with its lag)."""
    removal_seconds: float = 5.0
    """How long the scaler's drain-and-terminate of an idle node takes (the node is paid for meanwhile):
    cordon, re-check, Swarm drain of an idle worker (its container stops at once), terminate call.
    Not in the scaler's config; `swarm.drain_wait_seconds` there is only an upper bound."""
    learn_durations: bool = False
    """Feed decide() expected run times learnt from finished tasks of the same key (traces with a
    `key` column), as the scaler does for a queue with `learn_durations`. Off by default, as there."""
    prescale: bool = True
    """Raise a group one boot before each scheduled DAG run, by what the DAG's earlier runs needed
    (traces with `dag` and `scheduled_s` columns). On by default, as in the scaler (`QueuePolicy`)."""
    prescale_whole_run: bool = False
    """Pre-scale each scheduled run for its whole run, not its first minutes: by the profile its
    DAG's recent runs needed at each offset from the run's time, for the next run and the runs
    under way (`Schedules`). Off by default: on `scheduled` it cuts the tasks that wait 15 s or
    more from 43 % to 13 % (tuning seeds) but not the p95, and costs about 0.3x of the oracle
    more (held-out; docs/simulator.md, "Pre-scaling for scheduled runs"). The live scaler reads
    only the first minutes."""
    prescale_roots: bool = True
    """Pre-scale a DAG's first scheduled run, which has no history, for its DAG's root tasks per
    queue, as the parsed DAG tells them (`trace.dag_roots`). On by default, as in the scaler,
    which reads them from Airflow's task listing of the DAG (`scaling.due`): on `scheduled` it
    cuts the tasks that wait 15 s or more from 41.6 % to 38.2 % (tuning seeds, 10 s passes) for
    about 0.003x of the oracle; it changes no other kind (docs/simulator.md, "Pre-scaling for
    scheduled runs")."""
    pack: bool = False
    """Pack new tasks onto the fullest busy nodes by cordoning the others (`QueuePolicy.pack`), on
    every queue that does not set its own. Off by default, as in the scaler (docs/simulator.md,
    "Packing")."""
    queues: Mapping[str, QueueSettings] = field(default_factory=dict)
    """Per queue; empty means every queue of the trace gets `QueueSettings()`."""

    def queue(self, name: str) -> QueueSettings:
        if not self.queues:
            return QueueSettings()
        try:
            return self.queues[name]
        except KeyError:
            raise ConfigError(
                f"the trace has queue {name!r} but the config's `queues` does not; add it to the config "
                "or run without --config"
            ) from None

    def policy(self, name: str) -> QueuePolicy:
        q = self.queue(name)
        return QueuePolicy(
            min_size=q.min_size,
            max_size=q.max_size,
            slots_per_node=q.slots_per_node,
            stabilization_seconds=self.stabilization_seconds,
            idle_seconds=self.idle_seconds,
            prescale=self.prescale and q.prescale,
            pack=self.pack if q.pack is None else q.pack,
        )

    def learns(self, name: str) -> bool:
        """Whether the queue learns run times (its own `learn_durations`, else `learn_durations`)."""
        q = self.queue(name)
        return self.learn_durations if q.learn_durations is None else q.learn_durations


def load_settings(path: str | Path) -> Settings:
    """Read a scaler config file (JSON or YAML; `terraform output -json` wrapping is accepted)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {p}: {exc.strerror or exc}; pass an existing file") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError:
            raise ConfigError(f"config {p} is neither JSON nor YAML; write the scaler_config shape") from None
    return settings_from(data, name=str(p))


def settings_from(data: Any, name: str = "config") -> Settings:
    if isinstance(data, Mapping) and "value" in data and isinstance(data["value"], Mapping):
        data = data["value"]  # `terraform output -json scaler_config`
    if not isinstance(data, Mapping):
        raise ConfigError(f"{name}: expected an object with `queues`; write the scaler_config shape")
    base = Settings()
    out: dict[str, Any] = {}
    for key in ("interval_seconds", "stabilization_seconds", "idle_seconds"):
        if data.get(key) is not None:
            out[key] = _num(data[key], f"{name}: {key}", minimum=1 if key == "interval_seconds" else 0)
    sources = data.get("sources")
    if isinstance(sources, Mapping) and "rabbitmq" in sources:
        out["rabbitmq"] = sources["rabbitmq"] is not None
    queues = data.get("queues")
    if queues is not None:
        if not isinstance(queues, Mapping) or not queues:
            raise ConfigError(
                f"{name}: `queues` must map queue names to {{min_size, max_size, slots_per_node}}"
            )
        parsed: dict[str, QueueSettings] = {}
        for q, body in queues.items():
            if not isinstance(body, Mapping):
                raise ConfigError(
                    f"{name}: queues.{q} must be an object with min_size, max_size, slots_per_node"
                )
            d = QueueSettings()
            qs = QueueSettings(
                min_size=int(_num(body.get("min_size", d.min_size), f"{name}: queues.{q}.min_size", 0)),
                max_size=int(_num(body.get("max_size", d.max_size), f"{name}: queues.{q}.max_size", 0)),
                slots_per_node=int(
                    _num(
                        body.get("slots_per_node", d.slots_per_node), f"{name}: queues.{q}.slots_per_node", 1
                    )
                ),
                prescale=_flag(body, "prescale", f"{name}: queues.{q}.prescale") is not False,
                pack=_flag(body, "pack", f"{name}: queues.{q}.pack"),
                learn_durations=_flag(body, "learn_durations", f"{name}: queues.{q}.learn_durations"),
            )
            if qs.min_size > qs.max_size:
                raise ConfigError(f"{name}: queues.{q}.min_size is above max_size; make min_size <= max_size")
            parsed[str(q)] = qs
        out["queues"] = parsed
    return dataclasses.replace(base, **out)


def _flag(body: Mapping[str, Any], key: str, what: str) -> bool | None:
    """A queue's switch, as the scaler's config reads it (`yes`, `0`, ...); None when left out."""
    value = body.get(key)
    if value is None:
        return None
    try:
        return _BOOL.validate_python(value)
    except ValidationError:
        raise ConfigError(f"{what} must be true or false (got {value!r}); fix the config") from None


def _num(value: Any, what: str, minimum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{what} must be a number (got {value!r}); fix the config")
    if value < minimum:
        raise ConfigError(f"{what} must be >= {minimum:g} (got {value!r}); fix the config")
    return float(value)


__all__ = ["QueueSettings", "Settings", "load_settings", "settings_from"]
