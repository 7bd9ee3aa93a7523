"""A tiny in-memory SMTP/LMTP server side for driving the sans-I/O client core in tests.

:class:`FakeServer` reads the exact bytes the client produced (command lines,
DATA bodies up to ``CRLF . CRLF``, BDAT chunks by their announced size) and
answers each command with reply bytes from a script. It checks nothing about
the client's behaviour by itself: it records what arrived, so tests can.
It is written independently of the client's state machine on purpose.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from mailtransfer.protocol import NEED_DATA, Connection, ConnectionClosed, Response
from mailtransfer.protocol._connection import Event

Answer = Callable[[str], str]
"""Given a command line (``"."`` for the end of DATA), the reply text, e.g. ``"250 ok"``."""

DEFAULT_EXTENSIONS = ("PIPELINING", "8BITMIME", "SIZE 1000000", "ENHANCEDSTATUSCODES")


def reply_bytes(text: str) -> bytes:
    """``"250 ok"`` or ``"250-a\\n250 b"`` as wire bytes (CRLF after every line)."""
    return b"".join(line.encode() + b"\r\n" for line in text.split("\n"))


def ehlo_text(extensions: Iterable[str], name: str = "mx.example.test") -> str:
    """The text of a 250 EHLO reply listing ``extensions``."""
    lines = [name, *extensions]
    return "\n".join(
        f"250{'-' if i < len(lines) - 1 else ' '}{line}" for i, line in enumerate(lines)
    )


def always_ok(extensions: Iterable[str] = DEFAULT_EXTENSIONS) -> Answer:
    """A server that accepts everything: 250 (EHLO lists ``extensions``), 354, 220, 221, 235."""
    ehlo = ehlo_text(extensions)

    def answer(line: str) -> str:
        verb = line.split(" ", 1)[0].upper()
        if verb in ("EHLO", "LHLO"):
            return ehlo
        if verb == "DATA":
            return "354 go ahead"
        if verb == "STARTTLS":
            return "220 ready to start TLS"
        if verb == "QUIT":
            return "221 bye"
        if verb == "AUTH":
            return "235 2.7.0 authenticated"
        return "250 2.0.0 ok"

    return answer


@dataclass
class FakeServer:
    """The server end of one session: client bytes in, scripted reply bytes out.

    Args:
        answer: decides each reply; :func:`always_ok` by default.
        lmtp: after a message, answer once per recipient whose RCPT got a 2xx.
    """

    answer: Answer = field(default_factory=always_ok)
    lmtp: bool = False
    commands: list[str] = field(default_factory=list)
    """Every command line received, without CRLF ("." stands for each end of DATA)."""
    messages: list[bytes] = field(default_factory=list)
    """Every message received: DATA bodies un-dot-stuffed, BDAT chunks joined."""
    received: bytearray = field(default_factory=bytearray)
    """Every byte the client sent."""
    replies_sent: int = 0
    """How many replies the server has produced (the greeting not counted)."""
    _buffer: bytearray = field(default_factory=bytearray)
    _mode: str = "command"
    _chunk_left: int = 0
    _chunk_last: bool = False
    _chunks: bytearray = field(default_factory=bytearray)
    _last_bdat: str = ""
    _accepted: int = 0

    def greeting(self, text: str = "220 mx.example.test ESMTP") -> bytes:
        """The greeting bytes."""
        return reply_bytes(text)

    def receive(self, data: bytes) -> bytes:
        """Take bytes from the client; return every reply they call for, in order."""
        self.received += data
        self._buffer += data
        out = bytearray()
        while True:
            produced = self._step()
            if produced is None:
                return bytes(out)
            out += produced

    def _step(self) -> bytes | None:
        if self._mode == "data":
            # The body starts right after the DATA line, so the mark may be its first bytes.
            wire = b"\r\n" + bytes(self._buffer)
            end = wire.find(b"\r\n.\r\n")
            if end < 0:
                return None
            body = wire[2 : end + 2] if end > 0 else b""
            del self._buffer[: end + 3]
            self.messages.append(_unstuff(body))
            self._mode = "command"
            self.commands.append(".")
            return self._end_of_message(".")
        if self._mode == "bdat":
            take = min(self._chunk_left, len(self._buffer))
            self._chunks += self._buffer[:take]
            del self._buffer[:take]
            self._chunk_left -= take
            if self._chunk_left:
                return None
            self._mode = "command"
            if self._chunk_last:
                self.messages.append(bytes(self._chunks))
                self._chunks = bytearray()
                return self._end_of_message(self._last_bdat)
            return self._reply(self._last_bdat)
        end = self._buffer.find(b"\r\n")
        if end < 0:
            return None
        line = self._buffer[:end].decode("utf-8", "replace")
        del self._buffer[: end + 2]
        self.commands.append(line)
        verb = line.split(" ", 1)[0].upper()
        if verb == "BDAT":
            words = line.split()
            self._chunk_left = int(words[1])
            self._chunk_last = len(words) > 2 and words[2].upper() == "LAST"
            self._last_bdat = line
            self._mode = "bdat"
            return b""
        text = self.answer(line)
        self.replies_sent += 1
        code = int(text[:3])
        if verb == "MAIL":
            self._accepted = 0
        elif verb == "RCPT" and 200 <= code < 300:
            self._accepted += 1
        elif verb == "DATA" and code == 354:
            self._mode = "data"
        return reply_bytes(text)

    def _end_of_message(self, line: str) -> bytes:
        count = self._accepted if self.lmtp and self._accepted else 1
        return b"".join(self._reply(line) for _ in range(count))

    def _reply(self, line: str) -> bytes:
        self.replies_sent += 1
        return reply_bytes(self.answer(line))


def _unstuff(body: bytes) -> bytes:
    body = body.replace(b"\r\n..", b"\r\n.")
    return body[1:] if body.startswith(b"..") else body


def drain(conn: Connection) -> list[Event]:
    """Every event the connection can produce now, up to NEED_DATA or ConnectionClosed."""
    events: list[Event] = []
    while True:
        event = conn.next_event()
        if event is NEED_DATA:
            return events
        events.append(event)
        if isinstance(event, ConnectionClosed):
            return events


def exchange(conn: Connection, server: FakeServer, data: bytes) -> list[Response]:
    """Give the client's ``data`` to the server, its replies to the client; the responses."""
    conn.receive_data(server.receive(data))
    events = drain(conn)
    assert all(isinstance(e, Response) for e in events), events
    return [e for e in events if isinstance(e, Response)]


def opened(
    extensions: Iterable[str] = DEFAULT_EXTENSIONS,
    *,
    lmtp: bool = False,
    answer: Answer | None = None,
    **options: int,
) -> tuple[Connection, FakeServer]:
    """A connection past the greeting and EHLO (LHLO), READY, and its server."""
    from mailtransfer.protocol import Ehlo, Lhlo

    server = FakeServer(answer or always_ok(extensions), lmtp=lmtp)
    conn = Connection(lmtp=lmtp, **options)
    conn.receive_data(server.greeting())
    drain(conn)
    exchange(conn, server, conn.send(Lhlo("client.example") if lmtp else Ehlo("client.example")))
    return conn, server


def snapshot(conn: Connection) -> tuple[object, ...]:
    """Everything a failed send must leave unchanged."""
    return (
        conn.state,
        conn.pending,
        conn.transcript(),
        conn.extensions,
        conn.accepted_recipients,
        conn.tls_active,
        conn.has_buffered_data(),
    )
