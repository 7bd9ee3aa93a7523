"""Address hygiene: syntax (RFC 5321/5322/6531), IDNA, and whether the domain takes mail.

Strategy: syntax is the library's own RFC 5321/6531 mailbox grammar
(:func:`mailtransfer.protocol.parse_mailbox`, the parser every envelope goes
through), so an address accepted here is one ``send()`` accepts; hygiene rules
that the grammar allows but the public internet does not (address literals,
dotless domains) come on top. The DNS part is a lookup flow asking MX, A and
AAAA of every distinct domain in one batch, so a bulk check costs one round of
queries per domain, whatever the number of addresses.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import InvalidAddress
from ..protocol import parse_mailbox
from ._lookups import DnsResult, DnsStatus, Lookups, Query, mx_targets

__all__ = ["AddressCheck", "Verdict", "addresses_flow"]


class Verdict(enum.Enum):
    """Whether mail to an address can be delivered, as far as syntax and DNS tell."""

    VALID = "valid"
    """Good syntax and a domain that accepts mail (or DNS was not asked)."""
    INVALID = "invalid"
    """Remove it: bad syntax, no such domain, or a domain that takes no mail."""
    UNKNOWN = "unknown"
    """DNS failed (timeout, SERVFAIL): ask again later before removing it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AddressCheck:
    """The verdict on one address, and why.

    Attributes:
        address: the address as given.
        normalized: ``local@domain`` with the domain in lower-case A-labels
            (``None`` when the syntax is wrong); duplicates share it.
        verdict: valid, invalid or unknown.
        reason: why it is invalid or unknown (empty when valid).
        smtputf8: the local part is non-ASCII: only SMTPUTF8 servers take it.
        mail_hosts: where mail for the domain goes (MX hosts, or the domain
            itself for an implicit MX); empty when DNS was not asked.
    """

    address: str
    normalized: str | None
    verdict: Verdict
    reason: str = ""
    smtputf8: bool = False
    mail_hosts: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """The verdict is VALID."""
        return self.verdict is Verdict.VALID


def _syntax(address: str) -> AddressCheck | tuple[str, str, bool]:
    """An INVALID check, or ``(normalized, ascii domain, smtputf8)``."""
    try:
        box = parse_mailbox(address)
        domain = box.ascii_domain().lower()
    except InvalidAddress as exc:
        return AddressCheck(
            address=address, normalized=None, verdict=Verdict.INVALID, reason=str(exc)
        )
    problem = ""
    labels = domain.split(".")
    if domain.startswith("["):
        problem = "the domain is an address literal; public mail needs a domain name"
    elif len(labels) < 2:
        problem = f"the domain {domain!r} has no dot; dotless domains get no mail (RFC 7085)"
    elif labels[-1].isdigit():
        problem = f"the domain {domain!r} ends in a numeric label, not a top-level domain"
    normalized = f"{box.local_part}@{domain}"
    if problem:
        return AddressCheck(
            address=address, normalized=normalized, verdict=Verdict.INVALID, reason=problem
        )
    return normalized, domain, box.needs_smtputf8


def addresses_flow(
    addresses: Iterable[str], *, check_dns: bool = True
) -> Lookups[list[AddressCheck]]:
    """Check addresses: one result per distinct address, in first-seen order.

    Addresses that differ only in the case or IDNA form of their domain are
    one address; each distinct domain is looked up once.

    Args:
        addresses: the addresses (bare ``local@domain``, no display names).
        check_dns: also check that each domain accepts mail (MX, or an
            address for an implicit MX; not a null MX).

    Returns:
        A lookup flow returning the checks.
    """
    checks: list[AddressCheck | tuple[str, str, str, bool]] = []
    seen: set[str] = set()
    for address in addresses:
        parsed = _syntax(address)
        key = (parsed.normalized or address) if isinstance(parsed, AddressCheck) else parsed[0]
        if key in seen:
            continue
        seen.add(key)
        checks.append(parsed if isinstance(parsed, AddressCheck) else (address, *parsed))
    domains = sorted({c[2] for c in checks if isinstance(c, tuple)}) if check_dns else []
    requests = tuple(Query(d, rdtype) for d in domains for rdtype in ("MX", "A", "AAAA"))
    answers = (yield requests) if requests else ()
    verdicts = {
        domain: _domain_verdict(domain, *answers[3 * i : 3 * i + 3])
        for i, domain in enumerate(domains)
    }
    results = []
    for check in checks:
        if isinstance(check, AddressCheck):
            results.append(check)
            continue
        address, normalized, domain, smtputf8 = check
        verdict, reason, hosts = verdicts.get(domain, (Verdict.VALID, "", ()))
        results.append(
            AddressCheck(
                address=address,
                normalized=normalized,
                verdict=verdict,
                reason=reason,
                smtputf8=smtputf8,
                mail_hosts=hosts,
            )
        )
    return results


def _domain_verdict(
    domain: str, mx: DnsResult, a: DnsResult, aaaa: DnsResult
) -> tuple[Verdict, str, tuple[str, ...]]:
    if mx.status is DnsStatus.ERROR:
        return Verdict.UNKNOWN, f"the MX lookup of {domain} failed: {mx.detail}", ()
    if mx.status is DnsStatus.NXDOMAIN:
        return Verdict.INVALID, f"the domain {domain} does not exist", ()
    hosts = [host for _, host in mx_targets(mx)]
    if hosts:
        if all(host in ("", ".") for host in hosts):
            return Verdict.INVALID, f"{domain} accepts no mail (null MX, RFC 7505)", ()
        return Verdict.VALID, "", tuple(h for h in hosts if h not in ("", "."))
    # RFC 5321 section 5.1: no MX, so the domain's own address is the implicit MX.
    if a.records or aaaa.records:
        return Verdict.VALID, "", (domain,)
    if DnsStatus.ERROR in (a.status, aaaa.status):
        return Verdict.UNKNOWN, f"the address lookup of {domain} failed", ()
    return Verdict.INVALID, f"{domain} has no MX and no address: it cannot receive mail", ()
