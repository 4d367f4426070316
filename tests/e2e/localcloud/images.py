"""A tiny image for the local cloud's own tests, made where nothing can be pulled.

`debootstrap --variant=minbase` of Debian bookworm plus netcat (a listener and a client for the
overlay-network check), imported with `docker import` into the host dockerd and tagged by a hash of
its recipe: a second run finds it and builds nothing (~50 s in a fresh CI, mostly downloads).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

DOCKER_CLI = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else (shutil.which("docker") or "docker")
MIRROR = os.environ.get("AIRTASKS_DEBIAN_MIRROR", "http://deb.debian.org/debian")
SUITE = "bookworm"
REPOSITORY = "airtasks/e2e-base"
INCLUDE = ("netcat-openbsd",)
LOCK_DIR = Path(os.environ.get("AIRTASKS_IMAGE_LOCK_DIR", "/tmp"))


def image_exists(ref: str) -> bool:
    return (
        subprocess.run([DOCKER_CLI, "image", "inspect", ref], capture_output=True, check=False).returncode
        == 0
    )


@contextlib.contextmanager
def _lock(name: str) -> Iterator[None]:
    """Two sessions building the same image wait for each other instead of building twice."""
    with open(LOCK_DIR / f"airtasks-image-{name}.lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def e2e_base_tag() -> str:
    recipe = json.dumps({"suite": SUITE, "variant": "minbase", "mirror": MIRROR, "include": INCLUDE})
    return f"{REPOSITORY}:{SUITE}-{hashlib.sha256(recipe.encode()).hexdigest()[:12]}"


def e2e_base_image() -> str:
    """Build (once) and return the tag of the local cloud's test image in the host dockerd."""
    tag = e2e_base_tag()
    if image_exists(tag):
        return tag
    with _lock("e2e-base"):
        if image_exists(tag):
            return tag
        debootstrap = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
        with tempfile.TemporaryDirectory(prefix="airtasks-e2e-rootfs-") as tmp:
            root = Path(tmp) / "root"
            cmd = [
                debootstrap,
                "--variant=minbase",
                f"--include={','.join(INCLUDE)}",
                SUITE,
                str(root),
                MIRROR,
            ]
            out = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if out.returncode != 0:
                tail = "\n".join((out.stdout + out.stderr).splitlines()[-20:])
                raise RuntimeError(f"debootstrap for {tag} failed:\n{tail}")
            for junk in ("var/lib/apt/lists", "var/cache/apt/archives"):
                for child in (root / junk).glob("*"):
                    if child.is_file():
                        child.unlink()
            tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
            imported = subprocess.run(
                [DOCKER_CLI, "import", "--change", 'CMD ["bash"]', "-", tag],
                stdin=tar.stdout,
                capture_output=True,
                text=True,
                check=False,
            )
            if tar.wait() != 0 or imported.returncode != 0:
                raise RuntimeError(f"docker import of {tag} failed: {imported.stderr.strip()}")
    return tag


def tiny_image() -> str:
    """A one-file image (~1 kB) for tests that only move an image around; made in a second."""
    tag = "airtasks/e2e-tiny:1"
    if not image_exists(tag):
        with tempfile.TemporaryDirectory(prefix="airtasks-e2e-tiny-") as tmp:
            (Path(tmp) / "hello").write_text("hello from the local cloud\n")
            tar = subprocess.Popen(["tar", "-C", tmp, "-c", "."], stdout=subprocess.PIPE)
            imported = subprocess.run(
                [DOCKER_CLI, "import", "-", tag],
                stdin=tar.stdout,
                capture_output=True,
                text=True,
                check=False,
            )
            if tar.wait() != 0 or imported.returncode != 0:
                raise RuntimeError(f"docker import of {tag} failed: {imported.stderr.strip()}")
    return tag
