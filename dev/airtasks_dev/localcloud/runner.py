"""NodeRunner: every running EC2 instance of a cluster in moto becomes a node that boots its user data.

A poll loop (one thread) lists the instances tagged `airtasks:cluster=<cluster>`. A new pending or
running instance gets a `Node` (own namespace, IMDS, dockerd) that runs the instance's real user
data, read back from EC2 (`DescribeInstanceAttribute userData`, or the launch template version the
instance was launched from), in a thread of its own. An instance that is stopping, stopped,
shutting down, terminated or gone loses its node: processes killed, namespace removed, like a VM
that vanished (the Swarm sees it go Down). Per node the runner keeps timings and logs under
`<workdir>/<instance id>/` (boot.log, docker.log, imds.log).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Self

import boto3

from airtasks_dev.localcloud import userdata
from airtasks_dev.localcloud._sys import LocalCloudError
from airtasks_dev.localcloud.network import Network
from airtasks_dev.localcloud.node import Instance, Node, Timings
from airtasks_dev.localcloud.polling import PollLoop

log = logging.getLogger("airtasks.localcloud")

CLUSTER_TAG = "airtasks:cluster"
LIVE_STATES = ("pending", "running")


def instance_from(
    description: Mapping[str, Any], user_data: bytes, template: Mapping[str, Any] | None = None
) -> Instance:
    """An `Instance` from one DescribeInstances entry, its user data bytes and, for an instance
    launched from a launch template, that template version's data (whose metadata options EC2
    applies to the instance; moto does not copy them for Auto Scaling launches)."""
    az = description.get("Placement", {}).get("AvailabilityZone") or "us-east-1a"
    tags = {t["Key"]: t["Value"] for t in description.get("Tags", [])}
    options = {**description.get("MetadataOptions", {}), **(template or {}).get("MetadataOptions", {})}
    return Instance(
        instance_id=description["InstanceId"],
        region=az[:-1],
        availability_zone=az,
        instance_type=description.get("InstanceType", "t3.medium"),
        image_id=description.get("ImageId", "ami-00000000000000000"),
        user_data=user_data,
        tags=tags,
        metadata_tags=options.get("InstanceMetadataTags") == "enabled",
        http_tokens=options.get("HttpTokens") or "required",
        hop_limit=int(options.get("HttpPutResponseHopLimit") or 1),
        imds_enabled=options.get("HttpEndpoint", "enabled") != "disabled",
        iam_role=_role(description, template),
    )


def _role(description: Mapping[str, Any], template: Mapping[str, Any] | None = None) -> str | None:
    """The instance profile's name (what IMDS lists under iam/security-credentials/), if any: the
    instance's own, else its launch template's (EC2 applies it to an Auto Scaling launch; moto
    does not copy it to the instance)."""
    for source in (description, template or {}):
        profile = source.get("IamInstanceProfile") or {}
        name = str(profile.get("Arn", "")).rsplit("/", 1)[-1] or str(profile.get("Name", ""))
        if name:
            return name
    return None


class NodeRunner(PollLoop):
    """Watches moto for a cluster's instances and runs a node for each. Use as a context manager."""

    def __init__(
        self,
        network: Network,
        cluster: str,
        endpoint_url: str,
        workdir: Path,
        *,
        region: str = "us-east-1",
        insecure_registries: Sequence[str] = (),
        boot_env: Mapping[str, str] | None = None,
        poll_interval: float = 0.5,
        boot_timeout: float = 900,
    ) -> None:
        super().__init__(f"noderunner-{cluster}", poll_interval)
        self.network = network
        self.cluster = cluster
        self.endpoint_url = endpoint_url
        self.workdir = workdir
        self.region = region
        self.insecure_registries = list(insecure_registries)
        self.boot_timeout = boot_timeout
        # What the boot script finds in its environment: moto's endpoint and dummy keys. No region:
        # on EC2 there is none either, the script passes --region itself.
        self.boot_env = {
            "AWS_ENDPOINT_URL": endpoint_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            **(boot_env or {}),
        }
        self.boot_delay_seconds = 0.0
        """How long a new instance waits before it starts and runs its user data, to mimic a cloud
        VM's own boot (set and reset by a test or a benchmark; nodes already seen keep theirs)."""
        self.nodes: dict[str, Node] = {}
        self._lock = threading.Lock()
        self._workers: list[threading.Thread] = []
        self._ec2 = boto3.client(
            "ec2",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> Self:
        self.workdir.mkdir(parents=True, exist_ok=True)
        return super().start()

    def stop(self) -> None:
        """Stop watching and stop every node (in parallel)."""
        self.stop_polling(timeout=30)
        with self._lock:
            nodes = list(self.nodes.values())
        stoppers = [threading.Thread(target=self._stop_node, args=(n,)) for n in nodes]
        for t in stoppers:
            t.start()
        for t in [*stoppers, *self._workers]:
            t.join(timeout=60)

    # ---------------------------------------------------------------- the loop
    def poll(self) -> None:
        """One pass: boot new instances, stop gone ones (those no longer pending or running)."""
        seen: dict[str, Mapping[str, Any]] = {}
        # Only live instances: moto keeps terminated ones listed, and describing them all twice a
        # second cost its server and this process about 70 ms of CPU a pass against 20 (30
        # instances, 25 of them terminated, as a box session's moto holds after a few tests).
        pages = self._ec2.get_paginator("describe_instances").paginate(
            Filters=[
                {"Name": f"tag:{CLUSTER_TAG}", "Values": [self.cluster]},
                {"Name": "instance-state-name", "Values": list(LIVE_STATES)},
            ]
        )
        for page in pages:
            for reservation in page["Reservations"]:
                for inst in reservation["Instances"]:
                    seen[inst["InstanceId"]] = inst
        for iid, inst in seen.items():
            if iid not in self.nodes:
                self._launch(inst)
            elif not self.nodes[iid].stopping:
                # Terraform may associate the instance profile just after launch.
                role = _role(inst)
                if (
                    role is not None
                    and role != self.nodes[iid].instance.iam_role
                    and self.nodes[iid].timings.started is not None
                ):
                    self.nodes[iid].set_iam_role(role)
        with self._lock:
            nodes = dict(self.nodes)
        for iid, node in nodes.items():
            if iid not in seen and not node.stopping:
                node.stopping = True
                self._spawn(self._stop_node, node)

    def _template_data(self, inst: Mapping[str, Any]) -> dict[str, Any] | None:
        """LaunchTemplateData of the version the instance was launched from, if any."""
        tags = {t["Key"]: t["Value"] for t in inst.get("Tags", [])}
        template = tags.get("aws:ec2launchtemplate:id")
        if not template:
            return None
        version = tags.get("aws:ec2launchtemplate:version", "$Default")
        versions = self._ec2.describe_launch_template_versions(LaunchTemplateId=template, Versions=[version])
        for v in versions.get("LaunchTemplateVersions", []):
            return dict(v.get("LaunchTemplateData", {}))
        return None

    def _user_data(self, inst: Mapping[str, Any], template: Mapping[str, Any] | None) -> bytes:
        attr = self._ec2.describe_instance_attribute(InstanceId=inst["InstanceId"], Attribute="userData")
        raw = userdata.decode_b64(attr.get("UserData", {}).get("Value"))
        if not raw and template:
            raw = userdata.decode_b64(template.get("UserData"))
        return raw

    def _launch(self, inst: Mapping[str, Any]) -> None:
        template = self._template_data(inst)
        instance = instance_from(inst, self._user_data(inst, template), template)
        node = Node(
            self.network,
            instance,
            self.workdir / instance.instance_id,
            insecure_registries=self.insecure_registries,
        )
        node.timings.seen = time.monotonic()
        with self._lock:
            self.nodes[instance.instance_id] = node
        self._spawn(self._boot, node, self.boot_delay_seconds)

    def _spawn(self, target: Callable[..., None], node: Node, *args: Any) -> None:
        t = threading.Thread(
            target=target, args=(node, *args), name=f"{target.__name__}-{node.instance_id}", daemon=True
        )
        self._workers.append(t)
        t.start()

    def _boot(self, node: Node, delay: float = 0.0) -> None:
        """Wait `delay`, start the node, run its user data, then watch it until it stops: exit
        code, Swarm join."""
        iid = node.instance_id
        try:
            if delay > 0 and self._stop.wait(delay):
                return
            with node.lifecycle:
                if node.timings.killed is not None or self._stop.is_set():
                    return
                node.start()
                process = node.boot(self.boot_env)
            deadline = time.monotonic() + self.boot_timeout
            while node.timings.killed is None and not self._stop.is_set():
                if node.timings.exit_code is None and process.poll() is not None:
                    node.wait_boot()
                    log.info("node %s: user data exited %s", iid, node.timings.exit_code)
                if node.timings.joined is None:
                    with contextlib.suppress(Exception):  # dockerd restarting, or already gone
                        if node.swarm_state(timeout=2) == "active":
                            node.timings.joined = time.monotonic()
                if node.timings.exit_code is not None and node.timings.joined is not None:
                    return
                if node.timings.exit_code is None and time.monotonic() > deadline:
                    self.errors.append(f"{iid}: user data still running after {self.boot_timeout:.0f}s")
                    return
                time.sleep(0.25 if node.timings.exit_code is None else 1.0)
        except Exception as exc:
            if node.timings.killed is None:
                self.errors.append(f"{iid}: {exc}")
                log.warning("node %s failed to boot: %s", iid, exc)

    def _stop_node(self, node: Node) -> None:
        try:
            with node.lifecycle:
                node.stop()
        except Exception as exc:
            self.errors.append(f"{node.instance_id}: stop: {exc}")

    # ---------------------------------------------------------------- what tests and `make up` read
    def node(self, instance_id: str) -> Node:
        with self._lock:
            try:
                return self.nodes[instance_id]
            except KeyError:
                raise LocalCloudError(f"the runner has no node for {instance_id}") from None

    def timings(self) -> dict[str, Timings]:
        with self._lock:
            return {iid: n.timings for iid, n in self.nodes.items()}

    def wait(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        """Wait until predicate() holds; on timeout raise with the runner's errors and boot log tails."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise LocalCloudError(f"timed out after {timeout:.0f}s waiting for {what}\n{self.describe()}")
            time.sleep(0.2)

    def wait_booted(self, instance_id: str, timeout: float = 120) -> Node:
        """Wait until the runner has a node for the instance whose user data exited; returns it."""

        def done() -> bool:
            node = self.nodes.get(instance_id)
            return node is not None and node.timings.exit_code is not None

        self.wait(done, timeout, f"{instance_id} to boot")
        return self.nodes[instance_id]

    def describe(self) -> str:
        """A readable state of every node: timings since seen, and the tail of its boot log."""
        lines = [f"errors: {self.errors}" if self.errors else "errors: none"]
        with self._lock:
            nodes = list(self.nodes.values())
        for node in nodes:
            lines.append(f"{node.instance_id} {node.timings.since_seen()}")
            if node.boot_log.exists():
                tail = node.boot_log.read_text(errors="replace").splitlines()[-15:]
                lines.extend(f"  | {line}" for line in tail)
        return "\n".join(lines)
