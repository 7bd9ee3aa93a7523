"""STARTTLS and implicit TLS through both drivers, against real TLS servers (trustme certificates).

``test_tls_policies.py`` covers the TLS policies in depth with the sync driver; this module runs
the shared behaviour through both drivers, and adds the STARTTLS exchange itself: STARTTLS
sent alone, EHLO again after the handshake, buffered plaintext after the go-ahead refused
(THREATS S4; CVE-2011-0411 is the server-side twin), a silent handshake bounded by its
deadline, and the typed errors for each certificate failure (S6) and downgrade (S5).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable

import drivers
import pytest
from drivers import Session, SessionFactory, open_session

from mailtransfer import ImplicitTLS, NoTLS, Opportunistic, StartTLS, Timeouts, create_ssl_context
from mailtransfer.auth import Password
from mailtransfer.errors import (
    CertificateVerifyFailed,
    ExtensionNotSupported,
    HostnameMismatch,
    InsecureAuthRefused,
    StartTLSFailed,
    STARTTLSInjection,
    TLSError,
    TLSPortMismatch,
    TLSRequired,
)
from mailtransfer.protocol import Stage
from mailtransfer.testing import (
    DEFAULT_EXTENSIONS,
    EsmtpScript,
    RecordingServer,
    ScriptedPeer,
    ScriptedServer,
    TLSCertificates,
    basic_ok_server,
    starttls_injection,
)

driver = drivers.driver  # the sync/async parametrised session factory
Factory = Callable[..., RecordingServer]
Scripted = Callable[..., ScriptedServer]

MESSAGE = b"From: a@example.test\r\nTo: b@example.test\r\nSubject: tls\r\n\r\nHello\r\n"
NOW = datetime.datetime.now(datetime.timezone.utc)
SHORT = Timeouts(connect=5, greeting=5, command=1, data=5)


def send(conn: Session) -> None:
    """Send MESSAGE to one recipient."""
    conn.send(MESSAGE, sender="a@example.test", recipients=["b@example.test"])


def plaintext_part(server: ScriptedServer) -> tuple[bytes, bytes]:
    """What the client sent before its STARTTLS line, and after it (after stopping the server)."""
    server.stop()
    received = bytes(server.peers[0].received)
    before, _, after = received.partition(b"STARTTLS\r\n")
    return before, after


def nothing_sensitive(data: bytes) -> bool:
    """No AUTH and no MAIL FROM in ``data`` (THREATS S5's wire check)."""
    return b"AUTH " not in data.upper() and b"MAIL FROM" not in data.upper()


# --- the STARTTLS exchange ------------------------------------------------------------------


def test_starttls_then_ehlo_again_then_mail(
    driver: SessionFactory, scripted: Scripted, tls: TLSCertificates
) -> None:
    """STARTTLS goes alone; after the handshake EHLO is repeated, then the message goes in TLS."""
    script = basic_ok_server(tls=tls.server_context)
    server = scripted(script)
    conn = driver(
        "localhost", server.port, tls=StartTLS(context=tls.client_context), timeouts=SHORT
    )
    conn.open()
    assert conn.tls_info is not None
    assert conn.tls_info.version in ("TLSv1.2", "TLSv1.3")
    send(conn)
    conn.quit()
    before, after = plaintext_part(server)
    assert before.startswith(b"EHLO ")
    assert nothing_sensitive(before)
    assert after.startswith(b"EHLO ")  # the first thing inside TLS (RFC 3207 4.2)
    assert script.messages[0].tls


def test_capabilities_learnt_in_plaintext_are_forgotten(
    driver: SessionFactory, scripted: Scripted, tls: TLSCertificates
) -> None:
    """Only the post-TLS EHLO counts: a keyword offered only in plaintext is gone."""

    async def intercept(peer: ScriptedPeer, line: bytes) -> bool:
        if line.upper().startswith(b"EHLO") and not peer.tls:
            await peer.send(b"250-scripted.test\r\n250-X-PLAIN-ONLY\r\n250 STARTTLS\r\n")
            return True
        return False

    server = scripted(EsmtpScript(tls=tls.server_context, intercept=intercept))
    conn = driver(
        "localhost", server.port, tls=StartTLS(context=tls.client_context), timeouts=SHORT
    )
    ext = conn.open()
    assert not ext.has("X-PLAIN-ONLY")
    assert ext.pipelining
    assert not ext.starttls
    conn.quit()


def test_multiline_go_ahead_is_fine(
    driver: SessionFactory, scripted: Scripted, tls: TLSCertificates
) -> None:
    """A 220 in two lines is one reply, and nothing follows it: TLS starts normally."""

    async def intercept(peer: ScriptedPeer, line: bytes) -> bool:
        if not line.upper().startswith(b"STARTTLS"):
            return False
        await peer.send(b"220-2.0.0 Ready\r\n220 2.0.0 go ahead\r\n")
        await peer.start_tls(tls.server_context)
        return True

    script = EsmtpScript(extensions=(*DEFAULT_EXTENSIONS, "STARTTLS"), intercept=intercept)
    server = scripted(script)
    conn = driver(
        "localhost", server.port, tls=StartTLS(context=tls.client_context), timeouts=SHORT
    )
    conn.open()
    send(conn)
    conn.quit()
    assert script.messages[0].tls


def test_go_ahead_split_across_segments_is_not_injection(
    driver: SessionFactory, scripted: Scripted, tls: TLSCertificates
) -> None:
    """A 220 that arrives in two pieces is still one reply with nothing after it."""

    async def intercept(peer: ScriptedPeer, line: bytes) -> bool:
        if not line.upper().startswith(b"STARTTLS"):
            return False
        await peer.send(b"220 2.0.0 Rea")
        await peer.sleep(0.05)
        await peer.send(b"dy\r\n")
        await peer.start_tls(tls.server_context)
        return True

    script = EsmtpScript(extensions=(*DEFAULT_EXTENSIONS, "STARTTLS"), intercept=intercept)
    server = scripted(script)
    conn = driver(
        "localhost", server.port, tls=StartTLS(context=tls.client_context), timeouts=SHORT
    )
    conn.open()
    send(conn)
    conn.quit()
    assert script.messages[0].tls


# --- buffered plaintext after the go-ahead (S4) -----------------------------------------------

INJECTIONS = {
    "whole-lines": b"250-evil.test\r\n250 AUTH PLAIN\r\n",
    "fragment-without-crlf": b"250 fragment",
    "one-byte": b"2",
    "fake-ehlo-reply-and-more": b"250-x\r\n250 STARTTLS\r\n421 bye\r\n",
}


@pytest.mark.parametrize("injected", INJECTIONS.values(), ids=INJECTIONS.keys())
def test_plaintext_after_the_go_ahead_is_refused(
    driver: SessionFactory, scripted: Scripted, tls: TLSCertificates, injected: bytes
) -> None:
    """Bytes after the 220, in its segment: STARTTLSInjection, no handshake, nothing more sent.

    The server would go on to a real handshake (``tls=``), so a client that merely
    continued would not fail for another reason.
    """
    server = scripted(starttls_injection(tls.server_context, injected=injected))
    conn = driver(
        "localhost", server.port, tls=StartTLS(context=tls.client_context), timeouts=SHORT
    )
    error = open_session(conn, STARTTLSInjection)
    assert error.stage is Stage.STARTTLS
    assert "STARTTLS" in "\n".join(error.transcript)
    before, after = plaintext_part(server)
    assert after == b""  # not even a TLS ClientHello after STARTTLS
    assert nothing_sensitive(before)


def test_injection_is_refused_under_opportunistic_too(
    driver: SessionFactory, scripted: Scripted, tls: TLSCertificates
) -> None:
    """Opportunistic TLS does not fall back to plaintext after an injection: it aborts."""
    server = scripted(starttls_injection(tls.server_context))
    conn = driver("localhost", server.port, tls=Opportunistic(), timeouts=SHORT)
    open_session(conn, STARTTLSInjection)
    _, after = plaintext_part(server)
    assert after == b""


# --- policies and downgrades (S5) -------------------------------------------------------------


def _refusing_starttls(reply: bytes) -> EsmtpScript:
    async def intercept(peer: ScriptedPeer, line: bytes) -> bool:
        if line.upper().startswith(b"STARTTLS"):
            await peer.send(reply)
            return True
        return False

    extensions = (*DEFAULT_EXTENSIONS, "STARTTLS", "AUTH PLAIN LOGIN")
    return EsmtpScript(extensions=extensions, intercept=intercept)


def test_required_tls_not_offered(driver: SessionFactory, scripted: Scripted) -> None:
    """STARTTLS stripped from EHLO under the required policy: TLSRequired, nothing sent."""
    server = scripted(EsmtpScript(extensions=(*DEFAULT_EXTENSIONS, "AUTH PLAIN LOGIN")))
    conn = driver(
        "localhost", server.port, tls=StartTLS(), credentials=Password("u", "pw"), timeouts=SHORT
    )
    open_session(conn, TLSRequired)
    server.stop()
    assert nothing_sensitive(bytes(server.peers[0].received))


def test_required_tls_refused_with_454(driver: SessionFactory, scripted: Scripted) -> None:
    """A 454 to STARTTLS under the required policy: StartTLSFailed (transient), no AUTH."""
    server = scripted(_refusing_starttls(b"454 4.7.0 TLS not available\r\n"))
    conn = driver(
        "localhost", server.port, tls=StartTLS(), credentials=Password("u", "pw"), timeouts=SHORT
    )
    error = open_session(conn, StartTLSFailed)
    assert error.transient
    assert error.reply.code == 454  # type: ignore[attr-defined]
    before, after = plaintext_part(server)
    assert nothing_sensitive(before + after)


def test_opportunistic_454_goes_on_in_plaintext(driver: SessionFactory, scripted: Scripted) -> None:
    """Without credentials, opportunistic TLS refused with 454 delivers in plaintext."""
    script = _refusing_starttls(b"454 4.7.0 TLS not available\r\n")
    server = scripted(script)
    conn = driver("localhost", server.port, tls=Opportunistic(), timeouts=SHORT)
    conn.open()
    assert conn.tls_info is None
    send(conn)
    conn.quit()
    server.stop()
    assert not script.messages[0].tls


def test_opportunistic_454_never_sends_credentials(
    driver: SessionFactory, scripted: Scripted
) -> None:
    """With credentials, the downgrade stops at InsecureAuthRefused: no AUTH on the wire."""
    server = scripted(_refusing_starttls(b"454 4.7.0 TLS not available\r\n"))
    conn = driver(
        "localhost",
        server.port,
        tls=Opportunistic(),
        credentials=Password("u", "p4ssw0rd"),
        timeouts=SHORT,
    )
    open_session(conn, InsecureAuthRefused)
    before, after = plaintext_part(server)
    assert nothing_sensitive(before + after)
    assert b"p4ssw0rd" not in before + after


def test_opportunistic_uses_tls_when_offered(
    driver: SessionFactory, starttls_server: RecordingServer
) -> None:
    """Opportunistic starts TLS whenever it is offered."""
    conn = driver("localhost", starttls_server.port, tls=Opportunistic(), timeouts=SHORT)
    conn.open()
    send(conn)
    conn.quit()
    assert starttls_server.wait_for(1)[0].tls


def test_no_tls_ignores_the_offer(driver: SessionFactory, starttls_server: RecordingServer) -> None:
    """NoTLS never sends STARTTLS."""
    conn = driver("127.0.0.1", starttls_server.port, tls=NoTLS(), timeouts=SHORT)
    conn.open()
    send(conn)
    conn.quit()
    assert "STARTTLS" not in starttls_server.commands
    assert not starttls_server.wait_for(1)[0].tls


def test_handshake_that_never_comes_is_bounded(driver: SessionFactory, scripted: Scripted) -> None:
    """220 and then silence: the handshake deadline fires as a typed TLS error."""

    async def silent_after_go_ahead(peer: ScriptedPeer) -> None:
        await peer.send(b"220 2.0.0 Ready\r\n")
        await peer.wait_closed(timeout=10)

    async def intercept(peer: ScriptedPeer, line: bytes) -> bool:
        if line.upper().startswith(b"STARTTLS"):
            await silent_after_go_ahead(peer)
            return True
        return False

    script = EsmtpScript(extensions=(*DEFAULT_EXTENSIONS, "STARTTLS"), intercept=intercept)
    server = scripted(script)
    conn = driver("localhost", server.port, tls=StartTLS(), timeouts=SHORT)
    error = open_session(conn, TLSError)
    assert error.stage is Stage.TLS_HANDSHAKE
    server.stop()


def test_go_ahead_then_hang_up_is_a_tls_error(driver: SessionFactory, scripted: Scripted) -> None:
    """220 and then a closed connection: a TLS error, never plaintext AUTH."""

    async def intercept(peer: ScriptedPeer, line: bytes) -> bool:
        if line.upper().startswith(b"STARTTLS"):
            await peer.send(b"220 2.0.0 Ready\r\n")
            peer.close()
            return True
        return False

    extensions = (*DEFAULT_EXTENSIONS, "STARTTLS", "AUTH PLAIN")
    server = scripted(EsmtpScript(extensions=extensions, intercept=intercept))
    conn = driver(
        "localhost", server.port, tls=StartTLS(), credentials=Password("u", "pw"), timeouts=SHORT
    )
    open_session(conn, TLSError)
    before, after = plaintext_part(server)
    assert nothing_sensitive(before + after)


# --- certificate verification (S6) ------------------------------------------------------------


@pytest.fixture(params=["unknown-ca", "expired", "wrong-host"])
def bad_certificate(
    request: pytest.FixtureRequest, tls: TLSCertificates
) -> tuple[object, object, type[CertificateVerifyFailed]]:
    """(server context, client context, expected error) for each certificate failure."""
    trusting = tls.client_context
    if request.param == "unknown-ca":
        return tls.server_context, create_ssl_context(), CertificateVerifyFailed
    if request.param == "expired":
        context = tls.server_context_for(
            "localhost",
            not_before=NOW - datetime.timedelta(days=30),
            not_after=NOW - datetime.timedelta(days=1),
        )
        return context, trusting, CertificateVerifyFailed
    return tls.server_context_for("other.example.test"), trusting, HostnameMismatch


def test_bad_certificate_over_starttls(
    driver: SessionFactory,
    recording_server: Factory,
    bad_certificate: tuple[object, object, type[CertificateVerifyFailed]],
) -> None:
    """Each certificate failure is its typed error; the server sees no MAIL and no message."""
    server_context, client_context, expected = bad_certificate
    server = recording_server(tls_context=server_context)
    conn = driver("localhost", server.port, tls=StartTLS(context=client_context), timeouts=SHORT)
    error = open_session(conn, expected)
    assert type(error) is expected
    assert error.stage is Stage.TLS_HANDSHAKE
    assert server.commands[-1] == "STARTTLS"
    assert server.messages == []


def test_bad_certificate_over_implicit_tls(
    driver: SessionFactory,
    recording_server: Factory,
    bad_certificate: tuple[object, object, type[CertificateVerifyFailed]],
) -> None:
    """Implicit TLS refuses the same certificates before a single SMTP command."""
    server_context, client_context, expected = bad_certificate
    server = recording_server(implicit_tls=server_context)
    conn = driver("localhost", server.port, tls=ImplicitTLS(context=client_context), timeouts=SHORT)
    error = open_session(conn, expected)
    assert type(error) is expected
    assert server.commands == []


def test_certificate_for_the_ip_address_verifies(
    driver: SessionFactory, smtps_server: RecordingServer, tls: TLSCertificates
) -> None:
    """Dialling 127.0.0.1 verifies against the certificate's IP address entry."""
    conn = driver(
        "127.0.0.1", smtps_server.port, tls=ImplicitTLS(context=tls.client_context), timeouts=SHORT
    )
    conn.open()
    send(conn)
    conn.quit()
    assert smtps_server.wait_for(1)[0].tls


def test_implicit_tls_to_a_plaintext_port(
    driver: SessionFactory, smtp_server: RecordingServer
) -> None:
    """ImplicitTLS against a plaintext server: TLSPortMismatch naming the fix."""
    conn = driver("localhost", smtp_server.port, tls=ImplicitTLS(), timeouts=SHORT)
    error = open_session(conn, TLSPortMismatch)
    assert "StartTLS()" in str(error)


# --- REQUIRETLS (RFC 8689) ------------------------------------------------------------------


def test_requiretls_sent_over_tls_when_offered(
    driver: SessionFactory, recording_server: Factory, tls: TLSCertificates
) -> None:
    """Over TLS with REQUIRETLS offered, MAIL carries REQUIRETLS."""
    server = recording_server(tls_context=tls.server_context, extensions=["REQUIRETLS"])
    conn = driver(
        "localhost", server.port, tls=StartTLS(context=tls.client_context), timeouts=SHORT
    )
    conn.open()
    conn.send(MESSAGE, sender="a@example.test", recipients=["b@example.test"], requiretls=True)
    conn.quit()
    assert "REQUIRETLS" in server.wait_for(1)[0].mail_options


def test_requiretls_in_plaintext_fails_before_mail(
    driver: SessionFactory, recording_server: Factory
) -> None:
    """REQUIRETLS on a plaintext session is refused before MAIL, even when advertised."""
    server = recording_server(extensions=["REQUIRETLS"])
    conn = driver("127.0.0.1", server.port, tls=Opportunistic(), timeouts=SHORT)
    conn.open()
    with pytest.raises(ExtensionNotSupported):
        conn.send(MESSAGE, sender="a@example.test", recipients=["b@example.test"], requiretls=True)
    assert conn.is_usable
    conn.quit()
    assert not any(c.startswith("MAIL") for c in server.commands)


# --- closing without close_notify -------------------------------------------------------------


@pytest.mark.parametrize("how", ["fin", "rst"])
def test_tls_server_hanging_up_after_221_is_not_an_error(
    driver: SessionFactory, scripted: Scripted, tls: TLSCertificates, how: str
) -> None:
    """A TLS server that drops the TCP connection after 221, skipping close_notify (as some
    large providers do): the message was sent, and QUIT returns without an error."""

    async def rude_quit(peer: ScriptedPeer, line: bytes) -> bool:
        if not line.upper().startswith(b"QUIT"):
            return False
        await peer.send(b"221 2.0.0 Bye\r\n")
        await peer.sleep(0.05)
        peer.abort() if how == "rst" else peer._conn.raw_transport.close()  # type: ignore[union-attr]
        return True

    script = EsmtpScript(intercept=rude_quit)
    server = scripted(script, implicit_tls=tls.server_context)
    conn = driver(
        "localhost", server.port, tls=ImplicitTLS(context=tls.client_context), timeouts=SHORT
    )
    conn.open()
    send(conn)
    conn.quit()
    conn.close()
    server.stop()
    assert script.messages[0].tls
