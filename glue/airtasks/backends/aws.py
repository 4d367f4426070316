"""AWS: one Auto Scaling group per queue (boto3 Auto Scaling + EC2).

Worker groups are built with `protect_from_scale_in`, so the group never picks a victim itself
when its desired capacity drops: the scaler picks an idle instance, lifts that one instance's
protection and terminates it with `ShouldDecrementDesiredCapacity=True`, then completes a
termination lifecycle hook if the group has one (the node is drained already). boto3 honours
`AWS_ENDPOINT_URL` (how the tests and `make up` point it at moto).
"""

from __future__ import annotations

import contextlib
from typing import Any

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
            retries={"max_attempts": max_attempts, "mode": "standard"},
            connect_timeout=min(timeout_seconds, 5.0),
            read_timeout=timeout_seconds,
        )
        self._asg: Any = None
        self._ec2: Any = None
        self._launched: dict[str, float] = {}

    # Lazy clients, as a hook would: nothing is contacted until the first call.
    @property
    def autoscaling(self) -> Any:
        if self._asg is None:
            self._asg = self._session.client("autoscaling", config=self._config)
        return self._asg

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

    def _launch_times(self, ids: list[str], group: str) -> dict[str, float]:
        missing = [i for i in ids if i not in self._launched]
        if missing:
            try:
                pages = self.ec2.get_paginator("describe_instances").paginate(InstanceIds=missing)
                for page in pages:
                    for res in page.get("Reservations", []):
                        for inst in res.get("Instances", []):
                            self._launched[inst["InstanceId"]] = inst["LaunchTime"].timestamp()
            except AWS_ERRORS as exc:
                raise self._fail("describe instances of", group, exc) from None
        return {i: self._launched.get(i, 0.0) for i in ids}

    def read(self, group: str) -> tuple[int, list[Instance]]:
        data = self._group(group)
        members = [i for i in data.get("Instances", []) if i.get("LifecycleState") in COUNTED]
        launched = self._launch_times([m["InstanceId"] for m in members], group)
        instances = [
            Instance(
                id=m["InstanceId"],
                launched_at=launched[m["InstanceId"]],
                state=str(m.get("LifecycleState", "")),
                protected=bool(m.get("ProtectedFromScaleIn", False)),
            )
            for m in members
        ]
        return int(data["DesiredCapacity"]), instances

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

    def _protect(self, group: str, instance_id: str, protected: bool) -> None:
        self.autoscaling.set_instance_protection(
            InstanceIds=[instance_id], AutoScalingGroupName=group, ProtectedFromScaleIn=protected
        )

    def remove(self, group: str, instance_id: str) -> None:
        try:
            self._protect(group, instance_id, False)
        except AWS_ERRORS as exc:
            raise self._fail(f"lift scale-in protection of {instance_id} in", group, exc) from None
        try:
            self.autoscaling.terminate_instance_in_auto_scaling_group(
                InstanceId=instance_id, ShouldDecrementDesiredCapacity=True
            )
        except AWS_ERRORS as exc:
            # Put the protection back, so the group cannot pick this instance on its own later.
            with contextlib.suppress(*AWS_ERRORS):
                self._protect(group, instance_id, True)
            raise self._fail(f"terminate {instance_id} in", group, exc) from None
        self._launched.pop(instance_id, None)
        self._complete_termination_hooks(group, instance_id)

    def _complete_termination_hooks(self, group: str, instance_id: str) -> None:
        """The scaler drained the node already: let a termination lifecycle hook go on at once
        instead of holding the instance in Terminating:Wait until its heartbeat times out.
        Best effort: the instance is already on its way out either way."""
        try:
            hooks = self.autoscaling.describe_lifecycle_hooks(AutoScalingGroupName=group).get(
                "LifecycleHooks", []
            )
        except AWS_ERRORS:
            return
        for hook in hooks:
            if hook.get("LifecycleTransition") != "autoscaling:EC2_INSTANCE_TERMINATING":
                continue
            with contextlib.suppress(*AWS_ERRORS):
                self.autoscaling.complete_lifecycle_action(
                    LifecycleHookName=hook["LifecycleHookName"],
                    AutoScalingGroupName=group,
                    InstanceId=instance_id,
                    LifecycleActionResult="CONTINUE",
                )


__all__ = ["AwsBackend"]
