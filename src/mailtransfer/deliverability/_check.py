"""The domain check as one lookup flow: every record a receiver looks at, and the fix.

Strategy: the first batch asks every independent question at once (MX, the
TXT records, PTRs, blocklists), so the asyncio driver answers them
concurrently; later batches follow what the first found (MX addresses, the
DMARC tree walk, forward-confirming PTR names, the MTA-STS policy). Each area's
wording and fixes live with its checks (:mod:`._check_auth`, :mod:`._check_tls`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from ..dns import to_ascii
from ._check_auth import dkim_findings, dmarc_findings, spf_findings, spf_ip_finding
from ._check_tls import bimi_finding, mta_sts_findings, tlsrpt_finding
from ._dkim_record import dkim_record_name
from ._findings import Findings
from ._lookups import DnsResult, DnsStatus, Lookups, Query, Request, mx_targets
from ._report import DomainReport, IPReport, MXHost
from ._spf_eval import evaluate_spf
from ._txt_records import BIMIRecord, TLSRPTRecord

__all__ = ["DEFAULT_BLOCKLISTS", "check_domain_flow", "dnsbl_name"]

DEFAULT_BLOCKLISTS = ("zen.spamhaus.org", "bl.spamcop.net", "b.barracudacentral.org")
"""Blocklists queried by default. Spamhaus answers queries that come through public
resolvers with 127.255.255.x (an error, not a listing; reported as a warning)."""


def dnsbl_name(ip: str, zone: str) -> str:
    """The name to look up for ``ip`` in a DNSBL ``zone`` (RFC 5782 section 2).

    Example:
        >>> dnsbl_name("192.0.2.1", "zen.spamhaus.org")
        '1.2.0.192.zen.spamhaus.org'
    """
    reverse = ipaddress.ip_address(ip).reverse_pointer.rsplit(".", 2)[0]  # drop in-addr.arpa
    return f"{reverse}.{zone.rstrip('.')}"


def check_domain_flow(
    domain: str,
    *,
    dkim_selectors: Sequence[str] = (),
    sending_ips: Sequence[str] = (),
    blocklists: Sequence[str] = DEFAULT_BLOCKLISTS,
    mta_sts: bool = True,
) -> Lookups[DomainReport]:
    """The lookup flow behind :func:`~mailtransfer.deliverability.check_domain`.

    Args:
        domain: the domain mail is sent from (U-labels allowed).
        dkim_selectors: the DKIM selectors you sign with.
        sending_ips: the IPs you send from (SPF evaluation, PTR, blocklists).
        blocklists: DNSBL zones to query for each sending IP.
        mta_sts: fetch and check the MTA-STS policy over HTTPS.

    Returns:
        A lookup flow returning the :class:`~mailtransfer.deliverability.DomainReport`.
    """
    domain = to_ascii(domain)
    ips = [str(ipaddress.ip_address(ip)) for ip in sending_ips]
    first: list[Request] = [
        Query(domain, "MX"),
        Query(domain, "A"),
        Query(domain, "AAAA"),
        Query(domain, "TXT"),
        Query(f"_mta-sts.{domain}", "TXT"),
        Query(f"_smtp._tls.{domain}", "TXT"),
        Query(f"default._bimi.{domain}", "TXT"),
    ]
    first += [Query(dkim_record_name(s, domain), "TXT") for s in dkim_selectors]
    first += [Query(ipaddress.ip_address(ip).reverse_pointer, "PTR") for ip in ips]
    first += [Query(dnsbl_name(ip, zone), "A") for ip in ips for zone in blocklists]
    answers = iter((yield tuple(first)))
    mx_answer, a_answer, aaaa_answer, txt, sts_txt, tlsrpt_txt, bimi_txt = (
        next(answers) for _ in range(7)
    )
    dkim_answers = [next(answers) for _ in dkim_selectors]
    ptr_answers = [next(answers) for _ in ips]
    dnsbl_answers = [[next(answers) for _ in blocklists] for _ in ips]

    out = Findings()
    mx, null_mx = yield from _mx_findings(domain, mx_answer, a_answer, aaaa_answer, out)
    spf, lookups = yield from spf_findings(domain, txt, out)
    dkim = dkim_findings(domain, dkim_selectors, dkim_answers, out)
    dmarc, dmarc_domain = yield from dmarc_findings(domain, out)
    sts_id, policy = yield from mta_sts_findings(domain, sts_txt, mx, mta_sts, out)
    tlsrpt = tlsrpt_finding(domain, tlsrpt_txt, out)
    bimi = bimi_finding(domain, bimi_txt, out)
    reports = []
    for ip, ptr, listed in zip(ips, ptr_answers, dnsbl_answers, strict=True):
        zones = dict(zip(blocklists, listed, strict=True))
        report = yield from _ip_findings(domain, ip, ptr, zones, out)
        reports.append(report)
    return DomainReport(
        domain=domain,
        findings=tuple(out),
        mx=mx,
        null_mx=null_mx,
        spf=spf,
        spf_lookups=lookups,
        dkim=dkim,
        dmarc=dmarc,
        dmarc_domain=dmarc_domain,
        mta_sts_id=sts_id,
        mta_sts_policy=policy,
        tlsrpt=tlsrpt if isinstance(tlsrpt, TLSRPTRecord) else None,
        bimi=bimi if isinstance(bimi, BIMIRecord) else None,
        ips=tuple(reports),
    )


def _mx_findings(
    domain: str, mx: DnsResult, a: DnsResult, aaaa: DnsResult, out: Findings
) -> Lookups[tuple[tuple[MXHost, ...], bool]]:
    if mx.status is DnsStatus.ERROR:
        out.fail("MX", domain, f"MX lookup failed: {mx.detail}", "Check the name servers.")
        return (), False
    targets = mx_targets(mx)
    if any(host in ("", ".") for _, host in targets):
        if len(targets) == 1:
            fix = "Receivers may refuse mail from a domain that takes no bounces; publish an MX."
            out.warn("MX", domain, "null MX (RFC 7505): the domain receives no mail", fix)
            return (), True
        fix = "A null MX must be the only MX record (RFC 7505 section 3)."
        out.fail("MX", domain, "a null MX next to other MX records", fix)
        targets = [t for t in targets if t[1] not in ("", ".")]
    if not targets:
        fix = f"Publish an MX record ('{domain}. MX 10 mail.{domain}.'), or a null MX."
        if a.records or aaaa.records:
            out.warn("MX", domain, "no MX: mail goes to the domain's address (implicit MX)", fix)
        else:
            out.fail("MX", domain, "no MX and no address: the domain receives no mail", fix)
        return (), False
    answers = yield tuple(Query(host, rdtype) for _, host in targets for rdtype in ("A", "AAAA"))
    hosts = []
    for index, (preference, host) in enumerate(targets):
        v4, v6 = answers[2 * index], answers[2 * index + 1]
        addresses = v4.records + v6.records
        hosts.append(MXHost(preference=preference, host=host, addresses=addresses))
        if addresses:
            out.passed("MX", host, f"preference {preference}: {', '.join(addresses)}")
        elif DnsStatus.ERROR in (v4.status, v6.status):
            out.warn("MX", host, f"address lookup failed: {v4.detail or v6.detail}")
        else:
            fix = f"Publish an A/AAAA record for {host} (an MX names a host, not a CNAME or IP)."
            out.fail("MX", host, f"preference {preference}: no A or AAAA record", fix)
    return tuple(hosts), False


def _ip_findings(
    domain: str, ip: str, ptr: DnsResult, listed: dict[str, DnsResult], out: Findings
) -> Lookups[IPReport]:
    names = ptr.records[:10]
    rdtype = "A" if ipaddress.ip_address(ip).version == 4 else "AAAA"
    forward = yield tuple(Query(name, rdtype) for name in names)
    confirmed = [n for n, f in zip(names, forward, strict=True) if _same_ip(ip, f.records)]
    if not names:
        fix = f"Ask the owner of {ip} to set its PTR to a name (mail.{domain}) that resolves back."
        failed = ptr.status is DnsStatus.ERROR
        out.fail("PTR", ip, f"PTR lookup failed: {ptr.detail}" if failed else "no PTR record", fix)
    elif confirmed:
        out.passed("PTR", ip, f"{confirmed[0]} (forward-confirmed)")
    else:
        fix = f"Publish an {rdtype} record for {names[0]} pointing to {ip}, or change the PTR."
        out.fail("PTR", ip, f"{', '.join(names)} does not resolve back to {ip}", fix)
    listings: dict[str, tuple[str, ...]] = {}
    for zone, answer in listed.items():
        codes = tuple(r for r in answer.records if r.startswith("127."))
        subject = f"{ip} in {zone}"
        if answer.status is DnsStatus.ERROR:
            out.warn("DNSBL", subject, f"query failed: {answer.detail}")
        elif codes and all(c.startswith("127.255.255.") for c in codes):
            fix = "Query through your own recursive resolver, not a public one."
            out.warn("DNSBL", subject, f"the list refused the query ({', '.join(codes)})", fix)
        elif codes:
            listings[zone] = codes
            fix = f"Find and stop the cause, then ask {zone} to delist {ip}."
            out.fail("DNSBL", subject, f"LISTED ({', '.join(codes)})", fix)
        else:
            out.passed("DNSBL", subject, "not listed")
    result = yield from evaluate_spf(ip, domain)
    spf_ip_finding(ip, result, out)
    return IPReport(
        ip=ip, ptr=names, forward_confirmed=bool(confirmed), listings=listings, spf=result
    )


def _same_ip(ip: str, records: tuple[str, ...]) -> bool:
    wanted = ipaddress.ip_address(ip)
    for text in records:
        try:
            if ipaddress.ip_address(text) == wanted:
                return True
        except ValueError:
            continue
    return False
