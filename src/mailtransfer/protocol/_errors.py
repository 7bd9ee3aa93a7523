"""The root of the exception tree, and the errors the sans-I/O core raises.

They live at the bottom layer so that :mod:`mailtransfer.protocol` needs
nothing but the standard library; :mod:`mailtransfer.errors` re-exports them
next to the rest of the tree.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._reply import Reply

__all__ = [
    "ExtensionNotSupported",
    "InvalidAddress",
    "InvalidArgument",
    "LocalProtocolError",
    "MailTransferError",
    "MessageTooLarge",
    "ProtocolError",
    "RemoteProtocolError",
    "SMTPUTF8Required",
    "Stage",
    "UsageError",
]


class Stage(str, enum.Enum):
    """The point of an SMTP session at which something happened."""

    CONNECT = "connect"
    GREETING = "greeting"
    EHLO = "ehlo"
    HELO = "helo"
    STARTTLS = "starttls"
    TLS_HANDSHAKE = "tls-handshake"
    AUTH = "auth"
    MAIL = "mail"
    RCPT = "rcpt"
    DATA = "data"
    """The ``DATA`` command itself, before the 354 go-ahead."""
    DATA_BODY = "data-body"
    """Sending the message body, before the end-of-data mark is complete."""
    END_OF_DATA = "end-of-data"
    """Waiting for the reply to the final ``.`` or last ``BDAT``: the message may be queued."""
    BDAT = "bdat"
    RSET = "rset"
    NOOP = "noop"
    VRFY = "vrfy"
    QUIT = "quit"
    OTHER = "other"


class MailTransferError(Exception):
    """Base class of every error mailtransfer raises.

    Attributes:
        reply: the server reply that caused the error, when there is one.
        command: the command (redacted: never a credential) that got the reply.
        stage: where in the session the error happened.
        transcript: the redacted transcript of the session up to the error,
            attached by the connection drivers; safe to paste in a bug report.
    """

    transient: bool = False
    """Whether trying again later may succeed. Retry logic reads this flag."""

    def __init__(
        self,
        message: str,
        *,
        reply: Reply | None = None,
        command: str | None = None,
        stage: Stage | None = None,
        transcript: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reply = reply
        self.command = command
        self.stage = stage
        self.transcript = transcript

    def __str__(self) -> str:
        return self.message

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def __reduce__(self) -> tuple[Any, ...]:
        # Errors cross process boundaries in task queues (Celery, RQ): keep every attribute.
        return (_rebuild, (type(self), self.message, dict(self.__dict__)))


def _rebuild(cls: type[MailTransferError], message: str, state: dict[str, Any]) -> Any:
    obj = cls.__new__(cls)
    Exception.__init__(obj, message)
    obj.__dict__.update(state)
    return obj


class UsageError(MailTransferError, ValueError):
    """The caller asked for something invalid; raised before any byte is sent."""


class InvalidArgument(UsageError):
    """A command argument is malformed: CR, LF, NUL or another control character, or bad syntax."""


class InvalidAddress(InvalidArgument):
    """An address is not a valid RFC 5321 (or RFC 6531) mailbox."""


class ProtocolError(MailTransferError):
    """The SMTP conversation broke its rules. The connection cannot be reused."""


class LocalProtocolError(ProtocolError):
    """This client tried something the protocol does not allow in the current state."""


class RemoteProtocolError(ProtocolError):
    """The server broke the protocol: a malformed, oversized or unexpected reply."""


class ExtensionNotSupported(UsageError):
    """The message or option needs an SMTP extension that the server does not offer.

    Raised before the command is written, e.g. ``REQUIRETLS`` asked for but not
    advertised, ``BINARYMIME`` without ``CHUNKING``, or ``DSN`` parameters without ``DSN``.
    """


class SMTPUTF8Required(ExtensionNotSupported):
    """An address needs SMTPUTF8 (RFC 6531) and the server does not offer it.

    A non-ASCII domain can be sent in IDNA form instead; a non-ASCII local part cannot.
    """


class MessageTooLarge(UsageError):
    """The message is larger than the limit the server advertised with ``SIZE`` (RFC 1870).

    Raised before ``DATA``, so nothing of the message is sent.
    """
