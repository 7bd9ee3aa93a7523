"""Before and after the I/O: recipients grouped by domain, domain results joined into one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..dns import to_ascii
from ..errors import (
    InvalidAddress,
    MailTransferError,
    PartialDelivery,
    RecipientsRefused,
    ReplyError,
)
from ..protocol import Reply
from ._results import DirectResult, DomainResult, accepted_replies

__all__ = ["assemble", "group_by_domain"]

_NO_REPLY = Reply(554, ("no server accepted the message",))


def group_by_domain(recipients: Sequence[str]) -> dict[str, tuple[int, ...]]:
    """Recipient indexes by ASCII domain, domains in the order they first appear.

    Raises:
        InvalidAddress: an address has no domain, an address-literal domain
            (``user@[192.0.2.1]``, not supported for direct delivery), or a
            domain that is not a valid DNS name.
    """
    groups: dict[str, list[int]] = {}
    for index, address in enumerate(recipients):
        local, at, domain = address.rpartition("@")
        if not at or not local or not domain:
            raise InvalidAddress(f"direct delivery needs user@domain addresses, got {address!r}")
        if domain.startswith("["):
            raise InvalidAddress(f"direct delivery does not send to address literals: {address!r}")
        try:
            key = to_ascii(domain)
        except MailTransferError as exc:
            raise InvalidAddress(f"the domain of {address!r} is not a DNS name") from exc
        groups.setdefault(key, []).append(index)
    return {domain: tuple(indexes) for domain, indexes in groups.items()}


def assemble(
    domains: Mapping[str, DomainResult], *, message_id: str | None, strict: bool
) -> DirectResult:
    """Join the domains' results into one :class:`DirectResult`.

    Raises:
        RecipientsRefused: no recipient got the message and every one was refused
            by a server (the refusals are ReplyErrors).
        MailTransferError: no recipient got the message: the first failed domain's
            error (``NoMailExchanger``, ``DNSTemporaryError``, ``ConnectError``,
            ``DeliveryUnknown``...); its ``result`` attribute holds the DirectResult.
        PartialDelivery: ``strict`` and some recipient did not get the message.
    """
    accepted = accepted_replies(domains)
    refused: dict[str, ReplyError] = {}
    failed: dict[str, MailTransferError] = {}
    hosts: dict[str, str] = {}
    first_error: MailTransferError | None = None
    first_reply = None
    first_host = None
    queue_id = None
    for domain in domains.values():
        if domain.result is not None:
            refused.update(domain.result.refused)
            for address in domain.result.accepted:
                hosts[address] = domain.host or ""
            if first_reply is None:
                first_reply, first_host = domain.result.reply, domain.host
                queue_id = domain.result.queue_id
            continue
        error = domain.error
        if error is None:  # pragma: no cover - a flow always ends with a result or an error
            raise AssertionError(f"domain {domain.domain} ended without a result or an error")
        first_error = first_error or error
        if isinstance(error, RecipientsRefused):
            refused.update(error.refused)
        else:
            for address in domain.recipients:
                failed[address] = error
    if first_reply is None:
        assert first_error is not None
        if not failed:
            raise RecipientsRefused(refused=refused)
        first_error.result = DirectResult(  # type: ignore[attr-defined]
            accepted={},
            refused=refused,
            reply=_NO_REPLY,
            message_id=message_id,
            domains=dict(domains),
            failed=failed,
        )
        raise first_error
    result = DirectResult(
        accepted=accepted,
        refused=refused,
        reply=first_reply,
        queue_id=queue_id,
        message_id=message_id,
        host=first_host,
        domains=dict(domains),
        failed=failed,
        hosts=hosts,
    )
    if strict and (refused or failed):
        raise PartialDelivery(
            f"{len(refused) + len(failed)} recipient(s) did not get the message,"
            f" {len(accepted)} did",
            result=result,
        )
    return result
