"""``SyncConnection``: one SMTP/LMTP session over a blocking socket, driving the sans-I/O flows."""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from .. import _telemetry
from .._flows._io import Call, Deadline, Flow, Poll, Read, StartTLS, Write, tls_info
from .._flows.pipeline import JobSource
from .._flows.session import SessionBase
from .._flows.transaction import Body
from ..errors import MailTransferError, UsageError
from ..protocol import Extensions, Noop, Quit, Reply, Rset
from ..results import SendResult
from ._stream import SocketStream

__all__ = ["SyncConnection"]

logger = logging.getLogger("mailtransfer.connection")


class SyncConnection(SessionBase):
    """One SMTP (or LMTP) session over a blocking socket.

    Example:
        >>> with SyncConnection("localhost", 2525, tls=NoTLS()) as conn:  # doctest: +SKIP
        ...     conn.send(b"Subject: hi\\r\\n\\r\\nHello\\r\\n",
        ...               sender="a@example.org", recipients=["b@example.org"])

    Args:
        host: the server's host name or address.
        port: the server's port (25, 465, 587, 2525, or LMTP's).
        tls: the TLS policy; by default implicit TLS on 465, required STARTTLS on
            587 or when credentials are given, opportunistic STARTTLS otherwise.
        credentials: log in with these after TLS (see :mod:`mailtransfer.auth`).
        mechanisms: SASL mechanisms to use, in order of preference (default: the strongest offered).
        allow_insecure_auth: allow AUTH without TLS (only for a trusted local relay).
        local_hostname: the name sent in EHLO; defaults to this machine's FQDN.
        timeouts: deadlines for each phase (:class:`~mailtransfer.config.Timeouts`).
        source_address: bind the socket to this ``(host, port)`` before connecting.
        lmtp: speak LMTP (RFC 2033): LHLO, and one reply per recipient after the data.
        proxy: reach the server through this SOCKS5 or HTTP CONNECT proxy
            (:class:`~mailtransfer.proxy.Proxy`); TLS and SMTP run inside the tunnel.
    """

    _stream: SocketStream | None = None

    def open(self) -> Extensions:
        """Connect, read the greeting, EHLO, STARTTLS per policy, and log in.

        Returns:
            The extensions the server offers (after TLS, when TLS is used).

        Raises:
            ConnectError, Timeout, TLSError, ReplyError, ProtocolError: typed
                failures of each phase, with the redacted transcript attached.
        """
        if _telemetry.active is not None:
            return _telemetry.active.traced_open(self, self._open)
        return self._open()

    def _open(self) -> Extensions:
        if self._opened:
            raise UsageError("the connection is already open")
        direct = self.proxy is None
        self._stream = SocketStream.connect(
            *self.dial_address,
            timeout=self.timeouts.connect,
            source_address=self.source_address,
            ssl_context=self.tls.ssl_context() if self.implicit_tls and direct else None,
            server_hostname=self.tls.server_hostname or self.host,
        )
        self._opened = True
        if logger.isEnabledFor(logging.DEBUG):
            where = self.where
            self.protocol.trace = lambda line: logger.debug("%s %s", where, line)
        try:
            tunnel = self._proxy_flow()
            if tunnel is not None:
                self._run(tunnel)
            self.tls_info = tls_info(self._stream.sock)
            info = self._run(self._handshake_flow())
            self.tls_info = info or self.tls_info
            auth = self._auth_flow()
            if auth is not None:
                self._run(auth)
        except BaseException:
            # A session that failed to open is never used: don't leak its socket.
            self.close()
            raise
        return self.protocol.extensions

    def close(self) -> None:
        """Close the socket at once, without QUIT. Never raises."""
        if self._stream is not None:
            self._stream.close()
        self._broken = True

    def quit(self) -> None:
        """Send QUIT and close; errors on the way out are ignored."""
        if self._can_quit():
            with contextlib.suppress(MailTransferError):
                self._run(self._command_flow(Quit()))
        self.close()

    def __enter__(self) -> SyncConnection:
        if not self._opened:
            self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.quit()

    def send(
        self,
        body: Body,
        *,
        sender: str,
        recipients: Sequence[str],
        smtputf8: bool = False,
        eight_bit: bool | None = None,
        use_bdat: bool = False,
        size: int | None = None,
        **params: Any,
    ) -> SendResult:
        """Send one message: MAIL, RCPT... (pipelined when offered), DATA or BDAT.

        Args:
            body: the message, with its headers: bytes, a binary file object, or
                an iterable of byte chunks. Line endings are normalised to CRLF.
            sender: the envelope sender; ``""`` for the null sender.
            recipients: the envelope recipients.
            smtputf8: ask for SMTPUTF8 even if no address needs it.
            eight_bit: whether the body has 8-bit bytes (``BODY=8BITMIME``);
                computed for bytes bodies when not given.
            use_bdat: send the body with BDAT (CHUNKING) instead of DATA.
            size: the body size for ``SIZE=``; computed for bytes bodies.
            **params: DSN and other options: ``ret``, ``envid``, ``notify``,
                ``requiretls``, ``body_type`` (``"BINARYMIME"`` etc.).

        Returns:
            The per-recipient outcome and the server's final reply.

        Raises:
            RecipientsRefused: every recipient was refused.
            DeliveryUnknown: the connection failed after the message was sent.
            ReplyError: the server refused the sender or the message.
            ConnectError: the connection could not be (re)established.
            Timeout: the server did not answer in time.
            ProtocolError: the server broke the protocol.
            UsageError: the arguments are unusable (checked before sending).
        """
        flow = self._send_flow(
            body,
            sender=sender,
            recipients=recipients,
            smtputf8=smtputf8,
            eight_bit=eight_bit,
            use_bdat=use_bdat,
            size=size,
            params=params,
        )
        result: SendResult = self._run(flow)
        self.messages_sent += 1
        return result

    def _send_jobs(self, source: JobSource, *, cross: bool = True) -> None:
        """Send the messages of a bulk source, pipelined (``_flows/pipeline.py``).

        ``cross``: a message's envelope may share a write with the end of the one before.

        Raises:
            MailTransferError: the error that ended the session (already reported
                to the source for its message).
        """
        self._run(self._pipeline_flow(source, cross))

    def noop(self) -> Reply:
        """Send NOOP (a health check) and return the reply."""
        return self._run(self._command_flow(Noop())).reply  # type: ignore[no-any-return]

    def rset(self) -> Reply:
        """Send RSET (abort any transaction) and return the reply."""
        return self._run(self._command_flow(Rset())).reply  # type: ignore[no-any-return]

    def _run(self, flow: Flow) -> Any:
        """Drive a flow: execute each instruction it yields, throw I/O errors back into it."""
        stream = self._stream
        assert stream is not None
        value: Any = None
        error: MailTransferError | None = None
        while True:
            try:
                instruction = flow.send(value) if error is None else flow.throw(error)
            except StopIteration as stop:
                return stop.value
            except MailTransferError as exc:
                if not self._keeps_session(exc):
                    self.close()
                raise
            except BaseException:
                self.close()
                raise
            value, error = None, None
            try:
                if isinstance(instruction, Write):
                    stream.write(instruction.data, instruction.mark_end)
                elif isinstance(instruction, Read):
                    value = stream.read()
                elif isinstance(instruction, Deadline):
                    stream.set_deadline(instruction.seconds, instruction.stage)
                elif isinstance(instruction, Poll):
                    value = stream.poll()
                elif isinstance(instruction, StartTLS):
                    sock = stream.start_tls(instruction.context, instruction.server_hostname)
                    value = tls_info(sock)
                elif isinstance(instruction, Call):
                    value = instruction.func()
                    if inspect.isawaitable(value):
                        if inspect.iscoroutine(value):
                            value.close()
                        raise UsageError(
                            "an async callback (such as an async OAuth2 token provider)"
                            " needs the asyncio client, AsyncConnection or AsyncMailer"
                        )
            except MailTransferError as exc:
                error = exc

    def __repr__(self) -> str:
        return f"<SyncConnection [{self._describe()}]>"
