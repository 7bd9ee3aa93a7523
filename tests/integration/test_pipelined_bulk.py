"""send_many pipelines messages: each envelope rides in the write that ends the message before.

Every test runs on both mailers. Real servers on loopback: a script that watches for the next
MAIL arriving before it answered the end of data (proof of the shared write), MiniSmtp for
hang-ups and 421s at a chosen message, and aiosmtpd (RecordingServer) for refusals in the
middle of a run. What matters each time: every message delivered exactly once or reported,
and the session kept when a refusal allows it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest_mailer import Fault, Mini, eventually, mailer_options, message_id_of, mini_servers

from mailtransfer import (
    AsyncConnection,
    AsyncMailer,
    ImplicitTLS,
    Mailer,
    NoTLS,
    PoolLimits,
    RetryPolicy,
    SendResult,
    StartTLS,
    Timeouts,
)
from mailtransfer._async._inline import InlineDriver, _writes
from mailtransfer.errors import (
    DeliveryUnknown,
    MailTransferError,
    PartialDelivery,
    ReadTimeout,
    RecipientsRefused,
    ReplyError,
    Stage,
)
from mailtransfer.testing import RecordingServer, ScriptedPeer, ScriptedServer, TLSCertificates

Outcomes = list[SendResult | MailTransferError]

KINDS = ["sync", "async"]


@pytest.fixture
def mini() -> Iterator[Mini]:
    """Factory for counting, fault-injecting SMTP servers (see conftest_mailer.MiniSmtp)."""
    with mini_servers() as start:
        yield start


def send_many(kind: str, items: list[Any], concurrency: int = 2, **options: Any) -> Outcomes:
    """``send_many`` through a Mailer (``sync``) or an AsyncMailer (``async``).

    Two workers by default, even over one connection: with one, the sync mailer sends
    from the caller's thread one message at a time, and the pipelining goes untested.
    """
    if kind == "sync":
        with Mailer(**options) as mailer:
            return mailer.send_many(items, concurrency=concurrency)

    async def main() -> Outcomes:
        async with AsyncMailer(**options) as mailer:
            return await mailer.send_many(items, concurrency=concurrency)

    return asyncio.run(main())


def items(count: int, **extra: Any) -> list[dict[str, Any]]:
    """``count`` small messages, each with its own Message-ID ``<m{i}@example.org>``."""
    return [
        {
            "sender": "a@example.org",
            "to": "b@example.net",
            "subject": f"message {i}",
            "text": f"body {i}\n.\nafter a dot line",
            "message_id": f"<m{i}@example.org>",
            **extra,
        }
        for i in range(count)
    ]


def nth(fault: Fault, point: str, n: int) -> Callable[[str], Fault]:
    """A MiniSmtp chooser that plays ``fault`` at the ``n``-th ``point`` (1-based) only."""
    seen = [0]

    def choose(at: str) -> Fault:
        if at != point:
            return Fault.NONE
        seen[0] += 1
        return fault if seen[0] == n else Fault.NONE

    return choose


class RiderWatch:
    """A PIPELINING server that, before answering each end of data, waits briefly for more.

    ``riders`` counts the envelopes (a MAIL) that arrived before the end of data before
    them was answered: they can only have come in the same write, or right behind it,
    without waiting for the reply.
    """

    def __init__(self) -> None:
        self.riders = 0
        self.messages = 0

    async def __call__(self, peer: ScriptedPeer) -> None:
        await peer.send(b"220 watch.test ESMTP\r\n")
        await peer.expect(b"EHLO")
        await peer.send(b"250-watch.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
        early: bytes | None = None
        while True:
            line = early if early is not None else await peer.readline()
            early = None
            verb = line[:4].upper()
            if verb in {b"MAIL", b"RCPT"}:
                await peer.send(b"250 2.1.0 Ok\r\n")
            elif verb == b"DATA":
                await peer.send(b"354 go ahead\r\n")
                await peer.read_until_dot()
                self.messages += 1
                try:
                    early = await peer.readline(timeout=0.5)
                except TimeoutError:
                    early = None
                if early is not None and early[:4].upper() == b"MAIL":
                    self.riders += 1
                await peer.send(b"250 2.0.0 Ok: queued\r\n")
            elif verb == b"QUIT":
                await peer.send(b"221 2.0.0 Bye\r\n")
                return
            elif not line:
                return
            else:
                await peer.send(b"250 2.0.0 Ok\r\n")


@pytest.mark.parametrize("kind", KINDS)
def test_next_envelope_rides_with_the_end_of_data(kind: str) -> None:
    """On each connection, every message after the first sends MAIL before the last reply."""
    watch = RiderWatch()
    with ScriptedServer(watch) as server:
        options = mailer_options(server.port, limits=PoolLimits(max_connections=2))
        outcomes = send_many(kind, items(10), **options)
        connections = server.connections
    assert all(isinstance(o, SendResult) for o in outcomes), outcomes
    assert watch.messages == 10
    assert watch.riders == 10 - connections


@pytest.mark.parametrize("kind", KINDS)
def test_pipeline_messages_false_waits_for_each_reply(kind: str) -> None:
    """``pipeline_messages=False``: no MAIL is sent before the end of data is answered."""
    watch = RiderWatch()
    with ScriptedServer(watch) as server:
        options = mailer_options(
            server.port, limits=PoolLimits(max_connections=2), pipeline_messages=False
        )
        outcomes = send_many(kind, items(4), **options)
    assert all(isinstance(o, SendResult) for o in outcomes), outcomes
    assert (watch.messages, watch.riders) == (4, 0)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fault", [Fault.REPLY_421_AFTER_DOT, Fault.DROP_AFTER_DOT_LOST])
def test_failure_at_one_end_of_data_resends_only_what_is_safe(
    mini: Mini, kind: str, fault: Fault
) -> None:
    """A 421 or a hang-up at the 3rd end of data, with the 4th envelope already sent.

    With 421 the 3rd was refused: it is retried. With a hang-up its fate is unknown: it
    is reported, never resent. The 4th sent no body: it goes again on a new connection.
    Every other message arrives exactly once.
    """
    server, script = mini(chooser=nth(fault, "dot", 3))
    options = mailer_options(server.port, limits=PoolLimits(max_connections=1), deferral=0)
    outcomes = send_many(kind, items(8), **options)
    arrivals = script.arrivals()
    unknown = [i for i, o in enumerate(outcomes) if isinstance(o, DeliveryUnknown)]
    if fault is Fault.DROP_AFTER_DOT_LOST:
        assert len(unknown) == 1
        (lost,) = unknown
        assert outcomes[lost].message_id == f"<m{lost}@example.org>"  # type: ignore[union-attr]
        assert f"<m{lost}@example.org>" not in arrivals
    else:
        assert unknown == []
    for i, outcome in enumerate(outcomes):
        if i not in unknown:
            assert isinstance(outcome, SendResult), (i, outcome)
            assert arrivals[f"<m{i}@example.org>"] == 1
    assert sum(arrivals.values()) == 8 - len(unknown)
    assert script.connections == 2


@pytest.mark.parametrize("kind", KINDS)
def test_hang_up_after_accepting_is_unknown_and_not_resent(mini: Mini, kind: str) -> None:
    """The server accepts the 2nd message and hangs up unanswered: reported, sent once."""
    server, script = mini(chooser=nth(Fault.DROP_AFTER_DOT_DELIVERED, "dot", 2))
    options = mailer_options(server.port, limits=PoolLimits(max_connections=1), deferral=0)
    outcomes = send_many(kind, items(5), **options)
    assert [type(o) for o in outcomes].count(DeliveryUnknown) == 1
    assert [type(o) for o in outcomes].count(SendResult) == 4
    assert script.arrivals() == {f"<m{i}@example.org>": 1 for i in range(5)}


@pytest.mark.parametrize("kind", KINDS)
def test_421_to_a_riding_mail_resends_that_message(mini: Mini, kind: str) -> None:
    """The server answers the 3rd MAIL (which rode with the 2nd end) with 421 and closes."""
    server, script = mini(chooser=nth(Fault.MAIL_421, "mail", 3))
    options = mailer_options(server.port, limits=PoolLimits(max_connections=1), deferral=0)
    outcomes = send_many(kind, items(6), **options)
    assert all(isinstance(o, SendResult) for o in outcomes), outcomes
    assert script.arrivals() == {f"<m{i}@example.org>": 1 for i in range(6)}
    assert script.connections == 2


@pytest.mark.parametrize("kind", KINDS)
def test_421_without_retries_is_reported_for_the_right_message(mini: Mini, kind: str) -> None:
    """With retries off, the message answered 421 gets the error; the riding one is resent.

    The rider was given back, not failed: the ordinary path sends it even without retries.
    """
    server, script = mini(chooser=nth(Fault.REPLY_421_AFTER_DOT, "dot", 2))
    options = mailer_options(
        server.port,
        limits=PoolLimits(max_connections=1),
        retry=RetryPolicy.none(),
        deferral=0,
    )
    outcomes = send_many(kind, items(4), **options)
    failed = [i for i, o in enumerate(outcomes) if not isinstance(o, SendResult)]
    assert len(failed) == 1
    error = outcomes[failed[0]]
    assert isinstance(error, ReplyError)
    assert error.reply.code == 421
    assert error.stage is Stage.END_OF_DATA
    assert script.arrivals() == {f"<m{i}@example.org>": 1 for i in range(4) if i not in failed}


@pytest.mark.parametrize("kind", KINDS)
def test_refusals_mid_run_keep_the_session(smtp_server: RecordingServer, kind: str) -> None:
    """A refused sender, all recipients refused, a refused message: each typed, one session."""
    smtp_server.faults.refuse_sender("banned@example.org")
    smtp_server.faults.refuse_recipient("gone@example.net")
    smtp_server.faults.reply_to_data(554, "5.6.0 refused content", times=1)
    batch = items(9)
    batch[2]["sender"] = "banned@example.org"
    batch[4]["to"] = "gone@example.net"
    options = mailer_options(smtp_server.port, limits=PoolLimits(max_connections=1))
    outcomes = send_many(kind, batch, **options)
    assert isinstance(outcomes[2], ReplyError)
    assert outcomes[2].stage is Stage.MAIL
    assert isinstance(outcomes[4], RecipientsRefused)
    refused_content = [
        i
        for i, o in enumerate(outcomes)
        if isinstance(o, ReplyError) and o.stage is Stage.END_OF_DATA
    ]
    assert len(refused_content) == 1
    ok = [i for i, o in enumerate(outcomes) if isinstance(o, SendResult)]
    assert len(ok) == 6
    arrived = sorted(message_id_of(m.data) or "" for m in smtp_server.messages)
    assert arrived == sorted(f"<m{i}@example.org>" for i in ok)
    assert len({m.peer for m in smtp_server.messages}) == 1


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("strict", [False, True])
def test_pipelined_results_name_their_message_and_host(mini: Mini, kind: str, strict: bool) -> None:
    """Each result has its own Message-ID and the relay; strict turns a partial into an error."""
    server, script = mini()
    batch = items(6)
    batch[3]["to"] = ["b@example.net", "gone@example.net"]
    options = mailer_options(server.port, limits=PoolLimits(max_connections=1), strict=strict)
    outcomes = send_many(kind, batch, **options)
    results = [o.result if isinstance(o, PartialDelivery) else o for o in outcomes]
    assert all(isinstance(r, SendResult) for r in results), outcomes
    assert [r.message_id for r in results] == [f"<m{i}@example.org>" for i in range(6)]
    assert {r.host for r in results} == {f"smtp://127.0.0.1:{server.port}"}
    assert isinstance(outcomes[3], PartialDelivery) is strict
    assert list(results[3].refused) == ["gone@example.net"]
    assert script.arrivals() == {f"<m{i}@example.org>": 1 for i in range(6)}
    assert script.connections == 1  # one pipelined session


@pytest.mark.parametrize("kind", KINDS)
def test_messages_per_connection_limit_holds(mini: Mini, kind: str) -> None:
    """``max_messages_per_connection=3``: a run hands its connection back after three."""
    server, script = mini()
    limits = PoolLimits(max_connections=2, max_messages_per_connection=3)
    outcomes = send_many(kind, items(20), **mailer_options(server.port, limits=limits))
    assert all(isinstance(o, SendResult) for o in outcomes)
    per_connection = script.per_connection()
    assert sum(per_connection.values()) == 20
    assert max(per_connection.values()) <= 3


@pytest.mark.parametrize("kind", KINDS)
def test_without_pipelining_one_transaction_at_a_time(mini: Mini, kind: str) -> None:
    """A server without PIPELINING gets plain transactions, all on the same connections."""
    server, script = mini(extensions=("8BITMIME", "ENHANCEDSTATUSCODES"))
    limits = PoolLimits(max_connections=2)
    outcomes = send_many(kind, items(12), **mailer_options(server.port, limits=limits))
    assert all(isinstance(o, SendResult) for o in outcomes)
    assert script.arrivals() == {f"<m{i}@example.org>": 1 for i in range(12)}
    assert script.connections == 2


@pytest.mark.parametrize("kind", KINDS)
def test_bad_item_in_the_middle_is_reported_and_the_run_goes_on(mini: Mini, kind: str) -> None:
    """A header injection in item 3 is its error; the items around it are sent on one session."""
    server, script = mini()
    batch = items(6)
    batch[3]["subject"] = "x\r\nBcc: spy@example.net"
    options = mailer_options(server.port, limits=PoolLimits(max_connections=1))
    outcomes = send_many(kind, batch, **options)
    assert isinstance(outcomes[3], MailTransferError)
    assert [isinstance(o, SendResult) for o in outcomes] == [True] * 3 + [False] + [True] * 2
    assert script.connections == 1


# -- the asyncio run inside the transport's callbacks (InlineDriver) ---------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("mode", ["starttls", "implicit"])
def test_runs_over_tls(
    recording_server: Callable[..., RecordingServer],
    tls: TLSCertificates,
    kind: str,
    mode: str,
) -> None:
    """The runs go over STARTTLS and implicit TLS sessions alike (the TLS transport)."""
    if mode == "starttls":
        server = recording_server(tls_context=tls.server_context)
        policy: Any = StartTLS(context=tls.client_context)
    else:
        server = recording_server(implicit_tls=tls.server_context)
        policy = ImplicitTLS(context=tls.client_context)
    options = mailer_options(server.port, host="localhost", tls=policy)
    outcomes = send_many(kind, items(12), **options)
    assert all(isinstance(o, SendResult) for o in outcomes), outcomes
    assert sorted(message_id_of(m.data) or "" for m in server.messages) == sorted(
        f"<m{i}@example.org>" for i in range(12)
    )
    assert all(m.tls for m in server.messages)


@pytest.mark.parametrize("kind", KINDS)
def test_large_bodies_wait_for_the_transport_to_drain(
    smtp_server: RecordingServer, kind: str
) -> None:
    """900 KB bodies fill the transport's buffer: each write waits for it to drain."""
    big = "x" * 76 + "\n"
    batch = items(5, text=big * 12_000)
    options = mailer_options(smtp_server.port, limits=PoolLimits(max_connections=1))
    outcomes = send_many(kind, batch, **options)
    assert all(isinstance(o, SendResult) for o in outcomes), outcomes
    assert len(smtp_server.messages) == 5
    assert all(len(m.data) > 900_000 for m in smtp_server.messages)


class SlowAtDot:
    """A PIPELINING server that answers the ``n``-th end of data only after ``delay`` s.

    It records the message only if the client is still there to hear the answer.
    """

    def __init__(self, n: int, delay: float) -> None:
        self.n, self.delay = n, delay
        self.dots = 0
        self.accepted: list[bytes] = []

    async def __call__(self, peer: ScriptedPeer) -> None:
        await peer.send(b"220 slow.test ESMTP\r\n")
        await peer.expect(b"EHLO")
        await peer.send(b"250-slow.test\r\n250 PIPELINING\r\n")
        while True:
            line = await peer.readline()
            verb = line[:4].upper()
            if verb == b"DATA":
                await peer.send(b"354 go ahead\r\n")
                body = await peer.read_until_dot()
                self.dots += 1
                if self.dots == self.n:
                    await peer.sleep(self.delay)
                    if peer.closed:
                        return
                self.accepted.append(body)
                await peer.send(b"250 2.0.0 queued\r\n")
            elif verb == b"QUIT" or not line:
                await peer.send(b"221 bye\r\n")
                return
            else:
                await peer.send(b"250 ok\r\n")


@pytest.mark.parametrize("kind", KINDS)
def test_no_answer_to_an_end_of_data_in_time(kind: str) -> None:
    """The 3rd end of data gets no answer within Timeouts.data: DeliveryUnknown for it only.

    The 4th message, whose envelope rode with that end, goes again on a new connection.
    """
    script = SlowAtDot(3, delay=1.5)
    with ScriptedServer(script) as server:
        timeouts = Timeouts(connect=5, greeting=5, command=5, data=0.5)
        options = mailer_options(
            server.port, limits=PoolLimits(max_connections=1), timeouts=timeouts, deferral=0
        )
        outcomes = send_many(kind, items(6), **options)
    unknown = [o for o in outcomes if isinstance(o, DeliveryUnknown)]
    assert len(unknown) == 1
    assert isinstance(unknown[0].__cause__, ReadTimeout)
    assert [type(o) for o in outcomes].count(SendResult) == 5
    assert len(script.accepted) == 5  # the unanswered one was dropped by the server


def test_async_cancelled_run_leaks_nothing() -> None:
    """Cancel send_many while a run waits for a reply: the connection is dropped, slot freed."""
    script = SlowAtDot(2, delay=1.5)

    async def main(port: int) -> Any:
        mailer = AsyncMailer(**mailer_options(port, limits=PoolLimits(max_connections=1)))
        task = asyncio.ensure_future(mailer.send_many(items(5), concurrency=2))
        await eventually(lambda: script.dots >= 2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        (pool,) = mailer.pools.values()
        stats = pool.stats
        await mailer.aclose()
        return stats

    with ScriptedServer(script) as server:
        stats = asyncio.run(main(server.port))
    assert stats.in_use == 0
    assert len(script.accepted) == 1


async def flood_instead_of_reading(peer: ScriptedPeer) -> None:
    """Says 354, then stops reading and sends 2 MB of junk (THREATS: a hostile server)."""
    await peer.send(b"220 flood.test ESMTP\r\n")
    await peer.expect(b"EHLO")
    await peer.send(b"250-flood.test\r\n250 PIPELINING\r\n")
    await peer.expect(b"MAIL")
    await peer.expect(b"RCPT")
    await peer.expect(b"DATA")
    await peer.send(b"250 ok\r\n250 ok\r\n354 go ahead\r\n")
    for _ in range(32):
        await peer.send(b"x" * 65536)
    await peer.sleep(1)


def test_async_flood_instead_of_replies_is_a_typed_error() -> None:
    """A server that floods junk instead of reading: a typed error, no hang, bounded reads.

    The body fits in the kernel's buffers, so it counts as sent: the junk where the final
    reply should be gives ``DeliveryUnknown`` (its cause: a reply line over the limit).
    """
    with ScriptedServer(flood_instead_of_reading) as server:
        timeouts = Timeouts(connect=5, greeting=5, command=1.0, data=5)
        options = mailer_options(
            server.port,
            limits=PoolLimits(max_connections=1),
            timeouts=timeouts,
            retry=RetryPolicy.none(),
        )
        big = "y" * 76 + "\n"
        outcomes = send_many("async", items(1, text=big * 12_000), **options)
    (outcome,) = outcomes
    assert isinstance(outcome, DeliveryUnknown)
    assert "longer than" in str(outcome.__cause__)


def test_async_reads_are_not_mmap_sized(smtp_server: RecordingServer) -> None:
    """A plain asyncio transport reads 64 KiB at a time, not 256 KiB (no mmap per read).

    A 256 KiB read buffer is allocated with mmap and given back with mremap and munmap:
    ``strace -c`` showed three extra system calls per read, the dearest part of a read.
    """

    async def main() -> Any:
        conn = AsyncConnection("127.0.0.1", smtp_server.port, tls=NoTLS())
        async with conn:
            assert conn._stream is not None
            return conn._stream.writer.transport.max_size  # type: ignore[attr-defined]

    assert asyncio.run(main()) == 64 * 1024
    assert issubclass(InlineDriver, asyncio.BufferedProtocol)  # reads into one buffer


def test_writes_of_one_loop_turn_are_made_together_at_its_end() -> None:
    """Drivers' writes wait for the end of the loop turn, then go out in the order made.

    Made back to back, they find the server awake (docs/performance.md); one
    callback per turn makes them all.
    """
    made: list[str] = []

    class Driver:
        def __init__(self, name: str) -> None:
            self.name = name

        def _flush(self) -> None:
            made.append(self.name)

    async def main() -> int:
        loop = asyncio.get_running_loop()
        writes = _writes(loop)
        writes.add(Driver("a"))  # type: ignore[arg-type]
        writes.add(Driver("b"))  # type: ignore[arg-type]
        scheduled = len(loop._ready)  # type: ignore[attr-defined]
        made.append("the rest of the turn")
        await asyncio.sleep(0)
        writes.add(Driver("c"))  # type: ignore[arg-type]
        await asyncio.sleep(0)
        return scheduled

    assert asyncio.run(main()) == 1
    assert made == ["the rest of the turn", "a", "b", "c"]


def test_a_write_that_breaks_ends_its_own_run_only() -> None:
    """A bug in one driver's flush is that run's error; the turn's other writes are made."""
    made: list[str] = []
    ended: list[BaseException | None] = []

    class Driver:
        def __init__(self, name: str, broken: bool = False) -> None:
            self.name, self.broken = name, broken

        def _flush(self) -> None:
            if self.broken:
                raise RuntimeError("a bug")
            made.append(self.name)

        def _finish(self, value: object, exc: BaseException | None) -> None:
            ended.append(exc)

    async def main() -> None:
        writes = _writes(asyncio.get_running_loop())
        for driver in (Driver("a"), Driver("b", broken=True), Driver("c")):
            writes.add(driver)  # type: ignore[arg-type]
        await asyncio.sleep(0)

    asyncio.run(main())
    assert made == ["a", "c"]
    assert [type(e) for e in ended] == [RuntimeError]


@pytest.mark.parametrize("kind", KINDS)
def test_more_workers_than_connections_with_an_acquire_timeout(mini: Mini, kind: str) -> None:
    """Six workers, one connection, a 0.5 s acquire timeout, a run of 1 s: all sent once.

    No worker's item is lost or sent twice while it waits behind a long run. (The run
    hands its connection over whenever anybody waits, which saves the waiting workers
    their timeout; that latency is not asserted here.)
    """
    server, script = mini(reply_delay=0.05)
    limits = PoolLimits(max_connections=1, acquire_timeout=0.5)
    options = mailer_options(server.port, limits=limits)
    outcomes = send_many(kind, items(20), concurrency=6, **options)
    assert all(isinstance(o, SendResult) for o in outcomes), outcomes
    assert script.arrivals() == {f"<m{i}@example.org>": 1 for i in range(20)}
