"""Helpers of the e2e tests: moto clients, tags, what a manager node's Swarm looks like."""

from __future__ import annotations

from typing import Any

import boto3

from tests.e2e.localcloud.node import Node
from tests.support.moto_server import MotoServer

REGION = "us-east-1"
AMI = "ami-12c6146b"  # one of moto's default AMIs


def clients(moto: MotoServer) -> tuple[Any, Any, Any]:
    kw = {"endpoint_url": moto.url, "region_name": REGION}
    return boto3.client("ec2", **kw), boto3.client("ssm", **kw), boto3.client("autoscaling", **kw)


def cluster_tags(cluster: str, role: str) -> list[dict[str, Any]]:
    tags = [{"Key": "airtasks:cluster", "Value": cluster}, {"Key": "airtasks:role", "Value": role}]
    return [{"ResourceType": "instance", "Tags": tags}]


def swarm_nodes(manager: Node) -> dict[str, dict[str, Any]]:
    """Swarm nodes as the manager sees them, by hostname."""
    with manager.client(timeout=10) as client:
        nodes = client.nodes.list()
    # A node that has just joined may not have reported its description yet.
    return {
        n.attrs["Description"]["Hostname"]: n.attrs for n in nodes if n.attrs["Description"].get("Hostname")
    }
