"""check_domain against a real DNS server (dnsmasq) and a real HTTPS policy server (trustme)."""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import threading
from collections.abc import Iterator

import pytest
from zones import BLOCKLIST, POLICIES, zone_lines

from dnsserver import resolver_for
from mailtransfer.deliverability import (
    DomainReport,
    HTTPSOptions,
    SPFOutcome,
    Status,
    acheck_domain,
    check_domain,
    evaluate_spf,
    render_report,
    resolve,
)
from mailtransfer.dns import Resolver
from mailtransfer.testing import tls_certificates
from peers import dnsmasq

pytestmark = pytest.mark.peers


class _PolicyHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        host = (self.headers.get("Host") or "").split(":")[0]
        policy = POLICIES.get(host)
        if self.path != "/.well-known/mta-sts.txt" or policy is None:
            self.send_error(404)
            return
        body = policy.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@contextlib.contextmanager
def policy_server() -> Iterator[HTTPSOptions]:
    """An HTTPS server on loopback serving the MTA-STS policies, with a trustme CA."""
    certs = tls_certificates(*POLICIES)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _PolicyHandler)
    server.socket = certs.server_context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield HTTPSOptions(ssl_context=certs.client_context, port=server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(scope="module")
def world() -> Iterator[tuple[Resolver, HTTPSOptions]]:
    """dnsmasq with the test zones, and the policy server."""
    with dnsmasq(zone_lines()) as server, policy_server() as https:
        yield resolver_for(server), https


def run(world: tuple[Resolver, HTTPSOptions], domain: str, **options: object) -> DomainReport:
    resolver, https = world
    options.setdefault("blocklists", [BLOCKLIST])
    return check_domain(domain, resolver=resolver, https=https, **options)  # type: ignore[arg-type]


def statuses(report: DomainReport, area: str) -> list[tuple[str, str]]:
    return [(f.subject, f.status.value) for f in report.select(area)]


GOOD_OPTIONS = {
    "dkim_selectors": ["s2048", "ed", "s1024", "old", "bad", "missing"],
    "sending_ips": ["192.0.2.10", "192.0.2.11", "198.51.100.7"],
}


def test_good_domain_mx_spf_dmarc_transport(world: tuple[Resolver, HTTPSOptions]) -> None:
    """A well-configured domain passes MX, SPF, DMARC, MTA-STS, TLS-RPT and BIMI."""
    report = run(world, "good.test", **GOOD_OPTIONS)
    assert [(h.host, h.addresses) for h in report.mx] == [("mx1.good.test", ("127.0.0.1",))]
    assert {s for _, s in statuses(report, "MX")} == {"pass"}
    assert statuses(report, "SPF")[:3] == [("good.test", "pass")] * 3
    assert report.spf_lookups == 2
    assert report.dmarc is not None
    assert report.dmarc.policy == "reject"
    assert report.dmarc_domain == "good.test"
    assert {s for _, s in statuses(report, "DMARC")} == {"pass"}
    assert {s for _, s in statuses(report, "MTA-STS")} == {"pass"}
    assert report.mta_sts_id == "20240101T000000"
    assert report.mta_sts_policy is not None
    assert report.mta_sts_policy.mx == ("mx1.good.test",)
    assert statuses(report, "TLS-RPT") == [("_smtp._tls.good.test", "pass")]
    assert report.bimi is not None
    assert report.bimi.logo == "https://good.test/logo.svg"


def test_dkim_selectors(world: tuple[Resolver, HTTPSOptions]) -> None:
    """Each selector: 2048-bit and Ed25519 pass; 1024-bit and revoked warn; broken, missing fail."""
    report = run(world, "good.test", **GOOD_OPTIONS)
    assert statuses(report, "DKIM") == [
        ("s2048", "pass"),
        ("ed", "pass"),
        ("s1024", "warn"),
        ("old", "warn"),
        ("bad", "fail"),
        ("missing", "fail"),
    ]
    assert report.dkim["s2048"] is not None
    assert report.dkim["s2048"].bits == 2048
    assert report.dkim["s1024"] is not None
    assert report.dkim["s1024"].weak
    assert report.dkim["missing"] is None


def test_sending_ips(world: tuple[Resolver, HTTPSOptions]) -> None:
    """PTR forward-confirmed or not, blocklist listing, and SPF per sending IP."""
    report = run(world, "good.test", **GOOD_OPTIONS)
    by_ip = {ip.ip: ip for ip in report.ips}
    assert by_ip["192.0.2.10"].ptr == ("mail.good.test",)
    assert by_ip["192.0.2.10"].forward_confirmed
    assert by_ip["192.0.2.11"].ptr == ("liar.good.test",)
    assert not by_ip["192.0.2.11"].forward_confirmed
    assert by_ip["198.51.100.7"].ptr == ()
    assert statuses(report, "PTR") == [
        ("192.0.2.10", "pass"),
        ("192.0.2.11", "fail"),
        ("198.51.100.7", "fail"),
    ]
    assert by_ip["192.0.2.11"].listings == {BLOCKLIST: ("127.0.0.2",)}
    assert statuses(report, "DNSBL") == [
        (f"192.0.2.10 in {BLOCKLIST}", "pass"),
        (f"192.0.2.11 in {BLOCKLIST}", "fail"),
        (f"198.51.100.7 in {BLOCKLIST}", "pass"),
    ]
    spf = {ip: r.spf.outcome for ip, r in by_ip.items() if r.spf}
    assert spf == {
        "192.0.2.10": SPFOutcome.PASS,
        "192.0.2.11": SPFOutcome.PASS,
        "198.51.100.7": SPFOutcome.FAIL,
    }
    assert not report.ok


def test_async_twin_finds_the_same(world: tuple[Resolver, HTTPSOptions]) -> None:
    """acheck_domain reports exactly what check_domain does."""
    resolver, https = world
    blocking = run(world, "good.test", **GOOD_OPTIONS)
    concurrent = asyncio.run(
        acheck_domain(
            "good.test", resolver=resolver, https=https, blocklists=[BLOCKLIST], **GOOD_OPTIONS
        )  # type: ignore[arg-type]
    )
    assert concurrent.findings == blocking.findings


def test_subdomain_inherits_dmarc_and_uses_implicit_mx(
    world: tuple[Resolver, HTTPSOptions],
) -> None:
    """A subdomain without _dmarc gets its parent's record, with the sp= policy."""
    report = run(world, "sub.good.test")
    assert report.dmarc_domain == "good.test"
    first = report.select("DMARC")[0]
    assert first.status is Status.PASS
    assert "p=quarantine (from good.test)" in first.message
    assert statuses(report, "MX") == [("sub.good.test", "warn")]


def test_broken_domain(world: tuple[Resolver, HTTPSOptions]) -> None:
    """Two SPF records, no MX or address, an invalid DMARC record: each fails with a fix."""
    report = run(world, "broken.test")
    for area in ("MX", "SPF", "DMARC"):
        found = report.select(area, Status.FAIL)
        assert found, area
        assert all(f.fix for f in found), area
    assert "2 SPF records" in report.select("SPF")[0].message
    assert "p=" in report.select("DMARC")[0].message
    assert report.status is Status.FAIL


def test_too_many_lookups_and_plus_all(world: tuple[Resolver, HTTPSOptions]) -> None:
    """11 lookup terms through includes fail; +all fails; p=none warns."""
    report = run(world, "toomany.test")
    assert report.spf_lookups == 12
    assert any("12 DNS lookups" in f.message for f in report.select("SPF", Status.FAIL))
    report = run(world, "plusall.test")
    assert any("'+all'" in f.message for f in report.select("SPF", Status.FAIL))
    assert report.select("DMARC")[0].status is Status.WARN


def test_null_mx(world: tuple[Resolver, HTTPSOptions]) -> None:
    """A null MX is recognised (and warned about for a sending domain)."""
    report = run(world, "nullmx.test")
    assert report.null_mx
    assert statuses(report, "MX") == [("nullmx.test", "warn")]


def test_mta_sts_policy_problems(world: tuple[Resolver, HTTPSOptions]) -> None:
    """testing mode warns; an MX missing from the policy fails; an unreachable policy fails."""
    report = run(world, "partial.test")
    sts = report.select("MTA-STS")
    assert [f.status for f in sts] == [Status.PASS, Status.WARN, Status.FAIL]
    assert "mx2.partial.test" in sts[2].message
    report = run(world, "nopolicy.test")
    assert report.select("MTA-STS")[-1].status is Status.FAIL
    assert "mta-sts.nopolicy.test" in report.select("MTA-STS")[-1].message


def test_spf_evaluator_over_real_dns(world: tuple[Resolver, HTTPSOptions]) -> None:
    """evaluate_spf follows include: and a: through the real server."""
    resolver, _ = world
    result = resolve(evaluate_spf("127.0.0.1", "good.test"), resolver=resolver)
    assert result.outcome is SPFOutcome.PASS
    assert result.mechanism == "include:_spf.good.test"
    assert result.lookups == 2


def test_render_report(world: tuple[Resolver, HTTPSOptions]) -> None:
    """The table has a line per finding, the fixes, and the summary."""
    report = run(world, "broken.test")
    text = render_report(report)
    assert text.startswith("Deliverability of broken.test\n")
    assert "FAIL   SPF" in text
    assert "fix: Merge them into one record" in text
    assert text.rstrip().endswith("FAIL")
    assert len(text.splitlines()) >= len(report.findings) + 4
