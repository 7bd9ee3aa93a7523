"""From what the caller hands to ``send()`` to wire-ready bytes and an envelope.

Strategy: one pass over the top-level headers finds what is missing
(``Date``, ``Message-ID``) and derives the envelope; one flatten writes the
bytes with ``Bcc``/``Resent-Bcc`` skipped and the missing fields appended, so
the caller's message is neither copied nor changed. Raw ``bytes`` are taken
as a finished message: only their header section is looked at (and edited
for ``Bcc`` and the missing fields).
"""

from __future__ import annotations

import dataclasses
import email.policy
import math
import re
import secrets
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import Message
from email.parser import Parser
from typing import Any

from mailtransfer.errors import HeaderInjection, InvalidAddress, InvalidArgument
from mailtransfer.protocol._data import is_canonical, normalize_line_endings
from mailtransfer.protocol._grammar import Mailbox

from ._addresses import derive_envelope_addresses, parse_header_value
from ._checks import check_decoded
from ._envelope import Envelope, mailbox, plain_envelope
from ._flatten import flatten

__all__ = ["PreparedMessage", "prepare"]

_BCC = frozenset({"bcc", "resent-bcc"})
_FIELD_NAME = re.compile(rb"[!-9;-~]+")
_BLANK_LINE = re.compile(rb"\n\r?\n")
_BARE_CR = re.compile(rb"\r(?!\n)")
# A well-formed header section (CRLF line endings, no bare CR): fields ``Name: value`` with
# an RFC 5322 ftext name, each followed by continuation lines that start with a space or a
# tab and are not whitespace only; no NUL anywhere.
# Possessive repeats (Python 3.11+): the pieces cannot overlap, so no backtracking is ever
# needed; Python 3.10 gets plain repeats, which match the same language.
if sys.version_info >= (3, 11):
    _HEADER_SECTION = re.compile(
        rb"(?:[!-9;-~]++:[^\r\n\x00]*+\r\n(?:[ \t]++[^ \t\r\n\x00][^\r\n\x00]*+\r\n)*+)*+"
    )
else:  # pragma: no cover - the same pattern without possessive repeats
    _HEADER_SECTION = re.compile(
        rb"(?:[!-9;-~]+:[^\r\n\x00]*\r\n(?:[ \t]+[^ \t\r\n\x00][^\r\n\x00]*\r\n)*)*"
    )
# The rest of a field in a well-formed section, from just after its colon: the first
# line's remainder and the continuation lines.
_FIELD_REST = re.compile(rb"[^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*")
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True, slots=True, kw_only=True)
class PreparedMessage:
    """A message ready for the wire: exact bytes plus the SMTP envelope.

    Made by :func:`prepare`; :func:`downgrade` adapts one to a server without
    8BITMIME or SMTPUTF8. ``repr()`` never shows the message bytes.

    Attributes:
        data: the message as sent, CRLF line endings, before dot-stuffing;
            what a DKIM signer must sign.
        envelope: the envelope, with ``smtputf8`` and ``body`` set to what
            ``data`` needs.
        message_id: the ``Message-ID`` field's value (``"<...>"``), given or
            generated; ``""`` only for raw bytes whose ``Message-ID`` is empty.
        needs_smtputf8: a header or an envelope address is not ASCII (RFC 6531).
        needs_8bit: ``data`` has a byte above 127 (RFC 6152 ``8BITMIME``).
    """

    data: bytes = field(repr=False)
    envelope: Envelope
    message_id: str
    needs_smtputf8: bool
    needs_8bit: bool

    @property
    def size(self) -> int:
        """``len(data)``: the message size in octets, for ``SIZE=`` (RFC 1870)."""
        return len(self.data)

    def __repr__(self) -> str:
        return (
            f"PreparedMessage(size={self.size}, envelope={self.envelope!r}, "
            f"message_id={self.message_id!r}, needs_smtputf8={self.needs_smtputf8}, "
            f"needs_8bit={self.needs_8bit})"
        )


_new_object = object.__new__
_PREPARED_SETTERS = tuple(
    vars(PreparedMessage)[name].__set__
    for name in ("data", "envelope", "message_id", "needs_smtputf8", "needs_8bit")
)

# The last date written, per whole second: bulk sends make many in the same second.
_last_date: tuple[int, str] = (-1, "")


def format_date(now: float | None = None) -> str:
    """An RFC 5322 section 3.3 date in UTC, e.g. ``Mon, 02 Jun 2025 08:00:00 +0000``."""
    global _last_date  # noqa: PLW0603  (one tuple, replaced whole: safe across threads)
    second = math.floor(time.time() if now is None else now)
    last = _last_date
    if last[0] == second:
        return last[1]
    t = time.gmtime(second)
    text = (
        f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"
    )
    _last_date = (second, text)
    return text


def make_message_id(domain: str) -> str:
    """A new ``<time.random@domain>`` Message-ID (RFC 5322 section 3.6.4), unique per call."""
    return f"<{time.time_ns():x}.{secrets.token_hex(8)}@{domain}>"


def _ascii_domain(domain: str, *, what: str) -> str:
    if domain.startswith("["):
        return domain  # an address literal, already ASCII: a valid no-fold-literal
    if type(domain) is str:
        found = _ASCII_DOMAINS.get(domain)
        if found is not None:
            return found
    try:
        ascii_domain = Mailbox("x", domain).ascii_domain()
    except InvalidAddress:
        raise InvalidArgument(f"{what} must be a valid domain name") from None
    if type(domain) is str:
        if len(_ASCII_DOMAINS) >= _ASCII_DOMAINS_LIMIT:
            _ASCII_DOMAINS.clear()
        _ASCII_DOMAINS[domain] = ascii_domain
    return ascii_domain


# Domains already checked and converted by _ascii_domain (exact str keys; successes only).
_ASCII_DOMAINS: dict[str, str] = {}
_ASCII_DOMAINS_LIMIT = 1024


def _envelope_non_ascii(envelope: Envelope) -> bool:
    # An Envelope sets smtputf8 itself when an address is not ASCII: without the
    # flag, every address is ASCII.
    return envelope.smtputf8 and (
        not envelope.sender.isascii() or not all(r.isascii() for r in envelope.recipients)
    )


def _finish(
    data: bytes, envelope: Envelope, message_id: str, headers_ascii: bool
) -> PreparedMessage:
    needs_8bit = not data.isascii()
    needs_smtputf8 = not headers_ascii or _envelope_non_ascii(envelope)
    changes: dict[str, object] = {}
    if needs_smtputf8 and not envelope.smtputf8:
        changes["smtputf8"] = True
    if needs_8bit and envelope.body is None:
        changes["body"] = "8BITMIME"
    elif needs_8bit and envelope.body == "7BIT":
        raise InvalidArgument(
            "envelope body is 7BIT, but the message has 8-bit data; use 8BITMIME or None"
        )
    if changes:
        envelope = dataclasses.replace(envelope, **changes)  # type: ignore[arg-type]
    # PreparedMessage(...) without the frozen __init__ (a setattr call per field): one
    # is made per message sent.
    prepared: PreparedMessage = _new_object(PreparedMessage)
    set_data, set_envelope, set_message_id, set_smtputf8, set_8bit = _PREPARED_SETTERS
    set_data(prepared, data)
    set_envelope(prepared, envelope)
    set_message_id(prepared, message_id)
    set_smtputf8(prepared, needs_smtputf8)
    set_8bit(prepared, needs_8bit)
    return prepared


def prepare(
    message: Message | bytes,
    *,
    envelope: Envelope | None = None,
    sender: str | None = None,
    recipients: Sequence[str] | None = None,
    domain: str | None = None,
) -> PreparedMessage:
    """Turn a message into exact wire bytes and an envelope, checking it for injection.

    For an ``email.message.Message`` (``EmailMessage`` or ``compat32``):

    - ``Date`` and ``Message-ID`` are added when missing (the message object
      itself is not changed);
    - the envelope, when not given, comes from the headers with a strict
      parser: sender = ``Sender`` or ``From``; recipients = ``To`` + ``Cc`` +
      ``Bcc``, or the topmost ``Resent-*`` block's fields when the message is
      being re-sent (RFC 5322 section 3.6.6), as ``smtplib.send_message``
      does; ``sender=`` or ``recipients=`` replace one of the two;
    - ``Bcc`` and ``Resent-Bcc`` are left out of the bytes;
    - every header name and value is checked: CR, LF or NUL in a value, a
      name that is not RFC 5322 ``ftext``, or anything that would serialise
      to more than one field raises, and nothing is ever stripped.

    ``bytes`` are a finished message: they need ``envelope=`` (or ``sender=``
    and ``recipients=``); line endings are made CRLF (except the body of a
    ``BINARYMIME`` message), ``Bcc``/``Resent-Bcc`` fields are removed and
    ``Date``/``Message-ID`` added when missing, and the header section must
    be well-formed.

    Example:
        >>> from mailtransfer.message import build_message
        >>> msg = build_message(sender="a@example.org", to="b@example.net",
        ...                     bcc="c@example.net", text="Hi")
        >>> prepared = prepare(msg)
        >>> prepared.envelope.recipients
        ('b@example.net', 'c@example.net')
        >>> b"c@example.net" in prepared.data
        False

    Args:
        message: the message.
        envelope: the envelope to use as is (flags may be raised to what the
            data needs: ``smtputf8``, ``body="8BITMIME"``).
        sender: the envelope sender (``""`` for the null sender), instead of
            the one in the headers.
        recipients: the envelope recipients, instead of those in the headers.
        domain: the right-hand side of a generated Message-ID; by default the
            ``From`` domain, else the envelope sender's.

    Returns:
        The :class:`PreparedMessage`.

    Raises:
        HeaderInjection: a header that would inject or break fields.
        InvalidAddress: an address fails the strict grammar, or an address
            header does not parse cleanly (CVE-2023-27043-style input).
        InvalidArgument: conflicting or missing arguments, or a message that
            cannot be serialised.
    """
    if envelope is not None and (sender is not None or recipients is not None):
        raise InvalidArgument("pass either envelope= or sender=/recipients=, not both")
    if isinstance(recipients, (str, bytes)):
        raise InvalidArgument("recipients must be a sequence of addresses, not a single str")
    if domain is not None:
        if not isinstance(domain, str):
            raise InvalidArgument(f"domain must be str, but got {type(domain).__name__}")
        domain = _ascii_domain(domain, what="domain")
    if isinstance(message, (bytes, bytearray, memoryview)):
        if envelope is None:
            if sender is None or recipients is None:
                raise InvalidArgument(
                    "a message given as bytes needs envelope= or both sender= and recipients="
                )
            envelope = plain_envelope(sender, recipients)
        return _prepare_bytes(bytes(message), envelope, domain)
    if not isinstance(message, Message):
        raise InvalidArgument(
            f"message must be an email.message.Message or bytes, but got {type(message).__name__}"
        )
    return _prepare_message(message, envelope, sender, recipients, domain)


def _prepare_message(
    message: Message,
    envelope: Envelope | None,
    sender: str | None,
    recipients: Sequence[str] | None,
    domain: str | None,
) -> PreparedMessage:
    items = list(message.raw_items())
    present: dict[str, object] = {}
    utf8 = False
    for name, value in items:
        key = name.lower()
        present.setdefault(key, value)
        # An address that is not ASCII cannot be an RFC 2047 encoded word:
        # such a message is written with UTF-8 headers (RFC 6532).
        if not utf8 and key in _ADDRESS_KEYS and not str(value).isascii():
            utf8 = any(not a.addr_spec.isascii() for a in _addresses(name, value))
    derived: tuple[str | None, list[str] | None] | None = None
    if envelope is None:
        derived = derive_envelope_addresses(
            items, want_sender=sender is None, want_recipients=recipients is None
        )
        derived_sender, derived_recipients = derived
        sender = derived_sender if sender is None else sender
        recipients = derived_recipients if recipients is None else recipients
        assert sender is not None
        assert recipients is not None
        envelope = plain_envelope(sender, recipients)
    extra: list[bytes] = []
    if "date" not in present:
        extra.append(f"Date: {format_date()}\r\n".encode("ascii"))
    if "message-id" in present:
        message_id = str(parse_header_value("Message-ID", present["message-id"])).strip()
    else:
        message_id = make_message_id(domain or _default_domain(present.get("from"), envelope))
        extra.append(f"Message-ID: {message_id}\r\n".encode("ascii"))
    data, headers_ascii = flatten(message, utf8=utf8, skip=_BCC, extra=extra)
    if derived is not None and _exotic(derived):
        _check_read_back(data, items, want_sender=derived[0] is not None)
    return _finish(data, envelope, message_id, headers_ascii)


def _exotic(derived: tuple[str | None, list[str] | None]) -> bool:
    sender, recipients = derived
    return any(
        not address.isascii() or '"' in address for address in (sender or "", *(recipients or ()))
    )


def _check_read_back(data: bytes, items: list[tuple[str, Any]], *, want_sender: bool) -> None:
    """Re-parse the written fields and insist they name the same addresses.

    Run for non-ASCII and quoted addresses, where readers' parsers are most
    likely to disagree with the grammar: the envelope must be what the
    header, as sent, says (THREATS.md S3).
    """
    end = data.find(b"\r\n\r\n")
    head = (data if end < 0 else data[: end + 2]).decode("utf-8", "surrogateescape")
    back = Parser(policy=email.policy.default).parsestr(head + "\r\n", headersonly=True)
    sent = [(name, value) for name, value in items if name.lower() not in _BCC]
    expected = derive_envelope_addresses(sent, want_sender=want_sender, want_recipients=True)
    try:
        found = derive_envelope_addresses(
            list(back.raw_items()), want_sender=want_sender, want_recipients=True
        )
    except InvalidArgument:
        found = (None, None)
    if found != expected:
        raise InvalidAddress(
            "an address header does not read back as the addresses it was built from; "
            "refusing to send to addresses the recipients would not see"
        )


_ADDRESS_KEYS = frozenset({"from", "sender", "reply-to", "to", "cc", "bcc"}) | {
    "resent-from",
    "resent-sender",
    "resent-to",
    "resent-cc",
    "resent-bcc",
}


def _addresses(name: str, value: object) -> tuple[Address, ...]:
    header = parse_header_value(name, value)
    return tuple(getattr(header, "addresses", ()))


def _default_domain(from_value: object, envelope: Envelope) -> str:
    if from_value is not None:
        for address in _addresses("From", from_value):
            if address.domain:
                return _ascii_domain(address.domain, what="the From domain")
    if envelope.sender:
        return _ascii_domain(mailbox(envelope.sender).domain, what="the sender domain")
    raise InvalidArgument(
        "cannot choose a Message-ID domain: the message has no From domain and the "
        "sender is null; pass domain= or set Message-ID"
    )


def _prepare_bytes(data: bytes, envelope: Envelope, domain: str | None) -> PreparedMessage:
    # The header section ends at the first empty line. It is found before
    # line endings are normalised, so that a bare CR cannot turn into the
    # line break that ends the section early and pushes fields into the body.
    if data.startswith((b"\r\n", b"\n")):
        raw_head, body_start = b"", data.index(b"\n") + 1
    else:
        found = _BLANK_LINE.search(data)
        raw_head, body_start = (
            (data, len(data)) if found is None else (data[: found.start() + 1], found.end())
        )
    head = raw_head
    # The common case, checked in one pass: every line is a field or a continuation ending
    # in CRLF, with no bare CR and no NUL, and no value can decode to a line break. Anything
    # else is made canonical here and split field by field below (the exact error for a bad
    # line, and encoded words decoded).
    checked = b"=?" not in head and _HEADER_SECTION.fullmatch(head) is not None
    if not checked:
        head = _canonical_head(head)
        checked = b"=?" not in head and _HEADER_SECTION.fullmatch(head) is not None
    # A BINARYMIME body goes out in BDAT chunks exactly as given. With a clean header
    # section the whole message is checked (a little more to scan): one found canonical
    # is remembered, and the DATA encoder then skips its own line-ending pass.
    body_as_is = envelope.body == "BINARYMIME" or (
        is_canonical(data) if checked and head is raw_head else is_canonical(data, body_start)
    )
    headers_ascii = head.isascii()  # Bcc fields included, as before they are removed
    lowered = b"\r\n" + head.lower()  # see _field_value
    if not checked or b"\r\nbcc:" in lowered or b"\r\nresent-bcc:" in lowered:
        # Fields are split only to remove a Bcc, or to check a section the one pass refused.
        head = b"".join([raw for key, raw in _split_fields(head) if key not in _BCC])
        lowered = b"\r\n" + head.lower()
    extra: list[bytes] = []
    if b"\r\ndate:" not in lowered:
        extra.append(f"Date: {format_date()}\r\n".encode("ascii"))
    found_id = _field_value(head, lowered, b"message-id")
    if found_id is not None:
        message_id = " ".join(found_id.decode("utf-8", "replace").split())
    else:
        if domain is None:
            if not envelope.sender:
                raise InvalidArgument(
                    "cannot choose a Message-ID domain for a null-sender message; "
                    "pass domain= or include a Message-ID field"
                )
            domain = _ascii_domain(mailbox(envelope.sender).domain, what="the sender domain")
        message_id = make_message_id(domain)
        extra.append(f"Message-ID: {message_id}\r\n".encode("ascii"))
    if not extra and body_as_is and head is raw_head and body_start == len(head) + 2:
        # Nothing to change (and the empty line was a CRLF): the very same object, no copy.
        return _finish(data, envelope, message_id, headers_ascii)
    body = data[body_start:]
    if not body_as_is:
        body = normalize_line_endings(body)
    rebuilt = b"".join([head, *extra, b"\r\n", body])
    return _finish(data if rebuilt == data else rebuilt, envelope, message_id, headers_ascii)


def _canonical_head(head: bytes) -> bytes:
    """The header section with CRLF line endings; a bare CR in it raises."""
    bare_cr = _BARE_CR.search(head)
    if bare_cr is not None:
        raise HeaderInjection(
            f"the header section has a bare CR at byte {bare_cr.start()}; a line must end "
            "with CRLF (or LF)"
        )
    head = normalize_line_endings(head)
    if head and not head.endswith(b"\r\n"):
        head += b"\r\n"
    return head


def _field_value(head: bytes, lowered: bytes, name: bytes) -> bytes | None:
    """The raw value of the first field ``name`` (lower case), CRLFs included, or None.

    ``head`` is a well-formed header section and ``lowered`` is
    ``CRLF + head.lower()``. Every line of the section then starts after a
    CRLF, and only a field's first line starts with its name (a continuation
    starts with a space or a tab), so ``CRLF name ":"`` occurs in ``lowered``
    exactly where a field of that name starts. Field names are ASCII:
    ``bytes.lower()`` folds them as ``str.lower()`` would, and changes no length.
    """
    start = lowered.find(b"\r\n" + name + b":")
    if start < 0:
        return None
    # ``lowered`` has two more bytes in front than ``head``.
    found = _FIELD_REST.match(head, start + len(name) + 1)
    assert found is not None  # a well-formed section: every field ends with CRLF
    return found.group()


def _split_fields(head: bytes) -> list[tuple[str, bytes]]:
    """The header section's fields as ``(lower-case name, raw bytes with CRLFs)``."""
    if b"\x00" in head:
        raise HeaderInjection("the header section contains NUL")
    fields: list[tuple[str, bytes]] = []
    lines = head.split(b"\r\n")
    lines.pop()  # the section ends with CRLF: the last element is empty
    for number, line in enumerate(lines, 1):
        if line[:1] in (b" ", b"\t"):
            if not fields or not line.strip(b" \t"):
                raise HeaderInjection(
                    f"line {number} of the header section is a continuation with nothing to "
                    "continue, or only whitespace"
                )
            key, raw = fields[-1]
            fields[-1] = (key, raw + line + b"\r\n")
            continue
        colon = line.find(b":")
        if colon <= 0 or _FIELD_NAME.fullmatch(line, 0, colon) is None:
            raise HeaderInjection(
                f"line {number} of the header section is neither a 'Name: value' field "
                "nor a continuation (RFC 5322 section 2.2)"
            )
        fields.append((line[:colon].decode("ascii").lower(), line + b"\r\n"))
    for key, raw in fields:
        # Without the field's own final CRLF, which is no part of its value.
        value = raw[len(key) + 1 : -2].decode("utf-8", "surrogateescape")
        check_decoded(value, what=f"header {raw[: len(key)].decode('ascii')}")
    return fields
