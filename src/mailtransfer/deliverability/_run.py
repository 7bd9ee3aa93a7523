"""``check_domain`` and ``acheck_domain``: the domain check, run against real DNS."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..dns import Resolver
from ._addresses import AddressCheck, addresses_flow
from ._check import DEFAULT_BLOCKLISTS, check_domain_flow
from ._drivers import HTTPSOptions, aresolve, resolve
from ._report import DomainReport

__all__ = [
    "acheck_domain",
    "avalidate_address",
    "avalidate_addresses",
    "check_domain",
    "validate_address",
    "validate_addresses",
]


def check_domain(
    domain: str,
    *,
    dkim_selectors: Sequence[str] = (),
    sending_ips: Sequence[str] = (),
    blocklists: Sequence[str] = DEFAULT_BLOCKLISTS,
    mta_sts: bool = True,
    resolver: Resolver | None = None,
    https: HTTPSOptions | None = None,
) -> DomainReport:
    """Check what receivers will find in DNS for mail from ``domain``.

    MX records (and null MX) with their addresses; the SPF record (one, valid,
    at most 10 lookups, ending in ``-all``/``~all``) and whether each sending
    IP passes it; each DKIM selector's key (present, parseable, not revoked, at
    least 2048-bit RSA); the DMARC record that applies (the domain's or a
    parent's); MTA-STS (record and policy file, which must cover every MX),
    TLS-RPT and BIMI; and per sending IP, forward-confirmed reverse DNS and
    blocklist listings. Nothing raises for what DNS says: every problem is a
    :class:`~mailtransfer.deliverability.Finding` with its fix.

    Example:
        >>> report = check_domain("example.org", dkim_selectors=["s1"],  # doctest: +SKIP
        ...                       sending_ips=["192.0.2.10"])
        >>> print(render_report(report))  # doctest: +SKIP

    Args:
        domain: the domain you send from (U-labels allowed).
        dkim_selectors: the selectors you sign with (DNS cannot list them).
        sending_ips: the IP addresses your mail leaves from.
        blocklists: DNSBL zones to query for each sending IP; ``()`` for none.
        mta_sts: fetch the MTA-STS policy over HTTPS when a record points to one.
        resolver: the DNS servers to ask (default: the system's).
        https: certificate trust, port and timeout for the policy fetch.

    Returns:
        The :class:`~mailtransfer.deliverability.DomainReport`.

    Raises:
        ValueError: a sending IP is not an IP address.
        InvalidArgument: ``domain`` is not a domain name (or not IDNA-encodable).
    """
    flow = check_domain_flow(
        domain,
        dkim_selectors=dkim_selectors,
        sending_ips=sending_ips,
        blocklists=blocklists,
        mta_sts=mta_sts,
    )
    return resolve(flow, resolver=resolver, https=https)


async def acheck_domain(
    domain: str,
    *,
    dkim_selectors: Sequence[str] = (),
    sending_ips: Sequence[str] = (),
    blocklists: Sequence[str] = DEFAULT_BLOCKLISTS,
    mta_sts: bool = True,
    resolver: Resolver | None = None,
    https: HTTPSOptions | None = None,
) -> DomainReport:
    """The asyncio form of :func:`check_domain`; independent lookups run concurrently.

    Args:
        domain: the domain you send from (U-labels allowed).
        dkim_selectors: the selectors you sign with.
        sending_ips: the IP addresses your mail leaves from.
        blocklists: DNSBL zones to query for each sending IP; ``()`` for none.
        mta_sts: fetch the MTA-STS policy over HTTPS when a record points to one.
        resolver: the DNS servers to ask (default: the system's).
        https: certificate trust, port and timeout for the policy fetch.

    Returns:
        The :class:`~mailtransfer.deliverability.DomainReport`.

    Raises:
        ValueError: a sending IP is not an IP address.
        InvalidArgument: ``domain`` is not a domain name (or not IDNA-encodable).
    """
    flow = check_domain_flow(
        domain,
        dkim_selectors=dkim_selectors,
        sending_ips=sending_ips,
        blocklists=blocklists,
        mta_sts=mta_sts,
    )
    return await aresolve(flow, resolver=resolver, https=https)


def validate_address(
    address: str, *, check_dns: bool = True, resolver: Resolver | None = None
) -> AddressCheck:
    """Check one address: RFC 5321/6531 syntax, IDNA, and a domain that accepts mail.

    The domain must exist and have an MX (or, lacking one, an address: the
    implicit MX of RFC 5321 section 5.1), and must not publish a null MX.
    Address literals and dotless domains are refused as undeliverable.

    Example:
        >>> validate_address("user@example..org", check_dns=False).reason
        "address has an unexpected '.' at position 13 (a leading, trailing or doubled dot)"

    Args:
        address: a bare address (``local@domain``, no display name).
        check_dns: also ask DNS whether the domain accepts mail.
        resolver: the DNS servers to ask (default: the system's).

    Returns:
        The :class:`~mailtransfer.deliverability.AddressCheck`: ``verdict``
        VALID, INVALID (with the ``reason``) or UNKNOWN (DNS failed).
    """
    (check,) = resolve(addresses_flow([address], check_dns=check_dns), resolver=resolver)
    return check


async def avalidate_address(
    address: str, *, check_dns: bool = True, resolver: Resolver | None = None
) -> AddressCheck:
    """The asyncio form of :func:`validate_address`.

    Args:
        address: a bare address (``local@domain``, no display name).
        check_dns: also ask DNS whether the domain accepts mail.
        resolver: the DNS servers to ask (default: the system's).

    Returns:
        The :class:`~mailtransfer.deliverability.AddressCheck`.
    """
    flow = addresses_flow([address], check_dns=check_dns)
    (check,) = await aresolve(flow, resolver=resolver)
    return check


def validate_addresses(
    addresses: Iterable[str], *, check_dns: bool = True, resolver: Resolver | None = None
) -> list[AddressCheck]:
    """Check many addresses: duplicates removed, each domain looked up once.

    Addresses that differ only in the case (or Unicode/A-label form) of the
    domain count as one; the local part is compared exactly (RFC 5321 section
    2.4 leaves its case to the receiving host). All the distinct domains are
    looked up concurrently.

    Args:
        addresses: bare addresses.
        check_dns: also ask DNS whether each domain accepts mail.
        resolver: the DNS servers to ask (default: the system's).

    Returns:
        One :class:`~mailtransfer.deliverability.AddressCheck` per distinct
        address, in the order first seen.
    """
    return resolve(addresses_flow(addresses, check_dns=check_dns), resolver=resolver)


async def avalidate_addresses(
    addresses: Iterable[str], *, check_dns: bool = True, resolver: Resolver | None = None
) -> list[AddressCheck]:
    """The asyncio form of :func:`validate_addresses`.

    Args:
        addresses: bare addresses.
        check_dns: also ask DNS whether each domain accepts mail.
        resolver: the DNS servers to ask (default: the system's).

    Returns:
        One :class:`~mailtransfer.deliverability.AddressCheck` per distinct address.
    """
    return await aresolve(addresses_flow(addresses, check_dns=check_dns), resolver=resolver)
