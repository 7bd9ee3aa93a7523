"""The deliverability toolkit's own error: a DNS record that breaks its grammar."""

from __future__ import annotations

from ..errors import MailTransferError

__all__ = ["InvalidRecord", "WarmupLimitReached"]


class InvalidRecord(MailTransferError, ValueError):
    """A published record (SPF, DKIM, DMARC, TLS-RPT, MTA-STS, BIMI) breaks its grammar.

    The message names the record type, what is wrong and where; it quotes at
    most the offending term, never a whole record.
    """


class WarmupLimitReached(MailTransferError):
    """A warm-up schedule's daily or hourly quota is used up; nothing was sent.

    Raised by :class:`~mailtransfer.deliverability.WarmupLimiter` through the
    mailer before a connection is used, so the message is neither sent nor
    lost: queue it again after :attr:`retry_after` seconds.

    Attributes:
        retry_after: seconds until the next slot opens.
    """

    transient = True

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after
