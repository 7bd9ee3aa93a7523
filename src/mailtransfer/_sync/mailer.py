"""``Mailer``: the thread-safe, pooled, retrying ``send()`` most applications use."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from types import TracebackType
from typing import TYPE_CHECKING, Any

from typing_extensions import Unpack

from .._bulk import BulkSource, Feed, Outgoing, Progress, pipelines, submission_of
from .._pooling import RelaySet
from .._sending import (
    Submission,
    finish_result,
    is_deferral,
    is_relay_failure,
    note_message_id,
    with_retries,
)
from .._settings import Endpoint, MailerConfig, MailerOptions
from ..errors import MailTransferError, UsageError
from ..message import Envelope
from ..results import SendResult, ServerInfo
from ._outcomes import OutcomeBox
from .connection import SyncConnection
from .pool import ConnectionPool

if TYPE_CHECKING:
    from .direct import DirectTransport

__all__ = ["Mailer", "Outgoing"]


class Mailer:
    """Send mail through one relay (or several, with failover), over a connection pool.

    Thread-safe: share one Mailer across threads. Close it (or use ``with``)
    to QUIT every pooled connection.

    Example:
        >>> with Mailer("smtp://user:secret@mail.example.org:587") as mailer:  # doctest: +SKIP
        ...     result = mailer.send(sender="me@example.org", to=["you@example.org"],
        ...                          subject="Hello", text="Hi there!")
        ...     print(result.message_id, result.queue_id)

    Args:
        url: ``smtp://user:pass@host:587`` (STARTTLS), ``smtps://...:465``
            (implicit TLS) or ``lmtp://...``, with query options (see
            :func:`mailtransfer.parse_url`); or a list of such URLs for failover
            and round-robin across relays.
        **options: any of :class:`~mailtransfer.MailerOptions` (the server when
            no URL is given, credentials, TLS policy, timeouts, pool limits,
            retries, DKIM signers, rate limit, ...); keywords win over the URL.
    """

    def __init__(
        self, url: str | Sequence[str] | None = None, **options: Unpack[MailerOptions]
    ) -> None:
        self.config = MailerConfig.resolve(url, **options)
        self._direct: DirectTransport | None = None
        if self.config.direct:
            # Imported here: direct delivery pulls in dnspython and cryptography.
            from .direct import DirectTransport  # noqa: PLC0415

            self._direct = DirectTransport.from_config(self.config)
        self._relays = RelaySet(self.config.endpoints, self.config.cooldown)
        self._relays_lock = threading.Lock()
        self._pools = {
            endpoint: ConnectionPool(
                self._factory(endpoint),
                self.config.limits,
                rate_limit=self.config.rate_limit,
                limiter=self.config.limiter,
            )
            for endpoint in self.config.endpoints
        }
        self._closed = False

    @classmethod
    def from_env(
        cls, variable: str = "MAILTRANSFER_URL", **options: Unpack[MailerOptions]
    ) -> Mailer:
        """A mailer configured by the URL in the environment variable ``variable``.

        Raises:
            UsageError: the variable is not set.
        """
        url = os.environ.get(variable)
        if not url:
            raise UsageError(f"set {variable} to a mailer URL, e.g. smtp://user:pass@host:587")
        return cls(url, **options)

    @property
    def pools(self) -> Mapping[Endpoint, ConnectionPool]:
        """Each relay's connection pool (read their ``stats`` for monitoring)."""
        return dict(self._pools)

    def _factory(self, endpoint: Endpoint) -> Callable[[], SyncConnection]:
        arguments = self.config.connection_arguments(endpoint)
        return lambda: SyncConnection(**arguments)

    # -- sending --------------------------------------------------------------------------

    def send(
        self,
        message: EmailMessage | bytes | None = None,
        /,
        *,
        envelope: Envelope | None = None,
        recipients: Sequence[str] | None = None,
        strict: bool | None = None,
        **build: Any,
    ) -> SendResult:
        """Send one message and return what the server did with it.

        Give an ``EmailMessage``; or bytes with ``envelope=`` (or ``sender=``
        and ``recipients=``); or the keyword arguments that build a message:
        ``sender``, ``to``, ``cc``, ``bcc``, ``reply_to``, ``subject``, ``text``,
        ``html``, ``attachments``, ``inline``, ``headers``.

        Returns:
            The result: Message-ID, accepted and refused recipients, the final
            reply and the queue id.

        Raises:
            UsageError: bad input (header injection, invalid address...), before any I/O.
            RecipientsRefused: every recipient was refused.
            PartialDelivery: with ``strict``, some recipient was refused.
            DeliveryUnknown: the connection failed after the message was sent;
                never retried (it may have been delivered).
            ReplyError: the server refused the message, after retries ran out.
            ConnectError: no relay could be reached, after retries ran out.
            Timeout: a server stopped answering, after retries ran out.
            TLSError: TLS could not be negotiated as the policy requires.
        """
        submission = Submission.create(
            message,
            envelope=envelope,
            recipients=recipients,
            signers=self.config.signers,
            build=build,
        )
        return self._deliver(submission, self.config.strict if strict is None else strict)

    def _deliver(
        self,
        submission: Submission,
        strict: bool,
        *,
        failed: MailTransferError | None = None,
        started: float | None = None,
    ) -> SendResult:
        """Send a prepared message with failover and retries (after ``failed``, if given)."""
        if self._direct is not None:  # transport="direct": the recipients' MX hosts
            return self._direct.deliver(submission, strict=strict)
        try:
            return with_retries(
                self.config.retry,
                lambda: self._attempt(submission, strict),
                failed=failed,
                started=started,
            )
        except MailTransferError as exc:
            note_message_id(exc, submission)
            raise

    def _attempt(self, submission: Submission, strict: bool) -> SendResult:
        if self._closed:
            raise UsageError("the mailer is closed")
        with self._relays_lock:
            relays = self._relays.order(time.monotonic())
        for index, endpoint in enumerate(relays):
            pool = self._pools[endpoint]
            try:
                with pool.connection() as conn:
                    arguments = submission.send_arguments(conn.extensions)
                    result = conn.send(use_bdat=self.config.use_bdat, **arguments)
                return finish_result(result, submission, host=str(endpoint), strict=strict)
            except MailTransferError as exc:
                if is_deferral(exc) and self.config.deferral > 0:
                    pool.defer(self.config.deferral)
                if is_relay_failure(exc) and index + 1 < len(relays):
                    with self._relays_lock:
                        self._relays.cool(endpoint, time.monotonic())
                    continue
                raise
        raise AssertionError("unreachable: the last relay's error is raised")  # pragma: no cover

    def send_many(
        self,
        messages: Iterable[Outgoing],
        *,
        concurrency: int | None = None,
        progress: Progress | None = None,
    ) -> list[SendResult | MailTransferError]:
        """Send many messages concurrently over the pool; results come back in input order.

        Nothing is lost: each item's entry is its :class:`SendResult`, or the
        typed error that stopped it (never raised, so one bad message cannot
        hide the others).

        Args:
            messages: ``EmailMessage`` objects, or mappings of ``send()`` keyword
                arguments (``{"sender": ..., "to": ..., "subject": ...}``, or
                ``{"message": b"...", "envelope": ...}``).
            concurrency: how many at once (default: the pool's ``max_connections``).
            progress: called as ``progress(done, total)`` after each message.
        """
        items = list(messages)
        results: list[SendResult | MailTransferError | None] = [None] * len(items)
        for index, outcome in self.send_iter(items, concurrency=concurrency, progress=progress):
            results[index] = outcome
        return results  # type: ignore[return-value]

    def send_iter(
        self,
        messages: Iterable[Outgoing],
        *,
        concurrency: int | None = None,
        progress: Progress | None = None,
    ) -> Generator[tuple[int, SendResult | MailTransferError], None, None]:
        """Like :meth:`send_many`, but yield ``(index, result or error)`` as each completes.

        Stopping early (closing the iterator, or an exception from ``progress``)
        cancels the messages not yet started; those already being sent finish
        before this returns, so no connection is left in use.
        """
        items = list(messages)
        if concurrency is not None and concurrency < 1:
            raise UsageError(f"concurrency must be at least 1, got {concurrency!r}")
        default = self.config.limits.max_connections * max(len(self._pools), 1)
        workers = min(concurrency or default, max(len(items), 1))
        if workers == 1:
            # One at a time: send from this thread, each message once the consumer asked
            # for the next; a worker thread would run ahead of the consumer.
            for done, (index, item) in enumerate(enumerate(items), start=1):
                try:
                    outcome: Any = self._send_item(item)
                except MailTransferError as exc:
                    outcome = exc
                if progress is not None:
                    progress(done, len(items))
                yield index, outcome
            return
        # Each worker thread pulls the next item from one shared iterator and leaves its
        # outcome in a box that this thread empties a batch at a time: O(1) per message
        # (waiting on a set of N futures is O(N)), and no thread switch per message.
        feed = Feed(items, threading.Lock())
        outcomes: OutcomeBox[tuple[int, Any]] = OutcomeBox()

        def deliver(step: tuple[int, Any]) -> None:
            outcomes.put(step, urgent=not isinstance(step[1], (SendResult, MailTransferError)))

        def worker() -> None:
            try:
                while self._send_batch(feed, deliver):
                    pass
            except BaseException as exc:  # a bug: hand it to the consumer
                outcomes.put((-1, exc), urgent=True)

        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mailtransfer")
        try:
            for _ in range(workers):
                pool.submit(worker)
            done = 0
            while done < len(items):
                # A batch per wake-up (see OutcomeBox): up to one outcome per worker.
                for index, outcome in outcomes.take(min(workers, len(items) - done)):
                    if not isinstance(outcome, (SendResult, MailTransferError)):
                        raise outcome
                    done += 1
                    if progress is not None:
                        progress(done, len(items))
                    yield index, outcome
        finally:
            feed.stopping = True  # messages not yet started are not sent
            pool.shutdown(wait=True)

    def _send_item(self, item: Outgoing) -> SendResult:
        submission, strict = submission_of(item, self.config.signers)
        return self._deliver(submission, self.config.strict if strict is None else strict)

    def _send_batch(
        self,
        feed: Feed,
        deliver: Callable[[tuple[int, Any]], None],
    ) -> bool:
        """Send items of the feed over one leased connection; False once the feed is done.

        The messages are pipelined (``_bulk.py``) when the pool allows; else, and when
        no connection can be had, one item goes by the ordinary ``send()`` path.
        """
        if self._closed:
            raise UsageError("the mailer is closed")
        step = feed.take()  # before leasing: no connection is opened for nothing
        if step is None:
            return False
        pool = None
        if self._direct is None:
            with self._relays_lock:
                endpoint = self._relays.order(time.monotonic())[0]
            pool = self._pools[endpoint]
        if pool is not None and pipelines(pool):
            lease = pool.connection()
            try:
                with feed.waiting_for_lease():
                    conn = lease.__enter__()
            except MailTransferError:
                pass  # no connection: this item goes the ordinary way (failover, retries)
            else:
                source = BulkSource(
                    self.config,
                    conn,
                    pool,
                    host=str(endpoint),
                    first=step,
                    feed=feed,
                    deliver=deliver,
                )
                try:
                    with contextlib.suppress(MailTransferError):  # reported to its message
                        conn._send_jobs(source, cross=self.config.pipeline_messages)
                except BaseException as exc:
                    lease.__exit__(type(exc), exc, exc.__traceback__)
                    raise
                lease.__exit__(None, None, None)
                for failure in source.failed:
                    try:
                        outcome: Any = self._deliver(
                            failure.submission,
                            failure.strict,
                            failed=failure.error,
                            started=failure.started,
                        )
                    except MailTransferError as exc:
                        outcome = exc
                    deliver((failure.index, outcome))
                return not source.exhausted
        # The item the ordinary way: with failover and retries when no connection opened.
        index, item = step
        try:
            outcome = self._send_item(item)
        except Exception as exc:  # a typed error is its outcome; bad input, the consumer raises
            outcome = exc
        deliver((index, outcome))
        return True

    def verify(self) -> ServerInfo:
        """Connect, negotiate TLS and log in, and report what the server offers; sends no mail.

        Raises:
            ConnectError, Timeout, TLSError, ReplyError: what went wrong, typed.
        """
        if self._direct is not None:
            raise UsageError("verify() checks a relay; a direct mailer has none")
        with self._relays_lock:
            endpoint = self._relays.order(time.monotonic())[0]
        conn = self._factory(endpoint)()
        try:
            extensions = conn.open()
            return ServerInfo(
                host=str(endpoint),
                extensions=extensions,
                tls_version=conn.tls_info.version if conn.tls_info else None,
                authenticated=endpoint.credentials is not None,
            )
        finally:
            conn.quit()

    # -- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        """QUIT and close every pooled connection. The mailer cannot send afterwards."""
        self._closed = True
        for pool in self._pools.values():
            pool.close()

    def __enter__(self) -> Mailer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        pools = ", ".join(f"{endpoint}: {pool!r}" for endpoint, pool in self._pools.items())
        return f"<Mailer [{'closed' if self._closed else 'open'} | {pools}]>"
