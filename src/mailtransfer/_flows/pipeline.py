"""A run of transactions on one session, each message's envelope riding on the last one's end.

RFC 2920 lets the end-of-data mark of one message and the MAIL, RCPT and DATA
of the next share a write. A bulk sender then pays one write and one read per
message instead of two of each: half the system calls and event-loop turns.
The body itself still waits for its 354 (no blind pipelining: a body sent
before DATA is accepted would be read as commands).

The rule against duplicates (transaction.py) holds message by message:

- a failure before a message's end-of-data mark was handed to the system is
  reported for it as an ordinary, retry-safe error;
- a failure after that and before its reply is ``DeliveryUnknown``;
- the next message, whose envelope may have gone out with that mark, has sent
  no body: it is given back to the source, to be sent again elsewhere.

Every outcome is reported to the source as it is known, so nothing pulled from
the source is ever lost: it is finished (with a result or an error) or given back.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..config import Timeouts
from ..errors import (
    DeliveryUnknown,
    MailTransferError,
    RecipientsRefused,
    ReplyError,
    UsageError,
)
from ..protocol import Connection, MailFrom, RcptTo, Response, Stage, State
from ..results import SendResult
from ._common import check_unsolicited
from ._io import Deadline, Instruction, Write
from .transaction import (
    WHOLE_BODY_LIMIT,
    Body,
    delivery_unknown,
    envelope_group,
    judge_envelope,
    read_finals,
    read_group,
    result,
    settle_envelope,
    transaction,
)

__all__ = ["Job", "JobSource", "pipeline", "session_survives"]


@dataclass(slots=True, eq=False)
class Job:
    """One message for a pipelined run: its commands, its body and the caller's token."""

    mail: MailFrom
    rcpts: Sequence[RcptTo]
    body: Body
    use_bdat: bool = False
    token: Any = None
    """Whatever the source needs to know which message this is."""
    message_id: str | None = None
    """Put in the message's result (with ``host``), when the source knows them."""
    host: str | None = None
    rides: bool = field(init=False)
    """Whether the envelope can share a write with the previous message's end of data.

    True for a body given as bytes that goes out in one write after DATA; BDAT and
    streamed bodies take the ordinary, one-message-at-a-time transaction.
    """

    def __post_init__(self) -> None:
        body = self.body
        self.rides = (
            not self.use_bdat
            and self.mail.body != "BINARYMIME"
            and isinstance(body, bytes)
            and len(body) <= WHOLE_BODY_LIMIT
        )


class JobSource(Protocol):
    """Where a pipelined run gets its messages and reports what became of them."""

    def take(self) -> Job | None:
        """The next message to send on this session, or None to stop."""

    def finish(self, job: Job, outcome: SendResult | MailTransferError) -> None:
        """``job`` was tried on this session: its result, or the error that stopped it."""

    def give_back(self, job: Job) -> None:
        """``job`` was taken but none of its body was sent: it may be sent again elsewhere."""


def session_survives(conn: Connection, exc: MailTransferError) -> bool:
    """Whether a session can go on after ``exc``: a refused command yes, anything else no.

    Refused recipients count as a refused command: the transaction flow has
    already reset the transaction. So does a command the core refused to send
    (a ``UsageError``, such as a size above the server's limit) when it left the
    session between transactions. A 421 always ends the session.
    """
    if isinstance(exc, ReplyError) and exc.reply.code == 421:
        return False
    return isinstance(exc, (ReplyError, RecipientsRefused, UsageError)) and conn.state in (
        State.READY,
        State.CONNECTED,
    )


def pipeline(
    conn: Connection, source: JobSource, timeouts: Timeouts, *, cross: bool = True
) -> Generator[Instruction, Any, None]:
    """Send messages from ``source`` over a ready session until it has no more.

    ``cross``: let a message's envelope share a write with the previous message's
    end (when the server offers PIPELINING); else one transaction at a time.

    Raises:
        MailTransferError: the error that ended the session, already reported to
            ``source`` for the message it concerns (and any message whose body
            had not gone out given back).
    """
    cross = cross and conn.extensions.pipelining and not conn.lmtp
    # The deadlines of each phase, made once for the run.
    envelope_deadline = Deadline(timeouts.command, Stage.MAIL)
    body_deadline = Deadline(timeouts.command, Stage.DATA_BODY)
    end_deadline = Deadline(timeouts.data, Stage.END_OF_DATA)
    job = source.take()
    group: list[Any] | None = None  # the job's envelope, when it already went out
    while job is not None:
        if not (cross and job.rides):
            yield from _one(conn, source, job, timeouts)
            job, group = source.take(), None
            continue
        # -- the envelope's replies (the envelope went out with the last end of data) -------
        try:
            if group is None:
                yield envelope_deadline
                yield from check_unsolicited(conn, Stage.MAIL)
                group = envelope_group(job.mail, job.rcpts, data=True)
                yield Write(conn.send_group(group))
                replies, data_response = yield from read_group(conn, group)
            else:  # it rode: its replies usually came with the last final reply
                replies, data_response = yield from read_group(conn, group, envelope_deadline)
            accepted, refused, proceed = judge_envelope(
                job.rcpts, replies, data_response, bdat=False
            )
            if not proceed:  # closes the transaction and raises
                yield from settle_envelope(
                    conn,
                    job.mail,
                    job.rcpts,
                    replies=replies,
                    data_response=data_response,
                    timeouts=timeouts,
                    bdat=False,
                )
        except MailTransferError as exc:
            source.finish(job, exc)
            if not session_survives(conn, exc):
                raise
            job, group = source.take(), None
            continue
        # -- the body, its end, and the next envelope in one write ---------------------------
        following = source.take()
        data = conn.send_body(job.body)  # type: ignore[arg-type]  # it rides: bytes
        mark_end = len(data)
        group = None
        if following is not None and following.rides:
            try:
                group = envelope_group(following.mail, following.rcpts, data=True)
                data += conn.send_group(group)
            except MailTransferError as exc:  # refused by the core's checks: nothing sent
                source.finish(following, exc)
                following, group = None, None
        try:
            yield body_deadline
            # A write that fails before the mark is handed over is retry-safe for this
            # message; the driver says (stage END_OF_DATA) when it failed after it.
            yield Write(data, mark_end) if group is not None else Write(data)
            yield end_deadline
            finals: list[Response] = yield from read_finals(conn, count=1)
        except MailTransferError as exc:
            error = exc
            if exc.stage is Stage.END_OF_DATA and not isinstance(
                exc, (DeliveryUnknown, ReplyError)
            ):
                error = delivery_unknown(conn, exc)  # the write failed after the mark went out
            source.finish(job, error)
            if following is not None:
                source.give_back(following)
            if error is exc:
                raise
            raise error from exc
        try:
            outcome: SendResult | MailTransferError = result(
                conn, finals, accepted, refused, message_id=job.message_id, host=job.host
            )
        except MailTransferError as exc:  # the message was refused; the session goes on
            outcome = exc
        source.finish(job, outcome)
        job = following if following is not None else source.take()


def _one(
    conn: Connection, source: JobSource, job: Job, timeouts: Timeouts
) -> Generator[Instruction, Any, None]:
    """One message by the ordinary transaction; raises only errors that end the session."""
    try:
        outcome = yield from transaction(
            conn,
            mail=job.mail,
            rcpts=job.rcpts,
            body=job.body,
            timeouts=timeouts,
            use_bdat=job.use_bdat,
            message_id=job.message_id,
            host=job.host,
        )
    except MailTransferError as exc:
        source.finish(job, exc)
        if not session_survives(conn, exc):
            raise
        return
    source.finish(job, outcome)
