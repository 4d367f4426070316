"""A local-cloud node: what an EC2 instance is on this machine.

A node is
- a network namespace with its own address on the run's bridge (`network.Network.add_node`),
- private UTS and mount namespaces held open by an "anchor" process: its hostname starts as the
  instance id (the boot script sets it again, per contract); /etc, /root, /usr/local, /opt,
  /var/lib and /var/log are copy-on-write overlays of the host's, /run and /var/lib/docker are
  fresh tmpfs and /tmp a fresh directory, so a boot script written for a VM (writing
  /etc/docker/daemon.json, /etc/hostname, ...) changes the node and never the host,
- an IMDSv2 stand-in on 169.254.169.254 inside the namespace (`imds.py`),
- its own dockerd, started like systemd would start Debian's docker.io at boot: `systemctl start
  docker` through the node's `systemctl` stand-in (`machine/systemctl`, which also runs the
  simple services and timers a boot script installs; /run/systemd/system exists so scripts take
  their systemd path), with the local cloud's options in /etc/default/docker (no docker0; iptables
  on, in the node's own namespace, so containers reach the bridge's services masqueraded as the
  node; the run's insecure registry; containers under the node's cgroup),
- the boot: the instance's user data, run as cloud-init would, with the environment the caller
  gives (AWS_ENDPOINT_URL, dummy keys), its output in `boot.log`.

Every process of the node sits in the cgroup `airtasks-localcloud/<run>/<instance id>`, so `stop()`
(the instance is terminated) kills all of it, containers included, at once, like a VM that is gone.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import docker

from airtasks_dev.localcloud import cgroups, userdata
from airtasks_dev.localcloud._sys import LocalCloudError, run
from airtasks_dev.localcloud.network import IMDS_ADDRESS, IMDS_PORT, Network, NodeLink

HERE = Path(__file__).resolve().parent
MACHINE_FILES = HERE / "machine"
IMDS_SERVER = HERE / "imds.py"
OVERLAYS = ("etc", "root", "usr/local", "opt", "var/lib", "var/log")
NODE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
HOST_DOCKER_CLI = "/usr/bin/docker"  # Debian's client, the same version as the daemon
# The AWS CLI releases that read AWS_ENDPOINT_URL (how the boot scripts are pointed at moto).
MIN_AWS_CLI = {1: (1, 29), 2: (2, 13)}

# The node's /var/lib/docker is a tmpfs of its mount namespace, like an instance store: Docker's
# layer extraction on the host's ext4 cost about 8 times the kernel CPU (a node's image pull spent
# 5-10 s of it), and removing a gone node's layers took seconds more. The namespace takes the tmpfs
# with it when the node's last process ends. A manager uses about 1.6 GB of it, a worker 0.9 GB;
# the size is a cap, not a reservation.
DOCKER_DISK_SIZE = "4g"

_ANCHOR_SETUP = r"""
set -eu
disk=$1; name=$2; keep=$3; docker_size=$4; shift 4
hostname "$name"
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
mkdir -p /run/lock /run/systemd/system  # a booted systemd machine, to the boot script's checks
date +%s >/run/localcloud-boot-time
for d in "$@"; do
  mount -t overlay overlay -o "lowerdir=/$d,upperdir=$disk/ov/$d/upper,workdir=$disk/ov/$d/work" "/$d"
done
mount -t tmpfs -o "mode=0711,size=$docker_size" tmpfs /var/lib/docker
# Host paths under /tmp the node still needs (the test venv: its `aws`, its python) go through
# /run while the node gets a /tmp of its own, and come back at the same place.
i=0
for path in $keep; do
  i=$((i + 1)); mkdir -p "/run/localcloud-keep/$i"; mount --bind "$path" "/run/localcloud-keep/$i"
done
mount --bind "$disk/tmp" /tmp
i=0
for path in $keep; do
  i=$((i + 1)); mkdir -p "$path"; mount --bind "/run/localcloud-keep/$i" "$path"
done
echo ready
exec sleep infinity
"""


@dataclass(frozen=True)
class Instance:
    """What a node knows of its EC2 instance (from the cloud API, i.e. moto)."""

    instance_id: str
    region: str = "us-east-1"
    availability_zone: str = "us-east-1a"
    instance_type: str = "t3.medium"
    image_id: str = "ami-00000000000000000"
    account_id: str = "123456789012"
    user_data: bytes = b""  # as the instance got it (base64-decoded once; may be gzip or MIME)
    tags: Mapping[str, str] = field(default_factory=dict)
    metadata_tags: bool = False  # InstanceMetadataTags=enabled: tags under meta-data/tags/instance/
    http_tokens: str = "required"  # IMDSv2 only, as the modules configure it
    hop_limit: int = 1  # HttpPutResponseHopLimit: 1 = containers on the node get no IMDSv2 token
    imds_enabled: bool = True  # HttpEndpoint
    iam_role: str | None = None  # instance profile role: dummy credentials in IMDS when set


@dataclass
class Timings:
    """Monotonic timestamps (time.monotonic()) of one node's life; None until it happens."""

    seen: float | None = None  # the runner saw the instance running
    started: float | None = None  # namespace, IMDS and dockerd up
    boot_started: float | None = None  # user data started
    boot_exited: float | None = None
    exit_code: int | None = None
    joined: float | None = None  # its dockerd reports Swarm membership (LocalNodeState active)
    killed: float | None = None  # every process killed: the VM is gone (its Swarm node goes Down)
    stopped: float | None = None  # namespace, cgroups and disk removed as well

    def since_seen(self) -> dict[str, float | None]:
        base = self.seen
        out: dict[str, float | None] = {}
        for key in ("started", "boot_started", "boot_exited", "joined", "killed", "stopped"):
            value = getattr(self, key)
            out[key] = None if value is None or base is None else round(value - base, 2)
        out["exit_code"] = self.exit_code
        return out


def host_paths_under_tmp() -> list[str]:
    """What a node must still see of the host's /tmp, which it replaces with its own: the Python
    environment running the tests (the nodes' `aws` and the IMDS stand-in run from it), when it
    lives there (a checkout cloned under /tmp)."""
    prefix = Path(sys.prefix).resolve()
    cli = Path(aws_cli()).resolve()
    paths = {prefix, cli.parent.parent} if cli.is_relative_to("/tmp") else {prefix}
    return sorted(str(p) for p in paths if p.is_relative_to("/tmp") and " " not in str(p))


@functools.cache
def aws_cli() -> str:
    """The path of an AWS CLI that honours AWS_ENDPOINT_URL (the boot scripts call `aws`)."""
    candidates = [os.environ.get("AIRTASKS_AWS_CLI", ""), str(Path(sys.executable).with_name("aws"))]
    found = shutil.which("aws")
    if found and "/shims/" in found and shutil.which("pyenv"):  # a pyenv shim: find the real one
        real = subprocess.run(["pyenv", "which", "aws"], capture_output=True, text=True, check=False)
        found = real.stdout.strip() or found
    candidates.append(found or "")
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            path = str(Path(candidate).resolve()) if "/shims/" not in candidate else candidate
            out = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
            match = re.search(r"aws-cli/(\d+)\.(\d+)", out.stdout + out.stderr)
            if match:
                major, minor = int(match.group(1)), int(match.group(2))
                if (major, minor) >= MIN_AWS_CLI.get(major, (major, 0)):
                    return path
                raise LocalCloudError(
                    f"{path} is aws-cli/{major}.{minor}, which ignores AWS_ENDPOINT_URL; install a newer one "
                    "(`pip install awscli`, or set AIRTASKS_AWS_CLI)"
                )
    raise LocalCloudError("no AWS CLI found for the boot scripts; install one (`pip install awscli`)")


def _in_cgroup(procs: Path, cmd: Sequence[str]) -> list[str]:
    """cmd, run so that the process joins the cgroup before it execs (its children follow it)."""
    return ["sh", "-c", 'echo $$ > "$0" && exec "$@"', str(procs), *cmd]


class Node:
    """One instance's machine. `start()` boots the machine, `boot()` runs its user data, `stop()` ends it."""

    def __init__(
        self,
        network: Network,
        instance: Instance,
        workdir: Path,
        *,
        insecure_registries: Sequence[str] = (),
        docker_opts: Sequence[str] = (),
    ) -> None:
        self.network = network
        self.instance = instance
        self.workdir = workdir
        self.disk = workdir / "disk"
        self.insecure_registries = list(insecure_registries)
        self.docker_opts = list(docker_opts)
        self.timings = Timings()
        self.spot_action: dict[str, str] | None = None  # meta-data/spot/instance-action, once noticed
        self.link: NodeLink | None = None
        self.anchor: subprocess.Popen[bytes] | None = None
        self.boot_process: subprocess.Popen[bytes] | None = None
        self._logs: list[IO[bytes]] = []
        self._stopped = False
        self.lifecycle = threading.Lock()  # start() and stop() of one node never overlap
        self.stopping = False

    # ---------------------------------------------------------------- names and paths
    @property
    def instance_id(self) -> str:
        return self.instance.instance_id

    @property
    def address(self) -> str:
        if self.link is None:
            raise LocalCloudError(f"node {self.instance_id} has no address: it is not started")
        return self.link.address

    @property
    def boot_log(self) -> Path:
        return self.workdir / "boot.log"

    @property
    def imds_log(self) -> Path:
        return self.workdir / "imds.log"

    @property
    def docker_log(self) -> Path:
        """dockerd's log: on the node's disk while it runs, copied next to boot.log when it stops."""
        saved = self.workdir / "docker.log"
        return saved if saved.exists() else self.disk / "ov/var/log/upper/docker.log"

    def _cgroup(self) -> tuple[str, ...]:
        return (self.network.run_id, self.instance_id)

    def path(self, inside: str) -> Path:
        """A path of the node's filesystem, as the host reaches it (through the anchor's root)."""
        if self.anchor is None:
            raise LocalCloudError(f"node {self.instance_id} is not started")
        return Path(f"/proc/{self.anchor.pid}/root") / inside.lstrip("/")

    @property
    def docker_socket(self) -> str:
        return str(self.path("/run/docker.sock"))

    def docker_client(self, timeout: int = 60) -> docker.DockerClient:
        """A client of the node's dockerd (close it; or use `client()`)."""
        return docker.DockerClient(base_url=f"unix://{self.docker_socket}", timeout=timeout)

    @contextlib.contextmanager
    def client(self, timeout: int = 60) -> Iterator[docker.DockerClient]:
        """`with node.client() as c:` a client of the node's dockerd, closed afterwards."""
        client = self.docker_client(timeout)
        try:
            yield client
        finally:
            client.close()

    # ---------------------------------------------------------------- start
    def start(self) -> None:
        """Namespace + address, private mounts and hostname, IMDS, dockerd; raises if any fails."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.network.register_dir(self.disk)
        address = self.network.allocate()
        try:
            self.link = self.network.add_node(self.instance_id, address)
        except BaseException:
            self.network.release(address)
            raise
        try:
            self._prepare_disk()
            self._start_anchor()
            if self.instance.imds_enabled:
                self._start_imds()
            self.run(["systemctl", "start", "docker"], timeout=90)
        except BaseException:
            self.stop()
            raise
        self.timings.started = time.monotonic()

    def _prepare_disk(self) -> None:
        """The node's own layers, filled before they are mounted: stand-ins, docker options, names."""
        for d in OVERLAYS:
            (self.disk / "ov" / d / "upper").mkdir(parents=True, exist_ok=True)
            (self.disk / "ov" / d / "work").mkdir(parents=True, exist_ok=True)
        (self.disk / "tmp").mkdir(parents=True, exist_ok=True)
        (self.disk / "tmp").chmod(0o1777)
        local = self.disk / "ov/usr/local/upper"
        (local / "sbin").mkdir(exist_ok=True)
        (local / "bin").mkdir(exist_ok=True)
        for name in ("systemctl", "hostnamectl"):
            shutil.copy2(MACHINE_FILES / name, local / "sbin" / name)
        # The node's docker CLI is the daemon's version (the host's /usr/local/bin/docker is newer).
        (local / "bin/docker").symlink_to(HOST_DOCKER_CLI)
        (local / "bin/aws").symlink_to(aws_cli())
        etc = self.disk / "ov/etc/upper"
        (etc / "default").mkdir(exist_ok=True)
        opts = [
            "--bridge=none",
            # Its own netns, its own iptables: NAT lets containers reach the bridge (moto, registry).
            "--iptables=true",
            f"--cgroup-parent={cgroups.path_of(*self._cgroup(), 'containers')}",
            *(f"--insecure-registry={r}" for r in self.insecure_registries),
            *self.docker_opts,
        ]
        (etc / "default/docker").write_text(
            "# Written by the local cloud (airtasks_dev/localcloud/node.py): dockerd options for this node.\n"
            f'DOCKER_OPTS="{" ".join(opts)}"\n'
        )
        (etc / "hostname").write_text(f"{self.instance_id}\n")
        (etc / "hosts").write_text(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
            f"{self.address}\t{self.instance_id}\n"
        )
        # Docker's embedded DNS forwards what it does not know here: the local cloud's DNS on the
        # bridge address (dns.py) answers the names it serves (RDS endpoints), NXDOMAIN otherwise.
        (etc / "resolv.conf").write_text(
            "# Written by the local cloud (airtasks_dev/localcloud/node.py): its DNS on the bridge.\n"
            f"nameserver {self.network.gateway}\n"
        )

    def _popen(
        self, cmd: Sequence[str], *, stdout: IO[bytes] | int, env: Mapping[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        procs = cgroups.procs_file(*self._cgroup(), "node")
        return subprocess.Popen(
            _in_cgroup(procs, cmd),
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd="/",
            start_new_session=True,
        )

    def _log(self, name: str) -> IO[bytes]:
        fh = open(self.workdir / name, "wb")  # noqa: SIM115 - closed in stop()
        self._logs.append(fh)
        return fh

    def _start_anchor(self) -> None:
        assert self.link is not None
        log = self.workdir / "anchor.log"
        cmd = [
            "nsenter",
            f"--net={self.link.netns_path}",
            "unshare",
            "--mount",
            "--uts",
            "--propagation",
            "private",
            "sh",
            "-c",
            _ANCHOR_SETUP,
            "anchor",
            str(self.disk),
            self.instance_id,
            " ".join(host_paths_under_tmp()),
            DOCKER_DISK_SIZE,
            *OVERLAYS,
        ]
        self.anchor = self._popen(cmd, stdout=self._log("anchor.log"))
        self._wait(lambda: b"ready" in log.read_bytes(), self.anchor, "the node's namespaces", log)

    def set_iam_role(self, role: str | None) -> None:
        """The instance's profile changed (associated after launch): IMDS serves its credentials."""
        self.instance = dataclasses.replace(self.instance, iam_role=role)
        self._refresh_imds()

    def serve_spot_notice(self, deadline: float, action: str = "terminate") -> None:
        """EC2 is taking the spot instance back at `deadline` (epoch seconds): IMDS serves
        meta-data/spot/instance-action from now on, in EC2's format. Nothing stops the node at the
        deadline: the caller plays the cloud and terminates the instance then."""
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(deadline))
        self.spot_action = {"action": action, "time": when}
        self._refresh_imds()

    def _refresh_imds(self) -> None:
        """Hand the running IMDS stand-in the new tree (it reads its config again when it changes)."""
        if self.instance.imds_enabled and self.link is not None and (self.workdir / "imds.json").exists():
            tmp = self.workdir / "imds.json.tmp"
            tmp.write_text(json.dumps(self._imds_config()))
            tmp.chmod(0o600)
            tmp.replace(self.workdir / "imds.json")

    def _start_imds(self) -> None:
        assert self.link is not None
        config = self.workdir / "imds.json"
        config.write_text(json.dumps(self._imds_config()))
        config.chmod(0o600)
        cmd = ["nsenter", f"--net={self.link.netns_path}", sys.executable, str(IMDS_SERVER), str(config)]
        proc = self._popen(cmd, stdout=self._log("imds.log"))
        self._wait(lambda: b"serving" in self.imds_log.read_bytes(), proc, "the IMDS stand-in", self.imds_log)

    def _wait(
        self, ready: Any, proc: subprocess.Popen[bytes], what: str, log: Path, timeout: float = 20
    ) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if proc.poll() is not None:
                raise LocalCloudError(
                    f"{what} of {self.instance_id} exited {proc.returncode}: {log.read_text()[-500:]}"
                )
            if time.monotonic() > deadline:
                raise LocalCloudError(
                    f"{what} of {self.instance_id} not ready within {timeout:.0f}s; see {log}"
                )
            time.sleep(0.02)

    def _imds_config(self) -> dict[str, Any]:
        inst = self.instance
        domain = "ec2.internal" if inst.region == "us-east-1" else f"{inst.region}.compute.internal"
        local_name = f"ip-{self.address.replace('.', '-')}.{domain}"
        tree = {
            "meta-data/ami-id": inst.image_id,
            "meta-data/instance-id": inst.instance_id,
            "meta-data/instance-type": inst.instance_type,
            "meta-data/local-ipv4": self.address,
            "meta-data/local-hostname": local_name,
            "meta-data/hostname": local_name,
            "meta-data/placement/availability-zone": inst.availability_zone,
            "meta-data/placement/region": inst.region,
            "meta-data/services/domain": "amazonaws.com",
            "dynamic/instance-identity/document": json.dumps(
                {
                    "accountId": inst.account_id,
                    "architecture": "x86_64",
                    "availabilityZone": inst.availability_zone,
                    "imageId": inst.image_id,
                    "instanceId": inst.instance_id,
                    "instanceType": inst.instance_type,
                    "privateIp": self.address,
                    "region": inst.region,
                    "version": "2017-09-30",
                },
                indent=2,
            ),
        }
        if self.spot_action is not None:
            tree["meta-data/spot/instance-action"] = json.dumps(self.spot_action)
        if inst.metadata_tags:
            for key, value in inst.tags.items():
                tree[f"meta-data/tags/instance/{key}"] = value
        if inst.iam_role:
            tree[f"meta-data/iam/security-credentials/{inst.iam_role}"] = json.dumps(
                {
                    "Code": "Success",
                    "Type": "AWS-HMAC",
                    "AccessKeyId": "testing",
                    "SecretAccessKey": "testing",
                    "Token": "testing",
                    "Expiration": "2099-01-01T00:00:00Z",
                }
            )
        return {
            "address": IMDS_ADDRESS,
            "port": IMDS_PORT,  # port 80 is DNATed here (network.py), which keeps 80 free on the node
            "http_tokens": inst.http_tokens,
            "hop_limit": inst.hop_limit,
            # Requests from these come from the node itself; any other source is a container on it,
            # one hop further away (its PUT gets no answer when hop_limit is 1, as on EC2).
            "local_addresses": ["127.0.0.1", "169.254.169.254", self.address],
            "tree": tree,
            "user_data_b64": base64.b64encode(inst.user_data).decode() if inst.user_data else None,
        }

    # ---------------------------------------------------------------- run things inside
    def command(self, cmd: Sequence[str]) -> list[str]:
        """cmd as it runs inside the node: its network, hostname and filesystem view."""
        if self.anchor is None:
            raise LocalCloudError(f"node {self.instance_id} is not started")
        return ["nsenter", f"--target={self.anchor.pid}", "--net", "--uts", "--mount", "--", *cmd]

    def node_env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """A root login's environment on the node (what cloud-init gives a script), plus `extra`."""
        env = {"PATH": NODE_PATH, "HOME": "/root", "LANG": "C.UTF-8", "USER": "root", "LOGNAME": "root"}
        env.update(extra or {})
        return env

    def run(
        self,
        cmd: Sequence[str],
        env: Mapping[str, str] | None = None,
        timeout: float = 60,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command on the node (like ssh) and wait for it; raises on failure when check."""
        procs = cgroups.procs_file(*self._cgroup(), "node")
        proc = subprocess.run(
            _in_cgroup(procs, self.command(cmd)),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.node_env(env),
            cwd="/",
            check=False,
        )
        if check and proc.returncode != 0:
            raise LocalCloudError(
                f"on {self.instance_id}: `{' '.join(cmd)}` exited {proc.returncode}: "
                f"{(proc.stderr or proc.stdout).strip()[-800:]}"
            )
        return proc

    def hostname(self) -> str:
        return self.run(["hostname"]).stdout.strip()

    def boot(self, env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Run the instance's user data as cloud-init would (scripts in order), output to boot.log.

        Returns the process; its exit code is the first failing script's (cloud-init goes on, but a
        boot script that fails is what a test wants to see).
        """
        parts = userdata.scripts(self.instance.user_data)
        cloud = self.path("/var/lib/cloud/instance")
        (cloud / "scripts").mkdir(parents=True, exist_ok=True)
        (cloud / "user-data.txt").write_bytes(self.instance.user_data)
        names = []
        for i, script in enumerate(parts, start=1):
            target = cloud / "scripts" / f"part-{i:03d}"
            target.write_bytes(script)
            target.chmod(0o700)
            names.append(f"/var/lib/cloud/instance/scripts/part-{i:03d}")
        runner = 'rc=0; for s in "$@"; do "$s" || { c=$?; [ "$rc" -ne 0 ] || rc=$c; }; done; exit "$rc"'
        cmd = self.command(["/bin/sh", "-c", runner, "cloud-init", *names])
        self.timings.boot_started = time.monotonic()
        self.boot_process = self._popen(cmd, stdout=self._log("boot.log"), env=self.node_env(env))
        return self.boot_process

    def wait_boot(self, timeout: float = 300) -> int:
        """Wait for the boot process; record and return its exit code."""
        if self.boot_process is None:
            raise LocalCloudError(f"node {self.instance_id} has not booted")
        code = self.boot_process.wait(timeout=timeout)
        if self.timings.exit_code is None:
            self.timings.boot_exited = time.monotonic()
            self.timings.exit_code = code
        return code

    def swarm_state(self, timeout: int = 10) -> str:
        """The node's own view of its Swarm membership (inactive, pending, active, error, ...)."""
        with self.client(timeout=timeout) as client:
            return str(client.info().get("Swarm", {}).get("LocalNodeState", ""))

    # ---------------------------------------------------------------- stop
    def stop(self) -> None:
        """The instance is gone: kill every process of the node, drop its namespace and disk, keep logs."""
        if self._stopped:
            return
        self._stopped = True
        cgroups.kill_all(*self._cgroup())
        # The VM is gone from here on; the cleanup below (the disk above all) can take seconds.
        self.timings.killed = time.monotonic()
        for proc in (self.anchor, self.boot_process):
            if proc is not None:
                proc.wait(timeout=10)
        if self.boot_process is not None and self.timings.exit_code is None:
            self.timings.exit_code = self.boot_process.returncode
            self.timings.boot_exited = time.monotonic()
        cgroups.remove(*self._cgroup())
        if self.link is not None:
            self.network.remove_node(self.link)
        docker_log = self.disk / "ov/var/log/upper/docker.log"
        if docker_log.exists():
            shutil.copy2(docker_log, self.workdir / "docker.log")
        for fh in self._logs:
            fh.close()
        shutil.rmtree(self.disk, ignore_errors=True)
        self.timings.stopped = time.monotonic()


def ensure_tools() -> None:
    """The host tools a node needs; a clear error names the missing Debian package."""
    for tool, package in (
        ("nsenter", "util-linux"),
        ("unshare", "util-linux"),
        ("ip", "iproute2"),
        ("iptables", "iptables"),
        ("dockerd", "docker.io"),
    ):
        if shutil.which(tool) is None:
            raise LocalCloudError(f"{tool} not found: install the Debian package {package}")
    if not Path(HOST_DOCKER_CLI).exists():
        raise LocalCloudError(f"{HOST_DOCKER_CLI} not found: install the Debian package docker.io")
    run(["unshare", "--version"])
