"""Retries against real servers: transient failures retried, nothing ever delivered twice.

The chaos tests push thousands of messages through ``send_many`` while the server answers
421, drops connections before and after the end of the data, and checks by Message-ID,
on the server side, that no message arrived twice and every success arrived exactly once.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest_mailer import (
    Fault,
    Mini,
    MiniSmtp,
    mailer_options,
    message_id_of,
    mini_servers,
)

from mailtransfer import AsyncMailer, Mailer, PoolLimits, RetryPolicy, SendResult
from mailtransfer.errors import (
    DeliveryUnknown,
    Greylisted,
    MailTransferError,
    RateLimited,
    RecipientsRefused,
    ServiceUnavailable,
    UnknownMailbox,
)
from mailtransfer.testing import RecordingServer


@pytest.fixture
def mini() -> Iterator[Mini]:
    """Factory for counting, fault-injecting SMTP servers (see conftest_mailer.MiniSmtp)."""
    with mini_servers() as start:
        yield start


CHAOS_MESSAGES = 2000
CHAOS_CONNECTIONS = 6

# Per point, the chance of each fault; the rest of the time the server behaves.
_CHAOS_ODDS: dict[str, list[tuple[Fault, float]]] = {
    "connect": [(Fault.GREETING_421, 0.03)],
    "mail": [(Fault.MAIL_421, 0.02)],
    "data": [(Fault.DROP_AT_DATA, 0.02), (Fault.DROP_MID_DATA, 0.02)],
    "dot": [
        (Fault.REPLY_421_AFTER_DOT, 0.03),
        (Fault.DROP_AFTER_DOT_DELIVERED, 0.02),
        (Fault.DROP_AFTER_DOT_LOST, 0.01),
    ],
}


def chaos_chooser(seed: int) -> Callable[[str], Fault]:
    """A reproducible random fault picker (the server calls it from one thread)."""
    rng = random.Random(seed)

    def choose(point: str) -> Fault:
        roll = rng.random()
        for fault, odds in _CHAOS_ODDS[point]:
            if roll < odds:
                return fault
            roll -= odds
        return Fault.NONE

    return choose


def chaos_items(count: int) -> list[dict[str, Any]]:
    """``send_many`` items, each with its own Message-ID so every outcome can be traced."""
    return [
        {
            "sender": "chaos@example.org",
            "to": [f"rcpt{index % 7}@example.net"],
            "subject": f"chaos {index}",
            "text": f"message number {index}\n",
            "message_id": f"<chaos.{index}@example.org>",
        }
        for index in range(count)
    ]


def check_chaos(
    items: list[dict[str, Any]],
    outcomes: list[SendResult | MailTransferError],
    script: MiniSmtp,
) -> dict[str, int]:
    """Assert the no-duplicate and exactly-once rules; return counts for the report."""
    arrivals = script.arrivals()
    expected = {item["message_id"] for item in items}
    assert set(arrivals) <= expected, "the server got a message nobody sent"
    twice = {str(mid): n for mid, n in arrivals.items() if n > 1}
    assert not twice, f"delivered more than once: {sorted(twice)[:5]}"
    counts = {"ok": 0, "unknown": 0, "unknown_arrived": 0, "failed": 0}
    for item, outcome in zip(items, outcomes, strict=True):
        mid = item["message_id"]
        if isinstance(outcome, SendResult):
            assert outcome.message_id == mid  # results come back in input order
            assert arrivals[mid] == 1, f"{mid} reported sent but arrived {arrivals[mid]} times"
            counts["ok"] += 1
        elif isinstance(outcome, DeliveryUnknown):
            assert outcome.message_id == mid
            counts["unknown"] += 1
            counts["unknown_arrived"] += arrivals[mid]
        else:
            assert isinstance(outcome, MailTransferError)
            assert arrivals[mid] == 0, f"{mid} reported failed ({outcome!r}) but arrived"
            counts["failed"] += 1
    return counts


def check_chaos_exercised(script: MiniSmtp, counts: dict[str, int]) -> None:
    """The run really hit every kind of fault, retried, and reported unknown deliveries."""
    assert set(script.faults) == set(Fault) - {Fault.NONE}
    assert script.transactions > CHAOS_MESSAGES  # some messages were retried
    assert counts["unknown"] > 0
    assert counts["ok"] > CHAOS_MESSAGES * 0.8


@pytest.mark.timeout(60)
def test_chaos_sync_send_many_never_duplicates(mini: Mini) -> None:
    """2,000 messages through a faulty server: each arrives once or is reported failed."""
    server, script = mini(chooser=chaos_chooser(1))
    items = chaos_items(CHAOS_MESSAGES)
    limits = PoolLimits(max_connections=CHAOS_CONNECTIONS)
    started = time.monotonic()
    with Mailer(**mailer_options(server.port, limits=limits, deferral=0.001)) as mailer:
        outcomes = mailer.send_many(items)
        stats = next(iter(mailer.pools.values())).stats
    elapsed = time.monotonic() - started
    counts = check_chaos(items, outcomes, script)
    check_chaos_exercised(script, counts)
    assert stats.in_use == stats.opening == stats.closing == 0
    assert stats.max_seen <= CHAOS_CONNECTIONS
    assert script.max_active <= CHAOS_CONNECTIONS
    assert server.max_concurrent <= CHAOS_CONNECTIONS
    script.wait_until(lambda s: s.active == 0)
    print(f"sync chaos: {counts} faults={dict(script.faults)} in {elapsed:.1f}s")


@pytest.mark.timeout(60)
def test_chaos_async_send_many_never_duplicates(mini: Mini) -> None:
    """The asyncio twin of the chaos test: same rules, same server, tasks instead of threads."""
    server, script = mini(chooser=chaos_chooser(2))
    items = chaos_items(CHAOS_MESSAGES)
    limits = PoolLimits(max_connections=CHAOS_CONNECTIONS)

    async def main() -> tuple[list[SendResult | MailTransferError], Any]:
        async with AsyncMailer(
            **mailer_options(server.port, limits=limits, deferral=0.001)
        ) as mailer:
            outcomes = await mailer.send_many(items)
            return outcomes, next(iter(mailer.pools.values())).stats

    started = time.monotonic()
    outcomes, stats = asyncio.run(main())
    elapsed = time.monotonic() - started
    counts = check_chaos(items, outcomes, script)
    check_chaos_exercised(script, counts)
    assert stats.in_use == stats.opening == stats.closing == 0
    assert stats.max_seen <= CHAOS_CONNECTIONS
    assert script.max_active <= CHAOS_CONNECTIONS
    assert server.max_concurrent <= CHAOS_CONNECTIONS
    script.wait_until(lambda s: s.active == 0)
    print(f"async chaos: {counts} faults={dict(script.faults)} in {elapsed:.1f}s")


def one_fault(fault: Fault, point: str, times: int = 1) -> Callable[[str], Fault]:
    """A chooser that plays ``fault`` at ``point`` the first ``times`` times only."""
    left = [times]

    def choose(at: str) -> Fault:
        if at == point and left[0] > 0:
            left[0] -= 1
            return fault
        return Fault.NONE

    return choose


MESSAGE: dict[str, Any] = {
    "sender": "a@example.org",
    "to": ["b@example.net"],
    "subject": "s",
    "text": "hi",
}


@pytest.mark.parametrize(
    ("fault", "point"),
    [
        (Fault.GREETING_421, "connect"),
        (Fault.MAIL_421, "mail"),
        (Fault.DROP_AT_DATA, "data"),
        (Fault.REPLY_421_AFTER_DOT, "dot"),
    ],
)
def test_transient_failure_retried_on_fresh_connection(
    mini: Mini, fault: Fault, point: str
) -> None:
    """A failure before the message was accepted is retried once, on a new connection."""
    server, script = mini(chooser=one_fault(fault, point))
    with Mailer(**mailer_options(server.port, deferral=0)) as mailer:
        result = mailer.send(**MESSAGE)
    assert script.arrivals() == {result.message_id: 1}
    assert script.connections == 2


def test_retries_stop_after_attempts(mini: Mini) -> None:
    """A server that always answers 421 gets exactly ``attempts`` tries, then the typed error."""
    server, script = mini(chooser=one_fault(Fault.REPLY_421_AFTER_DOT, "dot", times=100))
    policy = RetryPolicy(attempts=3, initial_backoff=0.001, max_backoff=0.002, jitter=0)
    with (
        Mailer(**mailer_options(server.port, retry=policy, deferral=0)) as mailer,
        pytest.raises(ServiceUnavailable),
    ):
        mailer.send(**MESSAGE)
    assert script.transactions == 3
    assert script.delivered == []


def test_retry_waits_with_backoff(mini: Mini) -> None:
    """Between attempts the mailer waits at least the initial backoff."""
    server, _ = mini(chooser=one_fault(Fault.MAIL_421, "mail", times=2))
    policy = RetryPolicy(attempts=3, initial_backoff=0.15, max_backoff=1.0, jitter=0)
    started = time.monotonic()
    with Mailer(**mailer_options(server.port, retry=policy, deferral=0)) as mailer:
        mailer.send(**MESSAGE)
    # Two waits: 0.15 s then 0.3 s (exponential); allow for a coarse clock.
    assert time.monotonic() - started >= 0.4


def test_retry_policy_none_reports_first_failure(mini: Mini) -> None:
    """With ``RetryPolicy.none()`` a transient failure is raised at once."""
    server, script = mini(chooser=one_fault(Fault.REPLY_421_AFTER_DOT, "dot"))
    with (
        Mailer(**mailer_options(server.port, retry=RetryPolicy.none(), deferral=0)) as mailer,
        pytest.raises(ServiceUnavailable),
    ):
        mailer.send(**MESSAGE)
    assert script.connections == 1


@pytest.mark.parametrize("fault", [Fault.DROP_AFTER_DOT_DELIVERED, Fault.DROP_AFTER_DOT_LOST])
def test_drop_after_final_dot_is_delivery_unknown_never_retried(mini: Mini, fault: Fault) -> None:
    """Connection lost after the final dot: DeliveryUnknown with the Message-ID, no retry."""
    server, script = mini(chooser=one_fault(fault, "dot"))
    with Mailer(**mailer_options(server.port)) as mailer, pytest.raises(DeliveryUnknown) as caught:
        mailer.send(**MESSAGE, message_id="<unknown.1@example.org>")
    assert caught.value.message_id == "<unknown.1@example.org>"
    assert not caught.value.transient
    assert script.transactions == 1
    arrived = 1 if fault is Fault.DROP_AFTER_DOT_DELIVERED else 0
    assert len(script.delivered) == arrived


def test_async_drop_after_final_dot_is_delivery_unknown(mini: Mini) -> None:
    """The asyncio mailer reports the same DeliveryUnknown, with the generated Message-ID."""
    server, script = mini(chooser=one_fault(Fault.DROP_AFTER_DOT_DELIVERED, "dot"))

    async def main() -> DeliveryUnknown:
        async with AsyncMailer(**mailer_options(server.port)) as mailer:
            with pytest.raises(DeliveryUnknown) as caught:
                await mailer.send(**MESSAGE)
            return caught.value

    error = asyncio.run(main())
    assert error.message_id is not None
    assert message_id_of(script.delivered[0]) == error.message_id
    assert script.transactions == 1


def test_permanent_refusal_not_retried(smtp_server: RecordingServer) -> None:
    """A 5xx to MAIL is raised at once: one MAIL command reached the server."""
    smtp_server.faults.refuse_sender(code=550, text="5.1.1 no such user")
    with Mailer(**mailer_options(smtp_server.port)) as mailer, pytest.raises(UnknownMailbox):
        mailer.send(**MESSAGE)
    assert sum(c.startswith("MAIL") for c in smtp_server.commands) == 1


def test_greylisted_recipient_retried(smtp_server: RecordingServer) -> None:
    """Every recipient greylisted once (451 4.7.1): the retry delivers the message."""
    smtp_server.faults.refuse_recipient(code=451, text="4.7.1 Greylisted, try again", times=1)
    with Mailer(**mailer_options(smtp_server.port, deferral=0)) as mailer:
        result = mailer.send(**MESSAGE)
    assert list(result.accepted) == ["b@example.net"]
    assert len(smtp_server.messages) == 1


def test_greylisting_error_when_retries_run_out(smtp_server: RecordingServer) -> None:
    """With retries off, the all-greylisted send raises RecipientsRefused holding Greylisted."""
    smtp_server.faults.refuse_recipient(code=451, text="4.7.1 Greylisted, try again")
    options = mailer_options(smtp_server.port, retry=RetryPolicy.none(), deferral=0)
    with Mailer(**options) as mailer, pytest.raises(RecipientsRefused) as caught:
        mailer.send(**MESSAGE)
    assert caught.value.transient
    assert isinstance(caught.value.refused["b@example.net"], Greylisted)


def test_async_transient_failure_retried(mini: Mini) -> None:
    """The asyncio mailer retries a 421 to the end of data on a new connection."""
    server, script = mini(chooser=one_fault(Fault.REPLY_421_AFTER_DOT, "dot"))

    async def main() -> SendResult:
        async with AsyncMailer(**mailer_options(server.port, deferral=0)) as mailer:
            return await mailer.send(**MESSAGE)

    result = asyncio.run(main())
    assert script.arrivals() == {result.message_id: 1}
    assert script.connections == 2


def test_pipelined_421_to_mail_is_classified_from_its_reply(mini: Mini) -> None:
    """A pipelined MAIL answered ``421 4.7.0 ... slow down`` is RateLimited, as the table says.

    The 421 is kept (not lost to the EOF that follows it), and the error table's 4.7.0 +
    "too many messages" row wins over the plain-421 ServiceUnavailable row.
    """
    server, _ = mini(chooser=one_fault(Fault.MAIL_421, "mail"))
    with (
        Mailer(**mailer_options(server.port, retry=RetryPolicy.none())) as mailer,
        pytest.raises((ServiceUnavailable, RateLimited)) as caught,
    ):
        mailer.send(**MESSAGE)
    assert type(caught.value) is RateLimited
    assert caught.value.reply.code == 421
    assert str(caught.value.reply.enhanced) == "4.7.0"
    assert caught.value.transient
