"""An in-process SMTP or LMTP server that records every message it accepts.

Strategy: aiosmtpd does the protocol work, in an asyncio loop on a background thread, so a
test can use the server from synchronous code and from its own event loop alike. We run our
own loop thread rather than aiosmtpd's ``Controller`` because the controller probes the port it
was given, which is useless with port 0 (an ephemeral port is what keeps parallel tests apart).
Our handler records each accepted message and replays the refusals a test scripts through
`Faults`. aiosmtpd is imported only when a server is built, so the rest of
`mailtransfer.testing` works without the ``testing`` extra.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ._aiosmtpd import EXTENSION_PARAMETERS, Recorder, import_aiosmtpd, protocol_class
from ._faults import Faults
from ._loop import _LoopThread
from ._received import ReceivedMessage

if TYPE_CHECKING:
    from aiosmtpd.smtp import SMTP

__all__ = ["DEFAULT_SIZE_LIMIT", "Faults", "ReceivedMessage", "RecordingServer"]


DEFAULT_SIZE_LIMIT = 32 * 1024 * 1024
"""The ``SIZE`` (RFC 1870) a `RecordingServer` advertises unless told otherwise."""


class RecordingServer:
    """A real SMTP (or LMTP) server on loopback that records every accepted message.

    It runs aiosmtpd in its own thread and listens on an ephemeral port, so it works from
    plain and from asyncio tests. It offers ``SIZE``, ``8BITMIME``, ``SMTPUTF8`` and, as
    configured, ``STARTTLS`` and ``AUTH PLAIN LOGIN``; it does not offer ``PIPELINING`` or
    ``CHUNKING`` unless listed in ``extensions`` (aiosmtpd handles pipelined commands but has
    no ``BDAT``: use `basic_ok_server` for that).

    Args:
        host: the address to listen on.
        port: the port; 0 picks a free one.
        hostname: the name in the greeting and the EHLO reply.
        tls_context: a server context to offer STARTTLS (RFC 3207) with.
        implicit_tls: a server context for implicit TLS (SMTPS, RFC 8314).
        require_starttls: refuse mail commands until STARTTLS (530). Needs ``tls_context``.
        auth: user name to password; enables ``AUTH PLAIN`` and ``AUTH LOGIN``.
        auth_require_tls: offer and accept AUTH only over TLS.
        require_auth: refuse ``MAIL FROM`` with 530 until the client authenticated.
        smtputf8: offer SMTPUTF8 (RFC 6531).
        size_limit: the ``SIZE`` to advertise and enforce; ``None`` for no limit and no SIZE.
        lmtp: speak LMTP (RFC 2033): ``LHLO`` and one reply per recipient after the data.
        extensions: more EHLO keywords to advertise, e.g. ``["DSN", "PIPELINING"]``; the MAIL
            and RCPT parameters of DSN, REQUIRETLS, MT-PRIORITY, DELIVERBY, FUTURERELEASE
            and RRVS are accepted only when their keyword is listed.

    Raises:
        ImportError: aiosmtpd is missing (``pip install 'mailtransfer[testing]'``).
        ValueError: contradictory options.

    Example:
        >>> with RecordingServer() as server:  # doctest: +SKIP
        ...     send_with_your_client(server.host, server.port)
        ...     assert server.messages[0].rcpt_tos == ("bob@example.test",)
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        hostname: str = "localhost",
        tls_context: ssl.SSLContext | None = None,
        implicit_tls: ssl.SSLContext | None = None,
        require_starttls: bool = False,
        auth: Mapping[str, str] | None = None,
        auth_require_tls: bool = True,
        require_auth: bool = False,
        smtputf8: bool = True,
        size_limit: int | None = DEFAULT_SIZE_LIMIT,
        lmtp: bool = False,
        extensions: Iterable[str] = (),
    ) -> None:
        import_aiosmtpd()
        if tls_context is not None and implicit_tls is not None:
            raise ValueError("pass tls_context (STARTTLS) or implicit_tls (SMTPS), not both")
        if require_starttls and tls_context is None:
            raise ValueError("require_starttls=True needs a tls_context to offer STARTTLS with")
        if require_auth and auth is None:
            raise ValueError("require_auth=True needs auth= with at least one user")
        if size_limit is not None and size_limit < 1:
            raise ValueError(f"size_limit must be a positive integer or None, got {size_limit!r}")
        self.host = host
        self._requested_port = port
        self._port: int | None = None
        self._implicit_tls = implicit_tls
        self._auth = dict(auth) if auth is not None else None
        self._require_auth = require_auth
        self._lmtp = lmtp
        self._extensions = tuple(e.strip().upper() for e in extensions)
        self._accepted_parameters = frozenset().union(
            *(EXTENSION_PARAMETERS.get(e.split()[0], frozenset()) for e in self._extensions)
        )
        self._handler = Recorder(self)
        self._smtp_kwargs: dict[str, Any] = {
            "hostname": hostname,
            "tls_context": tls_context,
            "require_starttls": require_starttls,
            "auth_require_tls": auth_require_tls,
            "enable_SMTPUTF8": smtputf8,
            "data_size_limit": size_limit,
            "authenticator": self._handler.authenticate if auth is not None else None,
        }
        self.faults = Faults()
        """The refusals and delays to apply; see `Faults`."""
        self._lock = threading.Condition()
        self._messages: list[ReceivedMessage] = []
        self._commands: list[str] = []
        self._protocols: list[SMTP] = []
        self._loop_thread: _LoopThread | None = None
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        """The port the server listens on.

        Raises:
            RuntimeError: the server is not running.
        """
        if self._port is None:
            raise RuntimeError("the RecordingServer is not running: use it in a with block")
        return self._port

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)``, ready for ``socket.create_connection``."""
        return (self.host, self.port)

    @property
    def url(self) -> str:
        """A mailer URL for this server, e.g. ``smtp://127.0.0.1:40123?tls=none``.

        ``lmtp://`` for LMTP, ``smtps://`` for implicit TLS, ``smtp://...?tls=starttls``
        when STARTTLS is offered (the client still has to trust the test CA).
        """
        if self._lmtp:
            scheme, query = "lmtp", "?tls=starttls" if self._smtp_kwargs["tls_context"] else ""
        elif self._implicit_tls is not None:
            scheme, query = "smtps", ""
        elif self._smtp_kwargs["tls_context"] is not None:
            scheme, query = "smtp", "?tls=starttls"
        else:
            scheme, query = "smtp", "?tls=none"
        return f"{scheme}://{self.host}:{self.port}{query}"

    @property
    def messages(self) -> list[ReceivedMessage]:
        """A snapshot of the messages accepted so far, oldest first."""
        with self._lock:
            return list(self._messages)

    @property
    def commands(self) -> list[str]:
        """A snapshot of the command lines received so far, AUTH credentials masked.

        Lines are rebuilt as ``VERB argument`` (aiosmtpd strips the surrounding blanks);
        lines aiosmtpd could not parse as a command are not included.
        """
        with self._lock:
            return list(self._commands)

    def clear(self) -> None:
        """Forget the recorded messages and commands (the faults stay)."""
        with self._lock:
            self._messages.clear()
            self._commands.clear()

    def wait_for(self, count: int = 1, timeout: float = 5.0) -> list[ReceivedMessage]:
        """Block until at least ``count`` messages have been accepted.

        Args:
            count: how many messages to wait for.
            timeout: the most seconds to wait.

        Returns:
            A snapshot of all messages received so far.

        Raises:
            TimeoutError: fewer than ``count`` messages arrived in time.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self._messages) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"expected {count} message(s) within {timeout} s, got {len(self._messages)}"
                    )
                self._lock.wait(remaining)
            return list(self._messages)

    async def wait_for_async(self, count: int = 1, timeout: float = 5.0) -> list[ReceivedMessage]:
        """Like `wait_for`, without blocking the caller's event loop.

        Raises:
            TimeoutError: fewer than ``count`` messages arrived in time.
        """
        return await asyncio.to_thread(self.wait_for, count, timeout)

    def start(self) -> None:
        """Start listening (the ``with`` statement calls this).

        Raises:
            RuntimeError: the server is already running.
            OSError: the address cannot be bound.
        """
        if self._loop_thread is not None:
            raise RuntimeError("the RecordingServer is already running")
        loop_thread = _LoopThread(f"RecordingServer:{self.host}")
        loop_thread.start()
        try:
            self._server = loop_thread.run(self._listen(loop_thread.loop))
        except BaseException:
            loop_thread.stop()
            raise
        self._loop_thread = loop_thread
        self._port = int(self._server.sockets[0].getsockname()[1])

    async def _listen(self, loop: asyncio.AbstractEventLoop) -> asyncio.Server:
        protocol_type = protocol_class(self._lmtp)

        def factory() -> SMTP:
            protocol = protocol_type(self, loop=loop, **self._smtp_kwargs)
            self._protocols = [p for p in self._protocols if p.transport is not None]
            self._protocols.append(protocol)
            return protocol

        return await loop.create_server(
            factory, self.host, self._requested_port, ssl=self._implicit_tls
        )

    async def _shutdown(self) -> None:
        assert self._server is not None
        # A few loop turns first, so connections the kernel has already completed (a client
        # that connected and left just before the test ended) are accepted and served.
        for _ in range(5):
            await asyncio.sleep(0)
        self._server.close()
        for protocol in self._protocols:
            # abort(), not close(): a TLS close would wait for the client's close_notify.
            if protocol.transport is not None:
                protocol.transport.abort()  # type: ignore[attr-defined]
        for _ in range(3):
            await asyncio.sleep(0)
        await asyncio.wait_for(self._server.wait_closed(), 5.0)

    def stop(self) -> None:
        """Stop listening and drop open connections (the ``with`` statement calls this)."""
        loop_thread, self._loop_thread = self._loop_thread, None
        if loop_thread is None:
            return
        try:
            loop_thread.run(self._shutdown())
        finally:
            loop_thread.stop()
            self._protocols.clear()
            self._port = None

    def __enter__(self) -> RecordingServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = f"{self.host}:{self._port}" if self._port is not None else "stopped"
        return f"<RecordingServer {where} messages={len(self._messages)}>"

    def _record(self, message: ReceivedMessage) -> None:
        with self._lock:
            self._messages.append(message)
            self._lock.notify_all()

    def _record_command(self, verb: str, arg: str | None) -> None:
        if verb == "AUTH" and arg:
            # Never keep credentials, not even in a test transcript (THREATS.md S8).
            mechanism, _, payload = arg.partition(" ")
            arg = f"{mechanism} ****" if payload else mechanism
        with self._lock:
            self._commands.append(verb if arg is None else f"{verb} {arg}")
