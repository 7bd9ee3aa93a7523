"""What direct delivery reports: per host tried, per domain, per recipient."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..errors import MailTransferError
from ..protocol import Reply
from ..results import SendResult

__all__ = ["DirectResult", "DomainResult", "HostAttempt"]


@dataclass(frozen=True, slots=True, kw_only=True)
class HostAttempt:
    """One MX host tried for a domain.

    Attributes:
        host: the MX host name.
        address: the IP address dialled (None when it was never dialled).
        tls: the TLS level used or required: ``"dane"``, ``"mta-sts"``,
            ``"opportunistic"``, ``"dane-encrypt"`` (TLSA records, none usable), or
            ``"none"`` (cleartext, after an opportunistic handshake failed).
        tls_version: the TLS version negotiated, or None for cleartext.
        error: why the host did not take the message (None when it did).
    """

    host: str
    address: str | None = None
    tls: str = "opportunistic"
    tls_version: str | None = None
    error: MailTransferError | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DomainResult:
    """How one recipient domain was served.

    Attributes:
        domain: the domain (ASCII).
        recipients: its recipients, as in the envelope.
        policy: where the TLS requirement came from: ``"dane"``, ``"mta-sts"``
            (enforce), ``"mta-sts-testing"``, or ``"none"`` (opportunistic TLS).
        attempts: the hosts tried, in order.
        host: the host that accepted the message (None if none did).
        result: that host's :class:`~mailtransfer.SendResult`.
        error: why the domain got nothing, when no host accepted.
    """

    domain: str
    recipients: tuple[str, ...]
    policy: str = "none"
    attempts: tuple[HostAttempt, ...] = ()
    host: str | None = None
    result: SendResult | None = None
    error: MailTransferError | None = None

    @property
    def tls(self) -> str | None:
        """The TLS level of the accepting host (None if none accepted)."""
        return self.attempts[-1].tls if self.host is not None and self.attempts else None


@dataclass(frozen=True, slots=True, kw_only=True)
class DirectResult(SendResult):
    """The outcome of a message delivered directly to each recipient domain's MX hosts.

    ``accepted`` and ``refused`` are as in :class:`~mailtransfer.SendResult`;
    ``failed`` holds recipients that got no server reply of their own (DNS,
    connection or TLS failures); ``reply``/``host``/``queue_id`` are those of
    the first domain that accepted.

    Attributes:
        domains: each domain's :class:`DomainResult`.
        failed: recipient -> the typed error that kept the message from it.
        hosts: recipient -> the MX host that accepted it.
    """

    domains: Mapping[str, DomainResult] = field(default_factory=dict)
    failed: Mapping[str, MailTransferError] = field(default_factory=dict)
    hosts: Mapping[str, str] = field(default_factory=dict)

    @property
    def partial(self) -> bool:
        """True when some recipients got the message and others did not."""
        return bool(self.accepted) and bool(self.refused or self.failed)

    def __repr__(self) -> str:
        return (
            f"<DirectResult domains={len(self.domains)} accepted={len(self.accepted)}"
            f" refused={len(self.refused)} failed={len(self.failed)}>"
        )


def accepted_replies(domains: Mapping[str, DomainResult]) -> dict[str, Reply]:
    """Recipient -> reply, over every domain that accepted."""
    out: dict[str, Reply] = {}
    for domain in domains.values():
        if domain.result is not None:
            out.update(domain.result.accepted)
    return out
