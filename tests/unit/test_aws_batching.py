"""How many AWS calls a pass makes for N groups and M instances (botocore Stubber: each expected
call is queued, and a call that was not queued fails the test), and which queues a failed call
holds. The pass's own batching of node-level Airflow reads is tested at the bottom."""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from airtasks.backends.aws import GROUPS_PER_CALL, INSTANCES_PER_CALL, AwsBackend
from airtasks.config import parse_config
from airtasks.errors import BackendError
from airtasks.scaling.read import read_queues
from airtasks.wiring import Clients
from tests.unit.fakes import FakeAirflow, FakeBackend

LAUNCHED = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def backend() -> tuple[AwsBackend, Stubber, Stubber]:
    session = boto3.session.Session(
        region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )
    aws = AwsBackend("us-east-1", session=session)
    asg, ec2 = Stubber(aws.autoscaling), Stubber(aws.ec2)
    # The un-retried client that pinpoints a failed batch: the same stub, so the order is checked.
    aws._asg_once = aws.autoscaling
    asg.activate()
    ec2.activate()
    return aws, asg, ec2


def world(groups: int, per_group: int) -> dict[str, list[str]]:
    return {f"g{g:03d}": [f"i-{g:03d}{n:05d}" for n in range(per_group)] for g in range(groups)}


def group_doc(name: str, ids: list[str]) -> dict[str, Any]:
    return {
        "AutoScalingGroupName": name,
        "MinSize": 0,
        "MaxSize": 1000,
        "DesiredCapacity": len(ids),
        "DefaultCooldown": 300,
        "AvailabilityZones": ["us-east-1a"],
        "HealthCheckType": "EC2",
        "CreatedTime": LAUNCHED,
        "Instances": [
            {
                "InstanceId": i,
                "AvailabilityZone": "us-east-1a",
                "LifecycleState": "InService",
                "HealthStatus": "Healthy",
                "ProtectedFromScaleIn": True,
            }
            for i in ids
        ],
    }


def expect_groups(stub: Stubber, groups: dict[str, list[str]]) -> int:
    names = list(groups)
    calls = 0
    for start in range(0, len(names), GROUPS_PER_CALL):
        chunk = names[start : start + GROUPS_PER_CALL]
        stub.add_response(
            "describe_auto_scaling_groups",
            {"AutoScalingGroups": [group_doc(n, groups[n]) for n in chunk]},
            {"AutoScalingGroupNames": chunk, "MaxRecords": 100},
        )
        calls += 1
    return calls


def expect_instances(stub: Stubber, ids: list[str]) -> int:
    calls = 0
    for start in range(0, len(ids), INSTANCES_PER_CALL):
        chunk = ids[start : start + INSTANCES_PER_CALL]
        stub.add_response(
            "describe_instances",
            {"Reservations": [{"Instances": [{"InstanceId": i, "LaunchTime": LAUNCHED} for i in chunk]}]},
            {"InstanceIds": chunk},
        )
        calls += 1
    return calls


@pytest.mark.parametrize(("groups", "per_group"), [(1, 3), (20, 100), (120, 20), (3, 900)])
def test_describes_grow_with_groups_and_pages_not_with_instances(groups: int, per_group: int) -> None:
    aws, asg, ec2 = backend()
    w = world(groups, per_group)
    all_ids = [i for ids in w.values() for i in ids]

    # First read: the groups in batches, every launch time in batches.
    assert expect_groups(asg, w) == math.ceil(groups / GROUPS_PER_CALL)
    assert expect_instances(ec2, all_ids) == math.ceil(len(all_ids) / INSTANCES_PER_CALL)
    first = aws.read_groups(list(w))
    asg.assert_no_pending_responses()
    ec2.assert_no_pending_responses()
    assert {g: (r if isinstance(r, BackendError) else r[0]) for g, r in first.items()} == {
        g: per_group for g in w
    }

    # Steady state: the launch times are known; only the group describes again.
    expect_groups(asg, w)
    second = aws.read_groups(list(w))
    asg.assert_no_pending_responses()
    assert all(not isinstance(r, BackendError) and len(r[1]) == per_group for r in second.values())


def test_new_instances_only_are_described() -> None:
    aws, asg, ec2 = backend()
    w = world(20, 100)
    expect_groups(asg, w)
    expect_instances(ec2, [i for ids in w.values() for i in ids])
    aws.read_groups(list(w))
    # Two groups grew by one instance each; one lost one (its launch time is forgotten).
    w["g000"].append("i-new-0")
    w["g007"].append("i-new-7")
    w["g010"].pop(0)
    expect_groups(asg, w)
    expect_instances(ec2, ["i-new-0", "i-new-7"])
    result = aws.read_groups(list(w))
    asg.assert_no_pending_responses()
    ec2.assert_no_pending_responses()
    assert not isinstance(result["g000"], BackendError)
    assert result["g000"][1][-1].launched_at == LAUNCHED.timestamp()
    assert "i-01000000" not in aws._launched


def test_a_failed_batch_holds_only_the_group_it_was_about() -> None:
    """The batch fails (after its retries): each group is asked for once on its own, and only the
    one that fails again is an error."""
    aws, asg, ec2 = backend()
    w = world(4, 2)
    names = list(w)
    asg.add_client_error("describe_auto_scaling_groups", "Throttling", "Rate exceeded", 400)
    for name in names:
        if name == "g002":
            asg.add_client_error("describe_auto_scaling_groups", "Throttling", "Rate exceeded", 400)
        else:
            asg.add_response(
                "describe_auto_scaling_groups",
                {"AutoScalingGroups": [group_doc(name, w[name])]},
                {"AutoScalingGroupNames": [name], "MaxRecords": 100},
            )
    expect_instances(ec2, [i for n in names if n != "g002" for i in w[n]])
    result = aws.read_groups(names)
    asg.assert_no_pending_responses()
    ec2.assert_no_pending_responses()
    assert isinstance(result["g002"], BackendError)
    assert "Throttling" in str(result["g002"])
    assert [g for g, r in result.items() if not isinstance(r, BackendError)] == ["g000", "g001", "g003"]


def test_a_missing_group_is_an_error_of_that_group_only() -> None:
    aws, asg, ec2 = backend()
    w = world(3, 1)
    asg.add_response(
        "describe_auto_scaling_groups",
        {"AutoScalingGroups": [group_doc(n, w[n]) for n in ("g000", "g002")]},
        {"AutoScalingGroupNames": list(w), "MaxRecords": 100},
    )
    expect_instances(ec2, [*w["g000"], *w["g002"]])
    result = aws.read_groups(list(w))
    assert "no Auto Scaling group named g001" in str(result["g001"])
    assert not isinstance(result["g000"], BackendError)


def test_remove_many_lifts_protection_in_bulk_and_reads_hooks_once() -> None:
    aws, asg, _ = backend()
    ids = [f"i-{n:05d}" for n in range(60)]
    for chunk in (ids[:50], ids[50:]):
        asg.add_response(
            "set_instance_protection",
            {},
            {"InstanceIds": chunk, "AutoScalingGroupName": "g", "ProtectedFromScaleIn": False},
        )
    for i in ids:
        activity = {
            "ActivityId": f"a-{i}",
            "AutoScalingGroupName": "g",
            "Cause": "test",
            "StartTime": LAUNCHED,
            "StatusCode": "InProgress",
        }
        asg.add_response(
            "terminate_instance_in_auto_scaling_group",
            {"Activity": activity},
            {"InstanceId": i, "ShouldDecrementDesiredCapacity": True},
        )
    asg.add_response("describe_lifecycle_hooks", {"LifecycleHooks": []}, {"AutoScalingGroupName": "g"})
    assert aws.remove_many("g", ids) == dict.fromkeys(ids)
    asg.assert_no_pending_responses()


# -- the pass reads who runs what only for the queues that may shrink --------------------------


def test_node_level_airflow_reads_only_for_queues_that_may_shrink() -> None:
    config = parse_config(
        {
            "backend": "aws",
            "region": "us-east-1",
            "sources": {"airflow": {"url": "http://airflow.invalid"}},
            "queues": {
                q: {"group": f"g-{q}", "max_size": 10, "slots_per_node": 2}
                for q in ("fits", "shrinks", "grows")
            },
        }
    )
    be = FakeBackend()
    be.add("g-fits", "i-f1", "i-f2")
    be.add("g-shrinks", "i-s1", "i-s2", "i-s3")
    be.add("g-grows", "i-g1")
    asked: list[list[str]] = []

    class Recording(FakeAirflow):
        def busy(self, queues: Any) -> dict[str, Counter[str]]:
            asked.append(list(queues))
            return super().busy(asked[-1])

    airflow = Recording(
        queued={"fits": 4, "shrinks": 1, "grows": 9},
        on_hosts={"shrinks": Counter({"i-s1": 1})},
    )
    reads = {r.queue: r for r in read_queues(config, Clients(backend=be, airflow=airflow))}  # type: ignore[arg-type]
    assert asked == [["shrinks"]]
    assert reads["shrinks"].busy == Counter({"i-s1": 1})
    assert reads["fits"].busy is None
    assert reads["grows"].busy is None
    assert all(not r.errors for r in reads.values())
