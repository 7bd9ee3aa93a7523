"""What the sync and async connections share: their settings, their flows, their health rule.

Only the running of flows (sockets or asyncio) differs between the two
drivers; everything else about a session is decided here, once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import _telemetry
from .._hostname import local_hostname as _local_hostname
from ..config import Timeouts
from ..errors import MailTransferError, UsageError
from ..protocol import Connection, Extensions, Noop, Quit, Rset, State
from ..proxy import Proxy
from ..tls import TLSMode, TLSPolicy, default_policy
from . import handshake as _handshake
from . import proxy as _proxy
from ._common import command
from ._io import Flow, StartTLS, TLSInfo
from .auth import authenticate
from .envelope import envelope_commands
from .pipeline import Job, JobSource, pipeline, session_survives
from .transaction import Body, transaction

__all__ = ["SessionBase"]


class SessionBase:
    """Settings and flows of one SMTP/LMTP session; the drivers add the I/O."""

    def __init__(
        self,
        host: str,
        port: int = 25,
        *,
        tls: TLSPolicy | None = None,
        credentials: object | None = None,
        mechanisms: Sequence[str] | None = None,
        allow_insecure_auth: bool = False,
        local_hostname: str | None = None,
        timeouts: Timeouts | None = None,
        source_address: tuple[str, int] | None = None,
        lmtp: bool = False,
        proxy: Proxy | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.tls = (
            tls if tls is not None else default_policy(port, has_credentials=bool(credentials))
        )
        self.credentials = credentials
        self.mechanisms = tuple(mechanisms) if mechanisms else None
        self.allow_insecure_auth = allow_insecure_auth
        self.local_hostname = local_hostname or _local_hostname()
        self.timeouts = timeouts or Timeouts()
        self.source_address = source_address
        self.lmtp = lmtp
        self.proxy = proxy
        self.protocol = Connection(lmtp=lmtp)
        self.tls_info: TLSInfo | None = None
        self.messages_sent = 0
        self._opened = False
        self._broken = False

    @property
    def where(self) -> str:
        """``host:port``, for messages and logs."""
        return f"{self.host}:{self.port}"

    @property
    def dial_address(self) -> tuple[str, int]:
        """Where the TCP connection goes: the proxy when there is one, else the server."""
        return self.proxy.address if self.proxy is not None else (self.host, self.port)

    @property
    def implicit_tls(self) -> bool:
        """Whether TLS starts with the TCP connection (port 465 style)."""
        return self.tls.mode is TLSMode.IMPLICIT

    @property
    def extensions(self) -> Extensions:
        """What the server offered in its last EHLO reply."""
        return self.protocol.extensions

    @property
    def is_usable(self) -> bool:
        """Open, healthy and between transactions: ready for another message."""
        return self._opened and not self._broken and self.protocol.state is State.READY

    def transcript(self) -> tuple[str, ...]:
        """The redacted transcript of this session (secrets masked)."""
        return self.protocol.transcript()

    # -- flows ------------------------------------------------------------------------------

    def _handshake_flow(self) -> Flow:
        flow = _handshake.handshake(
            self.protocol,
            policy=self.tls,
            server_hostname=self.host,
            local_hostname=self.local_hostname,
            timeouts=self.timeouts,
        )
        if _telemetry.active is not None:
            return _telemetry.active.trace_handshake(self, flow)
        return flow

    def _proxy_flow(self) -> Flow | None:
        """The tunnel through the proxy (and implicit TLS inside it), or None without a proxy."""
        if self.proxy is None:
            return None
        tls = None
        if self.implicit_tls:
            tls = StartTLS(self.tls.ssl_context(), self.tls.server_hostname or self.host)
        return _proxy.tunnel(
            self.protocol,
            self.proxy,
            self.host,
            self.port,
            timeout=self.timeouts.connect,
            tls=tls,
        )

    def _auth_flow(self) -> Flow | None:
        if self.credentials is None:
            return None
        flow = authenticate(
            self.protocol,
            self.credentials,
            timeouts=self.timeouts,
            mechanisms=self.mechanisms,
            allow_insecure=self.allow_insecure_auth,
            tls_info=self.tls_info,
        )
        if _telemetry.active is not None:
            return _telemetry.active.trace_auth(self, flow)
        return flow

    def _job(
        self,
        body: Body,
        *,
        sender: str,
        recipients: Sequence[str],
        smtputf8: bool,
        eight_bit: bool | None,
        use_bdat: bool,
        size: int | None,
        params: dict[str, Any],
        token: Any = None,
    ) -> Job:
        """One message's commands, with the parameters this server's extensions call for."""
        size = _message_size(body, size)
        if eight_bit is None and isinstance(body, (bytes, bytearray, memoryview)):
            eight_bit = not bytes(body).isascii()
        mail, rcpts = envelope_commands(
            sender,
            recipients,
            self.protocol.extensions,
            size=size,
            eight_bit=bool(eight_bit),
            smtputf8=smtputf8,
            **params,
        )
        return Job(mail, rcpts, body, use_bdat, token)

    def _send_flow(self, body: Body, **arguments: Any) -> Flow:
        if not self.is_usable:
            raise UsageError("the connection is not open and ready for a message")
        job = self._job(body, **arguments)
        flow = transaction(
            self.protocol,
            mail=job.mail,
            rcpts=job.rcpts,
            body=job.body,
            timeouts=self.timeouts,
            use_bdat=job.use_bdat,
        )
        if _telemetry.active is not None:
            size = _message_size(body, arguments["size"])
            return _telemetry.active.trace_send(
                self, flow, arguments["sender"], arguments["recipients"], size
            )
        return flow

    def _pipeline_flow(self, source: JobSource, cross: bool) -> Flow:
        if not self.is_usable:
            raise UsageError("the connection is not open and ready for a message")
        return pipeline(self.protocol, source, self.timeouts, cross=cross)

    def _command_flow(self, cmd: Noop | Rset | Quit) -> Flow:
        if not self._opened or self._broken:
            raise UsageError("the connection is not open")
        return command(self.protocol, cmd, self.timeouts.command)

    def _can_quit(self) -> bool:
        return (
            self._opened
            and not self._broken
            and self.protocol.state in (State.READY, State.CONNECTED, State.MAIL)
        )

    def _keeps_session(self, exc: MailTransferError) -> bool:
        """Whether the session survives ``exc``: a refused command does; anything else ends it.

        Refused recipients count as refused commands: the transaction flow has already
        sent RSET, so the session is ready for the next message.
        """
        if not exc.transcript:
            exc.transcript = self.protocol.transcript()
        return session_survives(self.protocol, exc)

    def _describe(self) -> str:
        state = "closed" if self._broken or not self._opened else self.protocol.state.name
        tls = " TLS" if self.protocol.tls_active else ""
        return f"{self.where} {state}{tls} | sent: {self.messages_sent}"


def _message_size(body: Body, size: int | None) -> int | None:
    """``size`` if given, else the length of a body given as bytes (None for a stream)."""
    if size is None and isinstance(body, (bytes, bytearray, memoryview)):
        return len(body)
    return size
