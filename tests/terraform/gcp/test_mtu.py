"""The GCP VPC's MTU fits Docker's overlay networks plus VXLAN (static; no provider needed).

Docker's overlay driver gives containers an MTU of 1450 unless a network sets
`com.docker.network.driver.mtu`; VXLAN adds 50 bytes (outer IPv4 20, UDP 8, VXLAN 8, inner
Ethernet 14). Every overlay packet must fit the VPC's MTU, which GCP sets to 1460 unless
`google_compute_network.mtu` says otherwise (https://cloud.google.com/vpc/docs/mtu).
"""

from __future__ import annotations

import yaml

from tests.support.terraform import REPO
from tests.support.tfdocs import load_module

VXLAN_OVERHEAD = 50
DOCKER_OVERLAY_DEFAULT_MTU = 1450
GCP_DEFAULT_MTU = 1460
GCP_MTU_RANGE = range(1300, 8896 + 1)
STACK = REPO / "docker/docker-compose-CeleryExecutor.yml"


def _vpc_mtu() -> int:
    body = load_module(REPO / "modules/gcp/network").resource("google_compute_network", "this").body
    mtu = body.get("mtu", GCP_DEFAULT_MTU)
    assert isinstance(mtu, int), f"the VPC's mtu must be a literal to be checked here: {mtu!r}"
    return mtu


def _overlay_mtus() -> dict[str, int]:
    """Each overlay network's container MTU: the stack's networks, and the Swarm's ingress."""
    networks = yaml.safe_load(STACK.read_text()).get("networks") or {}
    mtus = {"ingress": DOCKER_OVERLAY_DEFAULT_MTU}  # created by `docker swarm init` with the default
    for name, declared in networks.items():
        spec = declared or {}
        if spec.get("driver") == "overlay":
            opts = spec.get("driver_opts") or {}
            mtus[name] = int(opts.get("com.docker.network.driver.mtu", DOCKER_OVERLAY_DEFAULT_MTU))
    return mtus


def test_the_stack_has_overlay_networks_to_check() -> None:
    assert set(_overlay_mtus()) > {"ingress"}, f"{STACK}: no overlay network found"


def test_vpc_mtu_fits_every_overlay_plus_vxlan() -> None:
    vpc = _vpc_mtu()
    assert vpc in GCP_MTU_RANGE, f"GCP takes VPC MTUs of 1300 to 8896, not {vpc}"
    for name, mtu in _overlay_mtus().items():
        assert mtu + VXLAN_OVERHEAD <= vpc, (
            f"overlay {name}: {mtu} + {VXLAN_OVERHEAD} bytes of VXLAN > the VPC's MTU {vpc}; "
            "raise google_compute_network.mtu (modules/gcp/network) or lower the overlay's MTU"
        )


def test_vpc_mtu_is_one_the_internet_takes() -> None:
    """Above 1500, traffic through Cloud NAT to the internet would be fragmented or clamped."""
    assert _vpc_mtu() <= 1500
