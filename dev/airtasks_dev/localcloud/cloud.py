"""The whole local cloud in one context manager: bridge, moto on it, registry on it.

    with local_cloud(Path(".run/cloud")) as cloud:
        ref = cloud.registry.push("airtasks:latest", "airtasks/airtasks:latest")
        env = cloud.aws_env()            # for terraform / boto3 / the airtasks CLI on the host
        with cloud.runner("demo") as runner:   # instances tagged airtasks:cluster=demo boot
            ...

What `make up MODE=cluster` and the e2e fixtures share. Leftovers of a crashed earlier run are
removed first; everything is removed at the end (also by the next run if this process dies).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from airtasks_dev.devstack.moto import MotoServer, run_moto
from airtasks_dev.localcloud.network import Network, cleanup_leftovers
from airtasks_dev.localcloud.node import ensure_tools
from airtasks_dev.localcloud.registry import Registry
from airtasks_dev.localcloud.runner import NodeRunner


@dataclass(frozen=True)
class LocalCloud:
    network: Network
    moto: MotoServer
    registry: Registry
    workdir: Path

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
        with Registry(network, workdir / "registry") as registry:
            yield LocalCloud(network, moto, registry, workdir)
