"""The SPF ``check_host()`` function of RFC 7208, as a lookup flow.

Strategy: :func:`evaluate_spf` walks the record left to right as section 4.6
says, asking for DNS answers by yielding :class:`~._lookups.Query` batches (see
:mod:`._lookups`); one mutable counter object carries the processing limits
of section 4.6.4 (10 lookup terms, 2 void lookups, 10 MX or PTR names) through
``include:`` and ``redirect=`` recursion. PermError and TempError travel as an
internal exception to the top, where they become the result; they never
escape to the caller.
"""

from __future__ import annotations

import enum
import ipaddress
import re
import urllib.parse
from dataclasses import dataclass

from ._errors import InvalidRecord
from ._lookups import DnsResult, DnsStatus, Lookups, Query, mx_targets
from ._spf_record import LOOKUP_LIMIT, Mechanism, Qualifier, SPFRecord, is_spf_record, parse_spf

__all__ = ["SPFOutcome", "SPFResult", "evaluate_spf", "expand_macros"]

VOID_LIMIT = 2
"""RFC 7208 section 4.6.4: more than 2 lookups that find nothing is a PermError."""
NAME_LIMIT = 10
"""RFC 7208 section 4.6.4: at most 10 MX (PermError beyond) or PTR names (rest ignored)."""

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class SPFOutcome(enum.Enum):
    """The result of an SPF check (RFC 7208 section 2.6)."""

    NONE = "none"
    NEUTRAL = "neutral"
    PASS = "pass"
    FAIL = "fail"
    SOFTFAIL = "softfail"
    TEMPERROR = "temperror"
    PERMERROR = "permerror"


_BY_QUALIFIER = {
    Qualifier.PASS: SPFOutcome.PASS,
    Qualifier.FAIL: SPFOutcome.FAIL,
    Qualifier.SOFTFAIL: SPFOutcome.SOFTFAIL,
    Qualifier.NEUTRAL: SPFOutcome.NEUTRAL,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class SPFResult:
    """What ``check_host()`` decided, and why.

    Attributes:
        outcome: pass, fail, softfail, neutral, none, temperror or permerror.
        domain: the domain whose record decided (after includes and redirects).
        mechanism: the matching directive, as text (``None`` when none matched).
        reason: a sentence for humans.
        lookups: DNS-lookup terms evaluated (the limit is 10).
        void_lookups: lookups that found nothing (the limit is 2).
    """

    outcome: SPFOutcome
    domain: str
    mechanism: str | None
    reason: str
    lookups: int
    void_lookups: int


class _Abort(Exception):
    """PermError or TempError: ends the whole evaluation."""

    def __init__(self, outcome: SPFOutcome, reason: str) -> None:
        super().__init__(reason)
        self.outcome = outcome
        self.reason = reason


@dataclass(slots=True)
class _State:
    ip: IPAddress
    sender: str
    helo: str
    lookups: int = 0
    void: int = 0

    def count_lookup(self, term: str) -> None:
        self.lookups += 1
        if self.lookups > LOOKUP_LIMIT:
            raise _Abort(
                SPFOutcome.PERMERROR,
                f"more than {LOOKUP_LIMIT} DNS-lookup terms (at {term!r}; RFC 7208 section 4.6.4)",
            )

    def check(self, answer: DnsResult, name: str) -> DnsResult:
        if answer.status is DnsStatus.ERROR:
            raise _Abort(SPFOutcome.TEMPERROR, f"DNS lookup of {name} failed: {answer.detail}")
        if answer.void:
            self.void += 1
            if self.void > VOID_LIMIT:
                raise _Abort(
                    SPFOutcome.PERMERROR,
                    f"more than {VOID_LIMIT} lookups found nothing (at {name}; RFC 7208 4.6.4)",
                )
        return answer


def evaluate_spf(
    ip: str | IPAddress, domain: str, sender: str | None = None, *, helo: str | None = None
) -> Lookups[SPFResult]:
    """Evaluate ``domain``'s SPF policy for mail from ``ip`` (RFC 7208 ``check_host()``).

    Every mechanism is supported (``all``, ``include``, ``a``, ``mx``, ``ptr``,
    ``ip4``, ``ip6``, ``exists``) with qualifiers, dual CIDR lengths,
    ``redirect=`` and macros; the ``p`` macro expands to ``unknown``, which
    section 7.3 allows. Run it with :func:`~mailtransfer.deliverability.resolve`
    or its async twin.

    Args:
        ip: the sending IP address (an IPv4-mapped IPv6 address counts as IPv4).
        domain: the domain to check: the MAIL FROM domain, or the HELO name.
        sender: the MAIL FROM address (default ``postmaster@domain``).
        helo: the HELO/EHLO name, for the ``h`` macro (default ``domain``).

    Returns:
        A lookup flow returning the :class:`SPFResult`.
    """
    address = ipaddress.ip_address(ip)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    domain = domain.rstrip(".").lower()
    state = _State(address, sender or f"postmaster@{domain}", helo or domain)
    try:
        outcome, decided, term, reason = yield from _check_host(state, domain)
    except _Abort as abort:
        outcome, decided, term, reason = abort.outcome, domain, None, abort.reason
    return SPFResult(
        outcome=outcome,
        domain=decided,
        mechanism=term,
        reason=reason,
        lookups=state.lookups,
        void_lookups=state.void,
    )


def fetch_spf(domain: str) -> Lookups[tuple[SPFRecord | None, str, bool]]:
    """Fetch and parse the SPF record of ``domain``.

    Returns:
        A flow returning ``(record or None, reason, temporary)``; ``temporary``
        is true when DNS failed. Several records or a syntax error raise
        ``_Abort`` (PermError).
    """
    (answer,) = yield (Query(domain, "TXT"),)
    if answer.status is DnsStatus.ERROR:
        raise _Abort(SPFOutcome.TEMPERROR, f"TXT lookup of {domain} failed: {answer.detail}")
    records = [text for text in answer.records if is_spf_record(text)]
    if not records:
        return None, f"{domain} publishes no SPF record", False
    if len(records) > 1:
        raise _Abort(
            SPFOutcome.PERMERROR,
            f"{domain} publishes {len(records)} SPF records; only one is allowed",
        )
    try:
        return parse_spf(records[0]), "", False
    except InvalidRecord as exc:
        raise _Abort(SPFOutcome.PERMERROR, f"{domain}: {exc}") from None


def _check_host(state: _State, domain: str) -> Lookups[tuple[SPFOutcome, str, str | None, str]]:
    if not _valid_name(domain):
        return SPFOutcome.NONE, domain, None, f"{domain!r} is not a valid domain name"
    record, reason, _ = yield from fetch_spf(domain)
    if record is None:
        return SPFOutcome.NONE, domain, None, reason
    for mechanism in record.mechanisms:
        if (yield from _matches(state, mechanism, domain)):
            outcome = _BY_QUALIFIER[mechanism.qualifier]
            return outcome, domain, str(mechanism), f"{domain} matched {mechanism}"
    if record.redirect is not None:
        state.count_lookup(f"redirect={record.redirect}")
        target = _target(state, record.redirect, domain)
        outcome, decided, term, reason = yield from _check_host(state, target)
        if outcome is SPFOutcome.NONE:
            raise _Abort(SPFOutcome.PERMERROR, f"redirect target {target} has no SPF record")
        return outcome, decided, term, reason
    return SPFOutcome.NEUTRAL, domain, None, f"no mechanism of {domain} matched"


def _matches(state: _State, mechanism: Mechanism, domain: str) -> Lookups[bool]:
    ip = state.ip
    kind = mechanism.kind
    if kind == "all":
        return True
    if kind in ("ip4", "ip6"):
        network = mechanism.network
        return network is not None and network.version == ip.version and ip in network
    state.count_lookup(str(mechanism))
    target = _target(state, mechanism.domain, domain) if mechanism.domain else domain
    if kind == "include":
        outcome, _, _, reason = yield from _check_host(state, target)
        if outcome is SPFOutcome.PASS:
            return True
        if outcome in (SPFOutcome.FAIL, SPFOutcome.SOFTFAIL, SPFOutcome.NEUTRAL):
            return False
        if outcome is SPFOutcome.NONE:
            raise _Abort(SPFOutcome.PERMERROR, f"include:{target} has no SPF record")
        raise _Abort(outcome, reason)  # pragma: no cover - _Abort already carries these
    if kind == "exists":
        (answer,) = yield (Query(target, "A"),)
        return bool(state.check(answer, target).records)
    if kind == "ptr":
        return (yield from _ptr_matches(state, target))
    rdtype = "A" if ip.version == 4 else "AAAA"
    cidr = mechanism.cidr4 if ip.version == 4 else mechanism.cidr6
    prefix = ip.max_prefixlen if cidr is None else cidr
    if kind == "a":
        (answer,) = yield (Query(target, rdtype),)
        return _any_in(state.check(answer, target).records, ip, prefix)
    # mx
    (answer,) = yield (Query(target, "MX"),)
    hosts = [host for _, host in mx_targets(state.check(answer, target)) if host]
    if len(hosts) > NAME_LIMIT:
        raise _Abort(SPFOutcome.PERMERROR, f"{target} has more than {NAME_LIMIT} MX records")
    answers = yield tuple(Query(host, rdtype) for host in hosts)
    for host, found in zip(hosts, answers, strict=True):
        if found.status is DnsStatus.ERROR:
            raise _Abort(SPFOutcome.TEMPERROR, f"lookup of MX host {host} failed: {found.detail}")
        if _any_in(found.records, ip, prefix):
            return True
    return False


def _ptr_matches(state: _State, target: str) -> Lookups[bool]:
    (answer,) = yield (Query(_reverse_name(state.ip), "PTR"),)
    if answer.status is not DnsStatus.OK:
        return False  # section 5.5: a DNS error here means no match
    names = list(answer.records[:NAME_LIMIT])
    rdtype = "A" if state.ip.version == 4 else "AAAA"
    forward = yield tuple(Query(name, rdtype) for name in names)
    for name, found in zip(names, forward, strict=True):
        if _any_in(found.records, state.ip, state.ip.max_prefixlen) and (
            name == target or name.endswith("." + target)
        ):
            return True
    return False


def _any_in(addresses: tuple[str, ...], ip: IPAddress, prefix: int) -> bool:
    network = ipaddress.ip_network(f"{ip}/{prefix}", strict=False)
    for text in addresses:
        try:
            if ipaddress.ip_address(text) in network:
                return True
        except ValueError:
            continue
    return False


def _reverse_name(ip: IPAddress) -> str:
    return ip.reverse_pointer


def _target(state: _State, spec: str | None, domain: str) -> str:
    if spec is None:
        return domain
    try:
        return expand_macros(spec, ip=state.ip, sender=state.sender, domain=domain, helo=state.helo)
    except InvalidRecord as exc:
        raise _Abort(SPFOutcome.PERMERROR, str(exc)) from None


def _valid_name(domain: str) -> bool:
    """RFC 7208 section 4.3: a name with an empty or over-long label is not checked."""
    labels = domain.split(".")
    return len(domain) <= 253 and all(0 < len(label) <= 63 for label in labels)


_MACRO = re.compile(r"%(?:\{([A-Za-z])([0-9]*)([rR]?)([.\-+,/_=]*)\}|(.))")


def expand_macros(spec: str, *, ip: IPAddress, sender: str, domain: str, helo: str) -> str:
    """Expand the macros of a domain-spec (RFC 7208 section 7).

    ``%{s}`` sender, ``%{l}`` its local part, ``%{o}`` its domain, ``%{d}``
    the current domain, ``%{i}`` the IP (IPv6 as dotted nibbles), ``%{p}``
    ``unknown``, ``%{h}`` the HELO name, ``%{v}`` ``in-addr`` or ``ip6``;
    a digit keeps that many rightmost parts, ``r`` reverses, delimiters split;
    an upper-case letter URL-escapes. The result is cut from the left to 253
    characters and loses a trailing dot.

    Raises:
        InvalidRecord: an unknown or exp-only macro letter, or a zero digit.

    Example:
        >>> expand_macros("%{ir}.%{v}._spf.%{d2}", ip=ipaddress.ip_address("192.0.2.3"),
        ...               sender="a@b.example.org", domain="mail.example.org", helo="h")
        '3.2.0.192.in-addr._spf.example.org'
    """
    local, _, sender_domain = sender.rpartition("@")
    values = {
        "s": sender,
        "l": local or "postmaster",
        "o": sender_domain,
        "d": domain,
        "i": _dotted(ip),
        "p": "unknown",
        "h": helo,
        "v": "in-addr" if ip.version == 4 else "ip6",
    }

    def replace(match: re.Match[str]) -> str:
        letter, digits, reverse, delimiters, simple = match.groups()
        if simple is not None:
            escapes = {"%": "%", "_": " ", "-": "%20"}
            if simple not in escapes:
                raise InvalidRecord(f"SPF macro '%{simple}' is not defined")
            return escapes[simple]
        value = values.get(letter.lower())
        if value is None:
            raise InvalidRecord(f"SPF macro letter {letter!r} is not allowed here")
        parts = re.split("[" + re.escape(delimiters or ".") + "]", value)
        if reverse:
            parts.reverse()
        if digits:
            keep = int(digits)
            if keep == 0:
                raise InvalidRecord("SPF macro transformer 0 is not allowed")
            parts = parts[-keep:]
        expanded = ".".join(parts)
        return urllib.parse.quote(expanded, safe="") if letter.isupper() else expanded

    result = _MACRO.sub(replace, spec).rstrip(".")
    while len(result) > 253 and "." in result:
        result = result.split(".", 1)[1]
    return result.lower()


def _dotted(ip: IPAddress) -> str:
    if ip.version == 4:
        return str(ip)
    return ".".join(ip.exploded.replace(":", ""))
