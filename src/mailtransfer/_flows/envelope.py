"""From an envelope and a body to the MAIL and RCPT commands, with the right parameters."""

from __future__ import annotations

from collections.abc import Sequence

from ..protocol import Extensions, MailFrom, RcptTo, parse_mailbox
from ..protocol._grammar import parse_reverse_path

__all__ = ["envelope_commands"]


def envelope_commands(
    sender: str,
    recipients: Sequence[str],
    extensions: Extensions,
    *,
    size: int | None = None,
    eight_bit: bool = False,
    smtputf8: bool = False,
    body_type: str | None = None,
    ret: str | None = None,
    envid: str | None = None,
    notify: Sequence[str] | None = None,
    requiretls: bool = False,
) -> tuple[MailFrom, list[RcptTo]]:
    """Build MAIL and RCPT commands, adding SIZE, BODY and SMTPUTF8 where they apply.

    ``SMTPUTF8`` is added whenever an address needs it (the connection then
    refuses it with ``SMTPUTF8Required`` if the server lacks the extension);
    ``BODY=8BITMIME`` is added for an 8-bit body when the server offers it.
    """
    reverse = parse_reverse_path(sender)
    needs_utf8 = smtputf8 or (reverse is not None and reverse.needs_smtputf8)
    needs_utf8 = needs_utf8 or any(parse_mailbox(r).needs_smtputf8 for r in recipients)
    if body_type is None and eight_bit and extensions.eightbitmime:
        body_type = "8BITMIME"
    mail = MailFrom(
        sender=sender,
        size=size if extensions.size is not None else None,
        body=body_type,  # type: ignore[arg-type]
        smtputf8=needs_utf8,
        ret=ret,  # type: ignore[arg-type]
        envid=envid,
        requiretls=requiretls,
    )
    notify_values = tuple(notify) if notify else None
    rcpts = [RcptTo(recipient=r, notify=notify_values) for r in recipients]  # type: ignore[arg-type]
    return mail, rcpts
