"""Check two domains' deliverability records, served by a real DNS server on loopback.

Starts dnsmasq (``apt-get install dnsmasq-base``) on a free loopback port with a small
zone: ``good.test``, set up as the usual advice says, and ``broken.test``, with the
common mistakes (two SPF records, a revoked DKIM key, no DMARC, no MX, a PTR that does
not resolve back, a blocklist listing). Then
``check_domain`` reads both, as a receiver would, and the reports are printed with the
fix for every problem. When dnsmasq is not installed, the example says so and exits 0.

Run: ``python examples/check_domain.py``
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mailtransfer.deliverability import check_domain, render_report
from mailtransfer.dkim import generate_key, txt_strings
from mailtransfer.dns import Resolver, lookup
from mailtransfer.errors import DNSError

BLOCKLIST = "bl.test"  # a stand-in for zen.spamhaus.org: lists 192.0.2.66


def txt(name: str, record: str) -> str:
    """A dnsmasq TXT line (records over 255 bytes become several strings)."""
    return f"txt-record={name}," + ",".join(f'"{part}"' for part in txt_strings(record))


def zone() -> list[str]:
    """The zone: one domain done right, one done wrong, and a blocklist."""
    _, dkim_record = generate_key("rsa", bits=2048)
    return [
        "mx-host=good.test,mx1.good.test,10",
        "host-record=mx1.good.test,192.0.2.25",
        txt("good.test", "v=spf1 ip4:192.0.2.0/28 mx -all"),
        txt("mail2026._domainkey.good.test", dkim_record),
        txt("_dmarc.good.test", "v=DMARC1; p=reject; rua=mailto:dmarc@good.test"),
        txt("_smtp._tls.good.test", "v=TLSRPTv1; rua=mailto:tls@good.test"),
        "host-record=out.good.test,192.0.2.10",  # A and PTR agree: forward-confirmed
        txt("broken.test", "v=spf1 +all"),
        txt("broken.test", "v=spf1 ip4:192.0.2.66 -all"),
        txt("old._domainkey.broken.test", "v=DKIM1; k=rsa; p="),
        "ptr-record=66.2.0.192.in-addr.arpa,mail.broken.test",  # no A behind it
        f"host-record=66.2.0.192.{BLOCKLIST},127.0.0.2",
        "local=/in-addr.arpa/",
    ]


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port


def start_dnsmasq(binary: str, directory: Path) -> tuple[subprocess.Popen[bytes], Resolver]:
    """Run dnsmasq answering only for ``.test`` and the reverse zone; wait until it answers."""
    port = free_port()
    conf = directory / "dnsmasq.conf"
    lines = [f"port={port}", "listen-address=127.0.0.1", "bind-interfaces", "no-resolv"]
    lines += ["no-hosts", "no-daemon", "local=/test/", *zone()]
    conf.write_text("\n".join(lines) + "\n")
    process = subprocess.Popen(
        [binary, f"--conf-file={conf}"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    resolver = Resolver(nameservers=("127.0.0.1",), port=port, timeout=1.0)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and process.poll() is None:
        try:
            lookup("mx1.good.test", "A", resolver=resolver)
            return process, resolver
        except DNSError:  # not answering yet
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"dnsmasq did not start: {process.communicate()[1].decode()[:300]}")


def main() -> int:
    """Check good.test and broken.test; 0 when the results are the expected ones."""
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    binary = shutil.which("dnsmasq", path=search)
    if binary is None:
        print("dnsmasq is not installed (apt-get install dnsmasq-base): nothing to check.")
        print("check_domain('your-domain.example') works against your real DNS as well.")
        return 0
    with tempfile.TemporaryDirectory(prefix="check-domain-") as tmp:
        process, resolver = start_dnsmasq(binary, Path(tmp))
        try:
            good = check_domain(
                "good.test",
                dkim_selectors=["mail2026"],
                sending_ips=["192.0.2.10"],
                blocklists=[BLOCKLIST],
                resolver=resolver,
            )
            broken = check_domain(
                "broken.test",
                dkim_selectors=["old"],
                sending_ips=["192.0.2.66"],
                blocklists=[BLOCKLIST],
                resolver=resolver,
            )
        finally:
            process.terminate()
            process.wait(5)
    print(render_report(good))
    print(render_report(broken))
    # good.test only warns (no MTA-STS record); broken.test fails on MX, SPF, DMARC, PTR, DNSBL.
    failed_areas = {finding.area for finding in broken.findings if finding.status.value == "fail"}
    expected = {"MX", "SPF", "DMARC", "PTR", "DNSBL"}
    if good.ok and expected <= failed_areas:
        return 0
    print(f"unexpected: good ok={good.ok}, broken failed in {sorted(failed_areas)}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
