"""DNS test helpers on top of ``peers.dnsmasq``: record lines, resolvers, a failing server.

``peers.dnsmasq(records)`` (fixture ``dns_server``) runs a real dnsmasq on loopback;
this module adds what the direct-delivery and deliverability tests need around it:

- :func:`resolver_for` turns a running server into a :class:`mailtransfer.dns.Resolver`;
- :func:`mx_lines`, :func:`tlsa_line` write dnsmasq configuration lines;
- :func:`broken_dns` runs a tiny DNS responder that answers every query with a
  chosen RCODE (SERVFAIL by default), never answers (``rcode=None``), or answers
  every name with a CNAME loop (``cname_loop=True``; dnsmasq refuses to serve one).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator, Sequence

import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rrset

from mailtransfer.dns import Resolver
from peers import DnsServer


def resolver_for(
    server: DnsServer | tuple[str, int],
    *,
    timeout: float = 2.0,
    assume_authenticated: bool = False,
) -> Resolver:
    """A mailtransfer resolver asking only ``server``.

    ``assume_authenticated=True`` simulates a validating resolver's AD bit (dnsmasq
    serves local records without it): for DANE tests only.
    """
    host, port = server
    return Resolver(
        nameservers=(host,),
        port=port,
        timeout=timeout,
        assume_authenticated=assume_authenticated,
    )


def mx_lines(domain: str, hosts: Sequence[tuple[str, int, str]]) -> list[str]:
    """dnsmasq lines for ``domain``'s MX records: ``(host, preference, address)`` each."""
    lines = []
    for host, preference, address in hosts:
        lines.append(f"mx-host={domain},{host},{preference}")
        lines.append(f"host-record={host},{address}")
    return lines


def tlsa_line(name: str, usage: int, selector: int, mtype: int, data: bytes) -> str:
    """A dnsmasq ``dns-rr`` line publishing one TLSA record (type 52) at ``name``."""
    return f"dns-rr={name},52,{usage:02x}{selector:02x}{mtype:02x}{data.hex()}"


@contextlib.contextmanager
def broken_dns(
    rcode: int | None = dns.rcode.SERVFAIL, *, cname_loop: bool = False
) -> Iterator[tuple[str, int]]:
    """A UDP DNS responder on loopback answering every query with ``rcode`` (None: silence).

    With ``cname_loop``, every name ``N`` is answered NOERROR with ``N CNAME loop.N`` and
    ``loop.N CNAME N``.

    Yields:
        ``(host, port)``; point a :class:`Resolver` (or a dnsmasq ``server=`` line) at it.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, peer = sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            if rcode is None:
                continue
            try:
                query = dns.message.from_wire(data)
            except dns.exception.DNSException:
                continue
            reply = dns.message.make_response(query)
            if cname_loop:
                name = query.question[0].name
                other = dns.name.Name(("loop", *name.labels))
                reply.answer.append(dns.rrset.from_text(name, 60, "IN", "CNAME", other.to_text()))
                reply.answer.append(dns.rrset.from_text(other, 60, "IN", "CNAME", name.to_text()))
            else:
                reply.set_rcode(rcode)
            sock.sendto(reply.to_wire(), peer)

    thread = threading.Thread(target=serve, name="broken-dns", daemon=True)
    thread.start()
    try:
        yield ("127.0.0.1", int(sock.getsockname()[1]))
    finally:
        stop.set()
        thread.join(5)
        sock.close()
