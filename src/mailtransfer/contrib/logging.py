"""``SMTPHandler``: mail log records without ever blocking the thread that logs.

Strategy: ``emit()`` formats the record and puts it on a bounded queue, nothing more. One
daemon thread takes records off the queue and sends each as a mail through a
:class:`~mailtransfer.Mailer` (its pool keeps the session open between mails). A token
bucket caps the mail rate: a record that arrives with no token left is *suppressed*, and
counted; a record that finds the queue full is *dropped*, and counted. Neither is ever
silent: the next mail says how many were suppressed (with the first few of them) and how
many were dropped, and when records were suppressed a digest mail follows as soon as a
token is free. ``close()`` (called by ``logging.shutdown()`` at exit) sends what is queued,
then a last digest whatever the rate, and stops the thread.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import queue
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .._sync.mailer import Mailer
from ..auth import Password
from ..config import Timeouts
from ..errors import UsageError
from ..tls import Opportunistic, StartTLS, create_ssl_context

__all__ = ["HandlerStats", "SMTPHandler", "TokenBucket"]

_STOP = object()


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; not thread-safe.

    Example:
        >>> bucket = TokenBucket(rate=1.0, burst=2, clock=lambda: 0.0)
        >>> bucket.take(), bucket.take(), bucket.take()
        (True, True, False)

    Args:
        rate: tokens added per second (0: never refilled).
        burst: the most tokens held, and the number held at the start.
        clock: a monotonic clock in seconds.

    Raises:
        ValueError: a negative rate or a burst below 1.
    """

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate < 0 or burst < 1:
            raise ValueError(f"need rate >= 0 and burst >= 1, got rate={rate!r} burst={burst!r}")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._stamp = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def take(self) -> bool:
        """Take a token if one is there; True when it was."""
        self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def wait_time(self) -> float | None:
        """Seconds until the next token (0 when one is there; None when it never comes)."""
        self._refill()
        if self._tokens >= 1.0:
            return 0.0
        if self.rate == 0:
            return None
        return (1.0 - self._tokens) / self.rate


@dataclass(slots=True)
class HandlerStats:
    """What an :class:`SMTPHandler` did with the records it was given.

    Attributes:
        mails_sent: mails the server accepted.
        records_sent: records mailed in full.
        suppressed: records held back by the rate limit (reported in a digest).
        dropped: records lost because the queue was full (reported in the next mail).
        failed: mails that could not be sent (each reported through ``handleError``).
    """

    mails_sent: int = 0
    records_sent: int = 0
    suppressed: int = 0
    dropped: int = 0
    failed: int = 0


class SMTPHandler(logging.Handler):
    """A logging handler that mails records from a background thread, rate-limited.

    The constructor takes the arguments of ``logging.handlers.SMTPHandler``; ``mailhost``
    may also be a mailer URL or a :class:`~mailtransfer.Mailer` (a mailer passed in is
    shared, and not closed by this handler).

    Example:
        >>> handler = SMTPHandler(  # doctest: +SKIP
        ...     "smtp://alerts:secret@mail.example.org:587",
        ...     "app@example.org", ["oncall@example.org"], "App error",
        ...     rate=1 / 60, burst=5)
        >>> logging.getLogger().addHandler(handler)  # doctest: +SKIP

    Args:
        mailhost: a host name, ``(host, port)``, a mailer URL, or a ``Mailer``.
        fromaddr: the sender address.
        toaddrs: a recipient address or a list of them.
        subject: the subject (see :meth:`getSubject`).
        credentials: ``(username, password)`` for a host name.
        secure: as in the stdlib: ``None`` uses STARTTLS when offered; ``()``,
            ``(keyfile,)`` or ``(keyfile, certfile)`` require it (with a client certificate).
        timeout: seconds for each phase of a session, for a host name.
        capacity: how many records may wait to be sent; more are dropped and counted.
        rate: mails per second allowed on average (0: only ``burst``, then digests at close).
        burst: mails allowed at once before the rate applies.
        digest_size: how many suppressed records a digest lists (one line each).
        shutdown_timeout: how long ``close()`` waits for the queue to drain.
        level: the handler's level.

    Raises:
        ValueError: a bad capacity, rate or burst.
        UsageError: a bad mailer configuration.
    """

    def __init__(  # noqa: PLR0917  (logging.handlers.SMTPHandler's positional shape)
        self,
        mailhost: str | tuple[str, int] | Mailer,
        fromaddr: str,
        toaddrs: str | Sequence[str],
        subject: str,
        credentials: tuple[str, str] | None = None,
        secure: tuple[()] | tuple[str] | tuple[str, str] | None = None,
        timeout: float = 5.0,
        *,
        capacity: int = 1000,
        rate: float = 1.0 / 60.0,
        burst: int = 10,
        digest_size: int = 10,
        shutdown_timeout: float = 30.0,
        level: int = logging.NOTSET,
    ) -> None:
        super().__init__(level)
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity!r}")
        self.fromaddr = fromaddr
        self.toaddrs = [toaddrs] if isinstance(toaddrs, str) else list(toaddrs)
        self.subject = subject
        self.digest_size = digest_size
        self.shutdown_timeout = shutdown_timeout
        self._owns_mailer = not isinstance(mailhost, Mailer)
        self.mailer = (
            mailhost
            if isinstance(mailhost, Mailer)
            else _mailer_for(mailhost, credentials, secure, timeout)
        )
        self.stats = HandlerStats()
        self._bucket = TokenBucket(rate, burst)
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=capacity)
        self._counts_lock = threading.Lock()
        self._dropped_unreported = 0
        self._suppressed: list[str] = []
        self._suppressed_count = 0
        self._closed = False
        self._thread = threading.Thread(
            target=self._run, name="mailtransfer-SMTPHandler", daemon=True
        )
        self._thread.start()
        # logging.shutdown() closes handlers at exit too; this covers a handler that was
        # never added to a logger. A weak reference lets an unused handler be collected.
        atexit.register(_close_at_exit, weakref.ref(self))

    # -- the logging side (never blocks) ----------------------------------------------

    def emit(self, record: logging.LogRecord) -> None:
        """Format the record and queue it; when the queue is full, count it as dropped."""
        try:
            text = self.format(record)
        except Exception:  # logging's contract: report, never raise
            self.handleError(record)
            return
        if self._closed:
            self._count_dropped()
            return
        try:
            self._queue.put_nowait((record, text))
        except queue.Full:
            self._count_dropped()

    def _count_dropped(self) -> None:
        with self._counts_lock:
            self._dropped_unreported += 1
            self.stats.dropped += 1

    def getSubject(self, record: logging.LogRecord) -> str:  # the stdlib handler's name
        """The subject of the mail for ``record``; override to vary it.

        Args:
            record: the record being mailed.
        """
        return self.subject

    def flush(self) -> None:
        """Wait until every queued record has been handled (sent, suppressed or failed)."""
        if self._thread.is_alive():
            self._queue.join()

    def close(self) -> None:
        """Send what is queued and a last digest, stop the thread, close an owned mailer."""
        if self._closed:
            return
        self._closed = True
        # If the thread is stuck the queue stays full; join() below gives up in time.
        with contextlib.suppress(queue.Full):
            self._queue.put(_STOP, timeout=self.shutdown_timeout)
        self._thread.join(self.shutdown_timeout)
        if self._owns_mailer:
            self.mailer.close()
        super().close()

    def __repr__(self) -> str:
        s = self.stats
        return (
            f"<SMTPHandler {logging.getLevelName(self.level)} [queued: {self._queue.qsize()} |"
            f" sent: {s.mails_sent} suppressed: {s.suppressed} dropped: {s.dropped}"
            f" failed: {s.failed}]>"
        )

    # -- the sending thread -----------------------------------------------------------

    def _run(self) -> None:
        while True:
            timeout = self._bucket.wait_time() if self._suppressed_count else None
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                self._send_digest()  # a token is free again: report what was held back
                continue
            try:
                if item is _STOP:
                    self._send_digest(final=True)
                    return
                record, text = item
                if self._bucket.take():
                    self._send(self.getSubject(record), text, record)
                else:
                    self._suppressed_count += 1
                    self.stats.suppressed += 1
                    if len(self._suppressed) < self.digest_size:
                        first_line = record.getMessage().partition("\n")[0]
                        self._suppressed.append(
                            f"{record.levelname} {record.name}: {first_line[:200]}"
                        )
            finally:
                self._queue.task_done()

    def _notes(self) -> str:
        with self._counts_lock:
            dropped, self._dropped_unreported = self._dropped_unreported, 0
        lines: list[str] = []
        if self._suppressed_count:
            lines.append(
                f"{self._suppressed_count} record(s) suppressed by the rate limit"
                + (":" if self._suppressed else ".")
            )
            lines.extend(f"  {line}" for line in self._suppressed)
            if self._suppressed_count > len(self._suppressed):
                lines.append(f"  ... and {self._suppressed_count - len(self._suppressed)} more")
            self._suppressed_count = 0
            self._suppressed.clear()
        if dropped:
            lines.append(f"{dropped} record(s) dropped: the queue of this handler was full.")
        return "\n".join(lines)

    def _send_digest(self, *, final: bool = False) -> None:
        with self._counts_lock:
            dropped = self._dropped_unreported
        if not (self._suppressed_count or dropped):
            return
        if not final and not self._bucket.take():
            return
        count = self._suppressed_count + dropped
        self._send(f"{self.subject} ({count} records not sent)", "", None)

    def _send(self, subject: str, text: str, record: logging.LogRecord | None) -> None:
        notes = self._notes()
        body = "\n\n".join(part for part in (text, notes) if part) + "\n"
        try:
            self.mailer.send(sender=self.fromaddr, to=self.toaddrs, subject=subject, text=body)
        except Exception:  # any failure, typed or not, must not kill the sending thread
            self.stats.failed += 1
            self.handleError(record or logging.makeLogRecord({"msg": subject}))
            return
        self.stats.mails_sent += 1
        if record is not None:
            self.stats.records_sent += 1


def _close_at_exit(ref: weakref.ReferenceType[SMTPHandler]) -> None:
    handler = ref()
    if handler is not None:
        handler.close()


def _mailer_for(
    mailhost: str | tuple[str, int],
    credentials: tuple[str, str] | None,
    secure: tuple[()] | tuple[str] | tuple[str, str] | None,
    timeout: float,
) -> Mailer:
    if isinstance(mailhost, str) and "://" in mailhost:
        if credentials is not None or secure is not None:
            raise UsageError(
                "with a mailer URL, put the login and TLS in the URL, not credentials=/secure="
            )
        return Mailer(mailhost)
    host, port = (mailhost, 25) if isinstance(mailhost, str) else mailhost
    context = None
    if secure:
        keyfile = secure[0]
        certfile = secure[1] if len(secure) > 1 else None
        context = create_ssl_context(certfile=certfile or keyfile, keyfile=keyfile)
    return Mailer(
        host=host,
        port=port,
        tls=Opportunistic() if secure is None else StartTLS(context=context),
        credentials=Password(*credentials) if credentials else None,
        timeouts=Timeouts.all(timeout),
    )
