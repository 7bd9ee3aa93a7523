"""OutboxMailer: the same checks and results as Mailer, with messages kept in a list."""

from __future__ import annotations

import asyncio
from email.message import EmailMessage
from typing import Any

import dkim as dkimpy
import pytest

import mailtransfer
from mailtransfer import Envelope, Mailer, NoTLS, RetryPolicy
from mailtransfer.dkim import DKIMSigner, generate_key
from mailtransfer.errors import (
    HeaderInjection,
    InvalidAddress,
    MailTransferError,
    PartialDelivery,
    RecipientsRefused,
    UnknownMailbox,
    UsageError,
)
from mailtransfer.testing import AsyncOutboxMailer, OutboxMailer, RecordingServer

BASIC: dict[str, Any] = {
    "sender": "Ada <ada@example.test>",
    "to": ["bob@example.test"],
    "subject": "Hello",
    "text": "Hi Bob\n.\nbye\n",
}

# Bad input, each to be refused by Mailer and OutboxMailer alike, before anything is sent.
BAD_INPUTS: list[tuple[dict[str, Any], type[Exception]]] = [
    ({**BASIC, "subject": "hi\r\nBcc: eve@example.test"}, HeaderInjection),
    ({**BASIC, "to": ["not an address"]}, InvalidAddress),
    ({**BASIC, "to": ["bob@example.test\r\nRCPT TO:<eve@example.test>"]}, UsageError),
    ({**BASIC, "headers": {"X-Evil": "a\nb"}}, HeaderInjection),
    ({**BASIC, "colour": "blue"}, UsageError),
    ({"to": ["bob@example.test"], "text": "no sender"}, UsageError),
]


@pytest.mark.parametrize(("build", "error"), BAD_INPUTS)
def test_bad_input_raises_the_same_error_as_mailer(
    build: dict[str, Any], error: type[Exception], smtp_server: RecordingServer
) -> None:
    outbox = OutboxMailer()
    with pytest.raises(error) as from_outbox:
        outbox.send(**build)
    with (
        Mailer(smtp_server.url, retry=RetryPolicy.none()) as mailer,
        pytest.raises(error) as from_mailer,
    ):
        mailer.send(**build)
    assert type(from_outbox.value) is type(from_mailer.value)
    assert str(from_outbox.value) == str(from_mailer.value)
    assert outbox.outbox == []
    assert smtp_server.messages == []


def test_records_what_a_server_would_receive(smtp_server: RecordingServer) -> None:
    outbox = OutboxMailer()
    extra = {"cc": ["carol@example.test"], "bcc": ["dave@example.test"]}
    result = outbox.send(**BASIC, **extra)
    with Mailer(smtp_server.url, retry=RetryPolicy.none()) as mailer:
        real = mailer.send(**BASIC, **extra)
    (kept,) = outbox.outbox
    (received,) = smtp_server.messages
    assert kept.mail_from == received.mail_from == "ada@example.test"
    assert kept.rcpt_tos == received.rcpt_tos
    assert set(kept.rcpt_tos) == {"bob@example.test", "carol@example.test", "dave@example.test"}
    assert b"dave@" not in kept.data  # Bcc only in the envelope
    assert kept.subject == "Hello"
    assert kept.parsed().get_content() == received.parsed().get_content()
    assert kept.message_id == result.message_id == kept.parsed()["Message-ID"]
    assert set(result.accepted) == set(real.accepted)
    assert result.refused == {}
    assert result.reply.code == 250
    assert result.queue_id == kept.queue_id == "outbox-1"


def test_email_message_and_raw_bytes_with_envelope() -> None:
    outbox = OutboxMailer()
    message = EmailMessage()
    message["From"] = "a@example.test"
    message["To"] = "b@example.test"
    message.set_content("hi")
    outbox.send(message)
    raw = b"From: a@example.test\r\nMessage-ID: <1@example.test>\r\nSubject: raw\r\n\r\nbody\r\n"
    outbox.send(raw, envelope=Envelope(sender="", recipients=("c@example.test",), ret="HDRS"))
    first, second = outbox.messages
    assert first.rcpt_tos == ("b@example.test",)
    assert second.mail_from == ""
    assert second.rcpt_tos == ("c@example.test",)
    assert second.data.endswith(b"\r\nbody\r\n")
    assert second.envelope.ret == "HDRS"


def test_refused_recipients_partial_strict_and_all() -> None:
    outbox = OutboxMailer()
    outbox.refuse("nobody@EXAMPLE.test", 550, "5.1.1 No such user")
    result = outbox.send(**{**BASIC, "to": ["bob@example.test", "nobody@example.test"]})
    assert result.partial
    assert isinstance(result.refused["nobody@example.test"], UnknownMailbox)
    assert outbox.outbox[0].rcpt_tos == ("bob@example.test",)
    with pytest.raises(PartialDelivery):
        outbox.send(**{**BASIC, "to": ["bob@example.test", "nobody@example.test"]}, strict=True)
    with pytest.raises(RecipientsRefused):
        outbox.send(**{**BASIC, "to": ["nobody@example.test"]})
    assert len(outbox.outbox) == 2  # the strict send was recorded: bob got it
    with pytest.raises(ValueError, match="4xx or 5xx"):
        outbox.refuse("x@example.test", 250)


def test_send_many_mixes_results_and_errors_in_order() -> None:
    outbox = OutboxMailer()
    progress: list[tuple[int, int]] = []
    outcomes = outbox.send_many(
        [BASIC, {**BASIC, "to": ["bad address"]}, {**BASIC, "subject": "third"}],
        progress=lambda done, total: progress.append((done, total)),
    )
    assert isinstance(outcomes[0], mailtransfer.SendResult)
    assert isinstance(outcomes[1], InvalidAddress)
    assert isinstance(outcomes[2], mailtransfer.SendResult)
    assert [m.subject for m in outbox.outbox] == ["Hello", "third"]
    assert progress == [(1, 3), (2, 3), (3, 3)]
    with pytest.raises(UsageError):
        outbox.send_many([BASIC], concurrency=0)


def test_dkim_signed_bytes_verify() -> None:
    private, record = generate_key("ed25519")
    signer = DKIMSigner(domain="example.test", selector="s1", private_key=private)
    outbox = OutboxMailer(signers=[signer])
    outbox.send(**BASIC)

    def dns(name: bytes, timeout: int = 5) -> bytes:
        return record.encode() if name == b"s1._domainkey.example.test." else b""

    assert dkimpy.verify(outbox.outbox[0].data, dnsfunc=dns)


def test_without_smtputf8_the_downgraded_form_is_recorded() -> None:
    outbox = OutboxMailer(smtputf8=False)
    outbox.send(**{**BASIC, "subject": "Grüße"})
    assert outbox.outbox[0].data.isascii()
    assert outbox.outbox[0].subject == "Grüße"


def test_closed_outbox_refuses() -> None:
    with OutboxMailer() as outbox:
        outbox.send(**BASIC)
    with pytest.raises(UsageError, match="closed"):
        outbox.send(**BASIC)
    assert len(outbox.outbox) == 1
    outbox.clear()
    assert outbox.outbox == []


def test_async_outbox_shares_the_checks() -> None:
    async def main() -> list[Any]:
        async with AsyncOutboxMailer() as outbox:
            await outbox.send(**BASIC)
            many = await outbox.send_many([BASIC, {**BASIC, "to": ["x"]}])
            info = await outbox.verify()
            assert info.extensions.smtputf8
            return [*outbox.outbox, *many]

    first, second, ok, error = asyncio.run(main())
    assert first.rcpt_tos == second.rcpt_tos == ("bob@example.test",)
    assert isinstance(ok, mailtransfer.SendResult)
    assert isinstance(error, MailTransferError)


def test_recording_server_url_and_disconnect_faults(smtp_server: RecordingServer) -> None:
    from mailtransfer.errors import DeliveryUnknown, ServerDisconnected, ServiceUnavailable

    assert smtp_server.url == f"smtp://127.0.0.1:{smtp_server.port}?tls=none"
    faults = smtp_server.faults
    with Mailer(smtp_server.url, retry=RetryPolicy.none(), tls=NoTLS()) as mailer:
        faults.disconnect(".", times=1)
        with pytest.raises(DeliveryUnknown):
            mailer.send(**BASIC)
        faults.disconnect("DATA", 354, "Go ahead", times=1)
        # A small body is already written when the hang-up is seen: delivery is unknown.
        with pytest.raises((DeliveryUnknown, ServerDisconnected)):
            mailer.send(**BASIC)
        faults.disconnect("MAIL", 421, "4.3.2 Shutting down", times=1)
        with pytest.raises(ServiceUnavailable):
            mailer.send(**BASIC)
        mailer.send(**BASIC)
    assert len(smtp_server.messages) == 1
    with pytest.raises(ValueError, match="command must be"):
        smtp_server.faults.disconnect("VRFY")
