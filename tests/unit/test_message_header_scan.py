"""The one-pass header-section check of raw bytes agrees with the field-by-field split.

``_prepare_bytes`` accepts a header section on the fast path only when
``_HEADER_SECTION`` matches it whole; anything else goes through
``_split_fields``, which raises the exact error. These properties pin the two
to the same language, and the fast path's field lookups to the split's.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mailtransfer._message._prepare import (
    _BCC,
    _HEADER_SECTION,
    _field_value,
    _split_fields,
    prepare,
)
from mailtransfer.errors import HeaderInjection

_NAMES = st.sampled_from(
    [b"Date", b"date", b"Message-ID", b"MESSAGE-id", b"Bcc", b"Resent-Bcc", b"bcc", b"To", b"X-A"]
)
_TEXT = st.lists(
    st.sampled_from([b" ", b"\t", b"a", b":", b"\x00", b"<x@y>", b"=?", b"\xc3\xa9", b"\x7f"]),
    max_size=4,
).map(b"".join)
_LINES = st.one_of(
    st.tuples(_NAMES, st.just(b":"), _TEXT).map(b"".join),
    st.tuples(_NAMES, st.just(b":"), _TEXT).map(b"".join),
    st.tuples(_NAMES, st.sampled_from([b" :", b""]), _TEXT).map(b"".join),
    st.tuples(st.sampled_from([b" ", b"\t", b" \t"]), _TEXT).map(b"".join),
    st.binary(max_size=4),
)


def _normalized(head: bytes) -> bytes:
    # _prepare_bytes only scans sections without bare CR, with CRLF line endings.
    head = head.replace(b"\r", b"").replace(b"\n", b"\r\n")
    return head if not head or head.endswith(b"\r\n") else head + b"\r\n"


@settings(max_examples=600)
@example(b"Message-ID:\r\n <a@b>\r\nTo: x\r\n")
@example(b"To: x\r\n \t\r\n")
@example(b"Resent-Bcc: a\x00\r\n")
@given(st.lists(_LINES, max_size=6).map(lambda lines: _normalized(b"\r\n".join(lines))))
def test_one_pass_accepts_exactly_what_the_split_accepts(head: bytes) -> None:
    try:
        fields = _split_fields(head)
    except HeaderInjection:
        fields = None
    fast = _HEADER_SECTION.fullmatch(head) is not None
    if fields is None:
        assert not fast
        return
    if b"=?" not in head:
        assert fast
    keys = [key for key, _ in fields]
    lowered = b"\r\n" + head.lower()
    has_bcc = b"\r\nbcc:" in lowered or b"\r\nresent-bcc:" in lowered
    assert has_bcc == any(k in _BCC for k in keys)
    assert (b"\r\ndate:" in lowered) == ("date" in keys)
    ids = [raw.split(b":", 1)[1] for key, raw in fields if key == "message-id"]
    assert _field_value(head, lowered, b"message-id") == (ids[0] if ids else None)


@pytest.mark.parametrize(
    ("head", "message"),
    [
        (b"To: a@b\r\nBad Name: x\r\n", "line 2 of the header section is neither"),
        (b" x: y\r\n", "line 1 of the header section is a continuation"),
        (b"To: a@b\r\n \t\r\n", "line 2 of the header section is a continuation"),
        (b"To: a\x00b\r\n", "contains NUL"),
        (b"Subject: =?utf-8?q?a=0D=0ABcc:_x?=\r\n", "encoded words"),
    ],
)
def test_bad_sections_keep_their_errors(head: bytes, message: str) -> None:
    with pytest.raises(HeaderInjection, match=message):
        prepare(head + b"\r\nbody\r\n", sender="a@example.org", recipients=["b@example.org"])


def test_bcc_is_removed_and_other_fields_kept_in_order() -> None:
    raw = (
        b"From: a@example.org\r\nBCC: c@example.org,\r\n d@example.org\r\nTo: b@example.org\r\n"
        b"Date: Mon, 02 Jun 2025 08:00:00 +0000\r\nMessage-ID:\r\n <x@example.org>\r\n\r\nhi\r\n"
    )
    prepared = prepare(raw, sender="a@example.org", recipients=["b@example.org"])
    assert prepared.data == (
        b"From: a@example.org\r\nTo: b@example.org\r\n"
        b"Date: Mon, 02 Jun 2025 08:00:00 +0000\r\nMessage-ID:\r\n <x@example.org>\r\n\r\nhi\r\n"
    )
    assert prepared.message_id == "<x@example.org>"


def test_unchanged_message_is_the_same_object() -> None:
    raw = (
        b"From: a@example.org\r\nDate: Mon, 02 Jun 2025 08:00:00 +0000\r\n"
        b"Message-ID: <x@example.org>\r\n\r\nhi\r\n"
    )
    assert prepare(raw, sender="a@example.org", recipients=["b@example.org"]).data is raw


def test_non_ascii_bcc_still_counts_for_smtputf8_as_before() -> None:
    raw = (
        "From: a@example.org\r\nBcc: José <c@example.org>\r\nDate: x\r\n"
        "Message-ID: <a@b>\r\n\r\nhi\r\n"
    ).encode()
    prepared = prepare(raw, sender="a@example.org", recipients=["b@example.org"])
    assert prepared.data == b"From: a@example.org\r\nDate: x\r\nMessage-ID: <a@b>\r\n\r\nhi\r\n"
    assert prepared.needs_smtputf8
