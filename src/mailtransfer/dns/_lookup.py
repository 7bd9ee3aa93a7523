"""Lookups over dnspython, blocking and asyncio, with typed answers and typed errors.

Strategy: one dnspython resolver per :class:`Resolver` value (cached), one
function that turns dnspython's answer into an :class:`Answer`, and one context
manager that translates dnspython's exceptions; the sync and async functions
differ only in the call they make in between.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import logging
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import dns.asyncresolver
import dns.exception
import dns.flags
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.resolver
import dns.reversename

from ..errors import DNSError, DNSTemporaryError, InvalidArgument, NXDomain
from ._config import Resolver
from ._records import Answer, MXRecord, TLSARecord, TXTRecord

__all__ = [
    "alookup",
    "alookup_addresses",
    "alookup_mx",
    "alookup_ptr",
    "alookup_tlsa",
    "alookup_txt",
    "lookup",
    "lookup_addresses",
    "lookup_mx",
    "lookup_ptr",
    "lookup_tlsa",
    "lookup_txt",
    "to_ascii",
]

logger = logging.getLogger("mailtransfer.dns")

R = TypeVar("R")
_DEFAULT = Resolver()
_ATTEMPT = 2.0  # seconds per server and try; the lookup's deadline is Resolver.timeout


def to_ascii(domain: str) -> str:
    """Return ``domain`` in ASCII (IDNA A-labels), lower case, without the trailing dot.

    Args:
        domain: a domain name, possibly with Unicode labels (``bücher.example``).

    Raises:
        InvalidArgument: the name is empty, has an empty or over-long label, or
            cannot be IDNA-encoded.
    """
    text = domain.strip().rstrip(".")
    if not text or any(c in text for c in "\r\n\x00 "):
        raise InvalidArgument(f"not a domain name: {domain!r}")
    try:
        name = dns.name.from_text(text)
    except (dns.exception.DNSException, UnicodeError, ValueError) as exc:
        raise InvalidArgument(f"not a domain name: {domain!r} ({exc})") from exc
    return name.to_text(omit_final_dot=True).lower()


def _configure(resolver: Any, config: Resolver) -> Any:
    if config.nameservers is not None:
        resolver.nameservers = list(config.nameservers)
    resolver.port = config.port
    resolver.lifetime = config.timeout
    resolver.timeout = min(_ATTEMPT, config.timeout)
    # RFC 6840 §5.7: the AD bit in a query asks a validating resolver to report it.
    resolver.flags = dns.flags.RD | dns.flags.AD
    resolver.use_edns(0, 0, 1232)
    return resolver


@functools.lru_cache(maxsize=32)
def _sync_resolver(config: Resolver) -> dns.resolver.Resolver:
    configure = config.nameservers is None
    resolver: dns.resolver.Resolver = _configure(dns.resolver.Resolver(configure=configure), config)
    return resolver


@functools.lru_cache(maxsize=32)
def _async_resolver(config: Resolver) -> dns.asyncresolver.Resolver:
    configure = config.nameservers is None
    resolver: dns.asyncresolver.Resolver = _configure(
        dns.asyncresolver.Resolver(configure=configure), config
    )
    return resolver


@contextlib.contextmanager
def _translated(name: str, rdtype: str, config: Resolver) -> Iterator[None]:
    # The one place dnspython's exceptions become ours.
    where = f"{rdtype} {name}"
    try:
        yield
    except dns.resolver.NXDOMAIN as exc:
        logger.debug("dns.nxdomain %s", where)
        raise NXDomain(f"{name} does not exist (NXDOMAIN for {rdtype})") from exc
    except dns.exception.Timeout as exc:
        logger.debug("dns.timeout %s", where)
        raise DNSTemporaryError(
            f"no DNS answer for {where} within {config.timeout:g} s (servers: {_servers(config)})"
        ) from exc
    except dns.resolver.NoNameservers as exc:
        logger.debug("dns.servfail %s: %s", where, exc)
        raise DNSTemporaryError(
            f"the DNS servers failed to answer {where} (SERVFAIL or refused)"
        ) from exc
    except dns.resolver.YXDOMAIN as exc:
        raise DNSError(f"{name} cannot be resolved (YXDOMAIN for {rdtype})") from exc
    except dns.exception.DNSException as exc:
        logger.debug("dns.failed %s: %s", where, exc)
        raise DNSTemporaryError(f"the DNS lookup of {where} failed: {exc}") from exc


def _servers(config: Resolver) -> str:
    if config.nameservers is None:
        return "system resolver"
    return ", ".join(f"{s}#{config.port}" for s in config.nameservers)


def _answer(
    name: str,
    rdtype: str,
    result: dns.resolver.Answer,
    config: Resolver,
    convert: Callable[[Any], R],
) -> Answer[R]:
    rrset = result.rrset
    records = tuple(convert(rdata) for rdata in rrset) if rrset is not None else ()
    authenticated = config.assume_authenticated or bool(result.response.flags & dns.flags.AD)
    answer = Answer(
        name=name,
        rdtype=rdtype,
        records=records,
        ttl=rrset.ttl if rrset is not None else 0,
        authenticated=authenticated,
        canonical_name=result.canonical_name.to_text(omit_final_dot=True).lower(),
    )
    logger.debug(
        "dns.answer %s %s: %d record(s)%s", rdtype, name, len(records), " AD" * authenticated
    )
    return answer


def _ask(name: str, config: Resolver | None) -> tuple[str, Resolver]:
    return to_ascii(name), config or _DEFAULT


def _query_sync(
    name: str, rdtype: str, config: Resolver | None, convert: Callable[[Any], R]
) -> Answer[R]:
    qname, cfg = _ask(name, config)
    with _translated(qname, rdtype, cfg):
        result = _sync_resolver(cfg).resolve(
            qname + ".", rdtype, tcp=cfg.use_tcp, raise_on_no_answer=False, search=False
        )
    return _answer(qname, rdtype, result, cfg, convert)


async def _query_async(
    name: str, rdtype: str, config: Resolver | None, convert: Callable[[Any], R]
) -> Answer[R]:
    qname, cfg = _ask(name, config)
    with _translated(qname, rdtype, cfg):
        result = await _async_resolver(cfg).resolve(
            qname + ".", rdtype, tcp=cfg.use_tcp, raise_on_no_answer=False, search=False
        )
    return _answer(qname, rdtype, result, cfg, convert)


# -- converters ---------------------------------------------------------------------------


def _text(rdata: Any) -> str:
    text: str = rdata.to_text()
    return text.rstrip(".").lower() if rdata.rdtype in _NAME_TYPES else text


_NAME_TYPES = frozenset({dns.rdatatype.PTR, dns.rdatatype.CNAME, dns.rdatatype.NS})


def _mx(rdata: Any) -> MXRecord:
    return MXRecord(
        int(rdata.preference), rdata.exchange.to_text(omit_final_dot=True).lower().rstrip(".")
    )


def _txt(rdata: Any) -> TXTRecord:
    return TXTRecord(tuple(bytes(s) for s in rdata.strings))


def _tlsa(rdata: Any) -> TLSARecord:
    return TLSARecord(int(rdata.usage), int(rdata.selector), int(rdata.mtype), bytes(rdata.cert))


def _checked_type(rdtype: str) -> str:
    try:
        return dns.rdatatype.to_text(dns.rdatatype.from_text(rdtype))
    except dns.exception.DNSException as exc:
        raise InvalidArgument(f"unknown DNS record type: {rdtype!r}") from exc


def _reverse_name(address: str) -> str:
    try:
        ipaddress.ip_address(address)
    except ValueError as exc:
        raise InvalidArgument(f"not an IP address: {address!r}") from exc
    return dns.reversename.from_address(address).to_text(omit_final_dot=True)


# -- blocking -----------------------------------------------------------------------------


def lookup(name: str, rdtype: str, *, resolver: Resolver | None = None) -> Answer[str]:
    """Look up records of any type, as their presentation text.

    Names (PTR, CNAME, NS) come back lower case without the trailing dot.

    Args:
        name: the name to look up (Unicode labels are IDNA-encoded).
        rdtype: the record type, e.g. ``"A"``, ``"AAAA"``, ``"PTR"``, ``"CAA"``.
        resolver: where to ask; the system resolver by default.

    Returns:
        The answer; no records when the name has none of that type.

    Raises:
        NXDomain: the name does not exist.
        DNSTemporaryError: timeout, SERVFAIL or refusal.
        InvalidArgument: the name or type is malformed.
    """
    return _query_sync(name, _checked_type(rdtype), resolver, _text)


def lookup_mx(domain: str, *, resolver: Resolver | None = None) -> Answer[MXRecord]:
    """Look up the MX records of ``domain``, as sent (see :func:`mail_exchangers` for the order).

    Args:
        domain: the mail domain.
        resolver: where to ask; the system resolver by default.

    Raises:
        NXDomain: the domain does not exist.
        DNSTemporaryError: timeout, SERVFAIL or refusal.
        InvalidArgument: the name is malformed.
    """
    return _query_sync(domain, "MX", resolver, _mx)


def lookup_txt(name: str, *, resolver: Resolver | None = None) -> Answer[TXTRecord]:
    """Look up the TXT records of ``name`` (SPF, DKIM, DMARC, ``_mta-sts``).

    Args:
        name: the name, e.g. ``"_dmarc.example.org"``.
        resolver: where to ask; the system resolver by default.

    Raises:
        NXDomain: the name does not exist.
        DNSTemporaryError: timeout, SERVFAIL or refusal.
        InvalidArgument: the name is malformed.
    """
    return _query_sync(name, "TXT", resolver, _txt)


def lookup_tlsa(name: str, *, resolver: Resolver | None = None) -> Answer[TLSARecord]:
    """Look up the TLSA records of ``name`` (``_25._tcp.mx.example.org``, RFC 6698).

    Use them only when ``answer.authenticated`` is True (RFC 7672 §2.2).

    Args:
        name: the TLSA owner name.
        resolver: where to ask; the system resolver by default.

    Raises:
        NXDomain: the name does not exist.
        DNSTemporaryError: timeout, SERVFAIL or refusal.
        InvalidArgument: the name is malformed.
    """
    return _query_sync(name, "TLSA", resolver, _tlsa)


def lookup_ptr(address: str, *, resolver: Resolver | None = None) -> Answer[str]:
    """Look up the PTR names of an IPv4 or IPv6 address (reverse DNS).

    Args:
        address: the IP address.
        resolver: where to ask; the system resolver by default.

    Raises:
        NXDomain: the reverse name does not exist.
        DNSTemporaryError: timeout, SERVFAIL or refusal.
        InvalidArgument: ``address`` is not an IP address.
    """
    return _query_sync(_reverse_name(address), "PTR", resolver, _text)


def lookup_addresses(host: str, *, resolver: Resolver | None = None) -> Answer[str]:
    """Look up the IPv4 (A) and IPv6 (AAAA) addresses of ``host``, IPv4 first.

    ``authenticated`` is True only when both answers were.

    Args:
        host: the host name.
        resolver: where to ask; the system resolver by default.

    Raises:
        NXDomain: the name does not exist.
        DNSTemporaryError: both lookups failed, or one failed and the other found nothing.
        InvalidArgument: the name is malformed.
    """
    v4: Answer[str] | DNSTemporaryError
    v6: Answer[str] | DNSTemporaryError
    try:
        v4 = _query_sync(host, "A", resolver, _text)
    except DNSTemporaryError as exc:
        v4 = exc
    try:
        v6 = _query_sync(host, "AAAA", resolver, _text)
    except DNSTemporaryError as exc:
        v6 = exc
    return _merge(v4, v6)


# -- asyncio ------------------------------------------------------------------------------


async def alookup(name: str, rdtype: str, *, resolver: Resolver | None = None) -> Answer[str]:
    """The asyncio form of :func:`lookup`."""
    return await _query_async(name, _checked_type(rdtype), resolver, _text)


async def alookup_mx(domain: str, *, resolver: Resolver | None = None) -> Answer[MXRecord]:
    """The asyncio form of :func:`lookup_mx`."""
    return await _query_async(domain, "MX", resolver, _mx)


async def alookup_txt(name: str, *, resolver: Resolver | None = None) -> Answer[TXTRecord]:
    """The asyncio form of :func:`lookup_txt`."""
    return await _query_async(name, "TXT", resolver, _txt)


async def alookup_tlsa(name: str, *, resolver: Resolver | None = None) -> Answer[TLSARecord]:
    """The asyncio form of :func:`lookup_tlsa`."""
    return await _query_async(name, "TLSA", resolver, _tlsa)


async def alookup_ptr(address: str, *, resolver: Resolver | None = None) -> Answer[str]:
    """The asyncio form of :func:`lookup_ptr`."""
    return await _query_async(_reverse_name(address), "PTR", resolver, _text)


async def alookup_addresses(host: str, *, resolver: Resolver | None = None) -> Answer[str]:
    """The asyncio form of :func:`lookup_addresses`."""
    v4: Answer[str] | DNSTemporaryError
    v6: Answer[str] | DNSTemporaryError
    try:
        v4 = await _query_async(host, "A", resolver, _text)
    except DNSTemporaryError as exc:
        v4 = exc
    try:
        v6 = await _query_async(host, "AAAA", resolver, _text)
    except DNSTemporaryError as exc:
        v6 = exc
    return _merge(v4, v6)


def _merge(v4: Answer[str] | DNSTemporaryError, v6: Answer[str] | DNSTemporaryError) -> Answer[str]:
    if isinstance(v4, DNSTemporaryError) and isinstance(v6, DNSTemporaryError):
        raise v4
    if isinstance(v4, DNSTemporaryError):
        assert isinstance(v6, Answer)
        if not v6.records:
            raise v4
        return v6
    if isinstance(v6, DNSTemporaryError):
        if not v4.records:
            raise v6
        return v4
    ttls = [a.ttl for a in (v4, v6) if a.records]
    return Answer(
        name=v4.name,
        rdtype="A/AAAA",
        records=v4.records + v6.records,
        ttl=min(ttls) if ttls else 0,
        authenticated=v4.authenticated and v6.authenticated,
        canonical_name=v4.canonical_name,
    )
