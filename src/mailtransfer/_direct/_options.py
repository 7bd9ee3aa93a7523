"""``DirectOptions``: how ``Mailer(transport="direct")`` finds and talks to MX hosts."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field

from ..dns import Resolver
from ..tls.mta_sts import MTASTSCache

__all__ = ["DirectOptions"]


@dataclass(frozen=True, slots=True, kw_only=True)
class DirectOptions:
    """Settings of direct delivery (``Mailer(transport="direct", direct=DirectOptions(...))``).

    Attributes:
        resolver: where DNS questions go (:class:`mailtransfer.dns.Resolver`);
            the system resolver by default.
        port: the MX hosts' SMTP port. Leave it at 25 on the Internet; another
            port is for tests and your own networks only.
        mta_sts: honour the recipient domains' MTA-STS policies (RFC 8461).
        mta_sts_port: the HTTPS port policies are fetched from (443; tests only).
        mta_sts_cache: the policy cache; share one between mailers.
        dane: honour DNSSEC-signed TLSA records (RFC 7672); needs a validating
            resolver (see :class:`~mailtransfer.dns.Resolver`).
        verify_context: the verifying ``ssl.SSLContext`` used for MTA-STS hosts and
            policy fetches (default: the system's trust store).
        per_domain: at most this many simultaneous connections to one domain.
        domain_concurrency: at most this many domains served at once for one message.
    """

    resolver: Resolver | None = None
    port: int = 25
    mta_sts: bool = True
    mta_sts_port: int = 443
    mta_sts_cache: MTASTSCache = field(default_factory=MTASTSCache, compare=False)
    dane: bool = True
    verify_context: ssl.SSLContext | None = field(default=None, compare=False, repr=False)
    per_domain: int = 2
    domain_concurrency: int = 8

    def __post_init__(self) -> None:
        for name in ("port", "mta_sts_port"):
            value = getattr(self, name)
            if not 0 < value < 65536:
                raise ValueError(f"{name} must be 1-65535, got {value!r}")
        for name in ("per_domain", "domain_concurrency"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)!r}")
