"""Tests for the RFC 5321/6531 grammar: mailboxes, EHLO names, ESMTP parameters, xtext."""

from __future__ import annotations

import ipaddress
import re

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from mailtransfer.protocol import _grammar
from mailtransfer.protocol._errors import InvalidAddress, InvalidArgument
from mailtransfer.protocol._grammar import (
    Mailbox,
    check_argument,
    check_esmtp_keyword,
    check_esmtp_value,
    parse_domain,
    parse_mailbox,
    parse_reverse_path,
    xtext_decode,
    xtext_encode,
)

# --- Strategies ------------------------------------------------------------------

_ATEXT_ASCII = "ABCXYZabcxyz0189!#$%&'*+/=?^_`{|}~-"
_NON_ASCII = st.characters(min_codepoint=0xA0, exclude_categories=["Cs"])
_DOMAIN_NON_ASCII = st.characters(
    min_codepoint=0xA0, exclude_categories=["Cs"], exclude_characters="\u3002\uff0e\uff61"
)
_PRINTABLE_ASCII = [chr(c) for c in range(32, 127)]
_QTEXT_ASCII = [c for c in _PRINTABLE_ASCII if c not in '"\\']

_atom = st.text(st.one_of(st.sampled_from(_ATEXT_ASCII), _NON_ASCII), min_size=1, max_size=8)
_dot_string = st.lists(_atom, min_size=1, max_size=4).map(".".join)
_qcontent = st.one_of(
    st.sampled_from(_QTEXT_ASCII),
    st.sampled_from(_PRINTABLE_ASCII).map(lambda c: "\\" + c),
    _NON_ASCII,
)
_quoted = st.lists(_qcontent, max_size=10).map(lambda parts: '"' + "".join(parts) + '"')
_local_part = st.one_of(_dot_string, _quoted).filter(lambda s: len(s.encode("utf-8")) <= 64)

_let_dig = st.one_of(st.sampled_from("abcXYZ019"), _DOMAIN_NON_ASCII)
_label = (
    st.builds(
        lambda first, middle, last: first + middle + last,
        _let_dig,
        st.text(st.one_of(_let_dig, st.just("-")), max_size=6),
        _let_dig,
    )
    | _let_dig
)
_domain_name = st.lists(_label, min_size=1, max_size=4).map(".".join)
_address_literal = st.one_of(
    st.ip_addresses(v=4).map(lambda ip: f"[{ip}]"),
    st.ip_addresses(v=6).map(lambda ip: f"[IPv6:{ip}]"),
    st.from_regex(r"[A-Za-z0-9]{1,5}:[!-Z^-~]{1,10}", fullmatch=True).map(lambda s: f"[{s}]"),
)
_domain = st.one_of(_domain_name, _address_literal)

_CONTROLS = [chr(c) for c in range(0x20)] + ["\x7f"]
_INJECTIONS = {
    "crlf": "\r\n",
    "cr": "\r",
    "lf": "\n",
    "nul": "\x00",
    "tab": "\t",
    "del": "\x7f",
}


# --- check_argument -------------------------------------------------------------------


def test_check_argument_returns_clean_value() -> None:
    """A value without control characters comes back unchanged."""
    assert check_argument("mail.example.org", name="EHLO name") == "mail.example.org"


@pytest.mark.parametrize("injection", list(_INJECTIONS.values()), ids=list(_INJECTIONS))
def test_check_argument_refuses_injection(injection: str) -> None:
    """CR, LF, NUL, TAB and DEL in an argument raise InvalidArgument."""
    with pytest.raises(InvalidArgument, match="control characters"):
        check_argument(f"a@b{injection}RCPT TO:<x@y>", name="sender")


def test_check_argument_message_names_argument_and_char_not_value() -> None:
    """The error names the argument and the escaped character, never the value itself."""
    value = "secret-token-" + "x" * 500 + "\r\nQUIT"
    with pytest.raises(InvalidArgument) as info:
        check_argument(value, name="AUTH argument")
    message = str(info.value)
    assert "AUTH argument" in message
    assert "'\\r'" in message
    assert f"position {value.index(chr(13))}" in message
    assert "secret-token" not in message


def test_check_argument_refuses_non_str() -> None:
    """Bytes are not a command argument."""
    with pytest.raises(InvalidArgument, match="must be str, but got bytes"):
        check_argument(b"abc", name="sender")  # type: ignore[arg-type]


@given(st.text(max_size=30), st.sampled_from(_CONTROLS), st.text(max_size=30))
def test_check_argument_refuses_any_control(before: str, control: str, after: str) -> None:
    """Any string holding a C0 control or DEL is refused."""
    with pytest.raises(InvalidArgument):
        check_argument(before + control + after, name="argument")


# --- parse_mailbox: valid ---------------------------------------------------------------

_VALID = [
    ("user@example.org", "user", "example.org"),
    ("first.last+tag@sub.example.co.uk", "first.last+tag", "sub.example.co.uk"),
    ("!#$%&'*+-/=?^_`{|}~@x", "!#$%&'*+-/=?^_`{|}~", "x"),
    ('"john doe"@example.org', '"john doe"', "example.org"),
    ('"a@b\\"c"@example.org', '"a@b\\"c"', "example.org"),
    ('""@example.org', '""', "example.org"),
    ("postmaster@[192.0.2.1]", "postmaster", "[192.0.2.1]"),
    ("x@[IPv6:2001:db8::1]", "x", "[IPv6:2001:db8::1]"),
    ("x@[IPv6:1:2:3:4:5:6:7:8]", "x", "[IPv6:1:2:3:4:5:6:7:8]"),
    ("x@[IPv6:::ffff:192.0.2.1]", "x", "[IPv6:::ffff:192.0.2.1]"),
    ("x@[IPv6:1:2:3:4:5:6:192.0.2.1]", "x", "[IPv6:1:2:3:4:5:6:192.0.2.1]"),
    ("x@[ipv6:::1]", "x", "[ipv6:::1]"),
    ("x@[IPv6:1:2:3:4:5:6::]", "x", "[IPv6:1:2:3:4:5:6::]"),
    ("x@[IPv6:1:2:3:4::192.0.2.1]", "x", "[IPv6:1:2:3:4::192.0.2.1]"),
    ("x@[tag:any-content]", "x", "[tag:any-content]"),
    ("user@a-b--c.d0", "user", "a-b--c.d0"),
    ("用户@例子.广告", "用户", "例子.广告"),
    ("jörg@bücher.de", "jörg", "bücher.de"),
]


@pytest.mark.parametrize(("address", "local", "domain"), _VALID)
def test_parse_mailbox_valid(address: str, local: str, domain: str) -> None:
    """Valid RFC 5321/6531 addresses split into local part and domain and round-trip."""
    box = parse_mailbox(address)
    assert (box.local_part, box.domain) == (local, domain)
    assert str(box) == address


@given(_local_part, _domain)
def test_generated_mailboxes_round_trip(local: str, domain: str) -> None:
    """Any generated valid mailbox parses into its parts and str() gives it back."""
    address = f"{local}@{domain}"
    assume(len(address.encode("utf-8")) <= 254 and len(domain.encode("utf-8")) <= 255)
    box = parse_mailbox(address)
    assert (box.local_part, box.domain) == (local, domain)
    assert str(box) == address


@given(st.ip_addresses(v=6))
def test_any_ipv6_literal_is_accepted(ip: ipaddress.IPv6Address) -> None:
    """Every IPv6 address in its exploded and compressed forms is a valid literal."""
    for form in (str(ip), ip.exploded):
        assert parse_mailbox(f"x@[IPv6:{form}]").domain == f"[IPv6:{form}]"


# --- parse_mailbox: invalid -------------------------------------------------------------

_INVALID = [
    ("", "address is empty"),
    ('"a\\', "ends unexpectedly at position 3"),
    ("user", "no '@'"),
    ("user.example.org", "no '@'"),
    ("@example.org", "empty local part"),
    ("user@", "empty domain"),
    ("a..b@example.org", "'.' at position 1"),
    (".a@example.org", "'.' at position 0"),
    ("a.@example.org", "'.' at position 1"),
    ("a b@example.org", "' ' at position 1"),
    ("a@b@example.org", "'@' at position 3"),
    ("a@exa mple.org", "' ' at position 5"),
    ("a@example..org", "'.' at position 10"),
    ("a@example.org.", "ends with '.'"),
    ("a@-example.org", "'-' at position 2"),
    ("a@example-.org", "'-' at position 9"),
    ("a@exa_mple.org", "'_' at position 5"),
    ('"unterminated@example.org', "unterminated quoted string"),
    ('"a"b@example.org', "'b' at position 3"),
    ('"a\\é"@example.org', "'é' at position 3"),
    ("<a@example.org>", "'<' at position 0"),
    ("a@[192.0.2.1", "closing ']'"),
    ("a@[192.0.2.256]", "address literal"),
    ("a@[192.0.2]", "address literal"),
    ("a@[IPv6:1:2:3:4:5:6:7::]", "address literal at position 2"),
    ("a@[IPv6:1::2:3:4:5:6:7]", "address literal"),
    ("a@[IPv6:1:2:3:4:5::192.0.2.1]", "address literal"),
    ("a@[IPv6:12345::]", "address literal"),
    ("a@[IPv6:fe80::1%eth0]", "address literal"),
    ("a@[]", "address literal"),
    ("a@[tag:]", "address literal"),
    ("a@[-:x]", "address literal"),
    ("a@exa\u3002mple.org", "'\u3002' at position 5"),
    ("a\x85@example.org", "position 1"),
    ("a\ud800@example.org", "position 1"),
]


@pytest.mark.parametrize(("address", "fragment"), _INVALID)
def test_parse_mailbox_invalid(address: str, fragment: str) -> None:
    """Malformed addresses raise InvalidAddress saying what is wrong and where."""
    with pytest.raises(InvalidAddress) as info:
        parse_mailbox(address)
    assert fragment in str(info.value)


@pytest.mark.parametrize("injection", list(_INJECTIONS.values()), ids=list(_INJECTIONS))
@pytest.mark.parametrize("where", ["local", "domain", "quoted"])
def test_parse_mailbox_refuses_injection(injection: str, where: str) -> None:
    """Control characters anywhere in an address, even inside quotes, are refused."""
    address = {
        "local": f"a{injection}b@example.org",
        "domain": f"a@example.org{injection}DATA",
        "quoted": f'"a{injection}b"@example.org',
    }[where]
    with pytest.raises(InvalidAddress, match="control characters"):
        parse_mailbox(address)


@given(st.text(max_size=20), st.sampled_from(_CONTROLS), st.text(max_size=20))
def test_parse_mailbox_refuses_any_control(before: str, control: str, after: str) -> None:
    """An address holding a control character is refused, naming the first one's position."""
    address = before + control + after
    first = re.search("[\x00-\x1f\x7f]", address)
    assert first is not None
    with pytest.raises(InvalidAddress, match=f"at position {first.start()}$"):
        parse_mailbox(address)


@given(st.text(max_size=80))
def test_parse_mailbox_raises_only_invalid_address(text: str) -> None:
    """Arbitrary text either parses and round-trips or raises InvalidAddress, nothing else."""
    try:
        box = parse_mailbox(text)
    except InvalidAddress:
        return
    assert str(box) == text


@given(st.text(alphabet='a.@"\\-[]:1 éx', max_size=60))
def test_parse_mailbox_on_grammar_heavy_text(text: str) -> None:
    """Text built from the grammar's delimiters parses and round-trips or raises InvalidAddress."""
    try:
        box = parse_mailbox(text)
    except InvalidAddress:
        return
    assert str(box) == text


def _general_parse(text: str) -> Mailbox | str:
    """What the general parser (no plain-ASCII shortcut) makes of ``text``: Mailbox or error."""
    try:
        return _grammar._parse_general(text)
    except InvalidAddress as exc:
        return f"error: {exc}"


def _parse(text: str) -> Mailbox | str:
    try:
        return _grammar._parse_mailbox.__wrapped__(text)  # type: ignore[attr-defined]
    except InvalidAddress as exc:
        return f"error: {exc}"


_plain_ascii_text = st.text(alphabet="ab.-@_+x9", max_size=70) | st.builds(
    lambda local, labels: local + "@" + ".".join(labels),
    st.text(alphabet="ab.+-x", min_size=1, max_size=70),
    st.lists(st.text(alphabet="ab-9", min_size=1, max_size=70), min_size=1, max_size=5),
)


@given(
    _plain_ascii_text
    | st.text(max_size=40)
    | st.builds(lambda local, domain: local + "@" + domain, _local_part, _domain)
)
def test_plain_ascii_shortcut_agrees_with_the_general_parser(text: str) -> None:
    """The one-match path for plain ASCII addresses gives what the general parser gives.

    Same Mailbox (equal parts, same type) or the same error, sizes near the limits included.
    """
    fast, general = _parse(text), _general_parse(text)
    assert fast == general
    if isinstance(fast, Mailbox):
        assert type(fast) is Mailbox
        assert str(fast) == text
        Mailbox(fast.local_part, fast.domain)  # the parts pass the class's own checks


@pytest.mark.parametrize(
    "address",
    [
        "a" * 64 + "@example.org",
        "a" * 65 + "@example.org",
        "a@" + "b" * 63 + ".org",
        "a@" + "b" * 64 + ".org",
        "a@" + ".".join(["b" * 63] * 3) + "." + "c" * 59,  # 254 octets: the path limit
        "a@" + ".".join(["b" * 63] * 3) + "." + "c" * 60,
        "a..b@example.org",
        "a@example..org",
        "a@-example.org",
        "a@example.org.",
    ],
)
def test_plain_ascii_shortcut_at_the_limits(address: str) -> None:
    """Addresses at and just past the RFC 5321 limits: the shortcut agrees with the general path."""
    assert _parse(address) == _general_parse(address)


def test_error_message_does_not_echo_long_address() -> None:
    """An error about a long address does not repeat it."""
    with pytest.raises(InvalidAddress) as info:
        parse_mailbox("q" * 5000 + " @example.org")
    assert "qqqq" not in str(info.value)
    assert len(str(info.value)) < 200


_ADVERSARIAL = [
    "a" * 100_000,
    "a." * 50_000 + "@x",
    "a" * 100_000 + "@",
    '"' + "\\" * 100_000,
    '"' + "\\a" * 50_000 + "@x",
    "é" * 100_000 + "@x",
    "a@" + "a-" * 50_000,
    "a@" + "a." * 50_000,
    "a@" + "-" * 100_000,
    "a@" + "1" * 100_000 + "!",
    "a@[" + "1" * 100_000 + "]",
    "a@[" + "a-" * 50_000 + "]",
    "a@[" + "-a" * 50_000 + "]",
    "a@[IPv6:" + "1:" * 50_000 + "]",
    "a@[IPv6:" + "::" * 50_000 + "]",
    "a@[" + "1." * 50_000 + "]",
    "a@" + "ü-" * 50_000 + "x",
]


@pytest.mark.parametrize("address", _ADVERSARIAL, ids=range(len(_ADVERSARIAL)))
def test_parse_mailbox_adversarial_100kb(address: str) -> None:
    """A 100 KB hostile address is refused (the grammar cannot backtrack catastrophically)."""
    with pytest.raises(InvalidAddress):
        parse_mailbox(address)


@pytest.mark.parametrize("name", [s[2:] for s in _ADVERSARIAL if s.startswith("a@")])
def test_parse_domain_adversarial_100kb(name: str) -> None:
    """A 100 KB hostile EHLO name is refused."""
    with pytest.raises(InvalidArgument):
        parse_domain(name)


# --- Size limits (RFC 5321 section 4.5.3.1) ------------------------------------------------


def _domain_of(length: int) -> str:
    """A valid domain of exactly ``length`` ASCII characters (labels of at most 63)."""
    labels = []
    while length > 64:
        labels.append("d" * 63)
        length -= 64
    labels.append("d" * length)
    return ".".join(labels)


def test_local_part_of_64_octets_is_accepted() -> None:
    """A 64-octet local part is at the limit."""
    assert parse_mailbox("a" * 64 + "@x").local_part == "a" * 64


def test_local_part_of_65_octets_is_refused() -> None:
    """A 65-octet local part is too long."""
    with pytest.raises(InvalidAddress, match="65 octets"):
        parse_mailbox("a" * 65 + "@x")


def test_local_part_limit_counts_utf8_octets() -> None:
    """The local part limit is in UTF-8 octets: 33 two-octet characters are too many."""
    assert parse_mailbox("é" * 32 + "@x").needs_smtputf8
    with pytest.raises(InvalidAddress, match="66 octets"):
        parse_mailbox("é" * 33 + "@x")


def test_path_of_256_octets_is_accepted() -> None:
    """A mailbox of 254 octets, 256 with the angle brackets, is at the limit."""
    address = "a@" + _domain_of(252)
    assert len(address) == 254
    assert str(parse_mailbox(address)) == address


def test_path_of_257_octets_is_refused() -> None:
    """A mailbox of 255 octets makes a 257-octet path."""
    with pytest.raises(InvalidAddress, match="255 octets long"):
        parse_mailbox("a@" + _domain_of(253))


def test_domain_over_255_octets_is_refused() -> None:
    """A domain of 256 octets is too long, whatever the path."""
    with pytest.raises(InvalidArgument, match="EHLO name has a domain of 256 octets"):
        parse_domain(_domain_of(256))


def test_label_over_63_characters_is_refused() -> None:
    """A DNS label is at most 63 octets (RFC 1035)."""
    assert parse_domain("d" * 63 + ".org") == "d" * 63 + ".org"
    with pytest.raises(InvalidArgument, match="EHLO name has a domain label of 64"):
        parse_domain("d" * 64 + ".org")


# --- Mailbox ---------------------------------------------------------------------------


def test_mailbox_constructor_validates() -> None:
    """A Mailbox cannot be built from invalid parts."""
    with pytest.raises(InvalidAddress):
        Mailbox("a b", "example.org")
    with pytest.raises(InvalidAddress):
        Mailbox("a", "example.org\r\nRSET")


def test_mailbox_is_frozen_value() -> None:
    """Mailboxes compare by value and are immutable."""
    box = parse_mailbox("a@example.org")
    assert box == Mailbox("a", "example.org")
    with pytest.raises(AttributeError):
        box.domain = "evil.example"  # type: ignore[misc]


def test_non_ascii_local_part_needs_smtputf8() -> None:
    """A non-ASCII local part can only travel with SMTPUTF8."""
    assert parse_mailbox("jörg@example.org").needs_smtputf8


def test_non_ascii_domain_alone_does_not_need_smtputf8() -> None:
    """A non-ASCII domain can be IDNA-encoded instead."""
    box = parse_mailbox("joerg@bücher.de")
    assert not box.needs_smtputf8
    assert box.ascii_domain() == "xn--bcher-kva.de"
    assert box.to_ascii() == "joerg@xn--bcher-kva.de"


def test_ascii_mailbox_to_ascii_is_unchanged() -> None:
    """An ASCII mailbox, literal or not, is its own ASCII form."""
    assert parse_mailbox("a@[192.0.2.1]").to_ascii() == "a@[192.0.2.1]"
    assert parse_mailbox("a@Example.ORG").ascii_domain() == "Example.ORG"


def test_to_ascii_refuses_non_ascii_local_part() -> None:
    """There is no ASCII form of a non-ASCII local part."""
    with pytest.raises(InvalidAddress, match="SMTPUTF8"):
        parse_mailbox("jörg@example.org").to_ascii()


@pytest.mark.parametrize(
    "domain",
    ["\u2100x.example", "ü" * 70 + ".example"],
    ids=["maps-to-punctuation", "label-too-long"],
)
def test_ascii_domain_refuses_unencodable(domain: str) -> None:
    """A domain that IDNA cannot turn into a valid ASCII name raises InvalidAddress."""
    box = parse_mailbox(f"a@{domain}")
    with pytest.raises(InvalidAddress, match="IDNA"):
        box.ascii_domain()


def test_parse_reverse_path_null_sender() -> None:
    """The empty reverse-path (``<>``) is None."""
    assert parse_reverse_path("") is None


def test_parse_reverse_path_mailbox() -> None:
    """A non-empty reverse-path is parsed as a mailbox."""
    assert parse_reverse_path("bounce@example.org") == Mailbox("bounce", "example.org")
    with pytest.raises(InvalidAddress):
        parse_reverse_path("<>")


# --- parse_domain ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["mail.example.org", "localhost", "[192.0.2.1]", "[IPv6:::1]", "x1-2.a9"]
)
def test_parse_domain_accepts(name: str) -> None:
    """Domain names and address literals are valid EHLO names, returned unchanged."""
    assert parse_domain(name) == name


def test_parse_domain_converts_u_labels() -> None:
    """RFC 6531 section 3.7.1: EHLO carries A-labels, so U-labels are converted."""
    assert parse_domain("bücher.example") == "xn--bcher-kva.example"


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("", "empty domain"),
        ("user@example.org", "'@' at position 4"),
        ("a..b", "'.' at position 2"),
        ("host name", "' ' at position 4"),
        ("-host", "'-' at position 0"),
        ("[300.0.0.1]", "EHLO name has an address literal at position 0"),
        ("a.", "EHLO name ends with '.' at position 1"),
        ("\u2100x.example", "IDNA"),
    ],
)
def test_parse_domain_refuses(name: str, fragment: str) -> None:
    """Anything but a domain or address literal raises InvalidArgument."""
    with pytest.raises(InvalidArgument) as info:
        parse_domain(name)
    assert fragment in str(info.value)
    assert not isinstance(info.value, InvalidAddress)


@pytest.mark.parametrize("injection", list(_INJECTIONS.values()), ids=list(_INJECTIONS))
def test_parse_domain_refuses_injection(injection: str) -> None:
    """A control character in the EHLO name is refused before the grammar runs."""
    with pytest.raises(InvalidArgument, match="EHLO name must not contain control"):
        parse_domain(f"client.example{injection}MAIL FROM:<x@y>")


# --- ESMTP keyword and value ---------------------------------------------------------------


@pytest.mark.parametrize("keyword", ["SIZE", "BODY", "X-FOO", "a1", "9", "MT-PRIORITY"])
def test_esmtp_keyword_accepts(keyword: str) -> None:
    """Letters, digits and inner/trailing hyphens make a keyword."""
    assert check_esmtp_keyword(keyword) == keyword


@pytest.mark.parametrize("keyword", ["", "-X", "X_Y", "X Y", "X=Y", "SIZÉ", "X\r\nY"])
def test_esmtp_keyword_refuses(keyword: str) -> None:
    """Anything else is not an esmtp-keyword."""
    with pytest.raises(InvalidArgument):
        check_esmtp_keyword(keyword)


@pytest.mark.parametrize("value", ["1000", "8BITMIME", "rfc822;a+40b", "!<>~", "a" * 1000])
def test_esmtp_value_accepts(value: str) -> None:
    """Printable ASCII except space and '=' makes a value."""
    assert check_esmtp_value(value) == value


@pytest.mark.parametrize("value", ["", "a b", "a=b", "é"])
def test_esmtp_value_refuses(value: str) -> None:
    """Empty values, spaces, '=' and non-ASCII (without SMTPUTF8) are refused."""
    with pytest.raises(InvalidArgument):
        check_esmtp_value(value)


def test_esmtp_value_utf8_only_in_smtputf8_mode() -> None:
    """RFC 6531 section 3.3 allows UTF-8 in esmtp-value only with SMTPUTF8."""
    assert check_esmtp_value("jörg", smtputf8=True) == "jörg"
    with pytest.raises(InvalidArgument, match="ENVID must be one or more printable ASCII"):
        check_esmtp_value("jörg", name="ENVID")


@pytest.mark.parametrize("injection", list(_INJECTIONS.values()), ids=list(_INJECTIONS))
def test_esmtp_value_refuses_injection(injection: str) -> None:
    """Control characters are refused even in SMTPUTF8 mode."""
    with pytest.raises(InvalidArgument, match="control characters"):
        check_esmtp_value(f"x{injection}y", smtputf8=True)


@given(st.text(alphabet=[chr(c) for c in range(33, 127) if c != 61], min_size=1))
def test_generated_esmtp_values_accepted(value: str) -> None:
    """Every non-empty string over %d33-60 / %d62-126 is a valid esmtp-value."""
    assert check_esmtp_value(value) == value


# --- xtext ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("plain", "encoded"),
    [
        ("", ""),
        ("abc", "abc"),
        ("a+b=c d", "a+2Bb+3Dc+20d"),
        ("user@example.org", "user@example.org"),
        ("\r\n", "+0D+0A"),
        ("é", "+C3+A9"),
        ("~!", "~!"),
    ],
)
def test_xtext_table(plain: str, encoded: str) -> None:
    """RFC 3461 section 4: '+', '=', space, controls and non-ASCII octets become +HH."""
    assert xtext_encode(plain) == encoded
    assert xtext_decode(encoded) == plain


@given(st.text(st.characters(exclude_categories=["Cs"])))
def test_xtext_round_trip(text: str) -> None:
    """Decoding the encoding gives the text back."""
    assert xtext_decode(xtext_encode(text)) == text


@given(st.text(st.characters(exclude_categories=["Cs"])))
def test_xtext_output_is_xtext(text: str) -> None:
    """The encoding is printable ASCII with '+' only before two upper-case hex digits."""
    encoded = xtext_encode(text)
    assert re.fullmatch(r"(?:[!-*,-<>-~]|\+[0-9A-F]{2})*", encoded)
    assert check_esmtp_value(encoded or "x")


def test_xtext_encode_refuses_surrogate() -> None:
    """A lone surrogate has no UTF-8 octets to encode."""
    with pytest.raises(InvalidArgument, match="UTF-8"):
        xtext_encode("a\udc80")


@pytest.mark.parametrize("bad", ["+2b", "+G0", "+2", "a=b", "a b", "+", "é", "+FF", "a\r\n"])
def test_xtext_decode_refuses(bad: str) -> None:
    """Malformed xtext, or escapes that are not UTF-8, raise InvalidArgument."""
    with pytest.raises(InvalidArgument):
        xtext_decode(bad)
