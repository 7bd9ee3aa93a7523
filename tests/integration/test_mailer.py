"""``Mailer`` and ``AsyncMailer`` end to end: configuration, message building, results, relays.

Every message goes through a real server on loopback and is parsed back with the ``email``
package, so what is checked is what a recipient would read.
"""

from __future__ import annotations

import asyncio
import email.policy
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from conftest_mailer import Fault, Mini, closed_port, mailer_options, message_id_of, mini_servers

import mailtransfer
from mailtransfer import (
    AsyncMailer,
    Attachment,
    Envelope,
    Mailer,
    NoTLS,
    RetryPolicy,
    SendResult,
    ServerInfo,
    StartTLS,
)
from mailtransfer import _default as default_module
from mailtransfer.errors import (
    ConnectError,
    ExtensionNotSupported,
    HeaderInjection,
    InvalidAddress,
    MailTransferError,
    PartialDelivery,
    RecipientsRefused,
    SMTPUTF8Required,
    UnknownMailbox,
    UsageError,
)
from mailtransfer.testing import (
    RecordingServer,
    ScriptedServer,
    TLSCertificates,
    greeting_then_close,
)

Factory = Callable[..., RecordingServer]
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


@pytest.fixture
def mini() -> Iterator[Mini]:
    """Factory for counting, fault-injecting SMTP servers (see conftest_mailer.MiniSmtp)."""
    with mini_servers() as start:
        yield start


def parse(data: bytes) -> EmailMessage:
    """Parse received bytes as a recipient's mail reader would."""
    message = BytesParser(policy=email.policy.default).parsebytes(data)
    assert isinstance(message, EmailMessage)
    return message


def text_of(message: EmailMessage, subtype: str = "plain") -> str:
    """The decoded text body, with the wire's CRLF line ends read as newlines."""
    body = message.get_body((subtype,))
    assert body is not None
    content = body.get_content()
    assert isinstance(content, str)
    return content.replace("\r\n", "\n")


def send_one(server: RecordingServer, **build: Any) -> tuple[SendResult, EmailMessage]:
    """Send one message with a fresh Mailer; return the result and the parsed arrival."""
    with Mailer(**mailer_options(server.port)) as mailer:
        result = mailer.send(**build)
    (received,) = server.messages
    return result, parse(received.data)


# -- the result, and the headers the mailer adds ----------------------------------------------


def test_result_names_message_id_recipients_and_reply(smtp_server: RecordingServer) -> None:
    """The result carries the Message-ID that arrived, the accepted recipients and the reply."""
    result, parsed = send_one(smtp_server, sender="a@example.org", to="b@example.net", text="x")
    assert result.message_id == parsed["Message-ID"]
    assert list(result.accepted) == ["b@example.net"]
    assert result.refused == {}
    assert result.reply.code == 250
    assert result.host == f"smtp://127.0.0.1:{smtp_server.port}"


def test_queue_id_parsed_from_final_reply(mini: Mini) -> None:
    """``queued as ID`` in the reply to the data becomes ``result.queue_id``."""
    server, _ = mini()
    with Mailer(**mailer_options(server.port)) as mailer:
        result = mailer.send(sender="a@example.org", to="b@example.net", text="x")
    assert result.queue_id == "MINI1"


def test_date_and_message_id_added(smtp_server: RecordingServer) -> None:
    """A built message gets exactly one Date and one Message-ID, in the sender's domain."""
    _, parsed = send_one(smtp_server, sender="a@example.org", to="b@example.net", text="x")
    assert len(parsed.get_all("Date", [])) == 1
    assert parsed["Date"].datetime is not None
    (message_id,) = parsed.get_all("Message-ID", [])
    assert message_id.endswith("@example.org>")


def test_given_message_id_kept(smtp_server: RecordingServer) -> None:
    """``message_id=`` is sent as is and reported back."""
    result, parsed = send_one(
        smtp_server, sender="a@example.org", to="b@example.net", message_id="<given.1@example.org>"
    )
    assert parsed["Message-ID"] == result.message_id == "<given.1@example.org>"


def test_bcc_in_envelope_never_in_headers(smtp_server: RecordingServer) -> None:
    """Bcc recipients get the message, but no Bcc field (nor their address) is sent."""
    send_one(
        smtp_server,
        sender="a@example.org",
        to="to@example.net",
        cc="cc@example.net",
        bcc=["hidden@example.net", "secret@example.com"],
        subject="blind copies",
        text="hello",
    )
    (received,) = smtp_server.messages
    assert received.rcpt_tos == (
        "to@example.net",
        "cc@example.net",
        "hidden@example.net",
        "secret@example.com",
    )
    head = received.data.split(b"\r\n\r\n", 1)[0].lower()
    assert b"\r\nbcc:" not in head
    assert not head.startswith(b"bcc:")
    assert b"hidden@" not in received.data
    assert b"secret@" not in received.data


def test_reply_to_and_extra_headers(smtp_server: RecordingServer) -> None:
    """``reply_to`` and ``headers`` arrive as fields."""
    _, parsed = send_one(
        smtp_server,
        sender="a@example.org",
        to="b@example.net",
        reply_to="Help Desk <help@example.org>",
        headers={"List-Unsubscribe": "<mailto:unsub@example.org>", "X-Campaign": "spring"},
        text="x",
    )
    assert parsed["Reply-To"] == "Help Desk <help@example.org>"
    assert parsed["List-Unsubscribe"] == "<mailto:unsub@example.org>"
    assert parsed["X-Campaign"] == "spring"


@pytest.mark.parametrize(
    "build",
    [
        {"subject": "Hi\r\nBcc: victim@example.net"},
        {"subject": "Hi\nX-Evil: 1"},
        {"headers": {"X-Tag": "a\r\nBcc: victim@example.net"}},
        {"headers": {"X-Bad Name": "v"}},
        {"to": "b@example.net\r\nBcc: victim@example.net"},
        {"subject": "=?utf-8?q?a=0D=0ABcc:_victim@example.net?="},
    ],
    ids=["subject-crlf", "subject-lf", "header-value", "header-name", "address", "encoded-word"],
)
def test_header_injection_rejected_before_connecting(build: dict[str, Any]) -> None:
    """A header that would inject fields raises before any connection (the port is dead)."""
    arguments = {"sender": "a@example.org", "to": "b@example.net", "text": "x", **build}
    with Mailer(**mailer_options(closed_port())) as mailer, pytest.raises(UsageError) as caught:
        mailer.send(**arguments)
    assert isinstance(caught.value, (HeaderInjection, InvalidAddress))


def test_unknown_keyword_is_usage_error(smtp_server: RecordingServer) -> None:
    """A misspelt keyword (``too=``) is a UsageError naming it, and nothing is sent."""
    with Mailer(**mailer_options(smtp_server.port)) as mailer, pytest.raises(UsageError) as caught:
        mailer.send(sender="a@example.org", too="b@example.net", text="x")
    assert "too" in str(caught.value)
    assert smtp_server.commands == []


def test_message_and_build_keywords_together_refused(smtp_server: RecordingServer) -> None:
    """Passing a message and ``subject=`` at once is ambiguous: UsageError."""
    msg = mailtransfer.build_message(sender="a@example.org", to="b@example.net", text="x")
    with Mailer(**mailer_options(smtp_server.port)) as mailer, pytest.raises(UsageError):
        mailer.send(msg, subject="again")


# -- other inputs: EmailMessage, bytes -------------------------------------------------------


def test_email_message_sent_with_envelope_from_headers(smtp_server: RecordingServer) -> None:
    """An EmailMessage's From/To/Cc/Bcc make the envelope; Bcc is removed from the bytes."""
    msg = EmailMessage()
    msg["From"] = "Alice <alice@example.org>"
    msg["To"] = "bob@example.net"
    msg["Bcc"] = "carol@example.net"
    msg["Subject"] = "plain EmailMessage"
    msg.set_content("hello\n")
    with Mailer(**mailer_options(smtp_server.port)) as mailer:
        result = mailer.send(msg)
    (received,) = smtp_server.messages
    assert received.mail_from == "alice@example.org"
    assert received.rcpt_tos == ("bob@example.net", "carol@example.net")
    assert b"carol" not in received.data
    assert parse(received.data)["Message-ID"] == result.message_id
    assert "Bcc" in msg  # the caller's message object is not changed


def test_bytes_with_explicit_envelope(smtp_server: RecordingServer) -> None:
    """Raw bytes go out with the given envelope; only Date and Message-ID are added."""
    raw = b"From: a@example.org\r\nTo: list@example.net\r\nSubject: raw\r\n\r\nbody\r\n"
    envelope = Envelope(sender="bounce@example.org", recipients=("x@example.net",))
    with Mailer(**mailer_options(smtp_server.port)) as mailer:
        mailer.send(raw, envelope=envelope)
        mailer.send(raw, sender="b2@example.org", recipients=["y@example.net"])
    first, second = smtp_server.messages
    assert (first.mail_from, first.rcpt_tos) == ("bounce@example.org", ("x@example.net",))
    assert (second.mail_from, second.rcpt_tos) == ("b2@example.org", ("y@example.net",))
    assert first.data.startswith(raw[: raw.index(b"\r\n\r\n")])
    assert parse(first.data)["Message-ID"] is not None


def test_bytes_without_envelope_is_usage_error(smtp_server: RecordingServer) -> None:
    """Bytes alone do not say whom to send to: UsageError before connecting."""
    with Mailer(**mailer_options(smtp_server.port)) as mailer, pytest.raises(UsageError):
        mailer.send(b"Subject: x\r\n\r\nbody\r\n")
    assert smtp_server.commands == []


# -- bodies, attachments, inline images, non-ASCII ---------------------------------------------


def test_attachments_round_trip(smtp_server: RecordingServer, tmp_path: Path) -> None:
    """Attachments by path, (name, bytes), file object and Attachment arrive byte for byte."""
    report = tmp_path / "report.csv"
    report.write_bytes(b"a,b\r\n1,2\r\n")
    blob = bytes(range(256)) * 3
    with (tmp_path / "notes.bin").open("wb") as handle:
        handle.write(b"\x00\x01binary\xff")
    with (tmp_path / "notes.bin").open("rb") as handle:
        _, parsed = send_one(
            smtp_server,
            sender="a@example.org",
            to="b@example.net",
            subject="files",
            text="see attached",
            attachments=[
                str(report),
                ("data.bin", blob),
                handle,
                Attachment("hello.txt", "hello text", "text/plain"),
            ],
        )
    files = {part.get_filename(): part for part in parsed.iter_attachments()}
    assert set(files) == {"report.csv", "data.bin", "notes.bin", "hello.txt"}
    assert files["report.csv"].get_content_type() == "text/csv"
    assert files["data.bin"].get_content() == blob
    assert files["notes.bin"].get_content() == b"\x00\x01binary\xff"
    assert files["hello.txt"].get_content().strip() == "hello text"
    assert text_of(parsed).strip() == "see attached"


def test_inline_image_referenced_by_cid(smtp_server: RecordingServer) -> None:
    """An inline image sits next to the HTML in multipart/related with its Content-ID."""
    _, parsed = send_one(
        smtp_server,
        sender="a@example.org",
        to="b@example.net",
        text="fallback",
        html='<p>logo: <img src="cid:logo"></p>',
        inline={"logo": PNG},
    )
    related = next(p for p in parsed.walk() if p.get_content_type() == "multipart/related")
    html, image = related.iter_parts()
    assert "cid:logo" in html.get_content()
    assert image["Content-ID"] == "<logo>"
    assert image.get_content_type() == "image/png"
    assert image.get_content() == PNG
    assert text_of(parsed).strip() == "fallback"


def test_non_ascii_names_subject_and_body(smtp_server: RecordingServer) -> None:
    """Non-ASCII display names, subject, body and file names read back exactly."""
    _, parsed = send_one(
        smtp_server,
        sender="Jürgen Müller <juergen@example.org>",
        to=["Zoë Ångström <zoe@example.net>"],
        subject="Grüße aus Köln ✓ — 東京",
        text="Überweisung: 100 €\nZażółć gęślą jaźń 日本語\n",
        attachments=[("résumé ünïcode.txt", "Lebenslauf äöü".encode())],
    )
    assert parsed["From"].addresses[0].display_name == "Jürgen Müller"
    assert parsed["To"].addresses[0].display_name == "Zoë Ångström"
    assert parsed["Subject"] == "Grüße aus Köln ✓ — 東京"
    assert text_of(parsed) == "Überweisung: 100 €\nZażółć gęślą jaźń 日本語\n"
    (attachment,) = parsed.iter_attachments()
    assert attachment.get_filename() == "résumé ünïcode.txt"
    assert attachment.get_payload(decode=True) == "Lebenslauf äöü".encode()


# -- servers without 8BITMIME / SMTPUTF8 -----------------------------------------------------

NON_ASCII: dict[str, Any] = {
    "sender": "Jürgen <juergen@example.org>",
    "to": ["Zoë <zoe@bücher.example>"],
    "subject": "Grüße ✓",
    "text": "Überweisung: 100 €\n",
}


def test_no_smtputf8_headers_encoded_domain_as_a_label(recording_server: Factory) -> None:
    """Without SMTPUTF8: RFC 2047 headers, IDNA domains; the text still reads the same."""
    server = recording_server(smtputf8=False)
    _, parsed = send_one(server, **NON_ASCII)
    (received,) = server.messages
    assert received.rcpt_tos == ("zoe@xn--bcher-kva.example",)
    assert not any("SMTPUTF8" in option for option in received.mail_options)
    head = received.data.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()
    assert parsed["Subject"] == "Grüße ✓"
    assert parsed["From"].addresses[0].display_name == "Jürgen"
    assert text_of(parsed) == "Überweisung: 100 €\n"


def test_no_8bitmime_body_reencoded(mini: Mini) -> None:
    """Without 8BITMIME the body is re-encoded to 7 bit and decodes to the same text."""
    server, script = mini(extensions=("PIPELINING", "SMTPUTF8", "ENHANCEDSTATUSCODES"))
    with Mailer(**mailer_options(server.port)) as mailer:
        mailer.send(
            sender="a@example.org",
            to="b@example.net",
            subject="Grüße",
            text="Überweisung: 100 €\n",
            attachments=[("raw.bin", bytes(range(256)))],
        )
    (data,) = script.delivered
    body = data.split(b"\r\n\r\n", 1)[1]
    assert body.isascii()
    parsed = parse(data)
    assert text_of(parsed) == "Überweisung: 100 €\n"
    assert next(parsed.iter_attachments()).get_content() == bytes(range(256))


def test_neither_8bitmime_nor_smtputf8_everything_ascii(mini: Mini) -> None:
    """A server with neither extension gets pure ASCII that decodes to the same message."""
    server, script = mini(extensions=("PIPELINING",))
    with Mailer(**mailer_options(server.port)) as mailer:
        mailer.send(**NON_ASCII)
    (data,) = script.delivered
    assert data.isascii()
    parsed = parse(data)
    assert parsed["Subject"] == "Grüße ✓"
    assert text_of(parsed) == "Überweisung: 100 €\n"


def test_non_ascii_local_part_without_smtputf8_fails_before_mail(
    recording_server: Factory,
) -> None:
    """A non-ASCII local part cannot be downgraded: SMTPUTF8Required, no MAIL sent."""
    server = recording_server(smtputf8=False)
    with Mailer(**mailer_options(server.port)) as mailer, pytest.raises(SMTPUTF8Required):
        mailer.send(sender="a@example.org", to="jörg@example.net", text="x")
    assert not any(c.startswith(("MAIL", "DATA")) for c in server.commands)
    assert server.messages == []


def test_unencodable_header_without_smtputf8_fails_before_data(mini: Mini) -> None:
    """Raw bytes with a UTF-8 Message-ID cannot be downgraded: typed error, no transaction."""
    server, script = mini(extensions=("PIPELINING", "8BITMIME"))
    raw = "Message-ID: <ü.1@example.org>\r\nSubject: x\r\n\r\nbody\r\n".encode()
    with Mailer(**mailer_options(server.port)) as mailer, pytest.raises(SMTPUTF8Required):
        mailer.send(raw, sender="a@example.org", recipients=["b@example.net"])
    assert script.transactions == 0


def test_eight_bit_preamble_without_8bitmime_fails_before_data(mini: Mini) -> None:
    """8-bit bytes outside any part cannot be re-encoded: ExtensionNotSupported, no DATA."""
    server, script = mini(extensions=("PIPELINING", "SMTPUTF8"))
    raw = (
        b"Subject: x\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"pr\xc3\xa9amble\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b--\r\n"
    )
    with Mailer(**mailer_options(server.port)) as mailer, pytest.raises(ExtensionNotSupported):
        mailer.send(raw, sender="a@example.org", recipients=["b@example.net"])
    assert script.transactions == 0


# -- refusals: partial, all, strict ----------------------------------------------------------


def test_partial_refusal_delivers_to_accepted(smtp_server: RecordingServer) -> None:
    """One refused recipient: the others get the message; the refusal is typed, with its reply."""
    smtp_server.faults.refuse_recipient("gone@example.net", 550, "5.1.1 no such user")
    with Mailer(**mailer_options(smtp_server.port)) as mailer:
        result = mailer.send(
            sender="a@example.org", to=["ok@example.net", "gone@example.net"], text="x"
        )
    assert list(result.accepted) == ["ok@example.net"]
    error = result.refused["gone@example.net"]
    assert isinstance(error, UnknownMailbox)
    assert error.reply.code == 550
    assert result.partial
    (received,) = smtp_server.messages
    assert received.rcpt_tos == ("ok@example.net",)


@pytest.mark.parametrize("where", ["call", "mailer"])
def test_strict_raises_partial_delivery(smtp_server: RecordingServer, where: str) -> None:
    """``strict`` turns a partial refusal into PartialDelivery; the accepted still got it."""
    smtp_server.faults.refuse_recipient("gone@example.net")
    options = mailer_options(smtp_server.port, strict=where == "mailer")
    call: dict[str, Any] = {"strict": True} if where == "call" else {}
    with Mailer(**options) as mailer, pytest.raises(PartialDelivery) as caught:
        mailer.send(
            sender="a@example.org", to=["ok@example.net", "gone@example.net"], text="x", **call
        )
    assert list(caught.value.result.refused) == ["gone@example.net"]
    assert caught.value.result.message_id is not None
    assert len(smtp_server.messages) == 1  # delivered once, never retried


def test_strict_false_per_call_overrides_mailer(smtp_server: RecordingServer) -> None:
    """``strict=False`` on the call wins over a strict mailer."""
    smtp_server.faults.refuse_recipient("gone@example.net")
    with Mailer(**mailer_options(smtp_server.port, strict=True)) as mailer:
        result = mailer.send(
            sender="a@example.org",
            to=["ok@example.net", "gone@example.net"],
            text="x",
            strict=False,
        )
    assert result.partial


def test_all_refused_raises_recipients_refused(smtp_server: RecordingServer) -> None:
    """Every recipient refused: RecipientsRefused naming each; nothing delivered."""
    smtp_server.faults.refuse_recipient(code=550, text="5.1.1 no such user")
    with (
        Mailer(**mailer_options(smtp_server.port)) as mailer,
        pytest.raises(RecipientsRefused) as caught,
    ):
        mailer.send(sender="a@example.org", to=["x@example.net", "y@example.net"], text="x")
    assert set(caught.value.refused) == {"x@example.net", "y@example.net"}
    assert not caught.value.transient
    assert smtp_server.messages == []
    assert not any(c.startswith("DATA") for c in smtp_server.commands)


def test_lmtp_per_recipient_refusal_after_data(recording_server: Factory) -> None:
    """LMTP: a recipient refused after the data is in ``refused``; the other got it."""
    server = recording_server(lmtp=True)
    server.faults.reply_to_data(452, "4.2.2 Mailbox full", recipient="full@example.net")
    with Mailer(f"lmtp://127.0.0.1:{server.port}", local_hostname="client.example.test") as m:
        result = m.send(sender="a@example.org", to=["ok@example.net", "full@example.net"], text="x")
    assert list(result.accepted) == ["ok@example.net"]
    assert result.refused["full@example.net"].reply.code == 452
    assert server.messages[0].rcpt_tos == ("ok@example.net",)


# -- many messages ---------------------------------------------------------------------------


def test_send_many_keeps_input_order_with_errors_in_place(mini: Mini) -> None:
    """Results come back in input order; a bad item's entry is its typed error."""
    server, _ = mini()
    items: list[Any] = [
        {"sender": "a@example.org", "to": "b@example.net", "message_id": f"<m{i}@example.org>"}
        for i in range(30)
    ]
    items[7] = {"sender": "a@example.org", "to": "b@example.net", "subject": "x\r\nBcc: y@z.net"}
    items[12] = mailtransfer.build_message(
        sender="a@example.org", to="b@example.net", message_id="<as-message@example.org>"
    )
    seen: list[tuple[int, int]] = []
    with Mailer(**mailer_options(server.port)) as mailer:
        outcomes = mailer.send_many(items, concurrency=5, progress=lambda d, t: seen.append((d, t)))
    assert isinstance(outcomes[7], HeaderInjection)
    assert isinstance(outcomes[12], SendResult)
    assert outcomes[12].message_id == "<as-message@example.org>"
    for index, outcome in enumerate(outcomes):
        if index not in (7, 12):
            assert isinstance(outcome, SendResult)
            assert outcome.message_id == f"<m{index}@example.org>"
    assert seen == [(done, 30) for done in range(1, 31)]


def test_send_iter_yields_each_index_once(mini: Mini) -> None:
    """send_iter yields every index exactly once, as each finishes."""
    server, script = mini()
    items = [{"sender": "a@example.org", "to": "b@example.net", "text": str(i)} for i in range(25)]
    with Mailer(**mailer_options(server.port)) as mailer:
        indexes = [index for index, _ in mailer.send_iter(items, concurrency=4)]
    assert sorted(indexes) == list(range(25))
    assert len(script.delivered) == 25


def test_send_many_accepts_bytes_items(smtp_server: RecordingServer) -> None:
    """A mapping with ``message`` bytes and an envelope is a valid send_many item."""
    raw = b"Subject: raw\r\n\r\nbody\r\n"
    envelope = Envelope(sender="a@example.org", recipients=("b@example.net",))
    with Mailer(**mailer_options(smtp_server.port)) as mailer:
        (outcome,) = mailer.send_many([{"message": raw, "envelope": envelope}])
    assert isinstance(outcome, SendResult)
    assert len(smtp_server.messages) == 1


def test_async_send_many_order_and_progress(mini: Mini) -> None:
    """The asyncio send_many: input order, typed errors in place, progress to the total."""
    server, _ = mini()
    items: list[Any] = [
        {"sender": "a@example.org", "to": "b@example.net", "message_id": f"<a{i}@example.org>"}
        for i in range(20)
    ]
    items[3] = {"sender": "not an address", "to": "b@example.net"}
    seen: list[int] = []

    async def main() -> list[SendResult | MailTransferError]:
        async with AsyncMailer(**mailer_options(server.port)) as mailer:
            return await mailer.send_many(items, progress=lambda done, total: seen.append(done))

    outcomes = asyncio.run(main())
    assert isinstance(outcomes[3], InvalidAddress)
    sent = [o for i, o in enumerate(outcomes) if i != 3]
    assert all(isinstance(o, SendResult) for o in sent)
    assert [o.message_id for o in sent if isinstance(o, SendResult)] == [
        f"<a{i}@example.org>" for i in range(20) if i != 3
    ]
    assert seen == list(range(1, 21))


@pytest.mark.parametrize("with_progress", [False, True])
def test_async_send_many_with_or_without_progress_agree(mini: Mini, with_progress: bool) -> None:
    """Outcomes in place either way; an item that is no message raises, nothing stays leased.

    Without a progress callback the workers put each outcome in its place and the caller's
    task wakes once; with one, outcomes pass through send_iter one by one.
    """
    server, _ = mini()
    items: list[Any] = [{"sender": "a@example.org", "to": f"b{i}@example.net"} for i in range(9)]
    progress = (lambda done, total: None) if with_progress else None

    async def main() -> tuple[list[Any], list[Any], BaseException | None, int]:
        async with AsyncMailer(**mailer_options(server.port)) as mailer:
            outcomes = await mailer.send_many(items, concurrency=3, progress=progress)
            empty = await mailer.send_many([], progress=progress)
            with pytest.raises(UsageError):
                await mailer.send_many(items, concurrency=0, progress=progress)
            try:
                await mailer.send_many([*items[:4], 42, *items[4:]], progress=progress)
            except TypeError as exc:
                error: BaseException | None = exc
            else:
                error = None
            in_use = sum(pool.stats.in_use for pool in mailer.pools.values())
        return outcomes, empty, error, in_use

    outcomes, empty, error, in_use = asyncio.run(main())
    assert [o.accepted.keys() for o in outcomes] == [{f"b{i}@example.net"} for i in range(9)]
    assert empty == []
    assert isinstance(error, TypeError)
    assert in_use == 0


def test_async_send_builds_same_message(smtp_server: RecordingServer) -> None:
    """AsyncMailer.send builds, strips Bcc and adds headers like Mailer.send."""

    async def main() -> SendResult:
        async with AsyncMailer(**mailer_options(smtp_server.port)) as mailer:
            return await mailer.send(
                sender="a@example.org", to="b@example.net", bcc="c@example.net", subject="async"
            )

    result = asyncio.run(main())
    (received,) = smtp_server.messages
    assert received.rcpt_tos == ("b@example.net", "c@example.net")
    assert b"c@example.net" not in received.data
    assert message_id_of(received.data) == result.message_id


# -- configuration: URLs, environment, module-level send ---------------------------------------


def test_url_configures_pool_and_plaintext(smtp_server: RecordingServer) -> None:
    """``smtp://host:port?tls=none&pool_size=3`` sends in plaintext with a 3-connection pool."""
    url = f"smtp://127.0.0.1:{smtp_server.port}?tls=none&pool_size=3&max_messages=7"
    with Mailer(url, local_hostname="client.example.test") as mailer:
        assert mailer.config.limits.max_connections == 3
        assert mailer.config.limits.max_messages_per_connection == 7
        mailer.send(sender="a@example.org", to="b@example.net", text="x")
    assert len(smtp_server.messages) == 1


def test_url_starttls_with_percent_encoded_password(
    recording_server: Factory, tls: TLSCertificates, tmp_path: Path
) -> None:
    """smtp:// requires STARTTLS; the percent-encoded password logs in; cafile trusts the CA."""
    server = recording_server(tls_context=tls.server_context, auth={"alice": "s@cr:t/?#%"})
    ca = tls.write_ca(tmp_path / "ca.pem")
    url = f"smtp://alice:s%40cr%3At%2F%3F%23%25@localhost:{server.port}?cafile={ca}"
    with Mailer(url, local_hostname="client.example.test") as mailer:
        mailer.send(sender="a@example.org", to="b@example.net", text="x")
    (received,) = server.messages
    assert received.tls
    assert received.auth_user == "alice"
    assert "s@cr" not in repr(mailer)


def test_url_smtps_implicit_tls(smtps_server: RecordingServer, tls: TLSCertificates) -> None:
    """smtps:// speaks TLS from the first byte."""
    context_policy = mailtransfer.ImplicitTLS(context=tls.client_context)
    url = f"smtps://localhost:{smtps_server.port}"
    with Mailer(url, tls=context_policy, local_hostname="client.example.test") as mailer:
        mailer.send(sender="a@example.org", to="b@example.net", text="x")
    assert smtps_server.messages[0].tls


def test_url_port_keyword_wins(smtp_server: RecordingServer) -> None:
    """A ``port=`` keyword overrides the URL's port ("keywords win")."""
    url = f"smtp://127.0.0.1:{closed_port()}?tls=none"
    with Mailer(url, port=smtp_server.port, local_hostname="client.example.test") as mailer:
        mailer.send(sender="a@example.org", to="b@example.net", text="x")
    assert len(smtp_server.messages) == 1


def test_from_env_reads_url(smtp_server: RecordingServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Mailer.from_env() uses MAILTRANSFER_URL."""
    monkeypatch.setenv("MAILTRANSFER_URL", f"smtp://127.0.0.1:{smtp_server.port}?tls=none")
    with Mailer.from_env(local_hostname="client.example.test") as mailer:
        mailer.send(sender="a@example.org", to="b@example.net", text="x")
    assert len(smtp_server.messages) == 1


def test_from_env_unset_is_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without MAILTRANSFER_URL, from_env() says what to set."""
    monkeypatch.delenv("MAILTRANSFER_URL", raising=False)
    with pytest.raises(UsageError, match="MAILTRANSFER_URL"):
        Mailer.from_env()
    with pytest.raises(UsageError, match="MAILTRANSFER_URL"):
        AsyncMailer.from_env()


def test_module_level_send_uses_environment(
    smtp_server: RecordingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``mailtransfer.send(...)`` builds a default mailer from MAILTRANSFER_URL once."""
    url = f"smtp://127.0.0.1:{smtp_server.port}?tls=none&local_hostname=client.example.test"
    monkeypatch.setenv("MAILTRANSFER_URL", url)
    monkeypatch.setattr(default_module, "_default", None)
    try:
        mailtransfer.send(sender="a@example.org", to="b@example.net", text="one")
        mailtransfer.send(sender="a@example.org", to="b@example.net", text="two")
        mailer = default_module._default
        assert mailer is not None
        (pool,) = mailer.pools.values()
        assert pool.stats.idle == 1  # both messages went through one pooled connection
    finally:
        if default_module._default is not None:
            default_module._default.close()
    assert len(smtp_server.messages) == 2
    assert smtp_server.messages[0].helo == "client.example.test"


def test_mailer_needs_url_or_host() -> None:
    """Neither a URL nor host= is a UsageError that mentions both ways."""
    with pytest.raises(UsageError, match="MAILTRANSFER_URL"):
        Mailer()


# -- verify() --------------------------------------------------------------------------------


def test_verify_reports_extensions_and_sends_nothing(smtp_server: RecordingServer) -> None:
    """verify() connects, reports the EHLO extensions, and runs no mail transaction."""
    with Mailer(**mailer_options(smtp_server.port)) as mailer:
        info = mailer.verify()
    assert isinstance(info, ServerInfo)
    assert info.extensions.eightbitmime
    assert info.tls_version is None
    assert not info.authenticated
    assert not any(c.startswith("MAIL") for c in smtp_server.commands)
    assert "QUIT" in smtp_server.commands


def test_verify_over_starttls_with_login(recording_server: Factory, tls: TLSCertificates) -> None:
    """verify() negotiates TLS and logs in, and says so."""
    server = recording_server(tls_context=tls.server_context, auth={"u": "p"})
    options = mailer_options(
        server.port,
        host="localhost",
        tls=StartTLS(context=tls.client_context),
        username="u",
        password="p",
    )
    with Mailer(**options) as mailer:
        info = mailer.verify()
    assert info.tls_version is not None
    assert info.authenticated


def test_async_verify(smtp_server: RecordingServer) -> None:
    """AsyncMailer.verify() reports the same."""

    async def main() -> ServerInfo:
        async with AsyncMailer(**mailer_options(smtp_server.port)) as mailer:
            return await mailer.verify()

    assert asyncio.run(main()).extensions.smtputf8


def test_verify_unreachable_is_connect_error() -> None:
    """verify() against a dead port raises ConnectError."""
    with Mailer(**mailer_options(closed_port())) as mailer, pytest.raises(ConnectError):
        mailer.verify()


# -- several relays ----------------------------------------------------------------------------


def relay_urls(*ports: int) -> list[str]:
    """Plaintext relay URLs on loopback."""
    return [f"smtp://127.0.0.1:{port}?tls=none" for port in ports]


def test_failover_to_second_relay_when_first_port_closed(mini: Mini) -> None:
    """First relay refuses connections, second is alive: delivered via the second."""
    server, script = mini()
    dead = closed_port()
    options = {"local_hostname": "client.example.test", "retry": RetryPolicy.none()}
    with Mailer(relay_urls(dead, server.port), **options) as mailer:
        result = mailer.send(sender="a@example.org", to="b@example.net", text="x")
    assert result.host == f"smtp://127.0.0.1:{server.port}"
    assert len(script.delivered) == 1


def test_failed_relay_cooled_down_then_tried_again(mini: Mini, scripted: Any) -> None:
    """A relay that 421s at the greeting is skipped during its cool-down, retried after."""
    busy: ScriptedServer = scripted(greeting_then_close(b"421 4.3.2 busy\r\n"))
    server, script = mini()
    options = {
        "local_hostname": "client.example.test",
        "retry": RetryPolicy.none(),
        "cooldown": 1.0,
        "deferral": 0,
    }
    with Mailer(relay_urls(busy.port, server.port), **options) as mailer:
        for _ in range(4):
            mailer.send(sender="a@example.org", to="b@example.net", text="x")
        assert busy.connections == 1  # tried once, then cooled down
        time.sleep(1.1)
        for _ in range(2):
            mailer.send(sender="a@example.org", to="b@example.net", text="x")
    assert busy.connections == 2  # tried again after the cool-down, failed over again
    assert len(script.delivered) == 6


def test_round_robin_across_live_relays(mini: Mini) -> None:
    """Two healthy relays share the messages in turn."""
    first, first_script = mini()
    second, second_script = mini()
    with Mailer(
        relay_urls(first.port, second.port), local_hostname="client.example.test"
    ) as mailer:
        for _ in range(6):
            mailer.send(sender="a@example.org", to="b@example.net", text="x")
    assert len(first_script.delivered) == len(second_script.delivered) == 3


def test_all_relays_dead_raises_connect_error() -> None:
    """When every relay refuses connections the last ConnectError is raised."""
    urls = relay_urls(closed_port(), closed_port())
    options = {"local_hostname": "client.example.test", "retry": RetryPolicy.none()}
    with Mailer(urls, **options) as mailer, pytest.raises(ConnectError):
        mailer.send(sender="a@example.org", to="b@example.net", text="x")


def test_async_failover(mini: Mini) -> None:
    """The asyncio mailer fails over the same way."""
    server, script = mini()
    urls = relay_urls(closed_port(), server.port)

    async def main() -> SendResult:
        async with AsyncMailer(
            urls, local_hostname="client.example.test", retry=RetryPolicy.none()
        ) as mailer:
            return await mailer.send(sender="a@example.org", to="b@example.net", text="x")

    assert asyncio.run(main()).host == f"smtp://127.0.0.1:{server.port}"
    assert len(script.delivered) == 1


def test_failover_does_not_hide_message_errors(mini: Mini) -> None:
    """A 421 after the data is not a relay failure: no second relay gets the message."""
    bad, bad_script = mini(
        chooser=lambda at: Fault.REPLY_421_AFTER_DOT if at == "dot" else Fault.NONE
    )
    good, good_script = mini()
    options = {"local_hostname": "client.example.test", "retry": RetryPolicy.none(), "deferral": 0}
    with (
        Mailer(relay_urls(bad.port, good.port), **options) as mailer,
        pytest.raises(MailTransferError),
    ):
        mailer.send(sender="a@example.org", to="b@example.net", text="x")
    assert good_script.transactions == 0
    assert bad_script.transactions == 1


def test_mailer_repr_hides_password() -> None:
    """Neither repr(Mailer) nor its config shows the password."""
    with Mailer("smtp://alice:hunter2%21@mail.example.org") as mailer:
        assert "hunter2" not in repr(mailer)
        assert "hunter2" not in repr(mailer.config)
    with Mailer(host="mail.example.org", username="alice", password="hunter2", tls=NoTLS()) as m:
        assert "hunter2" not in repr(m.config)
