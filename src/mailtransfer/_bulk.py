"""What ``send_many``'s workers share: feeding one leased connection's pipelined run.

Strategy: a worker leases a connection and runs the pipeline flow
(``_flows/pipeline.py``) over it, so each message's envelope shares a write
with the end of the one before. :class:`BulkSource` hands that flow one
message at a time, prepared and adapted to the server, and passes each
outcome on as soon as it is known. A failure worth retrying, and any message
the flow gives back unsent, is kept in :attr:`BulkSource.failed`: the mailer
sends those by its ordinary ``send()`` path (failover, tenacity) once the
connection is back in the pool. Nothing taken from the feed is dropped.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from . import _telemetry
from ._flows.pipeline import Job
from ._flows.session import SessionBase
from ._sending import (
    Submission,
    check_strict,
    envelope_options,
    is_deferral,
    note_message_id,
)
from ._settings import MailerConfig
from .errors import MailTransferError
from .results import SendResult
from .retry import is_retryable

__all__ = ["BulkSource", "Failed", "Feed", "Outgoing", "Progress", "pipelines", "submission_of"]

Outgoing = EmailMessage | Mapping[str, Any]
"""An item for ``send_many``: a message, or a mapping of ``send()`` keyword arguments."""
Progress = Callable[[int, int], None]
"""``progress(done, total)``, called after each message of ``send_many``."""

Outcome = SendResult | MailTransferError


class Feed:
    """The items of one ``send_many``, shared by its workers.

    ``lock``: a ``threading.Lock`` when the workers are threads (none for tasks).

    It also counts the workers waiting for a connection, so that a worker holding
    one hands it over only to somebody else's waiting caller (its own siblings
    would only send the same items).
    """

    def __init__(
        self, items: Sequence[Outgoing], lock: contextlib.AbstractContextManager[Any] | None = None
    ) -> None:
        self._items: Iterator[tuple[int, Outgoing]] = iter(enumerate(items))
        self._lock = lock
        self.stopping = False
        """Set by the consumer: take nothing more."""
        self.leasing = 0
        """How many of this feed's workers wait for a connection."""

    def take(self) -> tuple[int, Outgoing] | None:
        """The next ``(index, item)``, or None when there are no more (or stopping)."""
        if self._lock is None:  # tasks of one event loop: no lock needed
            return None if self.stopping else next(self._items, None)
        with self._lock:
            return None if self.stopping else next(self._items, None)

    @contextlib.contextmanager
    def waiting_for_lease(self) -> Iterator[None]:
        """Count this worker as waiting for a connection while the block runs."""
        lock = self._lock if self._lock is not None else contextlib.nullcontext()
        with lock:
            self.leasing += 1
        try:
            yield
        finally:
            with lock:
                self.leasing -= 1


def submission_of(item: Outgoing, signers: tuple[Any, ...]) -> tuple[Submission, bool | None]:
    """The submission for one ``send_many`` item, and its own ``strict=`` (None: the mailer's).

    Raises:
        UsageError, HeaderInjection, InvalidAddress: as ``send()`` would, before any I/O.
    """
    if isinstance(item, EmailMessage):
        return Submission.create(item, signers=signers, build={}), None
    arguments = dict(item)
    message = arguments.pop("message", None)
    envelope = arguments.pop("envelope", None)
    recipients = arguments.pop("recipients", None)
    strict = arguments.pop("strict", None)
    submission = Submission.create(
        message, envelope=envelope, recipients=recipients, signers=signers, build=arguments
    )
    return submission, strict


def pipelines(pool: Any) -> bool:
    """Whether ``send_many`` may run batches over ``pool``'s connections (a lease for many).

    Not when each message must wait for a rate limit or a warm-up schedule (the
    pool paces leases, one per message), nor under tracing (one span per ``send``).
    """
    telemetry = _telemetry.active
    return not pool.paced and (telemetry is None or telemetry.unconfigured())


@dataclass(frozen=True, slots=True)
class Failed:
    """A message to finish by the ordinary path: retry after ``error``, or send (``None``)."""

    index: int
    submission: Submission
    strict: bool
    error: MailTransferError | None
    started: float


class BulkSource:
    """A :class:`~mailtransfer._flows.pipeline.JobSource` over ``send_many``'s shared feed.

    Args:
        config: the mailer's settings (signers, strict, BDAT, retries, deferral, limits).
        conn: the connection this worker leased from ``pool``.
        pool: that connection's pool (for deferrals, and who waits for a connection).
        host: the relay, for the results.
        first: the item to send first (taken before the connection was leased).
        feed: where the next items come from.
        deliver: where outcomes go, as ``deliver((index, outcome))``.
    """

    def __init__(
        self,
        config: MailerConfig,
        conn: SessionBase,
        pool: Any,
        *,
        host: str,
        first: tuple[int, Outgoing],
        feed: Feed,
        deliver: Callable[[tuple[int, Outcome | BaseException]], None],
    ) -> None:
        self._conn = conn
        self._pool = pool
        self._host = host
        self._first: tuple[int, Outgoing] | None = first
        self._feed = feed
        self._deliver = deliver
        self._signers = config.signers
        self._strict = config.strict
        self._use_bdat = config.use_bdat
        self._retries = config.retry.attempts > 1
        self._deferral = config.deferral
        limit = config.limits.max_messages_per_connection
        self._budget = limit - conn.messages_sent if limit else None
        # Hand the connection over when somebody else waits for one; with an acquire
        # timeout, also to this batch's own waiting workers, so that none of them times
        # out behind a long run.
        self._own_waiters_wait = config.limits.acquire_timeout is None
        self.failed: list[Failed] = []
        """Messages for the ordinary path, in the order they failed."""
        self.exhausted = False
        """The feed has no more items."""
        self._taken = 0

    def _others_wait(self) -> bool:
        waiting: int = self._pool.waiting
        return waiting > (self._feed.leasing if self._own_waiters_wait else 0)

    def take(self) -> Job | None:
        """The next item of the feed as a job for this connection (bad items are reported)."""
        while True:
            if self._budget is not None and self._budget <= 0:
                return None
            if self._taken and self._others_wait():  # at least one per lease: no livelock
                return None
            step, self._first = self._first or self._feed.take(), None
            if step is None:
                self.exhausted = True
                return None
            index, item = step
            try:
                job = self._job(index, item)
            except Exception as exc:  # a typed error is its outcome; a bug, the consumer raises
                self._deliver((index, exc))
                continue
            if self._budget is not None:
                self._budget -= 1
            self._taken += 1
            return job

    def _job(self, index: int, item: Outgoing) -> Job:
        submission, strict = submission_of(item, self._signers)
        data, envelope = submission.for_server(self._conn.extensions)
        token = (index, submission, self._strict if strict is None else strict, time.monotonic())
        job = self._conn._job(
            data,
            sender=envelope.sender,
            recipients=envelope.recipients,
            smtputf8=envelope.smtputf8,
            eight_bit=not data.isascii(),
            use_bdat=self._use_bdat,
            size=None,
            params=envelope_options(envelope),
            token=token,
        )
        job.message_id, job.host = submission.message_id, self._host
        return job

    def finish(self, job: Job, outcome: Outcome) -> None:
        """Pass a result on (with its Message-ID and host); keep a retryable failure."""
        index, submission, strict, started = job.token
        if isinstance(outcome, SendResult):
            self._conn.messages_sent += 1
            try:  # made with the job's Message-ID and host (see _job)
                outcome = check_strict(outcome, strict)
            except MailTransferError as exc:  # strict, and a recipient was refused
                outcome = exc
            self._deliver((index, outcome))
            return
        if self._deferral > 0 and is_deferral(outcome):
            self._pool.defer(self._deferral)
        if self._retries and is_retryable(outcome):
            self.failed.append(Failed(index, submission, strict, outcome, started))
            return
        note_message_id(outcome, submission)
        self._deliver((index, outcome))

    def give_back(self, job: Job) -> None:
        """Keep a message that was taken but not sent, for the ordinary path."""
        index, submission, strict, started = job.token
        self.failed.append(Failed(index, submission, strict, None, started))
