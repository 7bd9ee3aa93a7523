"""The sans-I/O SMTP/LMTP client connection: commands in, bytes out; bytes in, responses out.

Strategy: :class:`Connection` never touches a socket or a clock. The caller
writes what :meth:`Connection.send` returns and feeds what it reads to
:meth:`Connection.receive_data`; :meth:`Connection.next_event` then hands back
each reply matched to the command it answers. Commands are checked against
the state table (``_state.py``) and the server's extensions before any byte is
produced; replies are matched in order, which is all PIPELINING needs.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import NoReturn

from ._data import DataEncoder, encode_data
from ._errors import (
    ExtensionNotSupported,
    LocalProtocolError,
    MessageTooLarge,
    RemoteProtocolError,
    SMTPUTF8Required,
)
from ._events import (
    NEED_DATA,
    Bdat,
    Command,
    ConnectionClosed,
    EndOfData,
    MailFrom,
    NeedData,
    RcptTo,
    Response,
)
from ._extensions import Extensions
from ._reply import Reply, ReplyParser
from ._state import GROUP_ENDING, SEND_TRANSITIONS, State, reply_transition

__all__ = ["Connection", "Event"]

Event = Response | ConnectionClosed | NeedData
"""What :meth:`Connection.next_event` returns."""

_PIPELINABLE_AFTER = frozenset({"MAIL", "RCPT", "RSET", "BDAT"})


class Connection:
    """One client-side SMTP (or LMTP) session, as a state machine.

    Example:
        >>> conn = Connection()
        >>> conn.receive_data(b"220 mx.example.org ESMTP\\r\\n")
        >>> conn.next_event().reply.code
        220
        >>> conn.send(Ehlo("client.example.org"))
        b'EHLO client.example.org\\r\\n'

    Args:
        lmtp: speak LMTP (RFC 2033): one reply per accepted recipient after the data.
        max_line_length: the longest reply line accepted, in bytes.
        max_lines: the most lines one reply may have.
        transcript_size: how many transcript entries to keep (oldest dropped first).
    """

    def __init__(
        self,
        *,
        lmtp: bool = False,
        max_line_length: int = 4096,
        max_lines: int = 512,
        transcript_size: int = 200,
    ) -> None:
        self.lmtp = lmtp
        self.state = State.GREETING
        self.extensions = Extensions.empty()
        self.tls_active = False
        self.trace: Callable[[str], None] | None = None
        """Called with each redacted transcript line, when set (the drivers log through it)."""
        self._parser = ReplyParser(max_line_length=max_line_length, max_lines=max_lines)
        # Commands whose replies are awaited, oldest first; None stands for the greeting.
        self._pending: deque[tuple[Command | None, str | None]] = deque([(None, None)])
        self._eof = False
        self._transaction_open = False
        self._mail: MailFrom | None = None
        self._accepted: list[str] = []
        self._encoder: DataEncoder | None = None
        self._body_bytes = 0
        self._transcript: deque[tuple[str, object]] = deque(maxlen=transcript_size)

    # -- information ---------------------------------------------------------------

    @property
    def pending(self) -> int:
        """How many replies are still awaited."""
        return len(self._pending)

    @property
    def accepted_recipients(self) -> tuple[str, ...]:
        """Recipients of the current transaction whose RCPT the server accepted."""
        return tuple(self._accepted)

    def has_buffered_data(self) -> bool:
        """Whether bytes from the server wait unparsed (after STARTTLS's 220 that is an attack)."""
        return bool(self._parser.buffered())

    def transcript(self) -> tuple[str, ...]:
        """The redacted session transcript: ``C: ...`` and ``S: ...`` lines, secrets masked."""
        return tuple(_render(kind, item) for kind, item in self._transcript)

    # -- sending -------------------------------------------------------------------

    def send(self, command: Command) -> bytes:
        """Check ``command`` against the state and the server's extensions; return its bytes.

        Raises:
            LocalProtocolError: the command is not allowed now (wrong state, or
                it would be pipelined to a server without PIPELINING).
            ExtensionNotSupported: it needs an extension the server lacks
                (``SMTPUTF8Required`` for internationalised addresses).
            MessageTooLarge: ``MAIL`` declares a size above the server's ``SIZE``.
        """
        verb = command.verb
        if isinstance(command, EndOfData):
            return self._end_of_data()
        new_state = SEND_TRANSITIONS.get((self.state, verb))
        if new_state is None:
            self._fail_local(f"cannot send {verb} in state {self.state.name}")
        self._check_pipelining(verb)
        if isinstance(command, MailFrom):
            self._check_mail(command)
            self._mail = command
            self._accepted = []
            self._transaction_open = False
        elif isinstance(command, RcptTo):
            self._check_rcpt(command)
        elif isinstance(command, Bdat):
            if not self.extensions.chunking:
                raise ExtensionNotSupported("BDAT needs the CHUNKING extension, not offered")
            if command.last:
                new_state = State.END
        if new_state is State.END and self.lmtp:
            self._expect_lmtp_replies(command)
        else:
            self._pending.append((command, None))
        self.state = new_state
        self._record("C", command)
        return command.to_bytes()

    def send_bdat(self, chunk: bytes, *, last: bool) -> bytes:
        """``BDAT len(chunk) [LAST]`` followed by ``chunk``, as one buffer (RFC 3030).

        The caller normalises line endings first (unless the body is BINARYMIME).
        """
        return self.send(Bdat(len(chunk), last)) + chunk

    def send_data(self, chunk: bytes) -> bytes:
        """Encode a piece of the message body (after 354): CRLF line endings, dot-stuffing."""
        if self.state is not State.BODY:
            self._fail_local(f"cannot send message data in state {self.state.name}")
        if self._encoder is None:
            self._encoder = DataEncoder()
            self._body_bytes = 0
        self._body_bytes += len(chunk)
        return self._encoder.feed(chunk)

    def send_body(self, message: bytes) -> bytes:
        """Encode a whole message body and its end-of-data mark in one go (the fast path)."""
        if self.state is not State.BODY or self._encoder is not None:
            self._fail_local(f"cannot send a message body in state {self.state.name}")
        wire = encode_data(message)
        self._finish_body(len(message))
        return wire

    def _end_of_data(self) -> bytes:
        if self.state is not State.BODY:
            self._fail_local(f"cannot end the message data in state {self.state.name}")
        encoder = self._encoder or DataEncoder()
        size = self._body_bytes if self._encoder is not None else 0
        self._encoder = None
        tail = encoder.finish()
        self._finish_body(size)
        return tail

    def _finish_body(self, size: int) -> None:
        self._transcript.append(("C", f"<message body, {size} bytes>"))
        command = EndOfData()
        if self.lmtp:
            self._expect_lmtp_replies(command)
        else:
            self._pending.append((command, None))
        self.state = State.END
        self._record("C", command)

    def _expect_lmtp_replies(self, command: Command) -> None:
        # RFC 2033 4.2: one reply per recipient whose RCPT succeeded, in order.
        for recipient in self._accepted or [""]:
            self._pending.append((command, recipient or None))

    def tls_established(self) -> None:
        """Tell the core the TLS handshake after STARTTLS is done.

        Everything learnt before TLS is forgotten (RFC 3207 4.2): the buffered
        bytes, and the extensions; the client must send EHLO again.
        """
        if self.state is not State.STARTTLS:
            self._fail_local(f"TLS established in state {self.state.name}, expected STARTTLS")
        self._parser.clear()
        self.extensions = Extensions.empty()
        self.tls_active = True
        self.state = State.CONNECTED
        self._transcript.append(("*", "TLS established"))

    def implicit_tls(self) -> None:
        """Mark the session as running inside TLS from the start (port 465, RFC 8314)."""
        self.tls_active = True

    # -- receiving -----------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Feed bytes read from the server; ``b""`` means the server closed the connection."""
        if data:
            self._parser.feed(data)
        else:
            self._eof = True

    def next_event(self) -> Event:
        """The next reply matched to its command, ``NEED_DATA``, or ``ConnectionClosed``.

        Raises:
            RemoteProtocolError: the server sent a malformed or oversized reply,
                or a reply nobody asked for. The session is then in ``ERROR``.
        """
        if self.state is State.ERROR:
            raise RemoteProtocolError("the connection is in the ERROR state")
        try:
            reply = self._parser.next_reply()
        except RemoteProtocolError:
            self.state = State.ERROR
            raise
        if reply is None:
            if self._eof:
                self.state = State.CLOSED
                self._transcript.append(("*", "connection closed by server"))
                return ConnectionClosed()
            return NEED_DATA
        self._record("S", reply)
        if not self._pending:
            if reply.code == 421 or self.state is State.BODY:
                # RFC 5321 3.8: a server may send 421 at any time before closing; and a
                # server may refuse a message in the middle of its body. Either way the
                # session is over: hand the reply up so it can be reported.
                self.state = State.CLOSED
                return Response(None, reply)
            self.state = State.ERROR
            raise RemoteProtocolError(f"unsolicited reply from the server: {reply}")
        command, recipient = self._pending.popleft()
        verb = "" if command is None else command.verb
        self._on_reply(verb, command, reply)
        return Response(command, reply, recipient)

    def _on_reply(self, verb: str, command: Command | None, reply: Reply) -> None:
        code = reply.code
        if verb == "MAIL" and 200 <= code < 300:
            self._transaction_open = True
        elif verb == "RCPT" and 200 <= code < 300 and isinstance(command, RcptTo):
            self._accepted.append(command.recipient)
        elif verb in ("EHLO", "LHLO") and 200 <= code < 300:
            self.extensions = Extensions.from_ehlo(reply)
        elif verb == "HELO" and 200 <= code < 300:
            self.extensions = Extensions.from_helo(reply)
        if self._pending and verb in (".", "BDAT") and self._pending[0][0] is command:
            return  # LMTP: more per-recipient replies to this end-of-data are coming
        new_state = reply_transition(
            self.state, verb, code, transaction_open=self._transaction_open
        )
        if new_state is not self.state and new_state in (State.READY, State.CONNECTED):
            self._transaction_open = False
        if verb in ("RSET", ".") or (verb == "BDAT" and self.state is State.END):
            self._transaction_open = False
        self.state = new_state

    # -- checks --------------------------------------------------------------------

    def _check_pipelining(self, verb: str) -> None:
        if not self._pending:
            return
        pipelining = self.extensions.pipelining or self.lmtp
        if not pipelining:
            self._fail_local(f"cannot send {verb} before the previous reply: no PIPELINING")
        last = self._pending[-1][0]
        if last is None or last.verb in GROUP_ENDING or last.verb not in _PIPELINABLE_AFTER:
            self._fail_local(f"cannot pipeline {verb} after {last.verb if last else 'greeting'}")

    def _check_mail(self, command: MailFrom) -> None:
        ext = self.extensions
        limit = ext.size
        if command.size is not None and limit and command.size > limit:
            raise MessageTooLarge(
                f"message is {command.size} bytes; the server accepts at most {limit} (SIZE)"
            )
        if command.smtputf8 and not ext.smtputf8:
            raise SMTPUTF8Required(
                f"sender {command.sender!r} needs SMTPUTF8, which the server does not offer"
            )
        if command.body == "8BITMIME" and not ext.eightbitmime:
            raise ExtensionNotSupported("BODY=8BITMIME needs the 8BITMIME extension, not offered")
        if command.body == "BINARYMIME" and not (ext.binarymime and ext.chunking):
            raise ExtensionNotSupported("BODY=BINARYMIME needs BINARYMIME and CHUNKING")
        if (command.ret or command.envid) and not ext.dsn:
            raise ExtensionNotSupported("RET/ENVID need the DSN extension, not offered")
        if command.requiretls and not (ext.requiretls and self.tls_active):
            raise ExtensionNotSupported(
                "REQUIRETLS needs a TLS session and a server offering REQUIRETLS (RFC 8689)"
            )

    def _check_rcpt(self, command: RcptTo) -> None:
        if (command.notify or command.orcpt) and not self.extensions.dsn:
            raise ExtensionNotSupported("NOTIFY/ORCPT need the DSN extension, not offered")
        if command.needs_smtputf8 and not (self._mail and self._mail.smtputf8):
            raise SMTPUTF8Required(
                f"recipient {command.recipient!r} needs SMTPUTF8 in the MAIL command"
            )

    def _fail_local(self, message: str) -> NoReturn:
        raise LocalProtocolError(message)

    def _record(self, kind: str, item: object) -> None:
        self._transcript.append((kind, item))
        if self.trace is not None:
            self.trace(_render(kind, item))

    def __repr__(self) -> str:
        return (
            f"<Connection [{self.state.name}{' TLS' if self.tls_active else ''}"
            f"{' LMTP' if self.lmtp else ''} | pending: {len(self._pending)}]>"
        )


def _render(kind: str, item: object) -> str:
    if isinstance(item, Reply):
        return "\n".join(
            f"S: {item.code}{'-' if i < len(item.lines) - 1 else ' '}{line}"
            for i, line in enumerate(item.lines)
        )
    if isinstance(item, str):
        return f"{kind}: {item}"
    redacted = getattr(item, "redacted", None)
    text = redacted() if callable(redacted) else repr(item)
    return f"{kind}: {text}"
