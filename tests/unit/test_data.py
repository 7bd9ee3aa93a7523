"""Tests for the DATA encoder and the BDAT chunker (RFC 5321 section 4.5.2, RFC 3030).

The properties are THREATS.md S1 (SMTP smuggling): whatever the message
bytes, the wire carries only CRLF line endings and exactly one end-of-data
mark, at the very end.
"""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailtransfer.protocol import _data
from mailtransfer.protocol._data import (
    _BY_LINES_LIMIT,
    BdatChunker,
    DataEncoder,
    LineEndingNormalizer,
    bdat_chunks,
    decode_data,
    encode_data,
    is_canonical,
    normalize_line_endings,
)
from mailtransfer.protocol._data import (
    _encode_by_counting as encode_by_counting,
)
from mailtransfer.protocol._data import (
    _encode_by_lines as encode_by_lines,
)
from mailtransfer.protocol._errors import UsageError

# Message bytes rich in the characters that matter: CR, LF and ".".
_messages = st.one_of(
    st.binary(max_size=300),
    st.lists(
        st.sampled_from(
            [b"\r", b"\n", b".", b"..", b"a", b"\r\n", b".\r\n", b"\r\n.\r\n", b"\n.\n", b"\r\r\n"]
        ),
        max_size=40,
    ).map(b"".join),
)


def _reference_normalize(data: bytes) -> bytes:
    """An independent oracle: a regex that reads CRLF, CR or LF as one line ending."""
    return re.sub(rb"\r\n|\r|\n", b"\r\n", data)


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    """Cut ``data`` at the given offsets (empty pieces included)."""
    bounds = [0, *sorted(cuts), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def _has_bare_cr_or_lf(wire: bytes) -> bool:
    return b"\r" in wire.replace(b"\r\n", b"") or b"\n" in wire.replace(b"\r\n", b"")


# --- Tricky cases, with the wire bytes worked out by hand -----------------------------------

_CASES = [
    (b"", b"\r\n.\r\n"),
    (b".", b"..\r\n.\r\n"),
    (b"..", b"...\r\n.\r\n"),
    (b".\r\n", b"..\r\n.\r\n"),
    (b"\n.\n", b"\r\n..\r\n.\r\n"),
    (b"\r\r\n", b"\r\n\r\n.\r\n"),
    (b"a\r", b"a\r\n.\r\n"),
    (b"a", b"a\r\n.\r\n"),
    (b"a\r\n", b"a\r\n.\r\n"),
    (b"\n", b"\r\n.\r\n"),
    (b"\n\r", b"\r\n\r\n.\r\n"),
    (b".leading", b"..leading\r\n.\r\n"),
    (b"a\r\n.\r\nb", b"a\r\n..\r\nb\r\n.\r\n"),
    (b"a\n.\nMAIL FROM:<x@y>\n", b"a\r\n..\r\nMAIL FROM:<x@y>\r\n.\r\n"),
    (b"a\n.\r\nb", b"a\r\n..\r\nb\r\n.\r\n"),
    (b"a\r.\rb", b"a\r\n..\r\nb\r\n.\r\n"),
    (b"a\r\n..\r\n", b"a\r\n...\r\n.\r\n"),
    (b"x.y\r\n.z", b"x.y\r\n..z\r\n.\r\n"),
    (b"\r\n\r\n", b"\r\n\r\n.\r\n"),
]
_IDS = [repr(message) for message, _ in _CASES]


@pytest.mark.parametrize(("message", "wire"), _CASES, ids=_IDS)
def test_encode_data_tricky_cases(message: bytes, wire: bytes) -> None:
    """Each tricky message encodes to the hand-computed wire bytes."""
    assert encode_data(message) == wire


@pytest.mark.parametrize(("message", "wire"), _CASES, ids=_IDS)
def test_data_encoder_byte_by_byte_tricky_cases(message: bytes, wire: bytes) -> None:
    """Fed one byte at a time, the streaming encoder gives the same wire bytes."""
    encoder = DataEncoder()
    out = b"".join(encoder.feed(message[i : i + 1]) for i in range(len(message)))
    assert out + encoder.finish() == wire


@pytest.mark.parametrize(("message", "wire"), _CASES, ids=_IDS)
def test_decode_data_tricky_cases(message: bytes, wire: bytes) -> None:
    """Decoding the wire bytes gives the normalised message with a final CRLF."""
    expected = _reference_normalize(message)
    if not expected.endswith(b"\r\n"):
        expected += b"\r\n"
    assert decode_data(wire) == expected


def test_encode_data_accepts_bytearray() -> None:
    """A bytearray or memoryview is encoded like the equivalent bytes."""
    assert encode_data(bytearray(b".a\n")) == b"..a\r\n.\r\n"
    assert encode_data(memoryview(b".a\n")) == b"..a\r\n.\r\n"


# --- S1 properties ---------------------------------------------------------------------------


@given(_messages)
def test_wire_has_no_bare_cr_or_lf(message: bytes) -> None:
    """No bare CR or LF ever reaches the wire."""
    assert not _has_bare_cr_or_lf(encode_data(message))


@given(_messages)
def test_wire_has_one_end_of_data_mark_at_the_end(message: bytes) -> None:
    """CRLF . CRLF appears once, at the end (counting the CRLF that ended the DATA line)."""
    wire = encode_data(message)
    assert wire.endswith(b"\r\n.\r\n")
    assert (b"\r\n" + wire).find(b"\r\n.\r\n") == len(wire) - 3


@given(_messages)
def test_decode_inverts_encode(message: bytes) -> None:
    """Un-stuffing the wire gives the canonicalised input, with a final CRLF added if missing."""
    expected = _reference_normalize(message)
    if not expected.endswith(b"\r\n"):
        expected += b"\r\n"
    assert decode_data(encode_data(message)) == expected


@given(_messages)
def test_small_message_fast_path_agrees_with_the_general_path(message: bytes) -> None:
    """Splitting into lines (small messages) and counting line endings give the same wire."""
    assert encode_by_lines(message) == encode_by_counting(message)


@given(_messages)
def test_a_message_known_canonical_encodes_as_any_other(message: bytes) -> None:
    """After is_canonical() has seen the very object, encode_data gives the same wire."""
    expected = encode_by_lines(message)
    is_canonical(message)  # remembers it when canonical: encode_data skips a pass
    assert encode_data(message) == expected
    assert not _has_bare_cr_or_lf(encode_data(message))


@pytest.mark.parametrize(("message", "wire"), _CASES, ids=_IDS)
def test_tricky_cases_known_canonical_or_not(message: bytes, wire: bytes) -> None:
    """The hand-computed wire bytes, whether or not is_canonical() saw the message first."""
    copy = bytes(bytearray(message))  # a distinct object (b"" and one-byte bytes are shared)
    is_canonical(copy)
    assert encode_data(copy) == wire


def test_the_known_canonical_memo_is_bounded() -> None:
    """It holds a few recent small messages, never a large one."""
    for i in range(3 * _data._KNOWN_SIZE):
        is_canonical(b"line %d\r\n" % i)
    big = b"x\r\n" * (_data._KNOWN_LIMIT // 3 + 1)
    assert is_canonical(big)
    assert id(big) not in _data._KNOWN_CANONICAL
    assert len(_data._KNOWN_CANONICAL) <= _data._KNOWN_SIZE


def test_both_paths_agree_on_every_short_mix_of_cr_lf_and_dot() -> None:
    """Exhaustively, for every string of up to 6 bytes from CR, LF, "." and "a"."""
    for size in range(7):
        for parts in itertools.product([b"\r", b"\n", b".", b"a"], repeat=size):
            message = b"".join(parts)
            assert encode_by_lines(message) == encode_by_counting(message), message


@pytest.mark.parametrize("extra", [-1, 0, 1, 5000])
def test_messages_around_the_fast_path_limit_encode_alike(extra: int) -> None:
    """Either side of the size limit, encode_data gives the same bytes as the oracle."""
    unit = b".a\rb\nc\r\n\r\r\n.."
    message = (unit * (_BY_LINES_LIMIT // len(unit) + 1))[: _BY_LINES_LIMIT + extra]
    lines = _reference_normalize(message)
    if not lines.endswith(b"\r\n"):
        lines += b"\r\n"
    expected = re.sub(rb"(?m)^\.", b"..", lines) + b".\r\n"
    assert encode_data(message) == expected
    assert encode_data(bytearray(message)) == expected


@given(_messages, st.data())
def test_data_encoder_matches_encode_data_for_any_split(
    message: bytes, data: st.DataObject
) -> None:
    """The streaming encoder gives exactly encode_data's bytes however the input is split."""
    cuts = data.draw(st.lists(st.integers(0, len(message)), max_size=8))
    encoder = DataEncoder()
    out = b"".join(encoder.feed(piece) for piece in _split(message, cuts))
    assert out + encoder.finish() == encode_data(message)


@given(_messages, st.data())
def test_data_encoder_output_is_bounded_per_feed(message: bytes, data: st.DataObject) -> None:
    """Each feed returns at most twice its input plus a held-back CRLF."""
    cuts = data.draw(st.lists(st.integers(0, len(message)), max_size=8))
    encoder = DataEncoder()
    for piece in _split(message, cuts):
        assert len(encoder.feed(piece)) <= 2 * len(piece) + 2


# --- normalize_line_endings and LineEndingNormalizer -------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", b""),
        (b"a\nb\rc\r\nd", b"a\r\nb\r\nc\r\nd"),
        (b"\r\r\n", b"\r\n\r\n"),
        (b"\n\r", b"\r\n\r\n"),
        (b"\r\n\n\r\r", b"\r\n\r\n\r\n\r\n"),
        (b".\n", b".\r\n"),
        (b"no line end", b"no line end"),
    ],
)
def test_normalize_line_endings_table(data: bytes, expected: bytes) -> None:
    """Every CRLF, bare LF and bare CR becomes CRLF; nothing else changes."""
    assert normalize_line_endings(data) == expected


@given(_messages)
def test_normalize_matches_reference(data: bytes) -> None:
    """The bytes.replace implementation agrees with a regex oracle."""
    assert normalize_line_endings(data) == _reference_normalize(data)


@given(_messages, st.data())
def test_line_ending_normalizer_matches_for_any_split(data: bytes, draw: st.DataObject) -> None:
    """The streaming normaliser equals the one-shot one however the input is split."""
    cuts = draw.draw(st.lists(st.integers(0, len(data)), max_size=8))
    normalizer = LineEndingNormalizer()
    out = b"".join(normalizer.feed(piece) for piece in _split(data, cuts))
    assert out + normalizer.finish() == normalize_line_endings(data)


def test_normalizer_holds_back_a_trailing_cr() -> None:
    """A CR at the end of a chunk waits to see whether an LF follows."""
    normalizer = LineEndingNormalizer()
    assert normalizer.feed(b"a\r") == b"a"
    assert normalizer.pending == 2
    assert normalizer.feed(b"\nb") == b"\r\nb"
    assert normalizer.pending == 0


# --- decode_data ----------------------------------------------------------------------------


def test_decode_empty_message() -> None:
    """A lone '.' line right after 354 is an empty message."""
    assert decode_data(b".\r\n") == b""


@pytest.mark.parametrize("wire", [b"", b"abc\r\n", b"abc\r\n.", b"abc\n.\n", b"abc\r\n.\n"])
def test_decode_refuses_missing_terminator(wire: bytes) -> None:
    """Without CRLF . CRLF (bare-LF variants included) there is no end of data."""
    with pytest.raises(ValueError, match="no end-of-data mark"):
        decode_data(wire)


@pytest.mark.parametrize("wire", [b"a\r\n.\r\nMAIL FROM:<x@y>\r\n", b".\r\nx"])
def test_decode_refuses_bytes_after_terminator(wire: bytes) -> None:
    """Data after the first end-of-data mark is smuggled, not part of the message."""
    with pytest.raises(ValueError, match="follow the end-of-data mark"):
        decode_data(wire)


# --- BDAT -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "size", "chunks"),
    [
        (b"", 10, [b""]),
        (b".\r\n", 10, [b".\r\n"]),
        (b"ab\ncd", 3, [b"ab\r", b"\ncd"]),
        (b"abcdef", 3, [b"abc", b"def"]),
        (b"abcdefg", 3, [b"abc", b"def", b"g"]),
        (b"abc\r", 4, [b"abc", b"\r\n"]),
        (b"\n.\n", 100, [b"\r\n.\r\n"]),
    ],
)
def test_bdat_chunks_table(message: bytes, size: int, chunks: list[bytes]) -> None:
    """BDAT chunks are normalised, never dot-stuffed, unterminated, at most chunk_size."""
    assert list(bdat_chunks(message, size)) == chunks


@given(_messages, st.integers(2, 50))
def test_bdat_chunks_join_to_normalized_message(message: bytes, size: int) -> None:
    """Joined chunks are the normalised message; all fit; only an empty message gives b""."""
    chunks = list(bdat_chunks(message, size))
    assert b"".join(chunks) == _reference_normalize(message)
    assert all(len(chunk) <= size for chunk in chunks)
    assert all(chunks) or chunks == [b""]


@given(_messages, st.integers(2, 50), st.data())
def test_bdat_chunker_any_split(message: bytes, size: int, data: st.DataObject) -> None:
    """Streaming chunker output joins to the normalised message and respects chunk_size."""
    cuts = data.draw(st.lists(st.integers(0, len(message)), max_size=8))
    chunker = BdatChunker(size)
    chunks = [c for piece in _split(message, cuts) for c in chunker.feed(piece)]
    chunks.append(chunker.finish())
    assert b"".join(chunks) == _reference_normalize(message)
    assert all(len(chunk) <= size for chunk in chunks)


def test_bdat_chunker_final_chunk_not_empty() -> None:
    """A message that fills whole chunks keeps its last chunk back for BDAT LAST."""
    chunker = BdatChunker(4)
    assert chunker.feed(b"abcdefgh") == [b"abcd"]
    assert chunker.finish() == b"efgh"


@pytest.mark.parametrize("size", [0, 1, -5, True, 2.5])
def test_bdat_chunk_size_must_be_at_least_two(size: object) -> None:
    """A chunk must have room for a CRLF."""
    with pytest.raises(UsageError, match="chunk_size"):
        BdatChunker(size)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="chunk_size"):
        bdat_chunks(b"abc", size)  # type: ignore[arg-type]


# --- Misuse ---------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [DataEncoder, LineEndingNormalizer, lambda: BdatChunker(8)])
def test_feed_after_finish_is_refused(make: type) -> None:
    """Feeding a finished encoder raises UsageError instead of corrupting the stream."""
    streamer = make()
    streamer.finish()
    with pytest.raises(UsageError, match="after finish"):
        streamer.feed(b"more")


@pytest.mark.parametrize("make", [DataEncoder, LineEndingNormalizer, lambda: BdatChunker(8)])
def test_finish_twice_is_refused(make: type) -> None:
    """A second finish() would send a second end-of-data mark; it raises instead."""
    streamer = make()
    streamer.finish()
    with pytest.raises(UsageError, match="twice"):
        streamer.finish()
