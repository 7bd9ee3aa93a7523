"""Ready-made fault scripts for `ScriptedServer`: each returns a script.

Together they cover the fault matrix of the project's threat notes. Every script except
`greeting_then_close` and `silent` behaves as a correct server (`EsmtpScript`) until its
fault point.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable

from ._esmtp import _CRLF, DEFAULT_EXTENSIONS, EsmtpScript
from ._peer import Script, ScriptedPeer, ScriptError

__all__ = [
    "disconnect_after",
    "disconnect_mid_data",
    "endless_auth_challenge",
    "endless_continuation",
    "greeting_then_close",
    "oversized_line",
    "reply_421_after",
    "silent",
    "starttls_injection",
    "trickle",
]


def _matcher(command: bytes | str | None) -> Callable[[bytes], bool]:
    verb = command.encode("ascii") if isinstance(command, str) else command or b"CONNECT"
    verb = verb.strip().upper()
    if verb == b"CONNECT":
        return lambda line: line == b""
    if verb == b".":
        return lambda line: line == b".\r\n"
    return lambda line: line.rstrip(b"\r\n").partition(b" ")[0].upper() == verb


def _at(
    command: bytes | str | None,
    action: Callable[[ScriptedPeer, bytes], Awaitable[None]],
    extensions: tuple[str, ...] = DEFAULT_EXTENSIONS,
) -> EsmtpScript:
    """An `EsmtpScript` that runs ``action`` instead of its reply to ``command``."""
    matches = _matcher(command)

    async def intercept(peer: ScriptedPeer, line: bytes) -> bool:
        if not matches(line):
            return False
        await action(peer, line)
        return True

    return EsmtpScript(extensions=extensions, intercept=intercept)


def greeting_then_close(greeting: bytes = b"220 scripted.test ESMTP\r\n") -> Script:
    """Send ``greeting`` (e.g. a ``421``) and close the connection."""

    async def script(peer: ScriptedPeer) -> None:
        await peer.send(greeting)
        peer.close()

    return script


def silent() -> Script:
    """Accept the connection and never say anything, until the client gives up."""

    async def script(peer: ScriptedPeer) -> None:
        await peer.wait_closed()

    return script


def trickle(
    reply: bytes | None = None, interval: float = 0.5, *, after: bytes | str | None = None
) -> Script:
    """Send a reply one byte every ``interval`` seconds (a slowloris server).

    Args:
        reply: the bytes to trickle; by default a greeting, or ``250 ok`` after a command.
        interval: seconds between bytes.
        after: the command whose reply trickles; ``None`` for the greeting.
    """
    data = reply or (b"220 scripted.test ESMTP\r\n" if after is None else b"250 2.0.0 ok\r\n")

    async def action(peer: ScriptedPeer, line: bytes) -> None:
        for index in range(len(data)):
            if peer.closed:
                return
            await peer.send(data[index : index + 1])
            await peer.sleep(interval)

    return _at(after, action)


def disconnect_after(command: bytes | str) -> Script:
    """Close without replying when ``command`` arrives (``"."``: after the data, before the reply).

    ``"CONNECT"`` closes before the greeting.
    """

    async def action(peer: ScriptedPeer, line: bytes) -> None:
        peer.close()

    return _at(command, action)


def disconnect_mid_data(after_bytes: int = 1, *, reset: bool = False) -> Script:
    """Reply ``354`` to DATA, read ``after_bytes`` of the body, then close (or reset)."""

    async def action(peer: ScriptedPeer, line: bytes) -> None:
        await peer.send(b"354 End data with <CR><LF>.<CR><LF>\r\n")
        try:
            await peer.read_exactly(after_bytes)
        except ScriptError:
            return
        peer.abort() if reset else peer.close()

    return _at("DATA", action)


def reply_421_after(
    command: bytes | str, reply: bytes = b"421 4.3.2 Service shutting down\r\n"
) -> Script:
    """Answer ``command`` (or ``"."``, or ``"CONNECT"``) with a 421 and close (RFC 5321 3.8)."""

    async def action(peer: ScriptedPeer, line: bytes) -> None:
        await peer.send(reply)
        peer.close()

    return _at(command, action)


def oversized_line(length: int = 8192, *, after: bytes | str | None = None) -> Script:
    """Reply with one line of ``length`` bytes (CRLF included): far over RFC 5321's 512."""

    async def action(peer: ScriptedPeer, line: bytes) -> None:
        prefix = b"220 " if line == b"" else b"250 "
        await peer.send(prefix + b"x" * max(0, length - 6) + _CRLF)

    return _at(after, action)


def endless_continuation(
    *, after: bytes | str | None = "EHLO", line: bytes | None = None
) -> Script:
    """Answer with continuation lines (``250-...``) that never end, until the client closes."""

    async def action(peer: ScriptedPeer, command: bytes) -> None:
        chunk = (line or (b"220-still greeting\r\n" if command == b"" else b"250-more\r\n")) * 64
        while not peer.closed:
            await peer.send(chunk)
            await asyncio.sleep(0)  # let the loop breathe even when the socket never blocks

    return _at(after, action)


def endless_auth_challenge() -> Script:
    """Advertise AUTH and answer every client response with another ``334`` challenge."""

    async def action(peer: ScriptedPeer, line: bytes) -> None:
        while not peer.closed:
            await peer.send(b"334 \r\n")
            answer = await peer.readline(timeout=None)
            if not answer:
                return
            if answer.strip() == b"*":
                await peer.send(b"501 5.7.0 Authentication cancelled\r\n")
                return

    return _at("AUTH", action, (*DEFAULT_EXTENSIONS, "AUTH PLAIN LOGIN"))


def starttls_injection(
    tls: ssl.SSLContext | None = None,
    *,
    reply: bytes = b"220 2.0.0 Go ahead\r\n",
    injected: bytes = b"250-evil\r\n",
) -> Script:
    """Answer STARTTLS with ``reply + injected`` in one segment (THREATS.md S4).

    A safe client aborts. With ``tls``, a client that carries on gets a real handshake and
    the server continues normally afterwards; without it the script waits for the close.
    """

    async def action(peer: ScriptedPeer, line: bytes) -> None:
        await peer.send(reply + injected)  # one write: one TCP segment on loopback
        if tls is None:
            await peer.wait_closed()
            return
        try:
            await peer.start_tls(tls)
        except (ssl.SSLError, OSError):
            peer.close()

    return _at("STARTTLS", action, (*DEFAULT_EXTENSIONS, "STARTTLS"))
