"""Property tests for the parsers and encoders not covered elsewhere.

The rule for each: any input gives a value within its invariants or the module's typed error,
never another exception, and never a secret or a line break where it does not belong.
Covered here: the mailer URL parser, the EHLO keyword reader, the enhanced status code and
queue id readers, and the SASL mechanisms driven through :class:`AuthExchange` (each line one
line of ASCII, its logged form free of the secret). Reply parsing, DATA and BDAT encoding,
commands, xtext, addresses, messages, DKIM, SCRAM and proxies have theirs in their own modules.
"""

from __future__ import annotations

import base64
import re
import string
from urllib.parse import quote

from hypothesis import example, given
from hypothesis import strategies as st

from mailtransfer import results
from mailtransfer._settings import URLSettings, parse_url
from mailtransfer.auth import (
    AuthExchange,
    AuthState,
    CramMD5,
    Login,
    OAuth2,
    OAuthBearer,
    Password,
    Plain,
    XOAuth2,
)
from mailtransfer.errors import UsageError
from mailtransfer.protocol import Extensions, Reply
from mailtransfer.protocol._reply import parse_enhanced
from mailtransfer.results import parse_queue_id

# --- the mailer URL ---------------------------------------------------------------------------

_URL_PIECES = st.sampled_from(
    ["smtp://", "smtps://", "lmtp://", "http://", "smtp:", "@", ":", "/", "?", "#", "%", "%4", "[",
     "]", "::1", "=", "&", "tls=none", "pool_size=", "timeout=-1", "x", "0", "65536", " ", "\t",
     "\r\n", "\x00", "\u00e9"]
)  # fmt: skip
_ANY_URL = st.lists(st.one_of(_URL_PIECES, st.text(max_size=8)), max_size=12).map("".join)


@given(_ANY_URL)
@example("smtp://u:p@[::1")
@example("smtp://host:99999")
@example("smtps://u:p@host?timeout=nan")
def test_any_url_parses_or_raises_usage_error(url: str) -> None:
    """Whatever the string, parse_url returns settings or raises UsageError, nothing else."""
    try:
        settings = parse_url(url)
    except UsageError:
        return
    assert isinstance(settings, URLSettings)
    assert settings.endpoint.host
    assert 1 <= settings.endpoint.port <= 65535


_SECRET_CHARS = st.characters(codec="utf-8", exclude_categories=("Cs",))


@given(
    prefix=_ANY_URL,
    password=st.text(_SECRET_CHARS, min_size=1, max_size=12),
    suffix=_ANY_URL,
)
def test_url_errors_never_quote_the_password(prefix: str, password: str, suffix: str) -> None:
    """An error about any URL holding a password never repeats that password (S8)."""
    secret = f"Zq9{password}"
    url = f"smtp://user:{quote(secret, safe='')}@{prefix}{suffix}"
    try:
        shown = repr(parse_url(url))
    except UsageError as exc:
        shown = str(exc)
    assert secret not in shown
    assert quote(secret, safe="") not in shown


# --- EHLO keywords ------------------------------------------------------------------------------

_EHLO_WORDS = st.sampled_from(
    ["SIZE", "size", "AUTH", "AUTH=", "AUTH=PLAIN", "8BITMIME", "PIPELINING", "STARTTLS", "=",
     "-1", "99999999999999999999999", "1e3", "\u017fIZE", "X-", "\u00e9", " ", "\t", ""]
)  # fmt: skip
_EHLO_LINE = st.lists(st.one_of(_EHLO_WORDS, st.text(max_size=6)), max_size=5).map(" ".join)
_KEYWORD = re.compile(r"[A-Z0-9][A-Z0-9-]*")


@given(st.text(max_size=20), st.lists(_EHLO_LINE, max_size=8))
def test_any_ehlo_reply_gives_well_formed_extensions(domain: str, lines: list[str]) -> None:
    """Any EHLO reply text reads into keywords that are RFC 5321 ehlo-keywords, never raises."""
    ext = Extensions.from_ehlo(Reply(250, (domain, *lines)))
    for keyword in ext.keywords:
        assert _KEYWORD.fullmatch(keyword), keyword
    assert ext.size is None or ext.size >= 0
    assert all(m == m.upper() and m and not m.isspace() for m in ext.auth)
    assert ext.pipelining == ("PIPELINING" in ext.keywords)
    assert ext.starttls == ("STARTTLS" in ext.keywords)


# --- enhanced status codes and queue ids --------------------------------------------------------

_STATUS_TEXT = st.one_of(
    st.text(max_size=20),
    st.builds(
        "{}.{}.{}{}".format,
        st.integers(0, 9),
        st.integers(0, 1000),
        st.integers(0, 1000),
        st.text(max_size=8),
    ),
)


@given(_STATUS_TEXT, st.integers(200, 599))
def test_enhanced_code_matches_its_reply_class(text: str, code: int) -> None:
    """A parsed enhanced code starts the text and has the reply's class (RFC 3463 2)."""
    status = parse_enhanced(text, code)
    if status is None:
        return
    assert status.klass == code // 100
    assert status.klass in (2, 4, 5)
    assert text.startswith(str(status))
    assert 0 <= status.subject <= 999
    assert 0 <= status.detail <= 999


_QUEUE_TEXT = st.lists(
    st.one_of(
        st.sampled_from(["2.0.0", "Ok:", "queued", "as", "id=", "<", ">", "OK", " ", "\n", "\t"]),
        st.text(max_size=10),
    ),
    max_size=10,
).map("".join)


@given(_QUEUE_TEXT)
@example("2.0.0 Ok: queued as 4XyZ12")
def test_queue_id_is_a_word_of_the_reply(text: str) -> None:
    """The queue id, when found, is a non-empty piece of the reply text without whitespace."""
    queue_id = parse_queue_id(Reply(250, tuple(text.split("\n"))))
    if queue_id is None:
        return
    assert queue_id
    assert queue_id in text
    assert not any(ch.isspace() for ch in queue_id)


def _every_pattern(text: str) -> str | None:
    """The queue id as the patterns alone find it, with no quick test in front."""
    for pattern in results._QUEUE_ID_PATTERNS:
        match = pattern.search(text)
        if match:
            return match.group(1)
    return None


@given(
    _QUEUE_TEXT
    | st.lists(
        st.sampled_from(["QUEUED", "Accepted", "<abcd>", " ", "gsmtp", "OK 12 abcdef - ", "x"]),
        max_size=8,
    ).map("".join)
)
@example("2.6.0 <abcd@x> Queued mail for delivery")
@example("OK 1700000000 a1b2c3d4e5 - gsmtp")
def test_queue_id_quick_test_skips_only_replies_without_an_id(text: str) -> None:
    """The words checked before the patterns never hide an id the patterns would find."""
    assert parse_queue_id(Reply(250, (text,))) == _every_pattern(text)


# --- SASL mechanisms through AuthExchange -------------------------------------------------------

_NAME = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\x00"),
    min_size=1,
    max_size=20,
)
# Passwords carry a marker so that "not in the log" cannot pass or fail by coincidence.
_PASSWORD = _NAME.map("Zq9#{}".format)
_TOKEN = st.text(st.sampled_from(string.ascii_letters + string.digits + "-._~+/="), min_size=1).map(
    "ya29.{}".format
)
_CHALLENGES = st.lists(st.binary(max_size=40), min_size=0, max_size=2)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _secret_free(logged: list[str], secret: str) -> None:
    """Neither ``secret`` nor its base64 appears in any logged line."""
    for text in logged:
        assert secret not in text
        assert _b64(secret.encode()) not in text


@given(user=_NAME, password=_PASSWORD, authzid=st.none() | _NAME)
def test_plain_sends_one_line_that_decodes_to_the_credentials(
    user: str, password: str, authzid: str | None
) -> None:
    """PLAIN: one AUTH line whose base64 is authzid NUL user NUL password; the log masks it."""
    exchange = AuthExchange(Plain(Password(user, password, authzid=authzid)))
    first = exchange.start()
    assert first.secret
    payload = first.text.split(" ", 2)[2] if first.text.count(" ") == 2 else None
    if payload is not None:
        decoded = base64.b64decode(payload, validate=True).decode("utf-8")
        assert decoded == f"{authzid or ''}\x00{user}\x00{password}"
    else:  # too long for the AUTH line: it follows alone, after the server's 334 (RFC 4954)
        line = exchange.receive(Reply(334, ("",)))
        assert line is not None
        assert base64.b64decode(line.text).decode("utf-8").split("\x00") == [
            authzid or "",
            user,
            password,
        ]
        _secret_free([line.redacted], password)
    _secret_free([first.redacted], password)
    assert first.text.isascii()
    assert not set(first.text) & {"\r", "\n", "\x00"}


@given(user=_NAME, password=_PASSWORD, challenges=_CHALLENGES)
def test_login_answers_are_lines_and_never_logged(
    user: str, password: str, challenges: list[bytes]
) -> None:
    """LOGIN: each answer one base64 line; the redacted forms show neither name nor password."""
    exchange = AuthExchange(Login(Password(user, password)))
    lines = [exchange.start()]
    answers = []
    for challenge in challenges[:2]:
        line = exchange.receive(Reply(334, (_b64(challenge),)))
        assert line is not None
        lines.append(line)
        answers.append(base64.b64decode(line.text).decode("utf-8"))
    assert answers == [user, password][: len(answers)]
    for line in lines:
        assert line.text.isascii()
        assert not set(line.text) & {"\r", "\n", "\x00"}
    _secret_free([line.redacted for line in lines[1:]], password)


@given(user=_NAME, password=_PASSWORD, challenge=st.binary(min_size=1, max_size=64))
def test_cram_md5_answer_is_one_line_with_the_user_and_a_digest(
    user: str, password: str, challenge: bytes
) -> None:
    """CRAM-MD5: ``user SP 32 hex digits``, base64 on one line, whatever the challenge."""
    exchange = AuthExchange(CramMD5(Password(user, password)))
    exchange.start()
    line = exchange.receive(Reply(334, (_b64(challenge),)))
    assert line is not None
    assert not set(line.text) & {"\r", "\n", "\x00"}
    name, _, digest = base64.b64decode(line.text).decode("utf-8").rpartition(" ")
    assert name == user
    assert re.fullmatch(r"[0-9a-f]{32}", digest)
    assert password not in line.redacted


@given(user=_NAME, token=_TOKEN, host=st.none() | st.sampled_from(["mx.example.org", "h"]))
def test_oauth_messages_are_one_line_and_hide_the_token(
    user: str, token: str, host: str | None
) -> None:
    """XOAUTH2 and OAUTHBEARER: a typed error for bad input, else one line hiding the token."""
    credentials = OAuth2.static(user, token)
    for make in (lambda: XOAuth2(credentials), lambda: OAuthBearer(credentials, host=host)):
        try:
            exchange = AuthExchange(make())
        except UsageError:
            continue  # a control character in the user name: refused before any byte
        line = exchange.start()
        assert line.text.isascii()
        assert not set(line.text) & {"\r", "\n", "\x00"}
        assert token not in line.redacted
        assert _b64(token.encode()) not in line.redacted
        if line.text.count(" ") == 2:
            message = base64.b64decode(line.text.split(" ")[2]).decode("utf-8")
            assert f"auth=Bearer {token}\x01" in message
        assert exchange.state is AuthState.IN_PROGRESS
