"""From an envelope and a body to the MAIL and RCPT commands, with the right parameters."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

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
    if body_type is None and eight_bit and extensions.eightbitmime:
        body_type = "8BITMIME"
    mail_size = size if extensions.size is not None else None
    if (
        ret is None
        and envid is None
        and notify is None
        and not requiretls
        and type(sender) is str
        and type(recipients) in (list, tuple)
        and type(body_type) in (str, type(None))
    ):
        smtputf8 = bool(smtputf8)
        last = _last_plain
        if (
            last
            and last[0] is recipients  # a tuple (immutable): the same recipients
            and last[1] is sender
            and last[2] is body_type
            and last[3] is smtputf8
            and type(mail_size) is last[4]
            and mail_size == last[5]
        ):
            # A run of messages to one envelope (an Envelope's tuple): no lookup at all.
            return last[6], list(last[7])
        plain = tuple(recipients)
        if all(type(r) is str for r in plain):
            # The common bulk case, the same envelope again and again: one lookup.
            key = (sender, plain, type(mail_size), mail_size, body_type, smtputf8)
            mail, rcpts = _plain_commands(key)
            if plain is recipients:
                _remember_plain(
                    (
                        recipients,
                        sender,
                        body_type,
                        smtputf8,
                        type(mail_size),
                        mail_size,
                        mail,
                        rcpts,
                    )
                )
            return mail, list(rcpts)
    return _commands(
        sender,
        recipients,
        mail_size,
        body_type,
        smtputf8=smtputf8,
        ret=ret,
        envid=envid,
        notify=notify,
        requiretls=requiretls,
    )


_last_plain: tuple[Any, ...] = ()
"""The last plain envelope looked up, with its commands (one tuple: swapped atomically)."""


def _remember_plain(entry: tuple[Any, ...]) -> None:
    global _last_plain  # noqa: PLW0603  (a one-entry memo, replaced whole)
    _last_plain = entry


@functools.lru_cache(maxsize=1024)
def _plain_commands(key: tuple[Any, ...]) -> tuple[MailFrom, tuple[RcptTo, ...]]:
    """The commands of an envelope of exact ``str`` addresses, without DSN or REQUIRETLS.

    The key holds the size's type, so that ``1`` and ``True`` (equal, with the same
    hash) never share an entry.
    """
    sender, recipients, _, mail_size, body_type, smtputf8 = key
    mail, rcpts = _commands(sender, recipients, mail_size, body_type, smtputf8=smtputf8)
    return mail, tuple(rcpts)


def _commands(
    sender: str,
    recipients: Sequence[str],
    mail_size: int | None,
    body_type: str | None,
    *,
    smtputf8: bool = False,
    ret: str | None = None,
    envid: str | None = None,
    notify: Sequence[str] | None = None,
    requiretls: bool = False,
) -> tuple[MailFrom, list[RcptTo]]:
    reverse = parse_reverse_path(sender)
    needs_utf8 = smtputf8 or (reverse is not None and reverse.needs_smtputf8)
    needs_utf8 = needs_utf8 or any(parse_mailbox(r).needs_smtputf8 for r in recipients)
    key = (sender, type(mail_size), mail_size, body_type, needs_utf8, ret, envid, requiretls)
    mail = _mail_from(key) if _cacheable(key) else _mail_from.__wrapped__(key)
    notify_values = tuple(notify) if notify else None
    if _cacheable(notify_values):
        rcpts = [
            _rcpt_to(r, notify_values) if type(r) is str else _rcpt_to.__wrapped__(r, notify_values)
            for r in recipients
        ]
    else:
        rcpts = [_rcpt_to.__wrapped__(r, notify_values) for r in recipients]
    return mail, rcpts


# Commands are immutable and checked when built, so the same one can serve every message with
# the same envelope: a bulk send checks and renders each address once, not once per message.
# Only exact str/int/tuple values are cached; anything else is built (and refused) afresh.


@functools.lru_cache(maxsize=1024)
def _mail_from(key: tuple[Any, ...]) -> MailFrom:
    sender, _, size, body, smtputf8, ret, envid, requiretls = key
    return MailFrom(
        sender=sender,
        size=size,
        body=body,
        smtputf8=smtputf8,
        ret=ret,
        envid=envid,
        requiretls=requiretls,
    )


@functools.lru_cache(maxsize=4096)
def _rcpt_to(recipient: str, notify: tuple[str, ...] | None) -> RcptTo:
    return RcptTo(recipient=recipient, notify=notify)  # type: ignore[arg-type]


_EXACT = frozenset({str, int, bool, type(None), type})


def _cacheable(values: tuple[object, ...] | None) -> bool:
    return values is None or all(map(_EXACT.__contains__, map(type, values)))
