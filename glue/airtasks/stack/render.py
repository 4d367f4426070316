"""`airtasks stack render`: the Swarm stack file with one Celery worker service per queue.

The stack (docker/docker-compose-CeleryExecutor.yml), the proxy configuration
(docker/proxy/nginx.conf) and RabbitMQ's (docker/rabbitmq/20-airtasks.conf) are rendered from the
templates in `airtasks/stack/templates/`; the shipped files are the rendering of the default
queues (a test keeps them equal).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import click

from airtasks.backup.settings import BackupError, BackupSettings
from airtasks.errors import AirtasksError
from airtasks.locations import BUCKET_URL, REGION_RE
from airtasks.pools import POOLS_ENV, format_pools
from airtasks.stack.bundles import (
    BundleError,
    DagBundle,
    dag_bundles_env,
    git_connections_env,
    git_secrets,
    parse_dag_bundles,
)
from airtasks.stack.database import DatabaseError, ExternalDatabase
from airtasks.stack.git_credentials import read_names
from airtasks.stack.secrets import POSTGRES_PASSWORD

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


MAX_NODES = 10000


@dataclass(frozen=True)
class QueueSpec:
    name: str
    slots: int
    max_nodes: int | None = None
    """The group's maximum size; sets the queue's pool and Airflow's limits (see airtasks.pools)."""

    @classmethod
    def parse(cls, text: str) -> QueueSpec:
        """`NAME:SLOTS[:MAX_NODES]` (slots = Celery concurrency per node), e.g. `default:4:10`."""
        name, sep, rest = text.partition(":")
        slots, _, max_nodes = rest.partition(":")
        if not QUEUE_RE.fullmatch(name):
            raise StackError(
                f"queue name {name!r} must match {QUEUE_RE.pattern} (lowercase, digits, '-'; e.g. 'gpu')"
            )
        if name == MANAGER_QUEUE:
            raise StackError("queue 'manager' is reserved: the manager's worker always serves it")
        if not sep or not slots.isdigit() or not 1 <= int(slots) <= 256:
            raise StackError(f"queue {text!r}: give NAME:SLOTS with 1 <= SLOTS <= 256, e.g. {name}:4")
        if max_nodes and (not max_nodes.isdigit() or int(max_nodes) > MAX_NODES):
            raise StackError(
                f"queue {text!r}: MAX_NODES must be a whole number from 0 to {MAX_NODES} "
                f"(the group's max_size), e.g. {name}:{slots}:10"
            )
        return cls(name, int(slots), int(max_nodes) if max_nodes else None)

    @property
    def capacity(self) -> int | None:
        """Tasks the queue's group runs at once at its maximum size."""
        return None if self.max_nodes is None else self.max_nodes * self.slots


# The manager queue's share of Airflow's limits: its worker's slots on each of up to 5 managers.
MANAGER_HEADROOM_MANAGERS = 5


def concurrency_env(specs: Sequence[QueueSpec], manager_slots: int) -> dict[str, str]:
    """Airflow's limits from the queues' sizes (nothing when a queue's size is not given).

    Airflow runs at most `[core] parallelism` tasks per scheduler (default 32) and
    `max_active_tasks_per_dag` per DAG run (default 16): a cluster of hundreds of slots would never
    fill. Both become what the cluster can run at its maximum size, plus the manager queue's share;
    a DAG can still set its own `max_active_tasks`. Each queue gets its pool (airtasks.pools)."""
    capacities = [q.capacity for q in specs]
    if any(c is None for c in capacities):
        if any(c is not None for c in capacities):
            missing = ", ".join(q.name for q in specs if q.max_nodes is None)
            raise StackError(
                f"give MAX_NODES for every queue or for none (NAME:SLOTS:MAX_NODES); none for: {missing}"
            )
        return {}
    total = sum(c for c in capacities if c is not None) + manager_slots * MANAGER_HEADROOM_MANAGERS
    pools = format_pools({q.name: q.capacity for q in specs if q.capacity is not None})
    return {
        "AIRFLOW__CORE__PARALLELISM": f'"{total}"',
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": f'"{total}"',
        POOLS_ENV: f'"{pools}"',
    }


# Where task logs go when a cluster keeps them (`--task-logs`): Airflow's remote logging to the
# cluster's bucket, through a connection that names no key, so each node uses its own identity (the
# instance profile on AWS, the service account on GCP).
TASK_LOGS_RE = re.compile(rf"^{BUCKET_URL}(/[A-Za-z0-9._/-]*)?$")
TASK_LOGS_CONN_ID = "airtasks_task_logs"


@dataclass(frozen=True)
class TaskLogs:
    """Remote task logs: `url` is the remote base folder (s3://bucket/prefix or gs://bucket/prefix)."""

    url: str
    region: str | None = None

    @classmethod
    def parse(cls, url: str, region: str | None = None) -> TaskLogs:
        match = TASK_LOGS_RE.fullmatch(url.rstrip("/"))
        if match is None:
            raise StackError(
                f"task logs location {url!r} must be s3://BUCKET/PREFIX or gs://BUCKET/PREFIX, "
                "e.g. s3://acme-airtasks-logs/logs"
            )
        if match.group(1) == "s3" and (region is None or not REGION_RE.fullmatch(region)):
            raise StackError(
                "task logs in S3 need the bucket's region, e.g. --task-logs-region us-east-1 "
                f"(got {region!r})"
            )
        return cls(url.rstrip("/"), region if match.group(1) == "s3" else None)

    def env(self) -> dict[str, str]:
        """The Airflow settings, for every Airflow service: workers write, the API server reads."""
        extra = {"region_name": self.region} if self.region else {}
        conn_type = "aws" if self.url.startswith("s3://") else "google_cloud_platform"
        conn = json.dumps({"conn_type": conn_type, "extra": extra}, separators=(",", ":"))
        return {
            "AIRFLOW__LOGGING__REMOTE_LOGGING": '"True"',
            "AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER": self.url,
            "AIRFLOW__LOGGING__REMOTE_LOG_CONN_ID": TASK_LOGS_CONN_ID,
            # Once a log is uploaded the node's copy only fills its disk (managers live long).
            "AIRFLOW__LOGGING__DELETE_LOCAL_LOGS": '"True"',
            f"AIRFLOW_CONN_{TASK_LOGS_CONN_ID.upper()}": f"'{conn}'",
        }


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


# The stack's own PostgreSQL (the `postgres` service): its connection URLs, filled from the Swarm
# secret by airtasks-secret-url whenever Airflow reads its configuration.
STACK_DATABASE_ENV = {
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD": "airtasks-secret-url postgresql+psycopg2://airflow:{airtasks_postgres_password}@postgres:5432/airflow",
    "AIRFLOW__CELERY__RESULT_BACKEND_CMD": "airtasks-secret-url db+postgresql://airflow:{airtasks_postgres_password}@postgres:5432/airflow",
}
STACK_DATABASE_ADDRESS = "postgres:5432"
_POSTGRES_BLOCK = re.compile(r"@@POSTGRES_BEGIN@@\n(.*?)@@POSTGRES_END@@\n", re.S)


def _database(text: str, database: ExternalDatabase | None) -> str:
    """The template's database parts: the `postgres` service, its volume and the connection URLs,
    or, with an external database, none of them (airtasks.stack.database: the entry point builds
    the URLs from the endpoint and the secret at container start)."""
    if database is None:
        conn, backend = (f"  {k}: {v}\n" for k, v in STACK_DATABASE_ENV.items())
        text = _POSTGRES_BLOCK.sub(lambda m: m.group(1), text)
        volume, address = "  postgres-data:\n", STACK_DATABASE_ADDRESS
    else:
        conn = backend = volume = ""
        text = _POSTGRES_BLOCK.sub("", text)
        # Nothing reads the stack's own database password then: no service gets it mounted.
        text = text.replace(f"  - {POSTGRES_PASSWORD}\n", "").replace(
            f"  {POSTGRES_PASSWORD}:\n    external: true\n", ""
        )
        address = database.address
    return (
        text.replace("@@DATABASE_CONN@@\n", conn)
        .replace("@@DATABASE_RESULT_BACKEND@@\n", backend)
        .replace("@@POSTGRES_VOLUME@@\n", volume)
        .replace("@@DB_ADDRESS@@", address)
    )


# The `db-backup` service (airtasks.backup.keeper): it must start on an EMPTY database too (that is
# when it restores), so it waits for PostgreSQL to answer but not for migrations. One replica on a
# manager: only the managers' role may read the bucket's backups/ prefix.
_BACKUP_SERVICE = """  db-backup:
    image: ${AIRTASKS_IMAGE:-airtasks:latest}
    command: ["db-backup"]
    environment:
      <<: *airflow-env
      AIRTASKS_WAIT_MIGRATIONS: "0"
      AIRTASKS_BACKUPS: '@JSON@'
    secrets: *airflow-secrets
    networks: [airtasks]
    stop_grace_period: 60s
    deploy: *on-manager

"""


def _backup_service(backups: BackupSettings | None, database: ExternalDatabase | None) -> str:
    if backups is None:
        return ""
    if database is not None:
        raise StackError(
            "backups are for the stack's own PostgreSQL; a managed database keeps its own "
            "(drop --backups, or set backups = null)"
        )
    return _BACKUP_SERVICE.replace("@JSON@", backups.to_json())


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
    queues: Sequence[QueueSpec] = (),
    manager_slots: int = MANAGER_SLOTS,
    placement: str = "node",
    task_logs: TaskLogs | None = None,
    dag_bundles: Sequence[DagBundle] = (),
    *,
    git_secret_names: Mapping[str, str] | None = None,
    database: ExternalDatabase | None = None,
    backups: BackupSettings | None = None,
) -> str:
    """The stack text for these worker queues (default: `default:4`) plus the manager's worker;
    `placement` (`node` or `engine`) picks which labels place the queues' workers; `task_logs`
    turns on remote task logging (off: logs stay on the node that ran the task); `dag_bundles`
    are loaded beside the image's own DAGs (airtasks.stack.bundles), a private repository's
    credential from the Swarm secret `git_secret_names` gives its bundle (bundle => name);
    `database`: an external PostgreSQL instead of the stack's `postgres` service; `backups`: where
    the `db-backup` service keeps that `postgres` service's backups (airtasks.backup)."""
    specs = list(queues) or [QueueSpec(n, s) for n, s in DEFAULT_QUEUES]
    names = [q.name for q in specs]
    if len(set(names)) != len(names):
        raise StackError(f"queue names must be unique, got {names}")
    if placement not in PLACEMENTS:
        raise StackError(f"placement must be one of {', '.join(PLACEMENTS)}, got {placement!r}")
    # Private repositories: the services that clone mount each credential's Swarm secret.
    secrets = git_secrets(dag_bundles, git_secret_names or {})
    bundle_env = git_connections_env(dag_bundles)
    workers = [_worker(MANAGER_QUEUE, manager_slots, "node.role == manager", SCALER_ENV | bundle_env)]
    workers += [
        _worker(
            q.name, q.slots, f"{placement}.labels.airtasks.queue == {q.name}", QUEUE_WORKER_ENV | bundle_env
        )
        for q in specs
    ]
    summary = ", ".join(
        [f"{MANAGER_QUEUE}:{manager_slots} (manager)"]
        + [
            f"{q.name}:{q.slots}" + (f" (max {q.max_nodes} nodes)" if q.max_nodes is not None else "")
            for q in specs
        ]
    )
    # What the options add to every Airflow service's settings (the `x-airflow-env` anchor).
    airflow_env = {
        **concurrency_env(specs, manager_slots),
        **(task_logs.env() if task_logs else {}),
        **dag_bundles_env(dag_bundles),
        **(database.env() if database else {}),
    }
    text = (
        _template("stack.yml")
        .replace("@@WORKERS@@\n", "\n".join(workers))
        .replace("@@BACKUP_SERVICE@@\n", _backup_service(backups, database))
    )
    return (
        _database(text, database)
        .replace("@@NGINX_HASH@@", _hash(render_nginx()))
        .replace("@@RABBITMQ_HASH@@", _hash(render_rabbitmq()))
        .replace("@@QUEUES@@", summary)
        .replace("@@AIRFLOW_ENV@@\n", "".join(f"  {k}: {v}\n" for k, v in airflow_env.items()))
        .replace("@@BUNDLE_ENV@@\n", "".join(f"      {k}: {v}\n" for k, v in bundle_env.items()))
        .replace("@@GIT_SECRETS@@\n", "".join(f"  - {target}\n" for target in secrets))
        .replace(
            "@@GIT_SECRET_DEFS@@\n",
            "".join(
                f"  {target}:\n    external: true\n    name: {name}\n" for target, name in secrets.items()
            ),
        )
    )


def write_stack(
    output: Path,
    queues: Sequence[QueueSpec] = (),
    manager_slots: int = MANAGER_SLOTS,
    placement: str = "node",
    task_logs: TaskLogs | None = None,
    *,
    dag_bundles: Sequence[DagBundle] = (),
    git_secret_names: Mapping[str, str] | None = None,
    database: ExternalDatabase | None = None,
    backups: BackupSettings | None = None,
) -> list[Path]:
    """Write the stack file and, beside it, the files of the stack's `configs`: proxy/nginx.conf and
    rabbitmq/20-airtasks.conf."""
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(
        render_stack(
            queues,
            manager_slots,
            placement,
            task_logs,
            dag_bundles,
            git_secret_names=git_secret_names,
            database=database,
            backups=backups,
        )
    )
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
    metavar="NAME:SLOTS[:MAX_NODES]",
    help=(
        "A worker queue, its Celery slots per node and, optionally, its group's maximum size (then "
        "each queue gets a pool of that many tasks, and Airflow's limits follow); repeat. "
        "Default: default:4."
    ),
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
    "--task-logs",
    "task_logs_url",
    default=None,
    metavar="URL",
    help="Send task logs to s3://BUCKET/PREFIX or gs://BUCKET/PREFIX (written with the nodes' own identity).",
)
@click.option(
    "--task-logs-region", default=None, metavar="REGION", help="The S3 bucket's region, e.g. us-east-1."
)
@click.option(
    "--dag-bundles",
    "dag_bundles_json",
    default=None,
    metavar="JSON",
    help="Your DAG bundles (git, bucket): a JSON list, loaded beside the image's DAGs (docs/dag-bundles.md).",
)
@click.option(
    "--git-secrets",
    "git_secrets_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The bundles' Swarm secrets for private repositories (JSON bundle => secret name), as "
    "airtasks secrets create --git-credential ... --git-secrets-out writes it.",
)
@click.option(
    "--database",
    "database_json",
    default=None,
    metavar="JSON",
    help="An external PostgreSQL instead of the stack's own: JSON {host, port, name, user} and the secret "
    "holding its password, read by each service at start (never the password): secret_arn (AWS Secrets "
    "Manager) or secret_name (GCP Secret Manager, projects/P/secrets/S).",
)
@click.option(
    "--backups",
    "backups_json",
    default=None,
    metavar="JSON",
    help="Back the stack's PostgreSQL up to a bucket, and restore it when it comes up empty: JSON "
    '{"url": "s3://BUCKET/PREFIX", "region": ..., "every_minutes": 60} (docs/high-availability.md).',
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=f"Write here (and the proxy and RabbitMQ configs beside it), e.g. docker/{STACK_FILE}.",
)
def render_command(
    *,
    queues: list[QueueSpec],
    manager_slots: int,
    placement: str,
    task_logs_url: str | None,
    task_logs_region: str | None,
    dag_bundles_json: str | None,
    database_json: str | None,
    backups_json: str | None,
    git_secrets_file: Path | None,
    output: Path | None,
) -> None:
    """Render the stack with one worker service per queue (plus `worker-manager`)."""
    task_logs = None
    if task_logs_url:
        try:
            task_logs = TaskLogs.parse(task_logs_url, task_logs_region)
        except StackError as exc:
            raise click.BadParameter(str(exc), param_hint="--task-logs") from None
    try:
        dag_bundles = parse_dag_bundles(dag_bundles_json) if dag_bundles_json else []
    except BundleError as exc:
        raise click.BadParameter(str(exc), param_hint="--dag-bundles") from None
    names = read_names(git_secrets_file) if git_secrets_file is not None else {}
    try:
        git_secrets(dag_bundles, names)
    except BundleError as exc:
        raise click.BadParameter(str(exc), param_hint="--git-secrets") from None
    try:
        database = ExternalDatabase.parse(database_json) if database_json else None
    except DatabaseError as exc:
        raise click.BadParameter(str(exc), param_hint="--database") from None
    try:
        backups = BackupSettings.parse(backups_json) if backups_json else None
        _backup_service(backups, database)
    except (BackupError, StackError) as exc:
        raise click.BadParameter(str(exc), param_hint="--backups") from None
    if output is None:
        click.echo(
            render_stack(
                queues,
                manager_slots,
                placement,
                task_logs,
                dag_bundles,
                git_secret_names=names,
                database=database,
                backups=backups,
            ),
            nl=False,
        )
        return
    written = write_stack(
        output,
        queues,
        manager_slots,
        placement,
        task_logs,
        dag_bundles=dag_bundles,
        git_secret_names=names,
        database=database,
        backups=backups,
    )
    for path in written:
        click.echo(f"wrote {path}", err=True)
