"""The SMTP reply parser: bytes in, replies out (tables), errors, and properties."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailtransfer.protocol._errors import RemoteProtocolError, UsageError
from mailtransfer.protocol._reply import EnhancedStatus, Reply, ReplyParser, parse_enhanced


def parse_all(data: bytes, **limits: int) -> list[Reply]:
    """Feed ``data`` whole and drain every complete reply."""
    parser = ReplyParser(**limits)
    parser.feed(data)
    return drain(parser)


def drain(parser: ReplyParser) -> list[Reply]:
    """Collect replies until the parser needs more data."""
    replies = []
    while (reply := parser.next_reply()) is not None:
        replies.append(reply)
    return replies


# --- parse_enhanced --------------------------------------------------------------

ENHANCED_CASES = [
    ("2.0.0 Ok", 250, EnhancedStatus(2, 0, 0)),
    ("5.1.1 No such user", 550, EnhancedStatus(5, 1, 1)),
    ("4.7.1", 451, EnhancedStatus(4, 7, 1)),
    ("5.123.999 x", 554, EnhancedStatus(5, 123, 999)),
    ("2.01.002 leading zeros", 250, EnhancedStatus(2, 1, 2)),
    ("5.1.1 class differs from the code", 250, None),
    ("3.0.0 class 3 does not exist", 354, None),
    ("1.0.0 class 1 does not exist", 250, None),
    ("5.1.1000 detail too long", 550, None),
    ("5.1234.1 subject too long", 550, None),
    ("5..1 no subject", 550, None),
    ("5.1. no detail", 550, None),
    ("5.1.1x glued text", 550, None),
    ("5.1.1\ttab is not a space", 550, None),
    (" 5.1.1 leading space", 550, None),
    ("\u0665.\u0661.\u0661 Arabic-Indic digits", 550, None),
    ("", 250, None),
    ("Ok 2.0.0", 250, None),
]


@pytest.mark.parametrize(("text", "code", "expected"), ENHANCED_CASES)
def test_parse_enhanced_table(text: str, code: int, expected: EnhancedStatus | None) -> None:
    """parse_enhanced follows the RFC 3463 grammar and the class-matches-code rule."""
    assert parse_enhanced(text, code) == expected


# --- bytes in, replies out --------------------------------------------------------

SIMPLE_CASES: list[tuple[bytes, list[Reply]]] = [
    (b"250 OK\r\n", [Reply(250, ("OK",))]),
    (b"220 mx.example.org ESMTP\r\n", [Reply(220, ("mx.example.org ESMTP",))]),
    (b"250\r\n", [Reply(250, ("",))]),
    (b"250 \r\n", [Reply(250, ("",))]),
    (b"250  two  spaces  \r\n", [Reply(250, (" two  spaces  ",))]),
    (
        b"354 End data with <CR><LF>.<CR><LF>\r\n",
        [Reply(354, ("End data with <CR><LF>.<CR><LF>",))],
    ),
    (
        b"250-mx.example.org\r\n250-PIPELINING\r\n250 SIZE 1000\r\n",
        [Reply(250, ("mx.example.org", "PIPELINING", "SIZE 1000"))],
    ),
    (b"250-\r\n250 x\r\n", [Reply(250, ("", "x"))]),
    (b"250 OK\n", [Reply(250, ("OK",))]),
    (b"250-a\n250 b\r\n", [Reply(250, ("a", "b"))]),
    (b"250 a\rb\r\n", [Reply(250, ("a\rb",))]),
    (b"250 a\r\r\n", [Reply(250, ("a\r",))]),
    (b"250 caf\xe9\r\n", [Reply(250, ("caf\ufffd",))]),
    ("250 Grüße\r\n".encode(), [Reply(250, ("Grüße",))]),
    (
        b"250 2.1.0 Ok\r\n251 2.1.5 forwarded\r\n550 5.1.1 unknown\r\n",
        [
            Reply(250, ("2.1.0 Ok",), EnhancedStatus(2, 1, 0)),
            Reply(251, ("2.1.5 forwarded",), EnhancedStatus(2, 1, 5)),
            Reply(550, ("5.1.1 unknown",), EnhancedStatus(5, 1, 1)),
        ],
    ),
    (
        b"550-5.1.1 first\r\n550 5.1.1 second\r\n",
        [Reply(550, ("5.1.1 first", "5.1.1 second"), EnhancedStatus(5, 1, 1))],
    ),
    (b"250-hello\r\n250 2.0.0 ok\r\n", [Reply(250, ("hello", "2.0.0 ok"))]),
    (b"250 5.0.0 class mismatch\r\n", [Reply(250, ("5.0.0 class mismatch",))]),
    (b"599 top of the range\r\n", [Reply(599, ("top of the range",))]),
    (b"200 bottom of the range\r\n", [Reply(200, ("bottom of the range",))]),
]


@pytest.mark.parametrize(("data", "expected"), SIMPLE_CASES)
def test_simple_cases_whole(data: bytes, expected: list[Reply]) -> None:
    """Each table entry parses to exactly its replies when fed in one piece."""
    assert parse_all(data) == expected


@pytest.mark.parametrize(("data", "expected"), SIMPLE_CASES)
def test_simple_cases_byte_by_byte(data: bytes, expected: list[Reply]) -> None:
    """Each table entry parses to the same replies when fed one byte at a time."""
    parser = ReplyParser()
    replies: list[Reply] = []
    for i in range(len(data)):
        parser.feed(data[i : i + 1])
        replies.extend(drain(parser))
    assert replies == expected


def test_incomplete_line_needs_more_data() -> None:
    """A line without its line end yields None and stays buffered."""
    parser = ReplyParser()
    parser.feed(b"250 OK")
    assert parser.next_reply() is None
    assert parser.buffered() == b"250 OK"


def test_bare_cr_does_not_end_a_line() -> None:
    """A bare CR is not a line end, so the reply is not complete yet."""
    parser = ReplyParser()
    parser.feed(b"250 OK\r")
    assert parser.next_reply() is None
    parser.feed(b"\n")
    assert parser.next_reply() == Reply(250, ("OK",))


def test_unfinished_multiline_reply_waits_for_last_line() -> None:
    """A reply with only continuation lines so far is not returned."""
    parser = ReplyParser()
    parser.feed(b"250-a\r\n250-b\r\n")
    assert parser.next_reply() is None


def test_buffered_includes_unfinished_multiline_lines() -> None:
    """buffered() returns the lines of an unfinished multi-line reply."""
    parser = ReplyParser()
    parser.feed(b"250-a\r\n250-b\r\n25")
    assert parser.next_reply() is None
    assert parser.buffered() == b"250-a\r\n250-b\r\n25"


def test_buffered_is_empty_after_complete_reply() -> None:
    """buffered() is empty once every received byte was part of a reply."""
    parser = ReplyParser()
    parser.feed(b"250-a\r\n250 b\r\n")
    parser.next_reply()
    assert parser.buffered() == b""


def test_starttls_injection_leaves_buffered_data() -> None:
    """Bytes after the STARTTLS 220 reply stay visible in buffered() (RFC 3207 4.2)."""
    parser = ReplyParser()
    parser.feed(b"220 go ahead\r\n250-evil\r\n")
    assert parser.next_reply() == Reply(220, ("go ahead",))
    assert parser.next_reply() is None
    assert parser.buffered() == b"250-evil\r\n"


def test_clear_drops_partial_multiline_reply() -> None:
    """clear() forgets buffered bytes and pending lines, so the next reply starts afresh."""
    parser = ReplyParser()
    parser.feed(b"250-a\r\n250-b")
    assert parser.next_reply() is None
    parser.clear()
    assert parser.buffered() == b""
    parser.feed(b"220 x\r\n")
    assert parser.next_reply() == Reply(220, ("x",))


def test_line_of_exactly_max_length_is_accepted() -> None:
    """A line whose length with CRLF equals max_line_length is accepted."""
    line = b"250 " + b"x" * 6 + b"\r\n"
    assert parse_all(line, max_line_length=len(line)) == [Reply(250, ("x" * 6,))]


def test_bare_lf_line_of_exactly_max_length_is_accepted() -> None:
    """A bare-LF line of max_line_length bytes is accepted even after a long wait for its end."""
    parser = ReplyParser(max_line_length=10)
    parser.feed(b"250 xxxxx")
    assert parser.next_reply() is None
    parser.feed(b"\n")
    assert parser.next_reply() == Reply(250, ("xxxxx",))


def test_max_lines_lines_are_accepted() -> None:
    """A reply with exactly max_lines lines is accepted."""
    data = b"250-a\r\n250-b\r\n250 c\r\n"
    assert parse_all(data, max_lines=3) == [Reply(250, ("a", "b", "c"))]


def test_enhanced_code_cache_returns_correct_values_for_many_codes() -> None:
    """Enhanced codes stay correct past the size of the internal cache."""
    for subject in range(40):
        for detail in range(40):
            status = parse_enhanced(f"4.{subject}.{detail} later", 450)
            assert status == EnhancedStatus(4, subject, detail)


def test_repr_shows_state() -> None:
    """The repr tells the state and how much is buffered."""
    parser = ReplyParser()
    parser.feed(b"250-a\r\n250")
    parser.next_reply()
    assert repr(parser) == "<ReplyParser [OK | buffered: 10 bytes, 1 lines]>"


# --- errors -----------------------------------------------------------------------

ERROR_CASES: list[tuple[bytes, dict[str, int], str]] = [
    (b"250 " + b"x" * 10 + b"\r\n", {"max_line_length": 10}, "max_line_length=10"),
    (b"250 " + b"x" * 6, {"max_line_length": 10}, "max_line_length=10"),
    (b"x" * 11, {"max_line_length": 10}, "max_line_length=10"),
    (b"250 xxxx\r\r\n", {"max_line_length": 10}, "max_line_length=10"),
    (b"250-a\r\n250-b\r\n250-c\r\n", {"max_lines": 3}, "max_lines=3"),
    (b"250-a\r\n", {"max_lines": 1}, "max_lines=1"),
    (b"abc ok\r\n", {}, "three-digit reply code"),
    (b"25 ok\r\n", {}, "three-digit reply code"),
    (b"25\r\n", {}, "three-digit reply code"),
    (b"2x0 ok\r\n", {}, "three-digit reply code"),
    (b"\r\n", {}, "three-digit reply code"),
    (b"\n", {}, "three-digit reply code"),
    (b" 250 ok\r\n", {}, "three-digit reply code"),
    (b"150 ok\r\n", {}, "three-digit reply code"),
    (b"650 ok\r\n", {}, "three-digit reply code"),
    (b"050 ok\r\n", {}, "three-digit reply code"),
    ("\u0662\u0665\u0660 ok\r\n".encode(), {}, "three-digit reply code"),
    (b"2500 ok\r\n", {}, "after the reply code"),
    (b"250_ok\r\n", {}, "after the reply code"),
    (b"250\tok\r\n", {}, "after the reply code"),
    (b"250\r\r\n", {}, "after the reply code"),
    (b"250-a\r\n251 b\r\n", {}, "expected 250"),
    (b"250-a\r\n550-b\r\n", {}, "expected 250"),
    (b"250-a\r\nxyz\r\n", {}, "three-digit reply code"),
]


@pytest.mark.parametrize(("data", "limits", "message"), ERROR_CASES)
def test_error_cases(data: bytes, limits: dict[str, int], message: str) -> None:
    """Each malformed or oversized input raises RemoteProtocolError naming the problem."""
    with pytest.raises(RemoteProtocolError, match=message):
        parse_all(data, **limits)


@pytest.mark.parametrize(("data", "limits", "message"), ERROR_CASES)
def test_error_state_is_sticky(data: bytes, limits: dict[str, int], message: str) -> None:
    """After an error, later calls raise again, even with valid data fed and clear() called."""
    parser = ReplyParser(**limits)
    parser.feed(data)
    with pytest.raises(RemoteProtocolError):
        drain(parser)
    parser.clear()
    parser.feed(b"250 OK\r\n")
    with pytest.raises(RemoteProtocolError, match=message):
        parser.next_reply()


def test_overlong_line_is_detected_before_its_line_end() -> None:
    """A line that cannot fit is rejected as soon as it exceeds the bound, without a newline."""
    parser = ReplyParser(max_line_length=64)
    parser.feed(b"250 " + b"x" * 59)
    assert parser.next_reply() is None
    parser.feed(b"x")
    with pytest.raises(RemoteProtocolError, match="max_line_length=64"):
        parser.next_reply()


def test_error_message_quotes_the_bad_line_briefly() -> None:
    """The error message shows the start of a bad line, not all of it."""
    with pytest.raises(RemoteProtocolError) as info:
        parse_all(b"hello " + b"y" * 500 + b"\r\n")
    assert "b'hello yyy" in info.value.message
    assert "(506 bytes)" in info.value.message
    assert "y" * 100 not in info.value.message


def test_error_frees_the_buffer() -> None:
    """After an error the buffered bytes are dropped and new bytes are not kept."""
    parser = ReplyParser()
    parser.feed(b"xyz\r\n250 OK\r\n")
    with pytest.raises(RemoteProtocolError):
        parser.next_reply()
    parser.feed(b"more")
    assert parser.buffered() == b""


@pytest.mark.parametrize(
    ("limits", "name"),
    [({"max_line_length": 4}, "max_line_length"), ({"max_lines": 0}, "max_lines")],
)
def test_limits_too_small_are_rejected(limits: dict[str, int], name: str) -> None:
    """Bounds that cannot hold the shortest reply raise UsageError naming the argument."""
    with pytest.raises(UsageError, match=name):
        ReplyParser(**limits)


# --- properties -------------------------------------------------------------------

DIGITS = tuple("0123456789")
# Any text without LF; CR and other line separators (\x85, \u2028) are allowed
# on purpose: they must not end a line.
line_text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\n"), max_size=30)


@st.composite
def replies(draw: st.DrawFn) -> Reply:
    """A random reply whose enhanced status is known by construction."""
    code = draw(st.integers(200, 599))
    klass = code // 100
    enhanced = None
    first = draw(line_text.filter(lambda t: t[:1] not in DIGITS))
    if klass != 3 and draw(st.booleans()):
        enhanced = EnhancedStatus(klass, draw(st.integers(0, 999)), draw(st.integers(0, 999)))
        first = f"{enhanced} {first}" if first else str(enhanced)
    rest = draw(st.lists(line_text, max_size=5))
    return Reply(code, (first, *rest), enhanced)


def render(reply: Reply, eol: bytes = b"\r\n") -> bytes:
    """The wire form of ``reply``, as a server would send it."""
    out = []
    for i, text in enumerate(reply.lines):
        sep = " " if i == len(reply.lines) - 1 else "-"
        out.append(f"{reply.code}{sep}{text}".encode() + eol)
    return b"".join(out)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    """Cut ``data`` at the given offsets."""
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


@given(st.lists(replies(), max_size=6))
def test_render_then_parse_round_trips(originals: list[Reply]) -> None:
    """Rendering replies with CRLF and parsing the bytes gives them back."""
    assert parse_all(b"".join(render(r) for r in originals)) == originals


@given(st.lists(replies(), max_size=6))
def test_bare_lf_round_trips_like_crlf(originals: list[Reply]) -> None:
    """Rendering with bare LF gives the same replies, unless a text ends in CR."""
    data = b"".join(render(r, b"\n") for r in originals)
    parsed = parse_all(data)
    expected = [
        Reply(r.code, tuple(t[:-1] if t.endswith("\r") else t for t in r.lines), r.enhanced)
        for r in originals
    ]
    assert parsed == expected


@given(st.lists(replies(), max_size=6), st.lists(st.integers(0, 10_000), max_size=20))
def test_any_split_gives_the_same_replies(originals: list[Reply], cuts: list[int]) -> None:
    """Feeding a valid stream in arbitrary chunks gives the same replies as feeding it whole."""
    data = b"".join(render(r) for r in originals)
    parser = ReplyParser()
    chunked: list[Reply] = []
    for chunk in split(data, cuts):
        parser.feed(chunk)
        chunked.extend(drain(parser))
    assert chunked == parse_all(data)
    assert parser.buffered() == b""


hostile_bytes = st.binary(max_size=300) | st.lists(
    st.sampled_from(
        [b"250", b"251", b"199", b"-", b" ", b"\r\n", b"\n", b"\r", b"x", b"2.0.0", b"\xff"]
    ),
    max_size=60,
).map(b"".join)


@given(
    hostile_bytes,
    st.lists(st.integers(0, 10_000), max_size=20),
    st.integers(5, 40),
    st.integers(1, 5),
)
def test_arbitrary_bytes_only_raise_remote_protocol_error(
    data: bytes, cuts: list[int], max_line_length: int, max_lines: int
) -> None:
    """Any input gives replies within bounds or RemoteProtocolError, with buffering bounded."""
    parser = ReplyParser(max_line_length=max_line_length, max_lines=max_lines)
    bound = max_line_length * max_lines
    try:
        for chunk in split(data, cuts):
            parser.feed(chunk)
            for reply in drain(parser):
                assert 200 <= reply.code <= 599
                assert 1 <= len(reply.lines) <= max_lines
            assert len(parser.buffered()) < bound
    except RemoteProtocolError:
        assert len(parser.buffered()) < bound
        with pytest.raises(RemoteProtocolError):
            parser.next_reply()
