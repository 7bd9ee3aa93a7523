"""DKIM end to end: signed by ``Mailer``, carried by a real SMTP server, verified by dkimpy.

The public keys are published by a real DNS server on loopback (dnsmasq), and dkimpy's own
verifier fetches them through dnspython, exactly as a receiving MTA would. What is verified
is the bytes the server received, not what the client meant to send.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage

import dkim
import dns.resolver
import pytest

from mailtransfer import Attachment, Envelope, Mailer, NoTLS
from mailtransfer.dkim import DKIMKeyring, DKIMSigner, generate_key, txt_strings
from mailtransfer.testing import RecordingServer
from peers import DnsServer

DOMAIN = "example.test"
SENDER = f"alice@{DOMAIN}"
SELECTORS = {"rsa": "rsa2026", "ed25519": "ed2026"}


@dataclass(frozen=True)
class PublishedKeys:
    """Private keys whose public halves the loopback DNS server publishes."""

    private: dict[str, bytes]
    resolver: dns.resolver.Resolver

    def dnsfunc(self, name: bytes, timeout: int = 5) -> bytes:
        """dkimpy's DNS hook, answered by the loopback server through dnspython."""
        answer = self.resolver.resolve(name.decode("ascii").rstrip("."), "TXT")
        return b"".join(b"".join(rdata.strings) for rdata in answer)

    def verify(self, data: bytes) -> list[bool]:
        """Verify every DKIM-Signature in ``data``, in order; one bool per signature."""
        count = data.split(b"\r\n\r\n", 1)[0].lower().count(b"\ndkim-signature:")
        count += data.lower().startswith(b"dkim-signature:")
        checker = dkim.DKIM(data)
        return [bool(checker.verify(idx=i, dnsfunc=self.dnsfunc)) for i in range(count)]


def _txt_record(name: str, record: str) -> str:
    strings = ",".join(f'"{piece}"' for piece in txt_strings(record))
    return f"txt-record={name},{strings}"


@pytest.fixture(scope="module")
def keys() -> dict[str, tuple[bytes, str]]:
    """One RSA-2048 and one Ed25519 key pair for the whole module (RSA keygen is slow)."""
    return {"rsa": generate_key("rsa", bits=2048), "ed25519": generate_key("ed25519")}


@pytest.fixture
def published(
    dns_server: Callable[..., DnsServer], keys: dict[str, tuple[bytes, str]]
) -> PublishedKeys:
    """Both public keys in TXT records under ``<selector>._domainkey.example.test``."""
    records = [
        _txt_record(f"{SELECTORS[kind]}._domainkey.{DOMAIN}", txt)
        for kind, (_, txt) in keys.items()
    ]
    server = dns_server(records)
    return PublishedKeys({kind: pem for kind, (pem, _) in keys.items()}, server.resolver())


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    with RecordingServer() as running:
        yield running


def _signer(published: PublishedKeys, kind: str, canon: str = "relaxed/relaxed") -> DKIMSigner:
    return DKIMSigner(
        domain=DOMAIN,
        selector=SELECTORS[kind],
        private_key=published.private[kind],
        canonicalization=canon,
    )


def _mailer(server: RecordingServer, *signers: object) -> Mailer:
    return Mailer(host=server.host, port=server.port, tls=NoTLS(), signers=signers)


def test_public_key_is_served_by_the_dns_server(published: PublishedKeys) -> None:
    """The fixture really publishes the keys: the record comes back whole, over DNS."""
    record = published.dnsfunc(f"{SELECTORS['rsa']}._domainkey.{DOMAIN}.".encode())
    assert record.startswith(b"v=DKIM1; k=rsa; p=")
    assert len(record) > 255  # split into several strings and joined again


@pytest.mark.parametrize("kind", ["rsa", "ed25519"])
@pytest.mark.parametrize("canon", ["relaxed/relaxed", "simple/simple", "relaxed/simple"])
def test_signed_message_verifies_after_transport(
    published: PublishedKeys, server: RecordingServer, kind: str, canon: str
) -> None:
    with _mailer(server, _signer(published, kind, canon)) as mailer:
        mailer.send(
            sender=SENDER,
            to=["bob@example.net"],
            subject="Quarterly report",
            text="Hello Bob,\n.\n..leading dots survive dot-stuffing\nBye\n",
        )
    received = server.messages[0].data
    assert received.count(b"DKIM-Signature:") == 1
    assert published.verify(received) == [True]


def test_rsa_and_ed25519_chain_both_verify(
    published: PublishedKeys, server: RecordingServer
) -> None:
    with _mailer(server, _signer(published, "rsa"), _signer(published, "ed25519")) as mailer:
        mailer.send(sender=SENDER, to=["bob@example.net"], subject="Two signatures", text="x\n")
    assert published.verify(server.messages[0].data) == [True, True]


def test_hard_cases_verify(published: PublishedKeys, server: RecordingServer) -> None:
    """Non-ASCII headers, a long folded header, an attachment, dot lines, an 8-bit body."""
    long_subject = "Résumé " + " ".join(f"word{i}" for i in range(60))
    with _mailer(server, _signer(published, "rsa"), _signer(published, "ed25519")) as mailer:
        mailer.send(
            sender=f"Zoë Ünïcode <{SENDER}>",
            to=["Björn <bjorn@example.net>"],
            subject=long_subject,
            text="Grüße\n.\n.hidden\n" + "long line " * 200 + "\n",
            html="<p>Grüße</p>",
            attachments=[Attachment("data.bin", b"\x00\x01binary\r\n.\r\n" * 100)],
            headers={"List-Unsubscribe": "<mailto:unsubscribe@example.test>"},
        )
    received = server.messages[0].data
    text = server.messages[0].parsed().get_body(("plain",))
    assert text is not None
    assert "Grüße\n.\n.hidden\n" in text.get_content().replace("\r\n", "\n")  # as written
    assert published.verify(received) == [True, True]


def test_bare_lf_input_is_signed_as_sent(published: PublishedKeys, server: RecordingServer) -> None:
    """Bytes with bare LF line endings are normalised first, then signed: still verifies."""
    raw = (
        f"From: {SENDER}\nTo: bob@example.net\nSubject: bare LF\n"
        "Date: Sun, 29 Nov 2026 10:00:00 +0000\nMessage-ID: <lf@example.test>\n\n"
        "line one\n.dot line\nline three\n"
    ).encode()
    envelope = Envelope(sender=SENDER, recipients=["bob@example.net"])
    with _mailer(server, _signer(published, "rsa")) as mailer:
        mailer.send(raw, envelope=envelope)
    received = server.messages[0].data
    assert b"\n" not in received.replace(b"\r\n", b"")
    assert published.verify(received) == [True]


def test_keyring_signs_with_the_from_domain_key(
    published: PublishedKeys, server: RecordingServer
) -> None:
    keyring = DKIMKeyring({DOMAIN: (SELECTORS["ed25519"], published.private["ed25519"])})
    with _mailer(server, keyring) as mailer:
        mailer.send(sender=SENDER, to=["bob@example.net"], subject="keyring", text="hi\n")
        mailer.send(sender="carol@other.test", to=["bob@example.net"], subject="none", text="x\n")
    signed, unsigned = (m.data for m in server.messages)
    assert published.verify(signed) == [True]
    assert b"DKIM-Signature" not in unsigned


def test_header_added_after_signing_breaks_verification(
    published: PublishedKeys, server: RecordingServer
) -> None:
    """Oversigning: a second Subject or From slipped in downstream fails verification."""
    with _mailer(server, _signer(published, "rsa")) as mailer:
        mailer.send(sender=SENDER, to=["bob@example.net"], subject="Original", text="body\n")
    received = server.messages[0].data
    assert published.verify(received) == [True]
    for added in (b"Subject: Forged\r\n", b"From: mallory@evil.test\r\n"):
        tampered = received.replace(b"\r\n\r\n", b"\r\n" + added + b"\r\n", 1)
        assert published.verify(tampered) == [False]


def test_email_message_object_is_signed(published: PublishedKeys, server: RecordingServer) -> None:
    message = EmailMessage()
    message["From"] = SENDER
    message["To"] = "bob@example.net"
    message["Subject"] = "EmailMessage"
    message.set_content("plain\n")
    with _mailer(server, _signer(published, "ed25519")) as mailer:
        mailer.send(message)
    assert published.verify(server.messages[0].data) == [True]
