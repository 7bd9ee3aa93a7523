"""The test kit itself (mailtransfer.testing and tests/peers.py), driven by other clients.

The SMTP client of this project is not what is under test here, so these tests talk to the
servers with smtplib, raw sockets and a few lines of asyncio streams.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import smtplib
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailtransfer.testing import (
    EsmtpScript,
    RecordingServer,
    ScriptedPeer,
    ScriptedServer,
    ScriptError,
    TLSCertificates,
    basic_ok_server,
    disconnect_after,
    disconnect_mid_data,
    endless_auth_challenge,
    endless_continuation,
    greeting_then_close,
    oversized_line,
    reply_421_after,
    silent,
    starttls_injection,
    tls_certificates,
    trickle,
)
from peers import REQUIRE_PEERS_ENV, DnsServer, SmtpSink, find_binary, smtp_sink

MESSAGE = b"From: a@example.test\r\nTo: b@example.test\r\nSubject: hi\r\n\r\nHello\r\n"
Factory = Callable[..., Any]


# --- helpers -------------------------------------------------------------------------------


def read_reply(stream: BinaryIO) -> list[bytes]:
    """Read one (possibly multi-line) SMTP reply from a socket file."""
    lines = []
    while True:
        line = stream.readline()
        if not line:
            raise EOFError(f"connection closed after {lines!r}")
        lines.append(line)
        if line[3:4] != b"-":
            return lines


class Raw:
    """A raw client socket with a line reader, for byte-exact conversations."""

    def __init__(self, address: tuple[str, int], timeout: float = 5.0) -> None:
        self.sock = socket.create_connection(address, timeout=timeout)
        self.file = self.sock.makefile("rb")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def reply(self) -> list[bytes]:
        return read_reply(self.file)

    def command(self, line: bytes) -> list[bytes]:
        self.send(line + b"\r\n")
        return self.reply()

    def at_eof(self) -> bool:
        return self.file.read() == b""

    def close(self) -> None:
        self.file.close()
        self.sock.close()


@pytest.fixture
def raw() -> Iterator[Callable[[tuple[str, int]], Raw]]:
    """Factory for raw client connections, closed at teardown."""
    opened: list[Raw] = []

    def connect(address: tuple[str, int]) -> Raw:
        opened.append(Raw(address))
        return opened[-1]

    yield connect
    for connection in opened:
        connection.close()


async def asyncio_send(address: tuple[str, int], body: bytes = MESSAGE) -> None:
    """Send one message with asyncio streams: the servers must serve an event-loop client."""
    reader, writer = await asyncio.open_connection(*address)

    async def reply() -> bytes:
        line = await reader.readline()
        while line[3:4] == b"-":
            line = await reader.readline()
        return line[:3]

    try:
        assert await reply() == b"220"
        for command, expected in [
            (b"EHLO loop.example.test", b"250"),
            (b"MAIL FROM:<a@example.test>", b"250"),
            (b"RCPT TO:<b@example.test>", b"250"),
            (b"DATA", b"354"),
            (body + b".", b"250"),
            (b"QUIT", b"221"),
        ]:
            writer.write(command + b"\r\n")
            assert await reply() == expected, command
    finally:
        writer.close()
        await writer.wait_closed()


# --- RecordingServer -------------------------------------------------------------------------


def test_records_message_bytes_exactly(smtp_server: RecordingServer) -> None:
    """A message arrives byte for byte, after dot-unstuffing, with its envelope."""
    body = b"Subject: x\r\n\r\n.leading dot\r\n..two dots\r\n8bit \xc3\xa9\r\n"
    with smtplib.SMTP(*smtp_server.address) as client:
        client.sendmail("a@example.test", ["b@example.test", "c@example.test"], body)
    (message,) = smtp_server.messages
    assert message.data == body
    assert message.mail_from == "a@example.test"
    assert message.rcpt_tos == ("b@example.test", "c@example.test")
    assert message.peer[0] == "127.0.0.1"
    assert message.tls is False
    assert message.auth_user is None


def test_records_helo_name(smtp_server: RecordingServer) -> None:
    """The EHLO argument is kept on the message."""
    with smtplib.SMTP(*smtp_server.address, local_hostname="client.example.test") as client:
        client.sendmail("a@example.test", ["b@example.test"], MESSAGE)
    assert smtp_server.messages[0].helo == "client.example.test"


def test_null_sender_is_empty_string(smtp_server: RecordingServer) -> None:
    """``MAIL FROM:<>`` (a bounce) is recorded as an empty reverse-path."""
    with smtplib.SMTP(*smtp_server.address) as client:
        client.sendmail("<>", ["b@example.test"], MESSAGE)
    assert smtp_server.messages[0].mail_from == ""


def test_parsed_returns_email_message(smtp_server: RecordingServer) -> None:
    """``parsed()`` gives the message as an EmailMessage."""
    with smtplib.SMTP(*smtp_server.address) as client:
        client.sendmail("a@example.test", ["b@example.test"], MESSAGE)
    assert smtp_server.messages[0].parsed()["Subject"] == "hi"


def test_parameters_of_listed_extensions_kept_as_sent(
    recording_server: Factory,
) -> None:
    """DSN parameters are accepted when DSN is listed, with their case preserved."""
    server = recording_server(extensions=["DSN"])
    with smtplib.SMTP(*server.address) as client:
        client.ehlo()
        assert client.has_extn("dsn")
        client.sendmail(
            "a@example.test",
            ["b@example.test"],
            MESSAGE,
            mail_options=["ENVID=Ab+2Bc", "RET=HDRS"],
            rcpt_options=["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;Bob@Example.test"],
        )
    (message,) = server.messages
    assert {"ENVID=Ab+2Bc", "RET=HDRS"} <= set(message.mail_options)
    assert message.rcpt_options == (("NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;Bob@Example.test"),)


def test_parameters_of_unlisted_extensions_refused(smtp_server: RecordingServer) -> None:
    """A DSN parameter to a server that did not offer DSN gets 555."""
    with smtplib.SMTP(*smtp_server.address) as client:
        client.ehlo()
        code, _ = client.mail("a@example.test")
        assert code == 250
        code, _ = client.rcpt("b@example.test", ["NOTIFY=NEVER"])
    assert code == 555


def test_commands_recorded_with_auth_masked(recording_server: Factory) -> None:
    """The command transcript shows AUTH but never the credentials."""
    server = recording_server(auth={"alice": "s3cret"}, auth_require_tls=False)
    with smtplib.SMTP(*server.address) as client:
        client.login("alice", "s3cret")
        client.sendmail("a@example.test", ["b@example.test"], MESSAGE)
    transcript = "\n".join(server.commands)
    assert "AUTH PLAIN ****" in server.commands
    assert "s3cret" not in transcript
    assert base64.b64encode(b"\0alice\0s3cret").decode() not in transcript
    assert server.commands[-2:] == ["DATA", "QUIT"]


def test_auth_plain_records_user(recording_server: Factory) -> None:
    """After AUTH PLAIN the message carries the authenticated user name."""
    server = recording_server(auth={"alice": "s3cret"}, auth_require_tls=False)
    with smtplib.SMTP(*server.address) as client:
        client.login("alice", "s3cret")
        client.sendmail("a@example.test", ["b@example.test"], MESSAGE)
    assert server.messages[0].auth_user == "alice"


def test_auth_login_accepted(recording_server: Factory) -> None:
    """AUTH LOGIN with the right password succeeds."""
    server = recording_server(auth={"alice": "s3cret"}, auth_require_tls=False)
    with smtplib.SMTP(*server.address) as client:
        client.ehlo()
        client.user, client.password = "alice", "s3cret"
        code, _ = client.auth("LOGIN", client.auth_login)
    assert code == 235


def test_auth_wrong_password_refused(recording_server: Factory) -> None:
    """A wrong password gets 535."""
    server = recording_server(auth={"alice": "s3cret"}, auth_require_tls=False)
    with smtplib.SMTP(*server.address) as client, pytest.raises(smtplib.SMTPAuthenticationError):
        client.login("alice", "wrong")


def test_auth_offered_only_after_starttls(recording_server: Factory, tls: TLSCertificates) -> None:
    """With auth_require_tls (the default) AUTH appears only once TLS is up."""
    server = recording_server(tls_context=tls.server_context, auth={"alice": "s3cret"})
    with smtplib.SMTP(*server.address) as client:
        client.ehlo()
        before = client.has_extn("auth")
        client.starttls(context=tls.client_context)
        client.ehlo()
        after = client.has_extn("auth")
    assert (before, after) == (False, True)


def test_auth_not_offered_without_users(
    smtps_server: RecordingServer, tls: TLSCertificates
) -> None:
    """Without ``auth=`` the server does not advertise AUTH, even over TLS."""
    with smtplib.SMTP_SSL(*smtps_server.address, context=tls.client_context) as client:
        client.ehlo()
        assert not client.has_extn("auth")


def test_require_auth_refuses_mail(recording_server: Factory) -> None:
    """With require_auth, MAIL before AUTH gets 530."""
    server = recording_server(auth={"alice": "s3cret"}, auth_require_tls=False, require_auth=True)
    with smtplib.SMTP(*server.address) as client:
        client.ehlo()
        code, _ = client.mail("a@example.test")
    assert code == 530


def test_starttls_message_marked_tls(
    starttls_server: RecordingServer, tls: TLSCertificates
) -> None:
    """A message sent after STARTTLS is recorded with tls=True."""
    with smtplib.SMTP(*starttls_server.address) as client:
        client.starttls(context=tls.client_context)
        client.sendmail("a@example.test", ["b@example.test"], MESSAGE)
    assert starttls_server.messages[0].tls is True


def test_require_starttls_refuses_plain_mail(
    recording_server: Factory, tls: TLSCertificates
) -> None:
    """With require_starttls, MAIL before STARTTLS gets 530."""
    server = recording_server(tls_context=tls.server_context, require_starttls=True)
    with smtplib.SMTP(*server.address) as client:
        client.ehlo()
        code, _ = client.mail("a@example.test")
    assert code == 530


def test_implicit_tls_message_marked_tls(
    smtps_server: RecordingServer, tls: TLSCertificates
) -> None:
    """A message over implicit TLS is recorded with tls=True."""
    with smtplib.SMTP_SSL(*smtps_server.address, context=tls.client_context) as client:
        client.sendmail("a@example.test", ["b@example.test"], MESSAGE)
    assert smtps_server.messages[0].tls is True


def test_default_trust_store_rejects_test_ca(smtps_server: RecordingServer) -> None:
    """The throw-away CA is not trusted by a default client context."""
    with pytest.raises(ssl.SSLCertVerificationError):
        smtplib.SMTP_SSL(*smtps_server.address, context=ssl.create_default_context())


def test_ca_file_written_for_cafile_option(
    smtps_server: RecordingServer, tls: TLSCertificates, tmp_path: Any
) -> None:
    """``write_ca`` produces a file a client can trust with ``cafile=``."""
    context = ssl.create_default_context(cafile=str(tls.write_ca(tmp_path / "ca.pem")))
    with smtplib.SMTP_SSL(*smtps_server.address, context=context) as client:
        assert client.noop()[0] == 250


def test_server_context_for_other_name_fails_hostname_check(
    recording_server: Factory, tls: TLSCertificates
) -> None:
    """A certificate made for another host name fails the client's host name check."""
    server = recording_server(implicit_tls=tls.server_context_for("other.example.test"))
    with pytest.raises(ssl.SSLCertVerificationError, match="match"):
        smtplib.SMTP_SSL(*server.address, context=tls.client_context)


def test_server_context_for_expired_certificate_fails(
    recording_server: Factory, tls: TLSCertificates
) -> None:
    """A certificate whose validity ended fails verification as expired."""
    now = datetime.datetime.now(datetime.timezone.utc)
    expired = tls.server_context_for(
        "127.0.0.1", not_before=now - datetime.timedelta(days=10), not_after=now
    )
    server = recording_server(implicit_tls=expired)
    with pytest.raises(ssl.SSLCertVerificationError, match="expired"):
        smtplib.SMTP_SSL(*server.address, context=tls.client_context)


def test_size_limit_advertised_and_enforced(recording_server: Factory) -> None:
    """``size_limit`` is advertised as SIZE and a larger declared size gets 552."""
    server = recording_server(size_limit=100)
    with smtplib.SMTP(*server.address) as client:
        client.ehlo()
        advertised = client.esmtp_features["size"]
        code, _ = client.mail("a@example.test", ["SIZE=101"])
    assert (advertised, code) == ("100", 552)


def test_no_size_and_no_smtputf8_when_disabled(recording_server: Factory) -> None:
    """``size_limit=None`` and ``smtputf8=False`` remove SIZE and SMTPUTF8 from EHLO."""
    server = recording_server(size_limit=None, smtputf8=False)
    with smtplib.SMTP(*server.address) as client:
        client.ehlo()
        assert not client.has_extn("size")
        assert not client.has_extn("smtputf8")


def test_extra_extensions_advertised(recording_server: Factory) -> None:
    """Keywords in ``extensions`` appear in the EHLO reply."""
    server = recording_server(extensions=["PIPELINING", "ENHANCEDSTATUSCODES"])
    with smtplib.SMTP(*server.address) as client:
        client.ehlo()
        assert client.has_extn("pipelining")
        assert client.has_extn("enhancedstatuscodes")


def test_refuse_recipient_keeps_others(smtp_server: RecordingServer) -> None:
    """A refused recipient gets the scripted reply; the message goes to the others."""
    smtp_server.faults.refuse_recipient("nobody@example.test", 550, "5.1.1 No such user")
    with smtplib.SMTP(*smtp_server.address) as client:
        refused = client.sendmail(
            "a@example.test", ["nobody@example.test", "b@example.test"], MESSAGE
        )
    assert refused == {"nobody@example.test": (550, b"5.1.1 No such user")}
    assert smtp_server.messages[0].rcpt_tos == ("b@example.test",)


def test_refusal_with_times_expires(smtp_server: RecordingServer) -> None:
    """A rule with ``times=1`` fires once (greylisting), then mail is accepted."""
    smtp_server.faults.refuse_recipient(None, 451, "4.7.1 Greylisted", times=1)
    with smtplib.SMTP(*smtp_server.address) as client:
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            client.sendmail("a@example.test", ["b@example.test"], MESSAGE)
        client.rset()
        client.sendmail("a@example.test", ["b@example.test"], MESSAGE)
    assert len(smtp_server.messages) == 1


def test_refuse_sender(smtp_server: RecordingServer) -> None:
    """A refused sender gets the scripted reply."""
    smtp_server.faults.refuse_sender("spam@example.test", 553, "5.7.1 Go away")
    with (
        smtplib.SMTP(*smtp_server.address) as client,
        pytest.raises(smtplib.SMTPSenderRefused) as caught,
    ):
        client.sendmail("spam@example.test", ["b@example.test"], MESSAGE)
    assert caught.value.smtp_code == 553


def test_reply_to_data_refuses_and_does_not_record(smtp_server: RecordingServer) -> None:
    """The reply after the final dot can be scripted; a refused message is not recorded."""
    smtp_server.faults.reply_to_data(554, "5.6.0 Content rejected")
    with (
        smtplib.SMTP(*smtp_server.address) as client,
        pytest.raises(smtplib.SMTPDataError) as caught,
    ):
        client.sendmail("a@example.test", ["b@example.test"], MESSAGE)
    assert caught.value.smtp_code == 554
    assert smtp_server.messages == []


def test_delay_postpones_reply(smtp_server: RecordingServer) -> None:
    """``delay`` holds the reply to a command for the given time."""
    smtp_server.faults.delay("NOOP", 0.3, times=1)
    with smtplib.SMTP(*smtp_server.address) as client:
        started = time.monotonic()
        client.noop()
        slow = time.monotonic() - started
        started = time.monotonic()
        client.noop()
        fast = time.monotonic() - started
    assert slow >= 0.3 > fast


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda f: f.refuse_recipient("a@x.test", 250, "ok"), "code"),
        (lambda f: f.refuse_sender(None, 550, "bad\r\nRCPT TO:<x@y>"), "one line"),
        (lambda f: f.reply_to_data(times=0), "times"),
        (lambda f: f.delay("QUIT", 1.0), "command"),
        (lambda f: f.delay("NOOP", -1.0), "seconds"),
    ],
)
def test_faults_reject_bad_arguments(
    smtp_server: RecordingServer, call: Callable[[Any], None], match: str
) -> None:
    """Fault rules validate their arguments and name the bad one."""
    with pytest.raises(ValueError, match=match):
        call(smtp_server.faults)


def test_lmtp_replies_once_per_recipient(recording_server: Factory, raw: Any) -> None:
    """In LMTP mode the server answers LHLO and gives one reply per recipient after DATA."""
    server = recording_server(lmtp=True)
    server.faults.reply_to_data(452, "4.2.2 Mailbox full", recipient="c@example.test")
    client = raw(server.address)
    client.reply()
    assert client.command(b"EHLO x")[0].startswith(b"500")
    assert client.command(b"LHLO client.test")[-1].startswith(b"250 ")
    client.command(b"MAIL FROM:<a@example.test>")
    client.command(b"RCPT TO:<b@example.test>")
    client.command(b"RCPT TO:<c@example.test>")
    assert client.command(b"DATA")[0].startswith(b"354")
    client.send(MESSAGE + b".\r\n")
    first, second = client.reply(), client.reply()
    assert first[0].startswith(b"250")
    assert second[0].startswith(b"452")
    assert server.messages[0].rcpt_tos == ("b@example.test",)


def test_wait_for_returns_when_message_arrives(smtp_server: RecordingServer) -> None:
    """``wait_for`` blocks until a message sent from another thread arrives."""

    def send() -> None:
        time.sleep(0.1)
        with smtplib.SMTP(*smtp_server.address) as client:
            client.sendmail("a@example.test", ["b@example.test"], MESSAGE)

    sender = threading.Thread(target=send)
    sender.start()
    messages = smtp_server.wait_for(1, timeout=5.0)
    sender.join()
    assert len(messages) == 1


def test_wait_for_times_out(smtp_server: RecordingServer) -> None:
    """``wait_for`` raises TimeoutError when too few messages arrive."""
    with pytest.raises(TimeoutError, match="expected 1 message"):
        smtp_server.wait_for(1, timeout=0.1)


def test_usable_from_asyncio(smtp_server: RecordingServer) -> None:
    """An asyncio client can send to it, and wait_for_async waits without blocking the loop."""

    async def main() -> list[Any]:
        waiting = asyncio.ensure_future(smtp_server.wait_for_async(1))
        await asyncio_send(smtp_server.address)
        return await waiting

    assert asyncio.run(main())[0].rcpt_tos == ("b@example.test",)


def test_clear_forgets_messages(smtp_server: RecordingServer) -> None:
    """``clear()`` empties the recorded messages and commands."""
    with smtplib.SMTP(*smtp_server.address) as client:
        client.sendmail("a@example.test", ["b@example.test"], MESSAGE)
    smtp_server.clear()
    assert (smtp_server.messages, smtp_server.commands) == ([], [])


def test_port_unavailable_before_start() -> None:
    """Asking a stopped server for its port is an error, not port 0."""
    with pytest.raises(RuntimeError, match="not running"):
        _ = RecordingServer().port


@pytest.mark.parametrize(
    "options",
    [
        {"tls_context": "ctx", "implicit_tls": "ctx"},
        {"require_starttls": True},
        {"require_auth": True},
        {"size_limit": 0},
    ],
)
def test_contradictory_options_rejected(options: dict[str, Any]) -> None:
    """Options that cannot work together raise ValueError at construction."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    resolved = {k: context if v == "ctx" else v for k, v in options.items()}
    with pytest.raises(ValueError, match=r"tls|auth|size_limit"):
        RecordingServer(**resolved)


def test_missing_aiosmtpd_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without aiosmtpd the error says which extra to install."""
    monkeypatch.setitem(sys.modules, "aiosmtpd", None)
    monkeypatch.setitem(sys.modules, "aiosmtpd.smtp", None)
    with pytest.raises(ImportError, match=r"pip install 'mailtransfer\[testing\]'"):
        RecordingServer()


# --- ScriptedServer: the machinery -----------------------------------------------------------


def serve_once(script: Any, client: Callable[[ScriptedServer], None]) -> ScriptedServer:
    """Run ``client`` against a ScriptedServer running ``script``, then stop the server."""
    with ScriptedServer(script) as server:
        client(server)
    return server


def test_script_exception_reaches_test() -> None:
    """An exception raised inside a script is raised again when the server stops."""

    async def script(peer: ScriptedPeer) -> None:
        raise ValueError("broken script")

    def client(server: ScriptedServer) -> None:
        socket.create_connection(server.address).close()
        server.wait_for_connections(1)

    with pytest.raises(ValueError, match="broken script"):
        serve_once(script, client)


def test_expect_mismatch_fails_script() -> None:
    """``expect`` raises ScriptError when the line has another prefix."""

    async def script(peer: ScriptedPeer) -> None:
        await peer.send(b"220 hi\r\n")
        await peer.expect(b"EHLO")

    def client(server: ScriptedServer) -> None:
        connection = Raw(server.address)
        connection.reply()
        connection.send(b"HELO x\r\n")
        assert connection.at_eof()
        connection.close()

    with pytest.raises(ScriptError, match="EHLO"):
        serve_once(script, client)


def test_readline_timeout_fails_script() -> None:
    """A read that times out fails the script with TimeoutError."""

    async def script(peer: ScriptedPeer) -> None:
        await peer.readline(timeout=0.1)

    def client(server: ScriptedServer) -> None:
        with socket.create_connection(server.address, timeout=5) as connection:
            assert connection.recv(10) == b""  # the script ended and closed

    with pytest.raises(TimeoutError, match=r"within 0\.1 s"):
        serve_once(script, client)


def test_received_holds_every_byte(raw: Any) -> None:
    """``peer.received`` holds the exact bytes the client sent."""

    async def script(peer: ScriptedPeer) -> None:
        await peer.read_exactly(10)

    with ScriptedServer(script) as server:
        client = raw(server.address)
        client.send(b"abc\r\n\x00\xffdef")
        assert client.at_eof()
    assert bytes(server.peers[0].received) == b"abc\r\n\x00\xffdef"


def test_read_exactly_fails_when_client_closes() -> None:
    """``read_exactly`` raises ScriptError if the stream ends first."""

    async def script(peer: ScriptedPeer) -> None:
        await peer.read_exactly(10)

    def client(server: ScriptedServer) -> None:
        with socket.create_connection(server.address) as connection:
            connection.sendall(b"abc")

    with pytest.raises(ScriptError, match="3 of 10"):
        serve_once(script, client)


def test_read_until_dot_ignores_bare_lf_terminators(raw: Any) -> None:
    """Only CRLF.CRLF ends the data: LF.LF and LF.CRLF are body (SMTP smuggling)."""
    bodies: list[bytes] = []

    async def script(peer: ScriptedPeer) -> None:
        bodies.append(await peer.read_until_dot())

    with ScriptedServer(script) as server:
        client = raw(server.address)
        client.send(b"a\n.\nb\n.\r\nc\r\n.\r\n")
        assert client.at_eof()
    assert bodies == [b"a\n.\nb\n.\r\nc\r\n"]


def test_abort_resets_connection() -> None:
    """``abort()`` makes the client see a connection reset."""

    async def script(peer: ScriptedPeer) -> None:
        await peer.expect(b"go")
        peer.abort()

    with ScriptedServer(script) as server, socket.create_connection(server.address) as client:
        client.settimeout(5)
        client.sendall(b"go\r\n")
        with pytest.raises(ConnectionResetError):
            client.recv(10)


def test_connections_and_max_concurrent_counted() -> None:
    """The server counts connections and the most scripts running at once."""

    async def script(peer: ScriptedPeer) -> None:
        await peer.expect(b"bye")

    with ScriptedServer(script) as server:
        clients = [socket.create_connection(server.address) for _ in range(3)]
        server.wait_for_connections(3)
        for client in clients:
            client.sendall(b"bye\r\n")
            client.close()
    assert (server.connections, server.max_concurrent) == (3, 3)


def test_start_tls_upgrades_connection(tls: TLSCertificates) -> None:
    """``start_tls`` performs the server side of a TLS handshake."""

    async def script(peer: ScriptedPeer) -> None:
        await peer.expect(b"STARTTLS")
        await peer.send(b"220 go\r\n")
        await peer.start_tls(tls.server_context)
        await peer.send(b"250 secure\r\n" if peer.tls else b"554 not secure\r\n")

    with ScriptedServer(script) as server, socket.create_connection(server.address) as plain:
        plain.sendall(b"STARTTLS\r\n")
        assert plain.recv(100) == b"220 go\r\n"
        with tls.client_context.wrap_socket(plain, server_hostname="localhost") as secure:
            assert secure.recv(100) == b"250 secure\r\n"


def test_implicit_tls_scripted_server(tls: TLSCertificates) -> None:
    """With ``implicit_tls`` every connection starts with a TLS handshake."""
    script = basic_ok_server()
    with (
        ScriptedServer(script, implicit_tls=tls.server_context) as server,
        smtplib.SMTP_SSL(*server.address, context=tls.client_context) as client,
    ):
        client.sendmail("a@example.test", ["b@example.test"], MESSAGE)
    assert script.messages[0].tls is True


def test_shutdown_cancels_scripts_of_idle_clients() -> None:
    """A script still waiting at shutdown is cancelled after shutdown_timeout, not an error."""
    with socket.socket() as client:
        started = time.monotonic()
        with ScriptedServer(silent(), shutdown_timeout=0.2) as server:
            client.connect(server.address)
            server.wait_for_connections(1)
        assert time.monotonic() - started < 3.0


# --- ScriptedServer: the ready-made scripts --------------------------------------------------


def test_greeting_then_close(scripted: Factory, raw: Any) -> None:
    """``greeting_then_close`` sends the greeting and closes."""
    client = raw(scripted(greeting_then_close(b"421 4.3.2 busy\r\n")).address)
    assert client.reply() == [b"421 4.3.2 busy\r\n"]
    assert client.at_eof()


def test_silent_never_speaks(scripted: Factory) -> None:
    """``silent`` accepts the connection and sends nothing."""
    server = scripted(silent())
    with socket.create_connection(server.address) as client:
        client.settimeout(0.3)
        with pytest.raises(socket.timeout):
            client.recv(1)


def test_trickle_sends_one_byte_per_interval(scripted: Factory) -> None:
    """``trickle`` spreads the reply over (bytes - 1) intervals."""
    reply = b"220 slow\r\n"
    server = scripted(trickle(reply, 0.03))
    received = b""
    with socket.create_connection(server.address) as client:
        client.settimeout(5)
        started = time.monotonic()
        first = client.recv(100)
        received = first
        while not received.endswith(b"\r\n"):
            received += client.recv(100)
        elapsed = time.monotonic() - started
    assert received == reply
    assert len(first) < len(reply)
    assert elapsed >= 0.03 * (len(reply) - 1) * 0.9


def test_trickle_after_command(scripted: Factory, raw: Any) -> None:
    """``trickle(after=...)`` answers normally until that command."""
    client = raw(scripted(trickle(b"250 late\r\n", 0.01, after="NOOP")).address)
    assert client.reply()[0].startswith(b"220 ")
    assert client.command(b"NOOP") == [b"250 late\r\n"]


def test_disconnect_mid_data(scripted: Factory) -> None:
    """``disconnect_mid_data`` closes after 354 and part of the body."""
    server = scripted(disconnect_mid_data(10))
    with (
        smtplib.SMTP(*server.address) as client,
        pytest.raises(smtplib.SMTPServerDisconnected),
    ):
        client.sendmail("a@example.test", ["b@example.test"], MESSAGE * 1000)
    assert b"data\r\n" in server.peers[0].received.lower()


def test_disconnect_mid_data_reset(scripted: Factory, raw: Any) -> None:
    """``disconnect_mid_data(reset=True)`` ends with a connection reset."""
    client = raw(scripted(disconnect_mid_data(1, reset=True)).address)
    client.reply()
    client.command(b"EHLO x")
    client.command(b"MAIL FROM:<a@example.test>")
    client.command(b"RCPT TO:<b@example.test>")
    assert client.command(b"DATA")[0].startswith(b"354")
    client.send(b"x")
    with pytest.raises(ConnectionResetError):
        client.sock.recv(10)


def test_disconnect_after_final_dot(scripted: Factory, raw: Any) -> None:
    """``disconnect_after(".")`` reads the whole message and closes without a reply."""
    client = raw(scripted(disconnect_after(".")).address)
    client.reply()
    client.command(b"EHLO x")
    client.command(b"MAIL FROM:<a@example.test>")
    client.command(b"RCPT TO:<b@example.test>")
    client.command(b"DATA")
    client.send(MESSAGE + b".\r\n")
    assert client.at_eof()


@pytest.mark.parametrize("command", ["CONNECT", "EHLO", "MAIL", "DATA"])
def test_reply_421_after(scripted: Factory, raw: Any, command: str) -> None:
    """``reply_421_after`` answers the chosen command with 421 and closes."""
    client = raw(scripted(reply_421_after(command)).address)
    conversation = {
        "EHLO": b"EHLO x",
        "MAIL": b"MAIL FROM:<a@example.test>",
        "RCPT": b"RCPT TO:<b@example.test>",
        "DATA": b"DATA",
    }
    answered = "CONNECT"
    reply = client.reply()
    for verb, line in conversation.items():
        if reply[0].startswith(b"421"):
            break
        answered = verb
        reply = client.command(line)
    assert (answered, reply) == (command, [b"421 4.3.2 Service shutting down\r\n"])
    assert client.at_eof()


def test_oversized_line_length(scripted: Factory) -> None:
    """``oversized_line(n)`` sends a single line of exactly n bytes."""
    server = scripted(oversized_line(8192))
    with socket.create_connection(server.address) as client, client.makefile("rb") as stream:
        line = stream.readline(100_000)
    assert len(line) == 8192
    assert line.endswith(b"\r\n")
    assert b"\n" not in line[:-1]


def test_endless_continuation_never_ends(scripted: Factory, raw: Any) -> None:
    """``endless_continuation`` keeps sending 250- lines: a megabyte and still going."""
    client = raw(scripted(endless_continuation()).address)
    client.reply()
    client.send(b"EHLO x\r\n")
    total = 0
    while total < 1_000_000:
        line = client.file.readline()
        assert line.startswith(b"250-")
        total += len(line)


def test_endless_auth_challenge(scripted: Factory, raw: Any) -> None:
    """``endless_auth_challenge`` answers every response with another 334 until '*'."""
    client = raw(scripted(endless_auth_challenge()).address)
    client.reply()
    assert b"AUTH PLAIN LOGIN\r\n" in b"".join(client.command(b"EHLO x"))
    replies = [client.command(b"AUTH PLAIN")]
    replies += [client.command(b"dGVzdA==") for _ in range(5)]
    assert all(r == [b"334 \r\n"] for r in replies)
    assert client.command(b"*")[0].startswith(b"501")


def test_starttls_injection_in_one_segment(scripted: Factory) -> None:
    """``starttls_injection`` writes the 220 and the injected line in a single segment."""
    server = scripted(starttls_injection())
    with socket.create_connection(server.address) as client:
        with client.makefile("rb") as stream:
            read_reply(stream)
            client.sendall(b"EHLO x\r\n")
            assert b"STARTTLS\r\n" in b"".join(read_reply(stream))
        client.sendall(b"STARTTLS\r\n")
        assert client.recv(1000) == b"220 2.0.0 Go ahead\r\n250-evil\r\n"


def test_starttls_injection_then_handshake(scripted: Factory, tls: TLSCertificates) -> None:
    """With a context, a client that ignores the injection gets TLS and a clean EHLO."""
    server = scripted(starttls_injection(tls.server_context))
    with socket.create_connection(server.address) as plain:
        plain.settimeout(5)
        plain.recv(1000)  # greeting
        plain.sendall(b"STARTTLS\r\n")
        assert plain.recv(1000).endswith(b"250-evil\r\n")
        with tls.client_context.wrap_socket(plain, server_hostname="localhost") as secure:
            secure.sendall(b"EHLO x\r\n")
            with secure.makefile("rb") as stream:
                ehlo = b"".join(read_reply(stream))
    assert b"evil" not in ehlo
    assert b"PIPELINING" in ehlo


# --- basic_ok_server ---------------------------------------------------------------------------


def test_basic_ok_server_advertises_pipelining_and_chunking(scripted: Factory) -> None:
    """``basic_ok_server`` offers PIPELINING and CHUNKING, which aiosmtpd lacks."""
    server = scripted(basic_ok_server())
    with smtplib.SMTP(*server.address) as client:
        client.ehlo()
        assert client.has_extn("pipelining")
        assert client.has_extn("chunking")


def test_basic_ok_server_records_data_unstuffed(scripted: Factory) -> None:
    """Messages sent with DATA are recorded unstuffed; the wire keeps the stuffing."""
    script = basic_ok_server()
    server = scripted(script)
    body = b"Subject: x\r\n\r\n.hidden\r\n"
    with smtplib.SMTP(*server.address) as client:
        client.sendmail("a@example.test", ["b@example.test"], body, mail_options=["BODY=8BITMIME"])
    (message,) = script.messages
    assert message.data == body
    assert "BODY=8BITMIME" in message.mail_options
    assert b"\r\n..hidden\r\n" in server.peers[0].received


def test_basic_ok_server_pipelined_bdat(scripted: Factory, raw: Any) -> None:
    """Pipelined MAIL, RCPT and BDAT chunks in one write get one reply each, in order."""
    script = basic_ok_server()
    client = raw(scripted(script).address)
    client.reply()
    client.command(b"EHLO x")
    client.send(
        b"MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\n"
        b"BDAT 6\r\nhello BDAT 7 LAST\r\n\r\nworld"
    )
    replies = [client.reply()[0][:3] for _ in range(4)]
    assert replies == [b"250"] * 4
    assert script.messages[0].data == b"hello \r\nworld"


def test_basic_ok_server_starttls_and_auth(scripted: Factory, tls: TLSCertificates) -> None:
    """STARTTLS and AUTH work against ``basic_ok_server(tls=...)``."""
    script = basic_ok_server(tls=tls.server_context, extensions=["AUTH PLAIN LOGIN"])
    server = scripted(script)
    with smtplib.SMTP(*server.address) as client:
        client.starttls(context=tls.client_context)
        client.login("alice", "whatever")
        client.sendmail("a@example.test", ["b@example.test"], MESSAGE)
    (message,) = script.messages
    assert (message.tls, message.auth_user) == (True, "alice")


def test_basic_ok_server_lmtp(scripted: Factory, raw: Any) -> None:
    """In LMTP mode each recipient gets its own reply after the data."""
    script = basic_ok_server(lmtp=True)
    client = raw(scripted(script).address)
    client.reply()
    assert client.command(b"LHLO x")[-1].startswith(b"250 ")
    client.command(b"MAIL FROM:<a@example.test>")
    client.command(b"RCPT TO:<b@example.test>")
    client.command(b"RCPT TO:<c@example.test>")
    client.command(b"DATA")
    client.send(MESSAGE + b".\r\n")
    assert [client.reply()[0][:3] for _ in range(2)] == [b"250", b"250"]


def test_basic_ok_server_answers_after_client_half_close(scripted: Factory) -> None:
    """Commands sent before the client shut down its sending side still get replies."""
    server = scripted(basic_ok_server())
    with socket.create_connection(server.address, timeout=5) as client:
        client.sendall(b"NOOP\r\nQUIT\r\n")
        client.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := client.recv(1000):
            received += chunk
    assert received.endswith(b"250 2.0.0 Ok\r\n221 2.0.0 Bye\r\n")


def test_basic_ok_server_serves_asyncio_client(scripted: Factory) -> None:
    """An asyncio client can send through it."""
    script = basic_ok_server()
    server = scripted(script)
    asyncio.run(asyncio_send(server.address))
    assert script.messages[0].rcpt_tos == ("b@example.test",)


@pytest.fixture(scope="module")
def ok_connection() -> Iterator[tuple[EsmtpScript, Raw]]:
    """One basic_ok_server and one open client connection, shared by the property test."""
    script = basic_ok_server()
    with ScriptedServer(script) as server:
        client = Raw(server.address)
        client.reply()
        client.command(b"EHLO x")
        yield script, client
        client.command(b"QUIT")
        client.close()


@given(lines=st.lists(st.binary().map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))))
def test_data_round_trips_through_dot_stuffing(
    ok_connection: tuple[EsmtpScript, Raw], lines: list[bytes]
) -> None:
    """Any CRLF message, dot-stuffed on the wire, is recorded exactly as it was."""
    script, client = ok_connection
    body = b"".join(line + b"\r\n" for line in lines)
    stuffed = b"".join((b"." + line if line.startswith(b".") else line) + b"\r\n" for line in lines)
    client.command(b"MAIL FROM:<a@example.test>")
    client.command(b"RCPT TO:<b@example.test>")
    assert client.command(b"DATA")[0].startswith(b"354")
    assert client.command(stuffed + b".")[0].startswith(b"250")
    assert script.messages[-1].data == body


def test_intercept_replaces_reply(scripted: Factory, raw: Any) -> None:
    """An EsmtpScript intercept can answer a command itself."""

    async def intercept(peer: ScriptedPeer, line: bytes) -> bool:
        if line.upper().startswith(b"VRFY"):
            await peer.send(b"550 5.1.1 scripted\r\n")
            return True
        return False

    client = raw(scripted(EsmtpScript(intercept=intercept)).address)
    client.reply()
    assert client.command(b"VRFY bob") == [b"550 5.1.1 scripted\r\n"]
    assert client.command(b"NOOP")[0].startswith(b"250")


# --- tls_certificates --------------------------------------------------------------------------


def test_tls_certificates_cover_requested_names() -> None:
    """A certificate made for a name verifies under that name."""
    certs = tls_certificates("mx1.example.test")
    assert certs.hostnames == ("mx1.example.test",)
    with (
        ScriptedServer(basic_ok_server(), implicit_tls=certs.server_context) as server,
        socket.create_connection(server.address) as plain,
        certs.client_context.wrap_socket(plain, server_hostname="mx1.example.test") as tls,
    ):
        assert tls.recv(100).startswith(b"220 ")


# --- external peers ----------------------------------------------------------------------------


def test_smtp_sink_accepts_message(sink: SmtpSink) -> None:
    """Postfix's smtp-sink takes a message and counts it."""
    with smtplib.SMTP(*sink.address) as client:
        client.sendmail("a@example.test", ["b@example.test"], MESSAGE)
    assert sink.wait_for_messages(1) == 1


@pytest.mark.peers
def test_smtp_sink_options_passed() -> None:
    """Switches reach smtp-sink: ``-Q MAIL`` answers MAIL with 421."""
    with smtp_sink(options=["-Q", "MAIL"]) as running, smtplib.SMTP(*running.address) as client:
        client.ehlo()
        code, _ = client.mail("a@example.test")
    assert code == 421


RECORDS = [
    "mx-host=example.test,mx1.example.test,10",
    "mx-host=example.test,mx2.example.test,20",
    "host-record=mx1.example.test,127.0.0.2",
    "mx-host=nullmx.test,.,0",
    'txt-record=example.test,"v=spf1 ip4:127.0.0.1 -all"',
    'txt-record=s1._domainkey.example.test,"v=DKIM1; k=rsa; p=AAAA","BBBB"',
]


def test_dnsmasq_answers_mx_in_preference_order(dns_server: Factory) -> None:
    """dnsmasq serves the MX records given to it."""
    resolver = dns_server(RECORDS).resolver()
    answer = resolver.resolve("example.test", "MX")
    assert sorted((r.preference, r.exchange.to_text()) for r in answer) == [
        (10, "mx1.example.test."),
        (20, "mx2.example.test."),
    ]
    assert resolver.resolve("mx1.example.test", "A")[0].address == "127.0.0.2"


def test_dnsmasq_answers_null_mx_and_txt(dns_server: Factory) -> None:
    """Null MX (RFC 7505) and multi-string TXT records come through intact."""
    server: DnsServer = dns_server(RECORDS)
    resolver = server.resolver()
    (null_mx,) = resolver.resolve("nullmx.test", "MX")
    assert (null_mx.preference, null_mx.exchange.to_text()) == (0, ".")
    (dkim,) = resolver.resolve("s1._domainkey.example.test", "TXT")
    assert dkim.strings == (b"v=DKIM1; k=rsa; p=AAAA", b"BBBB")
    assert server == (server.host, server.port)


def test_missing_peer_skips_with_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing peer binary skips the test and names the install command."""
    monkeypatch.delenv(REQUIRE_PEERS_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="install it with: apt-get install x"):
        find_binary("mailtransfer-no-such-binary", "apt-get install x")


def test_missing_peer_fails_when_peers_required(monkeypatch: pytest.MonkeyPatch) -> None:
    """With MAILTRANSFER_REQUIRE_PEERS=1 a missing peer fails instead of skipping."""
    monkeypatch.setenv(REQUIRE_PEERS_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="forbids skipping"):
        find_binary("mailtransfer-no-such-binary", "apt-get install x")


def test_esmtp_script_rset_aborts_the_transaction() -> None:
    """RSET after an accepted MAIL lets the next MAIL start afresh (RFC 5321 4.1.1.5)."""
    with ScriptedServer(basic_ok_server()) as server:
        client = smtplib.SMTP(server.host, server.port, timeout=5)
        try:
            client.ehlo("client.test")
            assert client.mail("a@example.test")[0] == 250
            assert client.rset()[0] == 250
            assert client.mail("b@example.test")[0] == 250  # not "503 nested MAIL"
        finally:
            client.quit()
