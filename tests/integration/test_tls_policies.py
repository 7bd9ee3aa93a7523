"""TLS policies against real TLS servers: verification, client certificates, STARTTLS defences.

Certificates come from trustme (a fresh CA per session, plus expired, wrong-name and
self-signed variants); servers are aiosmtpd (:class:`RecordingServer`) or scripted hostile
ones. THREATS S4 (STARTTLS injection), S5 (stripping/downgrade) and S6 (verification).
"""

from __future__ import annotations

import asyncio
import datetime
import os
import ssl
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mailtransfer import (
    AsyncConnection,
    ImplicitTLS,
    NoTLS,
    Opportunistic,
    StartTLS,
    SyncConnection,
    Timeouts,
    create_ssl_context,
)
from mailtransfer.auth import Password
from mailtransfer.errors import (
    CertificateVerifyFailed,
    ExtensionNotSupported,
    GreetingTimeout,
    HostnameMismatch,
    InsecureAuthRefused,
    MailTransferError,
    StartTLSFailed,
    STARTTLSInjection,
    TLSError,
    TLSHandshakeFailed,
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
    starttls_injection,
)

MESSAGE = b"From: a@example.test\r\nTo: b@example.test\r\nSubject: hi\r\n\r\nHello\r\n"
ROOT = Path(__file__).resolve().parents[2]
NOW = datetime.datetime.now(datetime.timezone.utc)


def send_one(conn: SyncConnection, **params: Any) -> None:
    """Open, send one message, QUIT."""
    with conn:
        conn.send(MESSAGE, sender="a@example.test", recipients=["b@example.test"], **params)


def open_expecting(conn: SyncConnection, error: type[BaseException]) -> BaseException:
    """Open ``conn`` expecting ``error``; always close the socket afterwards."""
    try:
        with pytest.raises(error) as info:
            conn.open()
    finally:
        conn.close()
    return info.value


def nothing_sensitive_sent(peer_bytes: bytes) -> bool:
    """No AUTH and no MAIL command reached the server (THREATS S5's wire check)."""
    upper = peer_bytes.upper()
    return b"AUTH " not in upper and b"MAIL FROM" not in upper


@pytest.fixture(scope="module")
def ca_file(tmp_path_factory: pytest.TempPathFactory, tls: TLSCertificates) -> Path:
    """The test CA as a PEM file, for cafile=."""
    return tls.write_ca(tmp_path_factory.mktemp("ca") / "ca.pem")


@dataclass(frozen=True)
class SelfSigned:
    """A self-signed certificate for localhost."""

    server_context: ssl.SSLContext
    cert_file: Path


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> SelfSigned:
    """A self-signed certificate (its own issuer), as a server context and a PEM file."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(days=1))
        .not_valid_after(NOW + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("self-signed")
    cert_file = folder / "cert.pem"
    key_file = folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return SelfSigned(context, cert_file)


# --- certificate verification (S6) --------------------------------------------------------


def test_verified_starttls_with_a_user_context(
    starttls_server: RecordingServer, tls: TLSCertificates
) -> None:
    """A context trusting the CA verifies the server and the message goes over TLS."""
    send_one(
        SyncConnection("localhost", starttls_server.port, tls=StartTLS(context=tls.client_context))
    )
    assert starttls_server.wait_for(1)[0].tls


def test_verified_starttls_with_a_ca_file(starttls_server: RecordingServer, ca_file: Path) -> None:
    """create_ssl_context(cafile=...) trusts a private CA."""
    policy = StartTLS(context=create_ssl_context(cafile=ca_file))
    send_one(SyncConnection("localhost", starttls_server.port, tls=policy))
    assert starttls_server.wait_for(1)[0].tls


def test_verified_implicit_tls(smtps_server: RecordingServer, tls: TLSCertificates) -> None:
    """Implicit TLS verifies the certificate from the first byte."""
    conn = SyncConnection(
        "localhost", smtps_server.port, tls=ImplicitTLS(context=tls.client_context)
    )
    send_one(conn)
    assert smtps_server.wait_for(1)[0].tls
    assert conn.tls_info is not None
    assert conn.tls_info.version in ("TLSv1.2", "TLSv1.3")


def test_verified_starttls_async(starttls_server: RecordingServer, tls: TLSCertificates) -> None:
    """AsyncConnection verifies the same way."""

    async def main() -> None:
        policy = StartTLS(context=tls.client_context)
        async with AsyncConnection("localhost", starttls_server.port, tls=policy) as conn:
            await conn.send(MESSAGE, sender="a@example.test", recipients=["b@example.test"])

    asyncio.run(main())
    assert starttls_server.wait_for(1)[0].tls


@dataclass(frozen=True)
class BadCase:
    """A server certificate that must not verify, and what the error should say."""

    server_context: ssl.SSLContext
    client_context: ssl.SSLContext
    says: str
    fix: str = "cafile"


@pytest.fixture(params=["unknown-ca", "wrong-host", "expired", "self-signed"])
def bad_case(
    request: pytest.FixtureRequest, tls: TLSCertificates, ca_file: Path, self_signed: SelfSigned
) -> BadCase:
    """Each way a certificate fails verification (THREATS S6)."""
    trusting = create_ssl_context(cafile=ca_file)
    if request.param == "unknown-ca":
        return BadCase(tls.server_context, create_ssl_context(), "local issuer")
    if request.param == "wrong-host":
        return BadCase(
            tls.server_context_for("other.example.test"), trusting, "localhost", "host name"
        )
    if request.param == "expired":
        context = tls.server_context_for(
            "localhost",
            not_before=NOW - datetime.timedelta(days=30),
            not_after=NOW - datetime.timedelta(days=1),
        )
        return BadCase(context, trusting, "expired")
    return BadCase(self_signed.server_context, create_ssl_context(), "self-signed")


def test_bad_certificate_fails_verification(
    bad_case: BadCase, recording_server: Callable[..., RecordingServer]
) -> None:
    """Each bad certificate ends in CertificateVerifyFailed naming the problem; no MAIL sent."""
    server = recording_server(tls_context=bad_case.server_context)
    conn = SyncConnection("localhost", server.port, tls=StartTLS(context=bad_case.client_context))
    error = open_expecting(conn, CertificateVerifyFailed)
    assert bad_case.says in str(error)
    assert bad_case.fix in str(error)  # the message says what to check
    assert server.commands[-1] == "STARTTLS"


def test_bad_certificate_fails_on_implicit_tls(
    bad_case: BadCase, recording_server: Callable[..., RecordingServer]
) -> None:
    """Implicit TLS refuses the same certificates."""
    server = recording_server(implicit_tls=bad_case.server_context)
    conn = SyncConnection(
        "localhost", server.port, tls=ImplicitTLS(context=bad_case.client_context)
    )
    open_expecting(conn, CertificateVerifyFailed)
    assert server.commands == []


def test_insecure_opt_out_accepts_any_certificate(
    bad_case: BadCase, recording_server: Callable[..., RecordingServer]
) -> None:
    """create_ssl_context(verify=False) is the named opt-out: encryption without verification."""
    server = recording_server(tls_context=bad_case.server_context)
    send_one(
        SyncConnection(
            "localhost", server.port, tls=StartTLS(context=create_ssl_context(verify=False))
        )
    )
    assert server.wait_for(1)[0].tls


def test_unknown_ca_passes_with_its_ca_file(
    recording_server: Callable[..., RecordingServer], tls: TLSCertificates, ca_file: Path
) -> None:
    """The unknown-CA case passes once that CA is given with cafile=."""
    server = recording_server(tls_context=tls.server_context)
    send_one(
        SyncConnection(
            "localhost", server.port, tls=StartTLS(context=create_ssl_context(cafile=ca_file))
        )
    )
    assert server.wait_for(1)[0].tls


def test_self_signed_passes_with_its_own_file_as_ca(
    recording_server: Callable[..., RecordingServer], self_signed: SelfSigned
) -> None:
    """A self-signed certificate passes when it is itself given as the trust anchor."""
    server = recording_server(tls_context=self_signed.server_context)
    policy = StartTLS(context=create_ssl_context(cafile=self_signed.cert_file))
    send_one(SyncConnection("localhost", server.port, tls=policy))
    assert server.wait_for(1)[0].tls


def test_wrong_host_is_hostname_mismatch(
    recording_server: Callable[..., RecordingServer], tls: TLSCertificates, ca_file: Path
) -> None:
    """A valid certificate for another name raises the HostnameMismatch subclass."""
    server = recording_server(tls_context=tls.server_context_for("other.example.test"))
    policy = StartTLS(context=create_ssl_context(cafile=ca_file))
    open_expecting(SyncConnection("localhost", server.port, tls=policy), HostnameMismatch)


def test_default_context_is_verified_tls12_plus() -> None:
    """The default context verifies certificates and host names and needs TLS 1.2 or newer."""
    context = StartTLS().ssl_context()
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2


def test_server_offering_only_tls11_is_refused(
    recording_server: Callable[..., RecordingServer], tls: TLSCertificates
) -> None:
    """A server that speaks nothing newer than TLS 1.1 fails in the TLS handshake stage."""
    context = tls.server_context_for("localhost")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # that is the point of the test
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    server = recording_server(tls_context=context)
    conn = SyncConnection("localhost", server.port, tls=StartTLS(context=tls.client_context))
    # The server may answer with EOF (TLSHandshakeFailed) or a reset (ServerDisconnected
    # today: see the report on _translate.py); either way the stage says where.
    error = open_expecting(conn, MailTransferError)
    assert error.stage is Stage.TLS_HANDSHAKE
    assert server.commands[-1] == "STARTTLS"


def test_sni_is_the_host_name(
    recording_server: Callable[..., RecordingServer], tls: TLSCertificates
) -> None:
    """The client sends the host it dials as SNI."""
    seen: list[str | None] = []
    context = tls.server_context_for("localhost")
    context.sni_callback = lambda _sock, name, _ctx: seen.append(name)  # type: ignore[assignment,func-returns-value]
    server = recording_server(tls_context=context)
    send_one(SyncConnection("localhost", server.port, tls=StartTLS(context=tls.client_context)))
    assert seen == ["localhost"]


def test_server_hostname_sets_sni_and_verification(
    recording_server: Callable[..., RecordingServer], tls: TLSCertificates
) -> None:
    """server_hostname= is sent as SNI and verified, though the client dials an IP address."""
    seen: list[str | None] = []
    context = tls.server_context_for("mx.example.test")
    context.sni_callback = lambda _sock, name, _ctx: seen.append(name)  # type: ignore[assignment,func-returns-value]
    server = recording_server(tls_context=context)
    policy = StartTLS(context=tls.client_context, server_hostname="mx.example.test")
    send_one(SyncConnection("127.0.0.1", server.port, tls=policy))
    assert seen == ["mx.example.test"]


# --- client certificates --------------------------------------------------------------------


@dataclass(frozen=True)
class ClientCert:
    """A client certificate (cert and key files) and a server context that demands it."""

    cert_file: Path
    key_file: Path
    server_context: ssl.SSLContext


@pytest.fixture
def client_cert(tmp_path: Path, tls: TLSCertificates) -> ClientCert:
    """A client CA, a client certificate from it, and a server requiring one (TLS 1.2)."""
    client_ca = trustme.CA()
    issued = client_ca.issue_cert("client.example.test")
    cert_file, key_file = tmp_path / "client.crt", tmp_path / "client.key"
    issued.cert_chain_pems[0].write_to_path(cert_file)
    issued.private_key_pem.write_to_path(key_file)
    context = tls.server_context_for("localhost")
    context.verify_mode = ssl.CERT_REQUIRED
    # TLS 1.2: the refusal then happens inside the handshake, where the client sees it.
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    client_ca.configure_trust(context)
    return ClientCert(cert_file, key_file, context)


def test_client_certificate_is_presented(
    client_cert: ClientCert, recording_server: Callable[..., RecordingServer], ca_file: Path
) -> None:
    """create_ssl_context(certfile=, keyfile=) presents the client certificate; mail flows."""
    server = recording_server(tls_context=client_cert.server_context)
    context = create_ssl_context(
        cafile=ca_file, certfile=client_cert.cert_file, keyfile=client_cert.key_file
    )
    send_one(SyncConnection("localhost", server.port, tls=StartTLS(context=context)))
    assert server.wait_for(1)[0].tls


def test_missing_client_certificate_fails_the_handshake(
    client_cert: ClientCert, recording_server: Callable[..., RecordingServer], ca_file: Path
) -> None:
    """Without the certificate the handshake fails with a TLS error and nothing more is sent."""
    server = recording_server(tls_context=client_cert.server_context)
    conn = SyncConnection(
        "localhost", server.port, tls=StartTLS(context=create_ssl_context(cafile=ca_file))
    )
    open_expecting(conn, TLSHandshakeFailed)
    assert server.commands[-1] == "STARTTLS"


# --- the policies ---------------------------------------------------------------------------


def test_no_tls_never_starts_tls(starttls_server: RecordingServer) -> None:
    """NoTLS sends no STARTTLS even when it is offered."""
    send_one(SyncConnection("127.0.0.1", starttls_server.port, tls=NoTLS()))
    assert "STARTTLS" not in starttls_server.commands
    assert not starttls_server.wait_for(1)[0].tls


def test_opportunistic_uses_offered_tls_unverified(starttls_server: RecordingServer) -> None:
    """Opportunistic starts TLS when offered, without verifying (the CA is unknown here)."""
    send_one(SyncConnection("localhost", starttls_server.port, tls=Opportunistic()))
    assert starttls_server.wait_for(1)[0].tls


def test_opportunistic_falls_back_to_plaintext(smtp_server: RecordingServer) -> None:
    """Opportunistic delivers in plaintext when STARTTLS is not offered."""
    send_one(SyncConnection("127.0.0.1", smtp_server.port, tls=Opportunistic()))
    assert not smtp_server.wait_for(1)[0].tls


def test_opportunistic_with_verifying_context_does_not_fall_back(
    starttls_server: RecordingServer,
) -> None:
    """A failed verification under Opportunistic(context=verified) is an error, not plaintext."""
    policy = Opportunistic(context=create_ssl_context())
    conn = SyncConnection("localhost", starttls_server.port, tls=policy)
    open_expecting(conn, CertificateVerifyFailed)
    assert starttls_server.messages == []


# --- STARTTLS defences (S4, S5) ---------------------------------------------------------------


def _intercepting(
    action: Callable[[ScriptedPeer], Any],
    extensions: tuple[str, ...] = ("STARTTLS", "AUTH PLAIN LOGIN"),
) -> EsmtpScript:
    """An ESMTP server that runs ``action`` instead of answering STARTTLS."""

    async def intercept(peer: ScriptedPeer, line: bytes) -> bool:
        if line.upper().startswith(b"STARTTLS"):
            await action(peer)
            return True
        return False

    return EsmtpScript(extensions=(*DEFAULT_EXTENSIONS, *extensions), intercept=intercept)


def _required(port: int, **options: Any) -> SyncConnection:
    return SyncConnection(
        "localhost",
        port,
        tls=StartTLS(),
        credentials=Password("u", "p4ssw0rd-x"),
        timeouts=Timeouts.all(3),
        **options,
    )


def test_starttls_not_offered_is_tls_required(scripted: Callable[..., ScriptedServer]) -> None:
    """A stripped STARTTLS under the required policy: TLSRequired, no AUTH and no MAIL sent."""
    server = scripted(EsmtpScript(extensions=(*DEFAULT_EXTENSIONS, "AUTH PLAIN LOGIN")))
    open_expecting(_required(server.port), TLSRequired)
    server.stop()
    assert nothing_sensitive_sent(bytes(server.peers[0].received))


def test_starttls_454_is_starttls_failed(scripted: Callable[..., ScriptedServer]) -> None:
    """A 454 answer to STARTTLS is StartTLSFailed (transient); nothing sensitive follows."""

    async def refuse(peer: ScriptedPeer) -> None:
        await peer.send(b"454 4.7.0 TLS not available\r\n")

    server = scripted(_intercepting(refuse))
    error = open_expecting(_required(server.port), StartTLSFailed)
    assert error.transient
    server.stop()
    assert nothing_sensitive_sent(bytes(server.peers[0].received))


def test_starttls_220_then_close_is_typed(scripted: Callable[..., ScriptedServer]) -> None:
    """220 followed by a hang-up ends in a typed error, never in plaintext AUTH."""

    async def hang_up(peer: ScriptedPeer) -> None:
        await peer.send(b"220 2.0.0 Ready\r\n")
        peer.close()

    server = scripted(_intercepting(hang_up))
    open_expecting(_required(server.port), TLSError)
    server.stop()
    assert nothing_sensitive_sent(bytes(server.peers[0].received))


def test_starttls_220_then_plaintext_is_a_tls_error(
    scripted: Callable[..., ScriptedServer],
) -> None:
    """220 and then plaintext instead of a TLS handshake is a TLSError; no AUTH follows."""

    async def plaintext(peer: ScriptedPeer) -> None:
        await peer.send(b"220 2.0.0 Ready\r\n")
        await peer.read_exactly(5)  # the ClientHello's record header
        await peer.send(b"250 2.0.0 still plaintext\r\n")
        await peer.wait_closed(timeout=5)

    server = scripted(_intercepting(plaintext))
    open_expecting(_required(server.port), TLSError)
    server.stop()
    assert nothing_sensitive_sent(bytes(server.peers[0].received))


@pytest.mark.parametrize(
    "injected", [b"250-evil\r\n250 AUTH PLAIN\r\n", b"250 fragment without line end"]
)
def test_starttls_response_injection_is_detected(
    injected: bytes, scripted: Callable[..., ScriptedServer]
) -> None:
    """Bytes after the 220 (whole lines or a CRLF-free fragment) abort with STARTTLSInjection."""
    server = scripted(starttls_injection(injected=injected))
    conn = SyncConnection("localhost", server.port, tls=StartTLS(), timeouts=Timeouts.all(3))
    open_expecting(conn, STARTTLSInjection)
    server.stop()
    received = bytes(server.peers[0].received)
    assert received.upper().split(b"STARTTLS", 1)[1] == b"\r\n"  # nothing after STARTTLS


def test_capabilities_before_tls_are_forgotten(
    scripted: Callable[..., ScriptedServer], tls: TLSCertificates
) -> None:
    """After STARTTLS the client uses only the second EHLO's capabilities (RFC 3207 4.2)."""

    async def intercept(peer: ScriptedPeer, line: bytes) -> bool:
        if line.upper().startswith(b"EHLO") and not peer.tls:
            await peer.send(b"250-scripted.test\r\n250-X-PRE-TLS-ONLY\r\n250 STARTTLS\r\n")
            return True
        return False

    server = scripted(EsmtpScript(tls=tls.server_context, intercept=intercept))
    with SyncConnection("localhost", server.port, tls=StartTLS(context=tls.client_context)) as conn:
        assert not conn.extensions.has("X-PRE-TLS-ONLY")
        assert conn.extensions.pipelining  # learnt from the post-TLS EHLO


def test_opportunistic_downgrade_never_sends_auth(scripted: Callable[..., ScriptedServer]) -> None:
    """Opportunistic plus a 454 goes on in plaintext, but credentials are not sent."""

    async def refuse(peer: ScriptedPeer) -> None:
        await peer.send(b"454 4.7.0 TLS not available\r\n")

    server = scripted(_intercepting(refuse))
    conn = SyncConnection(
        "localhost", server.port, tls=Opportunistic(), credentials=Password("u", "p4ssw0rd-x")
    )
    open_expecting(conn, InsecureAuthRefused)
    server.stop()
    assert nothing_sensitive_sent(bytes(server.peers[0].received))


# --- REQUIRETLS (RFC 8689) ------------------------------------------------------------------


def test_requiretls_not_offered_fails_before_mail(
    starttls_server: RecordingServer, tls: TLSCertificates
) -> None:
    """REQUIRETLS asked for but not advertised: ExtensionNotSupported, no MAIL written."""
    with SyncConnection(
        "localhost", starttls_server.port, tls=StartTLS(context=tls.client_context)
    ) as conn:
        with pytest.raises(ExtensionNotSupported, match="REQUIRETLS"):
            conn.send(
                MESSAGE, sender="a@example.test", recipients=["b@example.test"], requiretls=True
            )
        assert conn.is_usable
    assert not any(c.startswith("MAIL") for c in starttls_server.commands)


def test_requiretls_offered_over_tls_is_sent(
    recording_server: Callable[..., RecordingServer], tls: TLSCertificates
) -> None:
    """Over TLS with REQUIRETLS advertised, MAIL carries the REQUIRETLS parameter."""
    server = recording_server(tls_context=tls.server_context, extensions=["REQUIRETLS"])
    conn = SyncConnection("localhost", server.port, tls=StartTLS(context=tls.client_context))
    send_one(conn, requiretls=True)
    assert "REQUIRETLS" in server.wait_for(1)[0].mail_options


def test_requiretls_over_plaintext_fails_before_mail(
    recording_server: Callable[..., RecordingServer],
) -> None:
    """REQUIRETLS advertised on a plaintext session is still refused before MAIL."""
    server = recording_server(extensions=["REQUIRETLS"])
    with (
        SyncConnection("127.0.0.1", server.port, tls=Opportunistic()) as conn,
        pytest.raises(ExtensionNotSupported),
    ):
        conn.send(MESSAGE, sender="a@example.test", recipients=["b@example.test"], requiretls=True)
    assert not any(c.startswith("MAIL") for c in server.commands)


# --- port / TLS confusion -------------------------------------------------------------------


def test_implicit_tls_on_a_starttls_port_is_detected_fast(smtp_server: RecordingServer) -> None:
    """ImplicitTLS against a plaintext port fails at once with TLSPortMismatch naming the fix."""
    conn = SyncConnection("localhost", smtp_server.port, tls=ImplicitTLS())
    started = time.monotonic()
    error = open_expecting(conn, TLSPortMismatch)
    assert time.monotonic() - started < 2
    assert "StartTLS()" in str(error)


def test_starttls_on_an_implicit_port_names_the_fix(
    smtps_server: RecordingServer, tls: TLSCertificates
) -> None:
    """StartTLS against an implicit-TLS port ends at the greeting deadline, naming ImplicitTLS."""
    timeouts = Timeouts(connect=3, greeting=0.5, command=3)
    conn = SyncConnection(
        "localhost", smtps_server.port, tls=StartTLS(context=tls.client_context), timeouts=timeouts
    )
    started = time.monotonic()
    error = open_expecting(conn, GreetingTimeout)
    assert time.monotonic() - started < 2
    assert "ImplicitTLS()" in str(error)


# --- the example ----------------------------------------------------------------------------


def test_custom_ca_example_runs() -> None:
    """examples/custom_ca.py exits 0 within its time budget."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-W", "error", str(ROOT / "examples" / "custom_ca.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 5
