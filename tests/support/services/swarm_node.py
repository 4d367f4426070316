"""An extra Swarm node for tests: a second dockerd on this machine with its own hostname.

It runs in the host's network namespace but in its own UTS namespace (`unshare --uts`, so its
Swarm node hostname is a fake instance id) and advertises 127.0.0.<n>, so its Swarm ports do not
clash with the manager's on 127.0.0.1. Killing it makes a real Down node.

Careful: in the host's network namespace a dockerd started with `--bridge=none` deletes the
host's `docker0` (moby removes the default bridge interface when the bridge is disabled). So each
extra dockerd gets a bridge of its own (`--bridge=atn<n>`), created here and deleted after, and
never touches docker0 or iptables.

Also: a tiny local image (dash + sleep, `docker import`), since nothing can be pulled here.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker

TINY_IMAGE = "airtasks-test/tiny:1"


@dataclass
class SwarmNode:
    hostname: str
    address: str
    root: Path
    process: subprocess.Popen[bytes]

    @property
    def socket(self) -> str:
        return f"unix://{self.root}/docker.sock"

    def client(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.socket, timeout=60)

    def kill(self) -> None:
        """Hard stop, as when the VM is gone: the manager then marks the node Down."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=20)


@contextlib.contextmanager
def extra_dockerd(hostname: str, address: str, labels: dict[str, str]) -> Iterator[SwarmNode]:
    root = Path(tempfile.mkdtemp(prefix="airtasks-node-", dir="/tmp"))
    last = int(address.rsplit(".", 1)[1])
    bridge = f"atn{last}"
    subprocess.run(["ip", "link", "del", bridge], capture_output=True, check=False)  # a leftover
    subprocess.run(["ip", "link", "add", bridge, "type", "bridge"], check=True)
    subprocess.run(["ip", "addr", "add", f"10.231.{last}.1/24", "dev", bridge], check=True)
    (root / "daemon.json").write_text(json.dumps({"labels": [f"{k}={v}" for k, v in labels.items()]}))
    cmd = (
        f"hostname {hostname} && exec dockerd --config-file {root}/daemon.json --data-root {root}/data "
        f"--exec-root {root}/exec --pidfile {root}/docker.pid -H unix://{root}/docker.sock "
        f"--bridge={bridge} --iptables=false --ip-masq=false --ip6tables=false"
    )
    log = open(root / "dockerd.log", "ab")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        ["unshare", "--uts", "sh", "-c", cmd], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    node = SwarmNode(hostname, address, root, proc)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"extra dockerd exited {proc.returncode}: {(root / 'dockerd.log').read_text()[-2000:]}"
                )
            try:
                node.client().ping()
                break
            except docker.errors.DockerException:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"extra dockerd for {hostname} did not answer in 60s") from None
                time.sleep(0.3)
        yield node
    finally:
        node.kill()
        log.close()
        # containerd shims and mounts live under the root: unmount anything left, then remove.
        subprocess.run(
            ["sh", "-c", f"grep -o ' {root}[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l"],
            check=False,
        )
        shutil.rmtree(root, ignore_errors=True)
        subprocess.run(["ip", "link", "del", bridge], capture_output=True, check=False)


def join(node: SwarmNode, manager: docker.DockerClient) -> str:
    """Join `node` to the manager's Swarm as a worker; returns its Swarm node id."""
    token = manager.swarm.attrs["JoinTokens"]["Worker"]
    manager_addr = manager.info()["Swarm"]["RemoteManagers"][0]["Addr"]
    client = node.client()
    client.swarm.join(
        remote_addrs=[manager_addr],
        join_token=token,
        listen_addr=f"{node.address}:2377",
        advertise_addr=node.address,
        data_path_addr=node.address,
    )
    return str(client.info()["Swarm"]["NodeID"])


def _add(tar: tarfile.TarFile, path: str, arcname: str | None = None) -> None:
    real = os.path.realpath(path)
    info = tar.gettarinfo(real, arcname=(arcname or path).lstrip("/"))
    with open(real, "rb") as fh:
        tar.addfile(info, fh)


def tiny_image(client: docker.DockerClient) -> str:
    """`airtasks-test/tiny:1`: /bin/sh (dash) and /bin/sleep with their libraries; built once."""
    with contextlib.suppress(docker.errors.ImageNotFound):
        client.images.get(TINY_IMAGE)
        return TINY_IMAGE
    files = {"/bin/sh": "/bin/dash", "/bin/sleep": "/bin/sleep"}
    libs: set[str] = set()
    for real in files.values():
        out = subprocess.run(["ldd", real], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            parts = line.split()
            libs.update(p for p in parts if p.startswith("/"))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for dest, real in files.items():
            _add(tar, real, dest)
        for lib in sorted(libs):
            _add(tar, lib)
    repo, tag = TINY_IMAGE.split(":")
    client.api.import_image_from_data(buf.getvalue(), repository=repo, tag=tag)
    return TINY_IMAGE
