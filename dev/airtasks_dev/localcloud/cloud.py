"""The whole local cloud in one context manager: bridge, moto, registry, DNS and RDS on it.

    with local_cloud(Path(".run/cloud")) as cloud:
        ref = cloud.registry.push("airtasks:latest", "airtasks/airtasks:latest")
        env = cloud.aws_env()            # for terraform / boto3 / the airtasks CLI on the host
        with cloud.runner("demo") as runner:   # instances tagged airtasks:cluster=demo boot
            ...
        cloud.rds.wait_served("airflow-db")  # a postgres DB instance in moto is a real server

What `make up MODE=cluster` and the e2e fixtures share. Leftovers of a crashed earlier run are
removed first; everything is removed at the end (also by the next run if this process dies).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from airtasks_dev.devstack.moto import MotoServer, run_moto
from airtasks_dev.localcloud import cgroups
from airtasks_dev.localcloud.dns import DnsServer
from airtasks_dev.localcloud.network import Network, cleanup_leftovers
from airtasks_dev.localcloud.node import ensure_tools
from airtasks_dev.localcloud.rds import BridgeAddresses, DbInstance, PostgresServer, RdsEmulator
from airtasks_dev.localcloud.registry import Registry
from airtasks_dev.localcloud.runner import NodeRunner


@dataclass(frozen=True)
class LocalCloud:
    network: Network
    moto: MotoServer
    registry: Registry
    workdir: Path
    dns: DnsServer
    rds: RdsEmulator

    def aws_env(self, region: str = "us-east-1") -> dict[str, str]:
        """Environment for host-side clients of the local AWS API (moto on the bridge)."""
        return self.moto.env(region)

    def runner(self, cluster: str, **kwargs: object) -> NodeRunner:
        """A NodeRunner for `cluster` whose nodes trust the registry; logs under workdir/<cluster>."""
        return NodeRunner(
            self.network,
            cluster,
            self.moto.url,
            self.workdir / "nodes" / cluster,
            insecure_registries=[self.registry.address],
            **kwargs,  # type: ignore[arg-type]
        )


@contextlib.contextmanager
def local_cloud(workdir: Path) -> Iterator[LocalCloud]:
    ensure_tools()
    cleanup_leftovers()
    workdir.mkdir(parents=True, exist_ok=True)
    with (
        Network.create() as network,
        run_moto(host=network.gateway, log=workdir / "moto.log") as moto,
    ):
        network.adopt(moto.process.pid)

        def postgres(instance: DbInstance, address: str, logs: Path) -> PostgresServer:
            # In the run's services cgroup from its first instruction, its data dir registered:
            # a crashed run's cleanup ends the server and removes its data.
            procs = cgroups.procs_file(network.run_id, "services")
            return PostgresServer(
                instance, address, logs, procs_file=procs, register_dir=network.register_dir
            )

        with (
            Registry(network, workdir / "registry") as registry,
            DnsServer(network.gateway) as dns,
            RdsEmulator(
                moto.url,
                workdir / "rds",
                addresses=BridgeAddresses(network),
                records=dns.records,
                server_factory=postgres,
            ) as rds,
        ):
            yield LocalCloud(network, moto, registry, workdir, dns, rds)
