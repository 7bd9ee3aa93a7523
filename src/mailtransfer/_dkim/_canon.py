"""Message parsing, canonicalisation and folding for DKIM (RFC 6376 sections 3.4 and 3.5).

Strategy: the message reaching a signer is first made exactly what goes on
the wire (:func:`wire_form`: CRLF line endings, a final CRLF), so every
function below may assume CRLF-only input. The header section is cut into
``(name, raw value)`` pairs once; canonicalisation then works on just the
fields a signature covers, and on the body with C-speed ``bytes`` methods,
falling back to a regular expression only when there is whitespace to fix.

Where dkimpy and the RFC differ in something cosmetic, this module does what
dkimpy does, because dkimpy's output is the reference (each case is noted).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Sequence

from mailtransfer.protocol._data import normalize_line_endings

from ._errors import UnsignableMessage

__all__ = [
    "Canonicalization",
    "Field",
    "body_canon",
    "fold",
    "header_canon",
    "parse_fields",
    "select",
    "split_message",
    "wire_form",
]

_CRLF = b"\r\n"
Field = tuple[bytes, bytes]
"""A header field: its name and its raw value (after the colon, folding and final CRLF kept)."""

# RFC 5322 section 2.2: field-name = 1*ftext (printable ASCII but ":"); the
# value runs to the end of the line plus every continuation line (one that
# starts with WSP, section 2.2.3).
_FIELD = re.compile(rb"([\x21-\x39\x3b-\x7e]+):([^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*)")
# A whole header block of such fields; checked first, so findall() cannot skip
# a bad line. Linear: a field line never starts with WSP, a continuation does.
_HEADER_BLOCK = re.compile(rb"(?:[\x21-\x39\x3b-\x7e]+:[^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*)*")
# RFC 6376 section 3.4.4 (relaxed body), step "reduce all sequences of WSP
# within a line to a single SP": only runs that hold a tab or are longer than
# one space change, so single spaces are left alone instead of rewritten.
_WSP_RUN = re.compile(rb"\t[\t ]*| [\t ]+")
# Section 3.4.4, step "ignore all whitespace at the end of lines".
_TRAILING_WSP = re.compile(rb"[\t ]+(?=\r\n)")


class Canonicalization(str, enum.Enum):
    """A DKIM canonicalization algorithm (RFC 6376 section 3.4), for headers or body."""

    SIMPLE = "simple"
    """Tolerates almost no change in transit."""
    RELAXED = "relaxed"
    """Tolerates re-folding and whitespace changes; the usual choice for both parts."""


def wire_form(message: bytes | bytearray | memoryview) -> bytes:
    """The exact bytes the transport will send for ``message`` (before dot-stuffing).

    Line endings become CRLF and a missing final CRLF is added, as
    :func:`mailtransfer.protocol.encode_data` does, so a signature covers
    the transmitted bytes (THREATS.md S10).
    """
    data = normalize_line_endings(message)
    return data if data.endswith(_CRLF) else data + _CRLF


def parse_fields(head: bytes) -> list[Field]:
    """Cut a header block (each line ending CRLF) into fields.

    Raises:
        UnsignableMessage: a line is neither ``name:`` nor a continuation line.
            dkimpy skips an mbox ``From `` line here; such a line is not mail
            that can be sent, so it is refused instead.
    """
    # Two passes in C (check, then extract) beat one match() call per field.
    good = _HEADER_BLOCK.match(head)
    assert good is not None  # the pattern matches the empty string
    if good.end() != len(head):
        line = head.count(_CRLF, 0, good.end()) + 1
        raise UnsignableMessage(
            f"header line {line} is not 'name: value' (a printable ASCII name without "
            "spaces, then ':') nor a continuation line starting with a space or tab"
        )
    fields: list[Field] = _FIELD.findall(head)
    return fields


def split_message(data: bytes) -> tuple[list[Field], bytes]:
    """Split a message in wire form into its header fields and its body.

    The body starts after the first empty line; a message without one has an
    empty body (RFC 5322 section 2.1).
    """
    if data.startswith(_CRLF):
        return [], data[2:]
    cut = data.find(b"\r\n\r\n")
    if cut < 0:
        return parse_fields(data), b""
    return parse_fields(data[: cut + 2]), data[cut + 4 :]


def _strip_trailing_lines(body: bytes) -> bytes:
    # Section 3.4.3: empty lines at the end are ignored; a body that does not
    # end with CRLF gets one. rstrip() is exact when what it removed is CRLF
    # pairs only; otherwise (a CR or LF outside a pair) count pairs slowly.
    if body.endswith(_CRLF) and not body.endswith(b"\r\n\r\n"):
        return body  # the common case: nothing to strip, nothing to copy
    stripped = body.rstrip(b"\r\n")
    tail = len(body) - len(stripped)
    if tail == 0:
        return body + _CRLF
    if tail % 2 == 0 and body.endswith(_CRLF * (tail // 2)):
        return body[: len(stripped) + 2]
    end = len(body)
    while body.endswith(_CRLF, 0, end):
        end -= 2
    return body[: end + 2]


def body_canon(body: bytes, algorithm: Canonicalization) -> bytes:
    """Canonicalise a body (RFC 6376 sections 3.4.3 and 3.4.4).

    Args:
        body: the body, CRLF line endings.
        algorithm: simple or relaxed.

    Returns:
        The bytes whose hash goes in ``bh=``. An empty body is ``CRLF`` in
        simple and empty in relaxed (section 3.4.3 and erratum 3920).
    """
    if algorithm is Canonicalization.SIMPLE:
        return _strip_trailing_lines(body)
    # Three substring scans rule out the regular expressions for most bodies.
    if b"\t" in body or b"  " in body or b" \r\n" in body:
        body = _WSP_RUN.sub(b" ", _TRAILING_WSP.sub(b"", body))
    body = _strip_trailing_lines(body)
    return b"" if body == _CRLF else body


def _relaxed_value(value: bytes) -> bytes:
    # Section 3.4.2: unfold, reduce WSP runs to one SP, strip at both ends.
    # bytes.strip() also strips VT and FF, where the RFC strips only WSP;
    # dkimpy does the same, and its output is the reference here.
    value = value.replace(_CRLF, b"")
    if b"\t" in value or b"  " in value:
        value = _WSP_RUN.sub(b" ", value)
    return value.strip()


def header_canon(field: Field, algorithm: Canonicalization) -> bytes:
    """One canonicalised header field, ``name:value CRLF`` (RFC 6376 sections 3.4.1, 3.4.2)."""
    name, value = field
    if algorithm is Canonicalization.SIMPLE:
        return name + b":" + value
    return name.lower() + b":" + _relaxed_value(value) + _CRLF


def select(
    fields: Sequence[Field], names: Iterable[bytes], lowered: Sequence[bytes] | None = None
) -> list[Field]:
    """The fields a signature covers, in ``h=`` order (RFC 6376 section 5.4.2).

    Each name takes the bottom-most instance of that field not taken yet; a
    name with no instance left contributes nothing (the "nonexistent header
    field" of section 5.4, which is what makes oversigning work).

    Args:
        fields: the message's header fields.
        names: the ``h=`` names, lower-case.
        lowered: the field names already lower-cased, if at hand.
    """
    instances: dict[bytes, list[int]] = {}
    if lowered is None:
        lowered = [name.lower() for name, _ in fields]
    for index, name in enumerate(lowered):
        instances.setdefault(name, []).append(index)
    chosen: list[Field] = []
    for name in names:
        left = instances.get(name)
        if left:
            chosen.append(fields[left.pop()])
    return chosen


def fold(value: bytes, first: int) -> bytes:
    """Fold a DKIM-Signature tag list the way dkimpy does.

    Lines are cut at the last space that keeps them within ``first`` bytes
    (the first line) or 71 bytes (the others); the space becomes CRLF + SP.
    A run without spaces (the ``b=`` value) is cut at the width. A final
    CRLF in ``value`` counts towards the last line's width, as in dkimpy.

    Args:
        value: ``tag=value; ...``, with no CRLF except possibly a final one.
        first: room on the first line, after the field name.

    Returns:
        The folded value.
    """
    if len(value) <= first or (value.endswith(_CRLF) and len(value) <= first + 2):
        return value
    lines: list[bytes] = []
    width, rest = first, value
    while len(rest) > width:
        cut = rest.rfind(b" ", 0, width)
        if cut < 0:
            lines.append(rest[:width])
            rest = rest[width:]
        else:
            lines.append(rest[:cut])
            rest = rest[cut + 1 :]
        width = 71
    lines.append(rest)
    return b"\r\n ".join(lines)
