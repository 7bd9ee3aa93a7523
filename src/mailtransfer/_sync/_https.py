"""Fetching an MTA-STS policy file over verified HTTPS (RFC 8461 §3.3), blocking."""

from __future__ import annotations

import http.client
import socket
import ssl

from .._direct._options import DirectOptions
from ..dns import lookup_addresses
from ..errors import ConnectError, DNSError, MailTransferError
from ..tls import create_ssl_context
from ..tls.mta_sts import MAX_POLICY_SIZE

__all__ = ["fetch_policy"]

_PATH = "/.well-known/mta-sts.txt"
_TIMEOUT = 10.0


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to an address found through our resolver, verified against the policy host name."""

    def __init__(self, address: str, port: int, name: str, context: ssl.SSLContext) -> None:
        super().__init__(address, port, timeout=_TIMEOUT, context=context)
        self._name = name
        self._tls = context

    def connect(self) -> None:
        raw = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(raw, server_hostname=self._name)


def fetch_policy(domain: str, options: DirectOptions) -> bytes:
    """GET ``https://mta-sts.<domain>/.well-known/mta-sts.txt``; redirects are not followed.

    Raises:
        DNSError: the policy host has no address.
        ConnectError: no address answered with a 200 over verified TLS.
    """
    name = f"mta-sts.{domain}"
    addresses = lookup_addresses(name, resolver=options.resolver).records
    if not addresses:
        raise DNSError(f"{name} has no address")
    context = options.verify_context or create_ssl_context()
    problems = []
    for address in addresses:
        conn = _PinnedHTTPS(address, options.mta_sts_port, name, context)
        try:
            conn.request("GET", _PATH, headers={"Host": name, "User-Agent": "mailtransfer"})
            response = conn.getresponse()
            body = response.read(MAX_POLICY_SIZE + 1)
            if response.status != 200:
                problems.append(f"[{address}] HTTP {response.status}")
                continue
            if len(body) > MAX_POLICY_SIZE:
                problems.append(f"[{address}] the policy is larger than {MAX_POLICY_SIZE} bytes")
                continue
            return body
        except (OSError, http.client.HTTPException, MailTransferError) as exc:
            problems.append(f"[{address}] {type(exc).__name__}: {exc}")
        finally:
            conn.close()
    raise ConnectError(f"no MTA-STS policy from https://{name}{_PATH}: {'; '.join(problems)}")
