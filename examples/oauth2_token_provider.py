"""Log in with OAuth 2.0 (XOAUTH2 / OAUTHBEARER) using a token provider that refreshes.

Run it: ``python examples/oauth2_token_provider.py``. Everything happens on this machine: a
fake authorization server hands out access tokens, and an in-process SMTP server (from
``mailtransfer.testing``, with a throw-away trustme certificate) accepts only tokens that are
still valid.

What it shows:

1. ``OAuth2(user, provider)``: mailtransfer calls ``provider()`` each time it logs in, so the
   provider decides when a cached token is too old.
2. When the server refuses a token it believed valid (revoked, or expired by the server's
   clock), it says so with a JSON error challenge; mailtransfer then calls the provider
   **once more** and retries. A provider that just returns the same cached token again would
   fail a second time, so this one treats "asked again right after handing out a token" as
   "that token was refused: refresh now".
3. The same provider works with ``SyncConnection``; an ``async def`` provider needs
   ``AsyncConnection`` (the sync client refuses it with a ``UsageError``).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import time
from collections.abc import Callable

from mailtransfer import AsyncConnection, OAuth2, StartTLS, SyncConnection
from mailtransfer.testing import (
    DEFAULT_EXTENSIONS,
    EsmtpScript,
    ScriptedPeer,
    ScriptedServer,
    tls_certificates,
)

USER = "alice@example.test"
certs = tls_certificates("localhost")
"""A throw-away CA and a certificate for localhost, standing in for a real provider's."""
MESSAGE = b"From: alice@example.test\r\nTo: bob@example.test\r\nSubject: hi\r\n\r\nHello\r\n"


class AuthorizationServer:
    """Stands in for Google's or Microsoft's token endpoint."""

    def __init__(self) -> None:
        self.valid: set[str] = set()
        self._serial = itertools.count(1)

    def issue(self) -> tuple[str, float]:
        """Return a new access token and its lifetime in seconds."""
        token = f"ya29.token-{next(self._serial)}"
        self.valid.add(token)
        return token, 3600.0

    def revoke(self, token: str) -> None:
        """Invalidate a token early, as a password change or an admin would."""
        self.valid.discard(token)


class CachedToken:
    """A token provider: cache the token, refresh it when old or just refused.

    Args:
        issuer: where fresh tokens come from (your OAuth library's refresh call).
        margin: refresh this many seconds before the token expires.
        retry_window: a second call within this many seconds of handing out the
            cached token means the server refused it (mailtransfer retries at once).
        clock: the time source, in seconds.
    """

    def __init__(
        self,
        issuer: AuthorizationServer,
        *,
        margin: float = 60.0,
        retry_window: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer = issuer
        self.margin = margin
        self.retry_window = retry_window
        self.clock = clock
        self.calls = 0
        self.refreshes = 0
        self._token: str | None = None
        self._expires = 0.0
        self._handed_out = float("-inf")

    def __call__(self) -> str:
        self.calls += 1
        now = self.clock()
        refused = now - self._handed_out < self.retry_window
        if self._token is None or refused or now >= self._expires - self.margin:
            self._token, lifetime = self.issuer.issue()
            self._expires = now + lifetime
            self.refreshes += 1
        self._handed_out = now
        return self._token

    @property
    def last(self) -> str | None:
        """The token handed out most recently."""
        return self._token


class ManualClock:
    """A clock the demo moves forward by hand, so "ten minutes later" takes no time."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def oauth_server(issuer: AuthorizationServer) -> EsmtpScript:
    """An SMTP server that accepts XOAUTH2 and OAUTHBEARER with currently valid tokens."""

    async def auth(peer: ScriptedPeer, line: bytes) -> bool:
        words = line.split()
        if not words or words[0].upper() != b"AUTH":
            return False
        message = base64.b64decode(words[2]) if len(words) > 2 else b""
        token = message.split(b"auth=Bearer ", 1)[-1].split(b"\x01", 1)[0].decode()
        if token in issuer.valid:
            await peer.send(b"235 2.7.0 Accepted\r\n")
            return True
        # RFC 7628 section 3.2.2 (and Google's XOAUTH2): a JSON error as a challenge, the
        # client's dummy answer, then the failure.
        error = json.dumps({"status": "401", "schemes": "bearer"}).encode()
        await peer.send(b"334 " + base64.b64encode(error) + b"\r\n")
        await peer.readline()
        await peer.send(b"535 5.7.8 Token expired or revoked\r\n")
        return True

    return EsmtpScript(
        extensions=(*DEFAULT_EXTENSIONS, "AUTH XOAUTH2 OAUTHBEARER"),
        tls=certs.server_context,
        intercept=auth,
    )


def sync_demo(issuer: AuthorizationServer, port: int) -> None:
    """A cached token revoked behind the provider's back: refused once, refreshed, sent."""
    clock = ManualClock()
    provider = CachedToken(issuer, clock=clock)
    credentials = OAuth2(USER, provider)
    policy = StartTLS(context=certs.client_context)
    with SyncConnection("localhost", port, tls=policy, credentials=credentials) as conn:
        conn.send(MESSAGE, sender=USER, recipients=["bob@example.test"])
    print(f"sync:  first message sent; provider calls so far: {provider.calls}")
    # Ten minutes later the token, still fresh by the cache's clock, has been revoked.
    clock.now += 600
    issuer.revoke(provider.last or "")
    with SyncConnection("localhost", port, tls=policy, credentials=credentials) as conn:
        conn.send(MESSAGE, sender=USER, recipients=["bob@example.test"])
    print(f"sync:  second message sent; provider calls so far: {provider.calls}")
    # First connection: 1 call. Second: the cached token is refused, the provider is
    # called once more at the same instant, refreshes, and the retry succeeds.
    assert (provider.calls, provider.refreshes) == (3, 2), (provider.calls, provider.refreshes)


async def async_demo(issuer: AuthorizationServer, port: int) -> None:
    """An async provider (e.g. an HTTP call to the token endpoint) with AsyncConnection."""
    cache = CachedToken(issuer)

    async def provider() -> str:
        await asyncio.sleep(0)  # stands for awaiting your OAuth client
        return cache()

    policy = StartTLS(context=certs.client_context)
    credentials = OAuth2(USER, provider)
    async with AsyncConnection("localhost", port, tls=policy, credentials=credentials) as conn:
        await conn.send(MESSAGE, sender=USER, recipients=["bob@example.test"])
    print(f"async: sent after {cache.calls} provider call(s)")
    assert cache.calls == 1


def main() -> int:
    """Run both demos against one in-process server."""
    issuer = AuthorizationServer()
    with ScriptedServer(oauth_server(issuer)) as server:
        sync_demo(issuer, server.port)
        asyncio.run(async_demo(issuer, server.port))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
