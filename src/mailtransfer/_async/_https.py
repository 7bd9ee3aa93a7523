"""Fetching an MTA-STS policy file over verified HTTPS (RFC 8461 §3.3), with asyncio.

A deliberately small HTTP/1.0 GET (no chunked encoding, no redirects, a size
cap): all RFC 8461 asks for, without a new dependency.
"""

from __future__ import annotations

import asyncio

from .._direct._options import DirectOptions
from ..dns import alookup_addresses
from ..errors import ConnectError, DNSError
from ..tls import create_ssl_context
from ..tls.mta_sts import MAX_POLICY_SIZE

__all__ = ["fetch_policy"]

_PATH = "/.well-known/mta-sts.txt"
_TIMEOUT = 10.0
_MAX_HEAD = 16 * 1024


async def _get(address: str, port: int, name: str, options: DirectOptions) -> bytes:
    context = options.verify_context or create_ssl_context()
    reader, writer = await asyncio.open_connection(address, port, ssl=context, server_hostname=name)
    try:
        request = f"GET {_PATH} HTTP/1.0\r\nHost: {name}\r\nUser-Agent: mailtransfer\r\n\r\n"
        writer.write(request.encode("ascii"))
        await writer.drain()
        raw = await reader.read(_MAX_HEAD + MAX_POLICY_SIZE + 1)
        while True:
            more = await reader.read(_MAX_HEAD + MAX_POLICY_SIZE + 1 - len(raw))
            if not more or len(raw) > _MAX_HEAD + MAX_POLICY_SIZE:
                break
            raw += more
    finally:
        writer.close()
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        raise ConnectError(f"[{address}] malformed HTTP response")
    status = head.split(b"\r\n", 1)[0].split()
    if len(status) < 2 or status[1] != b"200":
        raise ConnectError(f"[{address}] HTTP {status[1:2]!r}")
    if len(body) > MAX_POLICY_SIZE:
        raise ConnectError(f"[{address}] the policy is larger than {MAX_POLICY_SIZE} bytes")
    return body


async def fetch_policy(domain: str, options: DirectOptions) -> bytes:
    """GET ``https://mta-sts.<domain>/.well-known/mta-sts.txt``; redirects are not followed.

    Raises:
        DNSError: the policy host has no address.
        ConnectError: no address answered with a 200 over verified TLS.
    """
    name = f"mta-sts.{domain}"
    addresses = (await alookup_addresses(name, resolver=options.resolver)).records
    if not addresses:
        raise DNSError(f"{name} has no address")
    problems = []
    for address in addresses:
        try:
            return await asyncio.wait_for(
                _get(address, options.mta_sts_port, name, options), _TIMEOUT
            )
        except (OSError, asyncio.TimeoutError, ConnectError) as exc:
            problems.append(f"[{address}] {type(exc).__name__}: {exc}")
    raise ConnectError(f"no MTA-STS policy from https://{name}{_PATH}: {'; '.join(problems)}")
