"""The local cloud's view of an EC2 instance: what EC2 applies from the launch template of an Auto
Scaling launch (moto leaves it out of DescribeInstances) reaches the node's IMDS."""

from __future__ import annotations

from airtasks_dev.localcloud.runner import instance_from

PROFILE_ARN = "arn:aws:iam::123456789012:instance-profile/airtasks-local-manager"


def _described(**extra: object) -> dict[str, object]:
    return {"InstanceId": "i-0abc", "Placement": {"AvailabilityZone": "us-east-1b"}, **extra}


def test_the_launch_templates_profile_and_metadata_options_apply() -> None:
    template = {
        "IamInstanceProfile": {"Arn": PROFILE_ARN},
        "MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 2},
    }
    inst = instance_from(_described(), b"#!/bin/bash\n", template)
    assert inst.iam_role == "airtasks-local-manager"
    assert inst.hop_limit == 2
    assert inst.region == "us-east-1"


def test_a_template_naming_the_profile_works_too() -> None:
    inst = instance_from(_described(), b"", {"IamInstanceProfile": {"Name": "airtasks-local-worker"}})
    assert inst.iam_role == "airtasks-local-worker"


def test_the_instances_own_profile_wins_and_none_means_no_credentials() -> None:
    own = _described(IamInstanceProfile={"Arn": PROFILE_ARN.replace("manager", "other")})
    assert (
        instance_from(own, b"", {"IamInstanceProfile": {"Arn": PROFILE_ARN}}).iam_role
        == "airtasks-local-other"
    )
    assert instance_from(_described(), b"", None).iam_role is None
