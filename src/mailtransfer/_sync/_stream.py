"""A blocking socket stream whose reads and writes share one deadline.

The deadline is absolute: each ``recv`` gets only the time that is left, so a
server trickling one byte at a time cannot hold a command past its deadline.

A plain (not TLS) socket is kept non-blocking and waited on with ``poll(2)``: a
Python socket timeout costs an ``ioctl`` for every ``settimeout`` and a ``poll``
before every ``send``, which for a small message cost more than the send itself.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import time

from .._flows._translate import timeout_error, translate
from ..errors import MailTransferError
from ..protocol import Stage

__all__ = ["SocketStream"]

READ_SIZE = 64 * 1024


class SocketStream:
    """A TCP (optionally TLS) socket with per-phase deadlines and typed errors."""

    def __init__(self, sock: socket.socket, where: str) -> None:
        self.sock = sock
        self.where = where
        self._deadline: float | None = None
        self._seconds: float | None = None
        self._stage = Stage.CONNECT
        self._poller: select.poll | None = None  # set while the socket is plain and non-blocking

    @classmethod
    def connect(
        cls,
        host: str,
        port: int,
        *,
        timeout: float | None,
        source_address: tuple[str, int] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> SocketStream:
        """Open a TCP connection (and the TLS session for implicit TLS) within ``timeout``."""
        where = f"{host}:{port}"
        try:
            sock = socket.create_connection(
                (host, port), timeout=timeout, source_address=source_address
            )
        except TimeoutError:
            raise timeout_error(Stage.CONNECT, "connect", timeout, where) from None
        except OSError as exc:
            raise translate(exc, Stage.CONNECT, where) from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        stream = cls(sock, where)
        if ssl_context is not None:
            stream.set_deadline(timeout, Stage.TLS_HANDSHAKE)
            stream.start_tls(ssl_context, server_hostname or host)
        return stream

    def set_deadline(self, seconds: float | None, stage: Stage) -> None:
        """Start a new deadline for the following reads and writes."""
        self._seconds = seconds
        self._stage = stage
        self._deadline = None if seconds is None else time.monotonic() + seconds

    def _remaining(self, operation: str) -> float | None:
        if self._deadline is None:
            return None
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise timeout_error(self._stage, operation, self._seconds, self.where)
        return left

    def _plain_poller(self) -> select.poll | None:
        """The poller of a plain socket, switched to non-blocking once; None for TLS."""
        poller = self._poller
        if poller is None and not isinstance(self.sock, ssl.SSLSocket) and hasattr(select, "poll"):
            self.sock.setblocking(False)
            poller = self._poller = select.poll()
        return poller

    def _wait(self, poller: select.poll, events: int, operation: str) -> None:
        """Wait until the socket is ready for ``events``, within the deadline."""
        remaining = self._remaining(operation)
        poller.register(self.sock, events)
        ready = poller.poll(None if remaining is None else remaining * 1000)
        if not ready:
            raise timeout_error(self._stage, operation, self._seconds, self.where)

    def read(self) -> bytes:
        """Read at least one byte, or ``b""`` at EOF, before the deadline."""
        poller = self._plain_poller()
        if poller is not None:
            while True:
                self._wait(poller, select.POLLIN, "read")
                try:
                    return self.sock.recv(READ_SIZE)
                except BlockingIOError:
                    continue  # woken without data (rare): wait again, within the deadline
                except OSError as exc:
                    raise translate(exc, self._stage, self.where) from exc
        self.sock.settimeout(self._remaining("read"))
        try:
            return self.sock.recv(READ_SIZE)
        except TimeoutError:
            raise timeout_error(self._stage, "read", self._seconds, self.where) from None
        except (OSError, ssl.SSLError) as exc:
            raise translate(exc, self._stage, self.where) from exc

    def poll(self) -> bytes | None:
        """Bytes that already arrived, without waiting: ``None`` if none, ``b""`` at EOF."""
        if self._plain_poller() is None:
            self.sock.settimeout(0.0)
        try:
            return self.sock.recv(READ_SIZE)
        except (BlockingIOError, ssl.SSLWantReadError):
            return None
        except (OSError, ssl.SSLError) as exc:
            raise translate(exc, self._stage, self.where) from exc

    def write(self, data: bytes, mark_end: int | None = None) -> None:
        """Write all of ``data`` before the deadline.

        ``mark_end``: see :class:`~mailtransfer._flows._io.Write`. A failure after
        that many bytes went out is raised with the stage ``END_OF_DATA``.
        """
        view = memoryview(data)
        poller = self._plain_poller()
        sent = 0
        try:
            if poller is not None:
                self._remaining("write")  # a write must not start after the deadline
                while sent < len(view):
                    with contextlib.suppress(BlockingIOError):
                        sent += self.sock.send(view[sent:])
                    if sent < len(view):
                        self._wait(poller, select.POLLOUT, "write")
                return
            while sent < len(view):
                self.sock.settimeout(self._remaining("write"))
                sent += self.sock.send(view[sent:])
        except (OSError, ssl.SSLError, MailTransferError) as exc:
            stage = self._stage
            if mark_end is not None and sent >= mark_end:
                stage = Stage.END_OF_DATA  # the end of the message went out
            if isinstance(exc, MailTransferError):
                exc.stage = stage
                raise
            if isinstance(exc, TimeoutError):
                raise timeout_error(stage, "write", self._seconds, self.where) from None
            raise translate(exc, stage, self.where) from exc

    def start_tls(self, context: ssl.SSLContext, server_hostname: str) -> ssl.SSLSocket:
        """Run the TLS handshake on this socket before the deadline."""
        self._poller = None  # TLS sockets use Python's own timeouts (records may be buffered)
        self.sock.settimeout(self._remaining("tls handshake"))
        try:
            tls = context.wrap_socket(self.sock, server_hostname=server_hostname)
        except TimeoutError:
            raise timeout_error(Stage.TLS_HANDSHAKE, "read", self._seconds, self.where) from None
        except (OSError, ssl.SSLError) as exc:
            raise translate(exc, Stage.TLS_HANDSHAKE, self.where) from exc
        self.sock = tls
        return tls

    def close(self) -> None:
        """Close the socket; never raises."""
        with contextlib.suppress(OSError):
            self.sock.close()
