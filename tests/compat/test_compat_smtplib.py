"""mailtransfer.compat.smtplib against real loopback servers (aiosmtpd via mailtransfer.testing).

Covers what CPython's suite does not: the security points (CR/LF/NUL refused before a byte
is sent, CRLF-only dot-stuffed data, credentials hidden in debug output, verified TLS with
secure_defaults), both exception hierarchies, SMTPUTF8 and Resent- handling, LMTP, SMTPS,
and install()/uninstall().
"""

from __future__ import annotations

import base64
import contextlib
import io
import pickle
import smtplib as std_smtplib
import ssl
import subprocess
import sys
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailtransfer import compat, errors
from mailtransfer.compat import smtplib
from mailtransfer.testing import (
    RecordingServer,
    ScriptedServer,
    TLSCertificates,
    starttls_injection,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def client(smtp_server: RecordingServer) -> Iterator[smtplib.SMTP]:
    with smtplib.SMTP(smtp_server.host, smtp_server.port, local_hostname="client.test") as smtp:
        yield smtp


@pytest.fixture
def secure() -> Iterator[None]:
    smtplib.secure_defaults()
    yield
    smtplib.secure_defaults(False)


# --- sending ---------------------------------------------------------------------------


def test_sendmail_delivers_and_reports_refused(
    client: smtplib.SMTP, smtp_server: RecordingServer
) -> None:
    smtp_server.faults.refuse_recipient("nobody@example.test")
    refused = client.sendmail(
        "alice@example.test",
        ["bob@example.test", "nobody@example.test"],
        "Subject: hi\n\nhello\n",
    )
    assert list(refused) == ["nobody@example.test"]
    assert refused["nobody@example.test"][0] == 550
    (message,) = smtp_server.messages
    assert message.rcpt_tos == ("bob@example.test",)
    assert message.data == b"Subject: hi\r\n\r\nhello\r\n"
    assert message.mail_options == (f"size={len(message.data)}",)


def test_dot_stuffing_and_line_endings(client: smtplib.SMTP, smtp_server: RecordingServer) -> None:
    body = b"Subject: dots\r\n\r\n.\r\n..two\r\n.lead\rbare cr\nbare lf\r\n.\nend"
    client.sendmail("a@example.test", "b@example.test", body)
    (message,) = smtp_server.messages
    # The server un-stuffs: it must get back exactly the CRLF-normalised message.
    assert message.data == (
        b"Subject: dots\r\n\r\n.\r\n..two\r\n.lead\r\nbare cr\r\nbare lf\r\n.\r\nend\r\n"
    )


def test_bare_lf_cannot_end_the_data_early(
    client: smtplib.SMTP, smtp_server: RecordingServer
) -> None:
    # SMTP smuggling: with the standard module these bytes go out raw and a lenient server
    # may see "\n.\r\n" as the end of the data and the rest as a second message.
    smuggled = b"Subject: one\r\n\r\nbody\n.\r\nMAIL FROM:<evil@example.test>\r\n"
    client.sendmail("a@example.test", "b@example.test", smuggled)
    (message,) = smtp_server.messages
    assert message.data == b"Subject: one\r\n\r\nbody\r\n.\r\nMAIL FROM:<evil@example.test>\r\n"
    assert [c for c in smtp_server.commands if c.startswith("MAIL")] == [
        f"MAIL FROM:<a@example.test> size={len(message.data)}"
    ]


@pytest.mark.parametrize(
    ("method", "argument"),
    [
        ("mail", "a@example.test>\r\nRCPT TO:<evil@example.test"),
        ("rcpt", "b@example.test\nDATA"),
        ("verify", "x\r@example.test"),
        ("helo", "host\r\nMAIL FROM:<evil@example.test>"),
        ("mail", "a\0b@example.test"),
    ],
)
def test_command_injection_refused_before_sending(
    client: smtplib.SMTP, smtp_server: RecordingServer, method: str, argument: str
) -> None:
    client.ehlo()
    before = smtp_server.commands
    with pytest.raises(ValueError, match="prohibited"):
        getattr(client, method)(argument)
    assert client.noop()[0] == 250  # the session is intact: nothing half-written
    assert smtp_server.commands == [*before, "NOOP"]


@pytest.mark.parametrize(
    ("sender", "recipients"),
    [
        ("a@example.test", ["ok@example.test", "b@example.test\r\nRSET"]),
        ("a@example.test\nX", ["ok@example.test"]),
        ("a@example.test", "b\0@example.test"),
    ],
)
def test_sendmail_checks_every_address_before_mail(
    client: smtplib.SMTP, smtp_server: RecordingServer, sender: str, recipients: list[str]
) -> None:
    with pytest.raises(errors.InvalidAddress, match="prohibited"):
        client.sendmail(sender, recipients, "x")
    # No MAIL went out, so no transaction is left half open: the next send works.
    assert not [c for c in smtp_server.commands if c.startswith("MAIL")]
    assert client.sendmail("a@example.test", "ok@example.test", "x") == {}
    assert len(smtp_server.messages) == 1


def test_sender_refused_is_both_kinds(client: smtplib.SMTP, smtp_server: RecordingServer) -> None:
    smtp_server.faults.refuse_sender(code=553, text="5.7.1 not you")
    with pytest.raises(std_smtplib.SMTPSenderRefused) as caught:
        client.sendmail("a@example.test", "b@example.test", "x")
    error = caught.value
    assert isinstance(error, smtplib.SMTPSenderRefused)
    assert isinstance(error, errors.ReplyError)
    assert error.smtp_code == error.code == 553
    assert error.sender == "a@example.test"
    assert error.args == (553, b"5.7.1 not you", "a@example.test")
    assert error.enhanced is not None
    assert str(error.enhanced) == "5.7.1"
    assert not error.transient
    again = pickle.loads(pickle.dumps(error))
    assert (type(again), again.args, again.code) == (type(error), error.args, 553)


def test_all_recipients_refused(client: smtplib.SMTP, smtp_server: RecordingServer) -> None:
    smtp_server.faults.refuse_recipient(code=450, text="4.2.0 try later")
    with pytest.raises(errors.RecipientsRefused) as caught:
        client.sendmail("a@example.test", ["b@example.test", "c@example.test"], "x")
    error = caught.value
    assert isinstance(error, std_smtplib.SMTPRecipientsRefused)
    assert set(error.recipients) == {"b@example.test", "c@example.test"}
    assert error.recipients["b@example.test"][0] == 450
    assert error.transient
    assert isinstance(error.refused["c@example.test"], errors.TransientError)
    assert smtp_server.messages == []


def test_data_refused(client: smtplib.SMTP, smtp_server: RecordingServer) -> None:
    smtp_server.faults.reply_to_data(code=554, text="5.6.0 no")
    with pytest.raises(smtplib.SMTPDataError) as caught:
        client.sendmail("a@example.test", "b@example.test", "x")
    assert isinstance(caught.value, std_smtplib.SMTPDataError)
    assert isinstance(caught.value, errors.ReplyError)
    assert caught.value.smtp_code == 554


def test_disconnected_is_both_kinds() -> None:
    client = smtplib.SMTP()
    with pytest.raises(std_smtplib.SMTPServerDisconnected) as caught:
        client.noop()
    assert isinstance(caught.value, errors.ServerDisconnected)
    assert isinstance(caught.value, ConnectionError)


# --- send_message ------------------------------------------------------------------------


def _message(**headers: str) -> EmailMessage:
    message = EmailMessage()
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content("hello\n.\n")
    return message


def test_send_message_envelope_and_bcc(client: smtplib.SMTP, smtp_server: RecordingServer) -> None:
    message = _message(
        From="Alice <a@example.test>", To="b@example.test", Bcc="hidden@example.test"
    )
    client.send_message(message)
    (received,) = smtp_server.messages
    assert received.mail_from == "a@example.test"
    assert received.rcpt_tos == ("b@example.test", "hidden@example.test")
    assert b"hidden@example.test" not in received.data
    assert received.data.endswith(b"hello\r\n.\r\n")


def test_send_message_resent_headers(client: smtplib.SMTP, smtp_server: RecordingServer) -> None:
    message = _message(
        From="a@example.test",
        To="b@example.test",
        Resent_Date="Thu, 1 Jan 2026 00:00:00 +0000",
        Resent_From="r@example.test",
        Resent_To="c@example.test",
        Resent_Bcc="d@example.test",
    )
    client.send_message(message)
    (received,) = smtp_server.messages
    assert (received.mail_from, received.rcpt_tos) == (
        "r@example.test",
        ("c@example.test", "d@example.test"),
    )
    assert b"d@example.test" not in received.data
    message["Resent-Date"] = "Fri, 2 Jan 2026 00:00:00 +0000"
    with pytest.raises(ValueError, match="more than one 'Resent-'"):
        client.send_message(message)


def test_send_message_smtputf8(client: smtplib.SMTP, smtp_server: RecordingServer) -> None:
    client.send_message(_message(From="jörg@example.test", To="zoë@example.test"))
    (received,) = smtp_server.messages
    assert received.mail_from == "jörg@example.test"
    assert {"SMTPUTF8", "BODY=8BITMIME"} <= set(received.mail_options)
    assert "zoë@example.test".encode() in received.data


def test_send_message_smtputf8_not_offered(
    recording_server: Callable[..., RecordingServer],
) -> None:
    server = recording_server(smtputf8=False)
    with smtplib.SMTP(server.host, server.port, local_hostname="c.test") as client:
        with pytest.raises(errors.ExtensionNotSupported) as caught:
            client.send_message(_message(From="jörg@example.test", To="b@example.test"))
        assert isinstance(caught.value, std_smtplib.SMTPNotSupportedError)
    assert server.messages == []


# --- authentication and debug output --------------------------------------------------------

SECRET = "s3cret-Passw0rd"


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
@pytest.mark.parametrize("initial_response_ok", [True, False])
def test_login_hides_credentials_in_debug_output(
    recording_server: Callable[..., RecordingServer], mechanism: str, initial_response_ok: bool
) -> None:
    server = recording_server(auth={"alice": SECRET}, auth_require_tls=False)
    stderr = io.StringIO()
    with (
        contextlib.redirect_stderr(stderr),
        smtplib.SMTP(server.host, server.port, local_hostname="c.test") as client,
    ):
        client.set_debuglevel(2)
        client.ehlo()
        client.esmtp_features["auth"] = mechanism  # force the mechanism under test
        assert client.login("alice", SECRET, initial_response_ok=initial_response_ok)[0] == 235
        client.sendmail("a@example.test", "b@example.test", "x")
    output = stderr.getvalue()
    assert "<credentials hidden>" in output
    forbidden = [
        SECRET,
        base64.b64encode(SECRET.encode()).decode(),
        base64.b64encode(f"\0alice\0{SECRET}".encode()).decode(),
    ]
    for secret in forbidden:
        assert secret not in output
    assert "send: 'mail FROM:<a@example.test> size=1\\r\\n'" in output.replace("from:", "FROM:")
    if initial_response_ok:
        assert f"send: 'AUTH {mechanism} <credentials hidden>\\r\\n'" in output
    else:
        assert f"send: 'AUTH {mechanism}\\r\\n'" in output
    assert server.messages[0].auth_user == "alice"


def test_wrong_password(recording_server: Callable[..., RecordingServer]) -> None:
    server = recording_server(auth={"alice": SECRET}, auth_require_tls=False)
    with smtplib.SMTP(server.host, server.port, local_hostname="c.test") as client:
        with pytest.raises(errors.AuthenticationFailed) as caught:
            client.login("alice", "wrong")
        assert isinstance(caught.value, std_smtplib.SMTPAuthenticationError)
        assert caught.value.smtp_code == 535


# --- TLS ------------------------------------------------------------------------------------


def test_starttls_with_context(starttls_server: RecordingServer, tls: TLSCertificates) -> None:
    with smtplib.SMTP("localhost", starttls_server.port, local_hostname="c.test") as client:
        assert client.starttls(context=tls.client_context)[0] == 220
        assert client.ehlo()[0] == 250
        assert not client.has_extn("starttls")
        client.sendmail("a@example.test", "b@example.test", "x")
    assert starttls_server.messages[0].tls


def test_starttls_default_is_unverified_like_the_stdlib(starttls_server: RecordingServer) -> None:
    # Compatibility: without a context the certificate is not checked (documented).
    with smtplib.SMTP("localhost", starttls_server.port, local_hostname="c.test") as client:
        assert client.starttls()[0] == 220


def test_secure_defaults_verify_certificates(
    starttls_server: RecordingServer, secure: None
) -> None:
    client = smtplib.SMTP("localhost", starttls_server.port, local_hostname="c.test")
    try:
        with pytest.raises(ssl.SSLCertVerificationError):
            client.starttls()
    finally:
        client.close()


def test_starttls_injection_is_refused(
    scripted: Callable[..., ScriptedServer], tls: TLSCertificates
) -> None:
    server = scripted(starttls_injection(tls.server_context))
    client = smtplib.SMTP(server.host, server.port, local_hostname="c.test")
    with pytest.raises(errors.STARTTLSInjection) as caught:
        client.starttls(context=tls.client_context)
    assert isinstance(caught.value, std_smtplib.SMTPException)
    assert client.sock is None  # closed, nothing more is read or sent


def test_smtp_ssl(smtps_server: RecordingServer, tls: TLSCertificates) -> None:
    with smtplib.SMTP_SSL(
        "localhost", smtps_server.port, local_hostname="c.test", context=tls.client_context
    ) as client:
        client.sendmail("a@example.test", "b@example.test", "x")
    assert smtps_server.messages[0].tls


def test_smtp_ssl_secure_defaults(smtps_server: RecordingServer, secure: None) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        smtplib.SMTP_SSL("localhost", smtps_server.port, local_hostname="c.test")


# --- LMTP -----------------------------------------------------------------------------------


def test_lmtp(recording_server: Callable[..., RecordingServer]) -> None:
    server = recording_server(lmtp=True)
    with smtplib.LMTP(server.host, server.port, local_hostname="c.test") as client:
        assert client.ehlo()[0] == 250
        client.sendmail("a@example.test", ["b@example.test"], "Subject: x\n\nbody\n")
    assert server.messages[0].rcpt_tos == ("b@example.test",)
    assert server.commands[0].startswith("LHLO")


# --- install --------------------------------------------------------------------------------


def test_install_and_uninstall() -> None:
    original = sys.modules["smtplib"]
    compat.install()
    try:
        compat.install()
        import smtplib as imported

        assert imported is smtplib
        assert compat.installed()
    finally:
        compat.uninstall()
    assert sys.modules["smtplib"] is original
    assert not compat.installed()


def test_install_reaches_third_party_code(tmp_path: Path, smtp_server: RecordingServer) -> None:
    (tmp_path / "thirdparty.py").write_text(
        "import smtplib\n"
        "def send(port):\n"
        "    with smtplib.SMTP('127.0.0.1', port, local_hostname='c.test') as s:\n"
        "        s.sendmail('a@example.test', 'b@example.test', 'x')\n"
        "    return smtplib.__name__\n"
    )
    code = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "from mailtransfer import compat; compat.install()\n"
        "import thirdparty; print(thirdparty.send(int(sys.argv[2])))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path), str(smtp_server.port)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stdout.strip() == "mailtransfer.compat.smtplib"
    assert len(smtp_server.messages) == 1


def test_same_public_surface() -> None:
    names = {n for n in dir(std_smtplib) if not n.startswith("_")} - {
        "socket",
        "io",
        "re",
        "email",
        "base64",
        "hmac",
        "copy",
        "datetime",
        "sys",
        "ssl",
        "encode_base64",
    }
    assert names <= set(dir(smtplib))
    assert set(std_smtplib.__all__) <= set(smtplib.__all__)
    for name in std_smtplib.__all__:
        ours, theirs = getattr(smtplib, name), getattr(std_smtplib, name)
        if isinstance(theirs, type) and issubclass(theirs, Exception):
            assert issubclass(ours, theirs), name
            assert issubclass(ours, errors.MailTransferError), name


@pytest.mark.parametrize("cls", ["SMTP", "SMTP_SSL", "LMTP"])
def test_same_signatures_as_the_running_python(cls: str) -> None:
    import inspect

    ours, theirs = getattr(smtplib, cls), getattr(std_smtplib, cls)
    names = [n for n, v in vars(std_smtplib.SMTP).items() if callable(v)]
    names += [n for n, v in vars(theirs).items() if callable(v)]
    for name in dict.fromkeys(names):
        if name.startswith("__") and name not in {"__init__", "__enter__", "__exit__"}:
            continue
        expected = inspect.signature(getattr(theirs, name))
        got = inspect.signature(getattr(ours, name))
        shape = [(p.name, p.kind, p.default) for p in expected.parameters.values()]
        assert [(p.name, p.kind, p.default) for p in got.parameters.values()] == shape, name
    for attribute in ("default_port", "ehlo_msg", "debuglevel", "does_esmtp"):
        assert getattr(ours, attribute) == getattr(theirs, attribute), attribute
