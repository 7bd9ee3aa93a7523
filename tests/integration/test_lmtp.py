"""LMTP (RFC 2033) through both drivers: LHLO, one reply per recipient after the data.

Servers: aiosmtpd in LMTP mode (:class:`RecordingServer` with ``lmtp=True``, whose faults
refuse single recipients after the data), Postfix's ``smtp-sink -L``, and the kit's
:func:`basic_ok_server` for BDAT. The rules: partial success after the data is a result, not
an error; every recipient refused is RecipientsRefused; a connection lost between the
per-recipient replies is DeliveryUnknown.
"""

from __future__ import annotations

from collections.abc import Callable

import drivers
import pytest
from drivers import Session, SessionFactory

from mailtransfer import NoTLS, Timeouts
from mailtransfer.errors import (
    DeliveryUnknown,
    MailboxFull,
    RecipientsRefused,
    ReplyError,
    UnknownMailbox,
)
from mailtransfer.testing import (
    DEFAULT_EXTENSIONS,
    EsmtpScript,
    RecordingServer,
    ScriptedPeer,
    ScriptedServer,
    basic_ok_server,
)
from peers import smtp_sink

driver = drivers.driver  # the sync/async parametrised session factory
Factory = Callable[..., RecordingServer]
Scripted = Callable[..., ScriptedServer]

MESSAGE = b"From: a@example.test\r\nSubject: lmtp\r\n\r\nHello\r\n"
A, B, C = "a@example.test", "b@example.test", "c@example.test"


def lmtp_session(driver: SessionFactory, host: str, port: int) -> Session:
    """An open LMTP session over plaintext loopback."""
    conn = driver(
        host, port, lmtp=True, tls=NoTLS(), timeouts=Timeouts.all(5), local_hostname="lmtp.client"
    )
    conn.open()
    return conn


@pytest.fixture
def lmtp_server(recording_server: Factory) -> RecordingServer:
    """aiosmtpd speaking LMTP."""
    return recording_server(lmtp=True)


def test_lhlo_and_one_reply_per_recipient(
    driver: SessionFactory, lmtp_server: RecordingServer
) -> None:
    """LHLO opens the session; each recipient gets its own 250 after the data."""
    conn = lmtp_session(driver, lmtp_server.host, lmtp_server.port)
    result = conn.send(MESSAGE, sender="s@example.test", recipients=[A, B, C])
    conn.quit()
    assert lmtp_server.commands[0] == "LHLO lmtp.client"
    assert not any(c.startswith(("EHLO", "HELO")) for c in lmtp_server.commands)
    assert list(result.accepted) == [A, B, C]
    assert all(reply.code == 250 for reply in result.accepted.values())
    assert result.refused == {}
    transcript = conn.transcript()
    after_dot = transcript[transcript.index("C: .") + 1 :]
    assert len([line for line in after_dot if line.startswith("S: 250")]) == 3
    assert lmtp_server.wait_for(1)[0].rcpt_tos == (A, B, C)


def test_partial_success_after_the_data(
    driver: SessionFactory, lmtp_server: RecordingServer
) -> None:
    """One mailbox full after the data: the others are delivered, the result says who was not."""
    lmtp_server.faults.reply_to_data(452, "4.2.2 Mailbox full", recipient=B)
    conn = lmtp_session(driver, lmtp_server.host, lmtp_server.port)
    result = conn.send(MESSAGE, sender="s@example.test", recipients=[A, B, C])
    assert conn.is_usable
    conn.quit()
    assert list(result.accepted) == [A, C]
    assert list(result.refused) == [B]
    refusal = result.refused[B]
    assert isinstance(refusal, MailboxFull)
    assert refusal.transient
    assert refusal.reply.code == 452
    assert lmtp_server.wait_for(1)[0].rcpt_tos == (A, C)


def test_refusals_at_rcpt_and_after_the_data_combine(
    driver: SessionFactory, lmtp_server: RecordingServer
) -> None:
    """A refused at RCPT (no reply after the data for it), B after the data, C delivered."""
    lmtp_server.faults.refuse_recipient(A, 550, "5.1.1 No such user")
    lmtp_server.faults.reply_to_data(552, "5.2.2 Over quota", recipient=B)
    conn = lmtp_session(driver, lmtp_server.host, lmtp_server.port)
    result = conn.send(MESSAGE, sender="s@example.test", recipients=[A, B, C])
    conn.quit()
    assert list(result.accepted) == [C]
    assert isinstance(result.refused[A], UnknownMailbox)
    assert isinstance(result.refused[B], MailboxFull)
    assert not result.refused[B].transient
    transcript = conn.transcript()
    after_dot = transcript[transcript.index("C: .") + 1 : transcript.index("C: QUIT")]
    assert after_dot == (  # none for A, refused at RCPT
        "S: 552 5.2.2 Over quota",
        "S: 250 2.0.0 <c@example.test> delivered",
    )


def test_every_recipient_refused_after_the_data(
    driver: SessionFactory, lmtp_server: RecordingServer
) -> None:
    """Every per-recipient reply refuses: RecipientsRefused; the session can go on."""
    lmtp_server.faults.reply_to_data(550, "5.1.1 Gone", times=2)
    conn = lmtp_session(driver, lmtp_server.host, lmtp_server.port)
    with pytest.raises(RecipientsRefused) as info:
        conn.send(MESSAGE, sender="s@example.test", recipients=[A, B])
    assert set(info.value.refused) == {A, B}
    assert not info.value.transient
    assert conn.is_usable
    result = conn.send(MESSAGE, sender="s@example.test", recipients=[C])
    conn.quit()
    assert list(result.accepted) == [C]
    assert [m.rcpt_tos for m in lmtp_server.wait_for(1)] == [(C,)]


def test_lmtp_pipelines_without_the_keyword(
    driver: SessionFactory, lmtp_server: RecordingServer
) -> None:
    """RFC 2033 4.1 makes PIPELINING mandatory: MAIL, RCPTs and DATA go before any reply."""
    conn = lmtp_session(driver, lmtp_server.host, lmtp_server.port)
    assert not conn.extensions.pipelining
    conn.send(MESSAGE, sender="s@example.test", recipients=[A, B])
    conn.quit()
    transcript = conn.transcript()
    start = transcript.index(f"C: MAIL FROM:<s@example.test> SIZE={len(MESSAGE)}")
    assert transcript[start : start + 4] == (
        f"C: MAIL FROM:<s@example.test> SIZE={len(MESSAGE)}",
        f"C: RCPT TO:<{A}>",
        f"C: RCPT TO:<{B}>",
        "C: DATA",
    )


def test_lmtp_against_smtp_sink(driver: SessionFactory) -> None:
    """Postfix's smtp-sink in LMTP mode answers each recipient; the sink counts the message."""
    with smtp_sink(options=["-L"]) as sink:
        conn = lmtp_session(driver, sink.host, sink.port)
        result = conn.send(MESSAGE, sender="s@example.test", recipients=[A, B, C])
        conn.send(MESSAGE, sender="s@example.test", recipients=[A])
        conn.quit()
        assert sink.wait_for_messages(2) == 2
    assert list(result.accepted) == [A, B, C]
    assert str(result.reply.enhanced) == "2.2.0"


def test_lmtp_smtp_sink_refusing_the_data(driver: SessionFactory) -> None:
    """smtp-sink ``-L -f .`` refuses at the end of the data: every recipient refused, typed."""
    with smtp_sink(options=["-L", "-f", "."]) as sink:
        conn = lmtp_session(driver, sink.host, sink.port)
        with pytest.raises(RecipientsRefused) as info:
            conn.send(MESSAGE, sender="s@example.test", recipients=[A, B])
        conn.quit()
    assert set(info.value.refused) == {A, B}
    assert all(isinstance(e, ReplyError) for e in info.value.refused.values())


def test_lmtp_bdat_gets_per_recipient_replies(
    driver: SessionFactory, scripted: Callable[..., ScriptedServer]
) -> None:
    """With CHUNKING, the last BDAT chunk is answered once per recipient (RFC 2033 + 3030)."""
    script = basic_ok_server(lmtp=True)
    server = scripted(script)
    conn = lmtp_session(driver, server.host, server.port)
    pieces = [b"Subject: big\r\n\r\n", b"x" * 70_000 + b"\r\n", b"y" * 70_000 + b"\r\n"]
    result = conn.send(iter(pieces), sender="s@example.test", recipients=[A, B], use_bdat=True)
    conn.quit()
    server.stop()
    assert list(result.accepted) == [A, B]
    assert script.messages[0].data == b"".join(pieces)
    assert script.messages[0].helo == "lmtp.client"


def test_connection_lost_between_recipient_replies_is_delivery_unknown(
    driver: SessionFactory, scripted: Callable[..., ScriptedServer]
) -> None:
    """The first recipient's 250 arrives, then the server vanishes: DeliveryUnknown."""

    async def half_answer(peer: ScriptedPeer, line: bytes) -> bool:
        if line != b".\r\n":
            return False
        await peer.send(b"250 2.1.5 <a@example.test> delivered\r\n")
        peer.close()
        return True

    server = scripted(EsmtpScript(lmtp=True, extensions=DEFAULT_EXTENSIONS, intercept=half_answer))
    conn = lmtp_session(driver, server.host, server.port)
    with pytest.raises(DeliveryUnknown):
        conn.send(MESSAGE, sender="s@example.test", recipients=[A, B])
    assert not conn.is_usable


def test_lmtp_to_an_smtp_server_does_not_fall_back_to_helo(
    driver: SessionFactory, smtp_server: RecordingServer
) -> None:
    """An SMTP server refuses LHLO: a typed refusal; LMTP never tries HELO or EHLO."""
    conn = driver(smtp_server.host, smtp_server.port, lmtp=True, tls=NoTLS())
    with pytest.raises(ReplyError) as info:
        conn.open()
    conn.close()
    assert info.value.reply.code in (500, 502)
    sent = [line.split()[1] for line in conn.transcript() if line.startswith("C: ")]
    assert sent == ["LHLO"]
