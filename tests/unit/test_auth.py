"""SASL credentials, the simple mechanisms, the AUTH exchange driver, redaction and choose()."""

from __future__ import annotations

import asyncio
import base64
import json
import pickle
from contextlib import nullcontext
from functools import partial

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailtransfer import auth
from mailtransfer.auth import (
    DEFAULT_MECHANISMS,
    MAX_ROUND_TRIPS,
    AuthExchange,
    AuthLine,
    AuthState,
    ChannelBinding,
    CramMD5,
    Login,
    MechanismRegistry,
    OAuth2,
    OAuthBearer,
    Password,
    Plain,
    SASLError,
    Scram,
    ServerVerificationFailed,
    XOAuth2,
    choose,
    redact_auth_line,
)
from mailtransfer.errors import InsecureAuthRefused, NoSuitableMechanism
from mailtransfer.protocol._errors import (
    InvalidArgument,
    LocalProtocolError,
    RemoteProtocolError,
    UsageError,
)
from mailtransfer.protocol._reply import Reply


def b64(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.b64encode(raw).decode()


def challenge(data: bytes | str) -> Reply:
    return Reply(334, (b64(data),))


OK = Reply(235, ("2.7.0 Authentication successful",))
REFUSED = Reply(535, ("5.7.8 Authentication credentials invalid",))
CANCELLED = Reply(501, ("5.7.0 Authentication cancelled",))
BINDING = ChannelBinding("tls-exporter", bytes(32))


# -- credentials ------------------------------------------------------------------------------


def test_password_repr_masks_secret():
    """repr() and str() of Password show the username and a mask."""
    creds = Password("alice", "s3cret-pw")
    assert repr(creds) == "Password(username='alice', password='****')"
    assert "s3cret" not in str(creds)


def test_password_repr_shows_authzid():
    """An authzid is not secret and appears in the repr."""
    creds = Password("alice", "pw", authzid="bob")
    assert repr(creds) == "Password(username='alice', password='****', authzid='bob')"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"username": b"alice", "password": "pw"}, "username must be str, but got bytes"),
        ({"username": "", "password": "pw"}, "username must not be empty"),
        ({"username": "a", "password": ""}, "password must not be empty"),
        ({"username": "a\x00b", "password": "pw"}, "username must not contain NUL"),
        ({"username": "a", "password": "p\x00w"}, "password must not contain NUL"),
        ({"username": "a", "password": "pw", "authzid": "x\x00"}, "authzid must not contain NUL"),
    ],
)
def test_password_validation(kwargs, message):
    """Invalid fields raise InvalidArgument naming the field, never quoting the secret."""
    with pytest.raises(InvalidArgument, match=message) as info:
        Password(**kwargs)
    assert "p\x00w" not in str(info.value)


def test_oauth2_repr_masks_provider():
    """The provider is masked: a partial's repr would show what it closes over."""
    creds = OAuth2("alice", partial(str, "refresh-token-secret"))
    assert repr(creds) == "OAuth2(username='alice', token_provider=****)"
    assert "refresh" not in str(OAuth2.static("alice", "tok-secret"))
    assert "tok-secret" not in repr(OAuth2.static("alice", "tok-secret"))


def test_oauth2_static_tokens_compare_equal():
    """Two static credentials with the same token are equal values."""
    assert OAuth2.static("a", "t") == OAuth2.static("a", "t")
    assert OAuth2.static("a", "t") != OAuth2.static("a", "u")


def test_oauth2_get_token_calls_provider_each_time():
    """get_token() calls the provider on every call, so it can refresh."""
    tokens = iter(["first", "second"])
    creds = OAuth2("alice", lambda: next(tokens))
    assert (creds.get_token(), creds.get_token()) == ("first", "second")


def test_oauth2_async_provider_refused_synchronously():
    """A sync caller of an async provider gets UsageError, and no never-awaited warning."""

    async def provider() -> str:
        return "tok"

    with pytest.raises(UsageError, match="aresolve"):
        OAuth2("alice", provider).get_token()


def test_oauth2_aresolve_awaits_async_provider():
    """aresolve() awaits an async provider and returns static credentials with its token."""

    async def provider() -> str:
        return "async-token"

    resolved = asyncio.run(OAuth2("alice", provider).aresolve())
    assert resolved == OAuth2.static("alice", "async-token")
    assert resolved.get_token() == "async-token"


def test_oauth2_aresolve_accepts_sync_provider():
    """aresolve() also works with a plain provider."""
    resolved = asyncio.run(OAuth2("alice", lambda: "tok").aresolve())
    assert resolved.get_token() == "tok"


@pytest.mark.parametrize("token", ["", "has space", "tab\there", "new\nline", "caf\u00e9", 42])
def test_oauth2_bad_token_refused_without_quoting_it(token):
    """Tokens must be printable ASCII without spaces; the error never shows the token."""
    with pytest.raises(InvalidArgument, match="token") as info:
        OAuth2("alice", lambda: token).get_token()
    if isinstance(token, str) and token:
        assert token not in str(info.value)


def test_oauth2_provider_must_be_callable():
    """A non-callable provider is refused at construction."""
    with pytest.raises(InvalidArgument, match="token_provider must be callable"):
        OAuth2("alice", "not-callable")  # type: ignore[arg-type]


def test_channel_binding_repr_hides_data():
    """The binding's repr shows its kind and length only."""
    assert repr(BINDING) == "ChannelBinding(kind='tls-exporter', data=<32 bytes>)"


@pytest.mark.parametrize(
    ("kind", "data"), [("tls-foo", b"x"), ("tls-unique", b""), ("tls-unique", "x")]
)
def test_channel_binding_validation(kind, data):
    """Unknown kinds and empty or non-bytes data are refused."""
    with pytest.raises(InvalidArgument):
        ChannelBinding(kind, data)


def test_credentials_pickle_round_trip():
    """Credentials survive pickling (task queues) as equal values."""
    creds = Password("alice", "pw", authzid="bob")
    assert pickle.loads(pickle.dumps(creds)) == creds


# -- PLAIN, LOGIN, CRAM-MD5 -------------------------------------------------------------------


def test_plain_matches_rfc4954_example():
    """AUTH PLAIN with authzid/user 'test' and password '1234' is RFC 4954's example line."""
    exchange = AuthExchange(Plain(Password("test", "1234", authzid="test")))
    assert exchange.start().text == "AUTH PLAIN dGVzdAB0ZXN0ADEyMzQ="
    assert exchange.receive(OK) is None
    assert exchange.state is AuthState.SUCCEEDED


def test_plain_without_authzid_starts_with_nul():
    """PLAIN without authzid sends NUL user NUL password (RFC 4616 section 2)."""
    assert Plain(Password("tim", "tanstaaftanstaaf")).initial_response() == (
        b"\x00tim\x00tanstaaftanstaaf"
    )


@given(
    user=st.text(min_size=1).filter(lambda t: "\x00" not in t),
    password=st.text(min_size=1).filter(lambda t: "\x00" not in t),
)
def test_plain_message_splits_back_into_fields(user, password):
    """Splitting the PLAIN message on NUL gives back exactly the three fields."""
    message = Plain(Password(user, password)).initial_response()
    assert message.decode("utf-8").split("\x00") == ["", user, password]


def test_plain_refuses_a_challenge():
    """A challenge after PLAIN's initial response raises SASLError."""
    mechanism = Plain(Password("u", "p"))
    mechanism.initial_response()
    with pytest.raises(SASLError, match="PLAIN"):
        mechanism.respond(b"")


def test_login_sends_username_then_password():
    """LOGIN answers the two prompts with the username and then the password."""
    exchange = AuthExchange(Login(Password("alice", "pw")))
    assert exchange.start().text == "AUTH LOGIN"
    assert exchange.receive(challenge("Username:")).text == b64("alice")
    assert exchange.receive(challenge("Password:")).text == b64("pw")
    assert exchange.receive(OK) is None


def test_login_refuses_a_third_challenge():
    """A third LOGIN challenge raises SASLError."""
    mechanism = Login(Password("alice", "pw"))
    mechanism.initial_response()
    mechanism.respond(b"Username:")
    mechanism.respond(b"Password:")
    with pytest.raises(SASLError, match="challenge 3"):
        mechanism.respond(b"Again:")


def test_cram_md5_matches_rfc2195_example():
    """The RFC 2195 example challenge and secret give the RFC's response."""
    exchange = AuthExchange(CramMD5(Password("tim", "tanstaaftanstaaf")))
    assert exchange.start().text == "AUTH CRAM-MD5"
    line = exchange.receive(
        Reply(334, ("PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+",))
    )
    assert line.text == "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw"
    assert base64.b64decode(line.text) == b"tim b913a602c7eda7a495b4e6e7334d3890"


def test_cram_md5_refuses_empty_challenge():
    """An empty CRAM-MD5 challenge raises SASLError."""
    mechanism = CramMD5(Password("tim", "pw"))
    mechanism.initial_response()
    with pytest.raises(SASLError, match="empty"):
        mechanism.respond(b"")


@pytest.mark.parametrize("mechanism", [Plain, Login, CramMD5, Scram])
def test_password_mechanisms_refuse_oauth2(mechanism):
    """Password mechanisms refuse OAuth2 credentials, naming both types."""
    with pytest.raises(InvalidArgument, match="needs Password credentials, but got OAuth2"):
        mechanism(OAuth2.static("u", "t"))


# -- XOAUTH2 and OAUTHBEARER ------------------------------------------------------------------

GOOGLE_TOKEN = "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"
GOOGLE_EXAMPLE = (
    "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNr"
    "QmhkSFJoZG1semRHRXVZMjl0Q2cBAQ=="
)
RFC7628_EXAMPLE = (
    "bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9MTQzAWF1dGg9QmVh"
    "cmVyIHZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB"
)


def test_xoauth2_matches_google_example():
    """XOAUTH2 reproduces Google's and Microsoft's published example string."""
    exchange = AuthExchange(XOAuth2(OAuth2.static("someuser@example.com", GOOGLE_TOKEN)))
    assert exchange.start().text == f"AUTH XOAUTH2 {GOOGLE_EXAMPLE}"


def test_oauthbearer_matches_rfc7628_example():
    """OAUTHBEARER with host and port reproduces the RFC 7628 section 4.1 example."""
    creds = OAuth2.static("user@example.com", "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==")
    mechanism = OAuthBearer(creds, host="server.example.com", port=143)
    assert b64(mechanism.initial_response()) == RFC7628_EXAMPLE


def test_oauthbearer_without_host_and_port():
    """Without host and port only the auth pair follows the GS2 header."""
    mechanism = OAuthBearer(OAuth2.static("a,b=c", "tok"))
    assert mechanism.initial_response() == b"n,a=a=2Cb=3Dc,\x01auth=Bearer tok\x01\x01"


XOAUTH2_ERROR = {"status": "401", "schemes": "bearer", "scope": "https://mail.google.com/"}
OAUTHBEARER_ERROR = {
    "status": "invalid_token",
    "scope": "example_scope",
    "openid-configuration": "https://example.com/.well-known/openid-configuration",
}


@pytest.mark.parametrize(
    ("factory", "error", "dummy"),
    [(XOAuth2, XOAUTH2_ERROR, ""), (OAuthBearer, OAUTHBEARER_ERROR, "AQ==")],
)
def test_oauth_error_challenge_path(factory, error, dummy):
    """A JSON error challenge is stored in server_error, answered, and the 535 ends it."""
    exchange = AuthExchange(factory(OAuth2.static("user@example.com", "expired")))
    exchange.start()
    line = exchange.receive(challenge(json.dumps(error)))
    assert line is not None
    assert line.text == dummy
    assert exchange.receive(REFUSED) is None
    assert exchange.state is AuthState.FAILED
    assert exchange.mechanism.server_error == error


def test_oauth_unreadable_error_is_empty_dict():
    """A challenge that is not a JSON object still gets an answer; server_error is {}."""
    mechanism = XOAuth2(OAuth2.static("u", "t"))
    mechanism.initial_response()
    assert mechanism.respond(b"[[[not json") == b""
    assert mechanism.server_error == {}


def test_oauth_success_leaves_server_error_none():
    """When the server accepts the token at once, server_error stays None."""
    exchange = AuthExchange(OAuthBearer(OAuth2.static("u", "t")))
    exchange.start()
    exchange.receive(OK)
    assert exchange.mechanism.server_error is None


def test_oauth_token_provider_called_at_creation():
    """The provider runs when the mechanism is created, once."""
    calls = []
    creds = OAuth2("u", lambda: calls.append(1) or "tok")
    XOAuth2(creds)
    assert calls == [1]


@pytest.mark.parametrize("factory", [XOAuth2, OAuthBearer])
def test_oauth_username_with_control_character_refused(factory):
    """A \\x01 in the username could smuggle in a field, so it is refused."""
    with pytest.raises(InvalidArgument, match="control characters"):
        factory(OAuth2.static("user\x01auth=Bearer evil", "tok"))


def test_oauthbearer_port_range_checked():
    """port must be 1 to 65535."""
    with pytest.raises(InvalidArgument, match="port must be an int from 1 to 65535"):
        OAuthBearer(OAuth2.static("u", "t"), port=70000)


# -- the AUTH exchange driver -----------------------------------------------------------------


class Chatty:
    """A user mechanism that answers every challenge forever."""

    name = "X-CHATTY"
    requires_tls = False
    server_error = None

    def initial_response(self) -> bytes | None:
        return None

    def respond(self, challenge: bytes) -> bytes:
        return b"more"

    def verify_success(self, data: bytes | None) -> None:
        return None


def test_endless_challenges_are_cut_off():
    """After MAX_ROUND_TRIPS challenges the exchange cancels with '*' and then raises."""
    exchange = AuthExchange(Chatty())
    exchange.start()
    for _ in range(MAX_ROUND_TRIPS):
        assert exchange.receive(challenge("again")).text == b64("more")
    assert exchange.receive(challenge("again")).text == "*"
    with pytest.raises(SASLError, match=f"more than {MAX_ROUND_TRIPS}"):
        exchange.receive(challenge("again"))
    assert exchange.state is AuthState.FAILED


def test_invalid_base64_challenge_cancels():
    """A challenge outside the base64 alphabet is answered with '*' (RFC 4954 section 4)."""
    exchange = AuthExchange(Login(Password("u", "p")))
    exchange.start()
    line = exchange.receive(Reply(334, ("VXNlcm5hbWU6!",)))
    assert line == AuthLine("*", secret=False)
    assert exchange.state is AuthState.CANCELLING
    with pytest.raises(SASLError, match="not valid base64") as info:
        exchange.receive(CANCELLED)
    assert info.value.reply == CANCELLED


def test_mechanism_error_cancels_then_raises():
    """A mechanism refusing a challenge makes the driver send '*' and raise after 501."""
    exchange = AuthExchange(Plain(Password("u", "p")))
    exchange.start()
    assert exchange.receive(challenge("")).text == "*"
    with pytest.raises(SASLError, match="PLAIN"):
        exchange.receive(CANCELLED)


def test_scram_impostor_235_raises():
    """A server answering 235 to the client proof, without v=, raises ServerVerificationFailed."""
    exchange = AuthExchange(Scram(Password("user", "pencil"), client_nonce="rOprNGfwEbeRWgbNEkqO"))
    exchange.start()
    server_first = "r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    exchange.receive(challenge(server_first))
    with pytest.raises(ServerVerificationFailed):
        exchange.receive(OK)
    assert exchange.state is AuthState.FAILED


def test_empty_initial_response_is_sent_as_equals():
    """An empty initial response goes on the line as '=' (RFC 4954 section 4)."""

    class External(Chatty):
        name = "EXTERNAL"

        def initial_response(self) -> bytes | None:
            return b""

    assert AuthExchange(External()).start().text == "AUTH EXTERNAL ="


def test_long_initial_response_waits_for_empty_challenge():
    """An initial response too long for 512 octets is sent after an empty 334."""
    token = "t" * 600
    exchange = AuthExchange(XOAuth2(OAuth2.static("u", token)))
    first = exchange.start()
    assert first == AuthLine("AUTH XOAUTH2", secret=False)
    line = exchange.receive(Reply(334, ("",)))
    assert base64.b64decode(line.text) == f"user=u\x01auth=Bearer {token}\x01\x01".encode()
    assert line.secret


def test_long_initial_response_refuses_non_empty_challenge():
    """If the server's first challenge is not empty, the deferred response is not sent."""
    exchange = AuthExchange(XOAuth2(OAuth2.static("u", "t" * 600)))
    exchange.start()
    assert exchange.receive(challenge("surprise")).text == "*"


@pytest.mark.parametrize("code", [250, 354, 100])
def test_nonsense_reply_code_raises(code):
    """A reply other than 235, 334, 4xx or 5xx after AUTH is a RemoteProtocolError."""
    exchange = AuthExchange(Plain(Password("u", "p")))
    exchange.start()
    with pytest.raises(RemoteProtocolError, match=str(code)):
        exchange.receive(Reply(code, ("what",)))


@pytest.mark.parametrize("code", [454, 504, 534, 535, 538])
def test_refusal_ends_exchange(code):
    """4xx and 5xx end the exchange without raising, leaving the mapping to the session."""
    exchange = AuthExchange(Plain(Password("u", "p")))
    exchange.start()
    assert exchange.receive(Reply(code, ("no",))) is None
    assert exchange.state is AuthState.FAILED
    assert not exchange.in_progress


def test_receive_before_start_raises():
    """receive() before start() is a LocalProtocolError."""
    with pytest.raises(LocalProtocolError):
        AuthExchange(Plain(Password("u", "p"))).receive(OK)


def test_start_twice_raises():
    """start() twice is a LocalProtocolError."""
    exchange = AuthExchange(Plain(Password("u", "p")))
    exchange.start()
    with pytest.raises(LocalProtocolError, match="single-use"):
        exchange.start()


def test_in_progress_flags_continuation_lines():
    """in_progress is True exactly while the lines written are SASL continuations."""
    exchange = AuthExchange(Login(Password("u", "p")))
    assert not exchange.in_progress
    exchange.start()
    assert exchange.in_progress
    exchange.receive(challenge("Username:"))
    exchange.receive(challenge("Password:"))
    exchange.receive(OK)
    assert not exchange.in_progress


@pytest.mark.parametrize("name", ["PLAIN\r\nRSET", "plain", "", "A" * 21, "X Y"])
def test_mechanism_name_injection_refused(name):
    """A mechanism name outside RFC 4422's alphabet is refused before any byte (S2)."""

    class Bad(Chatty):
        pass

    bad = Bad()
    bad.name = name  # type: ignore[misc]
    with pytest.raises(InvalidArgument, match="mechanism name"):
        AuthExchange(bad)


def test_mechanism_name_read_once():
    """A name property that changes after the check cannot reach the AUTH line."""

    class Shifty(Chatty):
        calls = 0

        @property
        def name(self) -> str:  # type: ignore[override]
            Shifty.calls += 1
            return "X-OK" if Shifty.calls == 1 else "X-OK\r\nRSET"

    assert AuthExchange(Shifty()).start().text == "AUTH X-OK"


def test_mechanism_returning_str_is_refused():
    """A mechanism must return bytes; a str initial response is an InvalidArgument."""

    class Sloppy(Chatty):
        name = "X-SLOPPY"

        def initial_response(self) -> bytes | None:
            return "oops"  # type: ignore[return-value]

    with pytest.raises(InvalidArgument, match="must return bytes"):
        AuthExchange(Sloppy()).start()


@given(st.text(max_size=80))
def test_any_challenge_text_gives_a_line(text):
    """Whatever the 334 text, the driver answers with a line (a response or '*')."""
    exchange = AuthExchange(Login(Password("u", "p")))
    exchange.start()
    assert isinstance(exchange.receive(Reply(334, (text,))), AuthLine)


def test_max_round_trips_validated():
    """max_round_trips must be a positive int."""
    with pytest.raises(InvalidArgument, match="max_round_trips"):
        AuthExchange(Chatty(), max_round_trips=0)


# -- redaction (THREATS S8) -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("AUTH PLAIN AHUAcA==", "AUTH PLAIN ****"),
        ("AUTH PLAIN AHUAcA==\r\n", "AUTH PLAIN ****\r\n"),
        ("auth login dXNlcg==\n", "auth login ****\n"),
        ("AUTH  XOAUTH2   abc def", "AUTH  XOAUTH2 ****"),
        ("AUTH PLAIN =", "AUTH PLAIN ****"),
        ("AUTH LOGIN", "AUTH LOGIN"),
        ("AUTH LOGIN\r\n", "AUTH LOGIN\r\n"),
        ("AUTHORIZE me now", "AUTHORIZE me now"),
        ("MAIL FROM:<a@example.com> AUTH=<>", "MAIL FROM:<a@example.com> AUTH=<>"),
        ("AUTH PLAIN abc\r\nRSET", "AUTH PLAIN ****"),
    ],
)
def test_redact_auth_line(line, expected):
    """Everything after the mechanism name of an AUTH line is masked; other lines pass."""
    assert redact_auth_line(line) == expected


@given(
    mechanism=st.from_regex(r"[A-Z0-9_-]{1,20}", fullmatch=True),
    argument=st.text(min_size=1).filter(lambda t: t.strip() != ""),
)
def test_redacted_auth_line_keeps_nothing_of_the_argument(mechanism, argument):
    """For any argument, the redacted line is exactly 'AUTH <mechanism> ****'."""
    assert redact_auth_line(f"AUTH {mechanism} {argument.strip()}") == f"AUTH {mechanism} ****"


def test_auth_line_repr_is_redacted():
    """An AuthLine's repr and redacted form never show a secret line."""
    line = AuthLine("c2VjcmV0", secret=True)
    assert line.redacted == "****"
    assert "c2VjcmV0" not in repr(line)
    assert line.to_bytes() == b"c2VjcmV0\r\n"


USER, PASSWORD, TOKEN = "alice@example.com", "Corr3ct-Horse-Battery", "ya29.SECRET-TOKEN-123"


def _script(name: str) -> list[Reply]:
    """Server replies that walk each built-in mechanism to its end."""
    if name == "LOGIN":
        return [challenge("Username:"), challenge("Password:"), OK]
    if name == "CRAM-MD5":
        return [challenge("<1.2@example.com>"), OK]
    if name in ("XOAUTH2", "OAUTHBEARER"):
        return [challenge(json.dumps(XOAUTH2_ERROR)), REFUSED]
    if name.startswith("SCRAM"):
        server_first = challenge("r=nonce-and-server,s=QSXCR+Q6sek8bf92,i=4096")
        return [server_first, challenge("v=AAAA"), CANCELLED]
    return [OK]


@pytest.mark.parametrize("name", [entry.name for entry in DEFAULT_MECHANISMS.entries])
def test_no_secret_in_transcript_reprs_or_errors(name):
    """Running every mechanism, no trace, repr or error shows the secret or its base64 (S8)."""
    creds = OAuth2.static(USER, TOKEN) if "OAUTH" in name else Password(USER, PASSWORD)
    binding = BINDING if name.endswith("-PLUS") else None
    entry = DEFAULT_MECHANISMS.get(name)
    mechanism = entry.factory(creds, binding)
    if isinstance(mechanism, Scram):
        mechanism = Scram(
            creds,
            binding,
            algorithm="SHA-1" if "SHA-1" in name else "SHA-256",
            plus=name.endswith("-PLUS"),
            client_nonce="nonce",
        )
    exchange = AuthExchange(mechanism)
    transcript = [exchange.start().redacted]
    seen = [repr(creds), str(creds), repr(mechanism), repr(exchange)]
    with pytest.raises(SASLError) if name.startswith("SCRAM") else nullcontext() as info:
        for reply in _script(name):
            line = exchange.receive(reply)
            seen += [repr(line), repr(exchange), repr(mechanism)]
            if line is not None:
                transcript.append(line.redacted)
    if info is not None:
        seen += [str(info.value), repr(info.value)]
    # The transcript holds nothing but the command, masks and the cancel marker.
    assert set(transcript) <= {f"AUTH {name}", f"AUTH {name} ****", "****", "*"}, transcript
    secrets_ = [PASSWORD, TOKEN, b64(PASSWORD), b64(TOKEN), b64(f"\0{USER}\0{PASSWORD}")]
    for text in seen:
        for secret in secrets_:
            assert secret not in text, (name, text)


# -- choose() ---------------------------------------------------------------------------------

EVERYTHING = frozenset(entry.name for entry in DEFAULT_MECHANISMS.entries)


def test_cleartext_refused_by_default():
    """Without TLS, choose() refuses even SCRAM unless allow_insecure is set (S7)."""
    with pytest.raises(InsecureAuthRefused, match="allow_insecure"):
        choose({"SCRAM-SHA-256", "PLAIN"}, Password("u", "p"), tls_active=False)


def test_cleartext_allowed_when_opted_in():
    """allow_insecure=True lets the choice proceed without TLS."""
    mechanism = choose({"PLAIN"}, Password("u", "p"), tls_active=False, allow_insecure=True)
    assert mechanism.name == "PLAIN"


def test_insecure_refusal_precedes_everything():
    """Even with nothing offered, the cleartext rule speaks first."""
    with pytest.raises(InsecureAuthRefused):
        choose(set(), Password("u", "p"), tls_active=False)


@pytest.mark.parametrize(
    ("offered", "expected"),
    [
        (EVERYTHING, "SCRAM-SHA-256"),
        ({"SCRAM-SHA-1", "CRAM-MD5", "PLAIN", "LOGIN"}, "SCRAM-SHA-1"),
        ({"CRAM-MD5", "PLAIN", "LOGIN"}, "CRAM-MD5"),
        ({"PLAIN", "LOGIN"}, "PLAIN"),
        ({"LOGIN", "XOAUTH2"}, "LOGIN"),
        ({"plain", "login"}, "PLAIN"),
    ],
)
def test_strongest_password_mechanism_chosen(offered, expected):
    """The strongest offered mechanism usable with a password wins."""
    assert choose(offered, Password("u", "p"), tls_active=True).name == expected


def test_plus_chosen_with_binding():
    """With channel binding, SCRAM-SHA-256-PLUS beats everything."""
    mechanism = choose(EVERYTHING, Password("u", "p"), tls_active=True, channel_binding=BINDING)
    assert mechanism.name == "SCRAM-SHA-256-PLUS"


def test_plus_never_chosen_without_binding():
    """Only -PLUS offered and no binding: NoSuitableMechanism says binding is needed."""
    with pytest.raises(NoSuitableMechanism, match="would need channel_binding"):
        choose({"SCRAM-SHA-256-PLUS"}, Password("u", "p"), tls_active=True)


def test_binding_without_plus_offered_signals_y():
    """A binding-capable client on a server without -PLUS sends 'y' (downgrade detection)."""
    mechanism = choose(
        {"SCRAM-SHA-256"}, Password("u", "p"), tls_active=True, channel_binding=BINDING
    )
    assert mechanism.initial_response().startswith(b"y,,")


def test_preferred_plain_variant_with_plus_offered_signals_n():
    """Forcing SCRAM-SHA-256 while the server offers -PLUS sends 'n', not a failing 'y'."""
    mechanism = choose(
        EVERYTHING,
        Password("u", "p"),
        tls_active=True,
        channel_binding=BINDING,
        preferred=["SCRAM-SHA-256"],
    )
    assert mechanism.initial_response().startswith(b"n,,")


def test_oauth2_prefers_oauthbearer():
    """OAuth2 credentials pick OAUTHBEARER over XOAUTH2, and never a password mechanism."""
    creds = OAuth2.static("u", "t")
    assert choose(EVERYTHING, creds, tls_active=True).name == "OAUTHBEARER"
    assert choose({"XOAUTH2", "PLAIN"}, creds, tls_active=True).name == "XOAUTH2"


def test_preferred_forces_order():
    """preferred overrides the strength order and limits the choice to its names."""
    offered = {"SCRAM-SHA-256", "PLAIN", "LOGIN"}
    creds = Password("u", "p")
    assert choose(offered, creds, tls_active=True, preferred=["LOGIN", "PLAIN"]).name == "LOGIN"
    with pytest.raises(NoSuitableMechanism, match="preferred"):
        choose({"SCRAM-SHA-256"}, creds, tls_active=True, preferred=["PLAIN"])


def test_preferred_unknown_name_refused():
    """A preferred name that is not registered is an InvalidArgument listing the registered."""
    with pytest.raises(InvalidArgument, match=r"GSSAPI.*registered: SCRAM-SHA-256-PLUS"):
        choose({"PLAIN"}, Password("u", "p"), tls_active=True, preferred=["GSSAPI"])


def test_no_suitable_mechanism_lists_both_sides():
    """The error lists what the server offers and what the credentials allow."""
    with pytest.raises(NoSuitableMechanism) as info:
        choose({"GSSAPI", "NTLM"}, Password("u", "secret-pw"), tls_active=True)
    message = str(info.value)
    assert "the server offers GSSAPI, NTLM" in message
    assert (
        "Password credentials allow SCRAM-SHA-256, SCRAM-SHA-1, CRAM-MD5, PLAIN, LOGIN" in message
    )
    assert "secret-pw" not in message
    assert info.value.offered == ("GSSAPI", "NTLM")


def test_no_auth_advertised_is_explained():
    """An empty offer says the server advertised no AUTH."""
    with pytest.raises(NoSuitableMechanism, match="no AUTH keyword"):
        choose(frozenset(), Password("u", "p"), tls_active=True)


def test_binding_without_tls_refused():
    """A channel binding with tls_active=False is contradictory."""
    with pytest.raises(InvalidArgument, match="channel_binding"):
        choose(
            {"PLAIN"},
            Password("u", "p"),
            tls_active=False,
            allow_insecure=True,
            channel_binding=BINDING,
        )


def test_offered_as_string_refused():
    """Passing the raw EHLO text instead of a set is caught."""
    with pytest.raises(InvalidArgument, match="offered"):
        choose("PLAIN LOGIN", Password("u", "p"), tls_active=True)


def test_choose_returns_fresh_instances():
    """Each call builds a new single-use mechanism."""
    creds = Password("u", "p")
    assert choose({"PLAIN"}, creds, tls_active=True) is not choose(
        {"PLAIN"}, creds, tls_active=True
    )


# -- the registry -----------------------------------------------------------------------------


def test_registry_with_mechanism_is_immutable():
    """with_mechanism returns a new registry and leaves the default untouched."""
    registry = DEFAULT_MECHANISMS.with_mechanism("X-CHATTY", lambda c, b: Chatty(), strength=100)
    assert registry.get("X-CHATTY") is not None
    assert DEFAULT_MECHANISMS.get("X-CHATTY") is None
    mechanism = choose(
        {"X-CHATTY", "PLAIN"}, Password("u", "p"), tls_active=True, mechanisms=registry
    )
    assert mechanism.name == "X-CHATTY"


def test_registry_replaces_same_name():
    """Registering an existing name replaces it, e.g. to configure SCRAM."""
    legacy = partial(Scram, algorithm="SHA-1", min_iterations=1024)
    registry = DEFAULT_MECHANISMS.with_mechanism("SCRAM-SHA-1", legacy, strength=40)
    assert registry.get("scram-sha-1").factory is legacy
    assert len(registry.entries) == len(DEFAULT_MECHANISMS.entries)


def test_registry_factory_name_must_match():
    """A factory building a mechanism under another name is caught before AUTH is sent."""
    wrong = partial(Scram, algorithm="SHA-256")
    registry = DEFAULT_MECHANISMS.with_mechanism("SCRAM-SHA-1", wrong, strength=99)
    with pytest.raises(InvalidArgument, match="registered as SCRAM-SHA-1"):
        choose({"SCRAM-SHA-1"}, Password("u", "p"), tls_active=True, mechanisms=registry)


def test_registry_without_removes():
    """without() drops mechanisms, e.g. to never use LOGIN."""
    registry = DEFAULT_MECHANISMS.without("LOGIN", "PLAIN")
    with pytest.raises(NoSuitableMechanism):
        choose({"LOGIN", "PLAIN"}, Password("u", "p"), tls_active=True, mechanisms=registry)


def test_registry_order_is_documented_strength_order():
    """The default order is the documented strength order."""
    assert [
        entry.name for entry in DEFAULT_MECHANISMS.entries if Password in entry.credentials
    ] == [
        "SCRAM-SHA-256-PLUS",
        "SCRAM-SHA-256",
        "SCRAM-SHA-1-PLUS",
        "SCRAM-SHA-1",
        "CRAM-MD5",
        "PLAIN",
        "LOGIN",
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "bad name", "strength": 1}, "mechanism name"),
        ({"name": "X-A", "strength": True}, "strength"),
        ({"name": "X-A", "strength": 1, "credentials": ()}, "credentials"),
    ],
)
def test_registry_validates_entries(kwargs, message):
    """Malformed registrations are refused."""
    with pytest.raises(InvalidArgument, match=message):
        DEFAULT_MECHANISMS.with_mechanism(factory=Plain, **kwargs)


def test_registry_refuses_duplicate_names():
    """Two entries with one name cannot coexist."""
    entry = DEFAULT_MECHANISMS.get("PLAIN")
    with pytest.raises(InvalidArgument, match="unique"):
        MechanismRegistry((entry, entry))


def test_registry_repr_shows_order():
    """The registry's repr lists names strongest first."""
    assert repr(DEFAULT_MECHANISMS).startswith("<MechanismRegistry SCRAM-SHA-256-PLUS > SCRAM")


# -- the public namespace ---------------------------------------------------------------------


def test_public_names_resolve_and_claim_the_public_module():
    """Every name in __all__ exists, and classes report mailtransfer.auth as their module."""
    for name in auth.__all__:
        obj = getattr(auth, name)
        # Only our own classes: on 3.10 a Callable[...] alias also passes isinstance(type).
        if isinstance(obj, type) and obj.__module__.startswith("mailtransfer.auth"):
            assert obj.__module__ == "mailtransfer.auth", name
