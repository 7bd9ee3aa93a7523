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
import email.policy
import functools
import hmac
import ssl
import threading
import time
from collections.abc import Coroutine, Iterable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesParser
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

__all__ = ["DEFAULT_SIZE_LIMIT", "Faults", "ReceivedMessage", "RecordingServer"]

_T = TypeVar("_T")
_INSTALL_HINT = "pip install 'mailtransfer[testing]'"

DEFAULT_SIZE_LIMIT = 32 * 1024 * 1024
"""The ``SIZE`` (RFC 1870) a `RecordingServer` advertises unless told otherwise."""

# Parameters each extension adds to MAIL and RCPT. aiosmtpd itself knows only SIZE, BODY and
# SMTPUTF8 and answers 555 to anything else, which is right for unadvertised extensions.
_EXTENSION_PARAMETERS: dict[str, frozenset[str]] = {
    "DSN": frozenset({"ENVID", "RET", "NOTIFY", "ORCPT"}),  # RFC 3461 sections 4.1-4.4
    "REQUIRETLS": frozenset({"REQUIRETLS"}),  # RFC 8689 section 4.1
    "MT-PRIORITY": frozenset({"MT-PRIORITY"}),  # RFC 6710 section 3
    "DELIVERBY": frozenset({"BY"}),  # RFC 2852 section 4
    "FUTURERELEASE": frozenset({"HOLDFOR", "HOLDUNTIL"}),  # RFC 4865 section 3
    "RRVS": frozenset({"RRVS"}),  # RFC 7293 section 3.1
}


@dataclass(frozen=True, slots=True, kw_only=True)
class ReceivedMessage:
    """One message a test server accepted, exactly as it arrived.

    Attributes:
        mail_from: the reverse-path of ``MAIL FROM``; ``""`` for the null sender ``<>``.
        rcpt_tos: the recipients accepted with ``RCPT TO``, in order (for LMTP, only those
            that also got a 2xx reply after the data).
        data: the message bytes after dot-unstuffing (RFC 5321 section 4.5.2), without the
            final ``.`` line; for ``BDAT`` the concatenated chunks.
        mail_options: the ``MAIL FROM`` parameters as sent, e.g. ``("BODY=8BITMIME",)``.
        rcpt_options: the parameters of each ``RCPT TO``, aligned with ``rcpt_tos``.
        peer: the client's ``(host, port)``.
        tls: whether the transaction ran over TLS (STARTTLS or implicit).
        auth_user: the user name the client authenticated as, if it did.
        helo: the name the client gave in ``EHLO``, ``HELO`` or ``LHLO``.
    """

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    mail_options: tuple[str, ...] = ()
    rcpt_options: tuple[tuple[str, ...], ...] = ()
    peer: tuple[str, int]
    tls: bool = False
    auth_user: str | None = None
    helo: str | None = None

    def parsed(self) -> EmailMessage:
        """Parse ``data`` with the modern ``email`` policy.

        Returns:
            The message as an `email.message.EmailMessage`.
        """
        return BytesParser(policy=email.policy.default).parsebytes(self.data)


@dataclass(slots=True)
class _Rule:
    command: str
    address: str | None
    reply: str | None
    delay: float
    remaining: int | None


def _reply_line(code: int, text: str, *, lowest: int) -> str:
    if not lowest <= code <= 599:
        raise ValueError(f"code must be an SMTP reply code from {lowest} to 599, got {code!r}")
    if any(ch in text for ch in "\r\n\x00"):
        raise ValueError("text must be one line without CR, LF or NUL")
    return f"{code} {text}".rstrip()


class Faults:
    """Refusals and delays that a `RecordingServer` applies to later commands.

    Every method adds a rule; ``times`` limits how often it fires (``None``: for ever), so
    ``refuse_recipient("a@x.test", 451, "4.7.1 Try later", times=1)`` models greylisting.
    Rules are matched in the order they were added. Safe to call from any thread.

    Example:
        >>> with RecordingServer() as server:  # doctest: +SKIP
        ...     server.faults.refuse_recipient("nobody@example.test")
        ...     server.faults.reply_to_data(452, "4.3.1 Out of space", times=1)
    """

    def __init__(self) -> None:
        """Start with no rules."""
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []

    def _add(self, rule: _Rule, times: int | None) -> None:
        if times is not None and times < 1:
            raise ValueError(f"times must be a positive integer or None, got {times!r}")
        with self._lock:
            self._rules.append(rule)

    def refuse_sender(
        self,
        address: str | None = None,
        code: int = 550,
        text: str = "5.7.1 Sender refused",
        *,
        times: int | None = None,
    ) -> None:
        """Answer ``MAIL FROM`` with an error.

        Args:
            address: the reverse-path to refuse (case-insensitive); ``None`` for any sender.
            code: the reply code, 400-599.
            text: the reply text, conventionally starting with an enhanced status code.
            times: how many times the rule fires; ``None`` for every time.

        Raises:
            ValueError: ``code``, ``text`` or ``times`` is out of range.
        """
        reply = _reply_line(code, text, lowest=400)
        self._add(_Rule("MAIL", address, reply, 0.0, times), times)

    def refuse_recipient(
        self,
        address: str | None = None,
        code: int = 550,
        text: str = "5.1.1 Mailbox unavailable",
        *,
        times: int | None = None,
    ) -> None:
        """Answer ``RCPT TO`` with an error.

        Args:
            address: the recipient to refuse (case-insensitive); ``None`` for every recipient.
            code: the reply code, 400-599.
            text: the reply text.
            times: how many times the rule fires; ``None`` for every time.

        Raises:
            ValueError: ``code``, ``text`` or ``times`` is out of range.
        """
        reply = _reply_line(code, text, lowest=400)
        self._add(_Rule("RCPT", address, reply, 0.0, times), times)

    def reply_to_data(
        self,
        code: int = 554,
        text: str = "5.6.0 Message refused",
        *,
        recipient: str | None = None,
        times: int | None = None,
    ) -> None:
        """Replace the reply after the end of the data (the final ``.``).

        A 2xx code is allowed, to test how a client reads unusual success text. With LMTP,
        each recipient gets its own reply (RFC 2033 section 4.2) and ``recipient`` picks one;
        every recipient's reply uses up one of ``times``. A refused message is not recorded.

        Args:
            code: the reply code, 200-599.
            text: the reply text.
            recipient: for LMTP, the recipient whose reply changes; ``None`` for all.
            times: how many times the rule fires; ``None`` for every time.

        Raises:
            ValueError: ``code``, ``text`` or ``times`` is out of range.
        """
        reply = _reply_line(code, text, lowest=200)
        self._add(_Rule("DATA", recipient, reply, 0.0, times), times)

    def delay(self, command: str, seconds: float, *, times: int | None = None) -> None:
        """Wait before replying to a command, e.g. to trip a client's timeout.

        Args:
            command: one of ``EHLO`` (also ``LHLO``), ``MAIL``, ``RCPT``, ``DATA`` (the reply
                after the final ``.``), ``RSET`` or ``NOOP``.
            seconds: how long to wait.
            times: how many times the rule fires; ``None`` for every time.

        Raises:
            ValueError: an unsupported command, or a negative delay.
        """
        verb = command.upper()
        if verb not in {"EHLO", "MAIL", "RCPT", "DATA", "RSET", "NOOP"}:
            raise ValueError(
                f"command must be EHLO, MAIL, RCPT, DATA, RSET or NOOP, not {command!r}"
            )
        if seconds < 0:
            raise ValueError(f"seconds must be zero or more, got {seconds!r}")
        self._add(_Rule(verb, None, None, seconds, times), times)

    def clear(self) -> None:
        """Remove every rule."""
        with self._lock:
            self._rules.clear()

    def _take(self, command: str, address: str | None = None) -> tuple[str | None, float]:
        """Consume the matching rules: the first refusal and every delay."""
        reply: str | None = None
        delay = 0.0
        with self._lock:
            for rule in list(self._rules):
                if rule.command != command:
                    continue
                if rule.address is not None and (
                    address is None or rule.address.lower() != address.lower()
                ):
                    continue
                if rule.reply is None:
                    delay += rule.delay
                elif reply is None:
                    reply = rule.reply
                else:
                    continue
                if rule.remaining is not None:
                    rule.remaining -= 1
                    if rule.remaining == 0:
                        self._rules.remove(rule)
        return reply, delay


class _LoopThread:
    """An asyncio event loop running in a daemon thread, shared by the in-process servers."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            # Cancel what is left so no "Task was destroyed but it is pending" at exit.
            tasks = asyncio.all_tasks(self.loop)
            for task in tasks:
                task.cancel()
            if tasks:
                self.loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    def run(self, coro: Coroutine[Any, Any, _T], timeout: float = 10.0) -> _T:
        """Run a coroutine on the loop thread and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout)
        elif not self.loop.is_closed():
            self.loop.close()


def _import_aiosmtpd() -> None:
    try:
        import aiosmtpd.smtp  # noqa: F401, PLC0415  (optional extra: imported on use)
    except ImportError as exc:
        raise ImportError(
            f"RecordingServer needs aiosmtpd; install it with: {_INSTALL_HINT}"
        ) from exc


def _is_tls(server: SMTP) -> bool:
    transport = server.transport
    return transport is not None and transport.get_extra_info("ssl_object") is not None


class _Recorder:
    """The aiosmtpd handler: applies the faults and records what is accepted."""

    def __init__(self, owner: RecordingServer) -> None:
        self._owner = owner

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        owner = self._owner
        _, delay = owner.faults._take("EHLO")
        await asyncio.sleep(delay)
        # With a handle_EHLO hook aiosmtpd leaves remembering the name to us.
        session.host_name = hostname
        lines = [
            r for r in responses[:-1] if owner._auth is not None or not r.startswith("250-AUTH")
        ]
        lines.extend(f"250-{keyword}" for keyword in owner._extensions)
        lines.append(responses[-1])
        return lines

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        owner = self._owner
        if owner._require_auth and not session.authenticated:
            return "530 5.7.0 Authentication required"  # RFC 4954 section 6
        reply, delay = owner.faults._take("MAIL", "" if address == "<>" else address)
        await asyncio.sleep(delay)
        if reply is not None:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(getattr(server, "mt_params", ()))
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        reply, delay = self._owner.faults._take("RCPT", address)
        await asyncio.sleep(delay)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.append(tuple(getattr(server, "mt_params", ())))  # type: ignore[arg-type]
        return "250 2.1.5 OK"

    async def handle_RSET(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        _, delay = self._owner.faults._take("RSET")
        await asyncio.sleep(delay)
        return "250 2.0.0 OK"

    async def handle_NOOP(
        self, server: SMTP, session: Session, envelope: Envelope, arg: str
    ) -> str:
        _, delay = self._owner.faults._take("NOOP")
        await asyncio.sleep(delay)
        return "250 2.0.0 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        owner = self._owner
        accepted: list[int] = []
        lines: list[str] = []
        delay = 0.0
        # LMTP answers once per accepted recipient, in RCPT order (RFC 2033 section 4.2).
        targets = list(envelope.rcpt_tos) if owner._lmtp else [None]
        for index, target in enumerate(targets):
            reply, wait = owner.faults._take("DATA", target)
            delay += wait
            if reply is None:
                reply = f"250 2.0.0 <{target}> delivered" if owner._lmtp else "250 2.0.0 OK: queued"
            lines.append(reply)
            if reply.startswith("2"):
                accepted.extend(range(len(envelope.rcpt_tos)) if target is None else [index])
        await asyncio.sleep(delay)
        if accepted:
            auth = session.auth_data if session.authenticated else None
            login = getattr(auth, "login", None)
            peer: Any = session.peer  # typed str in aiosmtpd, really (host, port)
            raw_options: list[Any] = list(envelope.rcpt_options)
            owner._record(
                ReceivedMessage(
                    mail_from="" if envelope.mail_from == "<>" else (envelope.mail_from or ""),
                    rcpt_tos=tuple(envelope.rcpt_tos[i] for i in accepted),
                    data=envelope.original_content or b"",
                    mail_options=tuple(envelope.mail_options),
                    rcpt_options=tuple(tuple(raw_options[i]) for i in accepted),
                    peer=(str(peer[0]), int(peer[1])) if isinstance(peer, tuple) else ("", 0),
                    tls=_is_tls(server),
                    auth_user=login.decode("utf-8", "replace")
                    if isinstance(login, bytes)
                    else None,
                    helo=session.host_name,
                )
            )
        return "\r\n".join(lines)

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        from aiosmtpd.smtp import AuthResult  # noqa: PLC0415  (optional extra)

        users = self._owner._auth or {}
        login = getattr(auth_data, "login", b"")
        password = getattr(auth_data, "password", b"")
        expected = users.get(login.decode("utf-8", "replace"))
        if expected is not None and hmac.compare_digest(expected.encode(), password):
            return AuthResult(success=True, auth_data=auth_data)
        return AuthResult(success=False, handled=False)


@functools.cache
def _protocol_class(lmtp: bool) -> type[SMTP]:
    """Build the aiosmtpd protocol subclass (aiosmtpd is imported only here)."""
    from aiosmtpd.smtp import SMTP, syntax  # noqa: PLC0415  (optional extra)

    class _Protocol(SMTP):
        mt_params: tuple[str, ...] = ()

        def __init__(self, owner: RecordingServer, **kwargs: Any) -> None:
            super().__init__(owner._handler, **kwargs)
            self._mt_owner = owner
            # Wrap every command so the transcript shows what the client sent.
            for name, method in list(self._smtp_methods.items()):
                self._smtp_methods[name] = self._mt_wrap(name, method)
            if lmtp:
                for name in ("HELO", "EHLO"):
                    self._smtp_methods[name] = self._mt_wrap(name, self._mt_not_lmtp(name))
            else:
                self._smtp_methods.pop("LHLO", None)

        def _mt_wrap(self, name: str, method: Any) -> Any:
            @functools.wraps(method)
            async def wrapper(arg: str | None) -> None:
                self._mt_owner._record_command(name, arg)
                await method(arg)

            return wrapper

        def _mt_not_lmtp(self, name: str) -> Any:
            async def refuse(arg: str | None) -> None:
                await self.push(f'500 5.5.1 Error: command "{name}" not recognized')

            return refuse

        @syntax("LHLO hostname")
        async def smtp_LHLO(self, arg: str) -> None:
            # RFC 2033 section 4.1: LHLO replaces EHLO and takes the same reply.
            await self.smtp_EHLO(arg)

        def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
            address, rest = super()._getaddr(arg)
            # aiosmtpd upper-cases parameters; keep them as sent (ENVID and ORCPT are xtext).
            self.mt_params = tuple((rest or "").split())
            return address, rest

        def _getparams(self, params: Any) -> dict[str, str | bool] | None:
            accepted = self._mt_owner._accepted_parameters
            result: dict[str, str | bool] = {}
            for param in params:
                name, eq, value = param.partition("=")
                if not name.replace("-", "").isalnum() or (eq and not value):
                    return None
                if name.upper() not in accepted:
                    result[name] = value if eq else True
            return result

    return _Protocol


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
        _import_aiosmtpd()
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
            *(_EXTENSION_PARAMETERS.get(e.split()[0], frozenset()) for e in self._extensions)
        )
        self._handler = _Recorder(self)
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
        protocol_class = _protocol_class(self._lmtp)

        def factory() -> SMTP:
            protocol = protocol_class(self, loop=loop, **self._smtp_kwargs)
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
