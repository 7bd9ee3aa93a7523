"""The fast paths of sending behave exactly like the slow ones they replace.

- Retries: the first attempt runs without tenacity; after a retryable failure tenacity
  takes over, and attempts, ``max_time``, logs and the no-duplicate rule are unchanged.
- Envelope commands are cached (immutable, checked once); bad input still fails the same
  typed way, never with a ``TypeError`` from the cache.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailtransfer import RetryPolicy
from mailtransfer._flows.envelope import envelope_commands
from mailtransfer._sending import with_retries, with_retries_async
from mailtransfer._sync._outcomes import OutcomeBox
from mailtransfer.errors import (
    DeliveryUnknown,
    InvalidAddress,
    MailTransferError,
    ServerDisconnected,
    Stage,
    UsageError,
)
from mailtransfer.protocol import Extensions, MailFrom, RcptTo, Reply

QUICK = RetryPolicy(attempts=3, max_time=30.0, initial_backoff=0.001, max_backoff=0.002, jitter=0.0)


class Script:
    """An attempt that fails with the given errors in turn, then returns ``"sent"``."""

    def __init__(self, *failures: BaseException, delay: float = 0.0) -> None:
        self.failures = list(failures)
        self.calls = 0
        self.delay = delay

    def __call__(self) -> Any:
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        if self.failures:
            raise self.failures.pop(0)
        return "sent"

    async def run_async(self) -> Any:
        return self()


def lost(stage: Stage = Stage.RCPT) -> ServerDisconnected:
    return ServerDisconnected("lost", stage=stage)


def test_first_attempt_success_makes_one_call() -> None:
    script = Script()
    assert with_retries(QUICK, script) == "sent"
    assert script.calls == 1


def test_retryable_first_failure_hands_over_to_tenacity(caplog: pytest.LogCaptureFixture) -> None:
    """Two transient failures then success: three calls, tenacity's logs number them 1 and 2."""
    script = Script(lost(), lost())
    with caplog.at_level(logging.INFO, logger="mailtransfer.retry"):
        assert with_retries(QUICK, script) == "sent"
    assert script.calls == 3
    logged = [r.getMessage() for r in caplog.records if r.name == "mailtransfer.retry"]
    assert [m.split(" failed")[0] for m in logged] == ["attempt 1", "attempt 2"]


def test_attempts_bound_counts_the_bare_first_attempt() -> None:
    first, second, third = lost(), lost(), lost()
    script = Script(first, second, third, lost())
    with pytest.raises(ServerDisconnected) as caught:
        with_retries(QUICK, script)
    assert script.calls == 3
    assert caught.value is third


def test_max_time_counts_from_the_first_attempt() -> None:
    """A first attempt slower than max_time: no second attempt (tenacity's clock starts early)."""
    policy = RetryPolicy(attempts=5, max_time=0.01, initial_backoff=0.001, jitter=0.0)
    script = Script(lost(), delay=0.05)
    with pytest.raises(ServerDisconnected):
        with_retries(policy, script)
    assert script.calls == 1


@pytest.mark.parametrize(
    "error",
    [
        DeliveryUnknown("lost after the final dot", stage=Stage.END_OF_DATA),
        UsageError("bad input"),
        ValueError("a bug"),
    ],
    ids=["delivery-unknown", "usage-error", "not-ours"],
)
def test_unretryable_first_failure_is_raised_at_once(error: BaseException) -> None:
    script = Script(error)
    with pytest.raises(type(error)) as caught:
        with_retries(QUICK, script)
    assert caught.value is error
    assert script.calls == 1


def test_policy_none_never_retries() -> None:
    script = Script(lost())
    with pytest.raises(ServerDisconnected):
        with_retries(RetryPolicy.none(), script)
    assert script.calls == 1


def test_async_retries_same_decisions() -> None:
    async def main() -> None:
        script = Script(lost(), lost())
        assert await with_retries_async(QUICK, script.run_async) == "sent"
        assert script.calls == 3

        unknown = DeliveryUnknown("lost after the final dot", stage=Stage.END_OF_DATA)
        script = Script(unknown)
        with pytest.raises(DeliveryUnknown):
            await with_retries_async(QUICK, script.run_async)
        assert script.calls == 1

        slow = RetryPolicy(attempts=5, max_time=0.01, initial_backoff=0.001, jitter=0.0)
        script = Script(lost(), delay=0.05)
        with pytest.raises(ServerDisconnected):
            await with_retries_async(slow, script.run_async)
        assert script.calls == 1

    asyncio.run(main())


def test_async_cancellation_is_not_retried() -> None:
    async def main() -> None:
        calls = 0

        async def attempt() -> Any:
            nonlocal calls
            calls += 1
            raise asyncio.CancelledError

        with pytest.raises(asyncio.CancelledError):
            await with_retries_async(QUICK, attempt)
        assert calls == 1

    asyncio.run(main())


# -- cached envelope commands --------------------------------------------------------------

EXTENSIONS = Extensions.from_ehlo(
    Reply(250, ("mx.example.org", "PIPELINING", "SIZE 1000000", "8BITMIME", "SMTPUTF8"))
)


def test_cached_commands_equal_fresh_ones() -> None:
    for _ in range(2):  # the second round is served from the cache
        mail, rcpts = envelope_commands(
            "a@example.org", ["b@example.org", "c@example.org"], EXTENSIONS, size=123
        )
        assert mail == MailFrom(sender="a@example.org", size=123)
        assert rcpts == [RcptTo(recipient="b@example.org"), RcptTo(recipient="c@example.org")]
    other, _ = envelope_commands("a@example.org", ["b@example.org"], EXTENSIONS, size=124)
    assert other.size == 124


def test_cached_recipient_list_is_the_callers_own() -> None:
    """Changing the returned list does not change what the next caller gets."""
    _, first = envelope_commands("a@example.org", ["b@example.org"], EXTENSIONS, size=7)
    first.append(RcptTo(recipient="intruder@example.org"))
    _, second = envelope_commands("a@example.org", ["b@example.org"], EXTENSIONS, size=7)
    assert second == [RcptTo(recipient="b@example.org")]


def test_eight_bit_body_parameter_is_part_of_the_cached_envelope() -> None:
    eight_bit = Extensions.from_ehlo(Reply(250, ("mx.example.org", "8BITMIME", "SIZE 1000")))
    plain, _ = envelope_commands("a@example.org", ["b@example.org"], eight_bit, size=9)
    marked, _ = envelope_commands(
        "a@example.org", ["b@example.org"], eight_bit, size=9, eight_bit=True
    )
    assert (plain.body, marked.body) == (None, "8BITMIME")


@pytest.mark.parametrize("bad", [123, None, b"b@example.org", ["b@example.org"]])
def test_recipient_of_wrong_type_is_a_typed_error(bad: Any) -> None:
    with pytest.raises(InvalidAddress):
        envelope_commands("a@example.org", [bad], EXTENSIONS)


def test_size_of_wrong_type_is_refused_even_after_a_cached_equal_one() -> None:
    envelope_commands("a@example.org", ["b@example.org"], EXTENSIONS, size=1)
    with pytest.raises(MailTransferError):
        envelope_commands("a@example.org", ["b@example.org"], EXTENSIONS, size=True)  # type: ignore[arg-type]


@given(
    local=st.from_regex(r"[a-z0-9]{1,12}", fullmatch=True),
    size=st.integers(min_value=0, max_value=10**9),
    notify=st.sampled_from([None, ("NEVER",), ("SUCCESS", "FAILURE")]),
)
def test_cache_never_changes_a_command(local: str, size: int, notify: Any) -> None:
    sender, recipient = f"{local}@example.org", f"r{local}@example.net"
    for _ in range(2):
        mail, (rcpt,) = envelope_commands(sender, [recipient], EXTENSIONS, size=size, notify=notify)
        assert mail == MailFrom(sender=sender, size=size)
        assert rcpt == RcptTo(recipient=recipient, notify=notify)


_SENDERS = ("a@example.org", "b@example.org", "")
_RECIPIENT_TUPLES = (("r@example.net",), ("r@example.net", "s@example.net"), ("s@example.net",))


@given(
    calls=st.lists(
        st.tuples(
            st.sampled_from(_SENDERS),
            st.sampled_from(range(len(_RECIPIENT_TUPLES))),
            st.sampled_from([None, 7, 7000, 10**6]),
            st.booleans(),
            st.booleans(),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_a_repeated_envelope_tuple_gets_exactly_its_commands(calls: list[Any]) -> None:
    """The one-entry memo for a repeated recipients tuple never hands out another's commands.

    The same tuple objects recur (as an Envelope's do) with other senders, sizes and flags.
    """
    eight = Extensions.from_ehlo(Reply(250, ("mx.example.org", "8BITMIME", "SIZE 10000000")))
    for sender, which, size, eight_bit, smtputf8 in calls:
        recipients = _RECIPIENT_TUPLES[which]
        mail, rcpts = envelope_commands(
            sender, recipients, eight, size=size, eight_bit=eight_bit, smtputf8=smtputf8
        )
        body = "8BITMIME" if eight_bit else None
        assert mail == MailFrom(sender=sender, size=size, body=body, smtputf8=smtputf8)
        assert rcpts == [RcptTo(recipient=r) for r in recipients]


# -- AsyncStream.poll: no loop turn when nothing arrived, one when the kernel holds bytes ----


def test_async_poll_sees_bytes_that_arrived_while_idle() -> None:
    """Poll finds what the server sent while the loop was not reading, and the end of stream."""
    from mailtransfer._async._stream import AsyncStream

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    send_now, sent, close_now, closed = (threading.Event() for _ in range(4))

    def server() -> None:
        conn, _ = listener.accept()
        with conn:
            send_now.wait(5)
            conn.sendall(b"421 4.3.2 going away\r\n")
            sent.set()
            close_now.wait(5)
        closed.set()

    thread = threading.Thread(target=server, daemon=True)
    thread.start()

    async def main() -> None:
        stream = await AsyncStream.connect("127.0.0.1", port, timeout=5)
        try:
            stream.set_deadline(5, Stage.GREETING)
            assert await stream.poll() is None  # nothing sent yet
            send_now.set()
            assert sent.wait(5)  # blocks the loop: the bytes wait in the kernel
            assert await stream.poll() == b"421 4.3.2 going away\r\n"
            assert await stream.poll() is None
            close_now.set()
            assert closed.wait(5)
            assert await stream.poll() == b""
        finally:
            stream.abort()

    try:
        asyncio.run(main())
    finally:
        listener.close()
        thread.join(5)


def test_async_read_deadline_is_a_typed_timeout_and_the_stream_stays_failed() -> None:
    """A read that outlives its deadline: Timeout at that stage (one timer, no task per read)."""
    from mailtransfer._async._stream import AsyncStream
    from mailtransfer.errors import Timeout

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    async def main() -> None:
        stream = await AsyncStream.connect("127.0.0.1", port, timeout=5)
        try:
            stream.set_deadline(0.05, Stage.MAIL)
            with pytest.raises(Timeout) as caught:
                await stream.read()
            assert caught.value.stage is Stage.MAIL
            stream.set_deadline(5, Stage.RCPT)
            with pytest.raises(Timeout):
                await stream.read()  # a timed-out session is never read from again
        finally:
            stream.abort()

    try:
        asyncio.run(main())
    finally:
        listener.close()


# -- OutcomeBox: Mailer.send_iter's consumer is woken per batch, never left waiting -------


def _take_in_thread(box: OutcomeBox[int], want: int) -> tuple[threading.Thread, list[list[int]]]:
    got: list[list[int]] = []
    thread = threading.Thread(target=lambda: got.append(box.take(want)), daemon=True)
    thread.start()
    return thread, got


def test_outcome_box_wakes_the_consumer_when_a_batch_is_full() -> None:
    box: OutcomeBox[int] = OutcomeBox(latency=60.0)  # only a full batch can wake it in time
    thread, got = _take_in_thread(box, 3)
    for item in range(3):
        box.put(item)
    thread.join(10)
    assert not thread.is_alive()
    assert got == [[0, 1, 2]]


def test_outcome_box_urgent_outcome_wakes_the_consumer_at_once() -> None:
    box: OutcomeBox[int] = OutcomeBox(latency=60.0)
    thread, got = _take_in_thread(box, 5)
    box.put(7, urgent=True)
    thread.join(10)
    assert not thread.is_alive()
    assert got == [[7]]


def test_outcome_box_hands_over_a_partial_batch_after_the_latency() -> None:
    box: OutcomeBox[int] = OutcomeBox(latency=0.01)
    box.put(1)
    assert box.take(16) == [1]  # fewer than wanted: returned once the latency is up
    box.put(2)
    box.put(3)
    assert box.take(2) == [2, 3]  # enough already waiting: returned at once
