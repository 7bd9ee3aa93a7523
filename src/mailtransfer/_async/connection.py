"""``AsyncConnection``: one SMTP/LMTP session over asyncio streams, driving the sans-I/O flows."""

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
from ._inline import InlineDriver
from ._stream import AsyncStream

__all__ = ["AsyncConnection"]

logger = logging.getLogger("mailtransfer.connection")


class AsyncConnection(SessionBase):
    """One SMTP (or LMTP) session over asyncio; the same options as :class:`SyncConnection`.

    Example:
        >>> async with AsyncConnection("localhost", 2525, tls=NoTLS()) as conn:  # doctest: +SKIP
        ...     await conn.send(b"Subject: hi\\r\\n\\r\\nHello\\r\\n",
        ...                     sender="a@example.org", recipients=["b@example.org"])
    """

    _stream: AsyncStream | None = None

    async def open(self) -> Extensions:
        """Connect, read the greeting, EHLO, STARTTLS per policy, and log in.

        Returns:
            The extensions the server offers (after TLS, when TLS is used).

        Raises:
            ConnectError, Timeout, TLSError, ReplyError, ProtocolError: typed
                failures of each phase, with the redacted transcript attached.
        """
        if _telemetry.active is not None:
            return await _telemetry.active.traced_open_async(self, self._open)
        return await self._open()

    async def _open(self) -> Extensions:
        if self._opened:
            raise UsageError("the connection is already open")
        direct = self.proxy is None
        self._stream = await AsyncStream.connect(
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
                await self._run(tunnel)
            self.tls_info = tls_info(self._stream.ssl_object())
            info = await self._run(self._handshake_flow())
            self.tls_info = info or self.tls_info
            auth = self._auth_flow()
            if auth is not None:
                await self._run(auth)
        except BaseException:
            # A session that failed to open is never used: don't leak its socket.
            self.abort()
            raise
        return self.protocol.extensions

    async def aclose(self) -> None:
        """Close the connection at once, without QUIT. Never raises."""
        self._broken = True
        if self._stream is not None:
            await self._stream.close()

    def abort(self) -> None:
        """Drop the connection without waiting (for cancellation paths). Never raises."""
        self._broken = True
        if self._stream is not None:
            self._stream.abort()

    async def quit(self) -> None:
        """Send QUIT and close; errors on the way out are ignored."""
        if self._can_quit():
            with contextlib.suppress(MailTransferError):
                await self._run(self._command_flow(Quit()))
        await self.aclose()

    async def __aenter__(self) -> AsyncConnection:
        if not self._opened:
            await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.quit()

    async def send(
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
        """Send one message; see :meth:`SyncConnection.send` for the arguments and errors."""
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
        result: SendResult = await self._run(flow)
        self.messages_sent += 1
        return result

    async def _send_jobs(self, source: JobSource, *, cross: bool = True) -> None:
        """Send the messages of a bulk source, pipelined (``_flows/pipeline.py``).

        ``cross``: a message's envelope may share a write with the end of the one before.

        Raises:
            MailTransferError: the error that ended the session (already reported
                to the source for its message).
        """
        flow = self._pipeline_flow(source, cross)
        stream = self._stream
        assert stream is not None
        if not InlineDriver.usable(stream):
            await self._run(flow)
            return
        driver = InlineDriver(stream, flow)
        try:
            await driver.run()
        except MailTransferError as exc:
            if not self._keeps_session(exc):
                self.abort()
            raise
        except BaseException:
            if not driver.finished:
                self.abort()  # cancelled (or a bug) mid-run: the session state is unknown
            raise

    async def noop(self) -> Reply:
        """Send NOOP (a health check) and return the reply."""
        return (await self._run(self._command_flow(Noop()))).reply  # type: ignore[no-any-return]

    async def rset(self) -> Reply:
        """Send RSET (abort any transaction) and return the reply."""
        return (await self._run(self._command_flow(Rset()))).reply  # type: ignore[no-any-return]

    async def _run(self, flow: Flow) -> Any:
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
                    self.abort()
                raise
            except BaseException:
                self.abort()
                raise
            value, error = None, None
            try:
                if isinstance(instruction, Write):
                    await stream.write(instruction.data)
                elif isinstance(instruction, Read):
                    value = await stream.read()
                elif isinstance(instruction, Deadline):
                    stream.set_deadline(instruction.seconds, instruction.stage)
                elif isinstance(instruction, Poll):
                    value = await stream.poll()
                elif isinstance(instruction, StartTLS):
                    await stream.start_tls(instruction.context, instruction.server_hostname)
                    value = tls_info(stream.ssl_object())
                elif isinstance(instruction, Call):
                    value = instruction.func()
                    if inspect.isawaitable(value):
                        value = await value
            except MailTransferError as exc:
                error = exc
            except BaseException:
                # Cancellation (or a bug) in the middle of I/O: the session state is unknown.
                self.abort()
                raise

    def __repr__(self) -> str:
        return f"<AsyncConnection [{self._describe()}]>"
