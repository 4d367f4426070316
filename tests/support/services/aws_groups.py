"""Real Auto Scaling groups on the moto server, built with boto3 the way envs/* build them
(launch template, scale-in protection for new instances, tags per docs/design.md)."""

from __future__ import annotations

import time
from typing import Any

import boto3


def clients(region: str = "us-east-1") -> tuple[Any, Any]:
    return boto3.client("autoscaling", region_name=region), boto3.client("ec2", region_name=region)


# One of moto's built-in AMIs; listing them all takes seconds, asking for one takes milliseconds.
MOTO_AMI = "ami-12c6146b"


def _image(ec2: Any) -> str:
    found = ec2.describe_images(Filters=[{"Name": "image-id", "Values": [MOTO_AMI]}])["Images"]
    return (
        str(found[0]["ImageId"])
        if found
        else str(ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"])
    )


def make_group(
    cluster: str, queue: str, size: int, *, protected: bool = True, region: str = "us-east-1"
) -> str:
    """An ASG `airtasks-<cluster>-<queue>` with `size` InService instances; returns its name."""
    asg, ec2 = clients(region)
    name = f"airtasks-{cluster}-{queue}"
    image = _image(ec2)
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    ec2.create_launch_template(
        LaunchTemplateName=name, LaunchTemplateData={"ImageId": image, "InstanceType": "t3.micro"}
    )
    asg.create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchTemplate={"LaunchTemplateName": name, "Version": "$Latest"},
        MinSize=0,
        MaxSize=10,
        DesiredCapacity=size,
        VPCZoneIdentifier=subnet,
        NewInstancesProtectedFromScaleIn=protected,
        Tags=[
            {
                "Key": k,
                "Value": v,
                "PropagateAtLaunch": True,
                "ResourceId": name,
                "ResourceType": "auto-scaling-group",
            }
            for k, v in {
                "airtasks:cluster": cluster,
                "airtasks:queue": queue,
                "airtasks:role": "worker",
                "Name": name,
            }.items()
        ],
    )
    return name


def group(name: str, region: str = "us-east-1") -> dict[str, Any]:
    asg, _ = clients(region)
    return dict(asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0])


def instance_ids(name: str, region: str = "us-east-1") -> list[str]:
    return sorted(
        i["InstanceId"]
        for i in group(name, region)["Instances"]
        if i["LifecycleState"] in {"InService", "Pending"}
    )


def ec2_state(instance_id: str, region: str = "us-east-1") -> str:
    _, ec2 = clients(region)
    res = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    return str(res[0]["Instances"][0]["State"]["Name"])


def wait_in_service(name: str, count: int, timeout: float = 10, region: str = "us-east-1") -> list[str]:
    deadline = time.monotonic() + timeout
    while len(instance_ids(name, region)) != count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name}: {len(instance_ids(name, region))} instances, expected {count}")
        time.sleep(0.1)
    return instance_ids(name, region)
