"""Which hosts take mail for a domain, in which order (RFC 5321 §5.1, RFC 7505).

Strategy: the rules live in one generator, :func:`_plan`, that yields the
lookups it needs (``"MX"`` or ``"ADDR"`` for a name) and receives their
answers; :func:`mail_exchangers` and :func:`amail_exchangers` only run those
lookups, blocking or with asyncio.
"""

from __future__ import annotations

import ipaddress
import logging
import random
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from ..errors import NoMailExchanger
from ._config import Resolver
from ._lookup import alookup_addresses, alookup_mx, lookup_addresses, lookup_mx, to_ascii
from ._records import Answer, MXRecord

__all__ = ["MailExchanger", "MailExchangers", "amail_exchangers", "mail_exchangers"]

logger = logging.getLogger("mailtransfer.dns")


@dataclass(frozen=True, slots=True)
class MailExchanger:
    """One host to try.

    Attributes:
        host: its name (ASCII, lower case, no trailing dot).
        preference: its MX preference (0 for an implicit MX).
    """

    host: str
    preference: int


@dataclass(frozen=True, slots=True, kw_only=True)
class MailExchangers:
    """The hosts that take mail for a domain, in the order to try them.

    Attributes:
        domain: the domain (ASCII).
        hosts: lowest preference first; hosts of equal preference shuffled.
        implicit: the domain has no MX records, so its own address is used
            (the implicit MX, RFC 5321 §5.1).
        authenticated: the MX answer was DNSSEC-validated (AD bit).
        skipped: ``(exchange, reason)`` for MX records that cannot be used,
            such as one naming an IP address.
    """

    domain: str
    hosts: tuple[MailExchanger, ...]
    implicit: bool = False
    authenticated: bool = False
    skipped: tuple[tuple[str, str], ...] = ()


_Need = tuple[str, str]  # ("MX" | "ADDR", name)


def _is_ip_literal(exchange: str) -> bool:
    text = exchange.strip("[]")
    if text.lower().startswith("ipv6:"):
        text = text[5:]
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def order(records: tuple[MXRecord, ...], rng: random.Random) -> list[MXRecord]:
    """Sort by preference, shuffling records of equal preference (RFC 5321 §5.1).

    Args:
        records: the MX records.
        rng: the source of randomness (seed it in tests).
    """
    shuffled = list(records)
    rng.shuffle(shuffled)
    return sorted(shuffled, key=lambda r: r.preference)  # sorted() is stable


def _plan(domain: str, rng: random.Random) -> Generator[_Need, Any, MailExchangers]:
    answer: Answer[MXRecord] = yield ("MX", domain)
    if not answer.records:
        # RFC 5321 §5.1: no MX at all -> the domain itself is the only host, if it has an address.
        addresses: Answer[str] = yield ("ADDR", domain)
        if not addresses.records:
            raise NoMailExchanger(f"{domain} has no MX record and no address: it takes no mail")
        logger.debug("dns.mx %s: no MX, implicit MX %s", domain, addresses.records)
        return MailExchangers(
            domain=domain,
            hosts=(MailExchanger(domain, 0),),
            implicit=True,
            authenticated=answer.authenticated and addresses.authenticated,
        )
    if len(answer.records) == 1 and answer.records[0].exchange == "":
        raise NoMailExchanger(
            f"{domain} publishes a null MX (RFC 7505): it accepts no mail; do not retry"
        )
    hosts: list[MailExchanger] = []
    skipped: list[tuple[str, str]] = []
    seen: set[str] = set()
    for record in order(answer.records, rng):
        name = record.exchange
        if name == "":
            skipped.append((".", "a null MX among other MX records (RFC 7505 §3)"))
        elif _is_ip_literal(name):
            skipped.append((name, "an MX must name a host, not an IP address (RFC 5321 §5.1)"))
        elif name not in seen:
            seen.add(name)
            hosts.append(MailExchanger(name, record.preference))
    for name, reason in skipped:
        logger.warning("dns.mx %s: MX %s skipped: %s", domain, name, reason)
    if not hosts:
        raise NoMailExchanger(
            f"{domain} has no usable MX host: "
            + "; ".join(f"{name}: {reason}" for name, reason in skipped)
        )
    logger.debug("dns.mx %s: %s", domain, ", ".join(f"{h.preference} {h.host}" for h in hosts))
    return MailExchangers(
        domain=domain,
        hosts=tuple(hosts),
        authenticated=answer.authenticated,
        skipped=tuple(skipped),
    )


def mail_exchangers(
    domain: str, *, resolver: Resolver | None = None, rng: random.Random | None = None
) -> MailExchangers:
    """Find the hosts that take mail for ``domain``, in the order to try them.

    Example:
        >>> mail_exchangers("example.org").hosts  # doctest: +SKIP
        (MailExchanger(host='mx1.example.org', preference=10), ...)

    Args:
        domain: the recipient domain (Unicode labels are IDNA-encoded).
        resolver: where to ask; the system resolver by default.
        rng: shuffles hosts of equal preference; seed one for reproducible tests.

    Returns:
        The hosts; the domain itself (``implicit=True``) when it has no MX.

    Raises:
        NoMailExchanger: a null MX, or neither a usable MX nor an address (permanent).
        NXDomain: the domain does not exist (permanent).
        DNSTemporaryError: timeout or SERVFAIL (transient).
        InvalidArgument: the domain name is malformed.
    """
    flow = _plan(to_ascii(domain), rng or random.Random())
    answer: Any = None
    while True:
        try:
            kind, name = flow.send(answer)
        except StopIteration as stop:
            result: MailExchangers = stop.value
            return result
        if kind == "MX":
            answer = lookup_mx(name, resolver=resolver)
        else:
            answer = lookup_addresses(name, resolver=resolver)


async def amail_exchangers(
    domain: str, *, resolver: Resolver | None = None, rng: random.Random | None = None
) -> MailExchangers:
    """The asyncio form of :func:`mail_exchangers`.

    Args:
        domain: the recipient domain (Unicode labels are IDNA-encoded).
        resolver: where to ask; the system resolver by default.
        rng: shuffles hosts of equal preference; seed one for reproducible tests.

    Raises:
        NoMailExchanger: a null MX, or neither a usable MX nor an address (permanent).
        NXDomain: the domain does not exist (permanent).
        DNSTemporaryError: timeout or SERVFAIL (transient).
        InvalidArgument: the domain name is malformed.
    """
    flow = _plan(to_ascii(domain), rng or random.Random())
    answer: Any = None
    while True:
        try:
            kind, name = flow.send(answer)
        except StopIteration as stop:
            result: MailExchangers = stop.value
            return result
        if kind == "MX":
            answer = await alookup_mx(name, resolver=resolver)
        else:
            answer = await alookup_addresses(name, resolver=resolver)
