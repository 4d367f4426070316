"""The local cloud's RDS emulator with a real PostgreSQL 15 on 127.0.0.1 (no bridge, no netns):
a DB instance made in moto with ManageMasterUserPassword becomes a server that the secret's
username and password open over TLS only, and its deletion ends the server.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import psycopg2
import pytest

from airtasks_dev.devstack.moto import MotoServer, free_port, run_moto
from airtasks_dev.localcloud.rds import FixedAddress, PostgresServer, RdsEmulator

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with run_moto() as server:
        yield server


def test_instance_becomes_a_server_the_secret_opens(moto: MotoServer, tmp_path: Path) -> None:
    env = {"endpoint_url": moto.url, "region_name": "us-east-1"}
    rds = boto3.client("rds", **env)
    secretsmanager = boto3.client("secretsmanager", **env)
    port = free_port()
    rds.create_db_instance(
        DBInstanceIdentifier="airflow-db",
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        AllocatedStorage=20,
        MasterUsername="airflow",
        ManageMasterUserPassword=True,
        DBName="airflow",
        Port=port,
    )
    described = rds.describe_db_instances(DBInstanceIdentifier="airflow-db")["DBInstances"][0]
    arn = described["MasterUserSecret"]["SecretArn"]

    with RdsEmulator(
        moto.url, tmp_path / "rds", addresses=FixedAddress("127.0.0.1"), poll_interval=0.2
    ) as em:
        served = em.wait_served("airflow-db", timeout=90)
        assert em.records.snapshot() == {"airflow-db.aaaaaaaaaa.us-east-1.rds.amazonaws.com": "127.0.0.1"}
        secret = json.loads(secretsmanager.get_secret_value(SecretId=arn)["SecretString"])
        assert secret["username"] == "airflow"

        dsn = {"host": "127.0.0.1", "port": port, "dbname": "airflow", "user": "airflow"}
        with psycopg2.connect(**dsn, password=secret["password"], sslmode="require") as conn:
            cur = conn.cursor()
            cur.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            assert cur.fetchone() == (True,)
            cur.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'airflow'")
            assert cur.fetchone() == ("airflow",)
            cur.execute("CREATE TABLE t (x int)")  # the owner may create in its database
        conn.close()
        with pytest.raises(psycopg2.OperationalError, match=r"no pg_hba\.conf entry"):
            psycopg2.connect(**dsn, password=secret["password"], sslmode="disable")
        with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
            psycopg2.connect(**dsn, password="wrong", sslmode="require")
        log = (tmp_path / "rds/airflow-db/postgres.log").read_text()
        assert secret["password"] not in log

        rds.delete_db_instance(DBInstanceIdentifier="airflow-db", SkipFinalSnapshot=True)
        deadline = time.monotonic() + 30
        while "airflow-db" in em.served and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "airflow-db" not in em.served
        assert em.records.snapshot() == {}
        server = served.server
        assert isinstance(server, PostgresServer)
        assert server.process is not None
        assert server.process.returncode is not None
        assert server.base is not None
        assert not server.base.exists()
    assert em.errors == []
