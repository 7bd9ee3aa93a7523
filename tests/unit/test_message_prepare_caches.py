"""The shortcuts of message preparation change no result: caches, and the line-ending test.

Each cache is keyed on exact immutable values (never on a message), keeps
only successes, and stays bounded; per-message data (Message-ID) is always new.
"""

from __future__ import annotations

import email.utils
import re
from datetime import datetime, timezone
from email.headerregistry import Address
from email.message import EmailMessage

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from mailtransfer._message import _addresses, _envelope, _prepare
from mailtransfer._message._addresses import _checked_spec
from mailtransfer._message._envelope import Envelope, plain_envelope
from mailtransfer._message._prepare import format_date, prepare
from mailtransfer.errors import HeaderInjection, InvalidAddress, InvalidArgument
from mailtransfer.protocol._data import is_canonical, normalize_line_endings

RAW = b"From: a@example.org\r\nTo: b@example.net\r\nSubject: hi\r\n\r\nbody\r\n"


@example(b"a\rb\n", 0)  # as many CRs as LFs, in order, but the CR is bare
@example(b"\n\r", 0)
@example(b"x\r\n\r\n", 1)
@given(
    st.binary(max_size=40) | st.lists(st.sampled_from([b"\r", b"\n", b"a"])).map(b"".join),
    st.integers(0, 5),
)
def test_canonical_test_agrees_with_the_normalisation(data: bytes, start: int) -> None:
    """Against an independent oracle (a regex), since the normaliser now uses the test."""
    start = min(start, len(data))
    rest = data[start:]
    canonical = re.sub(rb"\r\n|\r|\n", b"\r\n", rest) == rest
    assert is_canonical(data, start) == canonical
    assert normalize_line_endings(rest) == re.sub(rb"\r\n|\r|\n", b"\r\n", rest)


def test_every_message_gets_its_own_message_id() -> None:
    ids = {
        prepare(RAW, sender="a@example.org", recipients=["b@example.net"]).message_id
        for _ in range(50)
    }
    assert len(ids) == 50
    msg = EmailMessage()
    msg["From"], msg["To"] = "a@example.org", "b@example.net"
    msg.set_content("hi")
    assert prepare(msg).message_id != prepare(msg).message_id
    assert "Message-ID" not in msg


def test_a_remembered_envelope_is_per_address_list() -> None:
    one = plain_envelope("a@example.org", ["b@example.net"])
    two = plain_envelope("a@example.org", ["b@example.net", "c@example.net"])
    assert one.recipients == ("b@example.net",)
    assert two.recipients == ("b@example.net", "c@example.net")
    assert plain_envelope("a@example.org", ("b@example.net",)) is one
    assert plain_envelope("x@example.org", ["b@example.net"]).sender == "x@example.org"
    first = prepare(RAW, sender="a@example.org", recipients=["b@example.net"])
    second = prepare(RAW, sender="a@example.org", recipients=["c@example.net"])
    assert first.envelope.recipients == ("b@example.net",)
    assert second.envelope.recipients == ("c@example.net",)


def test_an_envelope_equals_a_new_one_and_errors_repeat() -> None:
    made = plain_envelope("a@example.org", ["b@example.net", "B@EXAMPLE.NET"])
    assert made == Envelope(sender="a@example.org", recipients=("b@example.net", "B@EXAMPLE.NET"))
    for _ in range(2):
        with pytest.raises(InvalidAddress):
            plain_envelope("a@example.org", ["not an address"])
        with pytest.raises(InvalidArgument):
            plain_envelope("a@example.org", [])


class _Str(str):
    __slots__ = ()


def test_str_subclasses_are_not_remembered() -> None:
    _envelope._PLAIN.clear()
    made = plain_envelope(_Str("a@example.org"), [_Str("b@example.net")])
    assert made.sender == "a@example.org"
    assert not _envelope._PLAIN


def test_the_envelope_cache_stays_bounded() -> None:
    for i in range(_envelope._PLAIN_LIMIT + 5):
        assert plain_envelope("a@example.org", [f"u{i}@example.net"]).recipients == (
            f"u{i}@example.net",
        )
    assert len(_envelope._PLAIN) <= _envelope._PLAIN_LIMIT


def test_date_is_right_for_each_second() -> None:
    for now in (1748851200.0, 1748851200.9, 1748851201.0, 0.5, 1748851200.2):
        expected = email.utils.format_datetime(
            datetime.fromtimestamp(int(now), timezone.utc)
        ).replace("-0000", "+0000")
        assert format_date(now) == expected


def test_checked_addresses_still_raise_every_time() -> None:
    bad = Address(display_name="x\x0b", username="a", domain="example.org")
    for _ in range(2):
        with pytest.raises(HeaderInjection, match="To display name"):
            _checked_spec(bad, what="To")
        with pytest.raises(InvalidAddress):
            _checked_spec(Address(username="a", domain="exa mple.org"), what="To")
    good = Address(display_name="Ann", username="ann", domain="example.org")
    assert _checked_spec(good, what="To") == "ann@example.org"
    assert _checked_spec(good, what="Cc") == "ann@example.org"


def test_address_subclasses_are_not_remembered() -> None:
    class Odd(Address):
        @property
        def addr_spec(self) -> str:
            return "odd@example.org"

    _addresses._CHECKED.clear()
    assert _checked_spec(Odd(username="ann", domain="example.org"), what="To") == (
        "odd@example.org"
    )
    assert not _addresses._CHECKED
    assert _checked_spec(Address(username="ann", domain="example.org"), what="To") == (
        "ann@example.org"
    )


def test_checks_still_run_on_a_remembered_envelope() -> None:
    prepare(RAW, sender="a@example.org", recipients=["b@example.net"])
    for bad in (b"Subject: a\rb\r\n\r\nx", b"Subject: a\x00\r\n\r\nx", b"Bad Name: x\r\n\r\nx"):
        with pytest.raises(HeaderInjection):
            prepare(bad, sender="a@example.org", recipients=["b@example.net"])
    bcc = b"Bcc: c@example.org\r\n" + RAW
    assert b"Bcc" not in prepare(bcc, sender="a@example.org", recipients=["b@example.net"]).data
    assert _prepare._ASCII_DOMAINS.get("example.org") == "example.org"


def test_prepared_message_is_the_constructed_value() -> None:
    """prepare() fills PreparedMessage's slots directly: the same value the class makes."""
    raw = b"From: a@example.org\r\nMessage-ID: <x@example.org>\r\nDate: now\r\n\r\nhi\r\n"
    fast = prepare(raw, sender="a@example.org", recipients=["b@example.org"])
    slow = _prepare.PreparedMessage(
        data=fast.data,
        envelope=fast.envelope,
        message_id="<x@example.org>",
        needs_smtputf8=False,
        needs_8bit=False,
    )
    assert type(fast) is _prepare.PreparedMessage
    assert (fast, repr(fast)) == (slow, repr(slow))
