"""The local cloud playing RDS, without root or network: which DB instances get a server (plan),
and what the emulator does around it (server, secret, DNS name, address) with fakes for the I/O."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest

from airtasks_dev.localcloud.rds import (
    DbInstance,
    RdsEmulator,
    plan,
    scram_verifier,
    secret_string,
    setup_sql,
)

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-1-AbCdEf"


def described(identifier: str = "db1", **extra: Any) -> dict[str, Any]:
    return {
        "DBInstanceIdentifier": identifier,
        "Engine": "postgres",
        "DBInstanceStatus": "available",
        "Endpoint": {"Address": f"{identifier}.aaaaaaaaaa.us-east-1.rds.amazonaws.com", "Port": 5432},
        "MasterUsername": "airflow",
        "DBName": "airflow",
        "MasterUserSecret": {"SecretArn": ARN, "SecretStatus": "active"},
        **extra,
    }


# -------------------------------------------------------------------- plan
def test_a_new_postgres_instance_is_started_with_its_endpoint_user_and_secret() -> None:
    result = plan([described()], known=set())
    assert result.start == [
        DbInstance("db1", "db1.aaaaaaaaaa.us-east-1.rds.amazonaws.com", 5432, "airflow", "airflow", ARN)
    ]
    assert result.stop == []
    assert result.skip == []


def test_an_instance_already_known_is_not_started_again() -> None:
    assert plan([described()], known={"db1"}).start == []
    assert plan([described()], known={"db1"}).stop == []


def test_other_engines_are_ignored() -> None:
    result = plan([described(Engine="mysql"), described("db2", Engine="aurora-postgresql")], known=set())
    assert result.start == []
    assert result.skip == []


def test_a_gone_or_deleting_instance_is_stopped() -> None:
    result = plan([described("db1", DBInstanceStatus="deleting")], known={"db1", "db2"})
    assert result.stop == ["db1", "db2"]
    assert result.start == []


def test_an_instance_that_stopped_being_postgres_is_stopped() -> None:
    # Not a thing RDS does, but the rule is: what is not a live postgres instance has no server.
    assert plan([described(Engine="mysql")], known={"db1"}).stop == ["db1"]


def test_no_db_name_means_the_postgres_database() -> None:
    assert plan([described(DBName=None)], known=set()).start[0].database == "postgres"


def test_an_instance_without_a_managed_secret_is_skipped_with_the_fix() -> None:
    result = plan([described(MasterUserSecret=None)], known=set())
    assert result.start == []
    assert result.skip[0][0] == "db1"
    assert "manage_master_user_password" in result.skip[0][1]


def test_an_instance_without_an_endpoint_yet_waits() -> None:
    result = plan([described(Endpoint=None, DBInstanceStatus="creating")], known=set())
    assert (result.start, result.stop, result.skip) == ([], [], [])


# -------------------------------------------------------------------- secret, SQL, verifier
def test_the_secret_has_rdss_shape_with_the_master_user() -> None:
    instance = plan([described(MasterUsername="master")], known=set()).start[0]
    assert json.loads(secret_string(instance, "pw")) == {"username": "master", "password": "pw"}


def test_the_verifier_is_postgres_scram_sha_256() -> None:
    salt = b"0123456789abcdef"
    verifier = scram_verifier("s3cret", salt=salt)
    head, keys = verifier.split("$", 1)[1].split("$")
    assert verifier.startswith("SCRAM-SHA-256$4096:")
    assert base64.b64decode(head.split(":")[1]) == salt
    salted = hashlib.pbkdf2_hmac("sha256", b"s3cret", salt, 4096)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    assert base64.b64decode(keys.split(":")[0]) == hashlib.sha256(client_key).digest()
    assert "s3cret" not in verifier


def test_setup_sql_quotes_names_and_keeps_the_password_out() -> None:
    instance = DbInstance("db1", "e", 5432, 'we"ird', "postgres", ARN)
    sql = setup_sql(instance, scram_verifier("s3cret"))
    assert 'CREATE ROLE "we""ird" LOGIN CREATEDB' in sql
    assert 'ALTER DATABASE postgres OWNER TO "we""ird"' in sql
    assert "s3cret" not in sql
    other = setup_sql(DbInstance("db1", "e", 5432, "airflow", "airflow", ARN), "v")
    assert 'CREATE DATABASE "airflow" OWNER "airflow"' in other


# -------------------------------------------------------------------- the emulator with fakes
class FakeRds:
    def __init__(self) -> None:
        self.instances: list[dict[str, Any]] = []

    def get_paginator(self, name: str) -> FakeRds:
        assert name == "describe_db_instances"
        return self

    def paginate(self) -> list[dict[str, Any]]:
        return [{"DBInstances": list(self.instances)}]


class FakeSecrets:
    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def put_secret_value(self, SecretId: str, SecretString: str) -> None:
        self.values[SecretId] = SecretString


class FakeServer:
    def __init__(self, events: list[str], instance: DbInstance, address: str, fail: bool = False) -> None:
        self.events, self.instance, self.address, self.fail = events, instance, address, fail
        self.password: str | None = None

    def start(self, password: str) -> None:
        if self.fail:
            raise RuntimeError("port taken")
        self.password = password
        self.events.append(f"start {self.instance.identifier} {self.address}")

    def stop(self) -> None:
        self.events.append(f"stop {self.instance.identifier}")


class FakeAddresses:
    def __init__(self) -> None:
        self.next = 10
        self.held: set[str] = set()

    def acquire(self) -> str:
        address = f"10.213.0.{self.next}"
        self.next += 1
        self.held.add(address)
        return address

    def release(self, address: str) -> None:
        self.held.remove(address)


class Harness:
    def __init__(self, tmp_path: Path, failing: frozenset[str] = frozenset()) -> None:
        self.events: list[str] = []
        self.servers: dict[str, FakeServer] = {}
        self.rds, self.secrets, self.addresses = FakeRds(), FakeSecrets(), FakeAddresses()

        def factory(instance: DbInstance, address: str, workdir: Path) -> FakeServer:
            assert workdir == tmp_path / instance.identifier
            server = FakeServer(self.events, instance, address, instance.identifier in failing)
            self.servers[instance.identifier] = server
            return server

        self.emulator = RdsEmulator(
            "http://unused",
            tmp_path,
            addresses=self.addresses,
            server_factory=factory,
            rds_client=self.rds,
            secrets_client=self.secrets,
        )


def test_a_new_instance_is_served_and_its_secret_names_the_master_user(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.rds.instances = [described(MasterUsername="master")]
    h.emulator.poll()
    assert h.events == ["start db1 10.213.0.10"]
    secret = json.loads(h.secrets.values[ARN])
    assert secret == {"username": "master", "password": h.servers["db1"].password}
    assert len(secret["password"]) >= 24
    assert h.emulator.records.snapshot() == {"db1.aaaaaaaaaa.us-east-1.rds.amazonaws.com": "10.213.0.10"}
    assert set(h.emulator.served) == {"db1"}
    assert h.emulator.wait_served("db1", timeout=0).address == "10.213.0.10"


def test_an_instance_seen_twice_is_started_once(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.rds.instances = [described()]
    h.emulator.poll()
    h.emulator.poll()
    assert h.events == ["start db1 10.213.0.10"]


def test_a_deleted_instance_is_stopped_and_its_name_and_address_go(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.rds.instances = [described("db1"), described("db2")]
    h.emulator.poll()
    h.rds.instances = [described("db2", DBInstanceStatus="deleting")]
    h.emulator.poll()
    h.rds.instances = []
    h.emulator.poll()
    assert h.events == ["start db1 10.213.0.10", "start db2 10.213.0.11", "stop db1", "stop db2"]
    assert h.emulator.served == {}
    assert h.emulator.records.snapshot() == {}
    assert h.addresses.held == set()


def test_other_engines_get_no_server(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.rds.instances = [described(Engine="mysql")]
    h.emulator.poll()
    assert h.events == []
    assert h.secrets.values == {}


def test_a_server_that_fails_to_start_writes_no_secret_and_is_not_retried(tmp_path: Path) -> None:
    h = Harness(tmp_path, failing=frozenset({"db1"}))
    h.rds.instances = [described()]
    h.emulator.poll()
    h.emulator.poll()
    assert h.events == ["stop db1"]  # what it started of itself is cleaned up, once
    assert h.secrets.values == {}
    assert h.emulator.records.snapshot() == {}
    assert h.addresses.held == set()
    assert h.emulator.errors == ["db1: port taken"]
    with pytest.raises(Exception, match="db1 is not served: failed to start: port taken"):
        h.emulator.wait_served("db1", timeout=0)


def test_stop_stops_every_server(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.rds.instances = [described("db1"), described("db2")]
    h.emulator.poll()
    h.emulator.stop()
    assert sorted(h.events[2:]) == ["stop db1", "stop db2"]
    assert h.addresses.held == set()


def test_the_password_is_not_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    h = Harness(tmp_path)
    h.rds.instances = [described()]
    with caplog.at_level("DEBUG"):
        h.emulator.poll()
    password = h.servers["db1"].password
    assert password is not None
    assert password not in caplog.text
