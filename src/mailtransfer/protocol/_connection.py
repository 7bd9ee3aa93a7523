"""The sans-I/O SMTP/LMTP client connection: commands in, bytes out; bytes in, responses out.

Strategy: :class:`Connection` never touches a socket or a clock. The caller
writes what :meth:`Connection.send` returns and feeds what it reads to
:meth:`Connection.receive_data`; :meth:`Connection.next_event` then hands back
each reply matched to the command it answers. Commands are checked against
the state table (``_state.py``) and the server's extensions before any byte is
produced, and nothing changes unless every check passed; replies are matched
in order, which is all PIPELINING needs.
"""

from __future__ import annotations

import operator
import re
from collections import deque
from collections.abc import Callable, Sequence
from typing import NamedTuple, NoReturn

from ._data import DataEncoder, encode_data
from ._errors import (
    ExtensionNotSupported,
    LocalProtocolError,
    MessageTooLarge,
    RemoteProtocolError,
    SMTPUTF8Required,
    UsageError,
)
from ._events import (
    NEED_DATA,
    Auth,
    AuthResponse,
    Bdat,
    Command,
    ConnectionClosed,
    Data,
    Ehlo,
    EndOfData,
    Helo,
    Lhlo,
    MailFrom,
    NeedData,
    Noop,
    Quit,
    RcptTo,
    Response,
    Rset,
    StartTLS,
    Vrfy,
    make_response,
)
from ._extensions import Extensions
from ._reply import Reply, ReplyParser
from ._state import (
    EVENT_TRANSITIONS,
    GROUP_ENDING,
    PIPELINABLE_AFTER,
    REPLY_MOVES,
    SEND_TRANSITIONS,
    State,
    remember_reply_transition,
)

__all__ = ["Connection", "Event"]

Event = Response | ConnectionClosed | NeedData
"""What :meth:`Connection.next_event` returns."""

# States in which the server holds an open (or failed, RSET-needing) mail transaction.
_TRANSACTION_STATES = frozenset({State.MAIL, State.DATA, State.BODY, State.BDAT, State.END})
# Enum members read through the class cost a metaclass lookup each time; the hot paths
# read these module globals instead.
_BODY = State.BODY
_END = State.END
_CLOSED = State.CLOSED
_ERROR = State.ERROR
# C0 and C1 controls and DEL in server text: shown escaped, so a reply cannot forge log lines.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f]")


class _Awaited(NamedTuple):
    """One reply the connection waits for.

    Built in the hot path with ``_new_awaited(_Awaited, (...))``: a C call, where the
    generated ``__new__`` would be a Python one. The fields are in this order.
    """

    command: Command | None
    """The command it answers; None for the greeting."""
    key: str
    """The command's verb in the state tables ("" for the greeting, "BDAT LAST")."""
    recipient: str | None = None
    """LMTP: the recipient this reply to the end of the message is about."""
    per_recipient: bool = False
    """LMTP end of message: stands for one reply per accepted recipient, counted when reached."""
    final: bool = True
    """False for all but the last of the per-recipient replies: the state waits for the last."""
    transaction: int = 0
    """Which MAIL the command came after: a later MAIL (pipelined after RSET) supersedes it."""


_new_awaited = tuple.__new__
_GroupMemo = tuple[
    State,  # the state the group was sent in
    "str | None",  # the key of the last command awaiting a reply then
    "MailFrom | None",  # the transaction's MAIL then
    Extensions,
    bool,  # TLS active
    "tuple[Command, ...]",  # the commands
    "tuple[tuple[int, str, State], ...]",  # each one's kind, key and new state
]
_END_OF_DATA = EndOfData()  # immutable, so one serves every message

# How send() treats each command class: the few with checks or bookkeeping of their own,
# and the rest. Looked up by exact type; anything else (a subclass) goes by isinstance.
_KIND_OTHER, _KIND_MAIL, _KIND_RCPT, _KIND_BDAT, _KIND_END = range(5)
_KINDS: dict[type, int] = {
    MailFrom: _KIND_MAIL,
    RcptTo: _KIND_RCPT,
    Bdat: _KIND_BDAT,
    EndOfData: _KIND_END,
    **dict.fromkeys(
        (Ehlo, Helo, Lhlo, StartTLS, Auth, AuthResponse, Data, Rset, Noop, Quit, Vrfy), _KIND_OTHER
    ),
}
# Verbs only some sessions may send (_check_dialect), and verbs with checks of their own.
_DIALECT_KEYS = frozenset({"EHLO", "HELO", "LHLO"})
_CHECKED_KEYS = frozenset({"BDAT", "BDAT LAST", "DATA", "STARTTLS", "AUTH"})
# What _check_pipelining lets another command follow unanswered, given PIPELINING.
_MAY_BE_FOLLOWED = PIPELINABLE_AFTER - GROUP_ENDING


def _kind_of(command: Command) -> int:
    for cls, kind in (
        (EndOfData, _KIND_END),
        (MailFrom, _KIND_MAIL),
        (RcptTo, _KIND_RCPT),
        (Bdat, _KIND_BDAT),
    ):
        if isinstance(command, cls):
            return kind
    return _KIND_OTHER


class Connection:
    """One client-side SMTP (or LMTP) session, as a state machine.

    Example:
        >>> from mailtransfer.protocol import Connection, Ehlo
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

    Raises:
        UsageError: a bound is too small (or ``transcript_size`` is not an int >= 0).
    """

    def __init__(
        self,
        *,
        lmtp: bool = False,
        max_line_length: int = 4096,
        max_lines: int = 512,
        transcript_size: int = 200,
    ) -> None:
        if type(transcript_size) is not int or transcript_size < 0:
            raise UsageError(f"transcript_size must be an int >= 0, got {transcript_size!r}")
        self.lmtp = lmtp
        self.state = State.GREETING
        self.extensions = Extensions.empty()
        self.tls_active = False
        self._parser = ReplyParser(max_line_length=max_line_length, max_lines=max_lines)
        # Replies awaited, oldest first; the first one is the greeting.
        self._pending: deque[_Awaited] = deque([_Awaited(None, "")])
        self._eof = False
        self._eof_reported = False
        self._transaction_open = False
        self._transaction = 0
        """Counts the MAIL commands sent; replies to earlier transactions no longer steer."""
        self._mail: MailFrom | None = None
        self._mail_checked: tuple[MailFrom, Extensions, bool] | None = None
        """The last MAIL that passed _check_mail, with the extensions and TLS flag it met."""
        self._group_checked: _GroupMemo | None = None
        """The last group that passed its checks, with everything the checks depended on."""
        self._accepted: list[str] = []
        self._encoder: DataEncoder | None = None
        self._body_bytes = 0
        # Entries are the items themselves, their kind told by their type (see _render):
        # a Reply, a Command, an int (a body's size) or a str (an event).
        self._transcript: deque[object] = deque(maxlen=transcript_size)
        self._record: Callable[[object], None] = self._transcript.append
        """Keep a transcript entry (and trace it, when a tracer is set: see ``trace``)."""
        self._trace: Callable[[str], None] | None = None

    # -- information ---------------------------------------------------------------

    @property
    def pending(self) -> int:
        """How many replies are still awaited.

        An LMTP end of message counts once per accepted recipient; while RCPT
        replies are still outstanding, those not yet accepted are not counted.
        """
        if not self.lmtp:  # only an LMTP end of message stands for several replies
            return len(self._pending)
        lmtp_replies = max(1, len(self._accepted))
        return sum(lmtp_replies if a.per_recipient else 1 for a in self._pending)

    @property
    def accepted_recipients(self) -> tuple[str, ...]:
        """Recipients of the current transaction whose RCPT the server accepted."""
        return tuple(self._accepted)

    def has_buffered_data(self) -> bool:
        """Whether bytes from the server wait unparsed (after STARTTLS's 220 that is an attack)."""
        return bool(self._parser.buffered())

    def transcript(self) -> tuple[str, ...]:
        """The redacted session transcript, one entry per command, reply or event.

        Commands read ``C: ...``, replies ``S: ...`` (a multi-line reply is one
        entry with its lines joined by newlines), events ``*: ...``. Credentials
        are masked, the message body appears only as its size, and control
        characters in server text are escaped.
        """
        return tuple(_render(item) for item in self._transcript)

    # -- sending -------------------------------------------------------------------

    def send(self, command: Command) -> bytes:
        """Check ``command`` against the state and the server's extensions; return its bytes.

        Nothing changes when a check fails: the command was not sent.

        Raises:
            LocalProtocolError: the command is not allowed now (wrong state,
                wrong dialect, or it would be pipelined where that is not allowed).
            ExtensionNotSupported: it needs an extension the server lacks
                (``SMTPUTF8Required`` for internationalised addresses).
            MessageTooLarge: ``MAIL`` declares a size above the server's ``SIZE``.
        """
        kind = _KINDS.get(type(command))
        if kind is None:
            kind = _kind_of(command)
        if kind == _KIND_END:
            return self._end_of_data()
        pending = self._pending
        key, new_state = self._check(
            command, kind, self.state, pending[-1].key if pending else None, self._mail
        )
        return self._commit(command, kind, key, new_state)

    def send_group(self, commands: Sequence[Command]) -> bytes:
        """Check a pipelined group of commands as a whole; return their bytes, in order.

        What :meth:`send` does for each command in turn, except that every check
        runs before anything changes: when one command fails, none counts as sent,
        so a group is written whole or not at all (``MAIL``, ``RCPT``... ``DATA``).

        Raises:
            LocalProtocolError, ExtensionNotSupported, MessageTooLarge: as
                :meth:`send`, for the first command that fails; also when the group
                holds the end-of-data mark, which ends a body, not a group.
        """
        pending = self._pending
        last = pending[-1].key if pending else None
        # A run of messages sends the same envelope commands again and again: the checks
        # depend only on what the memo holds, so passing them once is enough.
        memo = self._group_checked
        if (
            memo is None
            or memo[0] is not self.state
            or memo[1] != last
            or memo[2] is not self._mail
            or memo[3] is not self.extensions
            or memo[4] is not self.tls_active
            or len(memo[5]) != len(commands)
            or not (all(map(operator.is_, memo[5], commands)) or _checked_alike(memo[5], commands))
        ):
            memo = self._check_group(commands, last)
        return b"".join(
            [
                self._commit(command, kind, key, new_state)
                for command, (kind, key, new_state) in zip(commands, memo[6], strict=True)
            ]
        )

    def _check_group(self, commands: Sequence[Command], last: str | None) -> _GroupMemo:
        state, mail, awaited_last = self.state, self._mail, last
        plan: list[tuple[int, str, State]] = []
        for command in commands:
            kind = _KINDS.get(type(command))
            if kind is None:
                kind = _kind_of(command)
            if kind == _KIND_END:
                self._fail_local("the end of the message data cannot be sent in a group")
            key, state = self._check(command, kind, state, last, mail)
            if kind == _KIND_MAIL:
                mail = command  # type: ignore[assignment]
            last = key
            plan.append((kind, key, state))
        memo: _GroupMemo = (
            self.state,
            awaited_last,
            self._mail,
            self.extensions,
            self.tls_active,
            tuple(commands),
            tuple(plan),
        )
        self._group_checked = memo
        return memo

    def _check(
        self, command: Command, kind: int, state: State, last: str | None, mail: MailFrom | None
    ) -> tuple[str, State]:
        """The command's key and the state it leads to from ``state``; raises if not allowed.

        ``last``: the key of the last command still awaiting its reply (None: none);
        ``mail``: the MAIL command of the transaction. Changes nothing but the MAIL memo.
        """
        key = ("BDAT LAST" if command.last else "BDAT") if kind == _KIND_BDAT else command.verb  # type: ignore[union-attr]
        new_state = SEND_TRANSITIONS.get((state, key))
        if new_state is None:
            self._fail_local(f"cannot send {key} in state {state.name}")
        if key in _DIALECT_KEYS:
            self._check_dialect(key)
        if last is not None and not (
            self.extensions.pipelining and last in _MAY_BE_FOLLOWED and not self.lmtp
        ):
            self._check_pipelining(key, last)  # raises, saying which rule the command breaks
        if kind == _KIND_MAIL:
            # MAIL commands are immutable and often reused (one per envelope): the checks
            # depend only on the command, the extensions and TLS, so passing once is enough.
            checked = self._mail_checked
            ext = self.extensions
            if (
                checked is None
                or checked[0] is not command
                or checked[1] is not ext
                or checked[2] is not self.tls_active
            ):
                self._check_mail(command)  # type: ignore[arg-type]
                self._mail_checked = (command, ext, self.tls_active)  # type: ignore[assignment]
        elif kind == _KIND_RCPT:
            self._check_rcpt(command, mail)  # type: ignore[arg-type]
        elif key in _CHECKED_KEYS:
            self._check_command(command, mail)
        return key, new_state

    def _commit(self, command: Command, kind: int, key: str, new_state: State) -> bytes:
        """Every check passed: from here on, the command counts as sent."""
        wire = command.to_bytes()
        if kind == _KIND_MAIL:
            self._mail = command  # type: ignore[assignment]
            self._accepted = []
            self._transaction_open = False
            self._transaction += 1
        self._expect(command, key, new_state)
        self.state = new_state
        self._record(command)
        return wire

    def send_bdat(self, chunk: bytes, *, last: bool) -> bytes:
        """``BDAT len(chunk) [LAST]`` followed by ``chunk``, as one buffer (RFC 3030).

        The caller normalises line endings first (unless the body is BINARYMIME).

        Raises:
            UsageError: ``chunk`` is not bytes-like.
        """
        _check_bytes(chunk)
        return self.send(Bdat(len(chunk), last)) + chunk

    def send_data(self, chunk: bytes) -> bytes:
        """Encode a piece of the message body (after 354): CRLF line endings, dot-stuffing.

        Raises:
            LocalProtocolError: the server has not said 354 to DATA.
            UsageError: ``chunk`` is not bytes-like.
        """
        if self.state is not _BODY:
            self._fail_local(f"cannot send message data in state {self.state.name}")
        _check_bytes(chunk)
        if self._encoder is None:
            self._encoder = DataEncoder()
            self._body_bytes = 0
        self._body_bytes += len(chunk)
        return self._encoder.feed(chunk)

    def send_body(self, message: bytes) -> bytes:
        """Encode a whole message body and its end-of-data mark in one go (the fast path).

        Raises:
            LocalProtocolError: the server has not said 354 to DATA, or part of
                the body already went through :meth:`send_data`.
            UsageError: ``message`` is not bytes-like.
        """
        if self.state is not _BODY:
            self._fail_local(f"cannot send a message body in state {self.state.name}")
        if self._encoder is not None:
            self._fail_local("cannot send a whole body after send_data(); send EndOfData()")
        _check_bytes(message)
        wire = encode_data(message)
        self._finish_body(len(message))
        return wire

    def _end_of_data(self) -> bytes:
        if (self.state, ".") not in SEND_TRANSITIONS:
            self._fail_local(f"cannot end the message data in state {self.state.name}")
        encoder = self._encoder or DataEncoder()
        size = self._body_bytes if self._encoder is not None else 0
        tail = encoder.finish()
        self._encoder = None
        self._finish_body(size)
        return tail

    def _finish_body(self, size: int) -> None:
        self._record(size)  # rendered "C: <message body, N bytes>"
        new_state = SEND_TRANSITIONS[(self.state, ".")]
        self._expect(_END_OF_DATA, ".", new_state)
        self.state = new_state
        self._record(_END_OF_DATA)

    def _expect(self, command: Command, key: str, new_state: State) -> None:
        # RFC 2033 4.2: LMTP answers the end of a message once per accepted
        # recipient. How many were accepted may not be known yet (pipelined
        # RCPTs), so one entry stands for them all until it is reached.
        per_recipient = self.lmtp and new_state is _END
        self._pending.append(
            _new_awaited(_Awaited, (command, key, None, per_recipient, True, self._transaction))
        )

    def tls_established(self) -> None:
        """Tell the core the TLS handshake after STARTTLS is done.

        Everything learnt before TLS is forgotten (RFC 3207 4.2): the buffered
        bytes, and the extensions; the client must send EHLO again.

        Raises:
            LocalProtocolError: the server has not said 220 to STARTTLS.
        """
        new_state = EVENT_TRANSITIONS.get((self.state, "tls_established()"))
        if new_state is None:
            self._fail_local(f"TLS established in state {self.state.name}, expected STARTTLS")
        self._parser.clear()
        self.extensions = Extensions.empty()
        self.tls_active = True
        self.state = new_state
        self._record("TLS established")

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
        if self.state is _ERROR:
            raise RemoteProtocolError("the connection is in the ERROR state")
        try:
            reply = self._parser.next_reply()
        except RemoteProtocolError:
            self.state = _ERROR
            raise
        if reply is None:
            if self._eof:
                self.state = _CLOSED
                if not self._eof_reported:
                    self._eof_reported = True
                    self._record("connection closed by server")
                return ConnectionClosed()
            return NEED_DATA
        self._record(reply)
        pending = self._pending
        if not pending:
            if reply.code == 421 or self.state is _BODY:
                # RFC 5321 3.8: a server may send 421 at any time before closing; and a
                # server may refuse a message in the middle of its body. Either way the
                # session is over: hand the reply up so it can be reported.
                self.state = _CLOSED
                return Response(None, reply)
            self.state = _ERROR
            raise RemoteProtocolError(f"unsolicited reply from the server: {_escape(str(reply))}")
        awaited = pending.popleft()
        command, key, recipient, per_recipient, final, transaction = awaited
        if per_recipient:
            awaited = self._one_per_recipient(awaited)
            command, key, recipient, _, final, transaction = awaited
        # Where the reply takes the session (inline: this runs for every reply).
        code = reply.code
        if transaction != self._transaction:
            # A reply for a transaction that a pipelined RSET and MAIL already replaced:
            # the state is the newer transaction's; only a 421 still concerns it.
            if code == 421:
                self.state = _CLOSED
            return make_response(command, reply, recipient)
        if 200 <= code < 300:
            if key == "MAIL":
                self._transaction_open = True
            elif key == "RCPT":
                if isinstance(command, RcptTo):
                    self._accepted.append(command.recipient)
            elif key in ("EHLO", "LHLO"):
                self.extensions = Extensions.from_ehlo(reply)
            elif key == "HELO":
                self.extensions = Extensions.from_helo(reply)
        if final:
            state = self.state
            transaction_open = self._transaction_open
            new_state = REPLY_MOVES.get((state, key, code, transaction_open))
            if new_state is None:
                new_state = remember_reply_transition(state, key, code, transaction_open)
            self.state = new_state
            if new_state not in _TRANSACTION_STATES:
                self._transaction_open = False
        # else LMTP: more per-recipient replies to this end of message are coming.
        return make_response(command, reply, recipient)

    def _one_per_recipient(self, awaited: _Awaited) -> _Awaited:
        # Reached in order, so every RCPT reply of the transaction is in. Only a
        # message that went through whole gets per-recipient replies: after a
        # refused MAIL or a failed BDAT chunk the server answers once.
        recipients = self._accepted if self.state is _END else []
        if not recipients:
            return awaited._replace(per_recipient=False)
        last = len(recipients) - 1
        rest = [
            awaited._replace(recipient=recipient, per_recipient=False, final=i == last)
            for i, recipient in enumerate(recipients)
        ]
        self._pending.extendleft(reversed(rest[1:]))
        return rest[0]

    # -- checks --------------------------------------------------------------------

    def _check_dialect(self, key: str) -> None:
        # RFC 2033 4.1: an LMTP session opens with LHLO, and an LMTP server refuses EHLO/HELO.
        if self.lmtp and key in ("EHLO", "HELO"):
            self._fail_local(f"cannot send {key} in an LMTP session: use LHLO (RFC 2033 4.1)")
        if not self.lmtp and key == "LHLO":
            self._fail_local(
                "cannot send LHLO in an SMTP session: use EHLO (or Connection(lmtp=True))"
            )

    def _check_pipelining(self, key: str, last: str) -> None:
        pipelining = self.extensions.pipelining or self.lmtp
        if not pipelining:
            self._fail_local(f"cannot send {key} before the previous reply: no PIPELINING")
        if last in GROUP_ENDING or last not in PIPELINABLE_AFTER:
            self._fail_local(f"cannot pipeline {key} after {last or 'the greeting'}")
        if last == "." and self.lmtp:
            # RFC 2033 4.2: the end of an LMTP message gets one reply per accepted
            # recipient; how many is only known once the RCPT replies are all in.
            self._fail_local(f"cannot pipeline {key} after the end of an LMTP message")

    def _check_command(self, command: Command, mail: MailFrom | None) -> None:
        # The checks of the verbs in _CHECKED_KEYS; MAIL and RCPT have their own.
        ext = self.extensions
        verb = command.verb
        if isinstance(command, Bdat):
            if not ext.chunking:
                raise ExtensionNotSupported("BDAT needs the CHUNKING extension, not offered")
        elif verb == "DATA":
            if mail is not None and mail.body == "BINARYMIME":
                self._fail_local(
                    "a BODY=BINARYMIME message must go with BDAT, not DATA (RFC 3030 3)"
                )
        elif verb == "STARTTLS":
            if self.tls_active:
                self._fail_local("cannot send STARTTLS: TLS is already active (RFC 3207 4.2)")
            if not ext.starttls:
                raise ExtensionNotSupported("STARTTLS needs the STARTTLS extension, not offered")
        elif verb == "AUTH" and not (ext.auth or ext.has("AUTH")):
            raise ExtensionNotSupported("AUTH needs the AUTH extension, not offered (RFC 4954)")

    def _check_mail(self, command: MailFrom) -> None:
        ext = self.extensions
        limit = ext.size
        if command.size is not None:
            if not ext.has("SIZE"):
                raise ExtensionNotSupported("SIZE= needs the SIZE extension, not offered")
            if limit and command.size > limit:
                raise MessageTooLarge(
                    f"message is {command.size} bytes; the server accepts at most {limit} (SIZE)"
                )
        if command.smtputf8 and not ext.smtputf8:
            raise SMTPUTF8Required(
                "MAIL asks for SMTPUTF8 (internationalised addresses), "
                "which the server does not offer"
            )
        if command.body == "7BIT" and not (ext.eightbitmime or ext.binarymime):
            raise ExtensionNotSupported("BODY=7BIT needs the 8BITMIME extension, not offered")
        if command.body == "8BITMIME" and not ext.eightbitmime:
            raise ExtensionNotSupported("BODY=8BITMIME needs the 8BITMIME extension, not offered")
        if command.body == "BINARYMIME" and not (ext.binarymime and ext.chunking):
            raise ExtensionNotSupported("BODY=BINARYMIME needs BINARYMIME and CHUNKING")
        if (command.ret is not None or command.envid is not None) and not ext.dsn:
            raise ExtensionNotSupported("RET/ENVID need the DSN extension, not offered")
        if command.requiretls and not (ext.requiretls and self.tls_active):
            raise ExtensionNotSupported(
                "REQUIRETLS needs a TLS session and a server offering REQUIRETLS (RFC 8689)"
            )

    def _check_rcpt(self, command: RcptTo, mail: MailFrom | None) -> None:
        # Every check here must pass for a RCPT that _plain_rcpt() accepts (send_group's memo).
        if (command.notify is not None or command.orcpt is not None) and not self.extensions.dsn:
            raise ExtensionNotSupported("NOTIFY/ORCPT need the DSN extension, not offered")
        if command.needs_smtputf8 and not (mail and mail.smtputf8):
            raise SMTPUTF8Required(
                f"recipient {command.recipient!r} needs SMTPUTF8 in the MAIL command"
            )

    def _fail_local(self, message: str) -> NoReturn:
        raise LocalProtocolError(message)

    @property
    def trace(self) -> Callable[[str], None] | None:
        """Called with each redacted transcript line, when set (the drivers log through it)."""
        return self._trace

    @trace.setter
    def trace(self, trace: Callable[[str], None] | None) -> None:
        self._trace = trace
        # Without a tracer, recording an entry is the transcript's own append: a reply or
        # command is recorded several times per message, and this saves a call each time.
        self._record = self._transcript.append if trace is None else self._record_and_trace

    def _record_and_trace(self, item: object) -> None:
        self._transcript.append(item)
        if self._trace is not None:
            self._trace(_render(item))

    def __repr__(self) -> str:
        return (
            f"<Connection [{self.state.name}{' TLS' if self.tls_active else ''}"
            f"{' LMTP' if self.lmtp else ''} | pending: {self.pending}]>"
        )


def _checked_alike(checked: Sequence[Command], commands: Sequence[Command]) -> bool:
    """Whether ``commands`` pass exactly the checks that ``checked`` passed.

    They do when they are the same commands, except that a plain RCPT may stand
    where ``checked`` had another plain RCPT: a newsletter's next envelope. A RCPT
    without parameters whose line is ASCII passes every check a RCPT can fail
    (DSN parameters, SMTPUTF8), so its checks and the state it leads to depend on
    nothing but where it stands.
    """
    for old, new in zip(checked, commands, strict=True):
        if old is not new and not (_plain_rcpt(old) and _plain_rcpt(new)):
            return False
    return True


def _plain_rcpt(command: Command) -> bool:
    return (
        type(command) is RcptTo
        and command.notify is None
        and command.orcpt is None
        and not command.extra
        and not command.needs_smtputf8
    )


def _check_bytes(data: object) -> None:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise UsageError(f"message data must be bytes, got {type(data).__name__}")


def _escape(text: str) -> str:
    return _CONTROLS.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _render(item: object) -> str:
    """One transcript entry as text: a reply ``S:``, a command or a body ``C:``, an event ``*:``."""
    if isinstance(item, Reply):
        return "\n".join(
            f"S: {item.code}{'-' if i < len(item.lines) - 1 else ' '}{_escape(line)}"
            for i, line in enumerate(item.lines)
        )
    if isinstance(item, int):
        return f"C: <message body, {item} bytes>"
    if isinstance(item, str):
        return f"*: {item}"
    redacted = getattr(item, "redacted", None)
    text = redacted() if callable(redacted) else repr(item)
    return f"C: {text}"
