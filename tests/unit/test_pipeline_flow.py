"""The pipeline flow without I/O: which bytes go in which write, who is told what, and when.

A canned server answers each read; a recording source hands out jobs and keeps what the
flow reported. These pin the write boundaries (the next envelope rides with the end of
data) and the bookkeeping rules: every job taken is finished or given back, exactly once.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from mailtransfer._flows._io import Deadline, Poll, Read, Write
from mailtransfer._flows.pipeline import Job, pipeline
from mailtransfer.config import Timeouts
from mailtransfer.errors import (
    DeliveryUnknown,
    ExtensionNotSupported,
    MailTransferError,
    MessageTooLarge,
    ServerDisconnected,
    Stage,
)
from mailtransfer.protocol import Connection, Ehlo, MailFrom, RcptTo
from mailtransfer.results import SendResult

ENVELOPE_OK = b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go ahead\r\n"
QUEUED = b"250 2.0.0 queued\r\n"


def ready(extensions: bytes = b"250-PIPELINING\r\n250-SIZE 1000\r\n250 8BITMIME\r\n") -> Connection:
    conn = Connection()
    conn.receive_data(b"220 mx.test ESMTP\r\n")
    conn.next_event()
    conn.send(Ehlo("client.test"))
    conn.receive_data(b"250-mx.test\r\n" + extensions)
    conn.next_event()
    return conn


def job(n: int, *, size: int | None = None, notify: tuple[str, ...] | None = None) -> Job:
    body = f"Subject: {n}\r\n\r\nbody {n}\r\n".encode()
    mail = MailFrom(sender="a@example.org", size=size)
    rcpt = RcptTo(recipient=f"r{n}@example.net", notify=notify)  # type: ignore[arg-type]
    return Job(mail, [rcpt], body, token=n)


class Source:
    """Hands out ``jobs`` and records what the flow reports."""

    def __init__(self, jobs: list[Job]) -> None:
        self._jobs: Iterator[Job] = iter(jobs)
        self.finished: list[tuple[int, SendResult | MailTransferError]] = []
        self.given_back: list[int] = []

    def take(self) -> Job | None:
        return next(self._jobs, None)

    def finish(self, job: Job, outcome: SendResult | MailTransferError) -> None:
        self.finished.append((job.token, outcome))

    def give_back(self, job: Job) -> None:
        self.given_back.append(job.token)


def drive(flow: Any, replies: list[bytes]) -> tuple[list[bytes], BaseException | None]:
    """Run ``flow``; each read gets the next canned reply block (``b""``: the server hung up).

    Returns the writes, and the exception the flow ended with (None if it returned).
    """
    writes: list[bytes] = []
    value: Any = None
    while True:
        try:
            instruction = flow.send(value)
        except StopIteration:
            return writes, None
        except MailTransferError as exc:
            return writes, exc
        value = None
        if isinstance(instruction, Write):
            writes.append(instruction.data)
        elif isinstance(instruction, Read):
            value = replies.pop(0)
        elif isinstance(instruction, Poll):
            value = None
        else:
            assert isinstance(instruction, Deadline)


def deadlines_at_reads(flow: Any, replies: list[bytes]) -> list[tuple[Stage, float | None]]:
    """Run ``flow`` like :func:`drive`; the deadline in force at each read."""
    current: tuple[Stage, float | None] | None = None
    seen: list[tuple[Stage, float | None]] = []
    value: Any = None
    while True:
        try:
            instruction = flow.send(value)
        except StopIteration:
            return seen
        value = None
        if isinstance(instruction, Deadline):
            current = (instruction.stage, instruction.seconds)
        elif isinstance(instruction, Read):
            assert current is not None
            seen.append(current)
            value = replies.pop(0)


def test_each_read_waits_under_the_deadline_of_what_it_waits_for() -> None:
    """A rider's envelope replies that come in a read of their own get the command timeout."""
    timeouts = Timeouts(command=7, data=11)
    source = Source([job(1), job(2)])
    replies = [ENVELOPE_OK, QUEUED, ENVELOPE_OK, QUEUED]
    seen = deadlines_at_reads(pipeline(ready(), source, timeouts), replies)
    assert seen == [
        (Stage.MAIL, 7),
        (Stage.END_OF_DATA, 11),
        (Stage.MAIL, 7),  # message 2's envelope replies, read apart from message 1's reply
        (Stage.END_OF_DATA, 11),
    ]
    assert all(isinstance(outcome, SendResult) for _, outcome in source.finished)


def test_each_envelope_rides_with_the_end_of_the_message_before() -> None:
    source = Source([job(1), job(2), job(3)])
    flow = pipeline(ready(), source, Timeouts())
    writes, error = drive(flow, [ENVELOPE_OK, QUEUED + ENVELOPE_OK, QUEUED + ENVELOPE_OK, QUEUED])
    assert error is None
    assert len(writes) == 4
    assert writes[0].startswith(b"MAIL FROM:<a@example.org>")
    for n in (2, 3):  # body n-1, its end, and envelope n: one write
        assert b"body %d\r\n.\r\nMAIL FROM:" % (n - 1) in writes[n - 1]
        assert writes[n - 1].endswith(b"RCPT TO:<r%d@example.net>\r\nDATA\r\n" % n)
    assert writes[3].endswith(b"body 3\r\n.\r\n")
    assert [n for n, _ in source.finished] == [1, 2, 3]
    assert all(isinstance(outcome, SendResult) for _, outcome in source.finished)


def test_hang_up_before_the_reply_to_a_dot() -> None:
    """Message 1's fate is unknown; message 2 sent only its envelope: it is given back."""
    source = Source([job(1), job(2), job(3)])
    writes, error = drive(pipeline(ready(), source, Timeouts()), [ENVELOPE_OK, b""])
    assert isinstance(error, DeliveryUnknown)
    assert [(n, type(o)) for n, o in source.finished] == [(1, DeliveryUnknown)]
    assert source.given_back == [2]
    assert b"MAIL FROM" in writes[-1]


def test_hang_up_after_the_reply_to_a_dot() -> None:
    """Message 1 is delivered; message 2's envelope got no reply: a retry-safe error for it."""
    source = Source([job(1), job(2)])
    _, error = drive(pipeline(ready(), source, Timeouts()), [ENVELOPE_OK, QUEUED, b""])
    assert isinstance(error, ServerDisconnected)
    assert isinstance(source.finished[0][1], SendResult)
    assert source.finished[1][0] == 2
    assert isinstance(source.finished[1][1], ServerDisconnected)
    assert source.given_back == []


def test_a_rider_refused_by_the_core_checks_is_finished_and_the_run_goes_on() -> None:
    """Message 2 declares a size over the server's limit: its error, nothing of it sent."""
    source = Source([job(1), job(2, size=5000), job(3)])
    writes, error = drive(
        pipeline(ready(), source, Timeouts()), [ENVELOPE_OK, QUEUED, ENVELOPE_OK, QUEUED]
    )
    assert error is None
    assert [n for n, _ in source.finished] == [2, 1, 3]
    assert isinstance(dict(source.finished)[2], MessageTooLarge)
    assert not any(b"SIZE=5000" in w for w in writes)
    assert isinstance(dict(source.finished)[3], SendResult)


def test_a_rider_half_accepted_by_the_core_is_refused_whole_and_the_run_goes_on() -> None:
    """MAIL passes the checks, RCPT's NOTIFY needs DSN: the group is refused as a whole.

    Nothing of message 2 is written or awaited, so the session stays in step and
    message 3 goes out on it.
    """
    source = Source([job(1), job(2, notify=("SUCCESS",)), job(3)])
    replies = [ENVELOPE_OK, QUEUED, ENVELOPE_OK, QUEUED]
    writes, error = drive(pipeline(ready(), source, Timeouts()), replies)
    assert error is None
    outcomes = dict(source.finished)
    assert isinstance(outcomes[2], ExtensionNotSupported)
    assert isinstance(outcomes[1], SendResult)
    assert isinstance(outcomes[3], SendResult)
    assert not any(b"NOTIFY" in w for w in writes)
    assert b"".join(writes).count(b"MAIL FROM") == 2


@pytest.mark.parametrize("pipelining", [False, True])
def test_without_cross_pipelining_one_transaction_at_a_time(pipelining: bool) -> None:
    extensions = b"250-PIPELINING\r\n250 8BITMIME\r\n" if pipelining else b"250 8BITMIME\r\n"
    source = Source([job(1), job(2)])
    flow = pipeline(ready(extensions), source, Timeouts(), cross=False)
    if pipelining:
        replies = [ENVELOPE_OK, QUEUED, ENVELOPE_OK, QUEUED]
    else:
        replies = [b"250 ok\r\n", b"250 ok\r\n", b"354 go\r\n", QUEUED] * 2
    writes, error = drive(flow, replies)
    assert error is None
    assert not any(b".\r\nMAIL" in w for w in writes)
    assert all(isinstance(o, SendResult) for _, o in source.finished)


def test_a_first_message_refused_by_the_core_checks_does_not_end_the_run() -> None:
    """Nothing of message 1 went out (its size is over the limit): the session goes on."""
    source = Source([job(1, size=5000), job(2)])
    writes, error = drive(pipeline(ready(), source, Timeouts()), [ENVELOPE_OK, QUEUED])
    assert error is None
    assert isinstance(dict(source.finished)[1], MessageTooLarge)
    assert isinstance(dict(source.finished)[2], SendResult)
    assert not any(b"SIZE=5000" in w for w in writes)


@pytest.mark.parametrize(
    ("stage", "expected"),
    [(Stage.DATA_BODY, ServerDisconnected), (Stage.END_OF_DATA, DeliveryUnknown)],
)
def test_a_failed_write_with_a_rider_is_judged_by_where_it_failed(
    stage: Stage, expected: type[MailTransferError]
) -> None:
    """The write of body 1, its mark and envelope 2 fails; the driver says where.

    Before the mark was handed over (DATA_BODY), message 1 may be sent again; after it
    (END_OF_DATA), its fate is unknown. Message 2 sent no body either way: given back.
    """
    source = Source([job(1), job(2)])
    flow = pipeline(ready(), source, Timeouts())
    replies = [ENVELOPE_OK]
    value: Any = None
    marked: list[int | None] = []
    error: BaseException | None = None
    instruction = flow.send(None)
    while True:
        try:
            if isinstance(instruction, Write) and instruction.mark_end is not None:
                marked.append(instruction.mark_end)
                failure = ServerDisconnected("reset while writing", stage=stage)
                instruction = flow.throw(failure)
                continue
            instruction = flow.send(value)
        except StopIteration:
            break
        except MailTransferError as exc:
            error = exc
            break
        value = replies.pop(0) if isinstance(instruction, Read) else None
    assert len(marked) == 1
    assert isinstance(error, expected)
    ((number, outcome),) = source.finished
    assert (number, type(outcome)) == (1, expected)
    assert source.given_back == [2]
