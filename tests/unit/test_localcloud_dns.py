"""The local cloud's DNS: the answers for the names it serves (case-insensitive, trailing dot or
not, NXDOMAIN for the rest), the server on a loopback port, and a node's resolv.conf pointing at
the bridge address."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest
from dnslib import QTYPE, RCODE, DNSRecord

from airtasks_dev.localcloud import node as node_module
from airtasks_dev.localcloud.dns import DnsServer, Records, answer
from airtasks_dev.localcloud.network import Network, NodeLink
from airtasks_dev.localcloud.node import Instance, Node

NAME = "db1.aaaaaaaaaa.us-east-1.rds.amazonaws.com"


def ask(records: Records, name: str, qtype: str = "A") -> DNSRecord:
    return answer(records.snapshot(), DNSRecord.question(name, qtype))


@pytest.fixture
def records() -> Records:
    table = Records()
    table.set(NAME, "10.213.0.10")
    return table


def test_a_served_name_resolves_to_its_address(records: Records) -> None:
    reply = ask(records, NAME)
    assert reply.header.rcode == RCODE.NOERROR
    assert [(str(rr.rname), rr.rtype, str(rr.rdata)) for rr in reply.rr] == [
        (NAME + ".", QTYPE.A, "10.213.0.10")
    ]


def test_names_are_case_insensitive_with_or_without_the_trailing_dot(records: Records) -> None:
    assert str(ask(records, NAME.upper() + ".").rr[0].rdata) == "10.213.0.10"
    records.set("Other.Example.", "10.213.0.11")
    assert str(ask(records, "other.example").rr[0].rdata) == "10.213.0.11"


def test_an_unknown_name_is_nxdomain(records: Records) -> None:
    reply = ask(records, "example.com")
    assert reply.header.rcode == RCODE.NXDOMAIN
    assert reply.rr == []


def test_aaaa_of_a_served_name_is_empty_but_not_nxdomain(records: Records) -> None:
    reply = ask(records, NAME, "AAAA")
    assert reply.header.rcode == RCODE.NOERROR
    assert reply.rr == []


def test_a_removed_name_is_nxdomain(records: Records) -> None:
    records.remove(NAME.upper())
    assert ask(records, NAME).header.rcode == RCODE.NXDOMAIN


def test_the_server_answers_over_udp_and_tcp(records: Records) -> None:
    with DnsServer("127.0.0.1", records, port=0) as dns:
        for tcp in (False, True):
            raw = DNSRecord.question(NAME).send("127.0.0.1", dns.port, tcp=tcp, timeout=5)
            assert str(DNSRecord.parse(raw).rr[0].rdata) == "10.213.0.10"
        raw = DNSRecord.question("example.com").send("127.0.0.1", dns.port, timeout=5)
        assert DNSRecord.parse(raw).header.rcode == RCODE.NXDOMAIN


def test_a_node_resolves_through_the_bridge_address(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(node_module, "aws_cli", lambda: "/usr/bin/true")
    network = cast(Network, SimpleNamespace(gateway="10.213.7.1", run_id="abcd"))
    node = Node(network, Instance("i-0abc"), tmp_path)
    node.link = NodeLink(netns="at-abcd-i-0abc", veth="at-abcd-v10", address="10.213.7.10")
    node._prepare_disk()
    resolv = (tmp_path / "disk/ov/etc/upper/resolv.conf").read_text()
    assert [line for line in resolv.splitlines() if not line.startswith("#")] == ["nameserver 10.213.7.1"]
