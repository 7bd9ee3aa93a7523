"""Tests for mailtransfer.message: building, preparing and downgrading messages."""

from __future__ import annotations

import email.policy
import io
import pathlib
from datetime import datetime, timedelta, timezone
from email.headerregistry import Address
from email.message import EmailMessage, Message
from email.mime.text import MIMEText
from email.parser import BytesParser

import pytest

from mailtransfer.errors import (
    ExtensionNotSupported,
    HeaderInjection,
    InvalidAddress,
    InvalidArgument,
    SMTPUTF8Required,
    UsageError,
)
from mailtransfer.message import (
    POLICY,
    Attachment,
    Envelope,
    PreparedMessage,
    build_message,
    downgrade,
    prepare,
)

CVE_2023_27043 = "alice@example.org)<bob@example.org>"


def parse(data: bytes) -> EmailMessage:
    """Parse wire bytes back with the modern email parser."""
    msg = BytesParser(policy=email.policy.default).parsebytes(data)
    assert isinstance(msg, EmailMessage)
    return msg


def content(part: object) -> object:
    """A part's content, with the CRLFs of the wire turned back into LF for text."""
    value = part.get_content()  # type: ignore[attr-defined]
    return value.replace("\r\n", "\n") if isinstance(value, str) else value


def header_names(data: bytes) -> list[str]:
    """The top-level field names of wire bytes, in order."""
    return [name for name, _ in parse(data).raw_items()]


def simple(**kwargs: object) -> EmailMessage:
    """A minimal valid message, with keyword overrides."""
    args: dict[str, object] = {
        "sender": "alice@example.org",
        "to": "bob@example.net",
        "text": "Hello",
    }
    args.update(kwargs)
    return build_message(**args)  # type: ignore[arg-type]


# --- Envelope ------------------------------------------------------------------------


def test_envelope_removes_duplicates_ignoring_domain_case_only() -> None:
    """Duplicates differ only in domain case; local parts keep their case."""
    env = Envelope(
        sender="a@example.org",
        recipients=("b@example.net", "B@example.net", "b@EXAMPLE.NET", "c@example.net"),
    )
    assert env.recipients == ("b@example.net", "B@example.net", "c@example.net")


def test_envelope_accepts_null_sender() -> None:
    """The empty sender is the null reverse-path used by bounces."""
    assert Envelope(sender="", recipients=("b@example.net",)).sender == ""


def test_envelope_sets_smtputf8_for_non_ascii_address() -> None:
    """A non-ASCII address turns smtputf8 on."""
    env = Envelope(sender="a@example.org", recipients=("jörg@example.net",))
    assert env.smtputf8 is True


def test_envelope_keeps_smtputf8_off_for_ascii() -> None:
    """An ASCII envelope does not ask for SMTPUTF8."""
    assert Envelope(sender="a@example.org", recipients=("b@example.net",)).smtputf8 is False


def test_envelope_needs_a_recipient() -> None:
    """An empty recipient list is refused."""
    with pytest.raises(InvalidArgument, match="at least one"):
        Envelope(sender="a@example.org", recipients=())


def test_envelope_refuses_a_single_string_as_recipients() -> None:
    """A str is not taken as a sequence of one-letter recipients."""
    with pytest.raises(InvalidArgument, match="single str"):
        Envelope(sender="a@example.org", recipients="b@example.net")  # type: ignore[arg-type]


@pytest.mark.parametrize("char", ["\r", "\n", "\r\n", "\x00", "\t", "\x7f"])
def test_envelope_refuses_control_characters(char: str) -> None:
    """Control characters in an envelope address are refused (THREATS S2)."""
    with pytest.raises(InvalidAddress):
        Envelope(sender="a@example.org", recipients=(f"b{char}@example.net",))
    with pytest.raises(InvalidAddress):
        Envelope(sender=f"a@example.org{char}", recipients=("b@example.net",))


def test_envelope_refuses_cve_2023_27043_address() -> None:
    """The crafted address is not a mailbox, so it cannot be an envelope address."""
    with pytest.raises(InvalidAddress):
        Envelope(sender="a@example.org", recipients=(CVE_2023_27043,))


def test_envelope_refuses_never_with_other_notify_values() -> None:
    """NOTIFY=NEVER stands alone (RFC 3461 section 4.1)."""
    with pytest.raises(InvalidArgument, match="NEVER"):
        Envelope(sender="a@example.org", recipients=("b@example.net",), notify=("NEVER", "DELAY"))


@pytest.mark.parametrize(
    "options",
    [
        {"notify": ("SOMETIMES",)},
        {"notify": ()},
        {"body": "9BIT"},
        {"ret": "ALL"},
        {"envid": "x" * 101},
        {"envid": "a\r\nRSET"},
    ],
)
def test_envelope_refuses_bad_parameters(options: dict[str, object]) -> None:
    """Malformed DSN and BODY values are refused."""
    with pytest.raises(InvalidArgument):
        Envelope(sender="a@example.org", recipients=("b@example.net",), **options)  # type: ignore[arg-type]


# --- build_message ----------------------------------------------------------------


def test_build_round_trip_headers_and_bodies() -> None:
    """Headers and both bodies read back as given."""
    msg = build_message(
        sender="Alice <alice@example.org>",
        to=["bob@example.net", ("Carol", "carol@example.com")],
        cc=Address("Dave", "dave", "example.com"),
        reply_to="replies@example.org",
        subject="Quarterly report",
        text="Plain body\n",
        html="<p>HTML body</p>\n",
    )
    back = parse(prepare(msg).data)
    assert str(back["From"]) == "Alice <alice@example.org>"
    assert [a.addr_spec for a in back["To"].addresses] == ["bob@example.net", "carol@example.com"]
    assert back["Cc"].addresses[0].display_name == "Dave"
    assert str(back["Reply-To"]) == "replies@example.org"
    assert back["Subject"] == "Quarterly report"
    assert content(back.get_body(("plain",))) == "Plain body\n"  # type: ignore[union-attr]
    assert content(back.get_body(("html",))) == "<p>HTML body</p>\n"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "address",
    ["Bob <bob@example.net>", Address("Bob", "bob", "example.net"), ("Bob", "bob@example.net")],
)
def test_build_accepts_every_address_form(address: object) -> None:
    """A str with a name, an Address and a (name, addr) tuple give the same To."""
    back = parse(prepare(simple(to=[address])).data)
    assert (back["To"].addresses[0].display_name, back["To"].addresses[0].addr_spec) == (
        "Bob",
        "bob@example.net",
    )


def test_build_refuses_bare_pair_as_recipient_list() -> None:
    """A tuple is a list of addresses, so ("Bob", "bob@...") fails loudly on "Bob"."""
    with pytest.raises(InvalidAddress):
        simple(to=("Bob", "bob@example.net"))


def test_build_quotes_a_quoted_local_part() -> None:
    """A quoted local part survives the trip into headers and envelope."""
    prepared = prepare(simple(to='"john doe"@example.net'))
    assert prepared.envelope.recipients == ('"john doe"@example.net',)
    assert parse(prepared.data)["To"].addresses[0].username == "john doe"


def test_build_refuses_cve_2023_27043_address() -> None:
    """build_message refuses the crafted address instead of picking one of its parts."""
    with pytest.raises(InvalidAddress):
        simple(to=CVE_2023_27043)


def test_build_refuses_two_addresses_in_one_string() -> None:
    """One address-like value must be exactly one mailbox."""
    with pytest.raises(InvalidAddress, match="exactly one"):
        simple(to="a@example.net, b@example.net")


def test_build_non_ascii_round_trip_without_smtputf8() -> None:
    """Non-ASCII names, subject and body round-trip as RFC 2047 / 8bit, ASCII headers."""
    msg = build_message(
        sender=("Jörg Müller", "joerg@example.org"),
        to=[("Zoë Ōkubo", "zoe@example.net")],
        subject="Grüße aus Köln — ünïcödé",
        text="Grüße, 你好\n",
    )
    prepared = prepare(msg)
    head = prepared.data.split(b"\r\n\r\n", 1)[0]
    back = parse(prepared.data)
    assert head.isascii()
    assert prepared.needs_smtputf8 is False
    assert prepared.needs_8bit is True
    assert prepared.envelope.body == "8BITMIME"
    assert back["From"].addresses[0].display_name == "Jörg Müller"
    assert back["To"].addresses[0].display_name == "Zoë Ōkubo"
    assert back["Subject"] == "Grüße aus Köln — ünïcödé"
    assert content(back) == "Grüße, 你好\n"


def test_build_non_ascii_address_uses_utf8_headers() -> None:
    """An address with a non-ASCII local part is written as UTF-8 and needs SMTPUTF8."""
    prepared = prepare(simple(to="jörg@bücher.example", subject="Grüße"))
    assert prepared.needs_smtputf8 is True
    assert prepared.envelope.smtputf8 is True
    assert "To: jörg@bücher.example\r\n".encode() in prepared.data
    assert parse(prepared.data)["Subject"] == "Grüße"


def _attachment_parts(data: bytes) -> list[EmailMessage]:
    return list(parse(data).iter_attachments())  # type: ignore[arg-type]


def test_build_attachment_from_path(tmp_path: pathlib.Path) -> None:
    """A pathlib path is read, named by its basename, typed by its extension."""
    path = tmp_path / "report.pdf"
    path.write_bytes(b"%PDF-1.4\x00\xff")
    (part,) = _attachment_parts(prepare(simple(attachments=[path])).data)
    assert (part.get_filename(), part.get_content_type()) == ("report.pdf", "application/pdf")
    assert part.get_content() == b"%PDF-1.4\x00\xff"


def test_build_attachment_from_str_path(tmp_path: pathlib.Path) -> None:
    """A str is a path too."""
    path = tmp_path / "data.bin"
    path.write_bytes(bytes(range(256)))
    (part,) = _attachment_parts(prepare(simple(attachments=[str(path)])).data)
    assert part.get_content() == bytes(range(256))


def test_build_attachment_from_bytes_with_name_and_type() -> None:
    """(filename, bytes) and (filename, bytes, mimetype) tuples are attachments."""
    parts = _attachment_parts(
        prepare(simple(attachments=[("a.png", b"\x89PNG"), ("b.dat", b"xy", "text/csv")])).data
    )
    assert [(p.get_filename(), p.get_content_type()) for p in parts] == [
        ("a.png", "image/png"),
        ("b.dat", "text/csv"),
    ]


def test_build_attachment_from_file_object() -> None:
    """A binary file object is read; BytesIO has no name, so the type is generic."""
    (part,) = _attachment_parts(prepare(simple(attachments=[io.BytesIO(b"\x00\x01")])).data)
    assert part.get_content_type() == "application/octet-stream"
    assert part.get_content() == b"\x00\x01"


def test_build_attachment_text_content_and_non_ascii_filename() -> None:
    """Text content is UTF-8 text/*, and a non-ASCII file name survives (RFC 2231)."""
    (part,) = _attachment_parts(prepare(simple(attachments=[Attachment("Grüße.txt", "ü\n")])).data)
    assert (part.get_filename(), content(part)) == ("Grüße.txt", "ü\n")


def test_build_attachment_message() -> None:
    """An email message is attached as message/rfc822."""
    inner = simple(subject="inner")
    (part,) = _attachment_parts(prepare(simple(attachments=[inner])).data)
    assert part.get_content_type() == "message/rfc822"
    assert part.get_content()["Subject"] == "inner"


def test_build_refuses_bare_bytes_attachment() -> None:
    """Bytes without a file name are refused."""
    with pytest.raises(InvalidArgument, match="file name"):
        simple(attachments=[b"data"])


def test_build_refuses_single_attachment_not_in_list(tmp_path: pathlib.Path) -> None:
    """A single path passed as attachments= must be wrapped in a list."""
    with pytest.raises(InvalidArgument, match="wrap"):
        simple(attachments=str(tmp_path / "x"))


def test_build_inline_image_is_related_to_html() -> None:
    """Inline images sit in multipart/related after the HTML, with Content-ID <key>."""
    msg = simple(html='<img src="cid:logo">', inline={"logo": b"\x89PNG\r\n\x1a\n...."})
    back = parse(prepare(msg).data)
    related = back.get_payload()[1]  # type: ignore[index]
    html, image = related.get_payload()
    assert (back.get_content_type(), related.get_content_type()) == (
        "multipart/alternative",
        "multipart/related",
    )
    assert html.get_content_type() == "text/html"
    assert (image["Content-ID"], image.get_content_type()) == ("<logo>", "image/png")
    assert image.get_content_disposition() == "inline"


def test_build_inline_needs_html() -> None:
    """Inline images without HTML to show them are refused."""
    with pytest.raises(InvalidArgument, match="html"):
        simple(inline={"logo": b"\x89PNG"})


@pytest.mark.parametrize("key", ["", "a b", "<logo>", "lo\r\ngo", "ü"])
def test_build_refuses_bad_inline_key(key: str) -> None:
    """Content-ID keys must be plain ASCII tokens."""
    with pytest.raises(InvalidArgument):
        simple(html="x", inline={key: b"\x89PNG"})


def test_build_extra_headers() -> None:
    """Extra headers are written as given."""
    back = parse(prepare(simple(headers={"List-Unsubscribe": "<mailto:u@example.org>"})).data)
    assert back["List-Unsubscribe"] == "<mailto:u@example.org>"


@pytest.mark.parametrize("name", ["To", "subject", "Content-Type", "MIME-Version", "Message-ID"])
def test_build_refuses_headers_set_by_keywords(name: str) -> None:
    """Headers that a keyword or the body sets cannot be given again."""
    with pytest.raises(InvalidArgument):
        simple(headers={name: "x"})


def test_build_refuses_malformed_message_id() -> None:
    """message_id must be <left@right>."""
    with pytest.raises(InvalidArgument, match="message_id"):
        simple(message_id="no-brackets@example.org")


def test_build_policy_verifies_generated_headers_where_available() -> None:
    """POLICY turns on verify_generated_headers on Pythons that have it (CVE-2024-6923)."""
    if hasattr(email.policy.default, "verify_generated_headers"):
        assert POLICY.verify_generated_headers is True  # type: ignore[attr-defined]
    assert POLICY.linesep == "\r\n"


# --- header injection -------------------------------------------------------------


@pytest.mark.parametrize("char", ["\r", "\n", "\r\n", "\x00", "\u2028", "\x85"])
@pytest.mark.parametrize(
    "where",
    ["subject", "display name", "address", "header value", "header name", "filename"],
)
def test_injection_is_refused_everywhere(where: str, char: str) -> None:
    """CR, LF, NUL and other line breaks raise HeaderInjection or InvalidAddress."""
    evil = f"x{char}Bcc: victim@example.com"
    cases = {
        "subject": lambda: simple(subject=evil),
        "display name": lambda: simple(to=[(evil, "bob@example.net")]),
        "address": lambda: simple(to=f"bob@example.net{char}"),
        "header value": lambda: simple(headers={"X-Note": evil}),
        "header name": lambda: simple(headers={f"X-A{char}B": "v"}),
        "filename": lambda: simple(attachments=[(evil, b"x")]),
    }
    with pytest.raises(HeaderInjection):
        cases[where]()


@pytest.mark.parametrize("name", ["", "X Note", "X:Note", "Nöte"])
def test_invalid_header_name_is_refused(name: str) -> None:
    """Header names must be RFC 5322 ftext."""
    with pytest.raises(HeaderInjection):
        simple(headers={name: "v"})


def test_prepare_refuses_nul_set_directly_on_email_message() -> None:
    """A NUL the email package accepted is still refused when preparing."""
    msg = simple()
    msg["X-Note"] = "a\x00b"
    with pytest.raises(HeaderInjection, match="NUL"):
        prepare(msg)


def test_prepare_refuses_encoded_word_hiding_a_newline() -> None:
    """An encoded word that decodes to CRLF cannot smuggle a field (CVE-2024-6923)."""
    msg = simple()
    msg["Subject"] = "=?utf-8?q?hi=0D=0ABcc=3A_victim=40example=2Ecom?="
    with pytest.raises(HeaderInjection):
        prepare(msg)


def test_prepare_refuses_newline_in_compat32_header() -> None:
    """A compat32 message stores anything; prepare still refuses an injected field."""
    msg = MIMEText("body")
    msg["From"] = "alice@example.org"
    msg["To"] = "bob@example.net"
    msg["Subject"] = "hi\r\nBcc: victim@example.com"
    with pytest.raises(HeaderInjection):
        prepare(msg)


def test_prepare_refuses_bad_header_name_in_compat32() -> None:
    """A header name with a space is refused, not written."""
    msg = MIMEText("body")
    msg["From"] = "alice@example.org"
    msg["To"] = "bob@example.net"
    msg["Bcc "] = "victim@example.com"
    with pytest.raises(HeaderInjection, match="header name"):
        prepare(msg)


@pytest.mark.parametrize("policy", [email.policy.default, email.policy.compat32])
def test_prepare_refuses_cve_2023_27043_to_header(policy: email.policy.Policy) -> None:
    """An ambiguous To field is refused, not parsed into a guess (CVE-2023-27043)."""
    msg = Message(policy=policy)
    msg["From"] = "alice@example.org"
    msg["To"] = CVE_2023_27043
    msg.set_payload("body")
    with pytest.raises(InvalidAddress, match="refusing to guess"):
        prepare(msg)


# --- prepare: Date, Message-ID, envelope ----------------------------------------------


def test_prepare_adds_date_and_message_id_without_changing_the_message() -> None:
    """Missing Date and Message-ID are added to the bytes only."""
    msg = simple()
    before = msg.as_bytes()
    prepared = prepare(msg)
    back = parse(prepared.data)
    assert back["Date"].datetime is not None
    assert back["Message-ID"] == prepared.message_id
    assert prepared.message_id.endswith("@example.org>")
    assert msg.as_bytes() == before


def test_prepare_keeps_given_date_and_message_id() -> None:
    """Given values are kept, once each."""
    when = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone(timedelta(hours=2)))
    prepared = prepare(simple(date=when, message_id="<id-1@example.org>"))
    back = parse(prepared.data)
    assert prepared.message_id == "<id-1@example.org>"
    assert (back["Date"].datetime, back.get_all("Message-ID")) == (when, ["<id-1@example.org>"])
    assert header_names(prepared.data).count("Date") == 1


def test_prepare_message_ids_are_unique() -> None:
    """Each preparation of a message without Message-ID gets a new one."""
    msg = simple()
    assert len({prepare(msg).message_id for _ in range(50)}) == 50


def test_prepare_message_id_domain_argument_and_idna() -> None:
    """domain= wins; a non-ASCII From domain is used in its A-label form."""
    assert prepare(simple(), domain="mx.example.com").message_id.endswith("@mx.example.com>")
    idn = prepare(simple(sender="a@bücher.example"))
    assert idn.message_id.endswith("@xn--bcher-kva.example>")


def test_prepare_derives_envelope_from_headers() -> None:
    """Sender from From; recipients To, Cc, Bcc in order, duplicates removed."""
    msg = simple(to="b@example.net", cc=["c@example.net", "b@EXAMPLE.net"], bcc="d@example.net")
    env = prepare(msg).envelope
    assert (env.sender, env.recipients) == (
        "alice@example.org",
        ("b@example.net", "c@example.net", "d@example.net"),
    )


def test_prepare_prefers_sender_header() -> None:
    """The Sender field, when present, is the envelope sender (RFC 5322 3.6.2)."""
    msg = simple(headers={"Sender": "agent@example.org"})
    assert prepare(msg).envelope.sender == "agent@example.org"


def test_prepare_bcc_is_in_envelope_never_in_data() -> None:
    """Bcc recipients get the message; the Bcc field is not sent (THREATS S11)."""
    prepared = prepare(simple(bcc=["hidden@example.net", "x@example.com"]))
    assert "hidden@example.net" in prepared.envelope.recipients
    assert b"hidden" not in prepared.data
    assert b"Bcc" not in prepared.data


def test_prepare_uses_resent_block() -> None:
    """A re-sent message goes to the Resent-* recipients, and Resent-Bcc is not sent."""
    msg = simple(
        to="orig@example.net",
        bcc="orig-bcc@example.net",
        headers=[
            ("Resent-Date", "Mon, 06 May 2024 07:08:09 +0000"),
            ("Resent-From", "forwarder@example.org"),
            ("Resent-To", "new@example.net"),
            ("Resent-Bcc", "new-bcc@example.net"),
        ],
    )
    prepared = prepare(msg)
    assert prepared.envelope.sender == "forwarder@example.org"
    assert prepared.envelope.recipients == ("new@example.net", "new-bcc@example.net")
    assert b"bcc@" not in prepared.data


def test_prepare_uses_topmost_resent_block() -> None:
    """With two resent blocks, the topmost (latest) one decides (RFC 5322 3.6.6)."""
    msg = Message(policy=email.policy.default)
    for name, value in [
        ("Resent-Date", "Tue, 07 May 2024 07:08:09 +0000"),
        ("Resent-From", "second@example.org"),
        ("Resent-To", "latest@example.net"),
        ("Resent-Date", "Mon, 06 May 2024 07:08:09 +0000"),
        ("Resent-From", "first@example.org"),
        ("Resent-To", "earlier@example.net"),
        ("From", "alice@example.org"),
        ("To", "bob@example.net"),
    ]:
        msg.set_raw(name, value)
    msg.set_payload("body")
    env = prepare(msg).envelope
    assert (env.sender, env.recipients) == ("second@example.org", ("latest@example.net",))


def test_prepare_refuses_from_with_two_mailboxes_and_no_sender() -> None:
    """Several From mailboxes need a Sender field to choose the envelope sender."""
    msg = simple()
    msg.replace_header("From", "a@example.org, b@example.org")
    with pytest.raises(InvalidArgument, match="Sender"):
        prepare(msg)


def test_prepare_refuses_message_without_from() -> None:
    """With no From (or Sender), the envelope sender cannot be derived."""
    msg = simple()
    del msg["From"]
    with pytest.raises(InvalidAddress, match="no From"):
        prepare(msg)
    assert prepare(msg, sender="x@example.org").envelope.sender == "x@example.org"


def test_prepare_explicit_envelope_is_used_as_is() -> None:
    """An explicit envelope overrides the headers (but Bcc is still not sent)."""
    env = Envelope(sender="", recipients=("other@example.com",), ret="HDRS")
    prepared = prepare(simple(bcc="hidden@example.net"), envelope=env)
    assert prepared.envelope == env
    assert b"hidden" not in prepared.data


def test_prepare_sender_and_recipients_overrides() -> None:
    """sender= and recipients= each replace one half of the derived envelope."""
    env = prepare(simple(), recipients=["z@example.com"]).envelope
    assert (env.sender, env.recipients) == ("alice@example.org", ("z@example.com",))
    assert prepare(simple(), sender="").envelope.recipients == ("bob@example.net",)


def test_prepare_refuses_envelope_with_sender() -> None:
    """envelope= and sender= together are ambiguous."""
    env = Envelope(sender="a@example.org", recipients=("b@example.net",))
    with pytest.raises(InvalidArgument, match="either"):
        prepare(simple(), envelope=env, sender="c@example.org")


def test_prepare_raises_flags_on_explicit_envelope() -> None:
    """An explicit envelope gets BODY=8BITMIME when the data is 8-bit."""
    env = Envelope(sender="a@example.org", recipients=("b@example.net",))
    assert prepare(simple(text="ü"), envelope=env).envelope.body == "8BITMIME"


def test_prepare_refuses_7bit_envelope_with_8bit_data() -> None:
    """BODY=7BIT cannot carry 8-bit data."""
    env = Envelope(sender="a@example.org", recipients=("b@example.net",), body="7BIT")
    with pytest.raises(InvalidArgument, match="7BIT"):
        prepare(simple(text="ü"), envelope=env)


def test_prepare_data_is_crlf_only() -> None:
    """Every line ends with CRLF."""
    data = prepare(simple(text="a\nb\rc\r\nd", html="<p>\n</p>")).data
    assert data.count(b"\n") == data.count(b"\r\n") == data.count(b"\r")


def test_prepared_message_repr_hides_data() -> None:
    """repr() shows the size, never the message bytes."""
    prepared = prepare(simple(text="confidential body text"))
    assert "confidential" not in repr(prepared)
    assert f"size={len(prepared.data)}" in repr(prepared)
    assert prepared.size == len(prepared.data)


def test_prepare_refuses_other_types() -> None:
    """Only Message objects and bytes are messages."""
    with pytest.raises(InvalidArgument, match="Message or bytes"):
        prepare("From: a@example.org\r\n\r\nbody")  # type: ignore[arg-type]


# --- prepare: serialisation matches the standard library -------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"html": "<p>hi</p>"},
        {"subject": "x" * 200},
        {"subject": "Grüße — ünïcödé", "to": [("Zoë", "zoe@example.net")]},
        {"text": "long line " * 40, "attachments": [("a.bin", bytes(range(256)))]},
        {"html": "<img src=cid:k>", "inline": {"k": b"GIF89a..."}, "text": "t"},
        {"to": [f"user{i}@example.net" for i in range(12)]},
        {"headers": {"X-Empty": "", "X-Spaces": "  a  b  ", "X-Tab": "a\tb"}},
        {"to": "jörg@bücher.example"},
    ],
)
def test_prepare_matches_bytes_generator(kwargs: dict[str, object]) -> None:
    """Without Bcc or added fields, the bytes equal BytesGenerator's with CRLF."""
    msg = simple(date=datetime(2024, 1, 2, tzinfo=timezone.utc), message_id="<m@x.org>", **kwargs)
    prepared = prepare(msg)
    policy = msg.policy.clone(linesep="\r\n", utf8=prepared.needs_smtputf8)
    assert prepared.data == msg.as_bytes(policy=policy)


def test_prepare_matches_bytes_generator_for_compat32() -> None:
    """A compat32 MIMEText message is written as smtplib would write it."""
    msg = MIMEText("héllo\nworld", "plain", "utf-8")
    msg["From"] = "alice@example.org"
    msg["To"] = "Bob <bob@example.net>"
    msg["Subject"] = "Test"
    msg["Date"] = "Mon, 06 May 2024 07:08:09 +0000"
    msg["Message-ID"] = "<m@x.org>"
    assert prepare(msg).data == msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


def test_prepare_invalid_date_is_written_as_the_stdlib_writes_it() -> None:
    """Even an unparsable Date is serialised exactly like BytesGenerator does."""
    msg = simple(message_id="<m@x.org>")
    msg["Date"] = "not a date"
    assert prepare(msg).data == msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


def test_prepare_gives_a_multipart_without_boundary_one() -> None:
    """A multipart built without a boundary gets a short one that parses back."""
    msg = EmailMessage(policy=POLICY)
    msg["From"] = "alice@example.org"
    msg["To"] = "bob@example.net"
    msg.make_mixed()
    part = EmailMessage(policy=POLICY)
    part.set_content("inner")
    msg.attach(part)
    back = parse(prepare(msg).data)
    assert content(back.get_payload()[0]) == "inner\n"  # type: ignore[index]


def test_prepare_refuses_a_boundary_inside_its_part() -> None:
    """A boundary that occurs as a line in a part would cut the message: refused."""
    msg = simple()
    msg.make_mixed()
    msg.set_boundary("XYZ")
    msg.get_payload()[0].set_content("text\n--XYZ\nmore\n")  # type: ignore[index]
    with pytest.raises(InvalidArgument, match="boundary"):
        prepare(msg)


# --- prepare: bytes ----------------------------------------------------------------------


BYTES_MESSAGE = (
    b"From: alice@example.org\n"
    b"To: bob@example.net\n"
    b"Bcc: hidden@example.net,\n"
    b" other@example.net\n"
    b"Subject: hi\n"
    b"\n"
    b"body\n"
)
ENV = Envelope(sender="alice@example.org", recipients=("bob@example.net",))


def test_prepare_bytes_needs_an_envelope() -> None:
    """Bytes carry no parsed envelope: one must be given."""
    with pytest.raises(InvalidArgument, match="bytes"):
        prepare(BYTES_MESSAGE)
    prepared = prepare(BYTES_MESSAGE, sender="a@example.org", recipients=["b@example.net"])
    assert prepared.envelope.recipients == ("b@example.net",)


def test_prepare_bytes_normalises_and_strips_bcc() -> None:
    """Line endings become CRLF, and Bcc with its continuation line is gone."""
    prepared = prepare(BYTES_MESSAGE, envelope=ENV, domain="example.org")
    assert b"hidden" not in prepared.data
    assert b"other@" not in prepared.data
    assert prepared.data.count(b"\n") == prepared.data.count(b"\r\n")
    assert prepared.data.endswith(b"\r\n\r\nbody\r\n")
    assert header_names(prepared.data) == ["From", "To", "Subject", "Date", "Message-ID"]


def test_prepare_bytes_keeps_existing_message_id_and_bytes() -> None:
    """A complete CRLF message is passed through unchanged, zero-copy."""
    data = b"Date: Mon, 06 May 2024 07:08:09 +0000\r\nMessage-ID:\r\n <a@b>\r\n\r\nbody\r\n"
    prepared = prepare(data, envelope=ENV)
    assert prepared.data is data
    assert prepared.message_id == "<a@b>"


@pytest.mark.parametrize(
    "data",
    [
        b"From: a@example.org\r\nnot a header\r\n\r\nbody",
        b" continuation first\r\n\r\nbody",
        b"Bcc : x@example.net\r\n\r\nbody",
        b"From: a@example.org\r\n \r\nX: y\r\n\r\nbody",
        b"Subject: a\x00b\r\n\r\nbody",
    ],
)
def test_prepare_bytes_refuses_malformed_header_section(data: bytes) -> None:
    """A header line that is not a field or a continuation is refused."""
    with pytest.raises(HeaderInjection):
        prepare(data, envelope=ENV, domain="example.org")


def test_prepare_bytes_flags() -> None:
    """8-bit body means needs_8bit; 8-bit header means needs_smtputf8 too."""
    body8 = prepare(b"Subject: a\r\n\r\n\xc3\xbc\r\n", envelope=ENV, domain="x.org")
    head8 = prepare(b"Subject: \xc3\xbc\r\n\r\nb\r\n", envelope=ENV, domain="x.org")
    assert (body8.needs_8bit, body8.needs_smtputf8) == (True, False)
    assert (head8.needs_8bit, head8.needs_smtputf8) == (True, True)
    assert head8.envelope.smtputf8 is True


def test_prepare_bytes_binarymime_body_is_not_normalised() -> None:
    """A BINARYMIME body is sent as is; only the header section is checked."""
    env = Envelope(sender="a@example.org", recipients=("b@example.net",), body="BINARYMIME")
    data = b"Message-ID: <a@b>\r\nDate: x\r\n\r\n\x00\n\r\xff"
    assert prepare(data, envelope=env).data == data


def test_prepare_bytes_null_sender_needs_message_id_domain() -> None:
    """A bounce without Message-ID needs domain= to make one."""
    env = Envelope(sender="", recipients=("b@example.net",))
    with pytest.raises(InvalidArgument, match="domain"):
        prepare(b"Subject: x\r\n\r\nb", envelope=env)
    assert prepare(b"Subject: x\r\n\r\nb", envelope=env, domain="mx.example.org").message_id


# --- downgrade -----------------------------------------------------------------------------


def test_downgrade_is_a_no_op_when_the_server_has_everything() -> None:
    """The same object comes back when nothing is missing."""
    prepared = prepare(simple(to="jörg@example.net", text="ü"))
    assert downgrade(prepared, eightbitmime=True, smtputf8=True) is prepared


def test_downgrade_eight_bit_bodies() -> None:
    """Without 8BITMIME, text becomes quoted-printable and other parts base64."""
    msg = simple(text="Grüße\n", attachments=[Attachment("a.txt", b"\xff\xfe", "text/plain")])
    msg.get_payload()[1].replace_header("Content-Transfer-Encoding", "8bit")  # type: ignore[index]
    msg.get_payload()[1].set_payload(b"\xff\xfe".decode("ascii", "surrogateescape"))  # type: ignore[index]
    msg.get_payload()[1].replace_header("Content-Type", "application/octet-stream")  # type: ignore[index]
    prepared = prepare(msg)
    down = downgrade(prepared, eightbitmime=False, smtputf8=True)
    back = parse(down.data)
    text, binary = back.get_payload()  # type: ignore[misc]
    assert down.data.isascii()
    assert (down.needs_8bit, down.envelope.body) == (False, None)
    assert (text["Content-Transfer-Encoding"], content(text)) == ("quoted-printable", "Grüße\n")
    assert (binary["Content-Transfer-Encoding"], binary.get_content()) == ("base64", b"\xff\xfe")


def test_downgrade_keeps_unchanged_fields_exactly() -> None:
    """Fields that need no change come back byte for byte."""
    prepared = prepare(simple(text="ü", subject="plain subject"))
    down = downgrade(prepared, eightbitmime=False, smtputf8=False)

    def fields(data: bytes) -> list[bytes]:
        head = data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
        return [f for f in head if not f.startswith(b"Content-Transfer-Encoding:")]

    assert fields(down.data) == fields(prepared.data)
    assert b"Content-Transfer-Encoding: quoted-printable\r\n" in down.data


def test_downgrade_smtputf8_domains_and_names() -> None:
    """Without SMTPUTF8, domains become A-labels and names RFC 2047 words."""
    msg = build_message(
        sender=("Jörg", "joerg@bücher.example"),
        to=[("Zoë", "zoe@bücher.example")],
        subject="Grüße",
        text="ü",
    )
    down = downgrade(prepare(msg), eightbitmime=True, smtputf8=False)
    back = parse(down.data)
    head = down.data.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()
    assert (down.needs_smtputf8, down.envelope.smtputf8) == (False, False)
    assert down.envelope.sender == "joerg@xn--bcher-kva.example"
    assert down.envelope.recipients == ("zoe@xn--bcher-kva.example",)
    assert (back["From"].addresses[0].display_name, back["From"].addresses[0].domain) == (
        "Jörg",
        "xn--bcher-kva.example",
    )
    assert back["Subject"] == "Grüße"
    assert down.envelope.body == "8BITMIME"


def test_downgrade_refuses_non_ascii_local_part() -> None:
    """A non-ASCII local part has no ASCII form: SMTPUTF8Required, before DATA."""
    prepared = prepare(simple(to="jörg@example.net"))
    with pytest.raises(SMTPUTF8Required):
        downgrade(prepared, eightbitmime=True, smtputf8=False)


def test_downgrade_refuses_non_ascii_envelope_only() -> None:
    """An envelope recipient with a non-ASCII local part also needs SMTPUTF8."""
    env = Envelope(sender="a@example.org", recipients=("jörg@example.net",))
    with pytest.raises(SMTPUTF8Required):
        downgrade(prepare(simple(), envelope=env), eightbitmime=True, smtputf8=False)


def test_downgrade_refuses_non_ascii_in_structured_field() -> None:
    """Non-ASCII in a field without an ASCII encoding is refused."""
    data = b"References: <\xc3\xbc@example.org>\r\nMessage-ID: <a@b>\r\nDate: x\r\n\r\nb\r\n"
    with pytest.raises(SMTPUTF8Required, match="References"):
        downgrade(prepare(data, envelope=ENV), eightbitmime=True, smtputf8=False)


def test_downgrade_clears_unneeded_flags() -> None:
    """SMTPUTF8 asked for an ASCII message is dropped for a server without it."""
    env = Envelope(sender="a@example.org", recipients=("b@example.net",), smtputf8=True)
    down = downgrade(prepare(simple(), envelope=env), eightbitmime=True, smtputf8=False)
    assert down.envelope.smtputf8 is False


def test_downgrade_refuses_8bit_preamble() -> None:
    """8-bit bytes outside any part cannot be re-encoded."""
    data = (
        b"Message-ID: <a@b>\r\nDate: x\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"pr\xc3\xa9amble\r\n--b\r\n\r\nx\r\n--b--\r\n"
    )
    with pytest.raises(ExtensionNotSupported, match="8BITMIME"):
        downgrade(prepare(data, envelope=ENV), eightbitmime=False, smtputf8=True)


def test_errors_are_usage_errors() -> None:
    """Every refusal here is a UsageError, caught before anything is sent."""
    assert issubclass(HeaderInjection, UsageError)
    assert issubclass(SMTPUTF8Required, UsageError)
    assert issubclass(InvalidAddress, UsageError)
    assert isinstance(PreparedMessage, type)
