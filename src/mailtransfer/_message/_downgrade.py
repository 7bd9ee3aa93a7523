"""Adapting a prepared message to a server without 8BITMIME or SMTPUTF8.

Strategy: nothing is done when the server has what the message needs (the
common case costs two attribute reads). Otherwise the bytes are parsed back
with the ``email`` package and only what must change is changed:

- no 8BITMIME (RFC 6152): each leaf part holding 8-bit bytes is re-encoded,
  text as quoted-printable and everything else as base64 (RFC 2045 section
  6), and containers labelled ``8bit``/``binary`` become ``7bit``;
- no SMTPUTF8 (RFC 6531): domains become IDNA A-labels in the envelope and
  in address headers, display names and unstructured text become RFC 2047
  encoded words, MIME parameters RFC 2231; a non-ASCII local part, or
  non-ASCII in a field with no ASCII encoding (``Message-ID``, ``Received``,
  ``References``...), raises :class:`~mailtransfer.errors.SMTPUTF8Required`.

Fields that need no change are written back exactly as they were.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import email.policy
import re
from email import headerregistry as _hr
from email.message import Message
from email.parser import BytesParser
from email.policy import EmailPolicy
from typing import Any

from mailtransfer.errors import ExtensionNotSupported, InvalidAddress, SMTPUTF8Required

from ._addresses import ADDRESS_HEADERS, addresses_of
from ._checks import parse_field
from ._envelope import Envelope, mailbox
from ._flatten import flatten
from ._prepare import PreparedMessage

__all__ = ["downgrade"]

_PARSE_POLICY: EmailPolicy[Any] = email.policy.default.clone(linesep="\r\n", refold_source="none")
_ASCII_POLICY = _PARSE_POLICY.clone(utf8=False)
_FOLD = re.compile(r"\r?\n(?=[ \t])")
# Unstructured fields whose text may be written as RFC 2047 encoded words
# (RFC 2047 section 5 (1)); other fields have syntax that encoded words break.
_ENCODABLE = frozenset({"subject", "comments", "keywords", "content-description"})
_PARAMETERIZED = (_hr.ContentTypeHeader, _hr.ContentDispositionHeader)


def downgrade(prepared: PreparedMessage, *, eightbitmime: bool, smtputf8: bool) -> PreparedMessage:
    """Make a prepared message sendable to a server that lacks 8BITMIME or SMTPUTF8.

    Call it once the server's EHLO reply is known and before ``MAIL FROM``;
    it raises before any byte of the transaction is sent. When the server
    has what the message needs, ``prepared`` comes back unchanged (or with
    only the envelope flags it does not need cleared). A DKIM signature must
    be computed on the result, since re-encoding changes the bytes.

    Example:
        >>> from mailtransfer.message import build_message, prepare
        >>> p = prepare(build_message(sender="a@example.org", to="b@bücher.example",
        ...                           text="Grüße"))
        >>> d = downgrade(p, eightbitmime=False, smtputf8=False)
        >>> d.envelope.recipients, d.needs_8bit, d.needs_smtputf8
        (('b@xn--bcher-kva.example',), False, False)

    Args:
        prepared: the result of :func:`prepare`.
        eightbitmime: the server offers ``8BITMIME``.
        smtputf8: the server offers ``SMTPUTF8``.

    Returns:
        A :class:`PreparedMessage` the server can take.

    Raises:
        SMTPUTF8Required: without SMTPUTF8, an address has a non-ASCII local
            part, or a field holds non-ASCII text that has no ASCII form.
        ExtensionNotSupported: without 8BITMIME, 8-bit data that cannot be
            re-encoded (e.g. in a multipart preamble).
    """
    envelope = prepared.envelope
    to_ascii = prepared.needs_smtputf8 and not smtputf8
    to_7bit = prepared.needs_8bit and not eightbitmime
    if not to_ascii and not to_7bit:
        changes: dict[str, Any] = {}
        if envelope.smtputf8 and not smtputf8:
            changes["smtputf8"] = False
        if envelope.body in ("8BITMIME", "BINARYMIME") and not eightbitmime:
            changes["body"] = None
        if not changes:
            return prepared
        return dataclasses.replace(prepared, envelope=dataclasses.replace(envelope, **changes))
    message = BytesParser(policy=_PARSE_POLICY).parsebytes(prepared.data)
    if to_ascii:
        envelope = _ascii_envelope(envelope)
        for part in message.walk():
            _ascii_headers(part)
    if to_7bit:
        _seven_bit(message)
    data, headers_ascii = flatten(message, utf8=not to_ascii, skip=frozenset())
    if not eightbitmime and not _body_ascii(data, smtputf8=smtputf8):
        raise ExtensionNotSupported(
            "the message has 8-bit data that cannot be re-encoded, and the server does not "
            "offer 8BITMIME (RFC 6152)"
        )
    needs_8bit = not data.isascii()
    needs_smtputf8 = not headers_ascii or not (
        envelope.sender.isascii() and all(r.isascii() for r in envelope.recipients)
    )
    body = envelope.body
    if not needs_8bit and body in ("8BITMIME", "BINARYMIME"):
        body = None
    envelope = dataclasses.replace(envelope, smtputf8=needs_smtputf8 and smtputf8, body=body)
    return PreparedMessage(
        data=data,
        envelope=envelope,
        message_id=prepared.message_id,
        needs_smtputf8=needs_smtputf8,
        needs_8bit=needs_8bit,
    )


def _body_ascii(data: bytes, *, smtputf8: bool) -> bool:
    if not smtputf8:
        return data.isascii()
    # With SMTPUTF8, UTF-8 header fields are fine; the body must be 7-bit.
    end = data.find(b"\r\n\r\n")
    return end < 0 or data[end:].isascii()


def _ascii_address(address: str, *, what: str) -> str:
    if address.isascii():
        return address
    try:
        return mailbox(address).to_ascii()
    except InvalidAddress:
        raise SMTPUTF8Required(
            f"the {what} has a non-ASCII local part, which only SMTPUTF8 (RFC 6531) can "
            "carry, and the server does not offer it"
        ) from None


def _ascii_envelope(envelope: Envelope) -> Envelope:
    return dataclasses.replace(
        envelope,
        sender=_ascii_address(envelope.sender, what="envelope sender"),
        recipients=tuple(_ascii_address(r, what="envelope recipient") for r in envelope.recipients),
        smtputf8=False,
    )


def _ascii_headers(part: Message) -> None:
    items = list(part.raw_items())
    if all(str(value).isascii() for _, value in items):
        return
    for name in {name for name, _ in items}:
        del part[name]
    for name, value in items:
        part.set_raw(name, value if str(value).isascii() else _ascii_field(name, str(value)))


def _ascii_field(name: str, raw: str) -> Any:
    """A header object that folds to ASCII, for a raw field value that is not ASCII."""
    try:
        text = raw.encode("ascii", "surrogateescape").decode("utf-8")
    except UnicodeError:
        raise SMTPUTF8Required(
            f"header {name} has 8-bit bytes that are not UTF-8, so it has no ASCII form"
        ) from None
    text = _FOLD.sub("", text).lstrip(" \t")
    key = name.lower()
    header = parse_field(name, text)
    if key in ADDRESS_HEADERS:
        groups = []
        addresses_of(header, what=name)  # strict: refuse ambiguous lists here too
        for group in header.groups:
            converted = [
                _hr.Address(
                    display_name=a.display_name,
                    addr_spec=_ascii_address(a.addr_spec, what=f"{name} address"),
                )
                for a in group.addresses
            ]
            groups.append(_hr.Group(group.display_name, converted))
        return _ASCII_POLICY.header_factory(
            name, [g if g.display_name is not None else g.addresses[0] for g in groups]
        )
    if key in _ENCODABLE or key.startswith("x-") or isinstance(header, _PARAMETERIZED):
        return header
    raise SMTPUTF8Required(
        f"header {name} holds non-ASCII text and has no ASCII encoding; the server does not "
        "offer SMTPUTF8 (RFC 6531)"
    )


def _seven_bit(message: Message) -> None:
    for part in message.walk():
        cte = str(part.get("content-transfer-encoding", "7bit")).strip().lower()
        if part.is_multipart():
            if cte in ("8bit", "binary"):
                part.replace_header("Content-Transfer-Encoding", "7bit")
            continue
        payload = part._payload  # type: ignore[attr-defined]
        if not isinstance(payload, str) or payload.isascii():
            continue
        if cte not in ("7bit", "8bit", "binary"):
            raise ExtensionNotSupported(
                f"a part declares Content-Transfer-Encoding {cte} but holds 8-bit data"
            )
        raw = payload.encode("ascii", "surrogateescape")
        if part.get_content_maintype() == "text":
            encoded = binascii.b2a_qp(raw, istext=True).decode("ascii")
            new_cte = "quoted-printable"
        else:
            encoded = base64.encodebytes(raw).decode("ascii")
            new_cte = "base64"
        part.set_payload(encoded)
        if "Content-Transfer-Encoding" in part:
            part.replace_header("Content-Transfer-Encoding", new_cte)
        else:
            part["Content-Transfer-Encoding"] = new_cte
