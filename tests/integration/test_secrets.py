"""No credential in logs, traces, transcripts, exception messages or reprs (THREATS S8).

Every mechanism runs against a real server with DEBUG logging of ``mailtransfer`` captured,
on success and on failure. Then every surface a secret could leak through is searched for
the password, ``base64(password)``, ``base64("\\0user\\0password")``, the token, the exact
base64 lines the client put on the wire during AUTH (read back from the server), and the
OAuth2 initial responses.
"""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import logging
import ssl
import sys
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from mailtransfer import AsyncConnection, StartTLS, SyncConnection, Timeouts
from mailtransfer.auth import AuthExchange, OAuth2, Password, choose
from mailtransfer.errors import BadCredentials, MailTransferError
from mailtransfer.proxy import Proxy
from mailtransfer.testing import RecordingServer, ScriptedServer, TLSCertificates

USER = "alice@example.test"
PASSWORD = "Tr0ub4dor&3-very-secret"
TOKEN = "ya29.Very-Secret-Token_0123456789"
STALE = "ya29.Stale-Secret-Token_9876543210"
MESSAGE = b"From: a@example.test\r\nTo: b@example.test\r\nSubject: hi\r\n\r\nHello\r\n"


def _load_auth_servers() -> ModuleType:
    # The SASL test servers live in test_smtp_auth.py next to this file. Load that file under a
    # private name: "test_auth" also names a unit-test module, and pytest collects files, so
    # nothing runs twice.
    name = "_mailtransfer_auth_servers"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, Path(__file__).with_name("test_smtp_auth.py")
        )
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


servers = _load_auth_servers()


def b64(text: str) -> str:
    """Base64 of UTF-8 text."""
    return base64.b64encode(text.encode()).decode()


FORBIDDEN = [
    PASSWORD,
    b64(PASSWORD),
    b64(f"\0{USER}\0{PASSWORD}"),
    TOKEN,
    STALE,
    b64(f"user={USER}\x01auth=Bearer {TOKEN}\x01\x01"),
    b64(f"n,a={USER},\x01auth=Bearer {TOKEN}\x01\x01"),
]


def wire_auth_lines(received: bytes) -> list[str]:
    """The base64 lines the client sent during AUTH: initial responses and continuations."""
    lines = received.decode("latin-1").split("\r\n")
    found: list[str] = []
    in_auth = False
    for line in lines:
        words = line.split()
        if words and words[0].upper() == "AUTH":
            in_auth = True
            if len(words) > 2 and words[2] != "=":
                found.append(words[2])
        elif in_auth and words and words[0].upper() in ("MAIL", "QUIT", "EHLO", "NOOP", "RSET"):
            in_auth = False
        elif in_auth and line not in ("", "*"):
            found.append(line)
    return found


def surfaces(
    caplog: pytest.LogCaptureFixture,
    objects: Iterable[object] = (),
    errors: Iterable[BaseException] = (),
    transcripts: Iterable[Iterable[str]] = (),
) -> str:
    """Everything a secret must not reach, as one text."""
    parts = [r.getMessage() for r in caplog.records if r.name.startswith("mailtransfer")]
    parts.append(caplog.text)
    for obj in objects:
        parts += [repr(obj), str(obj)]
    for error in errors:
        parts += [str(error), repr(error), "".join(traceback.format_exception(error))]
        parts += list(getattr(error, "transcript", ()))
    for transcript in transcripts:
        parts += list(transcript)
    return "\n".join(parts)


def secrets_of(password: str) -> list[str]:
    """The forms of ``password`` that must never be shown (besides FORBIDDEN)."""
    return [password, b64(password), b64(f"\0{USER}\0{password}")]


def assert_clean(text: str, wire: Iterable[str] = ()) -> None:
    """None of the secrets, nor any AUTH line from the wire, appears in ``text``."""
    for secret in [*FORBIDDEN, *wire]:
        assert secret not in text, f"secret-bearing value of {len(secret)} chars leaked"


@pytest.fixture
def debug_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """DEBUG logging for 'mailtransfer', captured (so the protocol trace is on)."""
    caplog.set_level(logging.DEBUG, logger="mailtransfer")
    return caplog


def _tls12(tls: TLSCertificates) -> ssl.SSLContext:
    context = tls.server_context_for("localhost", "127.0.0.1")
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    return context


def _run_sync(conn: SyncConnection) -> MailTransferError | None:
    try:
        with conn:
            conn.send(MESSAGE, sender="a@example.test", recipients=["b@example.test"])
    except MailTransferError as error:
        return error
    finally:
        conn.close()
    return None


MECHANISMS = [
    ("PLAIN", True),
    ("PLAIN", False),
    ("LOGIN", True),
    ("LOGIN", False),
    ("CRAM-MD5", True),
    ("CRAM-MD5", False),
    ("SCRAM-SHA-1", True),
    ("SCRAM-SHA-256", True),
    ("SCRAM-SHA-256", False),
    ("SCRAM-SHA-256-PLUS", True),
    ("XOAUTH2", True),
    ("XOAUTH2", False),
    ("OAUTHBEARER", True),
    ("OAUTHBEARER", False),
]


@pytest.mark.parametrize(
    "case", MECHANISMS, ids=[f"{m}-{'ok' if s else 'refused'}" for m, s in MECHANISMS]
)
def test_no_secret_leaks(
    case: tuple[str, bool],
    debug_log: pytest.LogCaptureFixture,
    recording_server: Callable[..., RecordingServer],
    scripted: Callable[..., ScriptedServer],
    tls: TLSCertificates,
) -> None:
    """Each mechanism, accepted or refused, leaves no secret in any log, trace or message."""
    mechanism, succeeds = case
    oauth = mechanism in ("XOAUTH2", "OAUTHBEARER")
    credentials: Any
    if oauth:
        provider = servers.Provider(TOKEN) if succeeds else servers.Provider(STALE, TOKEN + "x")
        credentials = OAuth2(USER, provider)
    else:
        credentials = Password(USER, PASSWORD if succeeds else PASSWORD + "-wrong")
    if mechanism in ("PLAIN", "LOGIN"):
        server: Any = recording_server(tls_context=tls.server_context, auth={USER: PASSWORD})
        wire: bytes | None = None
    else:
        sasl = servers.SaslServer(users={USER: PASSWORD}, tokens={TOKEN})
        context = _tls12(tls) if mechanism.endswith("-PLUS") else tls.server_context
        server = scripted(servers.sasl_script(mechanism, sasl, context))
    conn = SyncConnection(
        "localhost",
        server.port,
        tls=StartTLS(context=tls.client_context),
        credentials=credentials,
        mechanisms=[mechanism],
        timeouts=Timeouts.all(10),
    )
    error = _run_sync(conn)
    assert (error is None) is succeeds, error
    if not succeeds:
        assert isinstance(error, BadCredentials)
    if isinstance(server, ScriptedServer):
        server.stop()
        wire = bytes(server.peers[0].received)
    text = surfaces(
        debug_log,
        objects=[conn, conn.protocol, credentials, conn.tls],
        errors=[error] if error else [],
        transcripts=[conn.transcript()],
    )
    assert f"AUTH {mechanism}" in text  # the trace was really captured
    lines = wire_auth_lines(wire) if wire is not None else []
    if wire is not None:
        assert lines  # the exchange really carried secrets to look for
    used = [] if oauth else secrets_of(credentials.password)
    assert_clean(text, [*lines, *used])


def test_no_secret_leaks_async_oauth_refresh(
    debug_log: pytest.LogCaptureFixture,
    scripted: Callable[..., ScriptedServer],
    tls: TLSCertificates,
) -> None:
    """The async token-refresh path (rejected, then accepted) leaks neither token."""
    sasl = servers.SaslServer(tokens={TOKEN})
    server = scripted(servers.sasl_script("XOAUTH2", sasl, tls.server_context))
    provider = servers.AsyncProvider(STALE, TOKEN)

    async def main() -> AsyncConnection:
        conn = AsyncConnection(
            "localhost",
            server.port,
            tls=StartTLS(context=tls.client_context),
            credentials=OAuth2(USER, provider),
        )
        async with conn:
            await conn.send(MESSAGE, sender="a@example.test", recipients=["b@example.test"])
        return conn

    conn = asyncio.run(main())
    server.stop()
    assert sasl.tokens_seen == [STALE, TOKEN]
    text = surfaces(debug_log, objects=[conn, conn.protocol], transcripts=[conn.transcript()])
    assert "AUTH XOAUTH2 ****" in text
    assert_clean(text, wire_auth_lines(bytes(server.peers[0].received)))


def test_no_secret_in_mechanism_and_exchange_reprs() -> None:
    """Mechanisms, exchanges and the lines they produce show no secret in their reprs."""
    password = Password(USER, PASSWORD)
    token = OAuth2.static(USER, TOKEN)
    offered = ["PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-256", "XOAUTH2", "OAUTHBEARER"]
    shown: list[str] = []
    for name in offered:
        credentials = token if "OAUTH" in name else password
        mechanism = choose(offered, credentials, tls_active=True, preferred=[name])
        exchange = AuthExchange(mechanism)
        line = exchange.start()
        shown += [repr(mechanism), repr(exchange), repr(line), line.redacted]
    shown += [repr(password), str(password), repr(token), str(token)]
    assert_clean("\n".join(shown))


def test_no_proxy_password_in_reprs_or_errors() -> None:
    """The proxy password shows in no repr, str or parse error."""
    proxy = Proxy.parse(f"socks5://alice:{PASSWORD.replace('&', '%26')}@proxy.example:1080")
    assert proxy.password == PASSWORD
    errors = []
    for url in (
        f"socks5://alice:{PASSWORD}@proxy.example:99999",
        f"https://alice:{PASSWORD}@proxy.example:443",
        f"http://alice:{PASSWORD}@proxy.example",
    ):
        with pytest.raises(MailTransferError) as info:
            Proxy.parse(url)
        errors.append(info.value)
    assert_clean("\n".join([repr(proxy), str(proxy), *(str(e) for e in errors)]))
