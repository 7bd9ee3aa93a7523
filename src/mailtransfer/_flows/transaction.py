"""One mail transaction: MAIL, RCPT... (pipelined when offered), DATA or BDAT, the final reply.

The rule that keeps retries from duplicating mail lives here: an I/O failure
before the end-of-data mark (or the last BDAT chunk) has been handed to the
operating system is an ordinary, retry-safe error; any failure after that, before
the server's reply, is :class:`~mailtransfer.errors.DeliveryUnknown`.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Iterator, Sequence
from typing import IO, Any

from ..config import Timeouts
from ..errors import (
    DeliveryUnknown,
    MailTransferError,
    RecipientsRefused,
    ReplyError,
    ServerDisconnected,
    classify,
)
from ..protocol import (
    Bdat,
    Connection,
    Data,
    EndOfData,
    ExtensionNotSupported,
    MailFrom,
    RcptTo,
    Reply,
    Response,
    Rset,
    Stage,
    State,
)
from ..protocol._data import LineEndingNormalizer
from ..results import SendResult, make_result, parse_queue_id
from ._common import buffered_response, check_unsolicited, command, read_response
from ._io import POLL, Deadline, Instruction, Write

__all__ = [
    "Body",
    "envelope_group",
    "judge_envelope",
    "read_finals",
    "read_group",
    "result",
    "settle_envelope",
    "delivery_unknown",
    "transaction",
]

Body = bytes | bytearray | memoryview | IO[bytes] | Iterable[bytes]
"""A message body: bytes, a binary file object, or an iterable of byte chunks."""

CHUNK_SIZE = 64 * 1024
"""Bytes read and written at a time when streaming a large body."""
WHOLE_BODY_LIMIT = 1024 * 1024
"""Bodies up to this size given as bytes go out in one write (the fast path)."""
_DATA = Data()  # immutable: one serves every envelope


def transaction(
    conn: Connection,
    *,
    mail: MailFrom,
    rcpts: Sequence[RcptTo],
    body: Body,
    timeouts: Timeouts,
    use_bdat: bool = False,
    message_id: str | None = None,
    host: str | None = None,
) -> Generator[Instruction, Any, SendResult]:
    """Send one message over an open, ready session and return the result.

    ``message_id`` and ``host`` go into the result as they are.

    Raises:
        RecipientsRefused: every recipient was refused (nothing was sent).
        ReplyError: MAIL, DATA or the end of data was refused (classified).
        DeliveryUnknown: the connection failed after the end of data was sent.
        MailTransferError: connection, timeout and protocol errors before that.
    """
    ext = conn.extensions
    bdat = use_bdat or mail.body == "BINARYMIME"
    if bdat and not ext.chunking:
        raise ExtensionNotSupported("BDAT needs the CHUNKING extension, which the server lacks")
    if not rcpts:
        raise ValueError("a transaction needs at least one recipient")

    # -- the envelope: MAIL, RCPT..., DATA; one write when the server pipelines --------------
    if ext.pipelining or conn.lmtp:
        group = envelope_group(mail, rcpts, data=not bdat)
        yield Deadline(timeouts.command, Stage.MAIL)
        yield from check_unsolicited(conn, Stage.MAIL)
        yield Write(conn.send_group(group))
        replies, data_response = yield from read_group(conn, group)
    else:
        replies = [(yield from command(conn, mail, timeouts.command))]
        data_response = None
        if replies[0].reply.is_success:
            for rcpt in rcpts:
                replies.append((yield from command(conn, rcpt, timeouts.command)))
            if conn.accepted_recipients and not bdat:
                data_response = yield from command(conn, _DATA, timeouts.command)
    accepted, refused = yield from settle_envelope(
        conn,
        mail,
        rcpts,
        replies=replies,
        data_response=data_response,
        timeouts=timeouts,
        bdat=bdat,
    )

    # -- the body ------------------------------------------------------------------------------
    if bdat:
        yield from _send_bdat(conn, body, timeouts, normalize=mail.body != "BINARYMIME")
    else:
        yield from _send_data(conn, body, timeouts)

    # -- the final reply: from here on, a failure leaves the delivery state unknown -------------
    yield Deadline(timeouts.data, Stage.END_OF_DATA)
    finals = yield from read_finals(conn)
    return result(conn, finals, accepted, refused, message_id=message_id, host=host)


def envelope_group(mail: MailFrom, rcpts: Sequence[RcptTo], *, data: bool) -> list[Any]:
    """The commands of a pipelined envelope: MAIL, each RCPT and (unless BDAT follows) DATA."""
    group: list[Any] = [mail, *rcpts]
    if data:
        group.append(_DATA)
    return group


def read_group(
    conn: Connection, group: Sequence[Any], deadline: Deadline | None = None
) -> Generator[Instruction, Any, tuple[list[Response], Response | None]]:
    """The replies to a pipelined envelope group: MAIL and RCPT replies, and DATA's (or None).

    ``deadline``: set it before the first read, if one is needed (when the replies
    arrived with an earlier read, none is).
    """
    replies: list[Response] = []
    data_response: Response | None = None
    for cmd in group:
        response = buffered_response(conn, cmd.stage)
        if response is None:
            response = yield from read_response(conn, cmd.stage, short=True, deadline=deadline)
            deadline = None
        if cmd.verb == "DATA":
            data_response = response
        else:
            replies.append(response)
    return replies, data_response


def settle_envelope(
    conn: Connection,
    mail: MailFrom,
    rcpts: Sequence[RcptTo],
    *,
    replies: list[Response],
    data_response: Response | None,
    timeouts: Timeouts,
    bdat: bool,
) -> Generator[Instruction, Any, tuple[dict[str, Reply], dict[str, ReplyError]]]:
    """Judge the envelope's replies: the accepted and refused recipients, or a typed error.

    When the message cannot go ahead, the transaction is closed first (an empty
    message after an unneeded 354, then RSET), so the session stays usable.

    Raises:
        ReplyError: MAIL or DATA was refused (classified).
        RecipientsRefused: every recipient was refused.
    """
    accepted, refused, proceed = judge_envelope(rcpts, replies, data_response, bdat=bdat)
    if proceed:
        return accepted, refused
    mail_reply = replies[0].reply
    go_ahead = data_response is not None and data_response.reply.code == 354
    if not mail_reply.is_success or not accepted:
        if go_ahead:
            # RFC 2920 3.1: DATA was accepted although no recipient was; send an empty message.
            yield Write(conn.send(EndOfData()))
            yield from read_response(conn, Stage.END_OF_DATA)
        yield from _reset(conn, timeouts)
        if not mail_reply.is_success:
            raise _with_transcript(
                classify(mail_reply, stage=Stage.MAIL, command=mail.redacted()), conn
            )
        raise RecipientsRefused(
            f"every recipient was refused ({len(refused)}); nothing was sent",
            refused=refused,
            transcript=conn.transcript(),
        )
    if not bdat and not go_ahead:
        assert data_response is not None
        error = classify(data_response.reply, stage=Stage.DATA, command="DATA")
        yield from _reset(conn, timeouts)
        raise _with_transcript(error, conn)
    raise AssertionError("unreachable: judge_envelope said the body may not follow")


def judge_envelope(
    rcpts: Sequence[RcptTo],
    replies: list[Response],
    data_response: Response | None,
    *,
    bdat: bool,
) -> tuple[dict[str, Reply], dict[str, ReplyError], bool]:
    """The accepted and refused recipients, and whether the body may follow.

    :func:`settle_envelope` without I/O: when the body may not follow, that
    function closes the transaction and raises the error.
    """
    accepted: dict[str, Reply] = {}
    refused: dict[str, ReplyError] = {}
    for rcpt, response in zip(rcpts, replies[1:], strict=False):
        reply = response.reply
        if 200 <= reply.code < 300:
            accepted[rcpt.recipient] = reply
        else:
            refused[rcpt.recipient] = classify(reply, stage=Stage.RCPT, command=rcpt.redacted())
    proceed = (
        bool(accepted)
        and 200 <= replies[0].reply.code < 300
        and (bdat or (data_response is not None and data_response.reply.code == 354))
    )
    return accepted, refused, proceed


def read_finals(
    conn: Connection, *, count: int | None = None
) -> Generator[Instruction, Any, list[Response]]:
    """Read the replies that answer a whole sent message (one, or one per recipient in LMTP).

    ``count``: read that many replies; by default, every reply still awaited. The
    caller has set the deadline. From here on a failure is :class:`DeliveryUnknown`,
    except a 421 answer, which says the message was not accepted.
    """
    finals: list[Response] = []
    try:
        while conn.pending if count is None else len(finals) < count:
            response = buffered_response(conn, Stage.END_OF_DATA)
            if response is None:
                response = yield from read_response(conn, Stage.END_OF_DATA, short=True)
            finals.append(response)
    except ReplyError:
        raise  # a 421 answering the end of data: the message was not accepted
    except MailTransferError as exc:
        raise delivery_unknown(conn, exc) from exc
    return finals


def delivery_unknown(conn: Connection, exc: MailTransferError) -> DeliveryUnknown:
    """``exc`` struck after the whole message went out and before its reply: state unknown."""
    return DeliveryUnknown(
        "the connection failed after the whole message was sent and before the server"
        f" answered ({exc}); the message may or may not have been accepted",
        stage=Stage.END_OF_DATA,
        transcript=conn.transcript(),
    )


def result(
    conn: Connection,
    finals: list[Response],
    accepted: dict[str, Reply],
    refused: dict[str, ReplyError],
    *,
    message_id: str | None = None,
    host: str | None = None,
) -> SendResult:
    """The result of a sent message, from the replies that answered it.

    ``message_id`` and ``host`` go into the result as they are.

    Raises:
        ReplyError: the message (or a BDAT chunk) was refused.
        RecipientsRefused: LMTP, and every recipient refused the message.
    """
    if len(finals) > 1:
        # Replies to non-last BDAT chunks come first when they were pipelined.
        chunks = [r for r in finals if isinstance(r.command, Bdat) and not r.command.last]
        for response in chunks:
            if not response.reply.is_success:
                raise _with_transcript(
                    classify(response.reply, stage=Stage.BDAT, command="BDAT"), conn
                )
        finals = [r for r in finals if not (isinstance(r.command, Bdat) and not r.command.last)]
    final = finals[-1]
    if conn.lmtp:
        delivered: dict[str, Reply] = {}
        for response in finals:
            if response.recipient is None:
                continue
            if response.reply.is_success:
                delivered[response.recipient] = response.reply
            else:
                refused[response.recipient] = classify(
                    response.reply, stage=Stage.END_OF_DATA, command="."
                )
        if not delivered:
            raise RecipientsRefused(
                "every recipient was refused after the data (LMTP)",
                refused=refused,
                transcript=conn.transcript(),
            )
        return make_result(
            delivered,
            refused,
            final.reply,
            parse_queue_id(final.reply),
            message_id=message_id,
            host=host,
        )
    reply = final.reply
    if not 200 <= reply.code < 300:
        raise _with_transcript(classify(reply, stage=Stage.END_OF_DATA, command="."), conn)
    return make_result(
        accepted, refused, reply, parse_queue_id(reply), message_id=message_id, host=host
    )


def _send_data(
    conn: Connection, body: Body, timeouts: Timeouts
) -> Generator[Instruction, Any, None]:
    if isinstance(body, (bytes, bytearray, memoryview)) and len(body) <= WHOLE_BODY_LIMIT:
        # Fast path: body and end-of-data mark in one write. If the write fails, the mark
        # cannot have reached the server whole (it is the last bytes), so a retry is safe.
        yield Deadline(timeouts.command, Stage.DATA_BODY)
        yield Write(conn.send_body(bytes(body)))
        return
    for chunk in _chunks(body):
        yield Deadline(timeouts.command, Stage.DATA_BODY)
        yield from _check_early_reply(conn)
        yield Write(conn.send_data(chunk))
    yield Deadline(timeouts.command, Stage.DATA_BODY)
    yield from _check_early_reply(conn)
    yield Write(conn.send(EndOfData()))


def _check_early_reply(conn: Connection) -> Generator[Instruction, Any, None]:
    """Stop writing when the server spoke or hung up in the middle of the body."""
    early = yield POLL
    if early is None:
        return
    conn.receive_data(early)
    response = yield from read_response(conn, Stage.DATA_BODY)
    raise _with_transcript(
        classify(response.reply, stage=Stage.DATA_BODY, command="(message data)"), conn
    )


def _send_bdat(
    conn: Connection, body: Body, timeouts: Timeouts, *, normalize: bool
) -> Generator[Instruction, Any, None]:
    pipelining = conn.extensions.pipelining or conn.lmtp
    normalizer = LineEndingNormalizer() if normalize else None
    pieces = _chunks(body)
    current = next(pieces, b"")
    if normalizer is not None:
        current = normalizer.feed(current)
    while True:
        following = next(pieces, None)
        if following is None:
            if normalizer is not None:
                current += normalizer.finish()
            yield Deadline(timeouts.command, Stage.BDAT)
            yield Write(conn.send_bdat(current, last=True))
            return
        if normalizer is not None:
            following = normalizer.feed(following)
        if current:
            yield Deadline(timeouts.command, Stage.BDAT)
            yield Write(conn.send_bdat(current, last=False))
            if not pipelining:
                response = yield from read_response(conn, Stage.BDAT)
                if not response.reply.is_success:
                    yield from _reset(conn, timeouts)
                    raise _with_transcript(
                        classify(response.reply, stage=Stage.BDAT, command="BDAT"), conn
                    )
        current = following


def _chunks(body: Body) -> Iterator[bytes]:
    if isinstance(body, (bytes, bytearray, memoryview)):
        view = memoryview(body)
        for start in range(0, len(view), CHUNK_SIZE):
            yield bytes(view[start : start + CHUNK_SIZE])
        return
    read = getattr(body, "read", None)
    if callable(read):
        while True:
            chunk = read(CHUNK_SIZE)
            if not chunk:
                return
            yield bytes(chunk)
    else:
        for chunk in body:
            if chunk:
                yield bytes(chunk)


def _reset(conn: Connection, timeouts: Timeouts) -> Generator[Instruction, Any, None]:
    """RSET an open transaction so the session can be reused (best effort)."""
    if conn.state is State.MAIL:
        try:
            yield from command(conn, Rset(), timeouts.command)
        except ServerDisconnected:
            return


def _with_transcript(error: MailTransferError, conn: Connection) -> MailTransferError:
    error.transcript = conn.transcript()
    return error
