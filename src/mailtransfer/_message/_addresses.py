"""Addresses in headers: strict parsing, and the envelope derived from them.

Strategy: the one parser for header addresses is the standard library's
modern one (:mod:`email.headerregistry`, the RFC 5322 parser behind
``email.policy.default``), never the legacy ``parseaddr``/``getaddresses``
(CVE-2023-27043 makes them pick a different address than a mail reader
would). Every address it finds is then checked again with the strict
RFC 5321 grammar, and a header with any parse defect is refused rather than
guessed at, so the address a reader sees in ``To:`` is the address ``RCPT
TO`` is sent to.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from email.errors import NonASCIILocalPartDefect
from email.header import Header
from email.headerregistry import Address, AddressHeader, BaseHeader
from typing import Any, Union

from mailtransfer.errors import InvalidAddress, InvalidArgument

from ._checks import check_decoded, check_value, parse_field
from ._envelope import mailbox

__all__ = [
    "ADDRESS_HEADERS",
    "AddressLike",
    "addresses_of",
    "coerce_address",
    "coerce_addresses",
    "derive_envelope_addresses",
]

AddressLike = Union[str, Address, tuple[str, str]]  # noqa: UP007 - a runtime alias on 3.10
"""``"a@b"``, ``"Name <a@b>"``, an :class:`email.headerregistry.Address`, or ``(name, addr)``."""

# RFC 5322 sections 3.6.2, 3.6.3 and 3.6.6: the fields that hold mailboxes.
ADDRESS_HEADERS = frozenset(
    {
        "from",
        "sender",
        "reply-to",
        "to",
        "cc",
        "bcc",
        "resent-from",
        "resent-sender",
        "resent-to",
        "resent-cc",
        "resent-bcc",
    }
)
_QUOTED_PAIR = re.compile(r"\\(.)")
# "Display Name <local@domain>" in its simplest form: the name is ASCII words of
# letters and digits with single spaces, the address a plain dot-atom (no "=?",
# quotes or comments). The RFC 5322 parser reads such a string as exactly this
# name and address, without defects, so it need not be run (it costs ~90 us).
_SIMPLE_NAME_ADDR = re.compile(
    r"([A-Za-z0-9]+(?: [A-Za-z0-9]+)*)"
    r" <([A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>"
)


def _checked_address(address: Address, *, what: str) -> Address:
    _checked_spec(address, what=what)
    return address


# The addr-spec of addresses that passed _checked_address, by (display name, user name,
# domain) of exact str values: all the checks depend on (``what`` only names the address
# in errors, and only successes are kept).
_CHECKED: dict[tuple[str, str, str], str] = {}
_CHECKED_LIMIT = 1024


def _checked_spec(address: Address, *, what: str) -> str:
    """Check an address as :func:`_checked_address` does; return its ``addr_spec``."""
    name, user, domain = address.display_name, address.username, address.domain
    exact = (
        type(address) is Address and type(name) is str and type(user) is str and type(domain) is str
    )
    if exact:
        found = _CHECKED.get((name, user, domain))
        if found is not None:
            return found
    check_value(name, what=f"{what} display name")
    check_decoded(name, what=f"{what} display name")
    spec = address.addr_spec
    check_value(spec, what=f"{what} address")
    if not domain:
        raise InvalidAddress(f"{what} address must be local@domain, but it has no domain")
    mailbox(spec)
    if exact:
        if len(_CHECKED) >= _CHECKED_LIMIT:
            _CHECKED.clear()
        _CHECKED[(name, user, domain)] = spec
    return spec


def _from_mailbox(spec: str, display_name: str) -> Address:
    box = mailbox(spec)
    local = box.local_part
    if local.startswith('"'):
        # Address wants the local part unquoted; it quotes it again on output.
        local = _QUOTED_PAIR.sub(r"\1", local[1:-1])
    return Address(display_name=display_name, username=local, domain=box.domain)


# Strings already turned into addresses. Parsing "Name <a@b>" with the email package costs
# about 100 us; the outcome depends on the string alone (``what`` only names it in errors,
# and only successes are kept), and an Address is immutable, so it is shared.
_COERCED: dict[str, Address] = {}
_COERCED_LIMIT = 1024


def coerce_address(value: AddressLike, *, what: str) -> Address:
    """Turn one address-like value into a validated ``Address``.

    Args:
        value: ``"a@b"``, ``"Name <a@b>"``, an ``Address``, or ``(name, addr)``.
        what: the argument name, for error messages (``"to"``).

    Raises:
        HeaderInjection: CR, LF or NUL in the name or address.
        InvalidAddress: not exactly one valid mailbox.
        InvalidArgument: a value of another type.
    """
    item: object = value  # checked at run time whatever the annotation says
    if isinstance(item, Address):
        return _checked_address(item, what=what)
    if isinstance(item, tuple) and len(item) == 2 and all(isinstance(v, str) for v in item):
        name, spec = item
        check_value(name, what=f"{what} display name")
        check_value(spec, what=f"{what} address")
        return _checked_address(_from_mailbox(spec, name), what=what)
    if isinstance(item, str):
        cached = _COERCED.get(item) if type(item) is str else None
        if cached is not None:
            return cached
        check_value(item, what=f"{what} address")
        if "<" not in item and " " not in item and "," not in item:
            address = _from_mailbox(item, "")  # the common case: a bare addr-spec
        else:
            address = _simple_name_addr(item, what=what) or _parsed_address(item, what=what)
        if type(item) is str:
            if len(_COERCED) >= _COERCED_LIMIT:
                _COERCED.clear()
            _COERCED[item] = address
        return address
    raise InvalidArgument(
        f"{what} must be a str, an email.headerregistry.Address or a (name, address) "
        f"tuple, but got {type(item).__name__}"
    )


def _parsed_address(text: str, *, what: str) -> Address:
    """The one mailbox of ``text``, found by the RFC 5322 parser and checked."""
    found = addresses_of(parse_field("To", text, error=InvalidAddress), what=what)
    if len(found) != 1:
        raise InvalidAddress(f"{what} must hold exactly one address, but {len(found)} were found")
    return found[0]


def _simple_name_addr(text: str, *, what: str) -> Address | None:
    """:func:`_parsed_address` for the simplest ``Name <a@b>``; None for anything else.

    Also None when a check fails, so that the parser's path raises its own error.
    """
    match = _SIMPLE_NAME_ADDR.fullmatch(text)
    if match is None:
        return None
    try:
        return _checked_address(_from_mailbox(match[2], match[1]), what=what)
    except InvalidArgument:
        return None


def coerce_addresses(value: AddressLike | Iterable[AddressLike], *, what: str) -> list[Address]:
    """Turn one address-like value, or an iterable of them, into validated addresses.

    A tuple is a sequence of addresses; to pass one ``(name, addr)`` pair,
    put it in a list: ``to=[("Bob", "bob@example.org")]``.
    """
    if isinstance(value, (str, Address)):
        return [coerce_address(value, what=what)]
    try:
        items = list(value)
    except TypeError:
        raise InvalidArgument(
            f"{what} must be an address or an iterable of addresses, but got {type(value).__name__}"
        ) from None
    return [coerce_address(item, what=what) for item in items]


def addresses_of(header: Any, *, what: str) -> tuple[Address, ...]:
    """The validated mailboxes of a parsed address header.

    Args:
        header: a header object made by the modern ``email`` policy.
        what: the header name, for error messages.

    Raises:
        InvalidAddress: the header has a parse defect (CVE-2023-27043-style
            ambiguity), or a mailbox fails the strict RFC 5321 grammar.
    """
    _specs_of(header, what=what)
    addresses: tuple[Address, ...] = header.addresses
    return addresses


def _specs_of(header: Any, *, what: str) -> list[str]:
    """The ``addr_spec`` of each mailbox of :func:`addresses_of`, with the same checks."""
    if not isinstance(header, AddressHeader):
        raise InvalidAddress(f"{what} is not an address header")
    # RFC 6532 allows UTF-8 local parts; every other defect means ambiguity.
    defects = [
        d for d in getattr(header, "defects", ()) if not isinstance(d, NonASCIILocalPartDefect)
    ]
    if defects:
        raise InvalidAddress(
            f"{what} header is not a clean RFC 5322 address list "
            f"({defects[0].__class__.__name__}); refusing to guess which address is meant"
        )
    return [_checked_spec(address, what=what) for address in header.addresses]


def parse_header_value(name: str, value: object) -> BaseHeader:
    """Parse a stored header value (header object, ``str`` or ``Header``) with the modern parser."""
    if isinstance(value, BaseHeader):
        return value
    # For a compat32 Header, the encoded form is what a reader parses: decoding
    # first would let an encoded word smuggle address syntax into the list.
    text = value.encode(linesep="\r\n", maxlinelen=0) if isinstance(value, Header) else str(value)
    header = parse_field(
        name, text, error=InvalidAddress if name.lower() in ADDRESS_HEADERS else InvalidArgument
    )
    assert isinstance(header, BaseHeader)
    return header


def _first_resent_block(items: Sequence[tuple[str, object]]) -> dict[str, list[object]] | None:
    """The topmost ``Resent-*`` block (RFC 5322 section 3.6.6), or None if there is none.

    Each resend prepends a new block, and a block holds each resent field at
    most once, so the topmost block ends where a field name repeats.
    """
    block: dict[str, list[object]] = {}
    for name, value in items:
        key = name.lower()
        if not key.startswith("resent-"):
            continue
        if key in block:
            break
        block[key] = [value]
    if "resent-date" not in block:
        return None
    return block


def derive_envelope_addresses(
    items: Sequence[tuple[str, object]], *, want_sender: bool, want_recipients: bool
) -> tuple[str | None, list[str] | None]:
    """Derive the envelope from header fields, as ``smtplib.send_message`` does, but strictly.

    The sender is ``Sender`` when present, else the single ``From`` mailbox;
    the recipients are ``To``, ``Cc`` and ``Bcc``. When the message carries a
    ``Resent-*`` block (RFC 5322 section 3.6.6: it is being re-sent), the
    topmost block's ``Resent-Sender``/``Resent-From`` and
    ``Resent-To``/``Resent-Cc``/``Resent-Bcc`` are used instead.

    Args:
        items: the message's top-level ``(name, value)`` header pairs, in order.
        want_sender: derive the sender.
        want_recipients: derive the recipients.

    Returns:
        ``(sender, recipients)``, each None when not asked for.

    Raises:
        InvalidAddress: a defective address header, or no usable sender.
        InvalidArgument: more than one ``From``/``Sender`` field, or a
            ``From`` with several mailboxes and no ``Sender``.
    """
    resent = _first_resent_block(items)
    if resent is not None:
        fields = resent
        prefix = "resent-"
    else:
        fields = {}
        for name, value in items:
            key = name.lower()
            if key in ("from", "sender", "to", "cc", "bcc"):
                fields.setdefault(key, []).append(value)
        prefix = ""
    sender: str | None = None
    recipients: list[str] | None = None
    if want_sender:
        sender = _derive_sender(fields, prefix)
    if want_recipients:
        recipients = []
        for key in ("to", "cc", "bcc"):
            name = prefix + key
            for value in fields.get(name, ()):
                header = parse_header_value(name, value)
                recipients.extend(_specs_of(header, what=header.name))
    return sender, recipients


def _derive_sender(fields: dict[str, list[object]], prefix: str) -> str:
    for key in ("sender", "from"):
        name = prefix + key
        values = fields.get(name, [])
        if len(values) > 1:
            raise InvalidArgument(
                f"the message has {len(values)} {name.title()} fields; RFC 5322 allows one"
            )
        if not values:
            continue
        header = parse_header_value(name, values[0])
        found = _specs_of(header, what=header.name)
        if len(found) == 1:
            return found[0]
        if key == "sender" or not found:
            raise InvalidAddress(
                f"{header.name} must hold exactly one mailbox, but {len(found)} were found"
            )
        raise InvalidArgument(
            f"{header.name} holds {len(found)} mailboxes and there is no {prefix.title()}Sender "
            "field (RFC 5322 section 3.6.2); pass sender= explicitly"
        )
    raise InvalidAddress(
        f"cannot derive the envelope sender: the message has no {prefix.title()}From "
        "field; pass sender= or envelope="
    )
