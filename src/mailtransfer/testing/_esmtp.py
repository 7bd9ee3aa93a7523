"""`EsmtpScript`: a small, correct ESMTP server as a script, with PIPELINING and CHUNKING.

aiosmtpd has no BDAT, so `RecordingServer` cannot test CHUNKING; this script can. It answers
pipelined commands in order and records what it accepts; an ``intercept`` bends it at one
command, which is how the ready-made fault scripts (`mailtransfer.testing._scripts`) work.
"""

from __future__ import annotations

import base64
import binascii
import ssl
from collections.abc import Awaitable, Callable

from ._peer import ScriptedPeer, ScriptError
from ._received import ReceivedMessage

__all__ = ["DEFAULT_EXTENSIONS", "EsmtpScript", "Intercept", "basic_ok_server"]


DEFAULT_EXTENSIONS: tuple[str, ...] = (
    "PIPELINING",
    "8BITMIME",
    "SMTPUTF8",
    "ENHANCEDSTATUSCODES",
    "CHUNKING",
    "DSN",
    "SIZE 33554432",
)
"""The EHLO keywords `basic_ok_server` advertises by default."""

Intercept = Callable[[ScriptedPeer, bytes], Awaitable[bool]]
"""``async def intercept(peer, line) -> bool``: return True when it handled ``line`` itself."""

_CRLF = b"\r\n"


def _unstuff(body: bytes) -> bytes:
    # RFC 5321 section 4.5.2: drop the first "." of every line that starts with one.
    return _CRLF.join(line[1:] if line.startswith(b".") else line for line in body.split(_CRLF))


def _closing(peer: ScriptedPeer) -> bool:
    transport = peer._conn.transport
    return transport is None or transport.is_closing()


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _path(argument: bytes, keyword: bytes) -> tuple[str, tuple[str, ...]] | None:
    """Split ``FROM:<a@example.test> BODY=8BITMIME`` into the address and the parameters."""
    if argument[: len(keyword)].upper() != keyword:
        return None
    rest = argument[len(keyword) :].strip()
    if rest.startswith(b"<"):
        end = rest.find(b">")
        if end < 0:
            return None
        address, params = rest[1:end], rest[end + 1 :]
    else:
        address, _, params = rest.partition(b" ")
    return _text(address), tuple(_text(p) for p in params.split())


class _Session:
    def __init__(self) -> None:
        self.helo: str | None = None
        self.auth_user: str | None = None
        self.reset()

    def reset(self) -> None:
        self.mail_from: str | None = None
        self.mail_options: tuple[str, ...] = ()
        self.rcpt_tos: list[str] = []
        self.rcpt_options: list[tuple[str, ...]] = []
        self.chunks = bytearray()


class EsmtpScript:
    """A small, correct ESMTP (or LMTP) server script that accepts every message.

    It handles EHLO/HELO/LHLO, STARTTLS, AUTH PLAIN and LOGIN (any credentials), MAIL, RCPT,
    DATA, BDAT (RFC 3030), RSET, NOOP, VRFY and QUIT, answers pipelined commands in order, and
    records each message in `messages`. An ``intercept`` hook sees every line first and
    can take over, which is how the ready-made fault scripts are built.

    Args:
        extensions: the EHLO keywords to advertise (STARTTLS is added when ``tls`` is set).
        hostname: the name in the greeting and the EHLO reply.
        tls: a server context; enables STARTTLS.
        lmtp: speak LMTP (RFC 2033): LHLO, and one reply per recipient after the data.
        intercept: ``async def intercept(peer, line) -> bool``, called with ``b""`` when the
            client connects (before the greeting), with every command line, and with
            ``b".\\r\\n"`` at the end of the message data (after the final ``.`` or the
            ``BDAT LAST`` chunk, before the reply). Return True if it handled the line; the
            script ends once the connection is closed.

    Attributes:
        messages: every message accepted, on any connection.
    """

    def __init__(
        self,
        *,
        extensions: tuple[str, ...] | list[str] = DEFAULT_EXTENSIONS,
        hostname: str = "scripted.test",
        tls: ssl.SSLContext | None = None,
        lmtp: bool = False,
        intercept: Intercept | None = None,
    ) -> None:
        self.extensions = tuple(extensions)
        self.hostname = hostname
        self.tls = tls
        self.lmtp = lmtp
        self.intercept = intercept
        self.messages: list[ReceivedMessage] = []
        self._enhanced = any(e.upper() == "ENHANCEDSTATUSCODES" for e in self.extensions)
        hello = {b"LHLO": self._ehlo} if lmtp else {b"EHLO": self._ehlo, b"HELO": self._helo}
        self._commands: dict[bytes, Callable[[ScriptedPeer, bytes, _Session], Awaitable[bool]]] = {
            **hello,
            b"STARTTLS": self._starttls,
            b"AUTH": self._auth,
            b"MAIL": self._mail,
            b"RCPT": self._rcpt,
            b"DATA": self._data,
            b"BDAT": self._bdat,
            b"RSET": self._rset,
            b"NOOP": self._simple,
            b"VRFY": self._simple,
            b"QUIT": self._quit,
        }

    def _reply(self, code: int, enhanced: str, text: str) -> bytes:
        # RFC 2034 section 3: enhanced codes only when ENHANCEDSTATUSCODES was advertised.
        status = f" {enhanced}" if self._enhanced and enhanced else ""
        return f"{code}{status} {text}\r\n".encode()

    async def __call__(self, peer: ScriptedPeer) -> None:
        """Serve one connection until the client quits or goes away."""
        if self.intercept is None or not await self.intercept(peer, b""):
            await peer.send(f"220 {self.hostname} ESMTP scripted\r\n".encode())
        session = _Session()
        # Stop when our side closed, not at the client's EOF: a client that half-closes
        # after pipelining its last commands still gets its replies.
        while not _closing(peer):
            line = await peer.readline(timeout=None)
            if not line:
                return
            if self.intercept is not None and await self.intercept(peer, line):
                continue
            verb, _, argument = line.rstrip(b"\r\n").partition(b" ")
            handler = self._commands.get(verb.upper())
            if handler is None:
                await peer.send(self._reply(500, "5.5.2", "Error: command not recognized"))
            elif not await handler(peer, argument.strip(), session):
                return

    async def _ehlo(self, peer: ScriptedPeer, argument: bytes, session: _Session) -> bool:
        session.reset()
        session.helo = _text(argument)
        names = [self.hostname]
        names += [e for e in self.extensions if not (peer.tls and e.upper() == "STARTTLS")]
        if self.tls is not None and not peer.tls and "STARTTLS" not in names:
            names.append("STARTTLS")
        lines = [f"250-{n}\r\n" for n in names[:-1]] + [f"250 {names[-1]}\r\n"]
        await peer.send("".join(lines).encode())
        return True

    async def _helo(self, peer: ScriptedPeer, argument: bytes, session: _Session) -> bool:
        session.reset()
        session.helo = _text(argument)
        await peer.send(f"250 {self.hostname}\r\n".encode())
        return True

    async def _starttls(self, peer: ScriptedPeer, argument: bytes, session: _Session) -> bool:
        if self.tls is None or peer.tls:
            await peer.send(self._reply(454, "4.7.0", "TLS not available"))
            return True
        await peer.send(self._reply(220, "2.0.0", "Ready to start TLS"))
        try:
            await peer.start_tls(self.tls)
        except (ssl.SSLError, OSError):
            return False  # the client refused the handshake: its decision, not a script error
        # RFC 3207 section 4.2: forget everything learnt before TLS.
        session.__init__()  # type: ignore[misc]
        return True

    async def _auth(self, peer: ScriptedPeer, argument: bytes, session: _Session) -> bool:
        mechanism, _, initial = argument.partition(b" ")
        prompts = {b"PLAIN": [b""], b"LOGIN": [b"VXNlcm5hbWU6", b"UGFzc3dvcmQ6"]}.get(
            mechanism.upper()
        )
        if prompts is None:
            await peer.send(self._reply(504, "5.5.4", "Unrecognized authentication type"))
            return True
        answers = [initial] if initial else []
        for prompt in prompts[len(answers) :]:
            await peer.send(b"334 " + prompt + _CRLF)
            answer = await peer.readline(timeout=None)
            if not answer:
                return False
            answers.append(answer.strip())
        try:
            if b"*" in answers:
                raise ValueError("cancelled")  # RFC 4954 section 4
            decoded = [base64.b64decode(a, validate=True) for a in answers]
            user = decoded[0].split(b"\0")[1] if len(prompts) == 1 else decoded[0]
        except (binascii.Error, ValueError, IndexError):
            await peer.send(self._reply(501, "5.5.2", "Cannot decode response"))
            return True
        session.auth_user = _text(user)
        await peer.send(self._reply(235, "2.7.0", "Authentication successful"))
        return True

    async def _mail(self, peer: ScriptedPeer, argument: bytes, session: _Session) -> bool:
        parsed = _path(argument, b"FROM:")
        if parsed is None:
            await peer.send(self._reply(501, "5.5.4", "Syntax: MAIL FROM:<address>"))
        elif session.mail_from is not None:
            await peer.send(self._reply(503, "5.5.1", "Error: nested MAIL command"))
        else:
            session.mail_from, session.mail_options = parsed
            await peer.send(self._reply(250, "2.1.0", "Ok"))
        return True

    async def _rcpt(self, peer: ScriptedPeer, argument: bytes, session: _Session) -> bool:
        parsed = _path(argument, b"TO:")
        if session.mail_from is None:
            await peer.send(self._reply(503, "5.5.1", "Error: need MAIL command"))
        elif parsed is None:
            await peer.send(self._reply(501, "5.5.4", "Syntax: RCPT TO:<address>"))
        else:
            session.rcpt_tos.append(parsed[0])
            session.rcpt_options.append(parsed[1])
            await peer.send(self._reply(250, "2.1.5", "Ok"))
        return True

    async def _data(self, peer: ScriptedPeer, argument: bytes, session: _Session) -> bool:
        if not session.rcpt_tos:
            await peer.send(self._reply(503, "5.5.1", "Error: need RCPT command"))
            return True
        await peer.send(b"354 End data with <CR><LF>.<CR><LF>\r\n")
        try:
            body = await peer.read_until_dot(timeout=None)
        except ScriptError:
            return False  # the client went away mid-data
        return await self._finish(peer, session, _unstuff(body))

    async def _bdat(self, peer: ScriptedPeer, argument: bytes, session: _Session) -> bool:
        parts = argument.split()
        if not parts or not parts[0].isdigit() or len(parts) > 2:
            await peer.send(self._reply(501, "5.5.4", "Syntax: BDAT size [LAST]"))
            return True
        size = int(parts[0])
        try:
            chunk = await peer.read_exactly(size, timeout=None)
        except ScriptError:
            return False
        if not session.rcpt_tos:
            # RFC 3030 section 2: the chunk is read (to stay in step) and then refused.
            await peer.send(self._reply(503, "5.5.1", "Error: need RCPT command"))
            return True
        session.chunks += chunk
        if len(parts) == 2 and parts[1].upper() == b"LAST":
            return await self._finish(peer, session, bytes(session.chunks))
        await peer.send(self._reply(250, "2.0.0", f"{size} octets received"))
        return True

    async def _finish(self, peer: ScriptedPeer, session: _Session, data: bytes) -> bool:
        if self.intercept is not None and await self.intercept(peer, b".\r\n"):
            session.reset()
            return not peer.closed
        assert session.mail_from is not None
        self.messages.append(
            ReceivedMessage(
                mail_from=session.mail_from,
                rcpt_tos=tuple(session.rcpt_tos),
                data=data,
                mail_options=session.mail_options,
                rcpt_options=tuple(session.rcpt_options),
                peer=peer.address,
                tls=peer.tls,
                auth_user=session.auth_user,
                helo=session.helo,
            )
        )
        if self.lmtp:  # RFC 2033 section 4.2: one reply per accepted recipient
            reply = b"".join(
                self._reply(250, "2.1.5", f"<{rcpt}> delivered") for rcpt in session.rcpt_tos
            )
        else:
            reply = self._reply(250, "2.0.0", "Ok: queued")
        session.reset()
        await peer.send(reply)
        return True

    async def _rset(self, peer: ScriptedPeer, argument: bytes, session: _Session) -> bool:
        session.reset()  # RFC 5321 4.1.1.5: RSET aborts the mail transaction
        await peer.send(self._reply(250, "2.0.0", "Ok"))
        return True

    async def _simple(self, peer: ScriptedPeer, argument: bytes, session: _Session) -> bool:
        await peer.send(self._reply(250, "2.0.0", "Ok"))
        return True

    async def _quit(self, peer: ScriptedPeer, argument: bytes, session: _Session) -> bool:
        await peer.send(self._reply(221, "2.0.0", "Bye"))
        peer.close()
        return False


def basic_ok_server(
    *,
    extensions: tuple[str, ...] | list[str] = DEFAULT_EXTENSIONS,
    hostname: str = "scripted.test",
    tls: ssl.SSLContext | None = None,
    lmtp: bool = False,
) -> EsmtpScript:
    """A correct ESMTP server that accepts everything; fast, with PIPELINING and CHUNKING.

    Returns:
        An `EsmtpScript`; its ``messages`` list fills as mail arrives.
    """
    return EsmtpScript(extensions=extensions, hostname=hostname, tls=tls, lmtp=lmtp)
