"""The local cloud's DNS: names the local cloud serves (RDS endpoints) on port 53 of the bridge address.

A node's containers resolve through Docker's embedded DNS, which forwards what it does not know to
the nameserver in the node's /etc/resolv.conf; node.py points that at the bridge address. The nodes
have no route beyond the bridge, so this server answers only its own names (A records) and says
NXDOMAIN to everything else, at once, instead of letting a lookup time out. Nothing on the host
uses it: the host's /etc/resolv.conf is never touched.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from dnslib import QTYPE, RCODE, RR, A, DNSRecord
from dnslib.server import BaseResolver, DNSLogger, DNSServer

from airtasks.errors import AirtasksError

log = logging.getLogger("airtasks.localcloud")

DNS_PORT = 53
TTL = 5  # short: an RDS instance that is deleted and made again may come back on another address


def normalize(name: str) -> str:
    """A DNS name as the table keys it: lower case, no trailing dot (DNS names are case-insensitive)."""
    return name.rstrip(".").lower()


def answer(records: Mapping[str, str], request: DNSRecord) -> DNSRecord:
    """The reply to `request` from `records` (normalized name -> IPv4 address): an A record for a
    known name; no records but NOERROR for another type of a known name (so that a resolver asking
    A and AAAA together keeps the A); NXDOMAIN for a name not in the table."""
    reply = request.reply()
    qname = request.q.qname
    address = records.get(normalize(str(qname)))
    if address is None:
        reply.header.rcode = RCODE.NXDOMAIN
    elif request.q.qtype in (QTYPE.A, QTYPE.ANY):
        reply.add_answer(RR(qname, QTYPE.A, rdata=A(address), ttl=TTL))
    return reply


class Records:
    """The names the local cloud serves, thread-safe: the RDS emulator adds and removes, DNS reads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, str] = {}

    def set(self, name: str, address: str) -> None:
        with self._lock:
            self._records[normalize(name)] = address

    def remove(self, name: str) -> None:
        with self._lock:
            self._records.pop(normalize(name), None)

    def snapshot(self) -> dict[str, str]:
        with self._lock:
            return dict(self._records)


class _Resolver(BaseResolver):  # type: ignore[misc]
    def __init__(self, records: Records) -> None:
        self.records = records

    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        return answer(self.records.snapshot(), request)


class _QuietLogger(DNSLogger):  # type: ignore[misc]
    """dnslib prints every request and reply to stdout by default; only errors go to our log."""

    def __init__(self) -> None:
        super().__init__(log="-request,-reply,-truncated,-data,-recv,-send", prefix=False)

    def log_error(self, handler: Any, e: Exception) -> None:
        log.warning("dns: error handling a request: %r", e)


class DnsServer:
    """UDP and TCP DNS on address:port, answering from `records`. Context manager; `stop()`."""

    def __init__(self, address: str, records: Records | None = None, port: int = DNS_PORT) -> None:
        self.address = address
        self.port = port
        self.records = records if records is not None else Records()
        self._servers: list[DNSServer] = []

    def start(self) -> DnsServer:
        resolver, logger = _Resolver(self.records), _QuietLogger()
        try:
            for tcp in (False, True):
                server = DNSServer(resolver, address=self.address, port=self.port, tcp=tcp, logger=logger)
                self._servers.append(server)
                server.start_thread()
                # With port 0 (tests) UDP picked a free port; TCP takes the same one.
                self.port = int(server.server.server_address[1])
        except OSError as exc:
            self.stop()
            raise AirtasksError(
                f"the local cloud's DNS cannot listen on {self.address}:{self.port} ({exc.strerror}); "
                "a process bound to port 53 on all addresses (dnsmasq without bind-interfaces?) "
                "must bind only its own addresses"
            ) from exc
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.stop()
            server.server.server_close()
        self._servers.clear()

    def __enter__(self) -> DnsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
