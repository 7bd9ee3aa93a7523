"""Running lookup flows against real DNS: blocking (a thread pool) or asyncio (gather).

Strategy: the flows of :mod:`._lookups` yield request batches; these drivers
answer each batch with the DNS layer of :mod:`mailtransfer.dns` (one resolver
configuration for every lookup, its errors mapped to
:class:`~._lookups.DnsStatus`), cache answers for the run, and send them back.
The requests of a batch run concurrently: in a small thread pool when
blocking, with ``asyncio.gather`` under asyncio.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from .._async._https import fetch_policy as afetch_policy
from .._direct._options import DirectOptions
from .._sync._https import fetch_policy
from ..dns import Resolver, alookup, alookup_mx, alookup_txt, lookup, lookup_mx, lookup_txt
from ..errors import DNSError, InvalidArgument, MailTransferError, NXDomain
from ._lookups import DnsResult, DnsStatus, FetchPolicy, Lookups, Query, Request

__all__ = ["HTTPSOptions", "aresolve", "resolve"]

T = TypeVar("T")
_WORKERS = 8


@dataclass(frozen=True, slots=True, kw_only=True)
class HTTPSOptions:
    """How MTA-STS policies are fetched (by the same code direct delivery uses).

    Attributes:
        ssl_context: verifies the policy host's certificate (default: the
            system's CAs, via :func:`mailtransfer.tls.create_ssl_context`).
        port: the HTTPS port (443; another for a test server).
    """

    ssl_context: ssl.SSLContext | None = None
    port: int = 443


def resolve(
    flow: Lookups[T], *, resolver: Resolver | None = None, https: HTTPSOptions | None = None
) -> T:
    """Run a lookup flow with blocking DNS and return its result.

    Args:
        flow: e.g. ``evaluate_spf("192.0.2.1", "example.org")``.
        resolver: the DNS servers to ask (default: the system's).
        https: how MTA-STS policies are fetched.

    Returns:
        What the flow returns.
    """
    cache: dict[Request, DnsResult] = {}
    options = https or HTTPSOptions()

    def answer(request: Request) -> DnsResult:
        if request not in cache:
            cache[request] = _ask_sync(request, resolver, options)
        return cache[request]

    with ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="mailtransfer-dns") as pool:
        try:
            batch = next(flow)
            while True:
                batch = flow.send(tuple(pool.map(answer, batch)))
        except StopIteration as done:
            result: T = done.value
            return result


async def aresolve(
    flow: Lookups[T], *, resolver: Resolver | None = None, https: HTTPSOptions | None = None
) -> T:
    """Run a lookup flow with asyncio DNS; the requests of a batch run concurrently.

    Args:
        flow: e.g. ``evaluate_spf("192.0.2.1", "example.org")``.
        resolver: the DNS servers to ask (default: the system's).
        https: how MTA-STS policies are fetched.

    Returns:
        What the flow returns.
    """
    cache: dict[Request, DnsResult] = {}
    options = https or HTTPSOptions()

    async def answer(request: Request) -> DnsResult:
        if request not in cache:
            cache[request] = await _ask_async(request, resolver, options)
        return cache[request]

    try:
        batch = next(flow)
        while True:
            answers = await asyncio.gather(*(answer(request) for request in batch))
            batch = flow.send(tuple(answers))
    except StopIteration as done:
        result: T = done.value
        return result


def _ask_sync(request: Request, resolver: Resolver | None, https: HTTPSOptions) -> DnsResult:
    if isinstance(request, FetchPolicy):
        try:
            body = fetch_policy(request.domain, _direct(resolver, https))
        except MailTransferError as exc:
            return DnsResult(status=DnsStatus.ERROR, detail=str(exc))
        return DnsResult((body.decode("utf-8", "replace"),))
    return _guarded(request, lambda: _records_sync(request, resolver))


async def _ask_async(request: Request, resolver: Resolver | None, https: HTTPSOptions) -> DnsResult:
    if isinstance(request, FetchPolicy):
        try:
            body = await afetch_policy(request.domain, _direct(resolver, https))
        except MailTransferError as exc:
            return DnsResult(status=DnsStatus.ERROR, detail=str(exc))
        return DnsResult((body.decode("utf-8", "replace"),))
    try:
        records = await _records_async(request, resolver)
    except (DNSError, InvalidArgument) as exc:
        return _guarded(request, _raiser(exc))
    return _guarded(request, lambda: records)


def _direct(resolver: Resolver | None, https: HTTPSOptions) -> DirectOptions:
    """The policy fetchers' settings (they are direct delivery's, reused as they are)."""
    return DirectOptions(
        resolver=resolver, mta_sts_port=https.port, verify_context=https.ssl_context
    )


def _records_sync(query: Query, resolver: Resolver | None) -> tuple[str, ...]:
    if query.rdtype == "TXT":
        return tuple(r.text for r in lookup_txt(query.name, resolver=resolver).records)
    if query.rdtype == "MX":
        found = lookup_mx(query.name, resolver=resolver).records
        return tuple(f"{r.preference} {r.exchange}" for r in found)
    return lookup(query.name, query.rdtype, resolver=resolver).records


async def _records_async(query: Query, resolver: Resolver | None) -> tuple[str, ...]:
    if query.rdtype == "TXT":
        found = (await alookup_txt(query.name, resolver=resolver)).records
        return tuple(r.text for r in found)
    if query.rdtype == "MX":
        mx = (await alookup_mx(query.name, resolver=resolver)).records
        return tuple(f"{r.preference} {r.exchange}" for r in mx)
    return (await alookup(query.name, query.rdtype, resolver=resolver)).records


def _raiser(exc: Exception) -> Callable[[], tuple[str, ...]]:
    def again() -> tuple[str, ...]:
        raise exc

    return again


def _guarded(query: Query, ask: Callable[[], tuple[str, ...]]) -> DnsResult:
    """Turn the DNS layer's answer or error into a :class:`DnsResult`."""
    try:
        records = ask()
    except NXDomain as exc:
        return DnsResult(status=DnsStatus.NXDOMAIN, detail=str(exc))
    except DNSError as exc:
        return DnsResult(status=DnsStatus.ERROR, detail=str(exc))
    except InvalidArgument as exc:
        # A name no DNS can hold (an SPF macro can make one): nothing exists there.
        return DnsResult(status=DnsStatus.NXDOMAIN, detail=str(exc))
    if not records:
        return DnsResult(status=DnsStatus.NODATA, detail=f"no {query.rdtype} record")
    return DnsResult(records)
