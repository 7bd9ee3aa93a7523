"""An asyncio stream whose reads and writes share one deadline, with typed errors."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import sys
from typing import Any

from .._flows._translate import timeout_error, translate
from ..protocol import Stage

__all__ = ["AsyncStream"]

READ_SIZE = 64 * 1024


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
        try:
            return await asyncio.wait_for(self.reader.read(READ_SIZE), self._remaining("read"))
        except (asyncio.TimeoutError, TimeoutError):
            raise timeout_error(self._stage, "read", self._seconds, self.where) from None
        except (OSError, ssl.SSLError) as exc:
            raise translate(exc, self._stage, self.where) from exc

    async def poll(self) -> bytes | None:
        """Bytes that already arrived, without waiting: ``None`` if none, ``b""`` at EOF."""
        # asyncio has no public peek; looking at the buffer's size is read-only and safe.
        if not len(getattr(self.reader, "_buffer", b"")) and not self.reader.at_eof():
            return None
        return await self.read()

    async def write(self, data: bytes) -> None:
        """Write all of ``data`` (waiting for the transport to drain) before the deadline."""
        try:
            self.writer.write(data)
            transport: Any = self.writer.transport
            if transport.get_write_buffer_size() > 64 * 1024:
                await asyncio.wait_for(self.writer.drain(), self._remaining("write"))
        except (asyncio.TimeoutError, TimeoutError):
            raise timeout_error(self._stage, "write", self._seconds, self.where) from None
        except (OSError, ssl.SSLError) as exc:
            raise translate(exc, self._stage, self.where) from exc

    async def start_tls(self, context: ssl.SSLContext, server_hostname: str) -> None:
        """Run the TLS handshake on this stream before the deadline."""
        try:
            await asyncio.wait_for(
                self._start_tls(context, server_hostname), self._remaining("tls handshake")
            )
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
        try:
            self.writer.close()
            await asyncio.wait_for(self.writer.wait_closed(), 1.0)
        except (OSError, ssl.SSLError, asyncio.TimeoutError, TimeoutError, RuntimeError):
            pass

    def abort(self) -> None:
        """Drop the connection at once (no close handshake); never raises."""
        with contextlib.suppress(OSError, RuntimeError):
            self.writer.transport.abort()
