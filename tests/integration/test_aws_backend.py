"""The aws backend against real Auto Scaling groups on the moto server."""

from __future__ import annotations

import itertools

import pytest

from airtasks.backends.aws import AwsBackend
from airtasks.errors import BackendError
from tests.support.services import aws_groups

pytestmark = pytest.mark.integration
_n = itertools.count()


@pytest.fixture
def cluster(aws_env: dict[str, str]) -> str:
    return f"aws{next(_n)}"


def test_reads_size_instances_launch_time_and_protection(cluster: str) -> None:
    name = aws_groups.make_group(cluster, "default", 2)
    backend = AwsBackend("us-east-1")
    size, instances = backend.read(name)
    assert size == 2
    assert sorted(i.id for i in instances) == aws_groups.instance_ids(name)
    assert all(i.protected and i.state == "InService" and i.launched_at > 0 for i in instances)
    assert backend.size(name) == 2


def test_set_size_scales_out(cluster: str) -> None:
    name = aws_groups.make_group(cluster, "default", 0)
    AwsBackend("us-east-1").set_size(name, 3)
    assert aws_groups.group(name)["DesiredCapacity"] == 3
    assert len(aws_groups.wait_in_service(name, 3)) == 3


def test_remove_terminates_exactly_that_instance_and_decrements(cluster: str) -> None:
    name = aws_groups.make_group(cluster, "default", 3)
    ids = aws_groups.instance_ids(name)
    AwsBackend("us-east-1").remove(name, ids[1])
    assert aws_groups.group(name)["DesiredCapacity"] == 2
    assert aws_groups.instance_ids(name) == [ids[0], ids[2]]
    assert aws_groups.ec2_state(ids[1]) in {"shutting-down", "terminated"}
    # The others keep their scale-in protection: the group cannot pick them on its own.
    assert all(
        i["ProtectedFromScaleIn"] for i in aws_groups.group(name)["Instances"] if i["InstanceId"] != ids[1]
    )


def test_unknown_group_names_the_key_to_fix(aws_env: dict[str, str]) -> None:
    with pytest.raises(
        BackendError, match=r"no Auto Scaling group named nope in us-east-1; check queues.<queue>.group"
    ):
        AwsBackend("us-east-1").size("nope")


def test_remove_lets_a_termination_hook_go_on(cluster: str) -> None:
    """envs/* give worker groups a termination lifecycle hook; the scaler has drained already, so it
    completes the hook (best effort: moto does not implement CompleteLifecycleAction)."""
    name = aws_groups.make_group(cluster, "default", 2)
    asg, _ = aws_groups.clients()
    asg.put_lifecycle_hook(
        LifecycleHookName="drain",
        AutoScalingGroupName=name,
        LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING",
        HeartbeatTimeout=300,
        DefaultResult="CONTINUE",
    )
    ids = aws_groups.instance_ids(name)
    AwsBackend("us-east-1").remove(name, ids[0])
    assert aws_groups.instance_ids(name) == [ids[1]]
