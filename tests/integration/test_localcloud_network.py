"""The local cloud's network as its nodes see it: the run's services on the bridge address stay
reachable while other nodes come and go, as a cloud's gateway does when the group launches or
terminates an instance."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from airtasks_dev.localcloud.network import Network, NodeLink

pytestmark = pytest.mark.integration

# Asks a UDP echo at argv[1]:argv[2] once a second for up to argv[3] s; prints how long the first
# answer took, or "none".
ASK = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1)
start = time.monotonic()
while time.monotonic() - start < float(sys.argv[3]):
    s.sendto(b"ping", (sys.argv[1], int(sys.argv[2])))
    try:
        s.recvfrom(16)
    except TimeoutError:
        continue
    print(f"{time.monotonic() - start:.1f}")
    break
else:
    print("none")
"""


@pytest.fixture
def network() -> Iterator[Network]:
    with Network.create() as net:
        yield net


@pytest.fixture
def echo(network: Network) -> Iterator[int]:
    """A UDP echo on the bridge address (a stand-in for the local cloud's DNS); its port."""
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind((network.gateway, 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, peer = server.recvfrom(16)
            except TimeoutError:
                continue
            server.sendto(data, peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield int(server.getsockname()[1])
    stop.set()
    thread.join()
    server.close()


def first_answer(link: NodeLink, gateway: str, port: int, within: float) -> str:
    """Seconds until the node's first answer from the echo, or "none" within `within` s."""
    cmd = ["ip", "netns", "exec", link.netns, sys.executable, "-c", ASK, gateway, str(port), str(within)]
    return subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=within + 30).stdout.strip()


def bridge_address(network: Network) -> str:
    return Path(f"/sys/class/net/{network.bridge}/address").read_text().strip()


def test_a_node_reaches_the_bridge_at_once_after_another_node_left(network: Network, echo: int) -> None:
    mac = bridge_address(network)
    # A node whose veth has the lowest MAC a port can have: a bridge that followed its ports'
    # addresses would take this one, the next node would learn it for the bridge address, and it
    # would change again when this node goes.
    other = network.add_node("goes", network.allocate())
    subprocess.run(["ip", "link", "set", other.veth, "address", "02:00:00:00:00:01"], check=True)
    node = network.add_node("stays", network.allocate())
    assert first_answer(node, network.gateway, echo, 10) != "none"
    network.remove_node(other)
    assert bridge_address(network) == mac
    # The node asks with the bridge's address it has in its ARP cache: the answer must come at
    # once, not when that entry expires (15-45 s later).
    took = first_answer(node, network.gateway, echo, 5)
    assert took != "none", "no answer from the bridge within 5 s"
    assert float(took) < 2, f"first answer from the bridge after {took} s"
