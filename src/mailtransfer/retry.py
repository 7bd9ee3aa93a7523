"""When to try again, and how long to wait: the retry policy and the no-duplicate rule.

Strategy: :func:`is_retryable` is the one decision. A failure is retried only
when the message cannot have been accepted yet: connection, timeout and
protocol failures (which the transaction flow raises only *before* the end of
the data), and 4xx replies. :class:`~mailtransfer.errors.DeliveryUnknown` (the
connection failed after the end of the data) is never retried, whatever the
policy says: that is how retries never duplicate a message.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from typing import Any

import tenacity

from . import _telemetry
from .errors import (
    ConnectError,
    DeliveryUnknown,
    MailTransferError,
    RecipientsRefused,
    RemoteProtocolError,
    ReplyError,
    Stage,
    Timeout,
)

__all__ = ["RetryPolicy", "is_retryable"]

logger = logging.getLogger("mailtransfer.retry")


def is_retryable(exc: BaseException) -> bool:
    """Whether sending the same message again, on a fresh connection, is safe and may help.

    Example:
        >>> from mailtransfer.errors import DeliveryUnknown, ServerDisconnected, Stage
        >>> is_retryable(ServerDisconnected("lost", stage=Stage.RCPT))
        True
        >>> is_retryable(DeliveryUnknown("lost after the final dot"))
        False
    """
    if isinstance(exc, DeliveryUnknown) or not isinstance(exc, MailTransferError):
        return False
    if isinstance(exc, ReplyError):
        return exc.retryable
    if isinstance(exc, RecipientsRefused):
        return exc.transient  # nobody got the message, not even with LMTP
    if exc.stage is Stage.END_OF_DATA:
        # Belt and braces for the no-duplicate rule: a failure other than a reply
        # while waiting for the answer to the end of data leaves the delivery unknown,
        # whatever type it arrived as (the transaction flow raises DeliveryUnknown).
        return False
    if isinstance(exc, RemoteProtocolError):
        return True  # a confused session; a fresh one may be fine
    return isinstance(exc, (ConnectError, Timeout)) and exc.transient


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How transient failures are retried: exponential backoff with jitter, bounded twice.

    Example:
        >>> RetryPolicy(attempts=5, max_time=120).attempts
        5

    Attributes:
        attempts: the most attempts in all (1 disables retries).
        max_time: no new attempt starts after this many seconds since the first.
        initial_backoff: the first wait, in seconds; it doubles each time.
        max_backoff: the longest single wait.
        jitter: up to this many seconds added at random to each wait.
    """

    attempts: int = 3
    max_time: float = 60.0
    initial_backoff: float = 0.5
    max_backoff: float = 30.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"RetryPolicy.attempts must be at least 1, got {self.attempts!r}")
        for name in ("max_time", "initial_backoff", "max_backoff", "jitter"):
            if getattr(self, name) < 0:
                raise ValueError(f"RetryPolicy.{name} must not be negative")

    @classmethod
    def none(cls) -> RetryPolicy:
        """No retries: every failure is reported at once."""
        return cls(attempts=1)

    def backoff(self, state: tenacity.RetryCallState) -> float:
        """Seconds to wait before the next attempt: ``initial * 2**(n-1) + jitter``, capped.

        Computed here rather than with tenacity's ``wait_exponential_jitter``,
        whose arguments changed between the tenacity versions we support.

        Args:
            state: tenacity's record of the attempts so far.
        """
        exponent = min(state.attempt_number - 1, 64)  # 2**64 seconds is forever already
        wait = self.initial_backoff * 2.0**exponent + random.uniform(0.0, self.jitter)
        return min(wait, self.max_backoff)

    def _arguments(self) -> dict[str, Any]:
        return {
            "stop": tenacity.stop_after_attempt(self.attempts)
            | tenacity.stop_after_delay(self.max_time),
            "wait": self.backoff,
            "retry": tenacity.retry_if_exception(is_retryable),
            "reraise": True,
            "before_sleep": _log_retry,
        }

    def retrying(self) -> tenacity.Retrying:
        """A tenacity ``Retrying`` for the sync mailer."""
        return tenacity.Retrying(**self._arguments())

    def async_retrying(self) -> tenacity.AsyncRetrying:
        """A tenacity ``AsyncRetrying`` for the asyncio mailer."""
        return tenacity.AsyncRetrying(**self._arguments())


def _log_retry(state: tenacity.RetryCallState) -> None:
    outcome = state.outcome
    exc = outcome.exception() if outcome is not None else None
    wait = state.next_action.sleep if state.next_action is not None else 0.0
    if _telemetry.active is not None:
        _telemetry.active.note_retry(exc)
    logger.info(
        "attempt %d failed (%s: %s); retrying in %.2fs",
        state.attempt_number,
        type(exc).__name__,
        exc,
        wait,
    )
