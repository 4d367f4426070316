"""The aws backend's batched read (`read_many`): how many Auto Scaling and EC2 calls it makes for
N groups and M instances, against in-process moto, and how a failing group is kept apart."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from airtasks.backends import read_groups, remove_instances
from airtasks.backends.aws import AwsBackend
from airtasks.errors import BackendError
from tests.support.throttle import Throttle
from tests.unit.fakes import FakeBackend

REGION = "us-east-1"


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


def make_groups(sizes: dict[str, int]) -> None:
    """Auto Scaling groups with these many InService instances each."""
    asg = boto3.client("autoscaling", region_name=REGION)
    ec2 = boto3.client("ec2", region_name=REGION)
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    ec2.create_launch_template(
        LaunchTemplateName="workers",
        LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "t3.micro"},
    )
    for name, size in sizes.items():
        asg.create_auto_scaling_group(
            AutoScalingGroupName=name,
            LaunchTemplate={"LaunchTemplateName": "workers", "Version": "$Latest"},
            MinSize=0,
            MaxSize=max(size, 1),
            DesiredCapacity=size,
            VPCZoneIdentifier=subnet,
            NewInstancesProtectedFromScaleIn=True,
        )


def count_calls(backend: AwsBackend) -> Counter[str]:
    """Every API call the backend's clients make, as `service.Operation`, retries excluded."""
    calls: Counter[str] = Counter()

    def hook(model: Any, **_: Any) -> None:
        calls[f"{model.service_model.endpoint_prefix}.{model.name}"] += 1

    for client in (backend.autoscaling, backend.ec2, backend._once("autoscaling"), backend._once("ec2")):
        client.meta.events.register("before-call", hook)
    return calls


def test_three_groups_of_70_instances_cost_one_group_call_and_launch_times_once(aws: None) -> None:
    sizes = {"g0": 70, "g1": 70, "g2": 70}
    make_groups(sizes)
    backend = AwsBackend(REGION)
    calls = count_calls(backend)

    found = read_groups(backend, list(sizes))

    assert {g: (r[0], len(r[1])) for g, r in found.items() if not isinstance(r, BackendError)} == {
        g: (n, n) for g, n in sizes.items()
    }
    assert all(
        i.launched_at > 0 and i.protected
        for r in found.values()
        if not isinstance(r, BackendError)
        for i in r[1]
    )
    # 210 instances: one DescribeAutoScalingGroups for all three groups, 200 ids per DescribeInstances.
    assert calls == Counter({"autoscaling.DescribeAutoScalingGroups": 1, "ec2.DescribeInstances": 2})

    calls.clear()
    read_groups(backend, list(sizes))
    # Launch times never change: the next pass asks only for the groups.
    assert calls == Counter({"autoscaling.DescribeAutoScalingGroups": 1})


def test_group_calls_grow_with_groups_100_names_a_call(aws: None) -> None:
    names = [f"g{i:03}" for i in range(101)]
    make_groups(dict.fromkeys(names, 1))
    backend = AwsBackend(REGION)
    calls = count_calls(backend)

    found = read_groups(backend, names)

    assert sorted(g for g, r in found.items() if not isinstance(r, BackendError) and r[0] == 1) == names
    assert calls == Counter({"autoscaling.DescribeAutoScalingGroups": 2, "ec2.DescribeInstances": 1})


def test_a_throttled_group_fails_alone_and_the_others_are_read(aws: None) -> None:
    make_groups({"ok0": 2, "slow": 2, "ok1": 2})
    backend = AwsBackend(REGION)
    throttled = Throttle("slow").attach(backend.autoscaling, backend._once("autoscaling"))
    calls = count_calls(backend)

    found = read_groups(backend, ["ok0", "slow", "ok1"])

    failed = found["slow"]
    assert isinstance(failed, BackendError)
    assert str(failed) == "aws: describe slow (us-east-1): Throttling: Rate exceeded"
    assert [
        (r[0], len(r[1])) for g, r in found.items() if g != "slow" and not isinstance(r, BackendError)
    ] == [
        (2, 2),
        (2, 2),
    ]
    # The batch (3 tries), then each of its groups alone, once: the batch was retried already.
    assert calls["autoscaling.DescribeAutoScalingGroups"] == 4
    assert throttled.refused == 3 + 1


def test_a_missing_group_names_the_key_to_fix_and_the_others_are_read(aws: None) -> None:
    make_groups({"there": 1})
    found = read_groups(AwsBackend(REGION), ["there", "nope"])
    assert not isinstance(found["there"], BackendError)
    assert isinstance(found["nope"], BackendError)
    assert "no Auto Scaling group named nope in us-east-1; check queues.<queue>.group" in str(found["nope"])


def test_a_backend_without_read_many_is_read_group_by_group() -> None:
    """gcp and swarm offer no batched read: each group is read alone, a failure kept to its group."""

    class OneBroken(FakeBackend):
        def size(self, group: str) -> int:
            if group == "broken":
                raise BackendError("fake: describe broken: ServiceUnavailable")
            return super().size(group)

    backend = OneBroken()
    backend.add("a", "n1", "n2")
    backend.add("broken", "n3")
    found = read_groups(backend, ["a", "broken"])
    assert found["a"] == (2, backend.members["a"])
    assert str(found["broken"]) == "fake: describe broken: ServiceUnavailable"


def test_removing_three_instances_lifts_their_protection_in_one_call(aws: None) -> None:
    make_groups({"g": 4})
    asg = boto3.client("autoscaling", region_name=REGION)
    ids = sorted(i["InstanceId"] for i in asg.describe_auto_scaling_instances()["AutoScalingInstances"])
    backend = AwsBackend(REGION)
    calls = count_calls(backend)

    outcome = remove_instances(backend, "g", ids[:3])

    assert outcome == dict.fromkeys(ids[:3])
    assert calls == Counter(
        {
            "autoscaling.SetInstanceProtection": 1,
            "autoscaling.TerminateInstanceInAutoScalingGroup": 3,  # the API takes one instance
            "autoscaling.DescribeLifecycleHooks": 1,
        }
    )
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["g"])["AutoScalingGroups"][0]
    assert group["DesiredCapacity"] == 1
    # The one left keeps its protection: the group cannot pick it on its own.
    assert [(i["InstanceId"], i["ProtectedFromScaleIn"]) for i in group["Instances"]] == [(ids[3], True)]


def test_a_group_whose_launch_times_are_throttled_fails_alone(aws: None) -> None:
    make_groups({"a": 2, "b": 2})
    asg = boto3.client("autoscaling", region_name=REGION)
    found = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["b"])["AutoScalingGroups"][0]
    backend = AwsBackend(REGION)
    throttled = Throttle(found["Instances"][0]["InstanceId"], "ec2").attach(backend.ec2, backend._once("ec2"))
    calls = count_calls(backend)

    read = read_groups(backend, ["a", "b"])

    assert (
        str(read["b"])
        == "aws: describe instances of b (us-east-1): RequestLimitExceeded: Request limit exceeded."
    )
    assert not isinstance(read["a"], BackendError)
    assert [i.launched_at > 0 for i in read["a"][1]] == [True, True]
    # One batch for both groups (3 tries), then each group alone, once.
    assert calls["ec2.DescribeInstances"] == 3
    assert throttled.refused == 3 + 1
