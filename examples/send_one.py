"""Send one message with ``Mailer.send()``, in each of its three forms, and read the result.

Run it: ``PYTHONPATH=src python examples/send_one.py`` (needs the ``testing`` extra:
``pip install 'mailtransfer[testing]'``). An in-process SMTP server from
``mailtransfer.testing`` stands in for your mail server; nothing leaves the machine.

What it shows:

1. Keyword arguments build the message: text and HTML, an attachment, Cc and Bcc. The Bcc
   recipient is in the envelope only, never in the bytes sent.
2. An ``email.message.EmailMessage`` you built yourself: the envelope comes from its headers.
3. Finished bytes with an explicit ``Envelope`` (here the null sender of a bounce).
4. A partial refusal: one recipient refused, the other delivered. ``result.refused`` says
   who and why, as typed errors. With ``strict=True`` the same send raises
   ``PartialDelivery``, although the accepted recipient did get the message.

It exits 0 when the server received exactly what the script expected, and 1 otherwise.
"""

from __future__ import annotations

from email.message import EmailMessage

from mailtransfer import Attachment, Envelope, Mailer, NoTLS, RetryPolicy
from mailtransfer.errors import PartialDelivery, UnknownMailbox
from mailtransfer.testing import RecordingServer

failures: list[str] = []


def check(condition: bool, what: str) -> None:
    """Record ``what`` as a failure unless ``condition`` holds."""
    if not condition:
        failures.append(what)


def main() -> int:
    """Send four messages, then compare what the server received with what was meant."""
    with RecordingServer(hostname="mx.example.test") as server:
        server.faults.refuse_recipient("gone@example.test", 550, "5.1.1 No such user here")
        # In production: Mailer("smtp://user:app-password@smtp.example.org:587").
        # The loopback test server speaks plaintext, so that is chosen explicitly here.
        with Mailer(
            host=server.host, port=server.port, tls=NoTLS(), retry=RetryPolicy.none()
        ) as mailer:
            # 1. Keywords.
            result = mailer.send(
                sender="Alice <alice@example.test>",
                to=["bob@example.test"],
                cc=["carol@example.test"],
                bcc=["archive@example.test"],
                subject="Quarterly report",
                text="Hi Bob, the figures are attached.",
                html="<p>Hi Bob, the figures are <b>attached</b>.</p>",
                attachments=[Attachment("q3.csv", "region,total\nnorth,12\n", "text/csv")],
            )
            print(f"1. keywords:      {result!r}")
            print(f"   Message-ID {result.message_id}, via {result.host}")
            print(f"   accepted {sorted(result.accepted)}, final reply {result.reply}")

            # 2. An EmailMessage: sender and recipients come from From, To, Cc and Bcc.
            message = EmailMessage()
            message["From"] = "alice@example.test"
            message["To"] = "dave@example.test"
            message["Subject"] = "Built with the standard library"
            message.set_content("Hello Dave.")
            result = mailer.send(message)
            print(f"2. EmailMessage:  accepted {sorted(result.accepted)}")

            # 3. Bytes and an envelope; "" is the null reverse-path <> of a bounce. Bytes
            #    are sent as they are, apart from CRLF line endings and an added Date; the
            #    Message-ID is given here because a null sender has no domain to make one.
            raw = (
                b"From: MAILER-DAEMON@example.test\r\nTo: alice@example.test\r\n"
                b"Message-ID: <bounce-1@example.test>\r\nSubject: Undeliverable\r\n"
                b"\r\nYour message could not be delivered.\r\n"
            )
            bounce = Envelope(sender="", recipients=("alice@example.test",))
            result = mailer.send(raw, envelope=bounce)
            print(f"3. bytes:         accepted {sorted(result.accepted)} from <>")

            # 4. One recipient refused, one accepted.
            result = mailer.send(
                sender="alice@example.test",
                to=["erin@example.test", "gone@example.test"],
                subject="Team lunch",
                text="Friday at noon?",
            )
            for address, error in result.refused.items():
                print(f"4. refused:       {address}: {type(error).__name__}: {error.reply}")
            print(f"   partial={result.partial}, accepted {sorted(result.accepted)}")
            check(result.partial, "the lunch message should be a partial delivery")
            check(
                isinstance(result.refused.get("gone@example.test"), UnknownMailbox),
                "gone@example.test should be refused as UnknownMailbox",
            )
            try:
                mailer.send(
                    sender="alice@example.test",
                    to=["erin@example.test", "gone@example.test"],
                    subject="Team lunch, again",
                    text="Friday at noon?",
                    strict=True,
                )
            except PartialDelivery as exc:
                print(f"   strict=True:   PartialDelivery: {exc}")
                print(f"   ...yet accepted {sorted(exc.result.accepted)}: do not resend to them")
            else:
                failures.append("strict=True did not raise PartialDelivery")

        received = server.wait_for(5)
    first = received[0]
    head = first.data.split(b"\r\n\r\n", 1)[0]
    check(len(received) == 5, f"expected 5 messages, the server got {len(received)}")
    check(
        set(first.rcpt_tos) == {"bob@example.test", "carol@example.test", "archive@example.test"},
        f"message 1 went to {first.rcpt_tos}",
    )
    check(b"archive@" not in first.data, "the Bcc address leaked into the message")
    check(b"Bcc:" not in head, "a Bcc header was sent")
    check(first.parsed().get_content_type() == "multipart/mixed", "message 1 is not multipart")
    check(received[1].rcpt_tos == ("dave@example.test",), "message 2 envelope came out wrong")
    check(received[2].mail_from == "", "message 3 was not sent from the null sender")
    check(received[3].rcpt_tos == ("erin@example.test",), "message 4 went to the wrong people")
    print(f"\nThe server received {len(received)} messages; Bcc header sent: {b'Bcc:' in head}")
    for failure in failures:
        print(f"FAILED: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
