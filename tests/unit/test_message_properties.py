"""Property tests for mailtransfer.message: injection, envelope agreement, serialisation."""

from __future__ import annotations

import email.policy
import os
from collections import Counter
from datetime import datetime, timezone
from email.message import EmailMessage, Message
from email.parser import BytesParser, Parser

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mailtransfer.errors import UsageError
from mailtransfer.message import Attachment, Envelope, build_message, downgrade, prepare

SETTINGS = settings(
    max_examples=int(os.environ.get("MT_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# Pieces that attack headers: line breaks of every kind, folding whitespace,
# an injected field, an encoded word hiding CRLF, and ordinary text.
_ATTACKS = st.sampled_from(
    [
        "\r",
        "\n",
        "\r\n",
        "\x00",
        " ",
        "\t",
        "\r\n ",
        "\n\t",
        "\r\n\r\n",
        ":",
        "Bcc: victim@evil.example",
        "\r\nBcc: victim@evil.example",
        "=?utf-8?q?a=0D=0ABcc:_v@evil.example?=",
        "\u2028",
        "\x85",
        "\x0b",
        '"',
        "<x@evil.example>",
        ",",
    ]
)
HEADER_TEXT = st.lists(st.one_of(_ATTACKS, st.text(min_size=1, max_size=12)), max_size=12).map(
    "".join
)
# Text without the characters any header refuses, for values that must succeed.
SAFE_TEXT = st.text(
    st.characters(
        blacklist_categories=("Cs", "Cc", "Zl", "Zp"),
        blacklist_characters="\x85",
    ),
    max_size=100,
)


def parse(data: bytes) -> EmailMessage:
    """Parse wire bytes back with the modern email parser."""
    msg = BytesParser(policy=email.policy.default).parsebytes(data)
    assert isinstance(msg, EmailMessage)
    return msg


def fields(data: bytes) -> EmailMessage:
    """The top-level header fields of wire bytes, UTF-8 (RFC 6532) fields decoded."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8") + "\r\n\r\n"
    msg = Parser(policy=email.policy.default).parsestr(head, headersonly=True)
    assert isinstance(msg, EmailMessage)
    return msg


def norm(text: str) -> str:
    """A value as a reader sees it: encoded words decoded, whitespace not counted.

    Whitespace is left out because RFC 2047 folding may move it between
    encoded words (the standard library's own round trip does).
    """
    decoded = str(email.policy.default.header_factory("X-Decoded", text))
    return "".join(decoded.split())


def names(msg: Message) -> Counter[str]:
    """The multiset of top-level field names."""
    return Counter(name.lower() for name, _ in msg.raw_items())


@SETTINGS
@given(subject=HEADER_TEXT, note=HEADER_TEXT, name=HEADER_TEXT)
@example(subject="hi\r\nBcc: victim@evil.example", note="", name="")
@example(subject="=?utf-8?q?a=0D=0ABcc:_v@evil.example?=", note="", name="")
# Folded across lines, this display name lost its quotes (CPython gh-80222) and went out
# as a group "Bcc:" and extra addresses; now it is refused.
@example(subject="", note="", name="Bcc: victim@evil.exampleBcc: victim@evil.example" * 2)
def test_header_values_are_refused_or_reparse_exactly(subject: str, note: str, name: str) -> None:
    """Any subject, header value and display name: a typed error, or exactly the intended fields."""
    try:
        prepared = prepare(
            build_message(
                sender="alice@example.org",
                to=[(name, "bob@example.net")],
                bcc="hidden@example.net",
                subject=subject,
                text="body",
                headers={"X-Note": note},
            )
        )
    except UsageError:
        return
    back = fields(prepared.data)
    expected = Counter(
        ["from", "to", "x-note", "mime-version", "content-type", "content-transfer-encoding"]
    )
    expected.update(["date", "message-id"] + (["subject"] if subject else []))
    assert names(back) == expected
    assert norm(back.get("Subject", "")) == norm(subject)
    assert norm(back["X-Note"]) == norm(note)
    assert [a.addr_spec for a in back["To"].addresses] == ["bob@example.net"]
    assert norm(back["To"].addresses[0].display_name) == norm(name)
    assert prepared.envelope.recipients == ("bob@example.net", "hidden@example.net")
    assert b"hidden" not in prepared.data


@SETTINGS
@given(value=HEADER_TEXT)
@example(value="x\r\nBcc: victim@evil.example")
@example(value="x\n Bcc: folded@evil.example")
def test_compat32_values_are_refused_or_stay_one_field(value: str) -> None:
    """compat32 stores any string: prepare refuses it or writes exactly one field."""
    msg = Message()
    msg["From"] = "alice@example.org"
    msg["To"] = "bob@example.net"
    msg["X-Note"] = value
    msg.set_payload("body")
    try:
        prepared = prepare(msg)
    except UsageError:
        return
    back = fields(prepared.data)
    assert names(back) == Counter(["from", "to", "x-note", "date", "message-id"])
    assert norm(back["X-Note"]) == norm(value)
    assert prepared.envelope.recipients == ("bob@example.net",)


@SETTINGS
@given(to=HEADER_TEXT)
@example(to="alice@example.org)<bob@example.org>")
@example(to='"bob@example.org" <alice@example.org>')
@example(to="alice@example.org, bob@example.org")
def test_to_field_and_envelope_always_agree(to: str) -> None:
    """Whatever the To string, the envelope is exactly the To a reader parses, or an error."""
    msg = EmailMessage(policy=email.policy.default)
    msg["From"] = "alice@example.org"
    try:
        msg["To"] = to
    except Exception:
        return
    msg.set_content("body")
    try:
        prepared = prepare(msg)
    except UsageError:
        return
    back = fields(prepared.data)
    assert len(back.get_all("To") or []) == 1
    parsed = [a.addr_spec for a in back["To"].addresses]
    assert list(prepared.envelope.recipients) == list(dict.fromkeys(parsed))
    assert names(back)["bcc"] == 0


_LOCAL = st.one_of(
    st.from_regex(
        r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,10}(\.[A-Za-z0-9_-]{1,5}){0,2}", fullmatch=True
    ),
    st.text(min_size=1, max_size=10).map(
        lambda s: '"' + s.replace("\\", "").replace('"', "") + '"'
    ),
    st.text(min_size=1, max_size=10),
)
_DOMAIN = st.one_of(
    st.sampled_from(["example.org", "bücher.example", "[192.0.2.1]", "mx.example.co.uk"]),
    st.text(min_size=1, max_size=12),
)


@SETTINGS
@given(name=SAFE_TEXT, local=_LOCAL, domain=_DOMAIN)
def test_recipient_addresses_are_refused_or_agree(name: str, local: str, domain: str) -> None:
    """Any (name, address): a typed error, or header, envelope and input all agree."""
    address = f"{local}@{domain}"
    try:
        prepared = prepare(build_message(sender="a@example.org", to=[(name, address)], text="x"))
    except UsageError:
        return
    (parsed,) = fields(prepared.data)["To"].addresses
    assert prepared.envelope.recipients == (parsed.addr_spec,)
    assert parsed.addr_spec.split("@")[-1] == domain
    assert norm(parsed.display_name) == norm(name)


_FILENAME = SAFE_TEXT.filter(bool)


@SETTINGS
@given(
    subject=SAFE_TEXT,
    name=SAFE_TEXT,
    text=st.text(max_size=300),
    html=st.none() | st.text(max_size=200),
    files=st.lists(st.tuples(_FILENAME, st.binary(max_size=100)), max_size=3),
    note=SAFE_TEXT,
)
def test_fast_serialiser_equals_bytes_generator(  # noqa: PLR0917 - hypothesis passes by name
    subject: str,
    name: str,
    text: str,
    html: str | None,
    files: list[tuple[str, bytes]],
    note: str,
) -> None:
    """prepare() writes the same bytes as BytesGenerator (when it adds nothing)."""
    try:
        msg = build_message(
            sender=(name, "alice@example.org"),
            to="bob@example.net",
            subject=subject,
            text=text,
            html=html,
            attachments=[Attachment(f, c) for f, c in files],
            headers={"X-Note": note},
            message_id="<id@example.org>",
            date=datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
        )
        prepared = prepare(msg)
    except UsageError:
        return
    policy = msg.policy.clone(linesep="\r\n", utf8=prepared.needs_smtputf8)
    assert prepared.data == msg.as_bytes(policy=policy)


_ONE_LINE = st.characters(blacklist_characters="\r\n")
_KNOWN = st.sampled_from(["From", "To", "Bcc", "Resent-Bcc", "bcc", "Subject", "X-A"])
_FIELD = st.one_of(_KNOWN, st.text(min_size=1, max_size=6))
# A name starting with a space or tab would make its line a continuation,
# and a colon would end the name early: neither is the field the test means.
_ONE_LINE_FIELD = st.one_of(
    _KNOWN,
    st.text(_ONE_LINE, min_size=1, max_size=6).filter(lambda n: n[0] not in " \t" and ":" not in n),
)
_ENV = Envelope(sender="a@example.org", recipients=("b@example.net",))


def _section(lines: list[tuple[str, str, bool]]) -> bytes:
    text = "".join(f"{n}: {v}\r\n" + (" folded\r\n" if fold else "") for n, v, fold in lines)
    return text.encode("utf-8", "surrogatepass")


def _field_names(data: bytes) -> list[bytes]:
    head = data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    return [line.split(b":", 1)[0] for line in head if not line.startswith((b" ", b"\t"))]


@SETTINGS
@given(
    lines=st.lists(st.tuples(_FIELD, st.text(max_size=20), st.booleans()), max_size=6),
    body=st.binary(max_size=50),
)
def test_bytes_header_section_is_refused_or_has_no_bcc(
    lines: list[tuple[str, str, bool]], body: bytes
) -> None:
    """Raw bytes, line breaks anywhere: a typed error, or well-formed fields and no Bcc."""
    data = _section(lines) + b"Date: x\r\nMessage-ID: <a@b>\r\n\r\n" + body
    try:
        prepared = prepare(data, envelope=_ENV)
    except UsageError:
        return
    head = prepared.data.split(b"\r\n\r\n", 1)[0]
    assert b"\x00" not in head
    assert b"\r" not in head.replace(b"\r\n", b"")
    assert b"\n" not in head.replace(b"\r\n", b"")
    for name in _field_names(prepared.data):
        assert name.lower() not in (b"bcc", b"resent-bcc")
        assert name
        assert all(33 <= c <= 126 and c != 58 for c in name)


@SETTINGS
@given(
    lines=st.lists(
        st.tuples(_ONE_LINE_FIELD, st.text(_ONE_LINE, max_size=20), st.booleans()),
        max_size=6,
    ),
    body=st.binary(max_size=50),
)
def test_bytes_fields_are_kept_in_order_without_bcc(
    lines: list[tuple[str, str, bool]], body: bytes
) -> None:
    """Raw bytes with one-line values: a typed error, or every field but Bcc kept in order."""
    data = _section(lines) + b"Date: x\r\nMessage-ID: <a@b>\r\n\r\n" + body
    try:
        prepared = prepare(data, envelope=_ENV)
    except UsageError:
        return
    wanted = [n.encode() for n, _, _ in lines if n.lower() not in ("bcc", "resent-bcc")]
    assert _field_names(prepared.data) == [*wanted, b"Date", b"Message-ID"]


@SETTINGS
@given(subject=SAFE_TEXT, name=SAFE_TEXT, text=st.text(max_size=300))
def test_downgrade_to_ascii_keeps_the_content(subject: str, name: str, text: str) -> None:
    """Without 8BITMIME and SMTPUTF8, the data is ASCII and reads back the same."""
    try:
        msg = build_message(
            sender=(name, "alice@bücher.example"), to="bob@example.net", subject=subject, text=text
        )
        prepared = prepare(msg)
    except UsageError:
        return
    down = downgrade(prepared, eightbitmime=False, smtputf8=False)
    back = parse(down.data)
    assert down.data.isascii()
    assert norm(back.get("Subject", "")) == norm(subject)
    assert norm(back["From"].addresses[0].display_name) == norm(name)
    assert back["From"].addresses[0].domain == "xn--bcher-kva.example"
    assert back.get_content() == parse(prepared.data).get_content()


def _only_crlf(data: bytes) -> bool:
    """No bare CR and no bare LF: every line ends with CRLF (THREATS S1)."""
    without = data.replace(b"\r\n", b"")
    return b"\r" not in without and b"\n" not in without


_BREAKS = st.sampled_from(["\r", "\n", "\r\n", "\r\r\n", "\n\r", "\u2028", "\x85", "\x0b", "\f"])
_BODY_TEXT = st.lists(st.one_of(_BREAKS, st.text(max_size=30)), max_size=15).map("".join)


@SETTINGS
@given(
    subject=SAFE_TEXT,
    text=_BODY_TEXT,
    html=st.none() | _BODY_TEXT,
    long_word=st.integers(0, 1200),
    eightbit=st.booleans(),
    smtputf8=st.booleans(),
)
@example(subject="x", text="a\rb\nc\r\n.\n", html=None, long_word=0, eightbit=False, smtputf8=False)
def test_wire_bytes_have_only_crlf_and_short_lines(  # noqa: PLR0917 - hypothesis passes by name
    subject: str, text: str, html: str | None, long_word: int, eightbit: bool, smtputf8: bool
) -> None:
    """Any body line breaks and long words: CRLF only, lines within 998 octets (RFC 5322 2.1.1).

    Also after downgrading for a server without 8BITMIME and/or SMTPUTF8.
    """
    try:
        prepared = prepare(
            build_message(
                sender="alice@example.org",
                to="bob@example.net",
                subject=subject + " " + "w" * long_word,
                text=text,
                html=html,
            )
        )
        down = downgrade(prepared, eightbitmime=eightbit, smtputf8=smtputf8)
    except UsageError:
        return
    for data in (prepared.data, down.data):
        assert _only_crlf(data)
        assert all(len(line) <= 998 for line in data.split(b"\r\n"))
    if not eightbit and not smtputf8:
        assert down.data.isascii()
    body = parse(down.data).get_body(("plain",))
    assert body is not None
    read_back = body.get_content()
    assert "".join(read_back.split()) == "".join(text.split()) or not text.strip()


_ENVELOPE_ADDRESS = st.one_of(
    st.sampled_from(["a@example.org", "B@Example.ORG", "j\u00f6rg@b\u00fccher.example", ""]),
    st.builds("{}@{}".format, _LOCAL, _DOMAIN),
    st.text(max_size=20),
)


@SETTINGS
@given(sender=_ENVELOPE_ADDRESS, recipients=st.lists(_ENVELOPE_ADDRESS, max_size=5))
def test_envelope_is_valid_or_refused(sender: str, recipients: list[str]) -> None:
    """Any addresses: a typed error, or an envelope of unique, single-line, valid addresses."""
    try:
        envelope = Envelope(sender=sender, recipients=tuple(recipients))
    except UsageError:
        return
    seen = set()
    for address in envelope.recipients:
        local, _, domain = address.rpartition("@")
        key = (local, domain.lower())
        assert key not in seen  # duplicates dropped (domain compared without case)
        seen.add(key)
        assert not set(address) & {"\r", "\n", "\x00"}
    assert envelope.recipients
    assert set(envelope.recipients) <= set(recipients)
    assert not set(envelope.sender) & {"\r", "\n", "\x00"}


def test_long_display_names_that_fold_safely_are_kept() -> None:
    """The folding check refuses only what would read back differently."""
    names = ["A very long display name " * 5, "Zoë Ünïcödé " * 4]
    prepared = prepare(
        build_message(
            sender="alice@example.org",
            to=[(names[0], "bob@example.net"), (names[1], "zoe@example.net")],
            text="body",
        )
    )
    back = fields(prepared.data)["To"].addresses
    assert [a.addr_spec for a in back] == ["bob@example.net", "zoe@example.net"]
    assert [norm(a.display_name) for a in back] == [norm(n) for n in names]
