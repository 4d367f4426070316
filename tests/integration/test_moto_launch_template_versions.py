"""The local AWS API (moto, as airtasks_dev.devstack serves it) launches an Auto Scaling group's
replacement instance from a launch template's newest version, with that version's user data: what
a changed `terraform apply` (a new version) and a lost manager's replacement rely on in the box."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import boto3
import pytest

from airtasks_dev.devstack.moto import MotoServer, run_moto

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    with run_moto(log=tmp_path_factory.mktemp("moto-lt") / "moto.log") as server:
        yield server


def test_a_replacement_boots_from_the_newest_version_with_its_user_data(moto: MotoServer) -> None:
    aws = {"endpoint_url": moto.url, "region_name": "us-east-1"} | {
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }
    ec2, autoscaling = boto3.client("ec2", **aws), boto3.client("autoscaling", **aws)
    image = ec2.describe_images()["Images"][0]["ImageId"]

    def data(script: str) -> dict[str, str]:
        return {"ImageId": image, "UserData": base64.b64encode(script.encode()).decode()}

    ec2.create_launch_template(
        LaunchTemplateName="managers", LaunchTemplateData=data("#!/bin/sh\necho one\n")
    )
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="managers",
        LaunchTemplate={"LaunchTemplateName": "managers", "Version": "$Latest"},
        MinSize=1,
        MaxSize=1,
        DesiredCapacity=1,
        AvailabilityZones=["us-east-1a"],
    )
    ec2.create_launch_template_version(
        LaunchTemplateName="managers", LaunchTemplateData=data("#!/bin/sh\necho two\n")
    )

    def instances() -> set[str]:
        (group,) = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["managers"])[
            "AutoScalingGroups"
        ]
        return {i["InstanceId"] for i in group["Instances"]}

    (lost,) = instances()
    autoscaling.terminate_instance_in_auto_scaling_group(
        InstanceId=lost, ShouldDecrementDesiredCapacity=False
    )
    (replacement,) = instances() - {lost}
    user_data = ec2.describe_instance_attribute(InstanceId=replacement, Attribute="userData")["UserData"][
        "Value"
    ]
    assert base64.b64decode(user_data) == b"#!/bin/sh\necho two\n"
