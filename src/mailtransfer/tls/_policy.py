"""TLS policies: strategy objects that say whether and how a session uses TLS.

Strategy: a policy is a frozen value with a :class:`TLSMode` and an optional
``ssl.SSLContext``; the handshake flow reads the mode and never combines
flags. Illegal combinations (implicit TLS *and* STARTTLS) cannot be expressed.
"""

from __future__ import annotations

import enum
import ssl
from dataclasses import dataclass, field
from typing import ClassVar

from ._context import create_ssl_context

__all__ = [
    "ImplicitTLS",
    "NoTLS",
    "Opportunistic",
    "StartTLS",
    "TLSMode",
    "TLSPolicy",
    "default_policy",
]


class TLSMode(enum.Enum):
    """How a session uses TLS."""

    NONE = "none"
    """Never: plaintext only, chosen explicitly."""
    OPPORTUNISTIC = "opportunistic"
    """STARTTLS when the server offers it, plaintext otherwise (MTA style)."""
    STARTTLS = "starttls"
    """STARTTLS is required: no STARTTLS, or a failed one, is an error before any AUTH or MAIL."""
    IMPLICIT = "implicit"
    """TLS from the first byte (port 465, RFC 8314)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TLSPolicy:
    """Base of the TLS policies.

    Attributes:
        context: the ``ssl.SSLContext`` to use; ``None`` builds the default one.
        server_hostname: the name to send as SNI and to verify the certificate
            against, when it differs from the host connected to.
    """

    mode: ClassVar[TLSMode] = TLSMode.NONE
    context: ssl.SSLContext | None = field(default=None, compare=False)
    server_hostname: str | None = None

    def ssl_context(self) -> ssl.SSLContext:
        """The context to wrap the socket with."""
        return self.context if self.context is not None else create_ssl_context()

    @property
    def required(self) -> bool:
        """Whether the session must fail rather than continue without TLS."""
        return self.mode in (TLSMode.STARTTLS, TLSMode.IMPLICIT)

    def __repr__(self) -> str:
        ctx = "" if self.context is None else "context=<custom>"
        host = "" if self.server_hostname is None else f"server_hostname={self.server_hostname!r}"
        return f"{type(self).__name__}({', '.join(x for x in (ctx, host) if x)})"


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class NoTLS(TLSPolicy):
    """Plaintext only. Use it for a trusted local relay; never across a network."""

    mode: ClassVar[TLSMode] = TLSMode.NONE


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class Opportunistic(TLSPolicy):
    """STARTTLS when offered, else plaintext: encryption against passive eavesdroppers only.

    The default context does not verify the certificate, as MTAs do between
    each other (RFC 7435); an active attacker can strip STARTTLS. Pass a
    verifying ``context`` to verify when TLS is used.
    """

    mode: ClassVar[TLSMode] = TLSMode.OPPORTUNISTIC

    def ssl_context(self) -> ssl.SSLContext:
        """The context to wrap the socket with (unverified unless one was given)."""
        return self.context if self.context is not None else create_ssl_context(verify=False)


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class StartTLS(TLSPolicy):
    """STARTTLS is required and the certificate is verified (RFC 3207); the default on 587."""

    mode: ClassVar[TLSMode] = TLSMode.STARTTLS


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class ImplicitTLS(TLSPolicy):
    """TLS from the first byte, certificate verified (RFC 8314); the default on 465."""

    mode: ClassVar[TLSMode] = TLSMode.IMPLICIT


def default_policy(port: int, *, has_credentials: bool) -> TLSPolicy:
    """The policy used when none is given.

    Port 465 gets implicit TLS; port 587, or any session with credentials,
    requires STARTTLS; anything else uses STARTTLS opportunistically.
    """
    if port == 465:
        return ImplicitTLS()
    if port == 587 or has_credentials:
        return StartTLS()
    return Opportunistic()
