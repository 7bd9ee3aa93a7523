"""The parser's cache of one-line replies changes nothing a caller can see."""

from __future__ import annotations

import pytest

from mailtransfer.protocol import RemoteProtocolError, Reply, ReplyParser
from mailtransfer.protocol._reply import _REPLY_CACHE, _REPLY_CACHE_SIZE


def _parse(data: bytes, **limits: int) -> list[Reply]:
    parser = ReplyParser(**limits)
    parser.feed(data)
    replies = []
    while (reply := parser.next_reply()) is not None:
        replies.append(reply)
    return replies


def test_a_repeated_reply_parses_the_same() -> None:
    first = _parse(b"250 2.1.0 Ok\r\n")
    again = _parse(b"250 2.1.0 Ok\r\n250 2.1.0 Ok\r\n")
    assert again == first * 2
    assert first[0].enhanced is not None
    assert str(first[0].enhanced) == "2.1.0"


def test_a_cached_line_ending_a_multiline_reply_is_not_taken_alone() -> None:
    _parse(b"250 SIZE 1000\r\n")
    (reply,) = _parse(b"250-mx.example.org\r\n250 SIZE 1000\r\n")
    assert reply.lines == ("mx.example.org", "SIZE 1000")


def test_a_cached_line_is_still_too_long_for_a_stricter_parser() -> None:
    line = b"250 " + b"x" * 60 + b"\r\n"
    _parse(line)
    with pytest.raises(RemoteProtocolError, match="longer than max_line_length"):
        _parse(line, max_line_length=20)


def test_a_cached_line_after_a_continuation_with_another_code_is_refused() -> None:
    _parse(b"251 ok\r\n")
    with pytest.raises(RemoteProtocolError, match="continuation line has code 251"):
        _parse(b"250-a\r\n251 ok\r\n")


def test_the_cache_stays_bounded() -> None:
    for i in range(3 * _REPLY_CACHE_SIZE):
        (reply,) = _parse(b"250 2.0.0 queued as %d\r\n" % i)
        assert reply.lines == (f"2.0.0 queued as {i}",)
    assert len(_REPLY_CACHE) <= _REPLY_CACHE_SIZE
