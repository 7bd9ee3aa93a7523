"""Building a message from keywords: bodies, attachments, inline images, headers.

Strategy: the tree is assembled from ``email.message.MIMEPart`` pieces with
the modern ``email`` policy, so the standard library chooses transfer
encodings and encodes non-ASCII names (RFC 2047 words, RFC 2231 file
names). Every value a caller hands in is checked before the ``email``
package sees it, so a bad one fails with a typed mailtransfer error instead
of a ``ValueError`` or, worse, a silently altered header.

Layout, outermost first, each level only when needed::

    multipart/mixed           when there are attachments
      multipart/alternative   when there are both text and html
        text/plain
        multipart/related     when there are inline images
          text/html
          image/...           Content-ID: <key>, referenced as cid:key
      application/...         the attachments
"""

from __future__ import annotations

import datetime
import email.policy
import email.utils
import mimetypes
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage, Message, MIMEPart
from email.policy import EmailPolicy
from typing import IO, Any, Union

from mailtransfer.errors import InvalidArgument

from ._addresses import (
    ADDRESS_HEADERS,
    AddressLike,
    addresses_of,
    coerce_address,
    coerce_addresses,
)
from ._checks import check_decoded, check_name, check_value
from ._flatten import new_boundary
from ._headers import CachingHeaderRegistry

__all__ = ["POLICY", "Attachment", "AttachmentLike", "build_message"]


def _uncached_header(name: str, value: str) -> BaseHeader:
    """The header object for a value that never repeats (a boundary), past the value cache.

    The cache's admission rule would never keep it either, but would remember its key
    until cleared: measured, 4-5 us more per multipart message built from keywords.
    """
    factory = POLICY.header_factory
    header: BaseHeader = (
        factory[name](name, value) if isinstance(factory, HeaderRegistry) else factory(name, value)
    )
    return header


def _make_policy() -> EmailPolicy[EmailMessage]:
    options: dict[str, Any] = {"linesep": "\r\n", "header_factory": CachingHeaderRegistry()}
    # CVE-2024-6923: Python 3.13 and the security releases of 3.9-3.12 refuse
    # to serialise a header whose folded form contains a newline.
    if hasattr(email.policy.default, "verify_generated_headers"):
        options["verify_generated_headers"] = True
    policy = email.policy.default.clone(**options)
    assert isinstance(policy, EmailPolicy)
    return policy


POLICY: EmailPolicy[EmailMessage] = _make_policy()
"""The policy of messages from :func:`build_message`: ``email.policy.SMTP``
(modern, CRLF), with ``verify_generated_headers`` where Python has it."""

_MIMETYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*")
# RFC 2392: a cid: URL names the Content-ID's addr-spec; we use the key as is.
_CONTENT_ID_KEY = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.@-]+")
_MESSAGE_ID = re.compile(
    r"<[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@(?:[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+|\[[!-Z^-~]*\])>"
)
# Headers build_message sets itself; setting them through headers= would
# duplicate them or break the MIME structure.
_OWN_HEADERS = {
    "from": "sender",
    "to": "to",
    "cc": "cc",
    "bcc": "bcc",
    "reply-to": "reply_to",
    "subject": "subject",
    "date": "date",
    "message-id": "message_id",
}
# Magic numbers of the image types mail readers display inline.
_IMAGE_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file to attach, given by content rather than by path.

    Example:
        >>> Attachment("report.csv", "a,b\\n1,2\\n", "text/csv").mimetype
        'text/csv'

    Attributes:
        filename: the name the recipient sees (non-ASCII is fine: RFC 2231);
            ``""`` for none.
        content: the bytes, or text (sent as UTF-8).
        mimetype: ``"type/subtype"``; ``None`` guesses it from ``filename``
            (``application/octet-stream`` when unknown).

    Raises:
        HeaderInjection: CR, LF or NUL in ``filename``.
        InvalidArgument: a wrong type, or a malformed ``mimetype``.
    """

    filename: str
    content: bytes | str
    mimetype: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.filename, str):
            raise InvalidArgument(
                f"Attachment filename must be str, but got {type(self.filename).__name__}"
            )
        check_value(self.filename, what="Attachment filename")
        if not isinstance(self.content, (bytes, str)):
            raise InvalidArgument(
                f"Attachment content must be bytes or str, but got {type(self.content).__name__}"
            )
        mimetype: object = self.mimetype
        if mimetype is not None and (
            not isinstance(mimetype, str) or _MIMETYPE.fullmatch(mimetype) is None
        ):
            raise InvalidArgument(
                f"Attachment mimetype must look like 'type/subtype', got {self.mimetype!r}"
            )


AttachmentLike = Union[
    Attachment,
    str,
    "os.PathLike[str]",
    tuple[str, bytes],
    tuple[str, bytes, str],
    IO[bytes],
    Message,
]
"""A path, ``(filename, bytes[, mimetype])``, a binary file object, an
:class:`Attachment`, or an ``email.message.Message`` (attached as message/rfc822)."""

_Filler = Callable[[MIMEPart], None]


def _guess_type(filename: str, content: bytes | str) -> str:
    guessed, encoding = mimetypes.guess_type(filename, strict=False) if filename else (None, None)
    if guessed is not None and encoding is None:
        return guessed
    if isinstance(content, bytes):
        for magic, mimetype in _IMAGE_MAGIC:
            if content.startswith(magic):
                return mimetype
    return "application/octet-stream"


def _to_attachment(item: object, *, what: str, name: str = "") -> Attachment | Message:
    """Normalise one attachment-like value; ``name`` is the default file name."""
    if isinstance(item, (Attachment, Message)):
        return item
    if isinstance(item, (str, os.PathLike)):
        path = os.fspath(item)
        if not isinstance(path, str):
            raise InvalidArgument(f"{what} paths must be str or os.PathLike[str], got bytes")
        with open(path, "rb") as file:
            return Attachment(os.path.basename(path), file.read())
    if isinstance(item, tuple) and len(item) in (2, 3):
        return Attachment(*item)
    if isinstance(item, bytes):
        if name:
            return Attachment("", item)
        raise InvalidArgument(
            f"{what} bytes need a file name: pass (filename, bytes) or Attachment(...)"
        )
    read = getattr(item, "read", None)
    if callable(read):
        content = read()
        file_name = getattr(item, "name", "")
        base = os.path.basename(file_name) if isinstance(file_name, str) else ""
        return Attachment(base, content)
    raise InvalidArgument(
        f"{what} items must be a path, (filename, bytes), a binary file, an Attachment "
        f"or a Message, but got {type(item).__name__}"
    )


def _attachment_filler(item: Attachment | Message, *, cid: str | None) -> _Filler:
    disposition = "inline" if cid is not None else "attachment"
    if isinstance(item, Message):

        def fill_message(part: MIMEPart) -> None:
            part.set_content(item, disposition=disposition, cid=cid)

        return fill_message
    mimetype = item.mimetype or _guess_type(item.filename, item.content)
    maintype, subtype = mimetype.split("/", 1)
    filename = item.filename or None
    content = item.content

    def fill(part: MIMEPart) -> None:
        if isinstance(content, str) and maintype == "text":
            part.set_content(
                content, subtype=subtype, disposition=disposition, filename=filename, cid=cid
            )
            return
        data = content.encode("utf-8") if isinstance(content, str) else content
        part.set_content(
            data, maintype, subtype, disposition=disposition, filename=filename, cid=cid
        )

    return fill


def _text_filler(text: object, subtype: str) -> _Filler:
    if not isinstance(text, str):
        kind = "text" if subtype == "plain" else subtype
        raise InvalidArgument(f"{kind} must be str or None, but got {type(text).__name__}")

    def fill(part: MIMEPart) -> None:
        part.set_content(text, subtype=subtype)

    return fill


def _multipart_filler(subtype: str, children: list[_Filler]) -> _Filler:
    def fill(part: MIMEPart) -> None:
        # A short "=_" boundary: it cannot occur in base64 or quoted-printable
        # text, and the Content-Type line stays within 78 characters.
        content_type = f'multipart/{subtype}; boundary="{new_boundary()}"'
        part["Content-Type"] = _uncached_header("Content-Type", content_type)
        for child in children:
            sub = MIMEPart(policy=POLICY)
            child(sub)
            part.attach(sub)

    return fill


def _body_filler(
    text: str | None,
    html: str | None,
    attachments: Iterable[AttachmentLike],
    inline: Mapping[str, AttachmentLike] | Iterable[tuple[str, AttachmentLike]],
) -> _Filler:
    inline_items = list(inline.items() if isinstance(inline, Mapping) else inline)
    related: list[_Filler] = []
    for key, item in inline_items:
        if not isinstance(key, str) or _CONTENT_ID_KEY.fullmatch(key) is None:
            raise InvalidArgument(
                "inline keys must be non-empty ASCII without spaces, '<', '>' or controls "
                "(they become Content-ID: <key>, referenced as cid:key)"
            )
        inline_item = _to_attachment(item, what="inline", name=key)
        related.append(_attachment_filler(inline_item, cid=f"<{key}>"))
    if isinstance(attachments, (str, bytes, os.PathLike, Attachment, Message)):
        raise InvalidArgument("attachments must be an iterable of attachments; wrap one in a list")
    files = [
        _attachment_filler(_to_attachment(item, what="attachments"), cid=None)
        for item in attachments
    ]
    if related and html is None:
        raise InvalidArgument("inline images need html= that refers to them as cid:key")
    alternatives: list[_Filler] = []
    if text is not None:
        alternatives.append(_text_filler(text, "plain"))
    if html is not None:
        html_part = _text_filler(html, "html")
        alternatives.append(
            _multipart_filler("related", [html_part, *related]) if related else html_part
        )
    body: _Filler | None
    if len(alternatives) == 2:
        body = _multipart_filler("alternative", alternatives)
    else:
        body = alternatives[0] if alternatives else None
    if files:
        return _multipart_filler("mixed", ([body] if body else []) + files)
    return body or _text_filler("", "plain")


def _set_addresses(msg: EmailMessage, name: str, value: Any, *, what: str) -> None:
    addresses = coerce_addresses(value, what=what)
    if addresses:
        msg[name] = addresses


def build_message(
    *,
    sender: AddressLike,
    to: AddressLike | Iterable[AddressLike] = (),
    cc: AddressLike | Iterable[AddressLike] = (),
    bcc: AddressLike | Iterable[AddressLike] = (),
    reply_to: AddressLike | Iterable[AddressLike] = (),
    subject: str = "",
    text: str | None = None,
    html: str | None = None,
    attachments: Iterable[AttachmentLike] = (),
    inline: Mapping[str, AttachmentLike] | Iterable[tuple[str, AttachmentLike]] = (),
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    message_id: str | None = None,
    date: datetime.datetime | None = None,
) -> EmailMessage:
    """Build an ``EmailMessage`` ready for :func:`prepare` (and for ``send()``).

    Every value is validated first; nothing is stripped or repaired. Non-ASCII
    display names, subjects, file names and bodies are encoded by the standard
    library (RFC 2047, RFC 2231, 8bit or quoted-printable bodies). ``Bcc`` is
    kept in the message so that :func:`prepare` can put it in the envelope; it
    never reaches the wire. ``Date`` and ``Message-ID`` are added by
    :func:`prepare` when not given here.

    Example:
        >>> msg = build_message(sender="Alice <alice@example.org>", to="bob@example.net",
        ...                     subject="Hi", text="Hello Bob")
        >>> (msg["To"], msg.get_content_type())
        ('bob@example.net', 'text/plain')

    Args:
        sender: the ``From`` mailbox.
        to: one address or an iterable of addresses (same for ``cc``, ``bcc``,
            ``reply_to``). Each is ``"a@b"``, ``"Name <a@b>"``, an
            ``email.headerregistry.Address`` or a ``(name, addr)`` tuple; a
            tuple argument is a sequence of addresses, so wrap a single pair in
            a list.
        cc: carbon-copy recipients.
        bcc: blind recipients: in the envelope, never in the sent bytes.
        reply_to: ``Reply-To`` mailboxes.
        subject: the subject; omitted when empty.
        text: the plain-text body.
        html: the HTML body; with ``text``, the two become multipart/alternative.
        attachments: paths, ``(filename, bytes[, mimetype])`` tuples, binary
            file objects, :class:`Attachment` values, or messages.
        inline: images for the HTML, by Content-ID: ``{"logo": "logo.png"}``
            is shown by ``<img src="cid:logo">``. Values as for
            ``attachments``, plus bare ``bytes``.
        headers: extra header fields, e.g. ``{"List-Unsubscribe": "<...>"}``.
        message_id: the ``Message-ID``, ``"<left@right>"``.
        date: the ``Date``; timezone-aware datetimes keep their offset.

    Returns:
        The message, with the :data:`POLICY` policy.

    Raises:
        HeaderInjection: CR, LF or NUL in any header value, name, address or
            file name, or a header name that is not RFC 5322 ``ftext``.
        InvalidAddress: an address that is not exactly one valid mailbox.
        InvalidArgument: a wrong type, a header that a keyword already sets,
            inline images without ``html``, or a malformed ``message_id``.
        OSError: an attachment path cannot be read.
    """
    msg = EmailMessage(policy=POLICY)
    msg["From"] = coerce_address(sender, what="sender")
    _set_addresses(msg, "To", to, what="to")
    _set_addresses(msg, "Cc", cc, what="cc")
    _set_addresses(msg, "Bcc", bcc, what="bcc")
    _set_addresses(msg, "Reply-To", reply_to, what="reply_to")
    if not isinstance(subject, str):
        raise InvalidArgument(f"subject must be str, but got {type(subject).__name__}")
    if subject:
        _set(msg, "Subject", check_decoded(check_value(subject, what="subject"), what="subject"))
    if date is not None:
        if not isinstance(date, datetime.datetime):
            raise InvalidArgument(f"date must be a datetime, but got {type(date).__name__}")
        msg["Date"] = email.utils.format_datetime(date)
    if message_id is not None:
        if not isinstance(message_id, str):
            raise InvalidArgument(f"message_id must be str, but got {type(message_id).__name__}")
        check_value(message_id, what="message_id")
        if _MESSAGE_ID.fullmatch(message_id) is None:
            raise InvalidArgument("message_id must look like '<left@right>' (RFC 5322 3.6.4)")
        msg["Message-ID"] = message_id
    _add_headers(msg, headers)
    fill = _body_filler(text, html, attachments, inline)
    msg["MIME-Version"] = "1.0"
    fill(msg)
    return msg


def _set(msg: EmailMessage, name: str, value: object) -> None:
    try:
        msg[name] = value
    except Exception as exc:
        raise InvalidArgument(f"header {name} cannot be set: {type(exc).__name__}: {exc}") from None


def _add_headers(
    msg: EmailMessage, headers: Mapping[str, str] | Iterable[tuple[str, str]] | None
) -> None:
    if headers is None:
        return
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    for pair in pairs:
        name, value = pair
        check_name(name)
        key = name.lower()
        if key in _OWN_HEADERS:
            raise InvalidArgument(
                f"headers must not set {name}: use the {_OWN_HEADERS[key]}= argument"
            )
        if key == "mime-version" or key.startswith("content-"):
            raise InvalidArgument(
                f"headers must not set {name}: it comes from the bodies and attachments"
            )
        if not isinstance(value, str):
            raise InvalidArgument(
                f"header {name} value must be str, but got {type(value).__name__}"
            )
        check_decoded(check_value(value, what=f"header {name}"), what=f"header {name}")
        _set(msg, name, value)
        if key in ADDRESS_HEADERS:
            addresses_of((msg.get_all(name) or [None])[-1], what=name)
