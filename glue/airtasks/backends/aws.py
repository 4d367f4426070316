"""AWS: one Auto Scaling group per queue (boto3 Auto Scaling + EC2).

Worker groups are built with `protect_from_scale_in`, so the group never picks a victim itself
when its desired capacity drops: the scaler picks an idle instance, lifts that one instance's
protection and terminates it with `ShouldDecrementDesiredCapacity=True`, then completes a
termination lifecycle hook if the group has one (the node is drained already). boto3 honours
`AWS_ENDPOINT_URL` (how the tests and `make up` point it at moto).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from airtasks.backends.base import Instance
from airtasks.errors import BackendError

# What a failed AWS call can raise: API errors, transport errors, and replies that are not AWS's
# (a proxy or load balancer answering for it).
AWS_ERRORS = (ClientError, BotoCoreError, ResponseParserError)

# Instances in these lifecycle states count towards the group; Terminating*, Detaching,
# Standby and Warmed:* do not.
COUNTED = frozenset({"Pending", "Pending:Wait", "Pending:Proceed", "InService"})

# Both describes are rate-limited per account, so a pass asks for many groups and many instances
# at once: group names per DescribeAutoScalingGroups request (its MaxRecords is at most 100), and
# instance ids per DescribeInstances request (the API takes up to 1000; 200 keeps each answer
# well inside the read timeout, and only new instances are described, so it is rarely more than
# one call a pass).
GROUPS_PER_CALL = 50
INSTANCES_PER_CALL = 200

T = TypeVar("T")


def _chunks(items: Sequence[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _describe(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"{err.get('Code', 'error')}: {err.get('Message', '')}".strip()
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


class AwsBackend:
    name = "aws"

    def __init__(
        self,
        region: str,
        *,
        session: boto3.session.Session | None = None,
        max_attempts: int = 3,
        timeout_seconds: float = 10.0,
    ) -> None:
        self.region = region
        self._session = session or boto3.session.Session(region_name=region)
        self._config = Config(
            region_name=region,
            # Standard mode: retries throttles and transient errors with jittered exponential
            # backoff (1 s base for throttles) under a client-wide retry quota. 3 attempts in all
            # (botocore's `max_attempts` would count retries only, 4 in all): a throttled call then
            # backs off at most 1 + 2 s, and a pass with one stays within a 5 s interval.
            retries={"total_max_attempts": max_attempts, "mode": "standard"},
            connect_timeout=min(timeout_seconds, 5.0),
            read_timeout=timeout_seconds,
        )
        self._asg: Any = None
        self._asg_once: Any = None
        self._ec2: Any = None
        self._launched: dict[str, float] = {}
        self._members: dict[str, set[str]] = {}

    # Lazy clients, as a hook would: nothing is contacted until the first call.
    @property
    def autoscaling(self) -> Any:
        if self._asg is None:
            self._asg = self._session.client("autoscaling", config=self._config)
        return self._asg

    @property
    def autoscaling_once(self) -> Any:
        """Auto Scaling without retries: to find which group a failed batched describe was about,
        after that describe was retried already (one round trip per group, no second backoff)."""
        if self._asg_once is None:
            once = self._config.merge(Config(retries={"total_max_attempts": 1, "mode": "standard"}))
            self._asg_once = self._session.client("autoscaling", config=once)
        return self._asg_once

    @property
    def ec2(self) -> Any:
        if self._ec2 is None:
            self._ec2 = self._session.client("ec2", config=self._config)
        return self._ec2

    def _fail(self, what: str, group: str, exc: Exception) -> BackendError:
        return BackendError(f"aws: {what} {group} ({self.region}): {_describe(exc)}")

    def _group(self, group: str) -> dict[str, Any]:
        try:
            found = self.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])
        except AWS_ERRORS as exc:
            raise self._fail("describe", group, exc) from None
        groups = found.get("AutoScalingGroups") or []
        if not groups:
            raise BackendError(
                f"aws: no Auto Scaling group named {group} in {self.region}; "
                "check queues.<queue>.group and region in the scaler config"
            )
        return dict(groups[0])

    def _describe_groups(self, client: Any, names: list[str]) -> dict[str, dict[str, Any]]:
        pages = client.get_paginator("describe_auto_scaling_groups").paginate(
            AutoScalingGroupNames=names, PaginationConfig={"PageSize": 100}
        )
        return {
            g["AutoScalingGroupName"]: dict(g) for page in pages for g in page.get("AutoScalingGroups", [])
        }

    def _fetch_launch_times(self, ids: list[str]) -> None:
        pages = self.ec2.get_paginator("describe_instances").paginate(InstanceIds=ids)
        for page in pages:
            for res in page.get("Reservations", []):
                for inst in res.get("Instances", []):
                    self._launched[inst["InstanceId"]] = inst["LaunchTime"].timestamp()

    def read_groups(self, groups: Sequence[str]) -> dict[str, tuple[int, list[Instance]] | BackendError]:
        """Size and instances of many groups in few calls: one DescribeAutoScalingGroups per
        GROUPS_PER_CALL groups (paginated), and DescribeInstances only for the instances whose launch
        time is not known yet, INSTANCES_PER_CALL at a time. A failure is returned for the groups it
        concerns; the other groups are read."""
        names = list(dict.fromkeys(groups))
        out: dict[str, tuple[int, list[Instance]] | BackendError] = {}
        found: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(names, GROUPS_PER_CALL):
            try:
                found.update(self._describe_groups(self.autoscaling, chunk))
                continue
            except AWS_ERRORS as exc:
                if len(chunk) == 1:
                    out[chunk[0]] = self._fail("describe", chunk[0], exc)
                    continue
            # The batch failed after its retries: ask for each group alone, once, so that a fault
            # about one group (or a throttle that has passed) holds only the queues it concerns.
            for name in chunk:
                try:
                    found.update(self._describe_groups(self.autoscaling_once, [name]))
                except AWS_ERRORS as exc:
                    out[name] = self._fail("describe", name, exc)
        members: dict[str, list[dict[str, Any]]] = {}
        for name in names:
            if name in out:
                continue
            if name not in found:
                out[name] = BackendError(
                    f"aws: no Auto Scaling group named {name} in {self.region}; "
                    "check queues.<queue>.group and region in the scaler config"
                )
                continue
            members[name] = [
                i for i in found[name].get("Instances", []) if i.get("LifecycleState") in COUNTED
            ]
            self._forget_gone(name, {m["InstanceId"] for m in members[name]})

        unknown = [
            m["InstanceId"] for ms in members.values() for m in ms if m["InstanceId"] not in self._launched
        ]
        for chunk in _chunks(unknown, INSTANCES_PER_CALL):
            try:
                self._fetch_launch_times(chunk)
            except AWS_ERRORS as exc:
                asked = set(chunk)
                for name, ms in members.items():
                    if name not in out and any(m["InstanceId"] in asked for m in ms):
                        out[name] = self._fail("describe instances of", name, exc)

        for name, ms in members.items():
            if name in out:
                continue
            instances = [
                Instance(
                    id=m["InstanceId"],
                    launched_at=self._launched.get(m["InstanceId"], 0.0),
                    state=str(m.get("LifecycleState", "")),
                    protected=bool(m.get("ProtectedFromScaleIn", False)),
                )
                for m in ms
            ]
            out[name] = (int(found[name]["DesiredCapacity"]), instances)
        return {name: out[name] for name in names}

    def _forget_gone(self, group: str, present: set[str]) -> None:
        """Drop the launch times of this group's instances that left it (the cache stays bounded)."""
        for gone in self._members.get(group, set()) - present:
            self._launched.pop(gone, None)
        self._members[group] = present

    def read(self, group: str) -> tuple[int, list[Instance]]:
        result = self.read_groups([group])[group]
        if isinstance(result, BackendError):
            raise result
        return result

    def size(self, group: str) -> int:
        return int(self._group(group)["DesiredCapacity"])

    def instances(self, group: str) -> list[Instance]:
        return self.read(group)[1]

    def set_size(self, group: str, size: int) -> None:
        try:
            self.autoscaling.set_desired_capacity(
                AutoScalingGroupName=group, DesiredCapacity=size, HonorCooldown=False
            )
        except AWS_ERRORS as exc:
            raise self._fail(f"set desired capacity {size} of", group, exc) from None

    def _protect(self, group: str, ids: list[str], protected: bool) -> None:
        self.autoscaling.set_instance_protection(
            InstanceIds=ids, AutoScalingGroupName=group, ProtectedFromScaleIn=protected
        )

    def remove(self, group: str, instance_id: str) -> None:
        error = self.remove_many(group, [instance_id])[instance_id]
        if error is not None:
            raise error

    def remove_many(self, group: str, ids: Sequence[str]) -> dict[str, BackendError | None]:
        """Terminate exactly these instances, shrinking the group by one each. Scale-in protection
        is lifted in bulk (SetInstanceProtection takes 50 ids); the termination itself takes one
        instance per call in the Auto Scaling API; the lifecycle hooks are read once per group."""
        out: dict[str, BackendError | None] = {}
        lifted: list[str] = []
        for chunk in _chunks(list(dict.fromkeys(ids)), 50):
            try:
                self._protect(group, chunk, False)
                lifted.extend(chunk)
            except AWS_ERRORS as exc:
                for instance_id in chunk:
                    out[instance_id] = self._fail(f"lift scale-in protection of {instance_id} in", group, exc)
        removed: list[str] = []
        for instance_id in lifted:
            try:
                self.autoscaling.terminate_instance_in_auto_scaling_group(
                    InstanceId=instance_id, ShouldDecrementDesiredCapacity=True
                )
            except AWS_ERRORS as exc:
                # Put the protection back, so the group cannot pick this instance on its own later.
                with contextlib.suppress(*AWS_ERRORS):
                    self._protect(group, [instance_id], True)
                out[instance_id] = self._fail(f"terminate {instance_id} in", group, exc)
                continue
            self._launched.pop(instance_id, None)
            out[instance_id] = None
            removed.append(instance_id)
        self._complete_termination_hooks(group, removed)
        return {i: out[i] for i in dict.fromkeys(ids)}

    def _complete_termination_hooks(self, group: str, ids: list[str]) -> None:
        """The scaler drained the node already: let a termination lifecycle hook go on at once
        instead of holding the instance in Terminating:Wait until its heartbeat times out.
        Best effort: the instance is already on its way out either way."""
        if not ids:
            return
        try:
            hooks = self.autoscaling.describe_lifecycle_hooks(AutoScalingGroupName=group).get(
                "LifecycleHooks", []
            )
        except AWS_ERRORS:
            return
        for hook in hooks:
            if hook.get("LifecycleTransition") != "autoscaling:EC2_INSTANCE_TERMINATING":
                continue
            for instance_id in ids:
                with contextlib.suppress(*AWS_ERRORS):
                    self.autoscaling.complete_lifecycle_action(
                        LifecycleHookName=hook["LifecycleHookName"],
                        AutoScalingGroupName=group,
                        InstanceId=instance_id,
                        LifecycleActionResult="CONTINUE",
                    )


__all__ = ["AwsBackend"]
