"""A TCP server whose every byte a test scripts: for hostile and faulty SMTP peers.

Strategy: one asyncio loop in a background thread accepts connections on loopback and runs the
test's ``async def script(peer)`` once per connection. `ScriptedPeer` gives the script
line-level reads with timeouts, raw writes, a server-side TLS upgrade, and both kinds of
disconnect (FIN and RST). Whatever a script raises is kept and raised again in the test when
the server stops, so a script that went wrong cannot let a test pass. `EsmtpScript` is a
small correct ESMTP server (with PIPELINING and CHUNKING, which aiosmtpd lacks) that the
ready-made fault scripts below bend at one chosen command.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import socket
import ssl
import struct
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from ._recording import ReceivedMessage, _LoopThread

__all__ = ["DEFAULT_TIMEOUT", "Script", "ScriptError", "ScriptedPeer", "ScriptedServer"]

_T = TypeVar("_T")

DEFAULT_TIMEOUT = 10.0
"""Seconds a `ScriptedPeer` read waits for the client before failing the script."""


class ScriptError(AssertionError):
    """The client did not do what the script expected (raised inside the script)."""


class _Connection(asyncio.Protocol):
    """The asyncio side of one accepted connection."""

    def __init__(self, server: ScriptedServer) -> None:
        self.server = server
        self.buffer = bytearray()
        self.received = bytearray()
        self.eof = False
        self.tls = False
        self.transport: asyncio.Transport | None = None
        self.raw_transport: asyncio.Transport | None = None
        self._data_waiter: asyncio.Future[None] | None = None
        self._drain_waiter: asyncio.Future[None] | None = None
        self._paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = self.raw_transport = transport
        self.tls = transport.get_extra_info("ssl_object") is not None
        self.server._connected(self)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self.received += data
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        # Keep a plain socket half-open so the script may still reply; TLS cannot do that.
        return not self.tls

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self._wake()
        self.resume_writing()

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _wake(self) -> None:
        waiter, self._data_waiter = self._data_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait_data(self) -> None:
        self._data_waiter = asyncio.get_running_loop().create_future()
        await self._data_waiter

    async def drain(self) -> None:
        if self._paused and not self.eof:
            self._drain_waiter = asyncio.get_running_loop().create_future()
            await self._drain_waiter


class ScriptedPeer:
    """The script's handle on one client connection.

    Attributes:
        index: the connection's number on its server, from 0.
        received: every byte received from the client so far (after TLS: the plaintext).
    """

    def __init__(self, connection: _Connection, index: int) -> None:
        self._conn = connection
        self.index = index
        self.received: bytearray = connection.received

    @property
    def address(self) -> tuple[str, int]:
        """The client's ``(host, port)``."""
        assert self._conn.raw_transport is not None
        peer = self._conn.raw_transport.get_extra_info("peername")
        return (str(peer[0]), int(peer[1]))

    @property
    def tls(self) -> bool:
        """Whether the connection is encrypted (implicit TLS or after `start_tls`)."""
        return self._conn.tls

    @property
    def closed(self) -> bool:
        """Whether the connection is closing or gone, on either side."""
        transport = self._conn.transport
        return transport is None or transport.is_closing() or self._conn.eof

    async def send(self, data: bytes) -> None:
        """Write ``data`` as one write, and wait while the client is not reading.

        Bytes written after the connection closed are dropped silently, as a real server
        would; check `closed` in loops.
        """
        transport = self._conn.transport
        if transport is None or transport.is_closing():
            return
        transport.write(data)
        await self._conn.drain()

    async def _within(self, timeout: float | None, coro: Coroutine[Any, Any, _T], what: str) -> _T:
        try:
            return await asyncio.wait_for(coro, timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(
                f"the client sent no {what} within {timeout} s "
                f"({len(self._conn.buffer)} byte(s) buffered)"
            ) from None

    async def readline(self, timeout: float | None = DEFAULT_TIMEOUT) -> bytes:
        """Read one line, up to and including ``\\n``.

        Args:
            timeout: seconds to wait; ``None`` waits for ever.

        Returns:
            The line; at end of stream whatever is left (``b""`` when nothing is).

        Raises:
            TimeoutError: no complete line arrived in time.
        """
        return await self._within(timeout, self._readline(), "complete line")

    async def _readline(self) -> bytes:
        conn = self._conn
        while True:
            end = conn.buffer.find(b"\n")
            if end >= 0:
                line = bytes(conn.buffer[: end + 1])
                del conn.buffer[: end + 1]
                return line
            if conn.eof:
                line = bytes(conn.buffer)
                conn.buffer.clear()
                return line
            await conn.wait_data()

    async def expect(self, prefix: bytes, timeout: float | None = DEFAULT_TIMEOUT) -> bytes:
        """Read a line; fail the script unless it starts with ``prefix`` (ASCII, any case).

        Returns:
            The whole line.

        Raises:
            ScriptError: the line does not start with ``prefix``, or the client closed.
            TimeoutError: no complete line arrived in time.
        """
        line = await self.readline(timeout)
        if not line.upper().startswith(prefix.upper()):
            got = repr(line[:200]) if line else "end of stream"
            raise ScriptError(f"expected a line starting with {prefix!r}, got {got}")
        return line

    async def read_until_dot(self, timeout: float | None = DEFAULT_TIMEOUT) -> bytes:
        """Read a ``DATA`` body up to the end-of-data mark ``CRLF . CRLF``.

        Only a ``.`` line after a CRLF-terminated line (or first) ends the data, as RFC 5321
        section 4.1.1.4 demands: ``LF . LF`` and ``LF . CRLF`` do not (SMTP smuggling).

        Args:
            timeout: seconds for the whole body; ``None`` waits for ever.

        Returns:
            The body exactly as sent (still dot-stuffed), without the final ``.\\r\\n``.

        Raises:
            ScriptError: the client closed before the end-of-data mark.
            TimeoutError: the mark did not arrive in time.
        """
        return await self._within(timeout, self._read_until_dot(), "end-of-data mark")

    async def _read_until_dot(self) -> bytes:
        body = bytearray()
        after_crlf = True
        while True:
            line = await self._readline()
            if not line.endswith(b"\n"):
                raise ScriptError(
                    f"the client closed after {len(body) + len(line)} byte(s) of data, "
                    "before the end-of-data mark"
                )
            if after_crlf and line == b".\r\n":
                return bytes(body)
            body += line
            after_crlf = line.endswith(b"\r\n")

    async def read_exactly(self, count: int, timeout: float | None = DEFAULT_TIMEOUT) -> bytes:
        """Read exactly ``count`` bytes, e.g. a ``BDAT`` chunk (RFC 3030).

        Raises:
            ScriptError: the client closed first.
            TimeoutError: the bytes did not arrive in time.
        """
        return await self._within(timeout, self._read_exactly(count), f"{count} byte(s)")

    async def _read_exactly(self, count: int) -> bytes:
        conn = self._conn
        while len(conn.buffer) < count:
            if conn.eof:
                raise ScriptError(f"the client closed after {len(conn.buffer)} of {count} byte(s)")
            await conn.wait_data()
        chunk = bytes(conn.buffer[:count])
        del conn.buffer[:count]
        return chunk

    async def start_tls(self, context: ssl.SSLContext, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Do the server side of a TLS handshake on this connection (after a ``220``).

        Plaintext the client sent before the handshake is discarded (it stays in
        `received`), as RFC 3207 section 4.2 tells a server to.

        Raises:
            ssl.SSLError: the handshake failed, e.g. the client rejected the certificate.
            ConnectionError: the client went away during the handshake.
        """
        conn = self._conn
        assert conn.transport is not None
        conn.buffer.clear()
        loop = asyncio.get_running_loop()
        # No await before start_tls: the client's ClientHello must reach the TLS layer,
        # not our plaintext buffer.
        new_transport = await loop.start_tls(
            conn.transport, conn, context, server_side=True, ssl_handshake_timeout=timeout
        )
        if new_transport is None:
            raise ConnectionResetError("the client closed during the TLS handshake")
        conn.transport = new_transport
        conn.tls = True

    def close(self) -> None:
        """Close the connection gracefully (FIN, or TLS close_notify then FIN)."""
        if self._conn.transport is not None:
            self._conn.transport.close()

    def abort(self) -> None:
        """Reset the connection: the client sees ``ECONNRESET`` (an RST, via SO_LINGER 0)."""
        raw = self._conn.raw_transport
        if raw is None:
            return
        sock = raw.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        raw.abort()

    async def sleep(self, seconds: float) -> None:
        """Pause the script."""
        await asyncio.sleep(seconds)

    async def wait_closed(self, timeout: float | None = None) -> None:
        """Discard input until the client closes the connection.

        Raises:
            TimeoutError: the client was still connected after ``timeout`` seconds.
        """
        await self._within(timeout, self._wait_closed(), "end of stream")

    async def _wait_closed(self) -> None:
        conn = self._conn
        while not conn.eof:
            conn.buffer.clear()
            await conn.wait_data()
        conn.buffer.clear()

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("tls" if self.tls else "open")
        return f"<ScriptedPeer #{self.index} {state} received={len(self.received)}>"


Script = Callable[[ScriptedPeer], Awaitable[None]]
"""What a `ScriptedServer` runs for each connection: ``async def script(peer)``."""


class ScriptedServer:
    """A TCP server on loopback that runs ``script`` for every connection.

    Use it as a context manager. When it stops, it waits up to ``shutdown_timeout`` seconds
    for scripts that are still running (a script blocked on a client that has gone sees the
    end of the stream at once), cancels the rest, and then raises the first exception any
    script raised.

    Args:
        script: ``async def script(peer: ScriptedPeer) -> None``.
        host: the address to listen on (any of 127.0.0.0/8 works on Linux).
        port: the port; 0 picks a free one.
        implicit_tls: a server context to wrap every connection in TLS at once.
        shutdown_timeout: how long stopping waits for running scripts.

    Example:
        >>> async def script(peer: ScriptedPeer) -> None:  # doctest: +SKIP
        ...     await peer.send(b"220 hi\\r\\n")
        ...     await peer.expect(b"EHLO")
        ...     await peer.send(b"421 4.3.2 Bye\\r\\n")
        >>> with ScriptedServer(script) as server:  # doctest: +SKIP
        ...     run_your_client("127.0.0.1", server.port)
    """

    def __init__(
        self,
        script: Script,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        implicit_tls: ssl.SSLContext | None = None,
        shutdown_timeout: float = 2.0,
    ) -> None:
        self.script = script
        self.host = host
        self._requested_port = port
        self._implicit_tls = implicit_tls
        self._shutdown_timeout = shutdown_timeout
        self._port: int | None = None
        self._loop_thread: _LoopThread | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._connections: list[_Connection] = []
        self._active = 0
        self._cond = threading.Condition()
        self.peers: list[ScriptedPeer] = []
        """One `ScriptedPeer` per accepted connection, in order."""
        self.errors: list[BaseException] = []
        """Exceptions raised by scripts so far (raised again when the server stops)."""
        self.max_concurrent = 0
        """The most scripts that ran at the same time."""

    @property
    def port(self) -> int:
        """The port the server listens on.

        Raises:
            RuntimeError: the server is not running.
        """
        if self._port is None:
            raise RuntimeError("the ScriptedServer is not running: use it in a with block")
        return self._port

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)``, ready for ``socket.create_connection``."""
        return (self.host, self.port)

    @property
    def connections(self) -> int:
        """How many connections have been accepted."""
        return len(self.peers)

    def wait_for_connections(self, count: int, timeout: float = 5.0) -> None:
        """Block until at least ``count`` connections were accepted.

        Raises:
            TimeoutError: fewer arrived in time.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.peers) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"expected {count} connection(s) within {timeout} s, got {len(self.peers)}"
                    )
                self._cond.wait(remaining)

    def _connected(self, conn: _Connection) -> None:
        with self._cond:
            peer = ScriptedPeer(conn, len(self.peers))
            self.peers.append(peer)
            self._connections.append(conn)
            self._cond.notify_all()
        task = asyncio.get_running_loop().create_task(self._run(peer, conn))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, peer: ScriptedPeer, conn: _Connection) -> None:
        self._active += 1
        self.max_concurrent = max(self.max_concurrent, self._active)
        try:
            await self.script(peer)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # every failure must reach the test
            if hasattr(exc, "add_note"):
                exc.add_note(f"raised by the script of connection #{peer.index}")
            self.errors.append(exc)
        finally:
            self._active -= 1
            if conn.transport is not None and not conn.transport.is_closing():
                conn.transport.close()

    def start(self) -> None:
        """Start listening (the ``with`` statement calls this).

        Raises:
            RuntimeError: the server is already running.
            OSError: the address cannot be bound.
        """
        if self._loop_thread is not None:
            raise RuntimeError("the ScriptedServer is already running")
        loop_thread = _LoopThread(f"ScriptedServer:{self.host}")
        loop_thread.start()
        try:
            self._server = loop_thread.run(self._listen(loop_thread.loop))
        except BaseException:
            loop_thread.stop()
            raise
        self._loop_thread = loop_thread
        self._port = int(self._server.sockets[0].getsockname()[1])

    async def _listen(self, loop: asyncio.AbstractEventLoop) -> asyncio.Server:
        return await loop.create_server(
            lambda: _Connection(self), self.host, self._requested_port, ssl=self._implicit_tls
        )

    async def _shutdown(self) -> None:
        assert self._server is not None
        # A few loop turns first, so connections the kernel has already completed (a client
        # that connected and left just before the test ended) are accepted and served.
        for _ in range(5):
            await asyncio.sleep(0)
        self._server.close()
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=self._shutdown_timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for conn in self._connections:
            for transport in (conn.transport, conn.raw_transport):
                if transport is not None:
                    transport.abort()
        for _ in range(3):
            await asyncio.sleep(0)
        await asyncio.wait_for(self._server.wait_closed(), 5.0)

    def stop(self) -> None:
        """Stop the server, then raise the first exception a script raised.

        Raises:
            BaseException: whatever a script raised (the others stay in `errors`).
        """
        loop_thread, self._loop_thread = self._loop_thread, None
        if loop_thread is None:
            return
        try:
            loop_thread.run(self._shutdown(), timeout=self._shutdown_timeout + 10.0)
        finally:
            loop_thread.stop()
            self._port = None
        if self.errors:
            raise self.errors[0]

    def __enter__(self) -> ScriptedServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = f"{self.host}:{self._port}" if self._port is not None else "stopped"
        return f"<ScriptedServer {where} connections={self.connections} errors={len(self.errors)}>"


# --- A minimal correct ESMTP server, and fault scripts built on it ------------------------

DEFAULT_EXTENSIONS: tuple[str, ...] = (
    "PIPELINING",
    "8BITMIME",
    "SMTPUTF8",
    "ENHANCEDSTATUSCODES",
    "CHUNKING",
    "DSN",
    "SIZE 33554432",
)
"""The EHLO keywords `basic_ok_server` advertises by default."""

Intercept = Callable[[ScriptedPeer, bytes], Awaitable[bool]]
"""``async def intercept(peer, line) -> bool``: return True when it handled ``line`` itself."""

_CRLF = b"\r\n"


def _unstuff(body: bytes) -> bytes:
    # RFC 5321 section 4.5.2: drop the first "." of every line that starts with one.
    return _CRLF.join(line[1:] if line.startswith(b".") else line for line in body.split(_CRLF))


def _closing(peer: ScriptedPeer) -> bool:
    transport = peer._conn.transport
    return transport is None or transport.is_closing()


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _path(argument: bytes, keyword: bytes) -> tuple[str, tuple[str, ...]] | None:
    """Split ``FROM:<a@example.test> BODY=8BITMIME`` into the address and the parameters."""
    if argument[: len(keyword)].upper() != keyword:
        return None
    rest = argument[len(keyword) :].strip()
    if rest.startswith(b"<"):
        end = rest.find(b">")
        if end < 0:
            return None
        address, params = rest[1:end], rest[end + 1 :]
    else:
        address, _, params = rest.partition(b" ")
    return _text(address), tuple(_text(p) for p in params.split())


class _Session:
    def __init__(self) -> None:
        self.helo: str | None = None
        self.auth_user: str | None = None
        self.reset()

    def reset(self) -> None:
        self.mail_from: str | None = None
        self.mail_options: tuple[str, ...] = ()
        self.rcpt_tos: list[str] = []
        self.rcpt_options: list[tuple[str, ...]] = []
        self.chunks = bytearray()


class EsmtpScript:
    """A small, correct ESMTP (or LMTP) server script that accepts every message.

    It handles EHLO/HELO/LHLO, STARTTLS, AUTH PLAIN and LOGIN (any credentials), MAIL, RCPT,
    DATA, BDAT (RFC 3030), RSET, NOOP, VRFY and QUIT, answers pipelined commands in order, and
    records each message in `messages`. An ``intercept`` hook sees every line first and
    can take over, which is how the ready-made fault scripts are built.

    Args:
        extensions: the EHLO keywords to advertise (STARTTLS is added when ``tls`` is set).
        hostname: the name in the greeting and the EHLO reply.
        tls: a server context; enables STARTTLS.
        lmtp: speak LMTP (RFC 2033): LHLO, and one reply per recipient after the data.
        intercept: ``async def intercept(peer, line) -> bool``, called with ``b""`` when the
            client connects (before the greeting), with every command line, and with
            ``b".\\r\\n"`` at the end of the message data (after the final ``.`` or the
            ``BDAT LAST`` chunk, before the reply). Return True if it handled the line; the
            script ends once the connection is closed.

    Attributes:
        messages: every message accepted, on any connection.
    """

    def __init__(
        self,
        *,
        extensions: tuple[str, ...] | list[str] = DEFAULT_EXTENSIONS,
        hostname: str = "scripted.test",
        tls: ssl.SSLContext | None = None,
        lmtp: bool = False,
        intercept: Intercept | None = None,
    ) -> None:
        self.extensions = tuple(extensions)
        self.hostname = hostname
        self.tls = tls
        self.lmtp = lmtp
        self.intercept = intercept
        self.messages: list[ReceivedMessage] = []
        self._enhanced = any(e.upper() == "ENHANCEDSTATUSCODES" for e in self.extensions)
        hello = {b"LHLO": self._ehlo} if lmtp else {b"EHLO": self._ehlo, b"HELO": self._helo}
        self._commands: dict[bytes, Callable[[ScriptedPeer, bytes, _Session], Awaitable[bool]]] = {
            **hello,
            b"STARTTLS": self._starttls,
            b"AUTH": self._auth,
            b"MAIL": self._mail,
            b"RCPT": self._rcpt,
            b"DATA": self._data,
            b"BDAT": self._bdat,
            b"RSET": self._simple,
            b"NOOP": self._simple,
            b"VRFY": self._simple,
            b"QUIT": self._quit,
        }

    def _reply(self, code: int, enhanced: str, text: str) -> bytes:
        # RFC 2034 section 3: enhanced codes only when ENHANCEDSTATUSCODES was advertised.
        status = f" {enhanced}" if self._enhanced and enhanced else ""
        return f"{code}{status} {text}\r\n".encode()

    async def __call__(self, peer: ScriptedPeer) -> None:
        """Serve one connection until the client quits or goes away."""
        if self.intercept is None or not await self.intercept(peer, b""):
            await peer.send(f"220 {self.hostname} ESMTP scripted\r\n".encode())
        session = _Session()
        # Stop when our side closed, not at the client's EOF: a client that half-closes
        # after pipelining its last commands still gets its replies.
        while not _closing(peer):
            line = await peer.readline(timeout=None)
            if not line:
                return
            if self.intercept is not None and await self.intercept(peer, line):
                continue
            verb, _, argument = line.rstrip(b"\r\n").partition(b" ")
            handler = self._commands.get(verb.upper())
            if handler is None:
                await peer.send(self._reply(500, "5.5.2", "Error: command not recognized"))
            elif not await handler(peer, argument.strip(), session):
                return

    async def _ehlo(self, peer: ScriptedPeer, argument: bytes, session: _Session) -> bool:
        session.reset()
        session.helo = _text(argument)
        names = [self.hostname]
        names += [e for e in self.extensions if not (peer.tls and e.upper() == "STARTTLS")]
        if self.tls is not None and not peer.tls and "STARTTLS" not in names:
            names.append("STARTTLS")
        lines = [f"250-{n}\r\n" for n in names[:-1]] + [f"250 {names[-1]}\r\n"]
        await peer.send("".join(lines).encode())
        return True

    async def _helo(self, peer: ScriptedPeer, argument: bytes, session: _Session) -> bool:
        session.reset()
        session.helo = _text(argument)
        await peer.send(f"250 {self.hostname}\r\n".encode())
        return True

    async def _starttls(self, peer: ScriptedPeer, argument: bytes, session: _Session) -> bool:
        if self.tls is None or peer.tls:
            await peer.send(self._reply(454, "4.7.0", "TLS not available"))
            return True
        await peer.send(self._reply(220, "2.0.0", "Ready to start TLS"))
        try:
            await peer.start_tls(self.tls)
        except (ssl.SSLError, OSError):
            return False  # the client refused the handshake: its decision, not a script error
        # RFC 3207 section 4.2: forget everything learnt before TLS.
        session.__init__()  # type: ignore[misc]
        return True

    async def _auth(self, peer: ScriptedPeer, argument: bytes, session: _Session) -> bool:
        mechanism, _, initial = argument.partition(b" ")
        prompts = {b"PLAIN": [b""], b"LOGIN": [b"VXNlcm5hbWU6", b"UGFzc3dvcmQ6"]}.get(
            mechanism.upper()
        )
        if prompts is None:
            await peer.send(self._reply(504, "5.5.4", "Unrecognized authentication type"))
            return True
        answers = [initial] if initial else []
        for prompt in prompts[len(answers) :]:
            await peer.send(b"334 " + prompt + _CRLF)
            answer = await peer.readline(timeout=None)
            if not answer:
                return False
            answers.append(answer.strip())
        try:
            if b"*" in answers:
                raise ValueError("cancelled")  # RFC 4954 section 4
            decoded = [base64.b64decode(a, validate=True) for a in answers]
            user = decoded[0].split(b"\0")[1] if len(prompts) == 1 else decoded[0]
        except (binascii.Error, ValueError, IndexError):
            await peer.send(self._reply(501, "5.5.2", "Cannot decode response"))
            return True
        session.auth_user = _text(user)
        await peer.send(self._reply(235, "2.7.0", "Authentication successful"))
        return True

    async def _mail(self, peer: ScriptedPeer, argument: bytes, session: _Session) -> bool:
        parsed = _path(argument, b"FROM:")
        if parsed is None:
            await peer.send(self._reply(501, "5.5.4", "Syntax: MAIL FROM:<address>"))
        elif session.mail_from is not None:
            await peer.send(self._reply(503, "5.5.1", "Error: nested MAIL command"))
        else:
            session.mail_from, session.mail_options = parsed
            await peer.send(self._reply(250, "2.1.0", "Ok"))
        return True

    async def _rcpt(self, peer: ScriptedPeer, argument: bytes, session: _Session) -> bool:
        parsed = _path(argument, b"TO:")
        if session.mail_from is None:
            await peer.send(self._reply(503, "5.5.1", "Error: need MAIL command"))
        elif parsed is None:
            await peer.send(self._reply(501, "5.5.4", "Syntax: RCPT TO:<address>"))
        else:
            session.rcpt_tos.append(parsed[0])
            session.rcpt_options.append(parsed[1])
            await peer.send(self._reply(250, "2.1.5", "Ok"))
        return True

    async def _data(self, peer: ScriptedPeer, argument: bytes, session: _Session) -> bool:
        if not session.rcpt_tos:
            await peer.send(self._reply(503, "5.5.1", "Error: need RCPT command"))
            return True
        await peer.send(b"354 End data with <CR><LF>.<CR><LF>\r\n")
        try:
            body = await peer.read_until_dot(timeout=None)
        except ScriptError:
            return False  # the client went away mid-data
        return await self._finish(peer, session, _unstuff(body))

    async def _bdat(self, peer: ScriptedPeer, argument: bytes, session: _Session) -> bool:
        parts = argument.split()
        if not parts or not parts[0].isdigit() or len(parts) > 2:
            await peer.send(self._reply(501, "5.5.4", "Syntax: BDAT size [LAST]"))
            return True
        size = int(parts[0])
        try:
            chunk = await peer.read_exactly(size, timeout=None)
        except ScriptError:
            return False
        if not session.rcpt_tos:
            # RFC 3030 section 2: the chunk is read (to stay in step) and then refused.
            await peer.send(self._reply(503, "5.5.1", "Error: need RCPT command"))
            return True
        session.chunks += chunk
        if len(parts) == 2 and parts[1].upper() == b"LAST":
            return await self._finish(peer, session, bytes(session.chunks))
        await peer.send(self._reply(250, "2.0.0", f"{size} octets received"))
        return True

    async def _finish(self, peer: ScriptedPeer, session: _Session, data: bytes) -> bool:
        if self.intercept is not None and await self.intercept(peer, b".\r\n"):
            session.reset()
            return not peer.closed
        assert session.mail_from is not None
        self.messages.append(
            ReceivedMessage(
                mail_from=session.mail_from,
                rcpt_tos=tuple(session.rcpt_tos),
                data=data,
                mail_options=session.mail_options,
                rcpt_options=tuple(session.rcpt_options),
                peer=peer.address,
                tls=peer.tls,
                auth_user=session.auth_user,
                helo=session.helo,
            )
        )
        if self.lmtp:  # RFC 2033 section 4.2: one reply per accepted recipient
            reply = b"".join(
                self._reply(250, "2.1.5", f"<{rcpt}> delivered") for rcpt in session.rcpt_tos
            )
        else:
            reply = self._reply(250, "2.0.0", "Ok: queued")
        session.reset()
        await peer.send(reply)
        return True

    async def _simple(self, peer: ScriptedPeer, argument: bytes, session: _Session) -> bool:
        await peer.send(self._reply(250, "2.0.0", "Ok"))
        return True

    async def _quit(self, peer: ScriptedPeer, argument: bytes, session: _Session) -> bool:
        await peer.send(self._reply(221, "2.0.0", "Bye"))
        peer.close()
        return False


def basic_ok_server(
    *,
    extensions: tuple[str, ...] | list[str] = DEFAULT_EXTENSIONS,
    hostname: str = "scripted.test",
    tls: ssl.SSLContext | None = None,
    lmtp: bool = False,
) -> EsmtpScript:
    """A correct ESMTP server that accepts everything; fast, with PIPELINING and CHUNKING.

    Returns:
        An `EsmtpScript`; its ``messages`` list fills as mail arrives.
    """
    return EsmtpScript(extensions=extensions, hostname=hostname, tls=tls, lmtp=lmtp)


def _matcher(command: bytes | str | None) -> Callable[[bytes], bool]:
    verb = command.encode("ascii") if isinstance(command, str) else command or b"CONNECT"
    verb = verb.strip().upper()
    if verb == b"CONNECT":
        return lambda line: line == b""
    if verb == b".":
        return lambda line: line == b".\r\n"
    return lambda line: line.rstrip(b"\r\n").partition(b" ")[0].upper() == verb


def _at(
    command: bytes | str | None,
    action: Callable[[ScriptedPeer, bytes], Awaitable[None]],
    extensions: tuple[str, ...] = DEFAULT_EXTENSIONS,
) -> EsmtpScript:
    """An `EsmtpScript` that runs ``action`` instead of its reply to ``command``."""
    matches = _matcher(command)

    async def intercept(peer: ScriptedPeer, line: bytes) -> bool:
        if not matches(line):
            return False
        await action(peer, line)
        return True

    return EsmtpScript(extensions=extensions, intercept=intercept)


def greeting_then_close(greeting: bytes = b"220 scripted.test ESMTP\r\n") -> Script:
    """Send ``greeting`` (e.g. a ``421``) and close the connection."""

    async def script(peer: ScriptedPeer) -> None:
        await peer.send(greeting)
        peer.close()

    return script


def silent() -> Script:
    """Accept the connection and never say anything, until the client gives up."""

    async def script(peer: ScriptedPeer) -> None:
        await peer.wait_closed()

    return script


def trickle(
    reply: bytes | None = None, interval: float = 0.5, *, after: bytes | str | None = None
) -> Script:
    """Send a reply one byte every ``interval`` seconds (a slowloris server).

    Args:
        reply: the bytes to trickle; by default a greeting, or ``250 ok`` after a command.
        interval: seconds between bytes.
        after: the command whose reply trickles; ``None`` for the greeting.
    """
    data = reply or (b"220 scripted.test ESMTP\r\n" if after is None else b"250 2.0.0 ok\r\n")

    async def action(peer: ScriptedPeer, line: bytes) -> None:
        for index in range(len(data)):
            if peer.closed:
                return
            await peer.send(data[index : index + 1])
            await peer.sleep(interval)

    return _at(after, action)


def disconnect_after(command: bytes | str) -> Script:
    """Close without replying when ``command`` arrives (``"."``: after the data, before the reply).

    ``"CONNECT"`` closes before the greeting.
    """

    async def action(peer: ScriptedPeer, line: bytes) -> None:
        peer.close()

    return _at(command, action)


def disconnect_mid_data(after_bytes: int = 1, *, reset: bool = False) -> Script:
    """Reply ``354`` to DATA, read ``after_bytes`` of the body, then close (or reset)."""

    async def action(peer: ScriptedPeer, line: bytes) -> None:
        await peer.send(b"354 End data with <CR><LF>.<CR><LF>\r\n")
        try:
            await peer.read_exactly(after_bytes)
        except ScriptError:
            return
        peer.abort() if reset else peer.close()

    return _at("DATA", action)


def reply_421_after(
    command: bytes | str, reply: bytes = b"421 4.3.2 Service shutting down\r\n"
) -> Script:
    """Answer ``command`` (or ``"."``, or ``"CONNECT"``) with a 421 and close (RFC 5321 3.8)."""

    async def action(peer: ScriptedPeer, line: bytes) -> None:
        await peer.send(reply)
        peer.close()

    return _at(command, action)


def oversized_line(length: int = 8192, *, after: bytes | str | None = None) -> Script:
    """Reply with one line of ``length`` bytes (CRLF included): far over RFC 5321's 512."""

    async def action(peer: ScriptedPeer, line: bytes) -> None:
        prefix = b"220 " if line == b"" else b"250 "
        await peer.send(prefix + b"x" * max(0, length - 6) + _CRLF)

    return _at(after, action)


def endless_continuation(
    *, after: bytes | str | None = "EHLO", line: bytes | None = None
) -> Script:
    """Answer with continuation lines (``250-...``) that never end, until the client closes."""

    async def action(peer: ScriptedPeer, command: bytes) -> None:
        chunk = (line or (b"220-still greeting\r\n" if command == b"" else b"250-more\r\n")) * 64
        while not peer.closed:
            await peer.send(chunk)
            await asyncio.sleep(0)  # let the loop breathe even when the socket never blocks

    return _at(after, action)


def endless_auth_challenge() -> Script:
    """Advertise AUTH and answer every client response with another ``334`` challenge."""

    async def action(peer: ScriptedPeer, line: bytes) -> None:
        while not peer.closed:
            await peer.send(b"334 \r\n")
            answer = await peer.readline(timeout=None)
            if not answer:
                return
            if answer.strip() == b"*":
                await peer.send(b"501 5.7.0 Authentication cancelled\r\n")
                return

    return _at("AUTH", action, (*DEFAULT_EXTENSIONS, "AUTH PLAIN LOGIN"))


def starttls_injection(
    tls: ssl.SSLContext | None = None,
    *,
    reply: bytes = b"220 2.0.0 Go ahead\r\n",
    injected: bytes = b"250-evil\r\n",
) -> Script:
    """Answer STARTTLS with ``reply + injected`` in one segment (THREATS.md S4).

    A safe client aborts. With ``tls``, a client that carries on gets a real handshake and
    the server continues normally afterwards; without it the script waits for the close.
    """

    async def action(peer: ScriptedPeer, line: bytes) -> None:
        await peer.send(reply + injected)  # one write: one TCP segment on loopback
        if tls is None:
            await peer.wait_closed()
            return
        try:
            await peer.start_tls(tls)
        except (ssl.SSLError, OSError):
            peer.close()

    return _at("STARTTLS", action, (*DEFAULT_EXTENSIONS, "STARTTLS"))
