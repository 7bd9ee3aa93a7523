"""Hostile and broken servers: every fault ends in a typed error, through both drivers.

Each server is a few lines of asyncio (the kit's :class:`ScriptedServer` and its ready-made
fault scripts) or Postfix's ``smtp-sink`` with a fault switch. The rules checked (issue 2,
THREATS S1/S9/S11 and the fault matrix of THREATS 3f): a failure before the end-of-data mark
is an ordinary typed error that is safe to retry; after it, before the reply, it is
DeliveryUnknown; a 421 is reported as the server said it; deadlines are per stage and beat a
server that trickles; malformed, oversized or endless replies are a ProtocolError with the
client's memory bounded; a reply nobody asked for ends the session.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable, Iterator

import drivers
import pytest
from drivers import Session, SessionFactory

from mailtransfer import NoTLS, Timeouts
from mailtransfer.errors import (
    ConnectError,
    ConnectTimeout,
    DeliveryUnknown,
    GreetingTimeout,
    MailTransferError,
    ProtocolError,
    ReadTimeout,
    RemoteProtocolError,
    ReplyError,
    ServerDisconnected,
    ServiceUnavailable,
    Timeout,
    WriteTimeout,
)
from mailtransfer.protocol import Stage
from mailtransfer.results import SendResult
from mailtransfer.testing import (
    EsmtpScript,
    ScriptedPeer,
    ScriptedServer,
    disconnect_after,
    disconnect_mid_data,
    endless_continuation,
    greeting_then_close,
    oversized_line,
    reply_421_after,
    silent,
    trickle,
)
from peers import smtp_sink

driver = drivers.driver  # the sync/async parametrised session factory
Scripted = Callable[..., ScriptedServer]

MESSAGE = b"From: a@example.test\r\nTo: b@example.test\r\nSubject: hi\r\n\r\nHello\r\n"
SHORT = Timeouts(connect=5, greeting=0.5, command=0.5, data=0.5)


def options(timeouts: Timeouts = SHORT) -> dict[str, object]:
    """Plaintext loopback, short deadlines."""
    return {"tls": NoTLS(), "timeouts": timeouts, "local_hostname": "client.test"}


def send(conn: Session) -> SendResult:
    """Send MESSAGE to one recipient."""
    return conn.send(MESSAGE, sender="a@example.test", recipients=["b@example.test"])


def fails_with(conn: Session, error: type[BaseException]) -> BaseException:
    """Open and send expecting ``error``; the session must be unusable after it."""

    def attempt() -> None:
        conn.open()
        send(conn)

    with pytest.raises(error) as info:
        attempt()
    assert not conn.is_usable
    return info.value


def received_by(server: ScriptedServer) -> bytes:
    """Every byte the first client sent, after the server stopped."""
    server.stop()
    return bytes(server.peers[0].received)


# --- disconnects ------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["CONNECT", "EHLO", "MAIL", "RCPT", "DATA"])
def test_disconnect_before_the_data_is_server_disconnected(
    driver: SessionFactory, scripted: Scripted, command: str
) -> None:
    """A hang-up without reply before the body: ServerDisconnected (safe to retry)."""
    server = scripted(disconnect_after(command))
    error = fails_with(driver(server.host, server.port, **options()), ServerDisconnected)
    assert not isinstance(error, DeliveryUnknown)
    assert error.transient


@pytest.mark.parametrize("reset", [False, True], ids=["fin", "rst"])
def test_disconnect_after_the_final_dot_is_delivery_unknown(
    driver: SessionFactory, scripted: Scripted, reset: bool
) -> None:
    """The whole message and its dot were sent, then the server vanished: DeliveryUnknown."""

    async def vanish(peer: ScriptedPeer, line: bytes) -> bool:
        if line != b".\r\n":
            return False
        peer.abort() if reset else peer.close()
        return True

    server = scripted(EsmtpScript(intercept=vanish))
    error = fails_with(driver(server.host, server.port, **options()), DeliveryUnknown)
    assert error.stage is Stage.END_OF_DATA
    assert isinstance(error.__cause__, (ServerDisconnected, Timeout))
    assert received_by(server).endswith(b"Hello\r\n.\r\n")


def test_smtp_sink_dropping_after_the_dot_is_delivery_unknown(driver: SessionFactory) -> None:
    """smtp-sink ``-q .`` (disconnect after the final dot, no reply): DeliveryUnknown."""
    with smtp_sink(options=["-q", "."]) as sink:
        fails_with(driver(sink.host, sink.port, **options()), DeliveryUnknown)


def _chunks_until(event: threading.Event) -> Iterator[bytes]:
    """A streamed body: one chunk, then (once the server hung up) more, never the end."""
    yield b"Subject: big\r\n\r\n" + b"x" * 70_000 + b"\r\n"
    event.wait(10)
    for _ in range(20):
        yield b"y" * 70_000 + b"\r\n"


@pytest.mark.parametrize("reset", [False, True], ids=["fin", "rst"])
def test_disconnect_in_the_middle_of_the_data_is_a_typed_error(
    driver: SessionFactory, scripted: Scripted, reset: bool
) -> None:
    """A hang-up in the middle of the body is ServerDisconnected, never DeliveryUnknown.

    The end-of-data mark was never written, so the server cannot have accepted the message.
    """
    gone = threading.Event()

    async def hang_up(peer: ScriptedPeer, line: bytes) -> bool:
        if not line.upper().startswith(b"DATA"):
            return False
        await peer.send(b"354 go ahead\r\n")
        await peer.read_exactly(1000)
        peer.abort() if reset else peer.close()
        await asyncio.sleep(0.05)  # let the FIN or RST leave before the client writes more
        gone.set()
        return True

    server = scripted(EsmtpScript(intercept=hang_up))
    conn = driver(server.host, server.port, **options(Timeouts.all(5)))
    conn.open()
    with pytest.raises(MailTransferError) as info:
        conn.send(_chunks_until(gone), sender="a@example.test", recipients=["b@example.test"])
    assert isinstance(info.value, ServerDisconnected), repr(info.value)
    assert info.value.stage is Stage.DATA_BODY
    assert not conn.is_usable
    assert b"\r\n.\r\n" not in received_by(server)


def test_kit_disconnect_mid_data_with_a_small_body(
    driver: SessionFactory, scripted: Scripted
) -> None:
    """A small body goes out whole with its dot in one write; a hang-up then is DeliveryUnknown."""
    server = scripted(disconnect_mid_data(after_bytes=10))
    fails_with(driver(server.host, server.port, **options()), DeliveryUnknown)


def test_550_in_the_middle_of_the_data_stops_the_body(driver: SessionFactory) -> None:
    """smtp-sink ``-A 0`` answers 550 right after 354: a typed refusal, not DeliveryUnknown."""
    with smtp_sink(options=["-A", "0"]) as sink:
        conn = driver(sink.host, sink.port, **options(Timeouts.all(5)))
        conn.open()
        with pytest.raises(ReplyError) as info:
            send(conn)
    assert info.value.reply.code == 550
    assert not isinstance(info.value, DeliveryUnknown)


# --- 421 ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "stage"),
    [
        ("CONNECT", Stage.GREETING),
        ("EHLO", Stage.EHLO),
        ("MAIL", Stage.MAIL),
        ("RCPT", Stage.RCPT),
        ("DATA", Stage.DATA),
        (".", Stage.END_OF_DATA),
    ],
)
def test_421_is_service_unavailable_and_ends_the_session(
    driver: SessionFactory, scripted: Scripted, command: str, stage: Stage
) -> None:
    """A 421 anywhere (RFC 5321 3.8) is ServiceUnavailable at that stage; never DeliveryUnknown."""
    server = scripted(reply_421_after(command, b"421 4.3.2 Service shutting down\r\n"))
    error = fails_with(driver(server.host, server.port, **options()), ServiceUnavailable)
    assert error.reply.code == 421  # type: ignore[attr-defined]
    assert error.stage is stage
    assert error.transient
    assert error.transcript  # the redacted session transcript comes along


@pytest.mark.parametrize("command", ["CONNECT", "MAIL", "DATA", "."])
def test_smtp_sink_421_is_service_unavailable(driver: SessionFactory, command: str) -> None:
    """smtp-sink ``-Q`` (421 and disconnect) gives the same typed error."""
    with smtp_sink(options=["-Q", command]) as sink:
        error = fails_with(driver(sink.host, sink.port, **options()), ServiceUnavailable)
    assert error.reply.code == 421  # type: ignore[attr-defined]


# --- deadlines ------------------------------------------------------------------------------


@contextlib.contextmanager
def _full_backlog() -> Iterator[int]:
    """A listening port that never accepts and whose backlog is full: SYNs go unanswered."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = int(listener.getsockname()[1])
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    try:
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def test_unanswered_connect_is_a_connect_timeout(driver: SessionFactory) -> None:
    """A SYN that is never answered: ConnectTimeout at the connect stage."""
    with _full_backlog() as port:
        conn = driver("127.0.0.1", port, **options(Timeouts(connect=0.5)))
        with pytest.raises(ConnectTimeout) as info:
            conn.open()
    assert info.value.stage is Stage.CONNECT
    assert info.value.transient


def test_refused_connection_is_a_connect_error(driver: SessionFactory) -> None:
    """Nothing listening: ConnectError (not a timeout), transient."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])  # bound, never listening: connections are refused
        conn = driver("127.0.0.1", port, **options())
        with pytest.raises(ConnectError) as info:
            conn.open()
    assert not isinstance(info.value, Timeout)
    assert info.value.stage is Stage.CONNECT


def test_silent_server_is_a_greeting_timeout(driver: SessionFactory, scripted: Scripted) -> None:
    """A server that accepts and never speaks: GreetingTimeout, the connection closed."""
    server = scripted(silent())
    error = fails_with(driver(server.host, server.port, **options()), GreetingTimeout)
    assert error.stage is Stage.GREETING
    server.stop()  # the script ends only once the client has closed


def test_trickled_greeting_cannot_outlast_its_deadline(
    driver: SessionFactory, scripted: Scripted
) -> None:
    """One byte every 0.2 s keeps each read alive but the greeting deadline still fires (S9)."""
    server = scripted(trickle(interval=0.2))
    fails_with(driver(server.host, server.port, **options()), GreetingTimeout)


@pytest.mark.parametrize(
    ("command", "stage"), [("EHLO", Stage.EHLO), ("MAIL", Stage.MAIL), ("DATA", Stage.DATA)]
)
def test_trickled_reply_is_a_read_timeout_at_its_stage(
    driver: SessionFactory, scripted: Scripted, command: str, stage: Stage
) -> None:
    """A reply trickled past the command deadline: ReadTimeout naming the stage.

    The server does not pipeline, so each command has a deadline (and a stage) of its own.
    """
    script = trickle(b"250 2.0.0 this reply takes its time\r\n", 0.1, after=command)
    script.extensions = tuple(e for e in script.extensions if e != "PIPELINING")
    server = scripted(script)
    error = fails_with(driver(server.host, server.port, **options()), ReadTimeout)
    assert error.stage is stage


def test_slow_reply_after_the_dot_is_delivery_unknown(
    driver: SessionFactory, scripted: Scripted
) -> None:
    """The data deadline passes after the dot: DeliveryUnknown, caused by a timeout."""
    server = scripted(trickle(b"250 2.0.0 queued, eventually\r\n", 0.1, after="."))
    error = fails_with(driver(server.host, server.port, **options()), DeliveryUnknown)
    assert isinstance(error.__cause__, Timeout)


def test_smtp_sink_delay_is_a_read_timeout(driver: SessionFactory) -> None:
    """smtp-sink ``-W MAIL:3`` holds its MAIL reply past the 0.5 s command deadline."""
    with smtp_sink(options=["-W", "MAIL:3"]) as sink:
        error = fails_with(driver(sink.host, sink.port, **options()), ReadTimeout)
    assert error.stage is Stage.MAIL


@contextlib.contextmanager
def _server_that_stops_reading() -> Iterator[tuple[str, int]]:
    """A raw socket server: greets, accepts the envelope, says 354, then never reads again."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    accepted: list[socket.socket] = []

    def serve() -> None:
        conn, _ = listener.accept()
        accepted.append(conn)
        conn.sendall(b"220 stall.test ESMTP\r\n")
        stream = conn.makefile("rb")
        for line in stream:
            verb = line[:4].upper()
            if verb == b"EHLO":
                conn.sendall(b"250-stall.test\r\n250 8BITMIME\r\n")
            elif verb == b"DATA":
                conn.sendall(b"354 go ahead\r\n")
                return  # stop reading: the client's writes must block
            else:
                conn.sendall(b"250 ok\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[:2]
    finally:
        thread.join(10)
        for conn in accepted:
            conn.close()
        listener.close()


def test_server_that_stops_reading_is_a_write_timeout(driver: SessionFactory) -> None:
    """A server that stops reading mid-body: WriteTimeout at the data stage, not a hang."""
    body = b"Subject: big\r\n\r\n" + (b"z" * 998 + b"\r\n") * 8000  # 8 MB, far over any buffer
    with _server_that_stops_reading() as (host, port):
        conn = driver(host, port, **options(Timeouts(connect=5, greeting=5, command=0.5)))
        conn.open()
        with pytest.raises(WriteTimeout) as info:
            conn.send(iter([body]), sender="a@example.test", recipients=["b@example.test"])
        assert not conn.is_usable
    assert info.value.stage is Stage.DATA_BODY


# --- malformed, oversized and endless replies (S9) -----------------------------------------


def _greets_with(data: bytes, *, keep_sending: bytes = b"") -> Callable[[ScriptedPeer], object]:
    """A script that sends ``data`` as its greeting, then ``keep_sending`` until the client goes."""

    async def script(peer: ScriptedPeer) -> None:
        await peer.send(data)
        while keep_sending and not peer.closed:
            await peer.send(keep_sending)
            await asyncio.sleep(0)
        await peer.wait_closed(timeout=10)

    return script


MALFORMED = {
    "letters-for-code": b"2x0 hello\r\n",
    "two-digit-code": b"22 hello\r\n",
    "four-digit-code": b"2200 hello\r\n",
    "code-out-of-range": b"620 hello\r\n",
    "bad-separator": b"220_hello\r\n",
    "mixed-multiline-codes": b"220-first\r\n250 second\r\n",
    "empty-line": b"\r\n",
    "nul-in-code": b"2\x000 hello\r\n",
}


@pytest.mark.parametrize("greeting", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_greeting_is_a_protocol_error(
    driver: SessionFactory, scripted: Scripted, greeting: bytes
) -> None:
    """A reply that breaks RFC 5321 4.2 is RemoteProtocolError, the connection closed."""
    server = scripted(_greets_with(greeting))
    error = fails_with(driver(server.host, server.port, **options()), RemoteProtocolError)
    assert error.stage is Stage.GREETING


@pytest.mark.parametrize("reply", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_reply_to_mail_is_a_protocol_error(
    driver: SessionFactory, scripted: Scripted, reply: bytes
) -> None:
    """The same replies in the middle of a transaction: RemoteProtocolError, session over."""

    async def answer(peer: ScriptedPeer, line: bytes) -> bool:
        if not line.upper().startswith(b"MAIL"):
            return False
        await peer.send(reply)
        await peer.wait_closed(timeout=10)
        return True

    server = scripted(EsmtpScript(extensions=("8BITMIME",), intercept=answer))
    error = fails_with(driver(server.host, server.port, **options()), ProtocolError)
    assert error.stage is Stage.MAIL
    assert any(line.startswith("C: MAIL FROM:") for line in error.transcript)


@pytest.mark.parametrize("after", [None, "EHLO", "MAIL"])
def test_overlong_reply_line_is_a_protocol_error(
    driver: SessionFactory, scripted: Scripted, after: str | None
) -> None:
    """An 8 KiB reply line (RFC 5321 allows 512) is refused, not buffered for ever."""
    server = scripted(oversized_line(8192, after=after))
    error = fails_with(driver(server.host, server.port, **options()), RemoteProtocolError)
    assert "max_line_length" in str(error)


def test_line_without_end_is_refused_with_bounded_memory(
    driver: SessionFactory, scripted: Scripted
) -> None:
    """A greeting that never ends its line: RemoteProtocolError after a bounded amount of input."""
    server = scripted(_greets_with(b"220 ", keep_sending=b"x" * 4096))
    error = fails_with(
        driver(server.host, server.port, **options(Timeouts.all(10))), RemoteProtocolError
    )
    assert "max_line_length=4096" in str(error)  # refused at the bound, not at the deadline


@pytest.mark.parametrize("after", [None, "EHLO"])
def test_endless_continuation_is_refused_with_bounded_memory(
    driver: SessionFactory, scripted: Scripted, after: str | None
) -> None:
    """``250-`` lines for ever: RemoteProtocolError (too many lines), never a hang."""
    server = scripted(endless_continuation(after=after))
    error = fails_with(
        driver(server.host, server.port, **options(Timeouts.all(10))), RemoteProtocolError
    )
    assert "max_lines=512" in str(error)


def test_huge_but_well_formed_ehlo_reply_is_refused(
    driver: SessionFactory, scripted: Scripted
) -> None:
    """An EHLO reply of 10,000 valid lines is still over the line-count bound."""

    async def answer(peer: ScriptedPeer, line: bytes) -> bool:
        if not line.upper().startswith(b"EHLO"):
            return False
        await peer.send(b"250-X-PADDING\r\n" * 10_000 + b"250 8BITMIME\r\n")
        await peer.wait_closed(timeout=10)
        return True

    server = scripted(EsmtpScript(intercept=answer))
    error = fails_with(driver(server.host, server.port, **options()), RemoteProtocolError)
    assert "max_lines" in str(error)
    assert error.stage is Stage.EHLO


def test_reply_text_that_is_not_utf8_is_accepted(
    driver: SessionFactory, scripted: Scripted
) -> None:
    """Undecodable bytes in reply text are not a protocol error; the text is kept, replaced."""
    server = scripted(greeting_then_close(b"220 caf\xe9 \xff\xfe ESMTP\r\n"))
    conn = driver(server.host, server.port, **options())
    with pytest.raises(ServerDisconnected):
        conn.open()  # the script closes after the greeting, so EHLO meets the end
    assert any("caf" in line for line in conn.transcript())


# --- replies nobody asked for (S11) ---------------------------------------------------------


def test_extra_reply_with_the_greeting_is_refused(
    driver: SessionFactory, scripted: Scripted
) -> None:
    """Greeting plus a second, unsolicited reply before EHLO: the session is not trusted."""
    server = scripted(_greets_with(b"220 hello\r\n250 unsolicited\r\n"))
    fails_with(driver(server.host, server.port, **options()), RemoteProtocolError)


def test_two_replies_to_one_command_end_the_session(
    driver: SessionFactory, scripted: Scripted
) -> None:
    """A NOOP answered twice: the second reply is unsolicited, and the session ends."""

    async def answer_twice(peer: ScriptedPeer, line: bytes) -> bool:
        if not line.upper().startswith(b"NOOP"):
            return False
        await peer.send(b"250 2.0.0 Ok\r\n250 2.0.0 Ok again\r\n")
        return True

    server = scripted(EsmtpScript(intercept=answer_twice))
    conn = driver(server.host, server.port, **options())
    conn.open()
    assert conn.noop().code == 250  # both replies came in one segment; the first answers
    with pytest.raises(RemoteProtocolError, match="unsolicited"):
        send(conn)
    assert not conn.is_usable


def test_reply_sent_while_the_client_was_idle_ends_the_session(
    driver: SessionFactory, scripted: Scripted
) -> None:
    """A reply that arrives between commands is detected before the next command's reply."""
    ready = threading.Event()

    async def chatter(peer: ScriptedPeer, line: bytes) -> bool:
        if not line.upper().startswith(b"NOOP"):
            return False
        await peer.send(b"250 2.0.0 Ok\r\n")
        await peer.send(b"250 2.0.0 I am still here\r\n")
        ready.set()
        return True

    server = scripted(EsmtpScript(intercept=chatter))
    conn = driver(server.host, server.port, **options())
    conn.open()
    assert conn.noop().code == 250
    assert ready.wait(5)
    with pytest.raises(RemoteProtocolError, match="unsolicited"):
        conn.noop()
    assert not conn.is_usable


@pytest.mark.parametrize("operation", ["read", "start_tls"])
def test_async_stream_with_a_spent_deadline_fails_cleanly(
    scripted: Scripted, operation: str
) -> None:
    """A deadline already spent when an operation starts: a typed Timeout at once.

    Regression: the asyncio stream built the read (or handshake) coroutine before checking
    the deadline, so a reply finishing right at its deadline left a never-awaited coroutine
    behind (a RuntimeWarning, an error under this suite's warning filter).
    """
    from mailtransfer._async._stream import AsyncStream
    from mailtransfer.tls import create_ssl_context

    server = scripted(silent())
    operations = {
        "read": lambda stream: stream.read(),
        "start_tls": lambda stream: stream.start_tls(create_ssl_context(), "localhost"),
    }

    async def main() -> None:
        stream = await AsyncStream.connect(server.host, server.port, timeout=5)
        try:
            stream.set_deadline(0.0, Stage.MAIL)
            with pytest.raises(Timeout):
                await operations[operation](stream)
        finally:
            await stream.close()

    asyncio.run(main())
