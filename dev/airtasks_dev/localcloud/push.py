"""Push a host dockerd image to a registry with uncompressed layers (`docker save` | registry API).

`docker push` gzips every layer, which is what makes it slow here: ~1.3 GB of stack images took
1-3 minutes of both cores, and every node's pull then spent as long again un-gzipping. Between
two processes on one machine compression buys nothing, so this pushes the layers as `docker save`
has them: an image manifest (Docker schema 2) whose layers are `application/vnd.docker.image.
rootfs.diff.tar`, each digest being the layer's diff id. The docker daemons pull that like any
image (the registry API is the same; they only skip the decompression), and `docker stack deploy`
pins its digest as usual. Layers the repository has already are not sent again.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import tarfile
from collections.abc import Iterator
from typing import IO, Any

import httpx

from airtasks_dev.localcloud._sys import LocalCloudError

MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_TYPE = "application/vnd.docker.container.image.v1+json"
LAYER_TYPE = "application/vnd.docker.image.rootfs.diff.tar"
CHUNK = 1 << 20


def _inspect(docker_cli: str, image: str) -> dict[str, Any]:
    out = subprocess.run([docker_cli, "image", "inspect", image], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise LocalCloudError(f"no image {image} in the host dockerd: {out.stderr.strip()}")
    return dict(json.loads(out.stdout)[0])


class _Uploader:
    def __init__(self, client: httpx.Client, repository: str) -> None:
        self.client = client
        self.repository = repository

    def size(self, digest: str) -> int | None:
        """The blob's size if the repository has it, else None."""
        r = self.client.head(f"/v2/{self.repository}/blobs/{digest}")
        return int(r.headers["content-length"]) if r.status_code == 200 else None

    def _start(self) -> str:
        r = self.client.post(f"/v2/{self.repository}/blobs/uploads/")
        if r.status_code != 202:
            raise LocalCloudError(
                f"registry refused an upload to {self.repository}: {r.status_code} {r.text}"
            )
        return str(r.headers["location"])

    def _finish(self, location: str, digest: str) -> None:
        sep = "&" if "?" in location else "?"
        r = self.client.put(f"{location}{sep}digest={digest}")
        if r.status_code != 201:
            raise LocalCloudError(
                f"registry refused blob {digest} of {self.repository}: {r.status_code} {r.text}"
            )

    def blob(self, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if self.size(digest) is None:
            location = self._start()
            r = self.client.patch(
                location, content=data, headers={"Content-Type": "application/octet-stream"}
            )
            if r.status_code != 202:
                raise LocalCloudError(f"upload to {self.repository} failed: {r.status_code} {r.text}")
            self._finish(str(r.headers["location"]), digest)
        return digest

    def stream(self, fileobj: IO[bytes]) -> tuple[str, int]:
        """Upload a stream whose digest is known only at its end; returns (digest, size)."""
        sha = hashlib.sha256()
        size = 0

        def chunks() -> Iterator[bytes]:
            nonlocal size
            while chunk := fileobj.read(CHUNK):
                sha.update(chunk)
                size += len(chunk)
                yield chunk

        location = self._start()
        r = self.client.patch(
            location, content=chunks(), headers={"Content-Type": "application/octet-stream"}
        )
        if r.status_code != 202:
            raise LocalCloudError(f"upload to {self.repository} failed: {r.status_code} {r.text}")
        digest = "sha256:" + sha.hexdigest()
        self._finish(str(r.headers["location"]), digest)
        return digest, size


def push_uncompressed(docker_cli: str, image: str, registry: str, name: str, timeout: float = 1800) -> str:
    """Push host image `image` as `<registry>/<name>` (name = repository:tag); returns the manifest digest."""
    last = name.rsplit("/", 1)[-1]
    repository, tag = (name.rsplit(":", 1)[0], last.rsplit(":", 1)[1]) if ":" in last else (name, "latest")
    diff_ids: list[str] = list(_inspect(docker_cli, image)["RootFS"]["Layers"])
    with httpx.Client(base_url=f"http://{registry}", timeout=httpx.Timeout(timeout, connect=10)) as client:
        up = _Uploader(client, repository)
        sizes: dict[str, int] = {}
        config = _send_layers(docker_cli, image, up, sizes, timeout)
        missing = [d for d in diff_ids if d not in sizes]
        if missing:
            raise LocalCloudError(f"docker save of {image} did not hold its layers {missing}")
        config_digest = up.blob(config)
        manifest = {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": {"mediaType": CONFIG_TYPE, "size": len(config), "digest": config_digest},
            "layers": [{"mediaType": LAYER_TYPE, "size": sizes[d], "digest": d} for d in diff_ids],
        }
        body = json.dumps(manifest, indent=2).encode()
        r = client.put(
            f"/v2/{repository}/manifests/{tag}", content=body, headers={"Content-Type": MANIFEST_TYPE}
        )
        if r.status_code != 201:
            raise LocalCloudError(f"registry refused the manifest of {name}: {r.status_code} {r.text}")
        return "sha256:" + hashlib.sha256(body).hexdigest()


def _send_layers(docker_cli: str, image: str, up: _Uploader, sizes: dict[str, int], timeout: float) -> bytes:
    """Stream `docker save` into the registry, layer by layer; return the image config blob."""
    config: bytes | None = None
    save = subprocess.Popen([docker_cli, "save", image], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert save.stdout is not None
    try:
        with tarfile.open(fileobj=save.stdout, mode="r|") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                data = tar.extractfile(member)
                assert data is not None
                if member.name.endswith("/layer.tar"):
                    digest, size = up.stream(data)
                    sizes[digest] = size
                elif (
                    member.name.endswith(".json")
                    and "/" not in member.name
                    and member.name != "manifest.json"
                ):
                    config = data.read()
    finally:
        save.stdout.close()
        code = save.wait(timeout=timeout)
    if code != 0:
        err = save.stderr.read().decode() if save.stderr else ""
        raise LocalCloudError(f"docker save {image} failed: {err.strip()}")
    if config is None:
        raise LocalCloudError(f"docker save of {image} held no image config")
    return config
