"""What a delivery attempt returns: accepted and refused recipients, final reply, queue id."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from .errors import ReplyError
from .protocol import Extensions, Reply

__all__ = ["SendResult", "ServerInfo", "make_result", "parse_queue_id"]

# How common MTAs name the queued message in their reply to end-of-data, tried in this
# order. (Sendmail says "Message accepted for delivery" after its id, which the patterns
# cannot tell from other words: no id is taken from it.)
_QUEUE_ID_PATTERNS = (
    re.compile(r"queued as ([A-Za-z0-9][\w.@-]{2,})"),  # Postfix, aiosmtpd-style
    re.compile(r"\bid=([A-Za-z0-9][\w.@-]{2,})"),  # Exim
    re.compile(r"\bOK\s+(?:\d+\s+)?([A-Za-z0-9][\w.-]{5,})\s+-\s+gsmtp"),  # Gmail
    re.compile(r"<([^<>\s]{4,})>\s+(?:Queued|accepted)", re.IGNORECASE),  # Microsoft, others
)


def parse_queue_id(reply: Reply) -> str | None:
    """Find the server's queue id in a reply to end-of-data, if it gives one.

    Example:
        >>> parse_queue_id(Reply(250, ("2.0.0 Ok: queued as 4XyZ12",)))
        '4XyZ12'
    """
    text = reply.text
    # Each pattern needs one of these words; most replies without an id have none of them.
    if "id=" not in text and "gsmtp" not in text:
        lowered = text.lower()
        if "queued" not in lowered and "accepted" not in lowered:
            return None
    for pattern in _QUEUE_ID_PATTERNS:
        match = pattern.search(text)
        if match:
            return match.group(1)
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class SendResult:
    """The outcome of one message handed to one server.

    Attributes:
        accepted: each recipient the server accepted, with its reply (for LMTP,
            the per-recipient reply after the data).
        refused: each recipient the server refused, with its typed error
            (``error.reply`` holds the server's words).
        reply: the server's reply to the end of the message data.
        queue_id: the server's id for the queued message, when its reply names one.
        message_id: the ``Message-ID`` of the message, when known.
        host: the server that accepted the message: the relay as
            ``scheme://host:port`` (``smtp://mx.example.org:587``; never credentials),
            or, with ``transport="direct"``, the MX host's name.
    """

    accepted: Mapping[str, Reply]
    refused: Mapping[str, ReplyError] = field(default_factory=dict)
    reply: Reply
    queue_id: str | None = None
    message_id: str | None = None
    host: str | None = None

    @property
    def partial(self) -> bool:
        """True when some recipients were refused while others got the message."""
        return bool(self.refused) and bool(self.accepted)

    def __repr__(self) -> str:
        return (
            f"<SendResult accepted={len(self.accepted)} refused={len(self.refused)} "
            f"reply={self.reply.code} queue_id={self.queue_id!r}>"
        )


# Every message sent makes a SendResult: filling the slots directly skips the frozen
# dataclass's __init__ (an object.__setattr__ call per field), most of its cost.
_NEW = object.__new__
_SETTERS = tuple(
    vars(SendResult)[name].__set__
    for name in ("accepted", "refused", "reply", "queue_id", "message_id", "host")
)


def make_result(
    accepted: Mapping[str, Reply],
    refused: Mapping[str, ReplyError],
    reply: Reply,
    queue_id: str | None,
    *,
    message_id: str | None = None,
    host: str | None = None,
) -> SendResult:
    """``SendResult(accepted=..., refused=..., ...)``, built faster; the same value."""
    result: SendResult = _NEW(SendResult)
    set_accepted, set_refused, set_reply, set_queue_id, set_message_id, set_host = _SETTERS
    set_accepted(result, accepted)
    set_refused(result, refused)
    set_reply(result, reply)
    set_queue_id(result, queue_id)
    set_message_id(result, message_id)
    set_host(result, host)
    return result


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerInfo:
    """What ``verify()`` learnt about a server without sending mail.

    Attributes:
        host: the server, as ``scheme://host:port``.
        extensions: what it offers after TLS (SIZE, PIPELINING, AUTH mechanisms...).
        tls_version: the TLS version in use, or None for plaintext.
        authenticated: whether the login succeeded (False when no credentials were given).
    """

    host: str
    extensions: Extensions
    tls_version: str | None
    authenticated: bool
