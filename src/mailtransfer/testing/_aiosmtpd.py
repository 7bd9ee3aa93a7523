"""The aiosmtpd side of `RecordingServer`: its handler and its protocol subclass.

aiosmtpd is imported only when a server is built (`import_aiosmtpd`, `protocol_class`), so
the rest of `mailtransfer.testing` works without the ``testing`` extra.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
from typing import TYPE_CHECKING, Any

from ._received import ReceivedMessage

if TYPE_CHECKING:
    from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

    from ._recording import RecordingServer

__all__ = ["EXTENSION_PARAMETERS", "Recorder", "import_aiosmtpd", "protocol_class"]

_INSTALL_HINT = "pip install 'mailtransfer[testing]'"

# Parameters each extension adds to MAIL and RCPT. aiosmtpd itself knows only SIZE, BODY and
# SMTPUTF8 and answers 555 to anything else, which is right for unadvertised extensions.
EXTENSION_PARAMETERS: dict[str, frozenset[str]] = {
    "DSN": frozenset({"ENVID", "RET", "NOTIFY", "ORCPT"}),  # RFC 3461 sections 4.1-4.4
    "REQUIRETLS": frozenset({"REQUIRETLS"}),  # RFC 8689 section 4.1
    "MT-PRIORITY": frozenset({"MT-PRIORITY"}),  # RFC 6710 section 3
    "DELIVERBY": frozenset({"BY"}),  # RFC 2852 section 4
    "FUTURERELEASE": frozenset({"HOLDFOR", "HOLDUNTIL"}),  # RFC 4865 section 3
    "RRVS": frozenset({"RRVS"}),  # RFC 7293 section 3.1
}


def import_aiosmtpd() -> None:
    try:
        import aiosmtpd.smtp  # noqa: F401, PLC0415  (optional extra: imported on use)
    except ImportError as exc:
        raise ImportError(
            f"RecordingServer needs aiosmtpd; install it with: {_INSTALL_HINT}"
        ) from exc


def _is_tls(server: SMTP) -> bool:
    transport = server.transport
    return transport is not None and transport.get_extra_info("ssl_object") is not None


class Recorder:
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
        if owner.faults._hangup(".") is not None:
            if server.transport is not None:
                server.transport.close()  # no reply: the client cannot tell if it was delivered
            return "421 4.4.2 Closing"  # never reaches the client: the transport is closed
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
def protocol_class(lmtp: bool) -> type[SMTP]:
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
                hangup = self._mt_owner.faults._hangup(name)
                if hangup is None:
                    await method(arg)
                    return
                if hangup:
                    await self.push(hangup)
                if self.transport is not None:
                    self.transport.close()

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
