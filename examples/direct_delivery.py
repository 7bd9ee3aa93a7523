"""Direct delivery to MX hosts, all on loopback: DNS, two domains, a dead host, a null MX.

It starts a DNS server for the made-up domains below (dnsmasq when it is
installed, otherwise a tiny DNS responder in this process) and three SMTP
servers on 127.0.0.2-4, all on one unprivileged port (the real thing is port
25). Then it sends one message to four recipients in three domains and
prints what happened to each.

Run: python examples/direct_delivery.py
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset

from mailtransfer import Mailer, Timeouts
from mailtransfer.direct import DirectOptions, DirectResult
from mailtransfer.dns import Resolver
from mailtransfer.testing import RecordingServer

# name -> [(type, value)]; "example.test" prefers a host that is down.
ZONE: dict[str, list[tuple[str, str]]] = {
    "example.test": [("MX", "10 mx1.example.test."), ("MX", "20 mx2.example.test.")],
    "mx1.example.test": [("A", "127.0.0.2")],  # nothing listens here
    "mx2.example.test": [("A", "127.0.0.3")],
    "shop.test": [("MX", "10 mail.shop.test.")],
    "mail.shop.test": [("A", "127.0.0.4")],
    "nomail.test": [("MX", "0 .")],  # RFC 7505: accepts no mail
}


def free_port() -> int:
    """A port free for TCP and UDP on 127.0.0.1."""
    while True:
        with socket.socket() as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            try:
                udp.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


@contextlib.contextmanager
def dnsmasq(binary: str) -> Iterator[int]:
    """Run dnsmasq answering ZONE on loopback; yields its port."""
    lines = ["listen-address=127.0.0.1", "bind-interfaces", "no-resolv", "no-hosts"]
    lines.append("local=/test/")
    for name, records in ZONE.items():
        for rdtype, value in records:
            if rdtype == "MX":
                preference, host = value.split()
                lines.append(f"mx-host={name},{host.rstrip('.') or '.'},{preference}")
            else:
                lines.append(f"host-record={name},{value}")
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        conf = Path(tmp) / "dnsmasq.conf"
        conf.write_text("\n".join([f"port={port}", *lines]) + "\n")
        process = subprocess.Popen(
            [binary, "--no-daemon", f"--conf-file={conf}"], stderr=subprocess.DEVNULL
        )
        try:
            deadline = time.monotonic() + 5
            while True:  # wait until it answers
                try:
                    query = dns.message.make_query("example.test", "MX")
                    dns.query.udp(query, "127.0.0.1", port=port, timeout=0.2)
                    break
                except Exception:
                    if time.monotonic() > deadline or process.poll() is not None:
                        raise
            yield port
        finally:
            process.terminate()
            process.wait(5)


@contextlib.contextmanager
def tiny_dns() -> Iterator[int]:
    """A minimal DNS responder in a thread, answering ZONE; yields its port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, peer = sock.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            query = dns.message.from_wire(data)
            reply = dns.message.make_response(query)
            question = query.question[0]
            name = question.name.to_text(omit_final_dot=True).lower()
            rdtype = dns.rdatatype.to_text(question.rdtype)
            if name not in ZONE:
                reply.set_rcode(dns.rcode.NXDOMAIN)
            else:
                values = [v for t, v in ZONE[name] if t == rdtype]
                if values:
                    reply.answer.append(
                        dns.rrset.from_text_list(question.name, 60, "IN", rdtype, values)
                    )
            sock.sendto(reply.to_wire(), peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(sock.getsockname()[1])
    finally:
        stop.set()
        thread.join(5)
        sock.close()


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="  log: %(name)s %(message)s")
    binary = shutil.which("dnsmasq", path="/usr/sbin:/usr/local/sbin:/usr/bin")
    dns_server = dnsmasq(binary) if binary else tiny_dns()
    smtp_port = free_port()
    with (
        dns_server as dns_port,
        RecordingServer(host="127.0.0.3", port=smtp_port) as mx2,
        RecordingServer(host="127.0.0.4", port=smtp_port) as shop,
    ):
        print(f"DNS: {'dnsmasq' if binary else 'in-process responder'} on 127.0.0.1:{dns_port}")
        print(f"SMTP: mx2.example.test and mail.shop.test on port {smtp_port}\n")
        options = DirectOptions(
            resolver=Resolver(nameservers=("127.0.0.1",), port=dns_port, timeout=2.0),
            port=smtp_port,  # port 25 on the Internet; another port only for tests
            mta_sts=False,  # the made-up domains publish no policy
        )
        with Mailer(
            transport="direct",
            direct=options,
            local_hostname="out.example.test",
            timeouts=Timeouts.all(3.0),
        ) as mailer:
            result = mailer.send(
                sender="alerts@out.example.test",
                to=["ann@example.test", "bob@example.test", "cy@shop.test", "dee@nomail.test"],
                subject="Direct delivery demo",
                text="Delivered straight to the recipients' MX hosts.",
            )
        assert isinstance(result, DirectResult)
        for domain in result.domains.values():
            print(f"{domain.domain} (TLS policy: {domain.policy})")
            for attempt in domain.attempts:
                outcome = f"failed: {attempt.error}" if attempt.error else "accepted"
                print(f"  tried {attempt.host} [{attempt.address}] {attempt.tls}: {outcome}")
            if domain.error and not domain.attempts:
                print(f"  {type(domain.error).__name__}: {domain.error}")
        print()
        for address in ["ann@example.test", "bob@example.test", "cy@shop.test"]:
            print(f"{address}: accepted by {result.hosts[address]}")
        for address, error in result.failed.items():
            print(f"{address}: {type(error).__name__} (transient={error.transient})")
        assert [m.rcpt_tos for m in mx2.messages] == [("ann@example.test", "bob@example.test")]
        assert [m.rcpt_tos for m in shop.messages] == [("cy@shop.test",)]


if __name__ == "__main__":
    main()
