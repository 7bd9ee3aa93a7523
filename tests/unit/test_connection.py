"""The sans-I/O client core driven h11-style: commands in, bytes out; bytes in, responses out.

Most tests run the client against :class:`helpers.FakeServer`, a small
server side that reads the client's real bytes and answers from a script.
Every refused command is checked to leave the connection exactly as it was
(``helpers.snapshot``). The expected behaviour comes from RFC 5321, 2920
(PIPELINING), 3030 (CHUNKING), 2033 (LMTP), 3207 (STARTTLS), 4954 (AUTH),
1870/6152/6531/3461/8689 (SIZE, 8BITMIME, SMTPUTF8, DSN, REQUIRETLS) and
THREATS.md S1, S2 and S4.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import doctest
import itertools
import re
import string
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    DEFAULT_EXTENSIONS,
    FakeServer,
    always_ok,
    drain,
    ehlo_text,
    exchange,
    opened,
    snapshot,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import mailtransfer.protocol._connection as connection_module
from mailtransfer.protocol import (
    NEED_DATA,
    Auth,
    AuthResponse,
    Bdat,
    Command,
    Connection,
    ConnectionClosed,
    Data,
    Ehlo,
    EndOfData,
    ExtensionNotSupported,
    Extensions,
    Helo,
    InvalidArgument,
    Lhlo,
    LocalProtocolError,
    MailFrom,
    MessageTooLarge,
    Noop,
    Quit,
    RcptTo,
    RemoteProtocolError,
    Reply,
    Response,
    Rset,
    SMTPUTF8Required,
    StartTLS,
    State,
    UsageError,
    Vrfy,
)
from mailtransfer.protocol._state import SEND_TRANSITIONS

DOCS = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
ALL_EXTENSIONS = (
    "PIPELINING",
    "8BITMIME",
    "SIZE 1000000",
    "CHUNKING",
    "BINARYMIME",
    "SMTPUTF8",
    "DSN",
    "STARTTLS",
    "AUTH PLAIN LOGIN",
    "REQUIRETLS",
)
A, B, C = "a@example.org", "b@example.org", "c@example.org"


def scripted(replies: dict[str, list[str]], extensions: tuple[str, ...] = DEFAULT_EXTENSIONS):
    """An answer function: per verb, a queue of reply texts; always-OK when a queue is empty."""
    fallback = always_ok(extensions)
    queues = {verb: list(texts) for verb, texts in replies.items()}

    def answer(line: str) -> str:
        verb = line.split(" ", 1)[0].upper()
        queue = queues.get(verb)
        return queue.pop(0) if queue else fallback(line)

    return answer


def send_all(conn: Connection, *commands: Command) -> bytes:
    """Send several commands and return their bytes joined (one pipelined write)."""
    return b"".join(conn.send(command) for command in commands)


def codes(responses: list[Response]) -> list[int]:
    """The reply codes of some responses."""
    return [r.reply.code for r in responses]


# --- the greeting -----------------------------------------------------------------------------


def test_greeting_220_opens_the_session() -> None:
    """A 220 greeting is handed up unmatched to any command and opens the session."""
    conn = Connection()
    conn.receive_data(b"220 mx.example.test ESMTP\r\n")
    event = conn.next_event()
    assert isinstance(event, Response)
    assert (event.command, event.reply.code, conn.state) == (None, 220, State.CONNECTED)


def test_greeting_needs_whole_line() -> None:
    """Before the greeting's CRLF arrives, next_event asks for more data."""
    conn = Connection()
    conn.receive_data(b"220 mx.example")
    assert conn.next_event() is NEED_DATA
    conn.receive_data(b".test\r\n")
    assert conn.state is State.GREETING
    assert isinstance(conn.next_event(), Response)


def test_greeting_554_allows_only_quit() -> None:
    """After a 554 greeting the client may not EHLO, only QUIT (RFC 5321 3.1)."""
    conn = Connection()
    conn.receive_data(b"554 5.3.2 no service\r\n")
    drain(conn)
    assert conn.state is State.GREETING
    with pytest.raises(LocalProtocolError):
        conn.send(Ehlo("client.example"))
    assert conn.send(Quit()) == b"QUIT\r\n"
    assert conn.state is State.CLOSED


def test_greeting_421_closes() -> None:
    """A 421 greeting means the server is closing: the session is CLOSED."""
    conn = Connection()
    conn.receive_data(b"421 4.3.2 try later\r\n")
    (event,) = drain(conn)
    assert isinstance(event, Response)
    assert (event.reply.code, conn.state) == (421, State.CLOSED)


def test_nothing_but_quit_before_the_greeting_arrives() -> None:
    """Commands wait for the greeting; QUIT before it would be pipelining after nothing."""
    conn = Connection()
    before = snapshot(conn)
    for command in (Ehlo("client.example"), Noop(), Quit()):
        with pytest.raises(LocalProtocolError):
            conn.send(command)
    assert snapshot(conn) == before


# --- EHLO, HELO, LHLO ---------------------------------------------------------------------------


def test_ehlo_accepted_reads_the_extensions() -> None:
    """A 250 to EHLO makes the session READY with the listed extensions."""
    conn, _ = opened(("PIPELINING", "SIZE 2048", "AUTH PLAIN"))
    assert conn.state is State.READY
    ext = conn.extensions
    assert (ext.domain, ext.pipelining, ext.size, ext.auth) == (
        "mx.example.test",
        True,
        2048,
        frozenset({"PLAIN"}),
    )


def test_ehlo_refused_then_helo() -> None:
    """A 502 to EHLO leaves the session CONNECTED; HELO then opens it without extensions."""
    server = FakeServer(scripted({"EHLO": ["502 5.5.2 what?"], "HELO": ["250 mx.example.test"]}))
    conn = Connection()
    conn.receive_data(server.greeting())
    drain(conn)
    (refused,) = exchange(conn, server, conn.send(Ehlo("client.example")))
    assert (refused.reply.code, conn.state) == (502, State.CONNECTED)
    (accepted,) = exchange(conn, server, conn.send(Helo("client.example")))
    assert (accepted.reply.code, conn.state) == (250, State.READY)
    assert conn.extensions == Extensions(domain="mx.example.test")


def test_ehlo_with_u_label_goes_out_as_a_label() -> None:
    """EHLO's argument is IDNA-encoded before it reaches the wire (RFC 6531 3.7.1)."""
    conn = Connection()
    conn.receive_data(b"220 hi\r\n")
    drain(conn)
    assert conn.send(Ehlo("b\u00fccher.example")) == b"EHLO xn--bcher-kva.example\r\n"


def test_second_ehlo_replaces_the_extensions() -> None:
    """EHLO again (as after STARTTLS) replaces what the first EHLO offered."""
    replies = {"EHLO": ["250 mx", "250-mx\n250 CHUNKING"]}
    conn, server = opened(answer=scripted(replies))
    assert not conn.extensions.chunking
    exchange(conn, server, conn.send(Ehlo("client.example")))
    assert (conn.state, conn.extensions.chunking) == (State.READY, True)


def test_ehlo_refused_by_transient_error_keeps_connected() -> None:
    """A 4xx to EHLO leaves the session CONNECTED, so EHLO may be tried again."""
    server = FakeServer(scripted({"EHLO": ["451 4.3.0 busy"]}))
    conn = Connection()
    conn.receive_data(server.greeting())
    drain(conn)
    exchange(conn, server, conn.send(Ehlo("client.example")))
    assert conn.state is State.CONNECTED
    exchange(conn, server, conn.send(Ehlo("client.example")))
    assert conn.state is State.READY


@pytest.mark.parametrize("command", [Ehlo("client.example"), Helo("client.example")])
def test_lmtp_refuses_ehlo_and_helo(command: Command) -> None:
    """An LMTP session greets with LHLO only (RFC 2033 4.1)."""
    conn = Connection(lmtp=True)
    conn.receive_data(b"220 lmtp\r\n")
    drain(conn)
    before = snapshot(conn)
    with pytest.raises(LocalProtocolError):
        conn.send(command)
    assert snapshot(conn) == before


def test_smtp_refuses_lhlo() -> None:
    """LHLO belongs to LMTP: an SMTP session refuses it."""
    conn = Connection()
    conn.receive_data(b"220 smtp\r\n")
    drain(conn)
    with pytest.raises(LocalProtocolError):
        conn.send(Lhlo("client.example"))
    assert conn.state is State.CONNECTED


# --- commands illegal in a state ----------------------------------------------------------------


def _connected() -> Connection:
    conn = Connection()
    conn.receive_data(b"220 hi\r\n")
    drain(conn)
    return conn


def _ready() -> Connection:
    return opened(ALL_EXTENSIONS)[0]


def _mail() -> Connection:
    conn, server = opened(ALL_EXTENSIONS)
    exchange(conn, server, conn.send(MailFrom(sender=A)))
    return conn


def _rcpt() -> tuple[Connection, FakeServer]:
    conn, server = opened(ALL_EXTENSIONS)
    exchange(conn, server, send_all(conn, MailFrom(sender=A), RcptTo(recipient=B)))
    return conn, server


def _data() -> Connection:
    conn, _ = _rcpt()
    conn.send(Data())
    return conn


def _body() -> Connection:
    conn, server = _rcpt()
    exchange(conn, server, conn.send(Data()))
    return conn


def _end() -> Connection:
    conn, server = _rcpt()
    exchange(conn, server, conn.send(Data()))
    conn.send_body(b"hi\r\n")
    return conn


def _bdat() -> Connection:
    conn, server = _rcpt()
    exchange(conn, server, conn.send_bdat(b"hi\r\n", last=False))
    return conn


def _starttls() -> Connection:
    conn, server = opened(ALL_EXTENSIONS)
    exchange(conn, server, conn.send(StartTLS()))
    return conn


def _auth() -> Connection:
    conn, server = opened(ALL_EXTENSIONS, answer=scripted({"AUTH": ["334 "]}, ALL_EXTENSIONS))
    exchange(conn, server, conn.send(Auth("LOGIN")))
    return conn


def _closed() -> Connection:
    conn = _ready()
    conn.send(Quit())
    return conn


def _error() -> Connection:
    conn = _ready()
    conn.receive_data(b"250 nobody asked\r\n")
    with pytest.raises(RemoteProtocolError):
        conn.next_event()
    return conn


REACH: dict[str, Callable[[], Connection]] = {
    "connected": _connected,
    "ready": _ready,
    "mail": _mail,
    "data": _data,
    "body": _body,
    "end": _end,
    "bdat": _bdat,
    "starttls": _starttls,
    "auth": _auth,
    "closed": _closed,
    "error": _error,
}


@pytest.mark.parametrize("name", REACH)
def test_reach_builds_the_named_state(name: str) -> None:
    """The builders below really reach the state they are named after."""
    assert REACH[name]().state.value == name


ILLEGAL = [
    ("connected", MailFrom(sender=A)),
    ("connected", RcptTo(recipient=B)),
    ("connected", Data()),
    ("connected", Bdat(3)),
    ("connected", StartTLS()),
    ("connected", Auth("PLAIN", "AA==")),
    ("connected", AuthResponse("AA==")),
    ("connected", EndOfData()),
    ("ready", RcptTo(recipient=B)),
    ("ready", Data()),
    ("ready", Bdat(3, last=True)),
    ("ready", AuthResponse("AA==")),
    ("ready", EndOfData()),
    ("ready", Helo("client.example")),
    ("mail", MailFrom(sender=A)),
    ("mail", Ehlo("client.example")),
    ("mail", StartTLS()),
    ("mail", Auth("PLAIN", "AA==")),
    ("mail", EndOfData()),
    ("mail", Vrfy("postmaster")),
    ("data", EndOfData()),
    ("data", RcptTo(recipient=C)),
    ("data", Rset()),
    ("data", Noop()),
    ("data", Quit()),
    ("body", MailFrom(sender=A)),
    ("body", Rset()),
    ("body", Noop()),
    ("body", Quit()),
    ("body", Data()),
    ("body", Bdat(3)),
    ("end", Rset()),
    ("end", Noop()),
    ("end", Quit()),
    ("end", EndOfData()),
    ("bdat", Data()),
    ("bdat", MailFrom(sender=A)),
    ("bdat", RcptTo(recipient=C)),
    ("bdat", Noop()),
    ("bdat", EndOfData()),
    ("starttls", Ehlo("client.example")),
    ("starttls", MailFrom(sender=A)),
    ("starttls", Noop()),
    ("starttls", Quit()),
    ("starttls", Rset()),
    ("starttls", StartTLS()),
    ("auth", MailFrom(sender=A)),
    ("auth", Auth("PLAIN", "AA==")),
    ("auth", Noop()),
    ("auth", Quit()),
    ("auth", Ehlo("client.example")),
    ("closed", Ehlo("client.example")),
    ("closed", Noop()),
    ("closed", Quit()),
    ("closed", MailFrom(sender=A)),
    ("error", Noop()),
    ("error", Quit()),
    ("error", Rset()),
]


@pytest.mark.parametrize(
    ("where", "command"), ILLEGAL, ids=[f"{w}-{c.redacted()}" for w, c in ILLEGAL]
)
def test_illegal_command_raises_and_changes_nothing(where: str, command: Command) -> None:
    """A command the state does not allow raises LocalProtocolError, and nothing changes."""
    conn = REACH[where]()
    before = snapshot(conn)
    with pytest.raises(LocalProtocolError):
        conn.send(command)
    assert snapshot(conn) == before


@pytest.mark.parametrize("where", ["connected", "ready", "mail", "data", "end", "bdat", "closed"])
def test_message_data_before_354_is_refused(where: str) -> None:
    """send_data and send_body work only after the 354 go-ahead."""
    conn = REACH[where]()
    before = snapshot(conn)
    with pytest.raises(LocalProtocolError):
        conn.send_data(b"Subject: early\r\n")
    with pytest.raises(LocalProtocolError):
        conn.send_body(b"Subject: early\r\n")
    assert snapshot(conn) == before


@pytest.mark.parametrize("where", ["connected", "ready", "mail", "body", "closed"])
def test_tls_established_outside_starttls_is_refused(where: str) -> None:
    """tls_established() is only valid after a 220 to STARTTLS."""
    conn = REACH[where]()
    before = snapshot(conn)
    with pytest.raises(LocalProtocolError):
        conn.tls_established()
    assert snapshot(conn) == before


# --- pipelining -------------------------------------------------------------------------------


def test_envelope_pipelined_in_one_write() -> None:
    """With PIPELINING, MAIL+RCPT+RCPT+DATA go out together and replies match in order."""
    conn, server = opened(("PIPELINING",))
    group = [MailFrom(sender=A), RcptTo(recipient=B), RcptTo(recipient=C), Data()]
    wire = send_all(conn, *group)
    assert wire == (
        b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\n"
        b"RCPT TO:<c@example.org>\r\nDATA\r\n"
    )
    assert conn.pending == 4
    responses = exchange(conn, server, wire)
    assert [r.command for r in responses] == group
    assert (codes(responses), conn.state) == ([250, 250, 250, 354], State.BODY)


def test_pipelined_replies_matched_when_they_arrive_byte_by_byte() -> None:
    """Replies split at every byte still match their commands one to one."""
    conn, server = opened(("PIPELINING",))
    group = [MailFrom(sender=A), RcptTo(recipient=B), Data()]
    replies = server.receive(send_all(conn, *group))
    events = []
    for i in range(len(replies)):
        conn.receive_data(replies[i : i + 1])
        events += drain(conn)
    assert [e.command for e in events if isinstance(e, Response)] == group


def test_no_pipelining_without_the_extension() -> None:
    """Without PIPELINING a second command before the first reply is refused, unchanged."""
    conn, server = opened(("8BITMIME",))
    mail_bytes = conn.send(MailFrom(sender=A))
    before = snapshot(conn)
    with pytest.raises(LocalProtocolError, match="PIPELINING"):
        conn.send(RcptTo(recipient=B))
    assert snapshot(conn) == before
    exchange(conn, server, mail_bytes)
    assert conn.send(RcptTo(recipient=B)) == b"RCPT TO:<b@example.org>\r\n"


def test_lmtp_pipelines_without_advertising_it() -> None:
    """LMTP servers must support PIPELINING (RFC 2033 4.1), advertised or not."""
    conn, _ = opened(("8BITMIME",), lmtp=True)
    wire = send_all(conn, MailFrom(sender=A), RcptTo(recipient=B), Data())
    assert wire.count(b"\r\n") == 3


def _mail_then_last_chunk(conn: Connection) -> bytes:
    return conn.send(MailFrom(sender=A)) + conn.send_bdat(b"x\r\n", last=True)


GROUP_ENDERS: list[tuple[str, Callable[[Connection], object], Command]] = [
    ("ehlo", lambda c: c.send(Ehlo("client.example")), Noop()),
    ("noop", lambda c: c.send(Noop()), MailFrom(sender=A)),
    ("vrfy", lambda c: c.send(Vrfy("postmaster")), MailFrom(sender=A)),
    ("starttls", lambda c: c.send(StartTLS()), Ehlo("client.example")),
    ("auth", lambda c: c.send(Auth("LOGIN")), AuthResponse("dXNlcg==")),
    ("quit", lambda c: c.send(Quit()), Noop()),
    (
        "data",
        lambda c: send_all(c, MailFrom(sender=A), RcptTo(recipient=B), Data()),
        EndOfData(),
    ),
    ("bdat-last", _mail_then_last_chunk, MailFrom(sender=A)),
]


@pytest.mark.parametrize(
    ("first", "second"), [g[1:] for g in GROUP_ENDERS], ids=[g[0] for g in GROUP_ENDERS]
)
def test_nothing_is_pipelined_after_a_group_ender(
    first: Callable[[Connection], object], second: Command
) -> None:
    """EHLO, NOOP, VRFY, STARTTLS, AUTH, QUIT, DATA and the end of a message end a group."""
    conn, _ = opened(ALL_EXTENSIONS)
    first(conn)
    before = snapshot(conn)
    with pytest.raises(LocalProtocolError):
        conn.send(second)
    assert snapshot(conn) == before


def test_next_mail_may_follow_the_end_of_data() -> None:
    """MAIL may ride with the end-of-data mark (RFC 2920 3.1); the old reply moves nothing."""
    conn, server = opened(ALL_EXTENSIONS)
    wire = send_all(conn, MailFrom(sender=A), RcptTo(recipient=B), Data())
    exchange(conn, server, wire)
    wire = conn.send_body(b"hi\r\n") + conn.send(MailFrom(sender=C))
    assert wire.endswith(b"hi\r\n.\r\nMAIL FROM:<" + C.encode() + b">\r\n")
    assert conn.state is State.MAIL
    responses = exchange(conn, server, wire)
    assert codes(responses) == [250, 250]
    assert conn.state is State.MAIL  # the new transaction's, untouched by the old reply


@pytest.mark.parametrize("after", [RcptTo(recipient=B), Data(), Rset(), Noop(), Quit()])
def test_only_mail_may_follow_the_end_of_data(after: Command) -> None:
    conn = _end()
    before = snapshot(conn)
    with pytest.raises(LocalProtocolError):
        conn.send(after)
    assert snapshot(conn) == before


def test_nothing_follows_the_end_of_data_without_pipelining() -> None:
    conn, server = opened(())
    exchange(conn, server, conn.send(MailFrom(sender=A)))
    exchange(conn, server, conn.send(RcptTo(recipient=B)))
    exchange(conn, server, conn.send(Data()))
    conn.send_body(b"hi\r\n")
    with pytest.raises(LocalProtocolError, match="no PIPELINING"):
        conn.send(MailFrom(sender=A))
    assert conn.state is State.END


def test_nothing_follows_the_end_of_an_lmtp_message() -> None:
    """LMTP answers the end once per recipient: the next MAIL waits for those replies."""
    conn = Connection(lmtp=True)
    conn.receive_data(b"220 lmtp.test\r\n")
    conn.next_event()
    conn.send(Lhlo("client.example"))
    conn.receive_data(b"250-lmtp.test\r\n250 PIPELINING\r\n")
    conn.next_event()
    send_all(conn, MailFrom(sender=A), RcptTo(recipient=B), Data())
    conn.receive_data(b"250 ok\r\n250 ok\r\n354 go\r\n")
    for _ in range(3):
        conn.next_event()
    conn.send_body(b"hi\r\n")
    with pytest.raises(LocalProtocolError, match="LMTP"):
        conn.send(MailFrom(sender=A))
    assert conn.state is State.END


def test_rset_then_mail_may_be_pipelined() -> None:
    """RSET may be followed by MAIL before its reply (RFC 2920 3.1)."""
    conn, server = opened(("PIPELINING",))
    responses = exchange(conn, server, send_all(conn, Rset(), MailFrom(sender=A)))
    assert (codes(responses), conn.state) == ([250, 250], State.MAIL)


def test_rset_and_mail_pipelined_supersede_the_earlier_transaction() -> None:
    """MAIL, RCPT, RSET, MAIL in one write: replies to the first transaction steer nothing."""
    answer = scripted({"MAIL": ["550 first refused", "250 second ok"], "RCPT": ["250 ok"]})
    conn, server = opened(answer=answer)
    group = [MailFrom(sender=A), RcptTo(recipient=B), Rset(), MailFrom(sender=C)]
    assert codes(exchange(conn, server, send_all(conn, *group))) == [550, 250, 250, 250]
    assert (conn.state, conn.accepted_recipients) == (State.MAIL, ())
    assert conn.send(RcptTo(recipient=A)).startswith(b"RCPT")


def test_421_to_a_superseded_transaction_still_closes() -> None:
    """A 421 closes the session even when it answers a command of a replaced transaction."""
    conn, server = opened(answer=scripted({"MAIL": ["421 4.3.2 going down"]}))
    group = [MailFrom(sender=A), Rset(), MailFrom(sender=C)]
    exchange(conn, server, send_all(conn, *group))
    assert conn.state is State.CLOSED


def test_a_group_is_its_commands_sent_in_turn() -> None:
    """send_group gives the bytes and the bookkeeping of send() for each command."""
    conn, server = opened(("PIPELINING", "DSN"))
    twin, _ = opened(("PIPELINING", "DSN"))
    group = [MailFrom(sender=A), RcptTo(recipient=B, notify=("FAILURE",)), Data()]
    wire = conn.send_group(group)
    assert wire == send_all(twin, *group)
    assert snapshot(conn) == snapshot(twin)
    assert [r.command for r in exchange(conn, server, wire)] == group


def test_a_group_refused_in_part_changes_nothing() -> None:
    """MAIL passes, RCPT's NOTIFY needs DSN: the group raises and nothing counts as sent."""
    conn, server = opened(("PIPELINING",))
    before = snapshot(conn)
    with pytest.raises(ExtensionNotSupported, match="DSN"):
        conn.send_group([MailFrom(sender=A), RcptTo(recipient=B, notify=("FAILURE",)), Data()])
    assert snapshot(conn) == before
    with pytest.raises(LocalProtocolError, match="group"):
        conn.send_group([MailFrom(sender=A), EndOfData()])
    assert snapshot(conn) == before
    group = [MailFrom(sender=A), RcptTo(recipient=B), Data()]
    assert [r.reply.code for r in exchange(conn, server, conn.send_group(group))] == [250, 250, 354]


def test_a_group_checked_once_is_checked_again_when_anything_it_depends_on_changed() -> None:
    """The memo of passed checks holds only for the same state, MAIL, extensions and TLS."""
    conn, server = opened(("PIPELINING", "DSN"))
    mail, rcpt, noop = MailFrom(sender=A), RcptTo(recipient=B, notify=("FAILURE",)), Noop()
    exchange(conn, server, conn.send(mail))
    exchange(conn, server, conn.send_group([noop]))  # passes in MAIL
    exchange(conn, server, send_all(conn, rcpt, Data()))
    assert conn.state is State.BODY
    with pytest.raises(LocalProtocolError):
        conn.send_group([noop])  # the same group, in another state
    exchange(conn, server, conn.send_body(b"hello\r\n"))
    group = [mail, rcpt, Data()]
    exchange(conn, server, conn.send_group(group))
    exchange(conn, server, conn.send_body(b"hello\r\n"))
    conn.extensions = Extensions.from_ehlo(Reply(250, ("mx.example.test", "PIPELINING")))
    with pytest.raises(ExtensionNotSupported, match="DSN"):
        conn.send_group(group)  # the same commands, the same state: fewer extensions


def test_a_new_plain_recipient_reuses_the_checks_of_the_last_group() -> None:
    """A newsletter's next envelope: another plain RCPT in the same place passes as before.

    Bytes and bookkeeping are those of send() for each command; a RCPT that is not
    plain (it needs SMTPUTF8, or DSN) in that place is checked in full, and refused.
    """
    conn, server = opened(("PIPELINING",))
    twin, twin_server = opened(("PIPELINING",))
    mail, data = MailFrom(sender=A), Data()  # one of each, as the flows send them
    for recipient in (B, C, "third@example.org"):
        group = [mail, RcptTo(recipient=recipient), data]
        wire = conn.send_group(group)
        assert wire == send_all(twin, *group)
        assert snapshot(conn) == snapshot(twin)
        exchange(conn, server, wire)
        exchange(twin, twin_server, wire)
        exchange(conn, server, conn.send_body(b"hello\r\n"))
        exchange(twin, twin_server, twin.send_body(b"hello\r\n"))
    before = snapshot(conn)
    with pytest.raises(SMTPUTF8Required):
        conn.send_group([mail, RcptTo(recipient="\u00fc@example.org"), data])
    with pytest.raises(ExtensionNotSupported, match="DSN"):
        conn.send_group([mail, RcptTo(recipient=B, notify=("FAILURE",)), data])
    assert snapshot(conn) == before


def test_a_plain_recipient_where_the_last_group_had_another_command_is_checked() -> None:
    """Only a RCPT can stand for a RCPT: in place of a NOOP it gets its own checks and state."""
    conn, server = opened(("PIPELINING",))
    twin, twin_server = opened(("PIPELINING",))
    for session, peer in ((conn, server), (twin, twin_server)):
        exchange(session, peer, send_all(session, MailFrom(sender=A), RcptTo(recipient=B)))
    noop = Noop()
    exchange(conn, server, conn.send_group([noop]))  # checked in state RCPT, and back there
    exchange(twin, twin_server, twin.send(noop))
    rcpt = RcptTo(recipient=C)
    wire = conn.send_group([rcpt])
    assert wire == twin.send(rcpt)
    assert snapshot(conn) == snapshot(twin)
    exchange(conn, server, wire)
    assert conn.accepted_recipients == (B, C)


def test_pipelined_mail_refused_gives_no_transaction() -> None:
    """MAIL refused in a group: RCPT and DATA get 503 and the session is READY, no RSET needed."""
    server = FakeServer(
        scripted(
            {
                "MAIL": ["550 5.7.1 sender refused"],
                "RCPT": ["503 5.5.1 need MAIL"],
                "DATA": ["503 5.5.1 need RCPT"],
            }
        )
    )
    conn, _ = opened(answer=server.answer)
    server_conn_bytes = send_all(conn, MailFrom(sender=A), RcptTo(recipient=B), Data())
    responses = exchange(conn, server, server_conn_bytes)
    assert codes(responses) == [550, 503, 503]
    assert (conn.state, conn.pending, conn.accepted_recipients) == (State.READY, 0, ())
    assert conn.send(MailFrom(sender=A)).startswith(b"MAIL")


def test_session_ready_as_soon_as_mail_is_refused() -> None:
    """After MAIL's refusal the state is READY even while RCPT/DATA replies are still due."""
    conn, server = opened(answer=scripted({"MAIL": ["550 no"], "RCPT": ["503 no"]}))
    replies = server.receive(send_all(conn, MailFrom(sender=A), RcptTo(recipient=B)))
    first_line = replies[: replies.index(b"\n") + 1]
    conn.receive_data(first_line)
    drain(conn)
    assert (conn.state, conn.pending) == (State.READY, 1)


def test_every_recipient_refused_leaves_transaction_open() -> None:
    """All RCPTs refused, DATA 554: the transaction is open (state MAIL) until RSET."""
    server = FakeServer(scripted({"RCPT": ["550 5.1.1 no", "550 5.1.1 no"], "DATA": ["554 no"]}))
    conn, _ = opened(answer=server.answer)
    group = send_all(conn, MailFrom(sender=A), RcptTo(recipient=B), RcptTo(recipient=C), Data())
    assert codes(exchange(conn, server, group)) == [250, 550, 550, 554]
    assert (conn.state, conn.accepted_recipients) == (State.MAIL, ())
    exchange(conn, server, conn.send(Rset()))
    assert conn.state is State.READY


def test_some_recipients_refused() -> None:
    """accepted_recipients lists exactly the recipients whose RCPT got a 2xx."""
    server = FakeServer(scripted({"RCPT": ["250 ok", "550 no", "251 forwarded"]}))
    conn, _ = opened(answer=server.answer)
    rcpts = [RcptTo(recipient=r) for r in (A, B, C)]
    exchange(conn, server, send_all(conn, MailFrom(sender=A), *rcpts, Data()))
    assert (conn.accepted_recipients, conn.state) == ((A, C), State.BODY)


def test_accepted_recipients_start_over_with_each_mail() -> None:
    """A new MAIL forgets the recipients of the previous transaction."""
    conn, server = opened()
    exchange(conn, server, send_all(conn, MailFrom(sender=A), RcptTo(recipient=B), Data()))
    exchange(conn, server, conn.send_body(b"x"))
    conn.send(MailFrom(sender=A))
    assert conn.accepted_recipients == ()


# --- DATA -------------------------------------------------------------------------------------


def test_data_transaction_full_cycle() -> None:
    """354 -> BODY -> send_body -> END -> 250 -> READY, and the server gets the message."""
    conn, server = opened()
    exchange(conn, server, send_all(conn, MailFrom(sender=A), RcptTo(recipient=B), Data()))
    assert conn.state is State.BODY
    wire = conn.send_body(b"Subject: x\n\n.dot\nend")
    assert wire == b"Subject: x\r\n\r\n..dot\r\nend\r\n.\r\n"
    assert (conn.state, conn.pending) == (State.END, 1)
    (final,) = exchange(conn, server, wire)
    assert isinstance(final.command, EndOfData)
    assert (final.reply.code, conn.state) == (250, State.READY)
    assert server.messages == [b"Subject: x\r\n\r\n.dot\r\nend\r\n"]


def test_streamed_body_equals_whole_body() -> None:
    """send_data pieces plus EndOfData give the same bytes as send_body, split anywhere."""
    message = b"a\r\n.b\rc\n\r\n."
    whole = _body().send_body(message)
    for cut in range(len(message) + 1):
        conn = _body()
        wire = conn.send_data(message[:cut]) + conn.send_data(message[cut:])
        wire += conn.send(EndOfData())
        assert wire == whole, cut
        assert conn.state is State.END


def test_empty_streamed_body_is_one_empty_line() -> None:
    """EndOfData straight after 354 sends an empty message as one empty line."""
    conn = _body()
    assert conn.send(EndOfData()) == b"\r\n.\r\n"


def test_send_body_after_send_data_is_refused() -> None:
    """A body is either streamed or sent whole, never both."""
    conn = _body()
    conn.send_data(b"part")
    before = snapshot(conn)
    with pytest.raises(LocalProtocolError):
        conn.send_body(b"rest")
    assert snapshot(conn) == before


@pytest.mark.parametrize("send", ["send_body", "send_data"])
def test_message_data_must_be_bytes(send: str) -> None:
    """A str body is refused with UsageError before anything changes."""
    conn = _body()
    before = snapshot(conn)
    with pytest.raises(UsageError):
        getattr(conn, send)("Subject: text\r\n")
    assert snapshot(conn) == before


def test_bdat_chunk_must_be_bytes() -> None:
    """A str chunk is refused with UsageError before the BDAT line is produced."""
    conn, server = opened(ALL_EXTENSIONS)
    exchange(conn, server, send_all(conn, MailFrom(sender=A), RcptTo(recipient=B)))
    before = snapshot(conn)
    with pytest.raises(UsageError):
        conn.send_bdat("text", last=True)  # type: ignore[arg-type]
    assert snapshot(conn) == before


def test_data_refused_keeps_transaction_open() -> None:
    """A 451 to DATA leaves the transaction open: state MAIL until RSET."""
    conn, server = opened(answer=scripted({"DATA": ["451 4.3.0 later"]}))
    exchange(conn, server, send_all(conn, MailFrom(sender=A), RcptTo(recipient=B), Data()))
    assert conn.state is State.MAIL
    exchange(conn, server, conn.send(Rset()))
    assert conn.state is State.READY


def test_message_refused_at_end_of_data() -> None:
    """A 5xx after the end mark ends the transaction: READY, no RSET needed."""
    conn, server = opened(answer=scripted({".": ["554 5.7.1 spam"]}))
    exchange(conn, server, send_all(conn, MailFrom(sender=A), RcptTo(recipient=B), Data()))
    (final,) = exchange(conn, server, conn.send_body(b"x"))
    assert (final.reply.code, conn.state) == (554, State.READY)


def test_go_ahead_without_recipients_then_empty_message() -> None:
    """A server may 354 DATA after refusing every RCPT (RFC 2920 3.1); an empty body ends it."""
    server = FakeServer(scripted({"RCPT": ["550 no"]}))
    conn, _ = opened(answer=server.answer)
    exchange(conn, server, send_all(conn, MailFrom(sender=A), RcptTo(recipient=B), Data()))
    assert conn.state is State.BODY
    exchange(conn, server, conn.send(EndOfData()))
    assert conn.state is State.READY


# --- BDAT -------------------------------------------------------------------------------------


def test_bdat_needs_chunking() -> None:
    """BDAT without CHUNKING raises ExtensionNotSupported and sends nothing."""
    conn, server = opened(("PIPELINING",))
    exchange(conn, server, send_all(conn, MailFrom(sender=A), RcptTo(recipient=B)))
    before = snapshot(conn)
    with pytest.raises(ExtensionNotSupported):
        conn.send_bdat(b"x", last=True)
    assert snapshot(conn) == before


def test_bdat_chunks_one_at_a_time() -> None:
    """Without PIPELINING: BDAT n -> 250 -> BDAT m LAST -> 250 -> READY."""
    conn, server = opened(("CHUNKING",))
    exchange(conn, server, conn.send(MailFrom(sender=A)))
    exchange(conn, server, conn.send(RcptTo(recipient=B)))
    first = conn.send_bdat(b"hello", last=False)
    assert first == b"BDAT 5\r\nhello"
    exchange(conn, server, first)
    assert conn.state is State.BDAT
    last = conn.send_bdat(b" world\r\n", last=True)
    assert last == b"BDAT 8 LAST\r\n world\r\n"
    assert conn.state is State.END
    (final,) = exchange(conn, server, last)
    assert (final.command, conn.state) == (Bdat(8, last=True), State.READY)
    assert server.messages == [b"hello world\r\n"]


def test_bdat_chunks_pipelined() -> None:
    """With PIPELINING the whole transaction goes in one write and ends READY."""
    conn, server = opened(("CHUNKING", "PIPELINING"))
    wire = send_all(conn, MailFrom(sender=A), RcptTo(recipient=B))
    wire += conn.send_bdat(b"ab", last=False) + conn.send_bdat(b"cd", last=True)
    responses = exchange(conn, server, wire)
    assert (codes(responses), conn.state, conn.pending) == ([250] * 4, State.READY, 0)


def test_bdat_last_alone_is_a_whole_message() -> None:
    """One BDAT LAST straight after RCPT carries the whole message."""
    conn, server = opened(("CHUNKING",))
    exchange(conn, server, conn.send(MailFrom(sender=A)))
    exchange(conn, server, conn.send(RcptTo(recipient=B)))
    exchange(conn, server, conn.send_bdat(b"", last=True))
    assert (conn.state, server.messages) == (State.READY, [b""])


def test_failed_bdat_chunk_needs_rset() -> None:
    """A refused chunk fails the transaction (RFC 3030 2): state MAIL, then RSET -> READY."""
    conn, server = opened(answer=scripted({"BDAT": ["552 5.3.4 too big"]}, ("CHUNKING",)))
    exchange(conn, server, conn.send(MailFrom(sender=A)))
    exchange(conn, server, conn.send(RcptTo(recipient=B)))
    exchange(conn, server, conn.send_bdat(b"xx", last=False))
    assert conn.state is State.MAIL
    exchange(conn, server, conn.send(Rset()))
    assert conn.state is State.READY


def test_rset_between_chunks_aborts_the_message() -> None:
    """A chunked message can be abandoned between chunks with RSET (RFC 5321 4.1.1.5)."""
    conn = _bdat()
    conn.send(Rset())
    conn.receive_data(b"250 2.0.0 flushed\r\n")
    drain(conn)
    assert conn.state is State.READY
    assert conn.send(MailFrom(sender=A)).startswith(b"MAIL")


def test_refused_last_bdat_needs_rset() -> None:
    """A refused BDAT LAST leaves state MAIL, so the client resets."""
    answer = scripted({"BDAT": ["554 5.7.1 no"]}, ("CHUNKING",))
    conn, server = opened(("CHUNKING",), answer=answer)
    exchange(conn, server, conn.send(MailFrom(sender=A)))
    exchange(conn, server, conn.send(RcptTo(recipient=B)))
    exchange(conn, server, conn.send_bdat(b"xx", last=True))
    assert conn.state is State.MAIL


def test_pipelined_bdat_after_refused_mail_ends_ready() -> None:
    """MAIL refused with the last chunk pipelined: every reply read, session READY."""
    answer = scripted(
        {"MAIL": ["550 no"], "RCPT": ["503 no"], "BDAT": ["503 no"]}, ("CHUNKING", "PIPELINING")
    )
    conn, server = opened(("CHUNKING", "PIPELINING"), answer=answer)
    wire = send_all(conn, MailFrom(sender=A), RcptTo(recipient=B)) + conn.send_bdat(b"x", last=True)
    assert codes(exchange(conn, server, wire)) == [550, 503, 503]
    assert (conn.state, conn.pending) == (State.READY, 0)


def test_binarymime_refuses_data() -> None:
    """A BODY=BINARYMIME message can only go with BDAT (RFC 3030 3)."""
    conn, server = opened(ALL_EXTENSIONS)
    exchange(conn, server, conn.send(MailFrom(sender=A, body="BINARYMIME")))
    exchange(conn, server, conn.send(RcptTo(recipient=B)))
    with pytest.raises(LocalProtocolError, match="BDAT"):
        conn.send(Data())
    assert conn.send_bdat(b"\x00\x01", last=True) == b"BDAT 2 LAST\r\n\x00\x01"


# --- LMTP -------------------------------------------------------------------------------------


def _lmtp_transaction(answer: Any, rcpts: list[str]) -> tuple[Connection, FakeServer, bytes]:
    conn, server = opened(("PIPELINING", "CHUNKING"), lmtp=True, answer=answer)
    group = [MailFrom(sender=A), *(RcptTo(recipient=r) for r in rcpts), Data()]
    exchange(conn, server, send_all(conn, *group))
    return conn, server, conn.send_body(b"Subject: lmtp\r\n\r\nhi\r\n")


def test_lmtp_one_reply_per_accepted_recipient() -> None:
    """After the data, LMTP answers once per accepted recipient, in RCPT order (RFC 2033 4.2)."""
    answer = scripted(
        {"RCPT": ["250 ok", "550 no such user", "250 ok"], ".": ["250 2.0.0 a", "452 4.2.2 full"]},
        ("PIPELINING",),
    )
    conn, server, body = _lmtp_transaction(answer, [A, B, C])
    assert conn.pending == 2
    responses = exchange(conn, server, body)
    assert [(r.recipient, r.reply.code) for r in responses] == [(A, 250), (C, 452)]
    assert all(isinstance(r.command, EndOfData) for r in responses)
    assert conn.state is State.READY


def test_lmtp_ready_only_after_last_recipient_reply() -> None:
    """The session stays END until the reply about the last accepted recipient."""
    conn, server, body = _lmtp_transaction(scripted({}, ("PIPELINING",)), [A, B])
    replies = server.receive(body)
    first = replies[: replies.index(b"\n") + 1]
    conn.receive_data(first)
    (response,) = drain(conn)
    assert isinstance(response, Response)
    assert (response.recipient, conn.state, conn.pending) == (A, State.END, 1)
    conn.receive_data(replies[len(first) :])
    (response,) = drain(conn)
    assert isinstance(response, Response)
    assert (response.recipient, conn.state, conn.pending) == (B, State.READY, 0)


def test_lmtp_bdat_pipelined_with_recipients() -> None:
    """MAIL, RCPTs and BDAT LAST in one write: per-recipient replies are still counted right."""
    answer = scripted({"RCPT": ["250 ok", "550 no", "250 ok"]}, ("PIPELINING", "CHUNKING"))
    conn, server = opened(("PIPELINING", "CHUNKING"), lmtp=True, answer=answer)
    rcpts = [RcptTo(recipient=r) for r in (A, B, C)]
    wire = send_all(conn, MailFrom(sender=A), *rcpts) + conn.send_bdat(b"hi\r\n", last=True)
    responses = exchange(conn, server, wire)
    assert [(r.recipient, r.reply.code) for r in responses[4:]] == [(A, 250), (C, 250)]
    assert (conn.state, conn.pending) == (State.READY, 0)


def test_lmtp_non_last_chunk_gets_one_reply() -> None:
    """In LMTP only the last chunk is answered per recipient."""
    conn, server = opened(("PIPELINING", "CHUNKING"), lmtp=True)
    exchange(
        conn, server, send_all(conn, MailFrom(sender=A), RcptTo(recipient=B), RcptTo(recipient=C))
    )
    (chunk,) = exchange(conn, server, conn.send_bdat(b"ab", last=False))
    assert (chunk.recipient, conn.state) == (None, State.BDAT)
    finals = exchange(conn, server, conn.send_bdat(b"cd", last=True))
    assert [r.recipient for r in finals] == [B, C]


def test_smtp_end_of_data_has_no_recipient() -> None:
    """Over SMTP the final reply is one Response without a recipient."""
    conn = _end()
    conn.receive_data(b"250 queued\r\n")
    (response,) = drain(conn)
    assert isinstance(response, Response)
    assert response.recipient is None


# --- extension checks -------------------------------------------------------------------------

MAIL_CHECKS: list[tuple[str, tuple[str, ...], dict[str, Any], type[Exception] | None]] = [
    ("size-over-limit", ("SIZE 1000",), {"size": 1001}, MessageTooLarge),
    ("size-at-limit", ("SIZE 1000",), {"size": 1000}, None),
    ("size-no-limit", ("SIZE",), {"size": 10**12}, None),
    ("size-zero-is-no-limit", ("SIZE 0",), {"size": 10**12}, None),
    ("size-not-offered", ("8BITMIME",), {"size": 10}, ExtensionNotSupported),
    (
        "smtputf8-missing",
        ("8BITMIME",),
        {"sender": "j\u00f6rg@example.org", "smtputf8": True},
        SMTPUTF8Required,
    ),
    (
        "smtputf8-offered",
        ("SMTPUTF8",),
        {"sender": "j\u00f6rg@example.org", "smtputf8": True},
        None,
    ),
    ("u-label-sender-needs-nothing", ("8BITMIME",), {"sender": "a@b\u00fccher.example"}, None),
    ("8bitmime-missing", ("SMTPUTF8",), {"body": "8BITMIME"}, ExtensionNotSupported),
    ("8bitmime-offered", ("8BITMIME",), {"body": "8BITMIME"}, None),
    ("7bit-without-8bitmime", ("SMTPUTF8",), {"body": "7BIT"}, ExtensionNotSupported),
    ("7bit-with-8bitmime", ("8BITMIME",), {"body": "7BIT"}, None),
    ("binarymime-without-chunking", ("BINARYMIME",), {"body": "BINARYMIME"}, ExtensionNotSupported),
    ("binarymime-without-binarymime", ("CHUNKING",), {"body": "BINARYMIME"}, ExtensionNotSupported),
    ("binarymime-offered", ("BINARYMIME", "CHUNKING"), {"body": "BINARYMIME"}, None),
    ("ret-without-dsn", ("8BITMIME",), {"ret": "HDRS"}, ExtensionNotSupported),
    ("envid-without-dsn", ("8BITMIME",), {"envid": "x1"}, ExtensionNotSupported),
    ("dsn-offered", ("DSN",), {"ret": "FULL", "envid": "x1"}, None),
    ("requiretls-not-offered", ("8BITMIME",), {"requiretls": True}, ExtensionNotSupported),
    ("requiretls-without-tls", ("REQUIRETLS",), {"requiretls": True}, ExtensionNotSupported),
]


@pytest.mark.parametrize(
    ("extensions", "options", "error"),
    [c[1:] for c in MAIL_CHECKS],
    ids=[c[0] for c in MAIL_CHECKS],
)
def test_mail_checked_against_extensions(
    extensions: tuple[str, ...], options: dict[str, Any], error: type[Exception] | None
) -> None:
    """MAIL needs the extension behind each parameter; a refusal changes nothing."""
    conn, _ = opened(extensions)
    command = MailFrom(**{"sender": A, **options})
    before = snapshot(conn)
    if error is None:
        assert conn.send(command) == command.to_bytes()
        return
    with pytest.raises(error) as caught:
        conn.send(command)
    assert type(caught.value) is error
    assert snapshot(conn) == before


def test_requiretls_allowed_inside_tls() -> None:
    """REQUIRETLS goes out when the server offers it and the session is TLS (RFC 8689)."""
    conn, _ = opened(("REQUIRETLS",))
    conn.implicit_tls()
    assert conn.send(MailFrom(sender=A, requiretls=True)).endswith(b" REQUIRETLS\r\n")


def test_same_mail_is_checked_again_after_the_extensions_change() -> None:
    """A MAIL that passed once is checked afresh against a new EHLO reply's SIZE."""
    conn, server = opened(("PIPELINING", "SIZE 1000"))
    mail = MailFrom(sender=A, size=900)
    exchange(conn, server, conn.send(mail))
    exchange(conn, server, conn.send(Rset()))
    conn.send(Ehlo("client.example"))
    conn.receive_data(b"250-mx.example.test\r\n250 SIZE 500\r\n")
    drain(conn)
    before = snapshot(conn)
    with pytest.raises(MessageTooLarge):
        conn.send(mail)
    assert snapshot(conn) == before


def test_same_mail_is_checked_again_when_tls_changes() -> None:
    """REQUIRETLS passed inside TLS; the same command is refused once TLS is gone."""
    conn, server = opened(("REQUIRETLS",))
    conn.implicit_tls()
    mail = MailFrom(sender=A, requiretls=True)
    exchange(conn, server, conn.send(mail))
    exchange(conn, server, conn.send(Rset()))
    conn.tls_active = False
    with pytest.raises(ExtensionNotSupported):
        conn.send(mail)


def test_reused_mail_and_rcpt_send_the_same_bytes_each_time() -> None:
    """Sending the very same command objects again gives the same wire and transcript."""
    conn, server = opened()
    mail, rcpt = MailFrom(sender=A, size=10), RcptTo(recipient=B)
    for _ in range(3):
        wire = conn.send(mail) + conn.send(rcpt) + conn.send(Rset())
        assert wire == mail.to_bytes() + rcpt.to_bytes() + b"RSET\r\n"
        exchange(conn, server, wire)
    assert conn.transcript().count(f"C: MAIL FROM:<{A}> SIZE=10") == 3


def test_subclassed_commands_get_their_base_class_checks() -> None:
    """A subclass (not meant to exist, but possible) is still checked as its base class."""

    @dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
    class MyRcpt(RcptTo):
        pass

    @dataclasses.dataclass(frozen=True, slots=True)
    class MyEnd(EndOfData):
        pass

    conn, server = opened(("PIPELINING",))
    exchange(conn, server, conn.send(MailFrom(sender=A)))
    with pytest.raises(ExtensionNotSupported):
        conn.send(MyRcpt(recipient=B, notify=("FAILURE",)))
    exchange(conn, server, conn.send(MyRcpt(recipient=B)) + conn.send(Data()))
    assert conn.state is State.BODY
    assert conn.send(MyEnd()) == b"\r\n.\r\n"
    assert conn.state is State.END


def test_responses_are_ordinary_frozen_values() -> None:
    """The responses next_event builds compare, hash and refuse changes like any Response."""
    conn, server = opened()
    mail = MailFrom(sender=A)
    [response] = exchange(conn, server, conn.send(mail))
    assert response == Response(mail, response.reply)
    assert hash(response) == hash(Response(mail, response.reply, None))
    with pytest.raises(dataclasses.FrozenInstanceError):
        response.recipient = "x"  # type: ignore[misc]


RCPT_CHECKS: list[tuple[str, tuple[str, ...], bool, dict[str, Any], type[Exception] | None]] = [
    ("notify-without-dsn", ("8BITMIME",), False, {"notify": ("FAILURE",)}, ExtensionNotSupported),
    ("orcpt-without-dsn", ("8BITMIME",), False, {"orcpt": B}, ExtensionNotSupported),
    ("dsn-offered", ("DSN",), False, {"notify": ("NEVER",), "orcpt": B}, None),
    (
        "utf8-recipient-plain-mail",
        ("SMTPUTF8",),
        False,
        {"recipient": "j\u00f6rg@example.org"},
        SMTPUTF8Required,
    ),
    (
        "utf8-recipient-smtputf8-mail",
        ("SMTPUTF8",),
        True,
        {"recipient": "j\u00f6rg@example.org"},
        None,
    ),
    (
        "u-label-recipient-plain-mail",
        ("8BITMIME",),
        False,
        {"recipient": "b@b\u00fccher.example"},
        None,
    ),
]


@pytest.mark.parametrize(
    ("extensions", "smtputf8", "options", "error"),
    [c[1:] for c in RCPT_CHECKS],
    ids=[c[0] for c in RCPT_CHECKS],
)
def test_rcpt_checked_against_extensions(
    extensions: tuple[str, ...],
    smtputf8: bool,
    options: dict[str, Any],
    error: type[Exception] | None,
) -> None:
    """RCPT needs DSN for NOTIFY/ORCPT, and SMTPUTF8 in MAIL for a UTF-8 local part."""
    conn, server = opened(extensions)
    exchange(conn, server, conn.send(MailFrom(sender=A, smtputf8=smtputf8)))
    command = RcptTo(**{"recipient": B, **options})
    before = snapshot(conn)
    if error is None:
        wire = conn.send(command)
        assert wire.isascii() or smtputf8
        return
    with pytest.raises(error) as caught:
        conn.send(command)
    assert type(caught.value) is error
    assert snapshot(conn) == before


# --- STARTTLS ---------------------------------------------------------------------------------


def test_starttls_injected_bytes_are_detected_and_dropped() -> None:
    """Bytes after STARTTLS's 220 are flagged, then discarded with the extensions (S4)."""
    conn, _ = opened(ALL_EXTENSIONS)
    conn.send(StartTLS())
    conn.receive_data(b"220 2.0.0 go ahead\r\n250-injected\r\n250 AUTH PLAIN\r\n")
    response = conn.next_event()
    assert isinstance(response, Response)
    assert response.reply.code == 220
    assert (conn.state, conn.has_buffered_data()) == (State.STARTTLS, True)
    conn.tls_established()
    assert (conn.state, conn.tls_active, conn.has_buffered_data()) == (State.CONNECTED, True, False)
    assert conn.extensions == Extensions.empty()
    assert conn.next_event() is NEED_DATA


def test_starttls_injection_needs_no_next_event_call() -> None:
    """has_buffered_data sees the injected bytes before anyone parses them."""
    conn, _ = opened(ALL_EXTENSIONS)
    conn.send(StartTLS())
    conn.receive_data(b"220 go ahead\r\nEHLO")
    conn.next_event()
    assert conn.has_buffered_data()


def test_starttls_clean_go_ahead_has_no_buffered_data() -> None:
    """A lone 220 leaves nothing buffered."""
    conn = _starttls()
    assert not conn.has_buffered_data()


def test_after_tls_ehlo_starts_over() -> None:
    """After TLS the client must EHLO again; PIPELINING is not assumed from before."""
    replies = {"EHLO": [ehlo_text(ALL_EXTENSIONS), "250 mx"]}
    conn, server = opened(answer=scripted(replies, ALL_EXTENSIONS))
    exchange(conn, server, conn.send(StartTLS()))
    conn.tls_established()
    with pytest.raises(LocalProtocolError):
        conn.send(MailFrom(sender=A))
    exchange(conn, server, conn.send(Ehlo("client.example")))
    assert (conn.state, conn.extensions.pipelining) == (State.READY, False)
    assert "*: TLS established" in conn.transcript()


def test_starttls_refused_stays_plain() -> None:
    """A 454 to STARTTLS leaves the session READY without TLS."""
    answer = scripted({"STARTTLS": ["454 4.7.0 TLS not available"]}, ALL_EXTENSIONS)
    conn, server = opened(ALL_EXTENSIONS, answer=answer)
    exchange(conn, server, conn.send(StartTLS()))
    assert (conn.state, conn.tls_active) == (State.READY, False)


def test_starttls_needs_the_extension() -> None:
    """STARTTLS to a server that did not offer it raises ExtensionNotSupported."""
    conn, _ = opened(("PIPELINING",))
    with pytest.raises(ExtensionNotSupported):
        conn.send(StartTLS())
    assert conn.pending == 0


def test_starttls_inside_tls_is_refused() -> None:
    """A second TLS layer is never requested (RFC 3207 4.2)."""
    conn, _ = opened(ALL_EXTENSIONS)
    conn.implicit_tls()
    before = snapshot(conn)
    with pytest.raises(LocalProtocolError):
        conn.send(StartTLS())
    assert snapshot(conn) == before


# --- AUTH -------------------------------------------------------------------------------------


def test_auth_with_initial_response() -> None:
    """AUTH PLAIN with an initial response: 235 makes the session READY."""
    conn, server = opened(ALL_EXTENSIONS)
    (response,) = exchange(conn, server, conn.send(Auth("PLAIN", "AGEAYg==")))
    assert (response.reply.code, conn.state) == (235, State.READY)


def test_auth_challenge_and_responses() -> None:
    """334 challenges keep the session in AUTH; each AuthResponse answers one; 235 ends it."""
    answer = scripted({"AUTH": ["334 VXNlcm5hbWU6"]}, ALL_EXTENSIONS)
    conn, server = opened(ALL_EXTENSIONS, answer=answer)
    exchange(conn, server, conn.send(Auth("LOGIN")))
    assert conn.state is State.AUTH
    assert conn.send(AuthResponse("dXNlcg==")) == b"dXNlcg==\r\n"
    conn.receive_data(b"334 UGFzc3dvcmQ6\r\n")
    drain(conn)
    assert conn.state is State.AUTH
    conn.send(AuthResponse("cGFzcw=="))
    conn.receive_data(b"235 2.7.0 ok\r\n")
    drain(conn)
    assert conn.state is State.READY


def test_auth_failure_returns_to_ready() -> None:
    """535 ends the exchange; the session is READY again."""
    conn, server = opened(
        ALL_EXTENSIONS, answer=scripted({"AUTH": ["535 5.7.8 bad"]}, ALL_EXTENSIONS)
    )
    exchange(conn, server, conn.send(Auth("PLAIN", "AGEAYg==")))
    assert conn.state is State.READY


def test_auth_needs_the_extension() -> None:
    """AUTH to a server that offers no mechanism raises ExtensionNotSupported."""
    conn, _ = opened(("PIPELINING",))
    before = snapshot(conn)
    with pytest.raises(ExtensionNotSupported):
        conn.send(Auth("PLAIN", "AGEAYg=="))
    assert snapshot(conn) == before


# --- replies that break the rules -------------------------------------------------------------


def test_unsolicited_reply_is_a_remote_error_and_sticky() -> None:
    """A reply nobody asked for raises RemoteProtocolError; ERROR then refuses everything."""
    conn = _ready()
    conn.receive_data(b"250 surprise\r\n")
    with pytest.raises(RemoteProtocolError, match="unsolicited"):
        conn.next_event()
    assert conn.state is State.ERROR
    conn.receive_data(b"250 more\r\n")
    with pytest.raises(RemoteProtocolError):
        conn.next_event()
    with pytest.raises(LocalProtocolError):
        conn.send(Noop())


def test_extra_reply_after_a_pipelined_group_is_unsolicited() -> None:
    """One reply too many after a group is a protocol error, not matched to anything."""
    conn, _ = opened()
    send_all(conn, MailFrom(sender=A), RcptTo(recipient=B))
    conn.receive_data(b"250 ok\r\n250 ok\r\n250 extra\r\n")
    assert len([conn.next_event(), conn.next_event()]) == 2
    with pytest.raises(RemoteProtocolError):
        conn.next_event()


def test_unsolicited_421_is_reported_and_closes() -> None:
    """A 421 may come at any time (RFC 5321 3.8): Response(None, reply), state CLOSED."""
    conn = _ready()
    conn.receive_data(b"421 4.4.2 idle timeout\r\n")
    event = conn.next_event()
    assert isinstance(event, Response)
    assert (event.command, event.reply.code, conn.state) == (None, 421, State.CLOSED)


def test_421_answering_a_command_closes() -> None:
    """A 421 in answer to MAIL closes the session; nothing more may be sent."""
    conn, server = opened(answer=scripted({"MAIL": ["421 4.3.2 shutting down"]}))
    (response,) = exchange(conn, server, conn.send(MailFrom(sender=A)))
    assert (response.reply.code, conn.state) == (421, State.CLOSED)
    with pytest.raises(LocalProtocolError):
        conn.send(Rset())


def test_reply_during_body_closes() -> None:
    """A server reply in the middle of the body is handed up and ends the session."""
    conn = _body()
    conn.send_data(b"part of the body\r\n")
    conn.receive_data(b"554 5.3.4 message too big\r\n")
    event = conn.next_event()
    assert isinstance(event, Response)
    assert (event.command, event.reply.code, conn.state) == (None, 554, State.CLOSED)
    with pytest.raises(LocalProtocolError):
        conn.send_data(b"more")


def test_eof_gives_connection_closed() -> None:
    """b"" means EOF: ConnectionClosed, state CLOSED, every time it is asked."""
    conn = _ready()
    conn.receive_data(b"")
    assert isinstance(conn.next_event(), ConnectionClosed)
    assert isinstance(conn.next_event(), ConnectionClosed)
    assert conn.state is State.CLOSED
    assert conn.transcript().count("*: connection closed by server") == 1


def test_replies_before_eof_come_first() -> None:
    """Complete replies received before EOF are handed out before ConnectionClosed."""
    conn, _ = opened()
    conn.send(Quit())
    conn.receive_data(b"221 bye\r\n")
    conn.receive_data(b"")
    events = drain(conn)
    assert [type(e).__name__ for e in events] == ["Response", "ConnectionClosed"]


def test_eof_in_the_middle_of_a_reply() -> None:
    """A reply cut short by EOF is not a reply: ConnectionClosed."""
    conn, _ = opened()
    conn.send(Noop())
    conn.receive_data(b"250 o")
    conn.receive_data(b"")
    assert isinstance(conn.next_event(), ConnectionClosed)


@pytest.mark.parametrize(
    "data",
    [b"hello\r\n", b"25 short\r\n", b"650 bad class\r\n", b"250-a\r\n251 b\r\n", b"250_x\r\n"],
)
def test_malformed_reply_is_a_sticky_remote_error(data: bytes) -> None:
    """A malformed reply raises RemoteProtocolError; the ERROR state stays."""
    conn, _ = opened()
    conn.send(Noop())
    conn.receive_data(data)
    with pytest.raises(RemoteProtocolError):
        conn.next_event()
    assert conn.state is State.ERROR
    conn.receive_data(b"250 fine now\r\n")
    with pytest.raises(RemoteProtocolError):
        conn.next_event()


def test_oversized_reply_line_is_refused() -> None:
    """A reply line longer than max_line_length is an error, not an unbounded buffer."""
    conn, _ = opened(max_line_length=64)
    conn.send(Noop())
    conn.receive_data(b"250 " + b"x" * 100)
    with pytest.raises(RemoteProtocolError):
        conn.next_event()


def test_too_many_reply_lines_are_refused() -> None:
    """A reply with more than max_lines lines is an error."""
    conn, _ = opened(max_lines=600)
    conn.send(Ehlo("client.example"))
    conn.receive_data(b"250-x\r\n" * 601)
    with pytest.raises(RemoteProtocolError):
        conn.next_event()


def test_reply_while_waiting_for_tls_is_unsolicited() -> None:
    """Parsing injected bytes after STARTTLS's 220 gives a RemoteProtocolError."""
    conn, _ = opened(ALL_EXTENSIONS)
    conn.send(StartTLS())
    conn.receive_data(b"220 go ahead\r\n250 injected\r\n")
    conn.next_event()
    with pytest.raises(RemoteProtocolError):
        conn.next_event()


# --- the transcript ---------------------------------------------------------------------------


def test_transcript_masks_auth_lines() -> None:
    """AUTH shows ``AUTH PLAIN ****``, continuation lines ``****``, credentials never."""
    answer = scripted({"AUTH": ["334 ", "334 "]}, ALL_EXTENSIONS)
    conn, server = opened(ALL_EXTENSIONS, answer=answer)
    traced: list[str] = []
    conn.trace = traced.append
    exchange(conn, server, conn.send(Auth("PLAIN", "c2VjcmV0LXBhc3N3b3Jk")))
    conn.send(AuthResponse("bW9yZS1zZWNyZXQ="))
    conn.receive_data(b"334 \r\n")
    drain(conn)
    conn.send(AuthResponse("*"))
    transcript = conn.transcript()
    assert "C: AUTH PLAIN ****" in transcript
    assert "C: ****" in transcript
    assert "C: *" in transcript
    joined = "\n".join(transcript) + "\n".join(traced)
    assert "c2VjcmV0" not in joined
    assert "bW9yZS1zZWNyZXQ" not in joined


def test_transcript_shows_body_only_as_its_size() -> None:
    """The body is ``<message body, N bytes>``; its content never appears."""
    conn = _body()
    traced: list[str] = []
    conn.trace = traced.append
    conn.send_body(b"Subject: TOP-SECRET-CONTENT\r\n\r\nhello\r\n")
    assert "C: <message body, 38 bytes>" in conn.transcript()
    assert "C: <message body, 38 bytes>" in traced
    assert "TOP-SECRET" not in "\n".join(conn.transcript()) + "\n".join(traced)


def test_transcript_counts_streamed_body_bytes() -> None:
    """A streamed body is shown once, with the total size of its pieces."""
    conn = _body()
    for piece in (b"TOP-SECRET ", b"content\n", b"."):
        conn.send_data(piece)
    conn.send(EndOfData())
    assert conn.transcript()[-2:] == ("C: <message body, 20 bytes>", "C: .")
    assert "TOP-SECRET" not in "\n".join(conn.transcript())


def test_transcript_hides_bdat_chunks() -> None:
    """A BDAT chunk's content never reaches the transcript."""
    conn, server = opened(ALL_EXTENSIONS)
    exchange(conn, server, send_all(conn, MailFrom(sender=A), RcptTo(recipient=B)))
    conn.send_bdat(b"TOP-SECRET", last=True)
    assert conn.transcript()[-1] == "C: BDAT 10 LAST"
    assert "TOP-SECRET" not in "\n".join(conn.transcript())


def test_transcript_size_bound_is_respected() -> None:
    """Only the newest transcript_size entries are kept."""
    conn, server = opened(transcript_size=5)
    for _ in range(10):
        exchange(conn, server, conn.send(Vrfy("postmaster")))
    transcript = conn.transcript()
    assert len(transcript) == 5
    assert transcript[-2:] == ("C: VRFY postmaster", "S: 250 2.0.0 ok")


def test_transcript_can_be_turned_off() -> None:
    """transcript_size=0 keeps nothing (the trace callback still sees every line)."""
    conn, server = opened(transcript_size=0)
    traced: list[str] = []
    conn.trace = traced.append
    exchange(conn, server, conn.send(Noop()))
    assert (conn.transcript(), traced) == ((), ["C: NOOP", "S: 250 2.0.0 ok"])


def test_trace_can_be_set_and_removed_at_any_time() -> None:
    """A tracer set mid-session sees what follows; removed, it sees nothing more.

    The transcript keeps every line either way.
    """
    conn, server = opened()
    exchange(conn, server, conn.send(Noop()))
    traced: list[str] = []
    conn.trace = traced.append
    assert conn.trace == traced.append
    exchange(conn, server, conn.send(Vrfy("postmaster")))
    conn.trace = None
    exchange(conn, server, conn.send(Noop()))
    assert traced == ["C: VRFY postmaster", "S: 250 2.0.0 ok"]
    assert conn.transcript()[-6:] == (
        "C: NOOP",
        "S: 250 2.0.0 ok",
        "C: VRFY postmaster",
        "S: 250 2.0.0 ok",
        "C: NOOP",
        "S: 250 2.0.0 ok",
    )


@pytest.mark.parametrize("size", [-1, 1.5, "10"])
def test_bad_transcript_size_is_refused(size: Any) -> None:
    """transcript_size must be an int >= 0."""
    with pytest.raises(UsageError):
        Connection(transcript_size=size)


def test_transcript_renders_multiline_replies_as_sent() -> None:
    """A multi-line reply shows each line with its code and separator."""
    conn, _ = opened(("PIPELINING", "SIZE 10"))
    ehlo = [line for line in conn.transcript() if line.startswith("S: 250-")]
    assert ehlo == ["S: 250-mx.example.test\nS: 250-PIPELINING\nS: 250 SIZE 10"]


def test_transcript_escapes_control_characters_from_the_server() -> None:
    """Control characters in server text cannot forge transcript or log lines."""
    conn, _ = opened()
    conn.send(Noop())
    conn.receive_data(b"250 ok\rS: 250 forged\x1b[2J\r\n")
    drain(conn)
    last = conn.transcript()[-1]
    assert last == "S: 250 ok\\x0dS: 250 forged\\x1b[2J"


def test_repr_shows_the_state() -> None:
    """repr() shows state, TLS, LMTP and pending replies."""
    conn, _ = opened(lmtp=True)
    conn.implicit_tls()
    conn.send(Noop())
    assert repr(conn) == "<Connection [READY TLS LMTP | pending: 1]>"


# --- THREATS S2 at the connection: nothing reaches the wire -----------------------------------

THREATS = {"crlf": "\r\n", "cr": "\r", "lf": "\n", "nul": "\x00", "tab": "\t", "del": "\x7f"}


@pytest.mark.parametrize("threat", THREATS.values(), ids=THREATS.keys())
@pytest.mark.parametrize(
    "build",
    [
        lambda bad: MailFrom(sender=f"a{bad}@example.org"),
        lambda bad: RcptTo(recipient=f"b@example.org{bad}RSET"),
        lambda bad: Ehlo(f"client{bad}.example"),
        lambda bad: MailFrom(sender=A, envid=f"id{bad}1"),
    ],
    ids=["sender", "recipient", "ehlo", "envid"],
)
def test_injection_never_reaches_the_server(build: Callable[[str], Command], threat: str) -> None:
    """A poisoned argument fails before send(): the server receives no byte of it."""
    conn, server = opened()
    received, before = bytes(server.received), snapshot(conn)
    with pytest.raises(InvalidArgument):
        server.receive(conn.send(build(threat)))
    assert (bytes(server.received), snapshot(conn)) == (received, before)


# --- docs -------------------------------------------------------------------------------------


def test_module_docstring_examples_run() -> None:
    """The examples in the connection module's docstrings are correct."""
    result = doctest.testmod(connection_module, optionflags=doctest.ELLIPSIS)
    assert (result.attempted > 0, result.failed) == (True, 0)


def test_docs_worked_example_runs() -> None:
    """The pycon blocks of docs/protocol.md run as shown (one shared namespace)."""
    text = DOCS.read_text(encoding="utf-8")
    blocks = re.findall(r"```pycon\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) >= 3
    test = doctest.DocTestParser().get_doctest("\n".join(blocks), {}, "protocol.md", str(DOCS), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(test)
    assert (runner.summarize(verbose=False).failed, len(test.examples) > 10) == (0, True)


# --- properties -------------------------------------------------------------------------------

_locals = st.text(alphabet=string.ascii_lowercase + string.digits + "+-_", min_size=1, max_size=8)
_addresses = st.builds(
    lambda local, domain: f"{local}@{domain}",
    _locals,
    st.sampled_from(["mx.example", "b\u00fccher.example", "mail.sub.example", "[192.0.2.1]"]),
)
_bodies = st.one_of(
    st.binary(max_size=200),
    st.lists(
        st.sampled_from([b"\r", b"\n", b".", b"\r\n", b".\r\n", b"x", b"\r\n.\r\n", b"\n.\n"]),
        max_size=30,
    ).map(b"".join),
)


def _canonical(body: bytes) -> bytes:
    """An independent oracle for the line-ending rule: CRLF, CR and LF all become CRLF."""
    return re.sub(rb"\r\n|\r|\n", b"\r\n", body)


def _no_bare_cr_or_lf(wire: bytes) -> bool:
    return b"\r" not in wire.replace(b"\r\n", b"") and b"\n" not in wire.replace(b"\r\n", b"")


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted(min(c, len(data)) for c in cuts), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(
    pipelining=st.booleans(),
    lmtp=st.booleans(),
    how=st.sampled_from(["whole", "stream", "bdat"]),
    transactions=st.lists(
        st.tuples(
            st.one_of(st.just(""), _addresses),
            st.lists(_addresses, min_size=1, max_size=4, unique=True),
            _bodies,
            st.lists(st.integers(0, 200), max_size=4),
        ),
        min_size=1,
        max_size=3,
    ),
)
def test_random_transactions_against_an_always_ok_server(
    pipelining: bool, lmtp: bool, how: str, transactions: list[Any]
) -> None:
    """Any valid envelope and body: replies match commands 1:1 and the session ends READY."""
    extensions = ("CHUNKING", "8BITMIME", *(("PIPELINING",) if pipelining else ()))
    conn, server = opened(extensions, lmtp=lmtp)
    for sender, recipients, body, cuts in transactions:
        expected: list[Command] = [MailFrom(sender=sender)]
        expected += [RcptTo(recipient=r) for r in recipients]
        if how != "bdat":
            expected.append(Data())
        responses: list[Response] = []
        if pipelining or lmtp:
            responses += exchange(conn, server, send_all(conn, *expected))
        else:
            for command in expected:
                responses += exchange(conn, server, conn.send(command))
        finals = 1 if not lmtp else len(recipients)
        if how == "bdat":
            chunks = _split(_canonical(body), cuts)
            for chunk in chunks[:-1]:
                expected.append(Bdat(len(chunk)))
                responses += exchange(conn, server, conn.send_bdat(chunk, last=False))
            expected += [Bdat(len(chunks[-1]), last=True)] * finals
            wire = conn.send_bdat(chunks[-1], last=True)
            message = _canonical(body)
        else:
            if how == "whole":
                wire = conn.send_body(body)
            else:
                wire = b"".join(conn.send_data(p) for p in _split(body, cuts))
                wire += conn.send(EndOfData())
            expected += [EndOfData()] * finals
            message = _canonical(body)
            message += b"" if message.endswith(b"\r\n") else b"\r\n"
        responses += exchange(conn, server, wire)
        assert [r.command for r in responses] == expected
        assert all(r.reply.code in (250, 354) for r in responses)
        if lmtp:
            assert [r.recipient for r in responses[-finals:]] == recipients
        assert (conn.state, conn.pending) == (State.READY, 0)
        assert server.messages[-1] == message


POOL: list[Command] = [
    Ehlo("client.example"),
    Helo("client.example"),
    StartTLS(),
    Auth("PLAIN", "AGEAYg=="),
    Auth("LOGIN"),
    AuthResponse("dXNlcg=="),
    AuthResponse("*"),
    MailFrom(sender=A),
    MailFrom(sender="", size=100, body="8BITMIME"),
    MailFrom(sender=A, body="BINARYMIME"),
    MailFrom(sender="j\u00f6rg@example.org", smtputf8=True),
    MailFrom(sender=A, ret="HDRS", requiretls=True),
    RcptTo(recipient=B),
    RcptTo(recipient=C, notify=("FAILURE",)),
    RcptTo(recipient="j\u00f6rg@example.org"),
    Data(),
    EndOfData(),
    Rset(),
    Noop(),
    Vrfy("postmaster"),
    Quit(),
]
TRANSACTION: list[Command] = [
    MailFrom(sender=A),
    RcptTo(recipient=B),
    RcptTo(recipient=C),
    Data(),
    EndOfData(),
    Rset(),
]
"""The commands of a plain transaction, drawn more often so that the machine gets deep."""
CODES = [220, 221, 235, 250, 251, 334, 354, 421, 450, 452, 500, 503, 535, 550, 554]
# Mostly the always-OK answer, so that sessions get deep; sometimes any code at all.
_replies = st.integers(0, 3).flatmap(
    lambda n: st.lists(st.sampled_from(CODES), min_size=1, max_size=2) if n == 0 else st.just([])
)
MACHINE_EXTENSIONS = (
    "8BITMIME",
    "SIZE 1000",
    "CHUNKING",
    "BINARYMIME",
    "STARTTLS",
    "AUTH PLAIN",
    "DSN",
    "SMTPUTF8",
    "REQUIRETLS",
)


def _needs(command: Command) -> set[str]:
    """The EHLO keywords a command needs, read from the RFCs that define its parameters."""
    needs = set()
    if isinstance(command, MailFrom):
        needs |= {"SIZE"} if command.size is not None else set()
        needs |= {"8BITMIME"} if command.body == "8BITMIME" else set()
        needs |= {"BINARYMIME", "CHUNKING"} if command.body == "BINARYMIME" else set()
        needs |= {"SMTPUTF8"} if command.smtputf8 else set()
        needs |= {"DSN"} if command.ret or command.envid else set()
        needs |= {"REQUIRETLS"} if command.requiretls else set()
    elif isinstance(command, RcptTo):
        needs |= {"DSN"} if command.notify or command.orcpt else set()
    elif isinstance(command, Bdat):
        needs.add("CHUNKING")
    elif isinstance(command, (StartTLS, Auth)):
        needs.add(command.verb)
    return needs


def _twin(conn: Connection) -> Connection:
    """A copy of ``conn`` that sending commands on leaves ``conn`` as it was."""
    twin = copy.copy(conn)
    twin._pending = copy.copy(conn._pending)
    twin._transcript = copy.copy(conn._transcript)
    twin.trace = conn.trace  # records into the twin's own transcript from now on
    return twin


class Session(RuleBasedStateMachine):
    """Random legal and illegal moves against a server answering with random codes.

    A refused move must change nothing; an accepted one must be allowed by the
    table and by RFC 2920's pipelining rules; the replies the server produced
    and the ones the client awaits must always agree; once every reply is in,
    the client is inside a transaction exactly when the server's replies say
    the server is; and no bare CR or LF may reach the wire.
    """

    def __init__(self) -> None:
        super().__init__()
        self.queue: list[int] = []
        self.server = FakeServer(self._answer)
        self.conn = Connection(transcript_size=30)
        self.extensions: tuple[str, ...] = ()
        self.to_client = bytearray()
        self.consumed = 0
        self.outstanding: list[str] = []
        """Commands sent and not answered yet, as the machine saw them go."""
        self.server_transaction = False
        """Whether, judging by its replies, the server holds a transaction open."""

    def _answer(self, line: str) -> str:
        code = self.queue.pop(0) if self.queue else None
        if code is None:
            return always_ok(self.extensions)(line)
        if code == 250 and line.split(" ", 1)[0].upper() in ("EHLO", "HELO"):
            return ehlo_text(self.extensions)
        return f"{code} scripted"

    @initialize(
        greeting=st.sampled_from([220, 220, 220, 554, 421]),
        extensions=st.lists(st.sampled_from(MACHINE_EXTENSIONS), unique=True),
        pipelining=st.booleans(),
        hello=st.sampled_from([True, True, True, False]),
    )
    def greet(self, greeting: int, extensions: list[str], pipelining: bool, hello: bool) -> None:
        """The server greets; it offers some extensions, maybe PIPELINING; maybe EHLO is done."""
        self.extensions = (*extensions, *(("PIPELINING",) if pipelining else ()))
        self.conn.receive_data(self.server.greeting(f"{greeting} mx"))
        self._drain()
        if hello and greeting == 220:
            self._attempt(lambda: self.conn.send(Ehlo("client.example")), "EHLO", set())
            self.deliver_all()

    def _attempt(self, action: Callable[[], bytes], key: str, needs: set[str]) -> None:
        before = snapshot(self.conn)
        state, offered = self.conn.state, set(self.conn.extensions.keywords)
        try:
            wire = action()
        except (LocalProtocolError, UsageError):
            assert snapshot(self.conn) == before
            self.queue.clear()
            return
        assert (state, key) in SEND_TRANSITIONS
        assert needs <= offered
        assert wire
        assert _no_bare_cr_or_lf(self.server.received + wire)
        self.outstanding.append(key)
        self.to_client += self.server.receive(wire)
        self.queue.clear()

    @rule(
        command=st.sampled_from(POOL) | st.sampled_from(TRANSACTION),
        replies=_replies,
    )
    def send(self, command: Command, replies: list[int]) -> None:
        """Send any command from the pool, legal here or not."""
        self.queue = list(replies)
        key = "." if isinstance(command, EndOfData) else command.verb
        self._attempt(lambda: self.conn.send(command), key, _needs(command))

    @rule(
        group=st.lists(
            st.sampled_from(POOL) | st.sampled_from(TRANSACTION), min_size=1, max_size=4
        ),
        replies=_replies,
    )
    def send_group(self, group: list[Command], replies: list[int]) -> None:
        """A group is each command sent in turn, or (when one is refused) nothing at all."""
        twin = _twin(self.conn)
        before = snapshot(self.conn)
        expected: bytes | None = None
        if not any(isinstance(command, EndOfData) for command in group):  # never in a group
            with contextlib.suppress(LocalProtocolError, UsageError):
                expected = b"".join([twin.send(command) for command in group])
        if expected is None:
            with pytest.raises((LocalProtocolError, UsageError)):
                self.conn.send_group(group)
            assert snapshot(self.conn) == before
            return
        self.queue = list(replies)
        wire = self.conn.send_group(group)
        assert wire == expected
        assert snapshot(self.conn) == snapshot(twin)
        self.outstanding += [command.verb for command in group]
        self.to_client += self.server.receive(wire)
        self.queue.clear()

    @precondition(lambda self: self.conn.state in (State.BODY, State.MAIL, State.END))
    @rule(body=_bodies, codes=_replies)
    def send_body(self, body: bytes, codes: list[int]) -> None:
        """Send a whole body (legal only after 354)."""
        self.queue = list(codes)
        self._attempt(lambda: self.conn.send_body(body), ".", set())

    @precondition(lambda self: self.conn.state in (State.BODY, State.DATA))
    @rule(chunk=_bodies)
    def send_data(self, chunk: bytes) -> None:
        """Stream a piece of a body (legal only after 354)."""
        before = snapshot(self.conn)
        try:
            wire = self.conn.send_data(chunk)
        except LocalProtocolError:
            assert snapshot(self.conn) == before
            return
        self.to_client += self.server.receive(wire)

    @precondition(lambda self: self.conn.state in (State.MAIL, State.BDAT, State.END))
    @rule(
        chunk=_bodies.map(_canonical),
        last=st.booleans(),
        codes=_replies,
    )
    def send_bdat(self, chunk: bytes, last: bool, codes: list[int]) -> None:
        """Send a BDAT chunk (legal only inside a transaction, with CHUNKING)."""
        self.queue = list(codes)
        key = "BDAT LAST" if last else "BDAT"
        self._attempt(lambda: self.conn.send_bdat(chunk, last=last), key, {"CHUNKING"})

    @rule()
    def tls_established(self) -> None:
        """Report a finished TLS handshake (legal only after 220 to STARTTLS)."""
        before, state = snapshot(self.conn), self.conn.state
        try:
            self.conn.tls_established()
        except LocalProtocolError:
            assert snapshot(self.conn) == before
            return
        assert state is State.STARTTLS
        assert (self.conn.state, self.conn.extensions) == (State.CONNECTED, Extensions.empty())

    @rule(size=st.integers(1, 64))
    def deliver(self, size: int) -> None:
        """Some of the server's replies reach the client."""
        data, self.to_client = bytes(self.to_client[:size]), self.to_client[size:]
        if not data:
            return  # b"" would mean EOF
        self.conn.receive_data(data)
        self._drain()

    @rule()
    def deliver_all(self) -> None:
        """Every reply so far reaches the client."""
        self.deliver(len(self.to_client))

    def _drain(self) -> None:
        if self.conn.state is State.STARTTLS:
            return  # the client reads nothing more until TLS is up
        for event in drain(self.conn):
            assert isinstance(event, Response)
            if event.command is None:
                continue  # the greeting
            self.consumed += 1
            self._server_side(self.outstanding.pop(0), event.reply.code)

    def _server_side(self, key: str, code: int) -> None:
        # What the reply says about the server's transaction (RFC 5321 4.1.1, RFC 3030 2).
        ok = 200 <= code < 300
        if (key == "MAIL" and ok) or (key == "DATA" and code == 354):
            self.server_transaction = True
        elif key in ("EHLO", "HELO", "RSET", ".") or (key == "BDAT LAST" and ok):
            self.server_transaction = False

    @invariant()
    def never_in_error(self) -> None:
        """The server is consistent, so the client never sees a protocol error."""
        assert self.conn.state is not State.ERROR

    @invariant()
    def replies_and_expectations_agree(self) -> None:
        """The client awaits exactly the replies the server produced and it has not read."""
        assert self.conn.pending == self.server.replies_sent - self.consumed

    @invariant()
    def pipelining_follows_rfc_2920(self) -> None:
        """Only MAIL, RCPT, RSET and non-last BDAT are ever followed before their reply.

        And the end of a message's data, by the next message's MAIL (RFC 2920 3.1:
        message content may start a group).
        """
        outstanding = self.outstanding
        for key, after in itertools.pairwise(outstanding):
            assert key in ("MAIL", "RCPT", "RSET", "BDAT") or (key, after) == (".", "MAIL")
        if "PIPELINING" not in self.extensions:
            assert len(self.outstanding) <= 1

    @invariant()
    def transaction_state_matches_the_server(self) -> None:
        """With every reply in, the client is in a transaction exactly when the server is."""
        if self.conn.pending or self.conn.state in (State.CLOSED, State.GREETING, State.STARTTLS):
            return
        in_transaction = self.conn.state in (State.MAIL, State.BODY, State.BDAT)
        assert in_transaction == self.server_transaction

    @invariant()
    def waiting_states_wait(self) -> None:
        """DATA and END exist only while a reply is awaited."""
        if self.conn.state in (State.DATA, State.END):
            assert self.conn.pending >= 1

    @invariant()
    def accepted_recipients_were_sent(self) -> None:
        """Only recipients actually sent in RCPT can be accepted."""
        assert set(self.conn.accepted_recipients) <= {B, C, "j\u00f6rg@example.org"}

    @invariant()
    def transcript_is_bounded(self) -> None:
        """The transcript never grows past its bound."""
        assert len(self.conn.transcript()) <= 30


Session.TestCase.settings = settings(
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_random_moves_keep_the_machine_consistent = Session.TestCase


_texts = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12
) | st.sampled_from(["a@example.org", "client.example", "x\r\nRSET", "\n", ".", "a@b.example\r"])


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(
    ehlo=_texts,
    sender=_texts,
    recipients=st.lists(_texts, max_size=3),
    envid=st.none() | _texts,
    body=_bodies,
)
def test_wire_never_carries_a_bare_cr_or_lf(
    ehlo: str, sender: str, recipients: list[str], envid: str | None, body: bytes
) -> None:
    """Whatever the caller passes, every byte sequence sent has CR and LF only as CRLF."""
    conn, server = opened(("PIPELINING", "DSN", "SMTPUTF8"))
    wire = bytearray()

    def attempt(build: Callable[[], Command]) -> None:
        try:
            data = conn.send(build())
        except (UsageError, LocalProtocolError):
            return
        wire.extend(data)
        conn.receive_data(server.receive(data))
        drain(conn)

    attempt(lambda: Ehlo(ehlo))
    attempt(lambda: MailFrom(sender=sender, envid=envid, smtputf8=True))
    for recipient in recipients:
        attempt(lambda r=recipient: RcptTo(recipient=r))  # type: ignore[misc]
    attempt(Data)
    if conn.state is State.BODY:
        wire += conn.send_body(body)
    assert _no_bare_cr_or_lf(bytes(wire))
    assert _no_bare_cr_or_lf(bytes(server.received))
