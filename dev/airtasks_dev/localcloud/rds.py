"""RdsEmulator: every PostgreSQL DB instance in moto's RDS becomes a real PostgreSQL 15 server.

moto's RDS API returns an endpoint and a MasterUserSecret but there is no database behind them, and
the secret says `"username": "admin"` whatever the master user is. A poll loop (one thread) lists
the DB instances; for a new `postgres` one it starts a server as RDS would have it (TLS with a
self-signed certificate, scram-sha-256 only over TLS, the master user owning DBName, a random
password), writes `{"username", "password"}` into the instance's MasterUserSecret, as RDS does, and
only then serves its endpoint name in the local cloud's DNS (dns.py). An instance that is deleting
or gone loses its server. `plan()` is the decision, apart from the I/O.

Each server gets an address of its own (instances share port 5432): `BridgeAddresses` adds one to
the run's bridge, so it goes with the bridge at teardown. Without root network changes (tests),
`FixedAddress("127.0.0.1")` puts every server on one address, which then needs distinct ports.
Data lives in /tmp (the `postgres` user must reach it; the local cloud's workdir may be private to
root), logs in `<workdir>/<instance id>/postgres.log`. The password is never logged.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import logging
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol, Self

import boto3

from airtasks.errors import AirtasksError
from airtasks.stack.secrets import self_signed
from airtasks_dev.localcloud.dns import Records
from airtasks_dev.localcloud.network import Network
from airtasks_dev.localcloud.polling import PollLoop

log = logging.getLogger("airtasks.localcloud")

PG_BIN = Path("/usr/lib/postgresql/15/bin")
ENGINE = "postgres"
GONE_STATES = frozenset({"deleting", "deleted"})
# RDS's own superuser; the master user is an ordinary role (it may even be called `postgres`).
SUPERUSER = "rdsadmin"
SCRAM_ITERATIONS = 4096  # PostgreSQL's default scram_iterations


# -------------------------------------------------------------------- the decision
@dataclass(frozen=True)
class DbInstance:
    """What a server needs from one DescribeDBInstances entry."""

    identifier: str
    endpoint: str  # the DNS name clients connect to
    port: int
    master_user: str
    database: str
    secret_arn: str


@dataclass(frozen=True)
class Plan:
    start: list[DbInstance] = field(default_factory=list)
    stop: list[str] = field(default_factory=list)
    skip: list[tuple[str, str]] = field(default_factory=list)  # (identifier, why it is not served)


def plan(described: Sequence[Mapping[str, Any]], known: Collection[str]) -> Plan:
    """From DescribeDBInstances entries and the identifiers already handled (served, or skipped
    before), what to start, what to stop and what cannot be served (with the reason)."""
    result = Plan()
    live: set[str] = set()
    for desc in described:
        identifier = str(desc["DBInstanceIdentifier"])
        if desc.get("Engine") != ENGINE or desc.get("DBInstanceStatus") in GONE_STATES:
            continue
        live.add(identifier)
        if identifier in known:
            continue
        endpoint = desc.get("Endpoint") or {}
        secret = (desc.get("MasterUserSecret") or {}).get("SecretArn")
        if not endpoint.get("Address") or not endpoint.get("Port"):
            # moto gives an endpoint at once; RDS only once the instance is available. Wait for it.
            live.discard(identifier)
        elif not secret:
            result.skip.append(
                (
                    identifier,
                    "it has no MasterUserSecret, so its password cannot be handed over: "
                    "create it with manage_master_user_password = true",
                )
            )
        else:
            result.start.append(
                DbInstance(
                    identifier=identifier,
                    endpoint=str(endpoint["Address"]),
                    port=int(endpoint["Port"]),
                    master_user=str(desc["MasterUsername"]),
                    database=str(desc.get("DBName") or "postgres"),
                    secret_arn=str(secret),
                )
            )
    result.stop.extend(sorted(i for i in known if i not in live))
    return result


def secret_string(instance: DbInstance, password: str) -> str:
    """The MasterUserSecret's value, in the shape RDS writes it."""
    return json.dumps({"username": instance.master_user, "password": password})


def scram_verifier(password: str, salt: bytes | None = None, iterations: int = SCRAM_ITERATIONS) -> str:
    """The scram-sha-256 verifier PostgreSQL stores for `password` (RFC 5802/7677). Handing the
    server the verifier rather than the password keeps the password out of its log and of psql's
    error output. token_urlsafe passwords are ASCII, for which SASLprep changes nothing."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def setup_sql(instance: DbInstance, verifier: str) -> str:
    """The master user (LOGIN, CREATEDB, its password's verifier) and its database."""
    user = _ident(instance.master_user)
    sql = f"CREATE ROLE {user} LOGIN CREATEDB PASSWORD '{verifier}';\n"
    if instance.database == "postgres":  # initdb made it, owned by the superuser
        return sql + f"ALTER DATABASE postgres OWNER TO {user};\n"
    return sql + f"CREATE DATABASE {_ident(instance.database)} OWNER {user};\n"


# -------------------------------------------------------------------- addresses
class AddressPool(Protocol):
    def acquire(self) -> str: ...
    def release(self, address: str) -> None: ...


@dataclass(frozen=True)
class FixedAddress:
    """Every server on one address (tests on 127.0.0.1: the instances' ports must then differ)."""

    address: str

    def acquire(self) -> str:
        return self.address

    def release(self, address: str) -> None:
        pass


@dataclass(frozen=True)
class BridgeAddresses:
    """One address per server, added to the run's bridge (and removed with it)."""

    network: Network

    def acquire(self) -> str:
        return self.network.add_service_address()

    def release(self, address: str) -> None:
        self.network.remove_service_address(address)


# -------------------------------------------------------------------- one server
class Server(Protocol):
    def start(self, password: str) -> None: ...
    def stop(self) -> None: ...


ServerFactory = Callable[[DbInstance, str, Path], Server]


def _as_postgres() -> list[str]:
    """initdb and postgres refuse to run as root: as root, become the `postgres` user (setpriv
    execs, so the PID stays the server's and signals reach it)."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]


class PostgresServer:
    """A PostgreSQL 15 server for one DB instance on address:port. `procs_file`: a cgroup.procs the
    server joins before it execs (so that a crashed run's cleanup finds all its processes);
    `register_dir`: called with the data directory, to be removed by the run's teardown."""

    def __init__(
        self,
        instance: DbInstance,
        address: str,
        workdir: Path,
        *,
        procs_file: Path | None = None,
        register_dir: Callable[[Path], None] | None = None,
        pg_bin: Path = PG_BIN,
        ready_timeout: float = 60.0,
    ) -> None:
        self.instance = instance
        self.address = address
        self.workdir = workdir
        self.procs_file = procs_file
        self.register_dir = register_dir
        self.pg_bin = pg_bin
        self.ready_timeout = ready_timeout
        self.base: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / "postgres.log"

    @property
    def data(self) -> Path:
        assert self.base is not None
        return self.base / "data"

    @property
    def socket_dir(self) -> Path:
        assert self.base is not None
        return self.base / "sock"

    def start(self, password: str) -> None:
        if not (self.pg_bin / "postgres").exists():
            raise AirtasksError(
                f"no PostgreSQL 15 in {self.pg_bin} to play RDS instance {self.instance.identifier}: "
                "apt-get install postgresql-15"
            )
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        try:
            self._init()
            self._run_server()
            self._wait_ready()
            self._psql(setup_sql(self.instance, scram_verifier(password)))
        except BaseException:
            self.stop()
            raise

    def _init(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix=f"airtasks-rds-{self.instance.identifier}-", dir="/tmp"))
        if self.register_dir is not None:
            self.register_dir(self.base)
        self.socket_dir.mkdir(mode=0o700)
        if os.geteuid() == 0:
            for path in (self.base, self.socket_dir):
                shutil.chown(path, "postgres", "postgres")
        self._run(
            [str(self.pg_bin / "initdb"), "-D", str(self.data), "-U", SUPERUSER, "-E", "UTF8", "--no-sync"],
            "initdb",
        )
        # sslmode=require (the stack's, with RDS) encrypts without checking the chain.
        cert, key = self_signed([self.instance.endpoint, self.address], days=30)
        for name, content, mode in (("server.key", key, 0o600), ("server.crt", cert, 0o644)):
            path = self.data / name
            path.write_bytes(content)
            path.chmod(mode)
            if os.geteuid() == 0:
                shutil.chown(path, "postgres", "postgres")
        # The Unix socket (a 0700 directory of the postgres user) is the admin door; over TCP only
        # TLS with scram-sha-256, as RDS with rds.force_ssl (no plain `host` line at all).
        (self.data / "pg_hba.conf").write_text(
            "# Written by the local cloud (airtasks_dev/localcloud/rds.py).\n"
            "local all all trust\n"
            "hostssl all all 0.0.0.0/0 scram-sha-256\n"
        )
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(
                "\n# The local cloud's RDS (airtasks_dev/localcloud/rds.py)\n"
                f"listen_addresses = '{self.address}'\n"
                f"port = {self.instance.port}\n"
                f"unix_socket_directories = '{self.socket_dir}'\n"
                "ssl = on\n"
                "password_encryption = 'scram-sha-256'\n"
                "max_connections = 200\n"
                # A throwaway database: durability buys nothing here and costs the busy machine.
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
            )

    def _run(self, cmd: list[str], what: str, stdin: str | None = None) -> None:
        assert self._log is not None
        self._log.write(f"--- {what}\n".encode())
        self._log.flush()
        proc = subprocess.run(
            [*_as_postgres(), *cmd],
            input=stdin.encode() if stdin is not None else None,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            check=False,
            timeout=120,
        )
        if proc.returncode != 0:
            raise AirtasksError(
                f"{what} for RDS instance {self.instance.identifier} exited {proc.returncode}: "
                f"see {self.log_path}"
            )

    def _run_server(self) -> None:
        cmd = [*_as_postgres(), str(self.pg_bin / "postgres"), "-D", str(self.data)]
        if self.procs_file is not None:
            # Join the cgroup before exec, so every process the server forks is in it from the start.
            cmd = ["sh", "-c", 'echo $$ > "$0" && exec "$@"', str(self.procs_file), *cmd]
        self.process = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd="/",
            start_new_session=True,  # a Ctrl-C on the terminal reaches us, which stops it in order
        )

    def _wait_ready(self) -> None:
        assert self.process is not None
        isready = [str(self.pg_bin / "pg_isready"), "-q", "-h", str(self.socket_dir)]
        isready += ["-p", str(self.instance.port), "-U", SUPERUSER]
        deadline = time.monotonic() + self.ready_timeout
        while True:
            if self.process.poll() is not None:
                raise AirtasksError(
                    f"PostgreSQL for RDS instance {self.instance.identifier} exited "
                    f"{self.process.returncode} on start (port {self.address}:{self.instance.port} taken?): "
                    f"see {self.log_path}"
                )
            if subprocess.run([*_as_postgres(), *isready], check=False).returncode == 0:
                return
            if time.monotonic() > deadline:
                raise AirtasksError(
                    f"PostgreSQL for RDS instance {self.instance.identifier} did not accept connections "
                    f"within {self.ready_timeout:.0f}s: see {self.log_path}"
                )
            time.sleep(0.2)

    def _psql(self, sql: str) -> None:
        cmd = [str(self.pg_bin / "psql"), "-h", str(self.socket_dir), "-p", str(self.instance.port)]
        cmd += ["-U", SUPERUSER, "-d", "postgres", "-XAtq", "-v", "ON_ERROR_STOP=1", "-f", "-"]
        self._run(cmd, "setup of the master user and database", stdin=sql)

    def stop(self) -> None:
        """Fast shutdown (SIGINT), SIGKILL after 15 s; the data directory goes, the log stays."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        if self.base is not None:
            shutil.rmtree(self.base, ignore_errors=True)
        if self._log is not None:
            self._log.close()
            self._log = None


# -------------------------------------------------------------------- the emulator
@dataclass
class Served:
    instance: DbInstance
    address: str
    server: Server


class RdsEmulator(PollLoop):
    """Watches moto's RDS and runs a PostgreSQL server per `postgres` DB instance. Context manager.

    It asks every 3 s by default: an instance is served seconds after an apply creates it, and
    moto (which answers one request at a time) is not kept busy by a question that rarely changes.
    """

    def __init__(
        self,
        endpoint_url: str,
        workdir: Path,
        *,
        addresses: AddressPool,
        records: Records | None = None,
        server_factory: ServerFactory | None = None,
        region: str = "us-east-1",
        poll_interval: float = 3.0,
        rds_client: Any = None,
        secrets_client: Any = None,
    ) -> None:
        super().__init__("rds-emulator", poll_interval)
        self.workdir = workdir
        self.addresses = addresses
        self.records = records if records is not None else Records()
        self.server_factory: ServerFactory = server_factory or PostgresServer
        self.served: dict[str, Served] = {}
        self.skipped: dict[str, str] = {}  # identifier -> why it is not served (reported once)
        self._lock = threading.Lock()
        creds: dict[str, Any] = {
            "endpoint_url": endpoint_url,
            "region_name": region,
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
        }
        self._rds = rds_client if rds_client is not None else boto3.client("rds", **creds)
        self._secrets = (
            secrets_client if secrets_client is not None else boto3.client("secretsmanager", **creds)
        )

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> Self:
        self.workdir.mkdir(parents=True, exist_ok=True)
        return super().start()

    def stop(self) -> None:
        """Stop watching and stop every server."""
        self.stop_polling(timeout=120)
        with self._lock:
            identifiers = list(self.served)
        for identifier in identifiers:
            self._stop_one(identifier)

    # ---------------------------------------------------------------- the loop
    def poll(self) -> None:
        """One pass: serve new instances, stop deleted ones."""
        described: list[Mapping[str, Any]] = []
        for page in self._rds.get_paginator("describe_db_instances").paginate():
            described.extend(page["DBInstances"])
        with self._lock:
            known = set(self.served) | set(self.skipped)
        decision = plan(described, known)
        for identifier, why in decision.skip:
            self.skipped[identifier] = why
            self.errors.append(f"{identifier}: not served: {why}")
            log.warning("rds %s: not served: %s", identifier, why)
        for identifier in decision.stop:
            self._stop_one(identifier)
        for instance in decision.start:
            if self._stop.is_set():
                return
            self._start_one(instance)

    def _start_one(self, instance: DbInstance) -> None:
        """Server up, then the secret, then the name: a client that resolves the name finds the
        secret already right."""
        identifier = instance.identifier
        address = self.addresses.acquire()
        server: Server | None = None
        try:
            server = self.server_factory(instance, address, self.workdir / identifier)
            password = secrets.token_urlsafe(24)
            server.start(password)
            self._secrets.put_secret_value(
                SecretId=instance.secret_arn, SecretString=secret_string(instance, password)
            )
        except Exception as exc:
            if server is not None:
                with contextlib.suppress(Exception):
                    server.stop()
            self.addresses.release(address)
            # Not retried every poll: a server that failed once is likely to fail again.
            self.skipped[identifier] = f"failed to start: {exc}"
            self.errors.append(f"{identifier}: {exc}")
            log.warning("rds %s: failed to start: %s", identifier, exc)
            return
        self.records.set(instance.endpoint, address)
        with self._lock:
            self.served[identifier] = Served(instance, address, server)
        log.info("rds %s: serving %s on %s:%s", identifier, instance.endpoint, address, instance.port)

    def _stop_one(self, identifier: str) -> None:
        """Name first (no new client finds it), then the server; it leaves `served` once stopped."""
        self.skipped.pop(identifier, None)
        with self._lock:
            served = self.served.get(identifier)
        if served is None:
            return
        self.records.remove(served.instance.endpoint)
        try:
            served.server.stop()
        except Exception as exc:
            self.errors.append(f"{identifier}: stop: {exc}")
        finally:
            self.addresses.release(served.address)
            with self._lock:
                self.served.pop(identifier, None)
        log.info("rds %s: stopped", identifier)

    # ---------------------------------------------------------------- what tests and `make up` read
    def wait_served(self, identifier: str, timeout: float = 120) -> Served:
        """Wait until the instance is served (secret written); raise with the errors otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                served = self.served.get(identifier)
            if served is not None:
                return served
            if identifier in self.skipped:
                raise AirtasksError(f"RDS instance {identifier} is not served: {self.skipped[identifier]}")
            if time.monotonic() > deadline:
                raise AirtasksError(
                    f"RDS instance {identifier} was not served within {timeout:.0f}s "
                    f"(errors: {self.errors or 'none'}); is it a postgres instance in this region?"
                )
            time.sleep(0.2)
