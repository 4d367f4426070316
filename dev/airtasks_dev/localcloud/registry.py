"""Images for the nodes: a local registry (Debian `docker-registry`) on the bridge, or save | load.

Nothing can be pulled from outside, so images built in the host dockerd reach the nodes one of two
ways:
- `Registry`: the registry serves the bridge address (the nodes' dockerd trust it through
  `--insecure-registry`); a second registry process on 127.0.0.1 shares the same storage (for
  `docker push` from the host dockerd, which trusts loopback registries by default and whose
  configuration is shared, so it is not changed). `push()` does not use `docker push` though: it
  streams `docker save` into the registry with uncompressed layers (`push.py`), several times
  faster here than gzip on both ends. Nodes pull `<bridge ip>:<port>/<name>:<tag>`, and the Swarm
  manager pins the digest, as with any registry.
- `save_load()`: `docker save` from the host piped into `docker load` on one node.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from airtasks_dev.devstack.moto import free_port
from airtasks_dev.localcloud import cgroups
from airtasks_dev.localcloud._sys import LocalCloudError, kill
from airtasks_dev.localcloud.network import Network
from airtasks_dev.localcloud.node import HOST_DOCKER_CLI, Node, _in_cgroup
from airtasks_dev.localcloud.push import push_uncompressed

REGISTRY_BIN = "/usr/bin/docker-registry"

_CONFIG = """\
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
http:
  addr: {addr}
"""


@dataclass
class Registry:
    """A registry for one run: `start()`, `push()` host images, `stop()` (also via the run's teardown)."""

    network: Network
    workdir: Path
    port: int = 0
    push_port: int = 0
    _procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def address(self) -> str:
        """host:port as nodes reach it (and as `--insecure-registry` names it)."""
        return f"{self.network.gateway}:{self.port}"

    @property
    def push_address(self) -> str:
        return f"127.0.0.1:{self.push_port}"

    def start(self) -> Registry:
        storage = self.workdir / "storage"
        storage.mkdir(parents=True, exist_ok=True)
        self.network.register_dir(storage)
        self.port = self.port or free_port(self.network.gateway)
        self.push_port = self.push_port or free_port("127.0.0.1")
        procs = cgroups.procs_file(self.network.run_id, "services")
        for name, addr in (("bridge", self.address), ("push", self.push_address)):
            config = self.workdir / f"registry-{name}.yml"
            config.write_text(_CONFIG.format(storage=storage, addr=addr))
            log = open(self.workdir / f"registry-{name}.log", "ab")  # noqa: SIM115 - owned by the process
            self._procs.append(
                subprocess.Popen(
                    _in_cgroup(procs, [REGISTRY_BIN, "serve", str(config)]),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
            log.close()
        for addr in (self.address, self.push_address):
            self._wait(addr)
        return self

    def _wait(self, addr: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"http://{addr}/v2/", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if any(p.poll() is not None for p in self._procs):
                raise LocalCloudError(f"docker-registry exited; see {self.workdir}/registry-*.log")
            if time.monotonic() > deadline:
                raise LocalCloudError(f"docker-registry on {addr} did not answer within {timeout:.0f}s")
            time.sleep(0.1)

    def stop(self) -> None:
        for proc in self._procs:
            kill(proc.pid)
            proc.wait(timeout=10)
        self._procs.clear()

    def __enter__(self) -> Registry:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def ref(self, name: str) -> str:
        """The reference nodes use for `name` (repository[:tag]) in this registry."""
        return f"{self.address}/{name}"

    def push(self, image: str, name: str | None = None) -> str:
        """Push a host dockerd image; returns the reference nodes pull (`<bridge ip>:<port>/<name>`)."""
        name = name or image
        push_uncompressed(HOST_DOCKER_CLI, image, self.push_address, name)
        return self.ref(name)


def save_load(node: Node, image: str, timeout: float = 1800) -> None:
    """Copy a host dockerd image into one node: `docker save | docker load`."""
    save = subprocess.Popen([HOST_DOCKER_CLI, "save", image], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    load = subprocess.run(
        node.command([HOST_DOCKER_CLI, "load", "--quiet"]),
        stdin=save.stdout,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert save.stdout is not None
    save.stdout.close()
    if save.wait(timeout=timeout) != 0 or load.returncode != 0:
        err = (save.stderr.read().decode() if save.stderr else "") + load.stderr
        raise LocalCloudError(
            f"docker save {image} | docker load on {node.instance_id} failed: {err.strip()}"
        )
