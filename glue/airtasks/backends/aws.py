"""AWS: one Auto Scaling group per queue (boto3 Auto Scaling + EC2).

Worker groups are built with `protect_from_scale_in`, so the group never picks a victim itself
when its desired capacity drops: the scaler picks an idle instance, lifts that one instance's
protection and terminates it with `ShouldDecrementDesiredCapacity=True`, then completes a
termination lifecycle hook if the group has one (the node is drained already). boto3 honours
`AWS_ENDPOINT_URL` (how the tests and `make up` point it at moto).

At scale (docs/design.md, "At scale"): a pass reads all groups with `read_many`, one batched
DescribeAutoScalingGroups (100 names a call) and DescribeInstances only for instances whose launch
time it has not seen yet (200 ids a call, cached after), so the calls grow with groups, not nodes.
If a batched call still fails after its retries, each group it named is read alone, once, so a
group that is throttled or broken holds only its own queue.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from airtasks.backends.base import GroupRead, Instance
from airtasks.errors import BackendError

# What a failed AWS call can raise: API errors, transport errors, and replies that are not AWS's
# (a proxy or load balancer answering for it).
AWS_ERRORS = (ClientError, BotoCoreError, ResponseParserError)

# Instances in these lifecycle states count towards the group; Terminating*, Detaching,
# Standby and Warmed:* do not.
COUNTED = frozenset({"Pending", "Pending:Wait", "Pending:Proceed", "InService"})

# API limits: AutoScalingGroupNames takes up to 100 names (MaxRecords 100); a DescribeInstances
# filter takes up to 200 values.
GROUPS_PER_CALL = 100
IDS_PER_CALL = 200
PROTECT_PER_CALL = 50  # SetInstanceProtection's InstanceIds


def _chunks(items: Sequence[str], size: int) -> Iterator[list[str]]:
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
        # Standard, not adaptive: adaptive mode slows the whole client after a throttle, so one
        # throttled group would delay every other queue's calls as well. Standard retries each
        # throttled call with jittered backoff (at most 1 s, then 2 s): 3 tries in all end within
        # a 5 s pass interval. (`total_max_attempts` counts the first try; `max_attempts` does not.)
        self._config = Config(
            region_name=region,
            retries={"total_max_attempts": max_attempts, "mode": "standard"},
            connect_timeout=min(timeout_seconds, 5.0),
            read_timeout=timeout_seconds,
        )
        # For reading a group alone after its batched read failed: that call was retried already.
        self._once_config = self._config.merge(Config(retries={"total_max_attempts": 1, "mode": "standard"}))
        self._asg: Any = None
        self._asg_once: Any = None
        self._ec2: Any = None
        self._ec2_once: Any = None
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

    def warm(self) -> None:
        """Build both clients and the paginators a read uses. boto3 lists its service folders and
        parses their models on first use: seconds of CPU on a busy host, holding the GIL."""
        self.autoscaling.get_paginator("describe_auto_scaling_groups")
        self.ec2.get_paginator("describe_instances")

    def _once(self, service: str) -> Any:
        """A client of `service` that tries each call once (see `read_many`)."""
        if service == "autoscaling":
            if self._asg_once is None:
                self._asg_once = self._session.client("autoscaling", config=self._once_config)
            return self._asg_once
        if self._ec2_once is None:
            self._ec2_once = self._session.client("ec2", config=self._once_config)
        return self._ec2_once

    def _fail(self, what: str, group: str, exc: Exception) -> BackendError:
        return BackendError(f"aws: {what} {group} ({self.region}): {_describe(exc)}")

    def _missing(self, group: str) -> BackendError:
        return BackendError(
            f"aws: no Auto Scaling group named {group} in {self.region}; "
            "check queues.<queue>.group and region in the scaler config"
        )

    def _group(self, group: str) -> dict[str, Any]:
        try:
            found = self.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])
        except AWS_ERRORS as exc:
            raise self._fail("describe", group, exc) from None
        groups = found.get("AutoScalingGroups") or []
        if not groups:
            raise self._missing(group)
        return dict(groups[0])

    def _describe_groups(self, client: Any, names: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        pages = client.get_paginator("describe_auto_scaling_groups").paginate(
            AutoScalingGroupNames=names, PaginationConfig={"PageSize": GROUPS_PER_CALL}
        )
        for page in pages:
            for data in page.get("AutoScalingGroups") or []:
                found[str(data["AutoScalingGroupName"])] = dict(data)
        return found

    def _groups(self, names: list[str]) -> dict[str, dict[str, Any] | BackendError]:
        """Each group's description: batched, then alone for the groups of a batch that failed."""
        out: dict[str, dict[str, Any] | BackendError] = {}
        for chunk in _chunks(names, GROUPS_PER_CALL):
            try:
                found = self._describe_groups(self.autoscaling, chunk)
            except AWS_ERRORS:
                found = {}
                for group in chunk:
                    try:
                        found.update(self._describe_groups(self._once("autoscaling"), [group]))
                    except AWS_ERRORS as exc:
                        out[group] = self._fail("describe", group, exc)
            for group in chunk:
                if group not in out:
                    out[group] = found[group] if group in found else self._missing(group)
        return out

    def _describe_launch_times(self, client: Any, ids: list[str]) -> None:
        # A filter, not InstanceIds: an id EC2 does not know (yet) is left out instead of failing
        # the whole call with InvalidInstanceID.NotFound.
        pages = client.get_paginator("describe_instances").paginate(
            Filters=[{"Name": "instance-id", "Values": ids}], PaginationConfig={"PageSize": 1000}
        )
        for page in pages:
            for res in page.get("Reservations", []):
                for inst in res.get("Instances", []):
                    self._launched[inst["InstanceId"]] = inst["LaunchTime"].timestamp()

    def _fetch_launch_times(self, ids_by_group: dict[str, list[str]]) -> dict[str, BackendError]:
        """Launch times of the instances not seen before (they never change), batched across
        groups; a failed batch is asked again per group. Returns the groups that could not be read."""
        missing = {g: [i for i in ids if i not in self._launched] for g, ids in ids_by_group.items()}
        owner = {i: g for g, ids in missing.items() for i in ids}
        failed: dict[str, BackendError] = {}
        for chunk in _chunks(list(owner), IDS_PER_CALL):
            try:
                self._describe_launch_times(self.ec2, chunk)
            except AWS_ERRORS:
                for group in dict.fromkeys(owner[i] for i in chunk):
                    try:
                        for part in _chunks(missing[group], IDS_PER_CALL):
                            self._describe_launch_times(self._once("ec2"), part)
                    except AWS_ERRORS as exc:
                        failed[group] = self._fail("describe instances of", group, exc)
        return failed

    def read_many(self, groups: Sequence[str]) -> dict[str, GroupRead]:
        """Size and instances of every group, in calls that grow with groups, not instances."""
        names = list(dict.fromkeys(groups))
        described = self._groups(names)
        members: dict[str, list[dict[str, Any]]] = {}
        out: dict[str, GroupRead] = {}
        for group, data in described.items():
            if isinstance(data, BackendError):
                out[group] = data
            else:
                members[group] = [i for i in data.get("Instances", []) if i.get("LifecycleState") in COUNTED]
        failed = self._fetch_launch_times({g: [m["InstanceId"] for m in ms] for g, ms in members.items()})
        for group, ms in members.items():
            if group in failed:
                out[group] = failed[group]
                continue
            data = described[group]
            assert not isinstance(data, BackendError)
            out[group] = (
                int(data["DesiredCapacity"]),
                [
                    Instance(
                        id=m["InstanceId"],
                        launched_at=self._launched.get(m["InstanceId"], 0.0),
                        state=str(m.get("LifecycleState", "")),
                        protected=bool(m.get("ProtectedFromScaleIn", False)),
                    )
                    for m in ms
                ],
            )
        return out

    def read(self, group: str) -> tuple[int, list[Instance]]:
        found = self.read_many([group])[group]
        if isinstance(found, BackendError):
            raise found
        return found

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

    def _protect(self, group: str, instance_ids: list[str], protected: bool) -> None:
        self.autoscaling.set_instance_protection(
            InstanceIds=instance_ids, AutoScalingGroupName=group, ProtectedFromScaleIn=protected
        )

    def remove(self, group: str, instance_id: str) -> None:
        failed = self.remove_many(group, [instance_id])[instance_id]
        if failed is not None:
            raise failed

    def remove_many(self, group: str, instance_ids: Sequence[str]) -> dict[str, BackendError | None]:
        """Terminate exactly these instances of `group`, shrinking it by one each: their scale-in
        protection lifted in one call per 50 (the API's limit), each terminated on its own (the API
        takes one), the group's lifecycle hooks read once. None for each removed instance."""
        out: dict[str, BackendError | None] = {}
        lifted: list[str] = []
        for chunk in _chunks(list(dict.fromkeys(instance_ids)), PROTECT_PER_CALL):
            try:
                self._protect(group, chunk, False)
            except AWS_ERRORS as exc:
                out.update({i: self._fail(f"lift scale-in protection of {i} in", group, exc) for i in chunk})
                continue
            lifted.extend(chunk)
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
        return out

    def _complete_termination_hooks(self, group: str, instance_ids: list[str]) -> None:
        """The scaler drained the nodes already: let a termination lifecycle hook go on at once
        instead of holding each instance in Terminating:Wait until its heartbeat times out.
        Best effort: the instances are already on their way out either way."""
        if not instance_ids:
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
            for instance_id in instance_ids:
                with contextlib.suppress(*AWS_ERRORS):
                    self.autoscaling.complete_lifecycle_action(
                        LifecycleHookName=hook["LifecycleHookName"],
                        AutoScalingGroupName=group,
                        InstanceId=instance_id,
                        LifecycleActionResult="CONTINUE",
                    )


__all__ = ["AwsBackend"]
