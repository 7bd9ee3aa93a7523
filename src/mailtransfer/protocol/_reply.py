"""SMTP replies: the value objects and the incremental reply parser.

Strategy: bytes arrive in arbitrary pieces; :class:`ReplyParser` keeps the
unfinished line and the lines of the unfinished multi-line reply, and hands
out complete :class:`Reply` values. Every buffer is bounded (line length,
lines per reply), so a hostile server gets a :class:`RemoteProtocolError`
and never a hang or unbounded memory. The parser never rescans bytes it has
already searched, so its cost is linear in the input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NoReturn

from ._errors import RemoteProtocolError, UsageError

__all__ = ["EnhancedStatus", "Reply", "ReplyParser", "parse_enhanced"]


@dataclass(frozen=True, slots=True)
class EnhancedStatus:
    """An RFC 3463 enhanced status code, ``class.subject.detail``.

    Example:
        >>> str(EnhancedStatus(5, 1, 1))
        '5.1.1'
    """

    klass: int
    """2 (success), 4 (persistent transient failure) or 5 (permanent failure)."""
    subject: int
    detail: int

    def __str__(self) -> str:
        return f"{self.klass}.{self.subject}.{self.detail}"


@dataclass(frozen=True, slots=True)
class Reply:
    """One complete SMTP reply: a three-digit code and one or more text lines.

    ``lines`` keeps the text of every line as the server sent it (decoded as
    UTF-8, undecodable bytes replaced), without the code, separator or CRLF.
    ``enhanced`` is the RFC 3463 code found at the start of the first line,
    when its class agrees with the reply code.
    """

    code: int
    lines: tuple[str, ...] = ("",)
    enhanced: EnhancedStatus | None = None

    @property
    def text(self) -> str:
        """The reply's text, lines joined with ``\\n``, enhanced codes included."""
        return "\n".join(self.lines)

    @property
    def message(self) -> str:
        """The reply's text with the leading enhanced status code removed from each line."""
        if self.enhanced is None:
            return self.text
        prefix = str(self.enhanced)
        out = []
        for line in self.lines:
            if line.startswith(prefix):
                line = line[len(prefix) :].lstrip(" ")  # noqa: PLW2901
            out.append(line)
        return "\n".join(out)

    @property
    def is_success(self) -> bool:
        """True for a 2xx reply."""
        return 200 <= self.code < 300

    @property
    def is_intermediate(self) -> bool:
        """True for a 3xx reply (354 go-ahead, 334 SASL challenge)."""
        return 300 <= self.code < 400

    @property
    def is_transient(self) -> bool:
        """True for a 4xx reply: the same command may succeed later."""
        return 400 <= self.code < 500

    @property
    def is_permanent(self) -> bool:
        """True for a 5xx reply: repeating the same command will fail again."""
        return 500 <= self.code < 600

    def __str__(self) -> str:
        return f"{self.code} {self.text}"


# RFC 3463 section 2: status-code = class "." subject "." detail, with
# class = "2" / "4" / "5" and subject, detail = 1*3digit. The code must be
# followed by a space or the end of the line so that "2.1.1000" or "2.0.0x"
# is not mistaken for one.
_ENHANCED = re.compile(r"([245])\.([0-9]{1,3})\.([0-9]{1,3})(?= |\Z)")
_ENHANCED_CACHE: dict[str, EnhancedStatus] = {}
_ENHANCED_CACHE_SIZE = 1024


def parse_enhanced(text: str, code: int) -> EnhancedStatus | None:
    """Read the RFC 3463 enhanced status code at the start of a reply line.

    The class must be 2, 4 or 5 and equal to the first digit of ``code``
    (RFC 3463 section 2 and RFC 2034 section 3); a mismatch means the text
    only looks like a code, so it is ignored.

    Args:
        text: the text of the reply's first line, after the code and separator.
        code: the three-digit reply code the line came with.

    Returns:
        The status code, or None when the line does not start with a valid one.

    Example:
        >>> parse_enhanced("5.1.1 No such user", 550)
        EnhancedStatus(klass=5, subject=1, detail=1)
        >>> parse_enhanced("5.1.1 No such user", 250) is None
        True
    """
    match = _ENHANCED.match(text)
    if match is None:
        return None
    key = match[0]
    status = _ENHANCED_CACHE.get(key)
    if status is None:
        status = EnhancedStatus(int(match[1]), int(match[2]), int(match[3]))
        # Building a frozen dataclass costs more than the rest of a reply's
        # parsing; a few codes make up nearly all traffic, so keep them. The
        # bound stops a hostile server from growing the cache.
        if len(_ENHANCED_CACHE) < _ENHANCED_CACHE_SIZE:
            _ENHANCED_CACHE[key] = status
    if status.klass != code // 100:
        return None
    return status


# One-line replies already parsed, by their exact bytes (CRLF included). Shared by every
# parser: the same bytes always parse to the same (immutable) Reply.
_REPLY_CACHE: dict[bytes, Reply] = {}
_REPLY_CACHE_SIZE = 256
_REPLY_CACHE_LINE = 128


class ReplyParser:
    """Incremental parser turning bytes from an SMTP server into :class:`Reply` values.

    A reply line is a three-digit code (first digit 2 to 5), then ``-`` when
    more lines follow, or a space or the end of the line on the last line
    (RFC 5321 section 4.2). Lines end with CRLF; a bare LF is accepted too, as
    many servers send it, but a bare CR never ends a line.

    Example:
        >>> parser = ReplyParser()
        >>> parser.feed(b"250-mx.example.org\\r\\n250 SIZE 1000")
        >>> parser.next_reply() is None
        True
        >>> parser.feed(b"\\r\\n")
        >>> parser.next_reply()
        Reply(code=250, lines=('mx.example.org', 'SIZE 1000'), enhanced=None)

    Args:
        max_line_length: the longest line accepted, in bytes, CRLF included.
        max_lines: the most lines one reply may have.

    Raises:
        UsageError: a bound is too small to hold even ``250\\r\\n``.
    """

    __slots__ = (
        "_buf",
        "_code",
        "_error",
        "_line_start",
        "_lines",
        "_max_len",
        "_max_lines",
        "_scan",
    )

    def __init__(self, *, max_line_length: int = 4096, max_lines: int = 512) -> None:
        if max_line_length < 5:
            raise UsageError(f"max_line_length must be at least 5 bytes, got {max_line_length!r}")
        if max_lines < 1:
            raise UsageError(f"max_lines must be at least 1, got {max_lines!r}")
        self._max_len = max_line_length
        self._max_lines = max_lines
        # Everything received and not yet part of a returned reply. The lines of
        # an unfinished multi-line reply stay in it until the reply completes,
        # so buffered() is simply this buffer.
        self._buf = bytearray()
        self._line_start = 0
        """Offset in _buf of the line being read."""
        self._scan = 0
        """Offset in _buf up to which no LF exists: never search those bytes again."""
        self._lines: list[str] = []
        """Texts of the finished lines of the unfinished multi-line reply."""
        self._code = 0
        """Code of the unfinished multi-line reply's first line."""
        self._error: str | None = None

    def __repr__(self) -> str:
        state = "ERROR" if self._error is not None else "OK"
        return (
            f"<ReplyParser [{state} | buffered: {len(self._buf)} bytes, {len(self._lines)} lines]>"
        )

    def feed(self, data: bytes) -> None:
        """Append bytes received from the server; parsing waits for :meth:`next_reply`.

        Args:
            data: the bytes, in whatever pieces the transport delivered them.
                After an error they are dropped, so memory stays bounded.
        """
        if self._error is None:
            self._buf += data

    def buffered(self) -> bytes:
        """The bytes received but not yet part of a returned reply.

        This includes the lines of an unfinished multi-line reply. A client
        checks it right after the 220 reply to ``STARTTLS``: anything here was
        sent before TLS and may be an injected command (RFC 3207 section 4.2).

        Returns:
            A copy of the unparsed bytes; empty when everything was consumed.
        """
        return bytes(self._buf)

    def clear(self) -> None:
        """Forget every buffered byte and any unfinished reply.

        Called once TLS is up after ``STARTTLS``: RFC 3207 section 4.2 says the
        client must discard knowledge obtained before TLS. An error state is
        kept: a broken connection does not become usable by clearing.
        """
        self._buf = bytearray()
        self._line_start = self._scan = 0
        self._lines = []

    def next_reply(self) -> Reply | None:
        """Parse and return the next complete reply from the buffered bytes.

        Call it again until it returns None, since one :meth:`feed` may bring
        several replies (PIPELINING).

        Returns:
            The next reply, or None when more bytes are needed.

        Raises:
            RemoteProtocolError: a line is longer than ``max_line_length``, a
                reply has more than ``max_lines`` lines, a code is not three
                digits from 200 to 599, or a continuation line changes the code.
                The parser then stays broken: every later call raises again.
        """
        if self._error is not None:
            raise RemoteProtocolError(self._error)
        buf = self._buf
        max_len = self._max_len
        while True:
            start = self._line_start
            # Search no further than the longest allowed line: a hostile peer
            # gets its error without the parser reading megabytes first.
            nl = buf.find(b"\n", self._scan, start + max_len)
            if nl < 0:
                if len(buf) - start >= max_len:
                    # Even a bare LF next would make the line too long.
                    self._fail(f"reply line longer than max_line_length={max_len} bytes")
                self._scan = len(buf)
                return None
            end = nl + 1
            lines = self._lines
            if not lines:
                # A whole one-line reply: most are byte-for-byte repeats ("250 2.1.0 Ok"),
                # and a Reply is immutable, so the one parsed last time is returned again.
                raw = bytes(buf[start:end])
                cached = _REPLY_CACHE.get(raw)
                if cached is not None:
                    del buf[:end]
                    self._line_start = self._scan = 0
                    return cached
            # The line's text runs up to the LF, minus one CR before it.
            stop = nl - 1 if nl > start and buf[nl - 1] == 0x0D else nl
            # When these three bytes are digits they lie inside the line: a shorter
            # line would put its CR or LF among them.
            code_bytes = buf[start : start + 3]
            if not code_bytes.isdigit() or not 0x32 <= code_bytes[0] <= 0x35:
                self._fail(
                    "expected a three-digit reply code from 200 to 599, "
                    f"got line {_snippet(buf[start:stop])}"
                )
            sep = buf[start + 3 : start + 4] if stop > start + 3 else b""
            if sep not in (b"-", b" ", b""):
                self._fail(
                    "expected '-', ' ' or the end of the line after the reply code, "
                    f"got line {_snippet(buf[start:stop])}"
                )
            code = int(code_bytes)
            text = buf[start + 4 : stop].decode("utf-8", "replace")
            if lines and code != self._code:
                self._fail(
                    f"continuation line has code {code}, expected {self._code} "
                    "as on the reply's first line"
                )
            if sep == b"-":
                if not lines:
                    self._code = code
                lines.append(text)
                if len(lines) >= self._max_lines:
                    # A continuation line promises one more: the reply is already too long.
                    self._fail(f"reply has more than max_lines={self._max_lines} lines")
                self._line_start = self._scan = end
                continue
            if lines:
                lines.append(text)
                reply_lines = tuple(lines)
                self._lines = []
                reply = Reply(code, reply_lines, parse_enhanced(reply_lines[0], code))
            else:
                reply = Reply(code, (text,), parse_enhanced(text, code))
                if end - start <= _REPLY_CACHE_LINE:
                    if len(_REPLY_CACHE) >= _REPLY_CACHE_SIZE:
                        # Bounded: replies that never repeat (queue ids) cannot grow it.
                        _REPLY_CACHE.clear()
                    _REPLY_CACHE[raw] = reply
            del buf[:end]
            self._line_start = self._scan = 0
            return reply

    def _fail(self, message: str) -> NoReturn:
        # Drop the buffers: the connection is unusable and memory must stay bounded.
        self._error = message
        self.clear()
        raise RemoteProtocolError(message)


def _snippet(raw: bytes | bytearray) -> str:
    """A short, safe rendering of a bad line for an error message."""
    if len(raw) > 40:
        return f"{bytes(raw[:40])!r}... ({len(raw)} bytes)"
    return repr(bytes(raw))
