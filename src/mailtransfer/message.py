"""Messages: building them, and turning them into exact wire bytes plus an envelope.

No I/O happens here (apart from reading attachment files you name by path).
The connections call :func:`prepare` once per message and :func:`downgrade`
once the server's extensions are known; both raise before any byte is sent.

Example:
    >>> from mailtransfer.message import build_message, prepare
    >>> msg = build_message(sender="Alice <alice@example.org>", to="bob@example.net",
    ...                     bcc="audit@example.org", subject="Report", text="See attached.")
    >>> prepared = prepare(msg)
    >>> prepared.envelope.sender, prepared.envelope.recipients
    ('alice@example.org', ('bob@example.net', 'audit@example.org'))
    >>> b"audit@" in prepared.data
    False

Safety (THREATS.md S3, S11): header names and values are checked for CR, LF
and NUL, on the way in and again on the serialised bytes, and a bad one raises
:class:`~mailtransfer.errors.HeaderInjection` (never stripped); addresses are
parsed with the modern ``email`` parser and the strict RFC 5321 grammar (never
``parseaddr``), and an ambiguous address header is refused; ``Bcc`` never
reaches the wire.
"""

from __future__ import annotations

from mailtransfer._message._addresses import AddressLike
from mailtransfer._message._build import POLICY, Attachment, AttachmentLike, build_message
from mailtransfer._message._downgrade import downgrade
from mailtransfer._message._envelope import BodyType, Envelope, Notify, Ret
from mailtransfer._message._prepare import PreparedMessage, prepare
from mailtransfer.errors import HeaderInjection, SMTPUTF8Required

__all__ = [
    "POLICY",
    "AddressLike",
    "Attachment",
    "AttachmentLike",
    "BodyType",
    "Envelope",
    "HeaderInjection",
    "Notify",
    "PreparedMessage",
    "Ret",
    "SMTPUTF8Required",
    "build_message",
    "downgrade",
    "prepare",
]
