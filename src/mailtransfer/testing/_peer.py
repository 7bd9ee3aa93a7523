"""`ScriptedPeer`: what a `ScriptedServer` script holds: reads, writes, TLS, hang-ups.

Reads are line-level with timeouts; writes are raw; the TLS upgrade is server-side; and both
kinds of disconnect are offered (FIN with `close`, RST with `abort`). `Script` is the type
of a script: ``async def script(peer)``.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from ._scripted import ScriptedServer

__all__ = ["DEFAULT_TIMEOUT", "Script", "ScriptError", "ScriptedPeer"]

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
