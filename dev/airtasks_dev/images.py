"""The stack's Docker images, one path on every host: `make up MODE=swarm|cluster` and the tests.

The base is the official slim Python image (docker/Dockerfile's default) where it is present or
can be pulled, and a Debian bookworm minbase made with debootstrap + `docker import` where no
registry can be reached; both are bookworm, so the same Dockerfiles build on either. On it: the
Air-Tasks image (docker/Dockerfile) and one image with PostgreSQL, RabbitMQ and nginx from Debian
packages (dev/images/services.Dockerfile), standing in for the official ones in the local stack.

Every image is tagged by a hash of what it is built from (recipe, Dockerfile, build context files,
build args), so a second run finds it and builds nothing; in a fresh CI each is built once.
"""

from __future__ import annotations

import calendar
import contextlib
import fcntl
import functools
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCKER_CLI = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else (shutil.which("docker") or "docker")
LOCK_DIR = Path(os.environ.get("AIRTASKS_IMAGE_LOCK_DIR", "/tmp"))
# Where PyPI and Debian sit behind a TLS-inspecting proxy, its CA reaches the builds as a BuildKit
# secret (never a layer): the first of these that names a file, else the system bundle.
CA_ENV = ("AIRTASKS_CA_BUNDLE", "AIRTASKS_BUILD_CA_BUNDLE", "PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")
SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"

# docker/Dockerfile's default base. AIRTASKS_BASE_IMAGE overrides the choice: an image reference,
# or `debootstrap` for the Debian base even where the official one could be pulled.
OFFICIAL_BASE = "python:3.11-slim-bookworm"
BASE_ENV = "AIRTASKS_BASE_IMAGE"
# Where no registry answers a pull fails within seconds; a stalled one must not hold the build long.
PULL_TIMEOUT = 120.0

BASE_REPOSITORY = "airtasks-base"
BASE_SUITE = "bookworm"
BASE_MIRROR = os.environ.get("AIRTASKS_DEBIAN_MIRROR", "http://deb.debian.org/debian")
# ca-certificates so apt/pip over HTTPS work in derived images; nothing else beyond minbase.
BASE_INCLUDE = ("ca-certificates",)


def _docker(*args: str, check: bool = True, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([DOCKER_CLI, *args], check=check, text=True, capture_output=True, **kwargs)  # type: ignore[call-overload, no-any-return]


def image_exists(ref: str) -> bool:
    return _docker("image", "inspect", ref, check=False).returncode == 0


@contextlib.contextmanager
def _build_lock(name: str) -> Iterator[None]:
    """Two sessions building the same image wait for each other instead of building twice."""
    with open(LOCK_DIR / f"airtasks-image-{name}.lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _digest(parts: Iterable[bytes]) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:12]


def import_rootfs(root: Path, tag: str, changes: Sequence[str] = ()) -> None:
    """`tar -C root -c . | docker import` as `tag` (with Dockerfile `changes`, e.g. a CMD)."""
    tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
    imported = subprocess.run(
        [DOCKER_CLI, "import", *(a for c in changes for a in ("--change", c)), "-", tag],
        stdin=tar.stdout,
        capture_output=True,
        text=True,
        check=False,
    )
    if tar.wait() != 0 or imported.returncode != 0:
        raise RuntimeError(f"docker import of {tag} failed: {imported.stderr.strip()}")


def debootstrap_image(tag: str, include: Sequence[str], lock: str, suite: str = BASE_SUITE) -> str:
    """`debootstrap --variant=minbase` of `suite` with `include`, imported as `tag` (unless present)."""
    if image_exists(tag):
        return tag
    with _build_lock(lock):
        if image_exists(tag):
            return tag
        debootstrap = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
        with tempfile.TemporaryDirectory(prefix="airtasks-rootfs-") as tmp:
            root = Path(tmp) / "root"
            cmd = [debootstrap, "--variant=minbase", f"--include={','.join(include)}", suite, str(root)]
            out = subprocess.run([*cmd, BASE_MIRROR], capture_output=True, text=True, check=False)
            if out.returncode != 0:
                tail = "\n".join((out.stdout + out.stderr).splitlines()[-20:])
                raise RuntimeError(f"debootstrap for {tag} failed:\n{tail}")
            # Smaller image: apt lists and caches are refetched by whoever installs packages.
            for junk in ("var/lib/apt/lists", "var/cache/apt/archives"):
                for child in (root / junk).glob("*"):
                    if child.is_file():
                        child.unlink()
            import_rootfs(root, tag, ['CMD ["bash"]'])
    return tag


def debootstrap_base() -> str:
    """A Debian bookworm minbase image made with debootstrap + `docker import`; returns its tag."""
    recipe = json.dumps(
        {"suite": BASE_SUITE, "variant": "minbase", "mirror": BASE_MIRROR, "include": BASE_INCLUDE}
    )
    tag = f"{BASE_REPOSITORY}:{BASE_SUITE}-{_digest([recipe.encode()])}"
    return debootstrap_image(tag, BASE_INCLUDE, "base")


def pull(ref: str, timeout: float = PULL_TIMEOUT) -> bool:
    """`docker pull ref`; False when it fails or stalls (no registry reachable from here)."""
    try:
        return _docker("pull", "--quiet", ref, check=False, timeout=timeout).returncode == 0
    except subprocess.TimeoutExpired:
        return False


@functools.cache
def base_image() -> str:
    """The base of the images built here: $AIRTASKS_BASE_IMAGE if set; else the official slim
    Python image if present or pullable; else the debootstrap Debian base. Decided once a process."""
    forced = os.environ.get(BASE_ENV, "").strip()
    if forced == "debootstrap":
        return debootstrap_base()
    if forced:
        return forced
    if image_exists(OFFICIAL_BASE) or pull(OFFICIAL_BASE):
        return OFFICIAL_BASE
    return debootstrap_base()


def ca_bundle() -> str | None:
    candidates = [os.environ.get(k, "") for k in CA_ENV] + [SYSTEM_CA_BUNDLE]
    return next((c for c in candidates if c and Path(c).is_file()), None)


@dataclass(frozen=True)
class ImageSpec:
    """One image: a Dockerfile, the context files that go into it, and its build args."""

    repository: str
    dockerfile: Path
    context: Path
    include: tuple[str, ...]  # paths (relative to context) whose content is hashed
    build_args: dict[str, str] = field(default_factory=dict)
    target: str | None = None

    def files(self) -> list[Path]:
        out: list[Path] = []
        for rel in self.include:
            p = self.context / rel
            if p.is_dir():
                out.extend(
                    f
                    for f in sorted(p.rglob("*"))
                    if f.is_file() and "__pycache__" not in f.parts and not f.name.endswith(".pyc")
                )
            elif p.is_file():
                out.append(p)
        return out

    def content_hash(self) -> str:
        parts = [self.dockerfile.read_bytes(), json.dumps(self.build_args, sort_keys=True).encode()]
        parts.append((self.target or "").encode())
        for f in self.files():
            parts.append(str(f.relative_to(self.context)).encode())
            parts.append(f.read_bytes())
        return _digest(parts)

    def tag(self) -> str:
        return f"{self.repository}:{self.content_hash()}"


@dataclass(frozen=True)
class BuildResult:
    tag: str
    built: bool
    seconds: float


def build(spec: ImageSpec, log: Path | None = None, latest: bool = True) -> BuildResult:
    """Build `spec` unless an image with its content hash exists; also tag it `:latest`."""
    tag = spec.tag()
    start = time.monotonic()
    built = False
    with _build_lock(spec.repository):
        if not image_exists(tag):
            # Host network: the build's RUN steps need no bridge (docker0 may be absent on a shared host).
            cmd = [DOCKER_CLI, "build", "--network", "host", "-f", str(spec.dockerfile), "-t", tag]
            for key, value in spec.build_args.items():
                cmd += ["--build-arg", f"{key}={value}"]
            if spec.target:
                cmd += ["--target", spec.target]
            ca = ca_bundle()
            if ca:
                cmd += ["--secret", f"id=ca,src={ca}"]
            cmd += ["--progress=plain", str(spec.context)]
            env = dict(os.environ, DOCKER_BUILDKIT="1")
            out = subprocess.run(cmd, env=env, text=True, capture_output=True, check=False)
            if log is not None:
                log.parent.mkdir(parents=True, exist_ok=True)
                log.write_text(out.stdout + out.stderr)
            if out.returncode != 0:
                tail = "\n".join((out.stdout + out.stderr).splitlines()[-40:])
                raise RuntimeError(f"docker build of {tag} failed:\n{tail}")
            built = True
        if latest:
            _docker("tag", tag, f"{spec.repository}:latest")
        if built:
            prune_old_tags(spec.repository, keep=tag)
    return BuildResult(tag, built, time.monotonic() - start)


PRUNE_AFTER_SECONDS = 24 * 3600


def prune_old_tags(repository: str, keep: str) -> None:
    """Drop this repository's content-hash tags older than a day (each change of the inputs makes a
    new one). Younger ones may belong to another checkout's session on this machine, mid-run."""
    out = _docker("images", repository, "--format", "{{.Repository}}:{{.Tag}} {{.CreatedAt}}", check=False)
    now = time.time()
    for line in out.stdout.splitlines():
        ref, _, created = line.partition(" ")
        if ref == keep or ref.endswith(":latest"):
            continue
        try:
            age = now - calendar.timegm(time.strptime(created[:19], "%Y-%m-%d %H:%M:%S"))
        except ValueError:
            continue
        if age > PRUNE_AFTER_SECONDS:
            _docker("rmi", ref, check=False)  # fails harmlessly while a container uses it


def airtasks_image_spec(base: str | None = None) -> ImageSpec:
    """The Air-Tasks image (docker/Dockerfile) on `base` (default: `base_image()`)."""
    return ImageSpec(
        repository="airtasks",
        dockerfile=REPO / "docker" / "Dockerfile",
        context=REPO,
        include=(
            ".dockerignore",
            "docker/Dockerfile",
            "docker/constraints.txt",
            "docker/entrypoint.sh",
            "docker/airtasks-secret-url",
            "docker/airflow_local_settings.py",
            "pyproject.toml",
            "README.md",
            "glue",
            "dags",
        ),
        build_args={"BASE_IMAGE": base or base_image()},
    )


def services_image_spec(base: str | None = None) -> ImageSpec:
    """PostgreSQL, RabbitMQ and nginx from Debian packages (dev/images/services.Dockerfile): the
    local stack's stand-in for the official postgres / rabbitmq / nginx images."""
    images = REPO / "dev" / "images"
    return ImageSpec(
        repository="airtasks-services",
        dockerfile=images / "services.Dockerfile",
        context=images,
        include=("services.Dockerfile", "services-entrypoint.sh"),
        build_args={"BASE_IMAGE": base or base_image()},
    )


def stack_images(log_dir: Path | None = None) -> dict[str, str]:
    """Build (or find) every image the stack needs; return the stack's image variables.
    `log_dir` keeps each build's output (`build-airtasks.log`, `build-services.log`)."""
    base = base_image()
    logs = {name: log_dir / f"build-{name}.log" if log_dir else None for name in ("airtasks", "services")}
    # Two builds at once: mostly downloads (pip, apt), so they overlap well even on 2 cores.
    with ThreadPoolExecutor(max_workers=2) as pool:
        airtasks_job = pool.submit(build, airtasks_image_spec(base), logs["airtasks"])
        services_job = pool.submit(build, services_image_spec(base), logs["services"])
        airtasks, services = airtasks_job.result().tag, services_job.result().tag
    return {
        "AIRTASKS_IMAGE": airtasks,
        "AIRTASKS_POSTGRES_IMAGE": services,
        "AIRTASKS_RABBITMQ_IMAGE": services,
        "AIRTASKS_PROXY_IMAGE": services,
    }
