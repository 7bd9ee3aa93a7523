"""The message body on the wire: ``DATA`` transparency and ``BDAT`` chunks.

Strategy: one function, :func:`normalize_line_endings`, turns every line
ending of the input (CRLF, bare LF, bare CR) into CRLF, using only C-speed
``bytes`` operations; everything else is built on it:

- :func:`encode_data` / :class:`DataEncoder` (``DATA``, RFC 5321 section
  4.5.2): normalise, dot-stuff, terminate with ``CRLF . CRLF``;
- :func:`bdat_chunks` / :class:`BdatChunker` (``BDAT``, RFC 3030): normalise
  and cut into chunks; never dot-stuffed, no terminator;
- :class:`LineEndingNormalizer`: the streaming form of the normalisation.

Why normalise instead of passing bytes through: a bare LF or CR that reaches
the wire lets a message carry a second end-of-data mark that some server
along the way honours (SMTP smuggling, THREATS.md S1; CVE-2023-51764/5/6), and
RFC 5321 section 4.1.1.4 allows CR and LF only as CRLF. Rejecting such input
would make most real-world messages unsendable, so every bare CR or LF
becomes a CRLF line break: a bare CR or LF never reaches the wire.

Streaming works because normalisation is local: a line ending is at most two
bytes, so only a CR at the very end of a chunk must wait for the next chunk
(it may be the first half of a CRLF). Dot-stuffing then needs one bit, whether
the output so far ends at the start of a line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ._errors import UsageError

__all__ = [
    "BdatChunker",
    "DataEncoder",
    "LineEndingNormalizer",
    "bdat_chunks",
    "decode_data",
    "encode_data",
    "is_canonical",
    "normalize_line_endings",
]

_CR = b"\r"
_LF = b"\n"
_CRLF = b"\r\n"
# RFC 5321 section 4.1.1.4: the mail data end with CRLF "." CRLF, where the
# first CRLF ends the last line of the message.
_END_OF_DATA = b".\r\n"
_BARE_CR = re.compile(rb"\r(?!\n)")
_NOT_CR_LF = bytes(sorted(set(range(256)) - {0x0D, 0x0A}))


def is_canonical(data: bytes, start: int = 0) -> bool:
    """Whether ``data[start:]`` has CRLF line endings only (no bare CR, no bare LF).

    Canonical means every CR starts a CRLF and every LF ends one. With every
    other byte deleted, what is left must be ``CR LF CR LF ...`` (as many CRLFs
    as half its length: they cannot overlap, so they tile it); and with no bare
    CR (one not directly followed by an LF) each LF is the one right after its
    CR. Both tests run at C speed, and cost less than counting CRs, LFs and CRLFs.

    A whole message (``start`` 0) found canonical is remembered for a while, so
    that :func:`encode_data` skips its line-ending pass when it gets the same object.
    """
    ends = data[start:].translate(None, _NOT_CR_LF)
    canonical = not ends or (
        ends.count(_CRLF) * 2 == len(ends) and _BARE_CR.search(data, start) is None
    )
    if canonical and not start and type(data) is bytes and len(data) <= _KNOWN_LIMIT:
        known = _KNOWN_CANONICAL
        if len(known) >= _KNOWN_SIZE:
            known.clear()  # one call, safe with other threads at it too
        known[id(data)] = data
    return canonical


# Messages that is_canonical() found canonical lately, by identity. Message preparation
# checks each message, and the encoder then gets the very same object: it can skip the
# line-ending pass (about 2 us of 4 for 2 KB). Sound because bytes never change, and an
# id cannot be reused while the object is held here; bounded in count and size (at most
# 1 MiB held), since the objects stay alive while remembered.
_KNOWN_CANONICAL: dict[int, bytes] = {}
_KNOWN_SIZE = 64
_KNOWN_LIMIT = 16 * 1024


def normalize_line_endings(data: bytes | bytearray | memoryview) -> bytes:
    """Turn every CRLF, bare LF and bare CR in ``data`` into CRLF.

    ``b"\\r\\r\\n"`` is a bare CR followed by a CRLF, so two line breaks.
    No dot-stuffing, no line added at the end.

    Args:
        data: any bytes.

    Returns:
        The normalised bytes; ``data`` itself when it is already canonical.

    Example:
        >>> normalize_line_endings(b"a\\nb\\rc\\r\\n")
        b'a\\r\\nb\\r\\nc\\r\\n'
    """
    data = bytes(data) if type(data) is not bytes else data
    if is_canonical(data):  # no copy: the common case for well-built mail
        return data
    # CRLF -> LF leaves one LF per CRLF/LF line ending and only bare CRs;
    # those become LF, then every LF becomes CRLF.
    return data.replace(_CRLF, _LF).replace(_CR, _LF).replace(_LF, _CRLF)


def _dot_stuff(data: bytes, at_line_start: bool) -> bytes:
    # RFC 5321 section 4.5.2: a line that starts with "." gets one more.
    # ``data`` is normalised, so every line but the first starts after a CRLF.
    data = data.replace(b"\r\n.", b"\r\n..")
    if at_line_start and data.startswith(b"."):
        data = b"." + data
    return data


def _terminator(ends_with_crlf: bool) -> bytes:
    # A message that does not end with CRLF gets one, so that "." is alone on its line.
    return _END_OF_DATA if ends_with_crlf else _CRLF + _END_OF_DATA


def encode_data(message: bytes | bytearray | memoryview) -> bytes:
    """Encode a whole message for ``DATA``: the exact bytes to send after the 354 reply.

    Every line ending becomes CRLF, every line starting with ``.`` gets a
    second ``.``, a missing final CRLF is added, and ``CRLF . CRLF`` follows;
    it appears nowhere else. An empty message is sent as one empty line.

    Args:
        message: the message (headers and body) as bytes.

    Returns:
        The wire bytes, terminator included.

    Example:
        >>> encode_data(b".hidden\\nend")
        b'..hidden\\r\\nend\\r\\n.\\r\\n'
    """
    if type(message) is not bytes:
        message = bytes(message)
    if _KNOWN_CANONICAL.get(id(message)) is message:
        stuffed = _dot_stuff(message, True)
        return stuffed + _terminator(stuffed.endswith(_CRLF))
    if len(message) <= _BY_LINES_LIMIT:
        return _encode_by_lines(message)
    return _encode_by_counting(message)


# Up to this size, splitting into lines and joining them with CRLF beats counting the line
# endings (and the list of lines stays small); both give the same bytes for any input.
_BY_LINES_LIMIT = 64 * 1024


def _encode_by_lines(message: bytes) -> bytes:
    # bytes.splitlines() breaks at CRLF, bare LF and bare CR alike (and only there), and
    # drops one final line ending: joining with CRLF normalises in one pass, and the last
    # line always gets its CRLF back from the terminator ("" becomes one empty line).
    return _dot_stuff(_CRLF.join(message.splitlines()), True) + _CRLF + _END_OF_DATA


def _encode_by_counting(message: bytes) -> bytes:
    body = _dot_stuff(normalize_line_endings(message), True)
    return body + _terminator(body.endswith(_CRLF))


def decode_data(wire: bytes) -> bytes:
    """Undo :func:`encode_data`: check and strip the terminator, remove dot-stuffing.

    Meant for tests and the test server. Line endings are not changed.

    Args:
        wire: everything the client sent after the 354 reply.

    Returns:
        The message, ending with CRLF unless it is empty.

    Raises:
        ValueError: ``wire`` has no end-of-data mark, or bytes follow the first one.
    """
    if wire.startswith(_END_OF_DATA):
        body = b""
        end = len(_END_OF_DATA)
    else:
        mark = wire.find(_CRLF + _END_OF_DATA)
        if mark < 0:
            raise ValueError("message data have no end-of-data mark (CRLF . CRLF)")
        body = wire[: mark + len(_CRLF)]
        end = mark + len(_CRLF + _END_OF_DATA)
    if end != len(wire):
        raise ValueError(f"{len(wire) - end} bytes follow the end-of-data mark")
    body = body.replace(b"\r\n.", _CRLF)
    return body[1:] if body.startswith(b".") else body


class LineEndingNormalizer:
    """Streaming :func:`normalize_line_endings`: the same output for any split of the input.

    A CR at the end of a chunk is held back until the next chunk (or
    :meth:`finish`) shows whether an LF follows it.

    Example:
        >>> n = LineEndingNormalizer()
        >>> n.feed(b"a\\r") + n.feed(b"\\nb\\r") + n.finish()
        b'a\\r\\nb\\r\\n'
    """

    __slots__ = ("_finished", "_pending_cr")

    def __init__(self) -> None:
        self._pending_cr = False
        self._finished = False

    @property
    def pending(self) -> int:
        """How many bytes the held-back CR will produce: 2 (a CRLF) or 0."""
        return 2 if self._pending_cr else 0

    def feed(self, chunk: bytes | bytearray | memoryview) -> bytes:
        """Normalise the next piece of the input.

        Args:
            chunk: the next bytes; any size, ``b""`` included.

        Returns:
            The normalised output so far, at most ``len(chunk) * 2 + 2`` bytes.

        Raises:
            UsageError: called after :meth:`finish`.
        """
        if self._finished:
            raise UsageError("feed() called after finish(): the message has ended")
        if type(chunk) is not bytes:
            chunk = bytes(chunk)
        if self._pending_cr:
            chunk = _CR + chunk
        self._pending_cr = chunk.endswith(_CR)
        if self._pending_cr:
            chunk = chunk[:-1]
        return normalize_line_endings(chunk)

    def finish(self) -> bytes:
        """End the input: a held-back CR is a bare CR, so it becomes CRLF.

        Returns:
            ``b"\\r\\n"`` or ``b""``.

        Raises:
            UsageError: called twice.
        """
        if self._finished:
            raise UsageError("finish() called twice")
        tail = _CRLF if self._pending_cr else b""
        self._pending_cr = False
        self._finished = True
        return tail


class DataEncoder:
    """Streaming :func:`encode_data`, for a message read from a file or generator.

    ``b"".join(feed(c) for c in chunks) + finish()`` equals
    ``encode_data(b"".join(chunks))`` however the message is split, and each
    :meth:`feed` returns O(``len(chunk)``) bytes.

    Example:
        >>> enc = DataEncoder()
        >>> enc.feed(b"a\\r") + enc.feed(b"\\n.b") + enc.finish()
        b'a\\r\\n..b\\r\\n.\\r\\n'
    """

    __slots__ = ("_at_line_start", "_normalizer", "_started")

    def __init__(self) -> None:
        self._normalizer = LineEndingNormalizer()
        self._at_line_start = True
        self._started = False

    def feed(self, chunk: bytes | bytearray | memoryview) -> bytes:
        """Encode the next piece of the message.

        Args:
            chunk: the next bytes of the message.

        Returns:
            Wire bytes to send now (possibly ``b""``).

        Raises:
            UsageError: called after :meth:`finish`.
        """
        out = _dot_stuff(self._normalizer.feed(chunk), self._at_line_start)
        if out:
            self._started = True
            self._at_line_start = out.endswith(_CRLF)
        return out

    def finish(self) -> bytes:
        """End the message.

        Returns:
            The last wire bytes: a held-back line ending, a final CRLF if the
            message lacked one, and the ``. CRLF`` end-of-data mark.

        Raises:
            UsageError: called twice.
        """
        tail = self._normalizer.finish()
        ends_with_crlf = bool(tail) or (self._started and self._at_line_start)
        return tail + _terminator(ends_with_crlf)


class BdatChunker:
    """Cut a message streamed in pieces into ``BDAT`` chunks (RFC 3030).

    Line endings are normalised to CRLF (unless the body is ``BINARYMIME``,
    which should not go through this class); chunks are never dot-stuffed and
    carry no terminator, as RFC 3030 section 2 requires. Every chunk is at
    most ``chunk_size`` bytes; the chunks from :meth:`feed` are normally
    exactly that size, and :meth:`finish` returns the final chunk, to be sent
    as ``BDAT n LAST``. It is never empty unless the whole message is.

    Args:
        chunk_size: the largest chunk, at least 2 bytes (room for a CRLF).

    Raises:
        UsageError: ``chunk_size`` is not an int of at least 2.
    """

    __slots__ = ("_buffer", "_chunk_size", "_normalizer")

    def __init__(self, chunk_size: int) -> None:
        if type(chunk_size) is not int or chunk_size < 2:
            raise UsageError(f"chunk_size must be an int of at least 2, but got {chunk_size!r}")
        self._chunk_size = chunk_size
        self._normalizer = LineEndingNormalizer()
        self._buffer = b""

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Add the next piece of the message.

        Args:
            data: the next bytes of the message.

        Returns:
            The chunks now complete (each to be sent as ``BDAT n``), possibly none.
            At most ``chunk_size`` bytes stay buffered.

        Raises:
            UsageError: called after :meth:`finish`.
        """
        buffer = self._buffer + self._normalizer.feed(data)
        # Hold back enough that the final chunk, with the CRLF a held-back CR
        # will become, still fits in chunk_size.
        pending = self._normalizer.pending
        size = self._chunk_size
        chunks: list[bytes] = []
        start = 0
        while len(buffer) - start + pending > size:
            take = min(size, len(buffer) - start)
            chunks.append(buffer[start : start + take])
            start += take
        self._buffer = buffer[start:]
        return chunks

    def finish(self) -> bytes:
        """End the message.

        Returns:
            The last chunk, to be sent with ``BDAT n LAST``; ``b""`` only for
            an empty message.

        Raises:
            UsageError: called twice.
        """
        last = self._buffer + self._normalizer.finish()
        self._buffer = b""
        return last


def bdat_chunks(message: bytes | bytearray | memoryview, chunk_size: int) -> Iterator[bytes]:
    """Cut a whole message into ``BDAT`` chunks: normalised line endings, no dot-stuffing.

    Args:
        message: the message as bytes.
        chunk_size: the largest chunk, at least 2.

    Returns:
        An iterator over chunks of at most ``chunk_size`` bytes; the last one is the ``LAST``
        chunk. At least one chunk is yielded (``b""`` for an empty message).

    Raises:
        UsageError: ``chunk_size`` is less than 2.

    Example:
        >>> list(bdat_chunks(b"ab\\ncd", 3))
        [b'ab\\r', b'\\ncd']
    """
    chunker = BdatChunker(chunk_size)
    chunks = chunker.feed(message)
    chunks.append(chunker.finish())
    return iter(chunks)
