"""An asyncio stream whose reads and writes share one deadline, with typed errors."""

from __future__ import annotations

import asyncio
import contextlib
import select
import ssl
import sys
from collections.abc import Callable
from typing import Any

from .._flows._translate import timeout_error, translate
from ..protocol import Stage

__all__ = ["AsyncStream", "LazyTimer"]

READ_SIZE = 64 * 1024


class _Expired(TimeoutError):
    """A read's deadline passed (raised inside the stream, turned into a typed Timeout)."""


class LazyTimer:
    """One timer for many waits, each of which must end by the current deadline.

    Deadlines only move later as a session goes on, so a timer set for an earlier
    one is kept; when it fires early it sets itself again for the current deadline.
    No timer is made and cancelled per wait.

    Args:
        deadline: the current deadline (a loop time), or None.
        expired: called once the current deadline has passed; it decides whether
            anything was waiting.
    """

    def __init__(self, deadline: Callable[[], float | None], expired: Callable[[], None]) -> None:
        self._loop = asyncio.get_running_loop()
        self._deadline = deadline
        self._expired = expired
        self._handle: asyncio.TimerHandle | None = None

    def arm(self, deadline: float) -> None:
        """Make sure the timer fires no later than ``deadline``."""
        handle = self._handle
        if handle is not None:
            if handle.when() <= deadline:
                return
            handle.cancel()
        self._handle = self._loop.call_at(deadline, self._fire)

    def cancel(self) -> None:
        """Stop the timer (the stream is closing)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _fire(self) -> None:
        self._handle = None
        deadline = self._deadline()
        if deadline is None:
            return
        if self._loop.time() < deadline:
            self._handle = self._loop.call_at(deadline, self._fire)
            return
        self._expired()


class AsyncStream:
    """A TCP (optionally TLS) asyncio stream with per-phase deadlines."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, where: str
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.where = where
        self._loop = asyncio.get_running_loop()
        self._deadline: float | None = None
        self._seconds: float | None = None
        self._stage = Stage.CONNECT
        self._poller: select.poll | None = None
        self._timer = LazyTimer(lambda: self._deadline, self._on_deadline)
        self._reading = False

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        *,
        timeout: float | None,
        source_address: tuple[str, int] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> AsyncStream:
        """Open a TCP connection (and the TLS session for implicit TLS) within ``timeout``."""
        where = f"{host}:{port}"
        stage = Stage.CONNECT
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    host,
                    port,
                    local_addr=source_address,
                    ssl=ssl_context,
                    server_hostname=(server_hostname or host) if ssl_context else None,
                    limit=READ_SIZE,
                ),
                timeout,
            )
        except (asyncio.TimeoutError, TimeoutError):
            raise timeout_error(stage, "connect", timeout, where) from None
        except (OSError, ssl.SSLError) as exc:
            tls_stage = Stage.TLS_HANDSHAKE if isinstance(exc, ssl.SSLError) else stage
            raise translate(exc, tls_stage, where) from exc
        _limit_read_size(writer.transport)
        return cls(reader, writer, where)

    def set_deadline(self, seconds: float | None, stage: Stage) -> None:
        """Start a new deadline for the following reads and writes."""
        self._seconds = seconds
        self._stage = stage
        self._deadline = None if seconds is None else self._loop.time() + seconds

    def _remaining(self, operation: str) -> float | None:
        if self._deadline is None:
            return None
        left = self._deadline - self._loop.time()
        if left <= 0:
            raise timeout_error(self._stage, operation, self._seconds, self.where)
        return left

    async def read(self) -> bytes:
        """Read at least one byte, or ``b""`` at EOF, before the deadline."""
        reader = self.reader
        # The deadline first: a read must not start after it has passed.
        deadline = self._deadline
        if deadline is not None:
            self._remaining("read")
            if not _buffered(reader) and not reader.at_eof():
                self._timer.arm(deadline)
        self._reading = True
        try:
            return await reader.read(READ_SIZE)
        except _Expired:
            raise timeout_error(self._stage, "read", self._seconds, self.where) from None
        except (OSError, ssl.SSLError) as exc:
            raise translate(exc, self._stage, self.where) from exc
        finally:
            self._reading = False

    def _on_deadline(self) -> None:
        if self._reading:  # else no read waits: the next one checks the deadline itself
            self._expire()

    def _expire(self) -> None:
        """The deadline passed during a read: end that read with ``_Expired``.

        The stream is unusable afterwards (every later read fails too), which is
        right: a timed-out session is dropped, its state being unknown.
        """
        reader = self.reader
        if not _buffered(reader) and not reader.at_eof():  # else the read has its bytes
            reader.set_exception(_Expired())

    async def poll(self) -> bytes | None:
        """Bytes that already arrived, without waiting: ``None`` if none, ``b""`` at EOF."""
        # asyncio has no public peek; looking at the buffer's size is read-only and safe.
        reader = self.reader
        if not _buffered(reader) and not reader.at_eof() and reader.exception() is None:
            if not self._socket_readable():
                return None  # nothing in the reader, nothing in the socket: no loop turn
            # Let the loop take in what the socket holds. Two turns: in the first, the loop
            # only learns that the socket is readable (its reader callback runs after us).
            for _ in range(2):
                await asyncio.sleep(0)
                if _buffered(reader) or reader.at_eof() or reader.exception() is not None:
                    break
            else:
                return None
        return await self.read()

    def _socket_readable(self) -> bool:
        """Whether the kernel holds bytes (or an EOF, or an error) the loop has not taken in.

        A zero-timeout ``poll(2)`` on the transport's socket: it reads nothing, so asyncio's
        own reading is undisturbed. With TLS, bytes that are not application data (a session
        ticket) only cost a loop turn. When in doubt, True (the caller then takes the turn).
        """
        if self._poller is None:
            if not hasattr(select, "poll"):  # Windows
                return True
            transport: Any = self.writer.transport
            sock = transport.get_extra_info("socket")
            fileno = sock.fileno() if sock is not None else -1
            if fileno < 0:
                return True
            self._poller = select.poll()
            self._poller.register(fileno, select.POLLIN | select.POLLPRI)
        if self.writer.transport.is_closing():
            return True  # the file descriptor may be gone, even reused
        try:
            return bool(self._poller.poll(0))
        except OSError:
            return True

    async def write(self, data: bytes) -> None:
        """Write all of ``data`` (waiting for the transport to drain) before the deadline."""
        try:
            transport: Any = self.writer.transport
            # asyncio drops writes to a lost connection with only a log warning; say so
            # here, or a body whose end never left would look sent (DeliveryUnknown).
            if transport.is_closing():
                raise ConnectionResetError("the connection was lost before this write")
            self.writer.write(data)
            if transport.is_closing():
                raise ConnectionResetError("the connection was lost during this write")
            if transport.get_write_buffer_size() > 64 * 1024:
                timeout = self._remaining("write")
                await asyncio.wait_for(self.writer.drain(), timeout)
        except (asyncio.TimeoutError, TimeoutError):
            raise timeout_error(self._stage, "write", self._seconds, self.where) from None
        except (OSError, ssl.SSLError) as exc:
            raise translate(exc, self._stage, self.where) from exc

    async def start_tls(self, context: ssl.SSLContext, server_hostname: str) -> None:
        """Run the TLS handshake on this stream before the deadline."""
        timeout = self._remaining("tls handshake")
        try:
            await asyncio.wait_for(self._start_tls(context, server_hostname), timeout)
        except (asyncio.TimeoutError, TimeoutError):
            raise timeout_error(Stage.TLS_HANDSHAKE, "read", self._seconds, self.where) from None
        except (OSError, ssl.SSLError) as exc:
            raise translate(exc, Stage.TLS_HANDSHAKE, self.where) from exc

    async def _start_tls(self, context: ssl.SSLContext, server_hostname: str) -> None:
        if sys.version_info >= (3, 11):
            await self.writer.start_tls(context, server_hostname=server_hostname)
            return
        # Python 3.10 has no StreamWriter.start_tls: upgrade the transport and give the
        # same reader a writer over the new one.
        transport = self.writer.transport
        protocol = transport.get_protocol()
        new_transport = await self._loop.start_tls(
            transport, protocol, context, server_hostname=server_hostname
        )
        protocol._transport = new_transport  # type: ignore[attr-defined]
        self.writer = asyncio.StreamWriter(
            new_transport,  # type: ignore[arg-type]
            protocol,
            self.reader,
            self._loop,
        )

    def ssl_object(self) -> ssl.SSLObject | None:
        """The TLS object of the connection, when TLS is active."""
        obj = self.writer.get_extra_info("ssl_object")
        return obj if isinstance(obj, ssl.SSLObject) else None

    async def close(self) -> None:
        """Close the stream; never raises."""
        self._timer.cancel()
        try:
            self.writer.close()
            await asyncio.wait_for(self.writer.wait_closed(), 1.0)
        except (OSError, ssl.SSLError, asyncio.TimeoutError, TimeoutError, RuntimeError):
            pass

    def abort(self) -> None:
        """Drop the connection at once (no close handshake); never raises."""
        self._timer.cancel()
        with contextlib.suppress(OSError, RuntimeError):
            self.writer.transport.abort()


def _limit_read_size(transport: Any) -> None:
    """Read at most ``READ_SIZE`` bytes at a time from a plain asyncio socket transport.

    asyncio's selector transports ``recv(256 KiB)`` into a new object for every read.
    glibc serves an allocation that large with ``mmap``, and shrinking and freeing it
    take ``mremap`` and ``munmap``: three system calls per read, more than the read
    itself costs for an SMTP reply. 64 KiB comes from the heap. ``max_size`` is the
    transport's (undocumented) attribute for that size; other transports are left alone.
    """
    if isinstance(getattr(type(transport), "max_size", None), int):
        transport.max_size = READ_SIZE


def _buffered(reader: asyncio.StreamReader) -> int:
    """How many bytes the reader holds (asyncio has no public peek; this only looks)."""
    return len(getattr(reader, "_buffer", b""))
