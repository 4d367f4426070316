"""`airtasks stack render`: the Swarm stack file with one Celery worker service per queue.

The stack (docker/docker-compose-CeleryExecutor.yml), the proxy configuration
(docker/proxy/nginx.conf) and RabbitMQ's (docker/rabbitmq/20-airtasks.conf) are rendered from the
templates in `airtasks/stack/templates/`; the shipped files are the rendering of the default
queues (a test keeps them equal).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import click

from airtasks.errors import AirtasksError

QUEUE_RE = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
MANAGER_QUEUE = "manager"
MANAGER_SLOTS = 2
DEFAULT_QUEUES: tuple[tuple[str, int], ...] = (("default", 4),)
# Where a queue's worker service runs: nodes whose `airtasks.queue` label names the queue.
# `node`: node labels, set by a manager (`docker node update --label-add`; the boot script's timer
# and the scaler copy them from the engine labels after a node joins, and `make up MODE=swarm`
# labels its one node). `engine`: the labels in the node's own daemon.json, which a cloud VM's
# boot script writes before it joins, so the worker starts the moment the node joins (what the
# manager's boot script renders for its cluster).
PLACEMENTS = ("node", "engine")
STACK_FILE = "docker-compose-CeleryExecutor.yml"
NGINX_FILE = Path("proxy") / "nginx.conf"
RABBITMQ_FILE = Path("rabbitmq") / "20-airtasks.conf"


class StackError(AirtasksError):
    """A stack rendering input is wrong."""


@dataclass(frozen=True)
class QueueSpec:
    name: str
    slots: int

    @classmethod
    def parse(cls, text: str) -> QueueSpec:
        """`NAME:SLOTS` (slots = Celery concurrency per node), e.g. `default:4`."""
        name, sep, slots = text.partition(":")
        if not QUEUE_RE.fullmatch(name):
            raise StackError(
                f"queue name {name!r} must match {QUEUE_RE.pattern} (lowercase, digits, '-'; e.g. 'gpu')"
            )
        if name == MANAGER_QUEUE:
            raise StackError("queue 'manager' is reserved: the manager's worker always serves it")
        if not sep or not slots.isdigit() or not 1 <= int(slots) <= 256:
            raise StackError(f"queue {text!r}: give NAME:SLOTS with 1 <= SLOTS <= 256, e.g. {name}:4")
        return cls(name, int(slots))


def _template(name: str) -> str:
    return resources.files("airtasks.stack").joinpath("templates", name).read_text()


def render_nginx() -> str:
    return _template("nginx.conf")


def render_rabbitmq() -> str:
    return _template("rabbitmq.conf")


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:10]


# The manager's worker runs the scaler DAG: it reads Airflow and RabbitMQ inside the stack, with
# the credentials from the Swarm secrets (the scaler's `*_FILE` variables, never values).
SCALER_ENV = {
    "AIRTASKS_AIRFLOW_URL": "http://airflow-apiserver:8080",
    "AIRTASKS_AIRFLOW_USERNAME": "${AIRTASKS_ADMIN_USERNAME:-admin}",
    "AIRTASKS_AIRFLOW_PASSWORD_FILE": "/run/secrets/airtasks_admin_password",
    "AIRTASKS_RABBITMQ_URL": "http://rabbitmq:15672/rabbitmq",  # management.path_prefix
    "AIRTASKS_RABBITMQ_USERNAME": "airflow",
    "AIRTASKS_RABBITMQ_PASSWORD_FILE": "/run/secrets/airtasks_rabbitmq_password",
    # Drain and Swarm hygiene (remove Down nodes, copy labels) through the mounted socket.
    "AIRTASKS_DOCKER_URL": "unix:///var/run/docker.sock",
}


# A queue's worker needs the broker, not the database schema: nodes join long after `airflow-init`
# migrated it, and skipping the check (a whole Airflow CLI start) gets a new node working sooner.
QUEUE_WORKER_ENV = {"AIRTASKS_WAIT_MIGRATIONS": '"0"'}


def _worker(queue: str, slots: int, placement: str, extra_env: dict[str, str] | None = None) -> str:
    extra = "".join(f"      {k}: {v}\n" for k, v in (extra_env or {}).items())
    return (
        _template("worker.yml")
        .replace("@QUEUE@", queue)
        .replace("@SLOTS@", str(slots))
        .replace("@PLACEMENT@", placement)
        .replace("@EXTRA_ENV@\n", extra)
    )


def render_stack(
    queues: Sequence[QueueSpec] = (), manager_slots: int = MANAGER_SLOTS, placement: str = "node"
) -> str:
    """The stack text for these worker queues (default: `default:4`) plus the manager's worker;
    `placement` (`node` or `engine`) picks which labels place the queues' workers."""
    specs = list(queues) or [QueueSpec(n, s) for n, s in DEFAULT_QUEUES]
    names = [q.name for q in specs]
    if len(set(names)) != len(names):
        raise StackError(f"queue names must be unique, got {names}")
    if placement not in PLACEMENTS:
        raise StackError(f"placement must be one of {', '.join(PLACEMENTS)}, got {placement!r}")
    workers = [_worker(MANAGER_QUEUE, manager_slots, "node.role == manager", SCALER_ENV)]
    workers += [
        _worker(q.name, q.slots, f"{placement}.labels.airtasks.queue == {q.name}", QUEUE_WORKER_ENV)
        for q in specs
    ]
    summary = ", ".join(
        [f"{MANAGER_QUEUE}:{manager_slots} (manager)"] + [f"{q.name}:{q.slots}" for q in specs]
    )
    return (
        _template("stack.yml")
        .replace("@@WORKERS@@\n", "\n".join(workers))
        .replace("@@NGINX_HASH@@", _hash(render_nginx()))
        .replace("@@RABBITMQ_HASH@@", _hash(render_rabbitmq()))
        .replace("@@QUEUES@@", summary)
    )


def write_stack(
    output: Path,
    queues: Sequence[QueueSpec] = (),
    manager_slots: int = MANAGER_SLOTS,
    placement: str = "node",
) -> list[Path]:
    """Write the stack file and, beside it, the files of the stack's `configs`: proxy/nginx.conf and
    rabbitmq/20-airtasks.conf."""
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render_stack(queues, manager_slots, placement))
    written = [output]
    for rel, text in ((NGINX_FILE, render_nginx()), (RABBITMQ_FILE, render_rabbitmq())):
        path = output.parent / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written


def _queue_option(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> list[QueueSpec]:
    try:
        return [QueueSpec.parse(v) for v in values]
    except StackError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


@click.group("stack")
def stack_command() -> None:
    """The Swarm stack file (docker/docker-compose-CeleryExecutor.yml)."""


@stack_command.command("render")
@click.option(
    "--queue",
    "queues",
    multiple=True,
    callback=_queue_option,
    metavar="NAME:SLOTS",
    help="A worker queue and its Celery slots per node; repeat. Default: default:4.",
)
@click.option("--manager-slots", type=click.IntRange(1, 64), default=MANAGER_SLOTS, show_default=True)
@click.option(
    "--worker-placement",
    "placement",
    type=click.Choice(PLACEMENTS),
    default="node",
    show_default=True,
    help="Place queue workers by node labels (set by a manager) or engine labels (daemon.json, set at boot).",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=f"Write here (and the proxy and RabbitMQ configs beside it), e.g. docker/{STACK_FILE}.",
)
def render_command(queues: list[QueueSpec], manager_slots: int, placement: str, output: Path | None) -> None:
    """Render the stack with one worker service per queue (plus `worker-manager`)."""
    if output is None:
        click.echo(render_stack(queues, manager_slots, placement), nl=False)
        return
    for path in write_stack(output, queues, manager_slots, placement):
        click.echo(f"wrote {path}", err=True)
