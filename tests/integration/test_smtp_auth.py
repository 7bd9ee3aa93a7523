"""SMTP AUTH against real servers: every built-in mechanism, token refresh, and the refusals.

PLAIN and LOGIN run against :class:`RecordingServer` (aiosmtpd checks the password). The
other mechanisms run against :class:`SaslServer`, a server side written here from the RFCs
(CRAM-MD5: RFC 2195; SCRAM: RFC 5802/7677 with tls-unique, RFC 5929; XOAUTH2: Google's
spec; OAUTHBEARER: RFC 7628), which *verifies* what the client sends: the CRAM digest, the
SCRAM client proof and channel binding, and the bearer token.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import hashlib
import hmac
import json
import os
import secrets
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mailtransfer import AsyncConnection, ImplicitTLS, NoTLS, StartTLS, SyncConnection, Timeouts
from mailtransfer.auth import OAuth2, Password, SASLError, ServerVerificationFailed
from mailtransfer.errors import (
    BadCredentials,
    InsecureAuthRefused,
    NoSuitableMechanism,
    TLSRequired,
    UsageError,
)
from mailtransfer.testing import (
    DEFAULT_EXTENSIONS,
    EsmtpScript,
    RecordingServer,
    ScriptedPeer,
    ScriptedServer,
    TLSCertificates,
    endless_auth_challenge,
)

MESSAGE = b"From: a@example.test\r\nTo: b@example.test\r\nSubject: hi\r\n\r\nHello\r\n"
USER = "alice@example.test"
PASSWORD = "c0rrect-h0rse-battery"
ROOT = Path(__file__).resolve().parents[2]

# --- a server side for the mechanisms RecordingServer lacks --------------------------------


def b64(data: bytes) -> bytes:
    """Base64 without line breaks."""
    return base64.b64encode(data)


class SaslServer:
    """An ``EsmtpScript`` intercept that serves AUTH for CRAM-MD5, SCRAM-*, XOAUTH2, OAUTHBEARER.

    Args:
        users: user name to password, for CRAM-MD5 and SCRAM.
        tokens: the bearer tokens that are currently valid.
        forge_signature: send a wrong SCRAM server signature (an impostor).
        iterations: the SCRAM iteration count to ask for.

    Attributes:
        logins: ``(mechanism, user)`` for every successful AUTH.
        tokens_seen: every bearer token the client presented, in order.
        gs2_flags: the GS2 channel-binding flag of each SCRAM attempt (``n``, ``y``, ``p=...``).
        oauth_answers: what the client answered to each OAuth error challenge.
        cancelled: how many exchanges the client cancelled with ``*``.
    """

    def __init__(
        self,
        *,
        users: dict[str, str] | None = None,
        tokens: set[str] | None = None,
        forge_signature: bool = False,
        iterations: int = 4096,
    ) -> None:
        self.users = users or {}
        self.tokens = tokens or set()
        self.forge_signature = forge_signature
        self.iterations = iterations
        self.logins: list[tuple[str, str]] = []
        self.tokens_seen: list[str] = []
        self.gs2_flags: list[str] = []
        self.oauth_answers: list[bytes] = []
        self.cancelled = 0

    async def __call__(self, peer: ScriptedPeer, line: bytes) -> bool:
        """Take over AUTH lines; leave every other line to the ESMTP script."""
        parts = line.split()
        if not parts or parts[0].upper() != b"AUTH":
            return False
        mechanism = parts[1].decode().upper()
        initial = None
        if len(parts) > 2:
            initial = b"" if parts[2] == b"=" else base64.b64decode(parts[2], validate=True)
        if mechanism == "CRAM-MD5":
            await self._cram(peer)
        elif mechanism.startswith("SCRAM-"):
            await self._scram(peer, mechanism, initial)
        elif mechanism in ("XOAUTH2", "OAUTHBEARER"):
            await self._oauth(peer, mechanism, initial)
        else:
            await peer.send(b"504 5.5.4 Unrecognized authentication type\r\n")
        return True

    async def _ask(self, peer: ScriptedPeer, challenge: bytes) -> bytes | None:
        """Send a 334 challenge; return the decoded answer, or None after a '*' cancel."""
        await peer.send(b"334 " + b64(challenge) + b"\r\n")
        answer = (await peer.readline()).strip()
        if answer == b"*":
            self.cancelled += 1
            await peer.send(b"501 5.7.0 Authentication cancelled\r\n")
            return None
        return base64.b64decode(answer, validate=True)

    async def _ok(self, peer: ScriptedPeer, mechanism: str, user: str) -> None:
        self.logins.append((mechanism, user))
        await peer.send(b"235 2.7.0 Authentication successful\r\n")

    async def _cram(self, peer: ScriptedPeer) -> None:
        # RFC 2195 section 2: a unique timestamp challenge; the answer is user SP hex HMAC-MD5.
        challenge = f"<{secrets.token_hex(8)}.{int(time.time())}@scripted.test>".encode()
        answer = await self._ask(peer, challenge)
        if answer is None:
            return
        user, _, digest = answer.decode().rpartition(" ")
        expected = hmac.new(self.users.get(user, "").encode(), challenge, "md5").hexdigest()
        if user in self.users and hmac.compare_digest(digest, expected):
            await self._ok(peer, "CRAM-MD5", user)
        else:
            await peer.send(b"535 5.7.8 Authentication credentials invalid\r\n")

    async def _scram(self, peer: ScriptedPeer, mechanism: str, initial: bytes | None) -> None:
        name = "sha256" if "SHA-256" in mechanism else "sha1"
        first = initial if initial is not None else await self._ask(peer, b"")
        if first is None:
            return
        # RFC 5802 section 7: gs2-header = gs2-cbind-flag "," [authzid] ","
        flag, authzid, bare = first.split(b",", 2)
        self.gs2_flags.append(flag.decode())
        attributes = dict(part.split(b"=", 1) for part in bare.split(b","))
        user = attributes[b"n"].decode().replace("=2C", ",").replace("=3D", "=")
        nonce = attributes[b"r"] + secrets.token_urlsafe(18).encode()
        salt = os.urandom(16)
        server_first = b"r=" + nonce + b",s=" + b64(salt) + b",i=" + str(self.iterations).encode()
        final = await self._ask(peer, server_first)
        if final is None:
            return
        without_proof, _, proof = final.rpartition(b",p=")
        final_attributes = dict(part.split(b"=", 1) for part in without_proof.split(b","))
        binding = b""
        if flag.startswith(b"p="):
            assert flag == b"p=tls-unique", flag
            binding = _server_tls_unique(peer)
        cbind_ok = final_attributes[b"c"] == b64(flag + b"," + authzid + b"," + binding)
        password = self.users.get(user, "").encode()
        salted = hashlib.pbkdf2_hmac(name, password, salt, self.iterations)
        client_key = hmac.digest(salted, b"Client Key", name)
        stored_key = hashlib.new(name, client_key).digest()
        auth_message = bare + b"," + server_first + b"," + without_proof
        signature = hmac.digest(stored_key, auth_message, name)
        recovered = bytes(a ^ b for a, b in zip(base64.b64decode(proof), signature, strict=False))
        proof_ok = hmac.compare_digest(hashlib.new(name, recovered).digest(), stored_key)
        if not (cbind_ok and proof_ok and final_attributes[b"r"] == nonce and user in self.users):
            await peer.send(b"535 5.7.8 Authentication credentials invalid\r\n")
            return
        server_key = hmac.digest(salted, b"Server Key", name)
        server_signature = hmac.digest(server_key, auth_message, name)
        if self.forge_signature:
            server_signature = bytes(len(server_signature))
        answer = await self._ask(peer, b"v=" + b64(server_signature))
        if answer is not None:
            await self._ok(peer, mechanism, user)

    async def _oauth(self, peer: ScriptedPeer, mechanism: str, initial: bytes | None) -> None:
        message = initial if initial is not None else await self._ask(peer, b"")
        if message is None:
            return
        if mechanism == "XOAUTH2":
            # user=<user> ^A auth=Bearer <token> ^A ^A
            fields = dict(f.split(b"=", 1) for f in message.split(b"\x01") if f)
            user = fields[b"user"].decode()
        else:
            # RFC 7628 section 3.1: gs2-header ^A *(key=value ^A) ^A
            header, _, rest = message.partition(b"\x01")
            fields = dict(f.split(b"=", 1) for f in rest.split(b"\x01") if f)
            user = header.split(b",")[1].removeprefix(b"a=").decode()
        token = fields[b"auth"].removeprefix(b"Bearer ").decode()
        self.tokens_seen.append(token)
        if token in self.tokens:
            await self._ok(peer, mechanism, user)
            return
        if mechanism == "XOAUTH2":
            error = {"status": "401", "schemes": "bearer", "scope": "https://mail.example/"}
        else:
            error = {"status": "invalid_token", "scope": "mail", "openid-configuration": "x"}
        answer = await self._ask(peer, json.dumps(error).encode())
        if answer is not None:
            self.oauth_answers.append(answer)
            await peer.send(b"535 5.7.8 Username and Password not accepted\r\n")


def _server_tls_unique(peer: ScriptedPeer) -> bytes:
    # ScriptedPeer has no public accessor for its SSLObject; the channel binding needs it.
    transport = peer._conn.transport
    assert transport is not None
    binding = transport.get_extra_info("ssl_object").get_channel_binding("tls-unique")
    assert binding
    return bytes(binding)


def sasl_script(mechanisms: str, sasl: SaslServer, context: ssl.SSLContext | None) -> EsmtpScript:
    """An ESMTP server advertising ``AUTH <mechanisms>`` whose AUTH is ``sasl``."""
    extensions = (*DEFAULT_EXTENSIONS, f"AUTH {mechanisms}")
    return EsmtpScript(extensions=extensions, tls=context, intercept=sasl)


def tls12_context(tls: TLSCertificates) -> ssl.SSLContext:
    """A server context capped at TLS 1.2, where tls-unique is defined (RFC 9266)."""
    context = tls.server_context_for("localhost", "127.0.0.1")
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    return context


class Provider:
    """A token provider that hands out the next token of a list and counts the calls."""

    def __init__(self, *tokens: str) -> None:
        self.tokens = list(tokens)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        return self.tokens[min(self.calls, len(self.tokens)) - 1]


class AsyncProvider(Provider):
    """The same, as an async callable."""

    async def __call__(self) -> str:  # type: ignore[override]
        await asyncio.sleep(0)
        return Provider.__call__(self)


def connect(port: int, certs: TLSCertificates, **options: Any) -> SyncConnection:
    """A SyncConnection to localhost, by default over verified STARTTLS."""
    options.setdefault("tls", StartTLS(context=certs.client_context))
    return SyncConnection("localhost", port, timeouts=Timeouts.all(10), **options)


def open_expecting(conn: SyncConnection, error: type[BaseException]) -> BaseException:
    """Open ``conn`` expecting ``error``; always close the socket afterwards."""
    try:
        with pytest.raises(error) as info:
            conn.open()
    finally:
        conn.close()
    return info.value


def send_one(conn: SyncConnection) -> None:
    """Open, send one message, QUIT."""
    with conn:
        conn.send(MESSAGE, sender="a@example.test", recipients=["b@example.test"])


# --- PLAIN and LOGIN against aiosmtpd -------------------------------------------------------


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
@pytest.mark.parametrize("transport", ["starttls", "implicit"])
def test_plain_and_login_sync(
    mechanism: str,
    transport: str,
    recording_server: Callable[..., RecordingServer],
    tls: TLSCertificates,
) -> None:
    """SyncConnection logs in with the named mechanism over STARTTLS and implicit TLS."""
    users = {USER: PASSWORD}
    if transport == "starttls":
        server = recording_server(tls_context=tls.server_context, auth=users, require_auth=True)
        policy: Any = StartTLS(context=tls.client_context)
    else:
        # aiosmtpd counts only STARTTLS as TLS for AUTH: the whole session is TLS here anyway.
        server = recording_server(
            implicit_tls=tls.server_context, auth=users, require_auth=True, auth_require_tls=False
        )
        policy = ImplicitTLS(context=tls.client_context)
    conn = connect(
        server.port, tls, tls=policy, credentials=Password(USER, PASSWORD), mechanisms=[mechanism]
    )
    send_one(conn)
    received = server.wait_for(1)
    assert (received[0].auth_user, received[0].tls) == (USER, True)
    assert f"AUTH {mechanism}" in " ".join(server.commands)


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
@pytest.mark.parametrize("transport", ["starttls", "implicit"])
def test_plain_and_login_async(
    mechanism: str,
    transport: str,
    recording_server: Callable[..., RecordingServer],
    tls: TLSCertificates,
) -> None:
    """AsyncConnection logs in with the named mechanism over STARTTLS and implicit TLS."""
    users = {USER: PASSWORD}
    if transport == "starttls":
        server = recording_server(tls_context=tls.server_context, auth=users, require_auth=True)
        policy: Any = StartTLS(context=tls.client_context)
    else:
        # aiosmtpd counts only STARTTLS as TLS for AUTH: the whole session is TLS here anyway.
        server = recording_server(
            implicit_tls=tls.server_context, auth=users, require_auth=True, auth_require_tls=False
        )
        policy = ImplicitTLS(context=tls.client_context)

    async def main() -> None:
        async with AsyncConnection(
            "localhost",
            server.port,
            tls=policy,
            credentials=Password(USER, PASSWORD),
            mechanisms=[mechanism],
            timeouts=Timeouts.all(10),
        ) as conn:
            await conn.send(MESSAGE, sender="a@example.test", recipients=["b@example.test"])

    asyncio.run(main())
    assert server.wait_for(1)[0].auth_user == USER


def test_strongest_offered_mechanism_is_chosen(
    recording_server: Callable[..., RecordingServer], tls: TLSCertificates
) -> None:
    """Without a named mechanism, PLAIN is preferred to LOGIN (strongest first)."""
    server = recording_server(tls_context=tls.server_context, auth={USER: PASSWORD})
    send_one(connect(server.port, tls, credentials=Password(USER, PASSWORD)))
    assert [c for c in server.commands if c.startswith("AUTH")] == ["AUTH PLAIN ****"]


def test_bad_password_is_bad_credentials(
    recording_server: Callable[..., RecordingServer], tls: TLSCertificates
) -> None:
    """A refused password raises BadCredentials (535), without the password in the message."""
    server = recording_server(tls_context=tls.server_context, auth={USER: PASSWORD})
    conn = connect(server.port, tls, credentials=Password(USER, "wrong-password"))
    error = open_expecting(conn, BadCredentials)
    assert error.reply is not None
    assert error.reply.code == 535
    assert "wrong-password" not in str(error)


def test_bad_password_async_is_bad_credentials(
    recording_server: Callable[..., RecordingServer], tls: TLSCertificates
) -> None:
    """AsyncConnection reports a refused password as BadCredentials too."""
    server = recording_server(tls_context=tls.server_context, auth={USER: PASSWORD})

    async def main() -> None:
        conn = AsyncConnection(
            "localhost",
            server.port,
            tls=StartTLS(context=tls.client_context),
            credentials=Password(USER, "wrong-password"),
        )
        try:
            with pytest.raises(BadCredentials):
                await conn.open()
        finally:
            await conn.aclose()

    asyncio.run(main())


# --- CRAM-MD5 and SCRAM -----------------------------------------------------------------------


def test_cram_md5(scripted: Callable[..., ScriptedServer], tls: TLSCertificates) -> None:
    """CRAM-MD5's keyed digest is accepted by a server that checks it."""
    sasl = SaslServer(users={USER: PASSWORD})
    server = scripted(sasl_script("CRAM-MD5", sasl, tls.server_context))
    send_one(connect(server.port, tls, credentials=Password(USER, PASSWORD)))
    assert sasl.logins == [("CRAM-MD5", USER)]


def test_cram_md5_wrong_password(
    scripted: Callable[..., ScriptedServer], tls: TLSCertificates
) -> None:
    """A CRAM-MD5 digest made with the wrong password is refused: BadCredentials."""
    sasl = SaslServer(users={USER: PASSWORD})
    server = scripted(sasl_script("CRAM-MD5", sasl, tls.server_context))
    open_expecting(
        connect(server.port, tls, credentials=Password(USER, "nope-nope")), BadCredentials
    )
    assert sasl.logins == []


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-1"])
def test_scram_proof_verified_by_the_server(
    mechanism: str, scripted: Callable[..., ScriptedServer], tls: TLSCertificates
) -> None:
    """The server recomputes the SCRAM client proof from the password and accepts it."""
    sasl = SaslServer(users={USER: PASSWORD})
    server = scripted(sasl_script(mechanism, sasl, tls.server_context))
    send_one(connect(server.port, tls, credentials=Password(USER, PASSWORD)))
    assert sasl.logins == [(mechanism, USER)]


def test_scram_is_preferred_over_everything_else(
    scripted: Callable[..., ScriptedServer], tls: TLSCertificates
) -> None:
    """Offered everything, the client picks SCRAM-SHA-256."""
    sasl = SaslServer(users={USER: PASSWORD})
    offer = "LOGIN PLAIN CRAM-MD5 SCRAM-SHA-1 SCRAM-SHA-256"
    server = scripted(sasl_script(offer, sasl, tls.server_context))
    send_one(connect(server.port, tls, credentials=Password(USER, PASSWORD)))
    assert sasl.logins == [("SCRAM-SHA-256", USER)]


def test_named_mechanism_overrides_strength(
    scripted: Callable[..., ScriptedServer], tls: TLSCertificates
) -> None:
    """mechanisms=['CRAM-MD5'] uses CRAM-MD5 although SCRAM is offered."""
    sasl = SaslServer(users={USER: PASSWORD})
    server = scripted(sasl_script("CRAM-MD5 SCRAM-SHA-256", sasl, tls.server_context))
    send_one(
        connect(server.port, tls, credentials=Password(USER, PASSWORD), mechanisms=["CRAM-MD5"])
    )
    assert sasl.logins == [("CRAM-MD5", USER)]


def test_scram_wrong_password(
    scripted: Callable[..., ScriptedServer], tls: TLSCertificates
) -> None:
    """A SCRAM proof made with the wrong password is refused: BadCredentials."""
    sasl = SaslServer(users={USER: PASSWORD})
    server = scripted(sasl_script("SCRAM-SHA-256", sasl, tls.server_context))
    open_expecting(
        connect(server.port, tls, credentials=Password(USER, "nope-nope")), BadCredentials
    )


def test_scram_impostor_server_is_detected(
    scripted: Callable[..., ScriptedServer], tls: TLSCertificates
) -> None:
    """A server whose signature is wrong is not believed: ServerVerificationFailed, cancelled."""
    sasl = SaslServer(users={USER: PASSWORD}, forge_signature=True)
    server = scripted(sasl_script("SCRAM-SHA-256", sasl, tls.server_context))
    open_expecting(
        connect(server.port, tls, credentials=Password(USER, PASSWORD)), ServerVerificationFailed
    )
    assert sasl.cancelled == 1
    assert sasl.logins == []


def test_scram_plus_binds_to_tls_unique(
    scripted: Callable[..., ScriptedServer], tls: TLSCertificates
) -> None:
    """Over TLS 1.2, SCRAM-SHA-256-PLUS is chosen and its tls-unique binding matches."""
    sasl = SaslServer(users={USER: PASSWORD})
    offer = "SCRAM-SHA-256 SCRAM-SHA-256-PLUS"
    server = scripted(sasl_script(offer, sasl, tls12_context(tls)))
    send_one(connect(server.port, tls, credentials=Password(USER, PASSWORD)))
    assert sasl.gs2_flags == ["p=tls-unique"]
    assert sasl.logins == [("SCRAM-SHA-256-PLUS", USER)]


def test_scram_plus_stripped_from_the_offer_is_signalled(
    scripted: Callable[..., ScriptedServer], tls: TLSCertificates
) -> None:
    """With a binding available but no -PLUS offered, the client says 'y' (RFC 5802 section 6)."""
    sasl = SaslServer(users={USER: PASSWORD})
    server = scripted(sasl_script("SCRAM-SHA-256", sasl, tls12_context(tls)))
    send_one(connect(server.port, tls, credentials=Password(USER, PASSWORD)))
    assert sasl.gs2_flags == ["y"]


def test_endless_challenges_end_in_sasl_error(scripted: Callable[..., ScriptedServer]) -> None:
    """A server that never stops sending 334 is cut off after a bounded number of rounds."""
    server = scripted(endless_auth_challenge())
    conn = SyncConnection(
        "127.0.0.1",
        server.port,
        tls=NoTLS(),
        credentials=Password(USER, PASSWORD),
        mechanisms=["LOGIN"],
        allow_insecure_auth=True,
        timeouts=Timeouts.all(5),
    )
    started = time.monotonic()
    open_expecting(conn, SASLError)
    assert time.monotonic() - started < 5


# --- XOAUTH2 and OAUTHBEARER, and the token refresh ------------------------------------------


@pytest.mark.parametrize("mechanism", ["XOAUTH2", "OAUTHBEARER"])
def test_oauth_token_accepted(
    mechanism: str, scripted: Callable[..., ScriptedServer], tls: TLSCertificates
) -> None:
    """The bearer token reaches the server in the mechanism's format and is accepted."""
    sasl = SaslServer(tokens={"fresh-token-1"})
    server = scripted(sasl_script(mechanism, sasl, tls.server_context))
    provider = Provider("fresh-token-1")
    send_one(connect(server.port, tls, credentials=OAuth2(USER, provider)))
    assert sasl.logins == [(mechanism, USER)]
    assert provider.calls == 1


@pytest.mark.parametrize("mechanism", ["XOAUTH2", "OAUTHBEARER"])
def test_expired_token_is_refreshed_once_sync(
    mechanism: str, scripted: Callable[..., ScriptedServer], tls: TLSCertificates
) -> None:
    """After the JSON error challenge, the sync provider is called again and the retry succeeds."""
    sasl = SaslServer(tokens={"fresh-token-2"})
    server = scripted(sasl_script(mechanism, sasl, tls.server_context))
    provider = Provider("expired-token-1", "fresh-token-2")
    send_one(connect(server.port, tls, credentials=OAuth2(USER, provider)))
    assert provider.calls == 2
    assert sasl.tokens_seen == ["expired-token-1", "fresh-token-2"]
    assert sasl.oauth_answers == [b"" if mechanism == "XOAUTH2" else b"\x01"]


@pytest.mark.parametrize("mechanism", ["XOAUTH2", "OAUTHBEARER"])
@pytest.mark.parametrize("kind", [Provider, AsyncProvider])
def test_expired_token_is_refreshed_once_async(
    mechanism: str,
    kind: type[Provider],
    scripted: Callable[..., ScriptedServer],
    tls: TLSCertificates,
) -> None:
    """AsyncConnection refreshes a rejected token once, with a sync or an async provider."""
    sasl = SaslServer(tokens={"fresh-token-2"})
    server = scripted(sasl_script(mechanism, sasl, tls.server_context))
    provider = kind("expired-token-1", "fresh-token-2")

    async def main() -> None:
        async with AsyncConnection(
            "localhost",
            server.port,
            tls=StartTLS(context=tls.client_context),
            credentials=OAuth2(USER, provider),
            timeouts=Timeouts.all(10),
        ) as conn:
            await conn.send(MESSAGE, sender="a@example.test", recipients=["b@example.test"])

    asyncio.run(main())
    assert provider.calls == 2
    assert sasl.logins == [(mechanism, USER)]


@pytest.mark.parametrize("mechanism", ["XOAUTH2", "OAUTHBEARER"])
def test_second_rejection_fails_after_exactly_two_calls_sync(
    mechanism: str, scripted: Callable[..., ScriptedServer], tls: TLSCertificates
) -> None:
    """Two rejected tokens end in BadCredentials; the provider was called exactly twice."""
    sasl = SaslServer(tokens=set())
    server = scripted(sasl_script(mechanism, sasl, tls.server_context))
    provider = Provider("expired-token-1", "expired-token-2")
    open_expecting(connect(server.port, tls, credentials=OAuth2(USER, provider)), BadCredentials)
    assert provider.calls == 2
    assert sasl.tokens_seen == ["expired-token-1", "expired-token-2"]


def test_second_rejection_fails_after_exactly_two_calls_async(
    scripted: Callable[..., ScriptedServer], tls: TLSCertificates
) -> None:
    """With an async provider, two rejected tokens also end in BadCredentials after two calls."""
    sasl = SaslServer(tokens=set())
    server = scripted(sasl_script("OAUTHBEARER", sasl, tls.server_context))
    provider = AsyncProvider("expired-token-1", "expired-token-2")

    async def main() -> None:
        conn = AsyncConnection(
            "localhost",
            server.port,
            tls=StartTLS(context=tls.client_context),
            credentials=OAuth2(USER, provider),
        )
        try:
            with pytest.raises(BadCredentials):
                await conn.open()
        finally:
            await conn.aclose()

    asyncio.run(main())
    assert provider.calls == 2


def test_async_provider_on_sync_connection_is_a_usage_error(
    scripted: Callable[..., ScriptedServer], tls: TLSCertificates
) -> None:
    """SyncConnection refuses an async provider before any AUTH byte, leaving no coroutine."""
    sasl = SaslServer(tokens={"t"})
    server = scripted(sasl_script("XOAUTH2", sasl, tls.server_context))
    provider = AsyncProvider("t")
    error = open_expecting(
        connect(server.port, tls, credentials=OAuth2(USER, provider)), UsageError
    )
    gc.collect()  # an un-awaited coroutine would warn here, and warnings are errors
    assert "AsyncConnection" in str(error)
    server.stop()
    assert b"AUTH" not in bytes(server.peers[0].received)


# --- the cleartext rule and what is offered ---------------------------------------------------


def test_cleartext_auth_is_refused_with_zero_auth_bytes(
    scripted: Callable[..., ScriptedServer],
) -> None:
    """Without TLS, AUTH is refused (InsecureAuthRefused) and no AUTH byte is written."""
    server = scripted(EsmtpScript(extensions=(*DEFAULT_EXTENSIONS, "AUTH PLAIN LOGIN")))
    conn = SyncConnection(
        "127.0.0.1", server.port, tls=NoTLS(), credentials=Password(USER, PASSWORD)
    )
    open_expecting(conn, InsecureAuthRefused)
    server.stop()
    assert b"AUTH" not in bytes(server.peers[0].received)
    assert PASSWORD.encode() not in bytes(server.peers[0].received)


def test_cleartext_oauth_does_not_even_fetch_a_token(
    scripted: Callable[..., ScriptedServer],
) -> None:
    """Refusing cleartext AUTH happens before the token provider is called."""
    server = scripted(EsmtpScript(extensions=(*DEFAULT_EXTENSIONS, "AUTH XOAUTH2")))
    provider = Provider("never-used")
    conn = SyncConnection("127.0.0.1", server.port, tls=NoTLS(), credentials=OAuth2(USER, provider))
    open_expecting(conn, InsecureAuthRefused)
    assert provider.calls == 0


def test_cleartext_auth_allowed_when_opted_in(scripted: Callable[..., ScriptedServer]) -> None:
    """allow_insecure_auth=True lets AUTH go over a plaintext connection."""
    script = EsmtpScript(extensions=(*DEFAULT_EXTENSIONS, "AUTH PLAIN LOGIN"))
    server = scripted(script)
    conn = SyncConnection(
        "127.0.0.1",
        server.port,
        tls=NoTLS(),
        credentials=Password(USER, PASSWORD),
        allow_insecure_auth=True,
    )
    send_one(conn)
    assert script.messages[0].auth_user == USER
    assert not script.messages[0].tls


def test_credentials_default_to_required_tls(scripted: Callable[..., ScriptedServer]) -> None:
    """With credentials and no policy, a server without STARTTLS gets TLSRequired, not AUTH."""
    server = scripted(EsmtpScript(extensions=(*DEFAULT_EXTENSIONS, "AUTH PLAIN LOGIN")))
    conn = SyncConnection("127.0.0.1", server.port, credentials=Password(USER, PASSWORD))
    open_expecting(conn, TLSRequired)
    server.stop()
    assert b"AUTH" not in bytes(server.peers[0].received)


def test_no_mechanism_for_the_credentials(
    scripted: Callable[..., ScriptedServer], tls: TLSCertificates
) -> None:
    """OAuth2 credentials against a password-only server: NoSuitableMechanism, no AUTH sent."""
    sasl = SaslServer()
    server = scripted(sasl_script("PLAIN LOGIN CRAM-MD5", sasl, tls.server_context))
    error = open_expecting(
        connect(server.port, tls, credentials=OAuth2(USER, Provider("t"))), NoSuitableMechanism
    )
    assert "CRAM-MD5" in str(error)
    server.stop()
    assert b"AUTH" not in bytes(server.peers[0].received)


# --- the example -------------------------------------------------------------------------------


def test_oauth2_example_runs() -> None:
    """examples/oauth2_token_provider.py exits 0 within its time budget."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-W", "error", str(ROOT / "examples" / "oauth2_token_provider.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 5
