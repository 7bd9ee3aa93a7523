"""The command values: exact wire bytes, redacted text, and validation before any byte exists.

The wire forms are worked out by hand from RFC 5321 4.1.1, RFC 1870 (SIZE),
RFC 6152 (8BITMIME), RFC 3030 (BDAT, BINARYMIME), RFC 6531 (SMTPUTF8),
RFC 3461 (DSN, xtext), RFC 8689 (REQUIRETLS) and RFC 4954 (AUTH). The
injection cases are THREATS.md S2.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailtransfer.protocol import (
    NEED_DATA,
    Auth,
    AuthResponse,
    Bdat,
    Command,
    Data,
    Ehlo,
    EndOfData,
    Helo,
    InvalidAddress,
    InvalidArgument,
    Lhlo,
    MailFrom,
    Noop,
    Quit,
    RcptTo,
    Reply,
    Response,
    Rset,
    StartTLS,
    Vrfy,
)
from mailtransfer.protocol._events import make_response
from mailtransfer.protocol._grammar import xtext_decode
from mailtransfer.results import SendResult, make_result

# --- SIMPLE_CASES: command -> exact wire bytes and transcript text -----------------------------

_A = "a@example.org"
_B = "b@example.org"
_UMLAUT_DOMAIN = "b\u00fccher.example"  # bücher.example; A-label xn--bcher-kva.example


def _case(name: str, command: Command, wire: str, shown: str | None = None) -> Any:
    """One row: the command, its wire line (without CRLF) and its transcript text."""
    return pytest.param(command, wire.encode() + b"\r\n", wire if shown is None else shown, id=name)


SIMPLE_CASES = [
    _case("ehlo", Ehlo("client.example.org"), "EHLO client.example.org"),
    _case("ehlo-u-label", Ehlo(_UMLAUT_DOMAIN), "EHLO xn--bcher-kva.example"),
    _case("ehlo-literal", Ehlo("[192.0.2.1]"), "EHLO [192.0.2.1]"),
    _case("ehlo-ipv6-literal", Ehlo("[IPv6:2001:db8::1]"), "EHLO [IPv6:2001:db8::1]"),
    _case("helo", Helo("client.example.org"), "HELO client.example.org"),
    _case("lhlo", Lhlo("client.example.org"), "LHLO client.example.org"),
    _case("starttls", StartTLS(), "STARTTLS"),
    _case("data", Data(), "DATA"),
    _case("rset", Rset(), "RSET"),
    _case("noop", Noop(), "NOOP"),
    _case("quit", Quit(), "QUIT"),
    _case("end-of-data", EndOfData(), "."),
    _case("vrfy", Vrfy("postmaster"), "VRFY postmaster"),
    _case("mail-null-sender", MailFrom(sender=""), "MAIL FROM:<>"),
    _case("mail", MailFrom(sender=_A), "MAIL FROM:<a@example.org>"),
    _case("mail-size", MailFrom(sender=_A, size=12345), "MAIL FROM:<a@example.org> SIZE=12345"),
    _case("mail-size-zero", MailFrom(sender=_A, size=0), "MAIL FROM:<a@example.org> SIZE=0"),
    _case("mail-7bit", MailFrom(sender=_A, body="7BIT"), "MAIL FROM:<a@example.org> BODY=7BIT"),
    _case(
        "mail-8bit",
        MailFrom(sender=_A, body="8BITMIME"),
        "MAIL FROM:<a@example.org> BODY=8BITMIME",
    ),
    _case(
        "mail-binary",
        MailFrom(sender=_A, body="BINARYMIME"),
        "MAIL FROM:<a@example.org> BODY=BINARYMIME",
    ),
    _case(
        "mail-smtputf8-ascii",
        MailFrom(sender=_A, smtputf8=True),
        "MAIL FROM:<a@example.org> SMTPUTF8",
    ),
    _case(
        "mail-smtputf8-utf8",
        MailFrom(sender="j\u00f6rg@" + _UMLAUT_DOMAIN, smtputf8=True),
        "MAIL FROM:<j\u00f6rg@b\u00fccher.example> SMTPUTF8",
    ),
    _case(
        "mail-u-label-domain",
        MailFrom(sender="a@" + _UMLAUT_DOMAIN),
        "MAIL FROM:<a@xn--bcher-kva.example>",
    ),
    _case("mail-ret-full", MailFrom(sender=_A, ret="FULL"), "MAIL FROM:<a@example.org> RET=FULL"),
    _case("mail-ret-hdrs", MailFrom(sender=_A, ret="HDRS"), "MAIL FROM:<a@example.org> RET=HDRS"),
    # RFC 3461 4: "+", "=" and characters outside "!".."~" become +HH.
    _case(
        "mail-envid-xtext",
        MailFrom(sender=_A, envid="QQ 3+1=4"),
        "MAIL FROM:<a@example.org> ENVID=QQ+203+2B1+3D4",
    ),
    _case(
        "mail-envid-utf8",
        MailFrom(sender=_A, envid="\u00e9"),
        "MAIL FROM:<a@example.org> ENVID=+C3+A9",
    ),
    _case(
        "mail-requiretls",
        MailFrom(sender=_A, requiretls=True),
        "MAIL FROM:<a@example.org> REQUIRETLS",
    ),
    _case(
        "mail-extra",
        MailFrom(sender=_A, extra=(("MT-PRIORITY", "3"), ("X-FLAG", None))),
        "MAIL FROM:<a@example.org> MT-PRIORITY=3 X-FLAG",
    ),
    _case(
        "mail-every-parameter",
        MailFrom(
            sender="bounce+id@example.org",
            size=1000,
            body="8BITMIME",
            smtputf8=True,
            ret="HDRS",
            envid="id=1",
            requiretls=True,
            extra=(("HOLDFOR", "60"),),
        ),
        "MAIL FROM:<bounce+id@example.org> SIZE=1000 BODY=8BITMIME SMTPUTF8 RET=HDRS"
        " ENVID=id+3D1 REQUIRETLS HOLDFOR=60",
    ),
    _case("mail-null-sender-dsn", MailFrom(sender="", ret="HDRS"), "MAIL FROM:<> RET=HDRS"),
    _case("rcpt", RcptTo(recipient=_B), "RCPT TO:<b@example.org>"),
    _case(
        "rcpt-quoted",
        RcptTo(recipient='"john doe"@example.org'),
        'RCPT TO:<"john doe"@example.org>',
    ),
    _case("rcpt-literal", RcptTo(recipient="b@[192.0.2.7]"), "RCPT TO:<b@[192.0.2.7]>"),
    _case(
        "rcpt-u-label-domain",
        RcptTo(recipient="b@" + _UMLAUT_DOMAIN),
        "RCPT TO:<b@xn--bcher-kva.example>",
    ),
    _case(
        "rcpt-utf8-local-part",
        RcptTo(recipient="j\u00f6rg@" + _UMLAUT_DOMAIN),
        "RCPT TO:<j\u00f6rg@b\u00fccher.example>",
    ),
    _case(
        "rcpt-notify-never",
        RcptTo(recipient=_B, notify=("NEVER",)),
        "RCPT TO:<b@example.org> NOTIFY=NEVER",
    ),
    _case(
        "rcpt-notify-three",
        RcptTo(recipient=_B, notify=("SUCCESS", "FAILURE", "DELAY")),
        "RCPT TO:<b@example.org> NOTIFY=SUCCESS,FAILURE,DELAY",
    ),
    _case(
        "rcpt-orcpt",
        RcptTo(recipient=_B, orcpt="b+x@example.org"),
        "RCPT TO:<b@example.org> ORCPT=rfc822;b+2Bx@example.org",
    ),
    _case(
        "rcpt-notify-orcpt-extra",
        RcptTo(recipient=_B, notify=("FAILURE",), orcpt=_B, extra=(("X-Y", None),)),
        "RCPT TO:<b@example.org> NOTIFY=FAILURE ORCPT=rfc822;b@example.org X-Y",
    ),
    _case("auth-no-initial", Auth("LOGIN"), "AUTH LOGIN"),
    _case(
        "auth-plain",
        Auth("PLAIN", "AGpvZQBzM2NyM3Q="),
        "AUTH PLAIN AGpvZQBzM2NyM3Q=",
        "AUTH PLAIN ****",
    ),
    _case("auth-empty-initial", Auth("EXTERNAL", "="), "AUTH EXTERNAL =", "AUTH EXTERNAL ****"),
    _case("auth-response", AuthResponse("dXNlcm5hbWU="), "dXNlcm5hbWU=", "****"),
    _case("auth-response-empty", AuthResponse(""), "", "****"),
    _case("auth-cancel", AuthResponse("*"), "*", "*"),
    _case("bdat", Bdat(4096), "BDAT 4096"),
    _case("bdat-last", Bdat(12, last=True), "BDAT 12 LAST"),
    _case("bdat-empty-last", Bdat(0, last=True), "BDAT 0 LAST"),
]


@pytest.mark.parametrize(("command", "wire", "shown"), SIMPLE_CASES)
def test_simple_cases_wire_bytes(command: Command, wire: bytes, shown: str) -> None:
    """Each command renders to exactly the bytes the RFCs prescribe."""
    assert command.to_bytes() == wire


@pytest.mark.parametrize(("command", "wire", "shown"), SIMPLE_CASES)
def test_simple_cases_redacted_text(command: Command, wire: bytes, shown: str) -> None:
    """Each command shows the expected transcript text, secrets masked."""
    assert command.redacted() == shown


@pytest.mark.parametrize(("command", "wire", "shown"), SIMPLE_CASES)
def test_simple_cases_are_one_line(command: Command, wire: bytes, shown: str) -> None:
    """Every rendered command is one line: its only CR and LF are the final CRLF."""
    rendered = command.to_bytes()
    assert rendered.endswith(b"\r\n")
    assert b"\r" not in rendered[:-2]
    assert b"\n" not in rendered[:-2]


# --- THREATS S2: control characters in every argument ---------------------------------------

ARGUMENTS: list[tuple[str, Callable[[str], Any], str]] = [
    ("ehlo-name", Ehlo, "client.example.org"),
    ("helo-name", Helo, "client.example.org"),
    ("lhlo-name", Lhlo, "client.example.org"),
    ("vrfy-argument", Vrfy, "postmaster"),
    ("auth-mechanism", Auth, "PLAIN"),
    ("auth-initial-response", lambda v: Auth("PLAIN", v), "AGpvZQBzM2NyM3Q="),
    ("auth-response", AuthResponse, "dXNlcm5hbWU="),
    ("sender", lambda v: MailFrom(sender=v), "a@example.org"),
    ("envid", lambda v: MailFrom(sender="a@example.org", envid=v), "QQ314159"),
    ("mail-extra-keyword", lambda v: MailFrom(sender="a@example.org", extra=((v, "1"),)), "XPRIO"),
    ("mail-extra-value", lambda v: MailFrom(sender="a@example.org", extra=(("XPRIO", v),)), "3"),
    ("recipient", lambda v: RcptTo(recipient=v), "b@example.org"),
    ("orcpt", lambda v: RcptTo(recipient="b@example.org", orcpt=v), "b@example.org"),
    ("rcpt-extra-keyword", lambda v: RcptTo(recipient="b@example.org", extra=((v, "1"),)), "XPRIO"),
    ("rcpt-extra-value", lambda v: RcptTo(recipient="b@example.org", extra=(("XPRIO", v),)), "3"),
]
THREATS = {"crlf": "\r\n", "cr": "\r", "lf": "\n", "nul": "\x00", "tab": "\t", "del": "\x7f"}


@pytest.mark.parametrize(("name", "factory", "valid"), ARGUMENTS, ids=[a[0] for a in ARGUMENTS])
def test_valid_argument_builds(name: str, factory: Callable[[str], Any], valid: str) -> None:
    """The unpoisoned value is accepted, so the injection tests below test the character."""
    assert factory(valid).to_bytes().endswith(b"\r\n")


@pytest.mark.parametrize("threat", THREATS.values(), ids=THREATS.keys())
@pytest.mark.parametrize(("name", "factory", "valid"), ARGUMENTS, ids=[a[0] for a in ARGUMENTS])
def test_control_character_inside_argument_is_refused(
    name: str, factory: Callable[[str], Any], valid: str, threat: str
) -> None:
    """A control character in the middle of any argument raises InvalidArgument."""
    middle = len(valid) // 2
    with pytest.raises(InvalidArgument):
        factory(valid[:middle] + threat + valid[middle:])


@pytest.mark.parametrize("threat", THREATS.values(), ids=THREATS.keys())
@pytest.mark.parametrize(("name", "factory", "valid"), ARGUMENTS, ids=[a[0] for a in ARGUMENTS])
def test_injected_command_after_argument_is_refused(
    name: str, factory: Callable[[str], Any], valid: str, threat: str
) -> None:
    """An argument smuggling a second command (``x<CRLF>RSET``) raises InvalidArgument."""
    with pytest.raises(InvalidArgument):
        factory(valid + threat + "RSET")


def test_injection_error_does_not_echo_the_value() -> None:
    """The error names the position and character, not the caller's data."""
    with pytest.raises(InvalidArgument) as caught:
        Vrfy("secret-name\r\nRSET")
    assert "secret-name" not in str(caught.value)
    assert "position 11" in str(caught.value)


# --- addresses ------------------------------------------------------------------------------

INVALID_ADDRESSES = [
    "no-at-sign",
    "a@",
    "@example.org",
    "a@@example.org",
    "a b@example.org",
    "a@-example.org",
    "a@example..org",
    "a..b@example.org",
    "<a@example.org>",
    "a@example.org>",
    "a@[300.1.1.1]",
    "x" * 65 + "@example.org",
    "a@" + "b" * 64 + ".org",
    '"unterminated@example.org',
]


@pytest.mark.parametrize("address", INVALID_ADDRESSES)
def test_invalid_sender_is_refused(address: str) -> None:
    """MAIL refuses a malformed reverse-path with InvalidAddress."""
    with pytest.raises(InvalidAddress):
        MailFrom(sender=address)


@pytest.mark.parametrize("address", [*INVALID_ADDRESSES, ""])
def test_invalid_recipient_is_refused(address: str) -> None:
    """RCPT refuses a malformed forward-path (and the null path) with InvalidAddress."""
    with pytest.raises(InvalidAddress):
        RcptTo(recipient=address)


def test_non_ascii_sender_needs_smtputf8_flag() -> None:
    """A non-ASCII local part cannot be sent without SMTPUTF8 (RFC 6531 3.3)."""
    with pytest.raises(InvalidArgument, match="smtputf8"):
        MailFrom(sender="j\u00f6rg@example.org")


def test_u_label_recipient_does_not_need_smtputf8() -> None:
    """A non-ASCII domain alone has an A-label form, so the recipient needs no SMTPUTF8."""
    assert not RcptTo(recipient="b@b\u00fccher.example").needs_smtputf8


def test_utf8_local_part_recipient_needs_smtputf8() -> None:
    """A non-ASCII local part has no ASCII form: the recipient needs SMTPUTF8."""
    assert RcptTo(recipient="j\u00f6rg@example.org").needs_smtputf8


def test_recipient_keeps_the_callers_spelling() -> None:
    """``recipient`` stays as given even when the wire uses A-labels (results key on it)."""
    assert RcptTo(recipient="b@b\u00fccher.example").recipient == "b@b\u00fccher.example"


@pytest.mark.parametrize("name", ["", "bad_name", "-bad.example", "a..b", "[1.2.3]", "x" * 64])
def test_invalid_ehlo_name_is_refused(name: str) -> None:
    """EHLO refuses a name that is not a domain or an address literal."""
    with pytest.raises(InvalidArgument):
        Ehlo(name)


# --- NOTIFY and the other parameters ----------------------------------------------------------

BAD_NOTIFY: list[Any] = [
    (),
    ("NEVER", "SUCCESS"),
    ("FAILURE", "NEVER"),
    ("never",),
    ("SOMETIMES",),
    ("SUCCESS", "SUCCESS"),
    "SUCCESS",
]


@pytest.mark.parametrize("notify", BAD_NOTIFY, ids=repr)
def test_bad_notify_is_refused(notify: Any) -> None:
    """NOTIFY takes a non-empty set of known values, NEVER alone (RFC 3461 4.1)."""
    with pytest.raises(InvalidArgument):
        RcptTo(recipient="b@example.org", notify=notify)


def test_notify_list_becomes_a_tuple() -> None:
    """A list of NOTIFY values is accepted and stored as a tuple, keeping the value hashable."""
    rcpt = RcptTo(recipient="b@example.org", notify=["DELAY", "FAILURE"])  # type: ignore[arg-type]
    assert rcpt.notify == ("DELAY", "FAILURE")
    assert hash(rcpt) == hash(RcptTo(recipient="b@example.org", notify=("DELAY", "FAILURE")))


BAD_MAIL: list[dict[str, Any]] = [
    {"size": -1},
    {"size": "10"},
    {"size": "10\r\nRSET"},
    {"size": 1.5},
    {"size": True},
    {"body": "8bitmime"},
    {"body": "QUOTED"},
    {"ret": "full"},
    {"ret": "NONE"},
    {"envid": ""},
    {"envid": "x" * 101},
    {"extra": {"XPRIO": "3"}},
    {"extra": "XPRIO=3"},
    {"extra": (("XPRIO", "3", "4"),)},
    {"extra": (("XPRIO", "a b"),)},
    {"extra": (("XPRIO", "a=b"),)},
    {"extra": (("XPRIO", "\u00e9"),)},
    {"extra": (("XPRIO", ""),)},
    {"extra": (("-X", None),)},
    {"extra": (("X_Y", None),)},
]


@pytest.mark.parametrize("options", BAD_MAIL, ids=repr)
def test_bad_mail_parameter_is_refused(options: dict[str, Any]) -> None:
    """Every malformed MAIL parameter raises InvalidArgument, never TypeError."""
    with pytest.raises(InvalidArgument):
        MailFrom(sender="a@example.org", **options)


def test_envid_of_100_characters_is_accepted() -> None:
    """ENVID may be 100 characters long (RFC 3461 4.4)."""
    assert MailFrom(sender="a@example.org", envid="x" * 100).to_bytes().endswith(b"x\r\n")


def test_unencodable_envid_fails_at_construction() -> None:
    """An ENVID with a lone surrogate fails when the command is built, not when it is sent."""
    with pytest.raises(InvalidArgument):
        MailFrom(sender="a@example.org", envid="\udc80")


def test_unencodable_orcpt_fails_at_construction() -> None:
    """An ORCPT with a lone surrogate fails when the command is built."""
    with pytest.raises(InvalidArgument):
        RcptTo(recipient="b@example.org", orcpt="\udc80")


@pytest.mark.parametrize("orcpt", [""])
def test_empty_orcpt_is_refused(orcpt: str) -> None:
    """ORCPT needs an address."""
    with pytest.raises(InvalidArgument):
        RcptTo(recipient="b@example.org", orcpt=orcpt)


def test_extra_list_becomes_a_tuple() -> None:
    """A list of extra pairs is stored as a tuple of tuples."""
    mail = MailFrom(sender="a@example.org", extra=[["XPRIO", "3"]])  # type: ignore[arg-type]
    assert mail.extra == (("XPRIO", "3"),)


@pytest.mark.parametrize(
    ("size", "last"), [(-1, False), ("5", False), ("5\r\nRSET", False), (True, False), (5, "yes")]
)
def test_bad_bdat_is_refused(size: Any, last: Any) -> None:
    """BDAT takes a non-negative int size and a bool ``last``."""
    with pytest.raises(InvalidArgument):
        Bdat(size, last)


@pytest.mark.parametrize("mechanism", ["", "PL AIN", "PLAIN=", "-PLAIN"])
def test_bad_auth_mechanism_is_refused(mechanism: str) -> None:
    """AUTH takes a mechanism name of letters, digits and hyphens."""
    with pytest.raises(InvalidArgument):
        Auth(mechanism)


@pytest.mark.parametrize("response", ["abc$", "a b", "===", "\u00e9"])
def test_non_base64_auth_text_is_refused(response: str) -> None:
    """AUTH responses must be base64 (RFC 4954 4)."""
    with pytest.raises(InvalidArgument):
        AuthResponse(response)
    with pytest.raises(InvalidArgument):
        Auth("PLAIN", response)


def test_empty_vrfy_is_refused() -> None:
    """VRFY needs an argument (RFC 5321 4.1.1.6)."""
    with pytest.raises(InvalidArgument):
        Vrfy("")


# --- reprs, equality, immutability ----------------------------------------------------------


def test_auth_repr_masks_the_initial_response() -> None:
    """repr() of AUTH never shows the credential."""
    assert "AGpvZQBzM2NyM3Q" not in repr(Auth("PLAIN", "AGpvZQBzM2NyM3Q="))


def test_auth_response_repr_masks_the_line() -> None:
    """repr() of an AUTH continuation never shows the credential."""
    assert "c2VjcmV0" not in repr(AuthResponse("c2VjcmV0"))


def test_commands_are_frozen() -> None:
    """A built command cannot be changed, so its validation cannot be bypassed."""
    mail = MailFrom(sender="a@example.org")
    with pytest.raises(dataclasses.FrozenInstanceError):
        mail.sender = "x@example.org\r\nRSET"  # type: ignore[misc]


def test_replace_validates_again() -> None:
    """dataclasses.replace() goes through the same checks."""
    with pytest.raises(InvalidArgument):
        dataclasses.replace(MailFrom(sender="a@example.org"), sender="x\r\n@example.org")


def test_equal_commands_compare_equal() -> None:
    """Commands are values: the same arguments give equal, equally hashed commands."""
    a = MailFrom(sender="a@example.org", size=10)
    b = MailFrom(sender="a@example.org", size=10)
    assert (a == b, hash(a) == hash(b)) == (True, True)


def test_need_data_repr() -> None:
    """NEED_DATA shows its name."""
    assert repr(NEED_DATA) == "NEED_DATA"


# --- properties -----------------------------------------------------------------------------

_atoms = st.text(alphabet="abcxyz0189!#$%&'*+/=?^_`{|}~-", min_size=1, max_size=8)
_labels = st.text(alphabet="abcxyz0189", min_size=1, max_size=10)
_addresses = st.builds(
    lambda local, labels: f"{'.'.join(local)}@{'.'.join(labels)}",
    st.lists(_atoms, min_size=1, max_size=3),
    st.lists(_labels, min_size=2, max_size=3),
)


@given(st.text(max_size=40))
def test_any_text_either_fails_or_renders_one_line(text: str) -> None:
    """Whatever text goes into any argument, the result is an error or a single line."""
    for _, factory, _valid in ARGUMENTS:
        try:
            wire = factory(text).to_bytes()
        except InvalidArgument:
            continue
        assert wire.endswith(b"\r\n")
        assert b"\r" not in wire[:-2]
        assert b"\n" not in wire[:-2]


@given(_addresses, st.text(max_size=30).filter(lambda t: 0 < len(t) <= 100))
def test_envid_round_trips_through_xtext(sender: str, envid: str) -> None:
    """The ENVID on the wire decodes (RFC 3461 xtext) to the value given."""
    try:
        mail = MailFrom(sender=sender, envid=envid)
    except InvalidArgument:
        return  # a control character or a surrogate: refused
    parameter = mail.to_bytes().decode("ascii").split(" ENVID=")[1].rstrip("\r\n")
    assert xtext_decode(parameter) == envid


@given(_addresses, _addresses)
def test_orcpt_round_trips_through_xtext(recipient: str, original: str) -> None:
    """The ORCPT address on the wire decodes to the original recipient."""
    wire = RcptTo(recipient=recipient, orcpt=original).to_bytes().decode("ascii")
    assert xtext_decode(wire.split(" ORCPT=rfc822;")[1].rstrip("\r\n")) == original


@given(
    _addresses,
    st.one_of(st.none(), st.integers(min_value=0, max_value=10**12)),
    st.sampled_from([None, "7BIT", "8BITMIME", "BINARYMIME"]),
    st.booleans(),
)
def test_mail_wire_form_is_the_transcript_text(
    sender: str, size: int | None, body: Any, smtputf8: bool
) -> None:
    """For MAIL, the transcript shows exactly what went on the wire (nothing is secret)."""
    mail = MailFrom(sender=sender, size=size, body=body, smtputf8=smtputf8)
    assert mail.to_bytes() == mail.redacted().encode() + b"\r\n"
    assert mail.redacted().startswith(f"MAIL FROM:<{sender}>")


# --- what the connection builds in its hot path -------------------------------------------------


def test_fast_response_equals_the_constructed_one() -> None:
    """make_response gives exactly the value Response(...) gives."""
    reply = Reply(250, ("2.1.0 ok",))
    for command, recipient in ((None, None), (Data(), None), (EndOfData(), "b@example.org")):
        fast = make_response(command, reply, recipient)
        slow = Response(command, reply, recipient)
        assert type(fast) is Response
        assert (fast, hash(fast), repr(fast)) == (slow, hash(slow), repr(slow))


def test_fast_send_result_equals_the_constructed_one() -> None:
    """make_result gives exactly the value SendResult(...) gives, every field set."""
    reply = Reply(250, ("2.0.0 queued as ABC123",))
    accepted = {"b@example.org": Reply(250, ("2.1.5 ok",))}
    for message_id, host in ((None, None), ("<m@example.org>", "smtp://mx.example.org:25")):
        fast = make_result(accepted, {}, reply, "ABC123", message_id=message_id, host=host)
        slow = SendResult(
            accepted=accepted,
            refused={},
            reply=reply,
            queue_id="ABC123",
            message_id=message_id,
            host=host,
        )
        assert type(fast) is SendResult
        assert (fast, repr(fast)) == (slow, repr(slow))


@pytest.mark.parametrize("command", [StartTLS(), Data(), Rset(), Noop(), Quit()])
def test_bare_commands_render_their_verb(command: Command) -> None:
    """Each argument-less command's wire line is its verb and CRLF."""
    assert command.to_bytes() == command.verb.encode() + b"\r\n"


@given(st.text(min_size=1, max_size=30).map(lambda t: f"{t}@example.org"))
def test_mail_and_rcpt_wire_is_their_line(address: str) -> None:
    """The wire bytes kept at construction are the transcript line, UTF-8 encoded, plus CRLF."""
    for factory in (
        lambda: MailFrom(sender=address, smtputf8=True),
        lambda: RcptTo(recipient=address),
    ):
        try:
            command = factory()
        except InvalidArgument:
            continue
        assert command.to_bytes() == command.redacted().encode("utf-8") + b"\r\n"
