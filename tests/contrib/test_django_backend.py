"""The Django email backend, driven by Django's own mail API against real loopback servers."""

from __future__ import annotations

import ssl
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import dkim
import pytest

pytest.importorskip("django")

import django
from django.core import mail
from django.core.mail import EmailMessage, EmailMultiAlternatives
from django.test.utils import override_settings

from mailtransfer import Mailer, RetryPolicy
from mailtransfer.contrib.django import EmailBackend, close_shared_mailers, shared_mailer_count
from mailtransfer.dkim import DKIMSigner, generate_key
from mailtransfer.errors import (
    ConnectError,
    InsecureAuthRefused,
    InvalidAddress,
    RecipientsRefused,
    UsageError,
)
from mailtransfer.testing import RecordingServer, TLSCertificates

django.setup()

NO_RETRY = {"retry": RetryPolicy.none(), "local_hostname": "client.example.test"}


@pytest.fixture(autouse=True)
def _fresh_mailers() -> Iterator[None]:
    """Each test starts without shared mailers and closes those it made."""
    close_shared_mailers()
    yield
    close_shared_mailers()


def at(server: RecordingServer, **settings: object) -> override_settings:
    """Point Django's EMAIL_HOST/EMAIL_PORT at ``server`` (plus any other settings)."""
    return override_settings(**{"EMAIL_HOST": server.host, "EMAIL_PORT": server.port, **settings})


def test_send_mail_goes_through_the_backend(smtp_server: RecordingServer) -> None:
    """django.core.mail.send_mail delivers one message with Django's headers and envelope."""
    with at(smtp_server):
        count = mail.send_mail(
            "Welcome", "Hello from Django.", None, ["Bob <bob@example.test>", "carol@example.test"]
        )
    assert count == 1
    (received,) = smtp_server.messages
    assert received.mail_from == "site@example.test"
    assert received.rcpt_tos == ("bob@example.test", "carol@example.test")
    parsed = received.parsed()
    assert parsed["Subject"] == "Welcome"
    assert parsed["From"] == "Site <site@example.test>"
    assert parsed.get_content().strip() == "Hello from Django."
    assert parsed["Message-ID"]


def test_alternatives_attachments_and_bcc(smtp_server: RecordingServer) -> None:
    """EmailMultiAlternatives with HTML and a binary attachment arrives intact; Bcc is hidden."""
    payload = bytes(range(256)) * 4
    message = EmailMultiAlternatives(
        subject="Report",
        body="Plain text body",
        from_email="reports@example.test",
        to=["bob@example.test"],
        bcc=["audit@example.test"],
    )
    message.attach_alternative("<p>HTML body</p>", "text/html")
    message.attach("data.bin", payload, "application/octet-stream")
    with at(smtp_server):
        assert message.send() == 1
    (received,) = smtp_server.messages
    assert received.rcpt_tos == ("bob@example.test", "audit@example.test")
    assert b"audit@example.test" not in received.data
    parsed = received.parsed()
    html = parsed.get_body(preferencelist=("html",))
    assert html is not None
    assert "<p>HTML body</p>" in html.get_content()
    (attachment,) = list(parsed.iter_attachments())
    assert attachment.get_filename() == "data.bin"
    assert attachment.get_content() == payload
    assert message.mailtransfer_result.accepted.keys() == {"bob@example.test", "audit@example.test"}


def test_connections_are_pooled_across_calls(smtp_server: RecordingServer) -> None:
    """Three send_mail() calls (three backend objects) share one mailer and one session."""
    with at(smtp_server):
        for n in range(3):
            assert mail.send_mail(f"n{n}", "body", None, ["bob@example.test"]) == 1
    assert len(smtp_server.messages) == 3
    assert [c for c in smtp_server.commands if c.startswith("EHLO")] == ["EHLO client.example.test"]
    assert shared_mailer_count() == 1


def test_a_different_configuration_gets_its_own_mailer(
    recording_server: Callable[..., RecordingServer],
) -> None:
    """Two servers, two configurations: two shared mailers, each message to its server."""
    first, second = recording_server(), recording_server()
    for server in (first, second):
        with at(server):
            mail.send_mail("s", "b", None, ["bob@example.test"])
    assert len(first.messages) == len(second.messages) == 1
    assert shared_mailer_count() == 2
    close_shared_mailers()
    assert shared_mailer_count() == 0


def test_send_mass_mail_counts_every_message(smtp_server: RecordingServer) -> None:
    """send_mass_mail sends every message concurrently over the pool and counts them."""
    datatuple = [(f"s{i}", f"body {i}", None, [f"r{i}@example.test"]) for i in range(12)]
    with at(smtp_server, MAILTRANSFER_POOL_SIZE=3):
        assert mail.send_mass_mail(datatuple) == 12
    subjects = sorted(m.parsed()["Subject"] for m in smtp_server.messages)
    assert subjects == sorted(f"s{i}" for i in range(12))


def test_partial_refusal_is_counted_and_visible(smtp_server: RecordingServer) -> None:
    """A refused recipient does not stop the others; the refusal is on the message."""
    smtp_server.faults.refuse_recipient("gone@example.test", 550, "5.1.1 No such user")
    message = EmailMessage("s", "b", None, ["bob@example.test", "gone@example.test"])
    with at(smtp_server):
        assert message.send() == 1
    result = message.mailtransfer_result
    assert list(result.accepted) == ["bob@example.test"]
    assert result.refused["gone@example.test"].reply.code == 550
    assert message.mailtransfer_error is None


def test_every_recipient_refused_raises_after_sending_the_rest(
    smtp_server: RecordingServer,
) -> None:
    """One bad message among several: the others are sent, then the error is raised."""
    smtp_server.faults.refuse_recipient("gone@example.test")
    messages = [
        EmailMessage("ok1", "b", None, ["bob@example.test"]),
        EmailMessage("bad", "b", None, ["gone@example.test"]),
        EmailMessage("ok2", "b", None, ["carol@example.test"]),
    ]
    with at(smtp_server), mail.get_connection() as connection, pytest.raises(RecipientsRefused):
        connection.send_messages(messages)
    assert sorted(m.parsed()["Subject"] for m in smtp_server.messages) == ["ok1", "ok2"]
    assert isinstance(messages[1].mailtransfer_error, RecipientsRefused)
    assert messages[0].mailtransfer_result is not None
    assert messages[2].mailtransfer_result is not None


def test_fail_silently_counts_only_what_was_sent(smtp_server: RecordingServer) -> None:
    """fail_silently=True returns the count sent and keeps the error on the message."""
    smtp_server.faults.refuse_recipient("gone@example.test")
    messages = [
        EmailMessage("bad", "b", None, ["gone@example.test"]),
        EmailMessage("ok", "b", None, ["bob@example.test"]),
    ]
    with at(smtp_server):
        connection = mail.get_connection(fail_silently=True)
        assert connection.send_messages(messages) == 1
    assert isinstance(messages[0].mailtransfer_error, RecipientsRefused)


def test_unreachable_server(recording_server: Callable[..., RecordingServer]) -> None:
    """A closed port raises ConnectError, or returns 0 with fail_silently."""
    server = recording_server()
    port = server.port
    server.stop()
    with override_settings(EMAIL_HOST="127.0.0.1", EMAIL_PORT=port, MAILTRANSFER_OPTIONS=NO_RETRY):
        with pytest.raises(ConnectError):
            mail.send_mail("s", "b", None, ["bob@example.test"])
        assert mail.send_mail("s", "b", None, ["bob@example.test"], fail_silently=True) == 0


def test_bad_address_fails_before_any_byte(smtp_server: RecordingServer) -> None:
    """An address with a line break is refused by mailtransfer's checks, not sent."""
    message = EmailMessage("s", "b", "site@example.test", ["bob@example.test"])
    message.from_email = "site@exa mple.test"
    with at(smtp_server), pytest.raises(InvalidAddress):
        message.send()
    assert smtp_server.messages == []
    assert not any(c.startswith("MAIL") for c in smtp_server.commands)


def test_message_without_recipients_is_skipped(smtp_server: RecordingServer) -> None:
    """Like Django's SMTP backend: nothing to send, nothing counted."""
    with at(smtp_server):
        assert EmailMessage("s", "b", None, []).send() == 0
    assert smtp_server.messages == []


def test_starttls_login_with_django_settings(
    recording_server: Callable[..., RecordingServer],
    tls: TLSCertificates,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """EMAIL_USE_TLS + EMAIL_HOST_USER/PASSWORD: verified STARTTLS, then AUTH."""
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(tls.ca_pem)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))  # the system trust store, for this test
    server = recording_server(
        tls_context=tls.server_context, require_starttls=True, auth={"site": "s3cret"}
    )
    with at(
        server,
        EMAIL_HOST="localhost",
        EMAIL_USE_TLS=True,
        EMAIL_HOST_USER="site",
        EMAIL_HOST_PASSWORD="s3cret",
    ):
        assert mail.send_mail("s", "b", None, ["bob@example.test"]) == 1
    (received,) = server.messages
    assert received.tls
    assert received.auth_user == "site"


def test_implicit_tls_with_a_client_certificate(
    recording_server: Callable[..., RecordingServer],
    tls: TLSCertificates,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """EMAIL_USE_SSL with EMAIL_SSL_CERTFILE/KEYFILE: the server demands and gets the cert."""
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(tls.ca_pem)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    client_cert = tls.ca.issue_cert("client.example.test")
    cert_file, key_file = tmp_path / "client.pem", tmp_path / "client.key"
    client_cert.cert_chain_pems[0].write_to_path(str(cert_file))
    client_cert.private_key_pem.write_to_path(str(key_file))
    server_context = tls.server_context_for("localhost")
    server_context.verify_mode = ssl.CERT_REQUIRED
    server_context.load_verify_locations(cadata=tls.ca_pem.decode())
    server = recording_server(implicit_tls=server_context)
    with at(
        server,
        EMAIL_HOST="localhost",
        EMAIL_USE_SSL=True,
        EMAIL_SSL_CERTFILE=str(cert_file),
        EMAIL_SSL_KEYFILE=str(key_file),
    ):
        assert mail.send_mail("s", "b", None, ["bob@example.test"]) == 1
    assert server.messages[0].tls


def test_no_login_in_the_clear(recording_server: Callable[..., RecordingServer]) -> None:
    """Unlike smtplib, credentials are never sent over a connection without TLS."""
    server = recording_server(auth={"site": "s3cret"}, auth_require_tls=False)
    with (
        at(server, EMAIL_HOST_USER="site", EMAIL_HOST_PASSWORD="s3cret"),
        pytest.raises(InsecureAuthRefused),
    ):
        mail.send_mail("s", "b", None, ["bob@example.test"])
    assert not any(c.startswith("AUTH") for c in server.commands)


def test_mailtransfer_url_pool_size_and_timeout_settings(smtp_server: RecordingServer) -> None:
    """MAILTRANSFER_URL names the server; EMAIL_TIMEOUT and MAILTRANSFER_POOL_SIZE apply."""
    with override_settings(
        MAILTRANSFER_URL=smtp_server.url,
        EMAIL_HOST="unused.invalid",
        EMAIL_TIMEOUT=7,
        MAILTRANSFER_POOL_SIZE=2,
    ):
        backend = mail.get_connection()
        assert isinstance(backend, EmailBackend)
        assert backend.send_messages([EmailMessage("s", "b", None, ["bob@example.test"])]) == 1
        mailer = backend.mailer
        assert isinstance(mailer, Mailer)
        assert mailer.config.timeouts.command == 7.0
        assert mailer.config.limits.max_connections == 2
    assert len(smtp_server.messages) == 1


def test_dkim_signers_from_mailtransfer_options(smtp_server: RecordingServer) -> None:
    """MAILTRANSFER_OPTIONS passes DKIM signers; the received message verifies."""
    pem, txt = generate_key("ed25519")
    signer = DKIMSigner(domain="example.test", selector="sel", private_key=pem)
    with at(smtp_server, MAILTRANSFER_OPTIONS={"signers": [signer]}):
        mail.send_mail("Signed", "body\n", "site@example.test", ["bob@example.test"])
    data = smtp_server.messages[0].data

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        return txt.encode() if name == b"sel._domainkey.example.test." else b""

    assert dkim.DKIM(data).verify(dnsfunc=dnsfunc)


def test_conflicting_arguments_are_usage_errors() -> None:
    """EMAIL_USE_TLS with EMAIL_USE_SSL, or url= with host=, are refused at once."""
    with pytest.raises(UsageError):
        EmailBackend(use_tls=True, use_ssl=True)
    with pytest.raises(UsageError):
        EmailBackend(url="smtp://127.0.0.1:2525?tls=none", host="127.0.0.1")


@pytest.mark.parametrize(("module", "extra"), [("django", "django"), ("celery", "celery")])
def test_a_missing_framework_names_the_extra(module: str, extra: str) -> None:
    """Without the framework, importing the integration says which extra to install."""
    code = (
        f"import sys; sys.modules[{module!r}] = None\n"
        "try:\n"
        f"    import mailtransfer.contrib.{extra}\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert f"pip install 'mailtransfer[{extra}]'" in done.stdout


def test_importing_mailtransfer_does_not_import_the_frameworks() -> None:
    """``import mailtransfer`` stays free of Django and Celery."""
    code = (
        "import sys, mailtransfer, mailtransfer.contrib, mailtransfer.contrib.logging;"
        "bad = [m for m in ('django', 'celery', 'kombu', 'redis') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_threads_share_the_pool(smtp_server: RecordingServer) -> None:
    """send_mail() from eight threads at once: every message arrives, one shared mailer."""
    errors: list[BaseException] = []

    def send(n: int) -> None:
        try:
            mail.send_mail(f"t{n}", "b", None, [f"r{n}@example.test"])
        except BaseException as exc:
            errors.append(exc)

    with at(smtp_server, MAILTRANSFER_POOL_SIZE=3):
        threads = [threading.Thread(target=send, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert errors == []
    assert len(smtp_server.messages) == 8
    assert shared_mailer_count() == 1
    assert len([c for c in smtp_server.commands if c.startswith("EHLO")]) <= 3


def test_non_ascii_display_name(smtp_server: RecordingServer) -> None:
    """A display name Django encodes (RFC 2047) still gives the bare envelope address."""
    with at(smtp_server):
        mail.send_mail("s", "b", "Jörg Müller <joerg@example.test>", ["Zoë <zoe@example.test>"])
    (received,) = smtp_server.messages
    assert received.mail_from == "joerg@example.test"
    assert received.rcpt_tos == ("zoe@example.test",)
    assert received.parsed()["From"] == "Jörg Müller <joerg@example.test>"
