"""`ReceivedMessage`: one message an in-process test server accepted."""

from __future__ import annotations

import email.policy
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesParser

__all__ = ["ReceivedMessage"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ReceivedMessage:
    """One message a test server accepted, exactly as it arrived.

    Attributes:
        mail_from: the reverse-path of ``MAIL FROM``; ``""`` for the null sender ``<>``.
        rcpt_tos: the recipients accepted with ``RCPT TO``, in order (for LMTP, only those
            that also got a 2xx reply after the data).
        data: the message bytes after dot-unstuffing (RFC 5321 section 4.5.2), without the
            final ``.`` line; for ``BDAT`` the concatenated chunks.
        mail_options: the ``MAIL FROM`` parameters as sent, e.g. ``("BODY=8BITMIME",)``.
        rcpt_options: the parameters of each ``RCPT TO``, aligned with ``rcpt_tos``.
        peer: the client's ``(host, port)``.
        tls: whether the transaction ran over TLS (STARTTLS or implicit).
        auth_user: the user name the client authenticated as, if it did.
        helo: the name the client gave in ``EHLO``, ``HELO`` or ``LHLO``.
    """

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    mail_options: tuple[str, ...] = ()
    rcpt_options: tuple[tuple[str, ...], ...] = ()
    peer: tuple[str, int]
    tls: bool = False
    auth_user: str | None = None
    helo: str | None = None

    def parsed(self) -> EmailMessage:
        """Parse ``data`` with the modern ``email`` policy.

        Returns:
            The message as an `email.message.EmailMessage`.
        """
        return BytesParser(policy=email.policy.default).parsebytes(self.data)
