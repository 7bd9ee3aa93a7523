"""Serialising a message to the exact bytes sent: fast, checked, Bcc left out.

Strategy: ``BytesGenerator`` spends most of its time re-folding headers
through the RFC 5322 parse tree (about 10 us per field), even when the field
is short ASCII and the fold changes nothing. :func:`flatten` writes the same
bytes as ``BytesGenerator`` with ``linesep="\\r\\n"`` but takes a shortcut
where the result is known:

- a header object of a standard ``email.headerregistry`` class whose text is
  ASCII and fits on one line is written as ``Name: text``; for those classes
  the text is what the fold would write (for address lists it is the
  canonical rendering of the parsed addresses, the same ones the envelope is
  derived from). Everything else goes through the policy's own fold;
- text bodies are line-ending-normalised with one ``str.replace``;
- multipart bodies are joined from their parts.

Anything unusual (``message/*`` and ``multipart/signed`` parts, a
``compat32`` policy, non-``str`` payloads) is written by a ``BytesGenerator``
subclass instead, with the same header checks. Every header, on either path,
passes the checks of :mod:`._checks`; ``Bcc`` and ``Resent-Bcc`` are skipped
at the top level while writing, so the caller's message is never copied or
changed (except that, like ``BytesGenerator``, a multipart part without a
boundary gets one).
"""

from __future__ import annotations

import email.errors
import functools
import io
import re
import secrets
import sys
from collections.abc import Sequence
from email import headerregistry as _hr
from email.generator import BytesGenerator
from email.header import Header
from email.message import Message
from email.policy import EmailPolicy, Policy
from typing import Any

from mailtransfer.errors import HeaderInjection, InvalidArgument

from ._checks import check_decoded, check_folded, check_name, check_value

__all__ = ["flatten", "new_boundary", "wire_policy"]

_CRLF = b"\r\n"
_UNFOLD = re.compile(r"\r\n(?=[ \t])")
_NEWLINES = re.compile(r"\r\n|\r|\n")
# A CR or LF in a stored raw value is only acceptable as part of a fold.
_RAW_BAD = re.compile(r"\r(?!\n[ \t])|(?<!\r)\n(?![ \t])|\x00")
# Header classes whose str() is exactly what their fold writes when it fits
# on one line (checked against BytesGenerator by the test suite).
_FAST_BASES = frozenset(
    {
        _hr.UnstructuredHeader,
        _hr.UniqueUnstructuredHeader,
        _hr.AddressHeader,
        _hr.UniqueAddressHeader,
        _hr.SingleAddressHeader,
        _hr.UniqueSingleAddressHeader,
        _hr.MIMEVersionHeader,
        _hr.ContentTypeHeader,
        _hr.ContentDispositionHeader,
        _hr.ContentTransferEncodingHeader,
        _hr.MessageIDHeader,
    }
)
# A Date header is fast only when its value parsed: for an invalid date the
# standard library writes an empty field, which the slow path reproduces.
_DATE_BASES = frozenset({_hr.DateHeader, _hr.UniqueDateHeader})


def new_boundary() -> str:
    """A fresh multipart boundary.

    ``=_`` cannot occur in base64 or quoted-printable text, and 96 random
    bits make a clash with 7bit/8bit text practically impossible; the
    flattener still checks.
    """
    return "=_" + secrets.token_hex(12)


@functools.lru_cache(maxsize=64)
def wire_policy(policy: Policy, utf8: bool) -> Policy:
    """``policy`` with CRLF line endings, and ``utf8`` (RFC 6532) when it has the option."""
    if isinstance(policy, EmailPolicy):
        return policy.clone(linesep="\r\n", utf8=utf8)
    return policy.clone(linesep="\r\n")


class _State:
    """What a flatten run learns on the way: whether every header was ASCII."""

    __slots__ = ("headers_ascii",)

    def __init__(self) -> None:
        self.headers_ascii = True


def _fold(name: str, value: Any, policy: Policy, maxlen: int, state: _State) -> bytes:
    """One header field as checked wire bytes."""
    if isinstance(value, str):
        bases = type(value).__bases__
        if type(value) is str:
            found = _RAW_BAD.search(value)
            if found is not None:
                check_value(value[found.start()], what=f"header {name}")
            check_decoded(value, what=f"header {name}")
        else:
            # A header object: its str() is the unfolded, decoded value.
            text = str(value)
            check_value(text, what=f"header {name}")
            check_decoded(text, what=f"header {name}")
            base = bases[0] if bases else None
            fast = base in _FAST_BASES or (
                base in _DATE_BASES and getattr(value, "datetime", None) is not None
            )
            if fast and text.isascii() and len(name) + len(text) + 2 <= maxlen:
                return (f"{name}: {text}\r\n" if text else f"{name}:\r\n").encode("ascii")
    elif isinstance(value, Header):
        check_value(str(value), what=f"header {name}")
        check_decoded(str(value), what=f"header {name}")
    try:
        folded = policy.fold_binary(name, value)
    except UnicodeError:
        raise InvalidArgument(
            f"header {name} holds characters its policy cannot encode; set it through "
            "EmailMessage with email.policy.default, or use ASCII"
        ) from None
    except email.errors.HeaderParseError:
        # compat32's Header refuses values that look like an embedded header.
        raise HeaderInjection(
            f"header {name} value contains a line break that starts a new field"
        ) from None
    except email.errors.MessageError as exc:  # HeaderWriteError on Python 3.13+
        raise HeaderInjection(
            f"header {name} cannot be written safely: {type(exc).__name__}"
        ) from None
    if state.headers_ascii and not folded.isascii():
        state.headers_ascii = False
    if isinstance(value, str) and isinstance(getattr(value, "addresses", None), tuple):
        _check_addresses_survive(name, value, folded)
    return check_folded(name, folded)


def _check_addresses_survive(name: str, value: Any, folded: bytes) -> None:
    """Refuse an address field whose folded form would read back as other addresses.

    Some Python versions drop the quotes around a display name when they fold it
    across lines (CPython gh-80222): ``"Bcc: x@evil.example" <bob@example.net>``
    would go out as a group and an extra address. The folded bytes are parsed back
    and must name the same mailboxes, with the same display names.

    Raises:
        HeaderInjection: they do not.
    """
    text = folded.decode("utf-8", "surrogateescape").partition(":")[2]
    back = _hr.HeaderRegistry()(name, _UNFOLD.sub("", text).strip())
    if _mailboxes(back) != _mailboxes(value):
        raise HeaderInjection(
            f"header {name} would not read back as the same addresses once folded onto"
            " several lines (a long display name with quotes, colons, commas or @ signs);"
            " shorten the display name"
        )


def _mailboxes(header: Any) -> list[tuple[str, str]]:
    # Whitespace aside: folding may split an encoded word, and Python reads the two
    # halves of a display name back with a space between them.
    return [
        (address.addr_spec, "".join(address.display_name.split()))
        for address in getattr(header, "addresses", ())
    ]


def _headers(
    part: Message, policy: Policy, maxlen: int, skip: frozenset[str], state: _State
) -> list[bytes]:
    lines = []
    for name, value in part.raw_items():
        if skip and name.lower() in skip:
            continue
        check_name(name)
        lines.append(_fold(name, value, policy, maxlen, state))
    return lines


def _lines(text: str) -> bytes:
    """Text with every line ending made CRLF, as ``Generator._write_lines`` does."""
    text = _NEWLINES.sub("\r\n", text) if "\r" in text else text.replace("\n", "\r\n")
    try:
        return text.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:
        raise InvalidArgument(
            "a part holds non-ASCII text without a transfer encoding; "
            "set it with set_content() so that it is encoded"
        ) from None


def _check_boundary(boundary: str, children: list[bytes]) -> None:
    marker = b"--" + boundary.encode("ascii", "surrogateescape")
    for child in children:
        if marker in child:
            line = re.compile(rb"(?:^|\n)" + re.escape(marker) + rb"(?:--)?[ \t]*\r?(?:\n|$)")
            if line.search(child):
                raise InvalidArgument(
                    "a multipart boundary occurs as a line inside one of its parts; "
                    "the message would be cut there (RFC 2046 section 5.1.1)"
                )


def _boundary(part: Message) -> str:
    header = part.get("content-type")
    params = getattr(header, "params", None)
    if params is not None:
        # A ContentTypeHeader has its parameters parsed already (RFC 2231
        # decoded); get_boundary() would parse the field again.
        found = params.get("boundary")
        boundary = None if found is None else str(found).rstrip()
    else:
        boundary = part.get_boundary()
    if not boundary:  # as BytesGenerator: a missing or empty boundary gets a new one
        boundary = new_boundary()
        part.set_boundary(boundary)
    return boundary


def _render(
    part: Message,
    *,
    policy: Policy,
    maxlen: int,
    state: _State,
    skip: frozenset[str] = frozenset(),
    extra: Sequence[bytes] = (),
) -> bytes:
    ctype = part.get_content_type()
    # The raw payload, as BytesGenerator reads it (get_payload() decodes 8-bit text).
    payload = part._payload  # type: ignore[attr-defined]
    if ctype.startswith("multipart/"):
        if ctype == "multipart/signed" or not isinstance(payload, list):
            return _generate(part, policy, state, skip, extra)
        children = [_render(child, policy=policy, maxlen=maxlen, state=state) for child in payload]
        boundary = _boundary(part)
        _check_boundary(boundary, children)
        delimiter = b"--" + boundary.encode("ascii", "surrogateescape")
        chunks: list[bytes] = []
        if part.preamble is not None:
            chunks += (_lines(part.preamble), _CRLF)
        chunks += (delimiter, _CRLF)
        for index, child in enumerate(children):
            if index:
                chunks += (_CRLF, delimiter, _CRLF)
            chunks.append(child)
        chunks += (_CRLF, delimiter, b"--", _CRLF)
        if part.epilogue is not None:
            chunks.append(_lines(part.epilogue))
        body = b"".join(chunks)
    elif ctype.startswith("message/"):
        return _generate(part, policy, state, skip, extra)
    elif payload is None:
        body = b""
    elif isinstance(payload, str):
        body = _lines(payload)
    else:
        return _generate(part, policy, state, skip, extra)
    head = _headers(part, policy, maxlen, skip, state)
    head.extend(extra)
    head += (_CRLF, body)
    return b"".join(head)


class _CheckedGenerator(BytesGenerator):
    """``BytesGenerator`` with mailtransfer's header checks, top-level skips and additions."""

    state = _State()
    skip: frozenset[str] = frozenset()
    extra: Sequence[bytes] = ()

    def clone(self, fp: Any) -> _CheckedGenerator:
        # Sub-parts: same checks and state, but Bcc skipping and extra fields
        # are for the top level only.
        twin = super().clone(fp)
        assert isinstance(twin, _CheckedGenerator)
        twin.state = self.state
        return twin

    def _write_headers(self, msg: Message) -> None:
        policy = self.policy
        assert policy is not None
        maxlen = getattr(policy, "max_line_length", None) or sys.maxsize
        out = self._fp  # type: ignore[attr-defined]
        for line in _headers(msg, policy, maxlen, self.skip, self.state):
            out.write(line)
        for line in self.extra:
            out.write(line)
        out.write(_CRLF)


def _generate(
    part: Message, policy: Policy, state: _State, skip: frozenset[str], extra: Sequence[bytes]
) -> bytes:
    buffer = io.BytesIO()
    generator = _CheckedGenerator(buffer, mangle_from_=False, policy=policy)
    generator.state = state
    generator.skip = skip
    generator.extra = extra
    try:
        generator.flatten(part, linesep="\r\n")
    except email.errors.HeaderParseError:
        raise HeaderInjection(
            "a header value contains a line break that starts a new field"
        ) from None
    return buffer.getvalue()


def flatten(
    msg: Message, *, utf8: bool, skip: frozenset[str], extra: Sequence[bytes] = ()
) -> tuple[bytes, bool]:
    """Serialise ``msg`` to wire bytes (CRLF), checking every header.

    Args:
        msg: the message; not copied, and not changed except that a multipart
            part without a boundary gets one (as with ``BytesGenerator``).
        utf8: write non-ASCII header text as UTF-8 (RFC 6532) rather than
            RFC 2047 encoded words; needed when an address is not ASCII.
        skip: lower-case names of top-level fields to leave out (Bcc).
        extra: complete top-level fields to add after the others.

    Returns:
        ``(data, headers_ascii)``: the bytes, and whether every header field
        (of every part) was ASCII.

    Raises:
        HeaderInjection: a header name or value that would not serialise to
            exactly one field.
        InvalidArgument: a header or body the policy cannot encode, or a
            boundary that occurs inside its own parts.
    """
    policy = wire_policy(msg.policy, utf8)
    state = _State()
    if isinstance(policy, EmailPolicy) and policy.cte_type == "8bit" and not policy.mangle_from_:
        maxlen = policy.max_line_length or sys.maxsize
        data = _render(msg, policy=policy, maxlen=maxlen, state=state, skip=skip, extra=extra)
    else:
        data = _generate(msg, policy, state, skip, extra)
    return data, state.headers_ascii
