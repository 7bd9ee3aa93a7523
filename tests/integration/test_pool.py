"""The connection pools against real servers: limits, reuse, health checks, cancellation, pacing.

Connection counts are checked on the server side (``MiniSmtp`` counts what it accepts and
when each connection ends), so a pool that miscounts cannot hide it.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from conftest_mailer import Fault, Mini, eventually, mailer_options, mini_servers, until

from mailtransfer import (
    AsyncConnection,
    AsyncConnectionPool,
    AsyncMailer,
    ConnectionPool,
    Mailer,
    NoTLS,
    PoolLimits,
    RetryPolicy,
    SendResult,
    SyncConnection,
    Timeouts,
)
from mailtransfer._pooling import PoolStats
from mailtransfer.errors import (
    DeliveryUnknown,
    PoolTimeout,
    ReadTimeout,
    RemoteProtocolError,
    ServiceUnavailable,
    UsageError,
)
from mailtransfer.testing import RecordingServer, ScriptedServer, oversized_line


@pytest.fixture
def mini() -> Iterator[Mini]:
    """Factory for counting, fault-injecting SMTP servers (see conftest_mailer.MiniSmtp)."""
    with mini_servers() as start:
        yield start


def message(index: int = 0) -> dict[str, Any]:
    """Keyword arguments for one small message."""
    return {
        "sender": "pool@example.org",
        "to": ["rcpt@example.net"],
        "subject": f"pool test {index}",
        "text": f"body {index}\n",
    }


def stats_of(mailer: Mailer | AsyncMailer) -> PoolStats:
    """The counts of the mailer's only pool."""
    (pool,) = mailer.pools.values()
    return pool.stats


def assert_nothing_leased(stats: PoolStats) -> None:
    """No connection is in use, being opened or being closed."""
    assert (stats.in_use, stats.opening, stats.closing) == (0, 0, 0), stats


# -- limits ---------------------------------------------------------------------------------


def test_server_never_sees_more_than_max_connections_sync(mini: Mini) -> None:
    """Threads racing to send, one message per connection: the server sees at most the limit."""
    server, script = mini()
    limits = PoolLimits(max_connections=2, max_messages_per_connection=1)
    with Mailer(**mailer_options(server.port, limits=limits)) as mailer:
        outcomes = mailer.send_many([message(i) for i in range(60)], concurrency=8)
        assert_nothing_leased(stats_of(mailer))
    assert all(isinstance(o, SendResult) for o in outcomes)
    assert script.connections == 60
    assert script.max_active <= 2


def test_server_never_sees_more_than_max_connections_async(mini: Mini) -> None:
    """Tasks racing to send, one message per connection: the server sees at most the limit."""
    server, script = mini()
    limits = PoolLimits(max_connections=3, max_messages_per_connection=1)

    async def main() -> list[Any]:
        async with AsyncMailer(**mailer_options(server.port, limits=limits)) as mailer:
            outcomes = await mailer.send_many([message(i) for i in range(60)], concurrency=10)
            assert_nothing_leased(stats_of(mailer))
            return outcomes

    outcomes = asyncio.run(main())
    assert all(isinstance(o, SendResult) for o in outcomes)
    assert script.max_active <= 3


def test_max_messages_per_connection_respected(mini: Mini) -> None:
    """No connection carries more than the limit, and each worn-out one is QUIT politely."""
    server, script = mini()
    limits = PoolLimits(max_connections=2, max_messages_per_connection=3)
    with Mailer(**mailer_options(server.port, limits=limits)) as mailer:
        mailer.send_many([message(i) for i in range(20)])
    per_connection = script.per_connection()
    assert sum(per_connection.values()) == 20
    assert max(per_connection.values()) <= 3
    assert script.connections >= 7  # 20 messages at most 3 each
    script.wait_until(lambda s: s.active == 0)
    assert script.quits == script.connections


def test_connections_are_reused(mini: Mini) -> None:
    """Sequential sends share one connection."""
    server, script = mini()
    with Mailer(**mailer_options(server.port)) as mailer:
        for index in range(5):
            mailer.send(**message(index))
    assert script.connections == 1
    assert script.per_connection() == {0: 5}


def test_threads_share_one_mailer(mini: Mini) -> None:
    """Many threads calling send() on one Mailer: every message arrives once, within the limit."""
    server, script = mini()
    limits = PoolLimits(max_connections=3)
    errors: list[BaseException] = []
    with Mailer(**mailer_options(server.port, limits=limits)) as mailer:

        def worker(start: int) -> None:
            try:
                for index in range(start, start + 10):
                    mailer.send(**message(index), message_id=f"<t{index}@example.org>")
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(n * 10,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert_nothing_leased(stats_of(mailer))
    assert errors == []
    assert sorted(script.arrivals().values()) == [1] * 80
    assert script.max_active <= 3


def test_pool_timeout_when_no_connection_frees(smtp_server: RecordingServer) -> None:
    """With every connection leased, a second lease fails after ``acquire_timeout``."""
    limits = PoolLimits(max_connections=1, acquire_timeout=0.1)
    pool = ConnectionPool(
        lambda: SyncConnection(
            "127.0.0.1", smtp_server.port, tls=NoTLS(), local_hostname="client.example.test"
        ),
        limits,
    )
    with pool.connection(), pytest.raises(PoolTimeout):  # noqa: SIM117  (nesting is the point)
        with pool.connection():
            pass
    assert pool.stats.in_use == 0
    pool.close()


def test_closed_pool_refuses_leases(smtp_server: RecordingServer) -> None:
    """After close(), leasing a connection raises UsageError."""
    pool = ConnectionPool(
        lambda: SyncConnection("127.0.0.1", smtp_server.port, tls=NoTLS()), PoolLimits()
    )
    pool.close()
    with pytest.raises(UsageError, match="closed"), pool.connection():
        pass


# -- what comes back, what is thrown away ---------------------------------------------------


def test_connection_that_saw_421_is_discarded(mini: Mini) -> None:
    """After a 421 the connection is gone; the next message opens a new one."""
    server, script = mini(chooser=iter_faults([Fault.REPLY_421_AFTER_DOT]))
    options = mailer_options(server.port, retry=RetryPolicy.none(), deferral=0)
    with Mailer(**options) as mailer:
        with pytest.raises(ServiceUnavailable):
            mailer.send(**message())
        assert stats_of(mailer).idle == 0
        mailer.send(**message(1))
        assert stats_of(mailer).idle == 1
    assert script.connections == 2


def iter_faults(faults: list[Fault]) -> Any:
    """A chooser that plays ``faults`` at the final dot, one per message, then behaves."""
    pending = list(faults)

    def choose(at: str) -> Fault:
        if at == "dot" and pending:
            return pending.pop(0)
        return Fault.NONE

    return choose


def test_connection_that_timed_out_is_discarded(smtp_server: RecordingServer) -> None:
    """A command that timed out leaves the session unknown: the connection is not reused."""
    smtp_server.faults.delay("MAIL", 0.5, times=1)
    options = mailer_options(smtp_server.port, retry=RetryPolicy.none(), timeouts=Timeouts.all(0.2))
    with Mailer(**options) as mailer:
        with pytest.raises(ReadTimeout):
            mailer.send(**message())
        assert stats_of(mailer).idle == 0
        mailer.send(**message(1))
    assert len(smtp_server.messages) == 1
    assert sum(c.startswith("EHLO") for c in smtp_server.commands) == 2  # two sessions


def test_connection_with_protocol_error_is_discarded(scripted: Any) -> None:
    """A reply breaking the protocol ends the connection; nothing is kept in the pool."""
    server: ScriptedServer = scripted(oversized_line(after="MAIL"))
    with Mailer(**mailer_options(server.port, retry=RetryPolicy.none())) as mailer:
        with pytest.raises(RemoteProtocolError):
            mailer.send(**message())
        stats = stats_of(mailer)
        assert stats.idle == 0
        assert_nothing_leased(stats)
    until(lambda: server.peers[0].closed)


def test_idle_connections_expire(mini: Mini) -> None:
    """A connection idle longer than ``idle_timeout`` is QUIT and replaced."""
    server, script = mini()
    limits = PoolLimits(idle_timeout=0.1, check_after_idle=10.0)
    with Mailer(**mailer_options(server.port, limits=limits)) as mailer:
        mailer.send(**message())
        time.sleep(0.3)
        mailer.send(**message(1))
    assert script.connections == 2
    assert script.noops == 0
    script.wait_until(lambda s: s.quits == 2)


@pytest.mark.parametrize("idle_reply", [True, False], ids=["421-then-close", "silent-close"])
def test_health_check_replaces_connection_server_closed(mini: Mini, idle_reply: bool) -> None:
    """The server closed an idle connection: NOOP finds out, a fresh one is used, no retry."""
    server, script = mini(idle_timeout=0.15, idle_reply=idle_reply)
    limits = PoolLimits(check_after_idle=0.05)
    options = mailer_options(server.port, limits=limits, retry=RetryPolicy.none())
    with Mailer(**options) as mailer:
        mailer.send(**message())
        script.wait_until(lambda s: s.active == 0)  # the server hung up on the idle client
        result = mailer.send(**message(1))
    assert result.accepted
    assert script.connections == 2
    assert len(script.delivered) == 2


def test_health_check_keeps_live_connection(mini: Mini) -> None:
    """A connection idle past ``check_after_idle`` but alive passes its NOOP and is reused."""
    server, script = mini()
    limits = PoolLimits(check_after_idle=0.05)
    with Mailer(**mailer_options(server.port, limits=limits)) as mailer:
        mailer.send(**message())
        time.sleep(0.15)
        mailer.send(**message(1))
    assert script.noops == 1
    assert script.connections == 1


def test_recent_connection_gets_no_health_check(mini: Mini) -> None:
    """A connection used a moment ago is reused without a NOOP."""
    server, script = mini()
    with Mailer(**mailer_options(server.port)) as mailer:
        mailer.send(**message())
        mailer.send(**message(1))
    assert script.noops == 0


def test_async_health_check_replaces_closed_connection(mini: Mini) -> None:
    """The asyncio pool also NOOPs an idle connection and replaces it when the server left."""
    server, script = mini(idle_timeout=0.15)
    limits = PoolLimits(check_after_idle=0.05)
    options = mailer_options(server.port, limits=limits, retry=RetryPolicy.none())

    async def main() -> None:
        async with AsyncMailer(**options) as mailer:
            await mailer.send(**message())
            await eventually(lambda: script.active == 0)
            await mailer.send(**message(1))

    asyncio.run(main())
    assert script.connections == 2
    assert len(script.delivered) == 2


def test_close_quits_every_connection(mini: Mini) -> None:
    """Closing the mailer sends QUIT on each pooled connection and the server sees none left."""
    server, script = mini(reply_delay=0.05)
    limits = PoolLimits(max_connections=4)
    mailer = Mailer(**mailer_options(server.port, limits=limits))
    mailer.send_many([message(i) for i in range(8)], concurrency=4)
    opened = script.connections
    assert opened >= 2
    mailer.close()
    script.wait_until(lambda s: s.active == 0)
    assert script.quits == opened
    with pytest.raises(UsageError, match="closed"):
        mailer.send(**message())


def test_async_close_quits_every_connection(mini: Mini) -> None:
    """``aclose()`` QUITs every pooled connection."""
    server, script = mini(reply_delay=0.05)
    limits = PoolLimits(max_connections=4)

    async def main() -> int:
        mailer = AsyncMailer(**mailer_options(server.port, limits=limits))
        await mailer.send_many([message(i) for i in range(8)], concurrency=4)
        opened = script.connections
        await mailer.aclose()
        return opened

    opened = asyncio.run(main())
    script.wait_until(lambda s: s.active == 0)
    assert opened >= 2
    assert script.quits == opened


def test_connection_in_use_at_close_is_closed_on_return(mini: Mini) -> None:
    """A connection busy when the pool closes is QUIT when its message is done."""
    server, script = mini(reply_delay=0.3)
    mailer = Mailer(**mailer_options(server.port))
    sender = threading.Thread(target=mailer.send, kwargs=message())
    sender.start()
    script.wait_until(lambda s: s.transactions == 1)
    mailer.close()
    sender.join()
    assert len(script.delivered) == 1
    script.wait_until(lambda s: s.quits == 1 and s.active == 0)


# -- cancellation and stopping early ---------------------------------------------------------


def test_async_cancel_send_many_leaks_nothing(mini: Mini) -> None:
    """Cancelling send_many mid-way frees every slot and closes the interrupted sockets."""
    server, script = mini(reply_delay=0.05)
    limits = PoolLimits(max_connections=4)

    async def main() -> tuple[PoolStats, int]:
        async with AsyncMailer(**mailer_options(server.port, limits=limits)) as mailer:
            task = asyncio.ensure_future(mailer.send_many([message(i) for i in range(200)]))
            await eventually(lambda: len(script.delivered) >= 10)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            stats = stats_of(mailer)
            # Interrupted connections were aborted: the server sees only the idle ones.
            await eventually(lambda: script.active <= stats.idle)
            return stats, script.active

    stats, active = asyncio.run(main())
    assert_nothing_leased(stats)
    assert active == stats.idle
    assert len(script.delivered) < 200
    script.wait_until(lambda s: s.active == 0)


def test_async_cancel_individual_sends_leaks_nothing(mini: Mini) -> None:
    """Tasks cancelled while sending, waiting for a slot, or connecting leave no trace."""
    server, script = mini(reply_delay=0.6, greeting_delay=0.05)
    limits = PoolLimits(max_connections=2)

    async def main() -> tuple[PoolStats, PoolStats, list[Any]]:
        async with AsyncMailer(**mailer_options(server.port, limits=limits)) as mailer:
            tasks = [asyncio.ensure_future(mailer.send(**message(i))) for i in range(10)]
            await asyncio.sleep(0.02)  # some are connecting, the rest wait for a slot
            tasks[0].cancel()
            await eventually(lambda: script.transactions >= 1)
            # The server holds each reply 0.6 s, so these are still in flight or waiting.
            assert not any(task.done() for task in tasks[1:6])
            for task in tasks[1:6]:
                task.cancel()
            outcomes = await asyncio.gather(*tasks, return_exceptions=True)
            during = stats_of(mailer)
            again = await mailer.send(**message(99))
            assert again.accepted
            return during, stats_of(mailer), outcomes

    during, after, outcomes = asyncio.run(main())
    assert_nothing_leased(during)
    assert_nothing_leased(after)
    if sys.version_info >= (3, 12):
        assert all(isinstance(o, asyncio.CancelledError) for o in outcomes[:6]), outcomes
    else:
        # Open issue: _async/_stream.py reads through asyncio.wait_for, which on Python
        # < 3.12 can swallow a cancellation that races a completing read (gh-86296); the
        # task then finishes its send. The slots must still all come back (checked above).
        assert all(isinstance(o, (asyncio.CancelledError, SendResult)) for o in outcomes[:6])
        assert any(isinstance(o, asyncio.CancelledError) for o in outcomes[:6])
    assert all(isinstance(o, SendResult) for o in outcomes[6:])
    assert after.total <= 2
    script.wait_until(lambda s: s.active == 0)


def test_async_pool_waiter_cancelled_after_wakeup_passes_it_on(mini: Mini) -> None:
    """A waiter cancelled just as it is woken hands the free slot on to the next one."""
    server, script = mini()

    async def main() -> str:
        pool = AsyncConnectionPool(
            lambda: AsyncConnection(
                "127.0.0.1", server.port, tls=NoTLS(), local_hostname="client.example.test"
            ),
            PoolLimits(max_connections=1),
        )
        async with pool.connection():
            first = asyncio.ensure_future(_lease_briefly(pool))
            second = asyncio.ensure_future(_lease_briefly(pool))
            await asyncio.sleep(0.01)  # both are parked, waiting
        # The lease ended: ``first`` is woken. Cancel it before it runs.
        first.cancel()
        result = await asyncio.wait_for(second, 2.0)
        with pytest.raises(asyncio.CancelledError):
            await first
        assert_nothing_leased(pool.stats)
        await pool.aclose()
        return result

    assert asyncio.run(main()) == "leased"
    script.wait_until(lambda s: s.active == 0)


async def _lease_briefly(pool: AsyncConnectionPool) -> str:
    async with pool.connection():
        return "leased"


def test_sync_send_iter_closed_early_cancels_the_rest(mini: Mini) -> None:
    """Stopping send_iter early cancels messages not yet started; no connection stays leased."""
    server, script = mini(reply_delay=0.02)
    limits = PoolLimits(max_connections=2)
    with Mailer(**mailer_options(server.port, limits=limits)) as mailer:
        stream = mailer.send_iter([message(i) for i in range(200)])
        for _ in zip(range(5), stream, strict=False):
            pass
        stream.close()
        assert_nothing_leased(stats_of(mailer))
        delivered = len(script.delivered)
    assert 5 <= delivered < 50
    script.wait_until(lambda s: s.active == 0)


def test_sync_progress_error_stops_send_many(mini: Mini) -> None:
    """An exception from the progress callback stops send_many and cancels the rest."""
    server, script = mini(reply_delay=0.02)

    def progress(done: int, total: int) -> None:
        if done == 3:
            raise KeyError("stop")

    with Mailer(**mailer_options(server.port)) as mailer:
        with pytest.raises(KeyError):
            mailer.send_many([message(i) for i in range(300)], progress=progress)
        assert_nothing_leased(stats_of(mailer))
    assert len(script.delivered) < 100


# -- pacing ----------------------------------------------------------------------------------


def test_rate_limit_honoured_sync(mini: Mini) -> None:
    """At 20 messages/s, 30 messages take about 1.5 s however many connections there are."""
    server, script = mini()
    with Mailer(**mailer_options(server.port, rate_limit=20.0)) as mailer:
        started = time.monotonic()
        mailer.send_many([message(i) for i in range(30)], concurrency=6)
        elapsed = time.monotonic() - started
    assert len(script.delivered) == 30
    assert elapsed >= 1.0  # (30 - 1) / 20 = 1.45 s ideally; loose on purpose


def test_rate_limit_honoured_async(mini: Mini) -> None:
    """The asyncio pool paces the same way: in the first half second, about ten messages."""
    server, script = mini()

    async def main() -> int:
        async with AsyncMailer(**mailer_options(server.port, rate_limit=20.0)) as mailer:
            task = asyncio.ensure_future(
                mailer.send_many([message(i) for i in range(30)], concurrency=6)
            )
            await asyncio.sleep(0.5)
            early = len(script.delivered)
            await task
            return early

    early = asyncio.run(main())
    assert 1 <= early <= 15  # 1 + 0.5 s * 20/s = 11 ideally; loose on purpose
    assert len(script.delivered) == 30


def test_deferral_pauses_new_connections(mini: Mini) -> None:
    """After a 421 the destination gets no new connection for the deferral time."""
    server, script = mini(chooser=iter_faults([Fault.REPLY_421_AFTER_DOT]))
    options = mailer_options(server.port, retry=RetryPolicy.none(), deferral=0.4)
    with Mailer(**options) as mailer:
        with pytest.raises(ServiceUnavailable):
            mailer.send(**message())
        started = time.monotonic()
        mailer.send(**message(1))
        waited = time.monotonic() - started
    assert waited >= 0.3
    assert script.connections == 2


def test_delivery_unknown_connection_not_reused(mini: Mini) -> None:
    """After DeliveryUnknown the pool holds nothing of that session."""
    server, _ = mini(chooser=iter_faults([Fault.DROP_AFTER_DOT_DELIVERED]))
    with Mailer(**mailer_options(server.port)) as mailer:
        with pytest.raises(DeliveryUnknown):
            mailer.send(**message())
        stats = stats_of(mailer)
    assert stats.idle == 0
    assert_nothing_leased(stats)
