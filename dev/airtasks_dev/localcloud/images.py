"""A tiny image for the local cloud's own tests, made where nothing can be pulled.

`debootstrap --variant=minbase` of Debian bookworm plus netcat (a listener and a client for the
overlay-network check), imported with `docker import` into the host dockerd and tagged by a hash of
its recipe: a second run finds it and builds nothing (~50 s in a fresh CI, mostly downloads).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

from airtasks_dev.images import BASE_MIRROR, BASE_SUITE, debootstrap_image, image_exists, import_rootfs

MIRROR = BASE_MIRROR
SUITE = BASE_SUITE
REPOSITORY = "airtasks/e2e-base"
INCLUDE = ("netcat-openbsd",)


def e2e_base_tag() -> str:
    recipe = json.dumps({"suite": SUITE, "variant": "minbase", "mirror": MIRROR, "include": INCLUDE})
    return f"{REPOSITORY}:{SUITE}-{hashlib.sha256(recipe.encode()).hexdigest()[:12]}"


def e2e_base_image() -> str:
    """Build (once) and return the tag of the local cloud's test image in the host dockerd."""
    return debootstrap_image(e2e_base_tag(), INCLUDE, "e2e-base")


def tiny_image() -> str:
    """A one-file image (~1 kB) for tests that only move an image around; made in a second."""
    tag = "airtasks/e2e-tiny:1"
    if not image_exists(tag):
        with tempfile.TemporaryDirectory(prefix="airtasks-e2e-tiny-") as tmp:
            (Path(tmp) / "hello").write_text("hello from the local cloud\n")
            import_rootfs(Path(tmp), tag)
    return tag
