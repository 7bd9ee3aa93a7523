"""The Signer hook, the DKIM signer and the chain that applies several signers.

Strategy: :class:`DKIMSigner` does all parsing and checking at construction
and keeps the constant part of its tag list as bytes, so signing a message
is: cut the header section, hash the canonical body, build the tag list,
hash the covered header fields, and one OpenSSL signature.

The output is byte-for-byte what dkimpy's ``dkim.sign`` returns for the same
key, message, ``h=`` list, canonicalization and time: the tags in dkimpy's
order (``v a c d i q s t h bh b``, plus ``x`` after ``t`` when an expiry is
set, a tag dkimpy cannot write) and dkimpy's folding. ``l=`` is never
written: a body length limit lets anyone append to a signed message
(THREATS.md S10).
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from typing import Protocol, runtime_checkable

from ._canon import (
    Canonicalization,
    Field,
    body_canon,
    fold,
    header_canon,
    parse_fields,
    select,
    split_message,
    wire_form,
)
from ._errors import DKIMConfigError, DKIMError, DKIMVerificationFailed, UnsignableMessage
from ._keys import Algorithm, KeyLike, SigningKey, load_key
from ._names import check_domain, check_header_names, check_identity, check_selector

__all__ = [
    "DEFAULT_HEADERS",
    "DEFAULT_OVERSIGN",
    "DKIMSigner",
    "Signer",
    "sign_chain",
]

DEFAULT_OVERSIGN: tuple[str, ...] = (
    "from", "to", "cc", "subject", "date", "message-id", "reply-to", "mime-version",
    "content-type", "content-transfer-encoding", "list-id", "list-help", "list-unsubscribe",
    "list-unsubscribe-post", "list-subscribe", "list-post", "list-owner", "list-archive",
)  # fmt: skip
"""Fields signed once more than they occur, so that adding one breaks the signature.

The fields a mail reader shows or acts on (THREATS.md S10; RFC 6376
section 8.15). Oversigning a field that is absent forbids adding it.
"""

DEFAULT_HEADERS: tuple[str, ...] = (
    *DEFAULT_OVERSIGN,
    "sender", "in-reply-to", "references", "content-id", "content-description",
    "resent-date", "resent-from", "resent-sender", "resent-to", "resent-cc",
    "resent-message-id", "feedback-id",
)  # fmt: skip
"""Fields signed when present: RFC 6376 section 5.4.1's list, ``List-Unsubscribe-Post``
(RFC 8058) and ``Feedback-ID`` (which Gmail wants signed), plus :data:`DEFAULT_OVERSIGN`."""

_NAME = b"DKIM-Signature"
# dkimpy folds so that lines, field name included, stay within 72 columns.
_FIRST_LINE = 72 - len(_NAME)
# dkimpy's stand-in for the b= value while hashing: 60 characters, too long
# to share a line with "bh=...;", so b= always starts a line of its own.
_PLACEHOLDER = b"0" * 60
_CRLF = b"\r\n"
_B_VALUE = re.compile(rb"(;[ \t\r\n]*b[ \t\r\n]*=)[A-Za-z0-9+/= \t\r\n]*\Z")
_WSP = re.compile(rb"[ \t\r\n]+")


@runtime_checkable
class Signer(Protocol):
    """Anything that adds header fields (a signature) to an outgoing message.

    A signer gets the exact bytes that will be sent: CRLF line endings, every
    header already added, before dot-stuffing. It returns header lines to put
    on top, each ending with CRLF, or ``b""`` to add nothing. It must not
    change the message; :func:`sign_chain` runs several in turn.
    """

    def __call__(self, message: bytes, envelope: object) -> bytes:
        """Return the header lines to prepend to ``message``.

        Args:
            message: the message as it will be transmitted.
            envelope: the SMTP envelope (sender, recipients) it is sent with.
        """
        ...


def _canon_pair(value: object) -> tuple[Canonicalization, Canonicalization]:
    parts: object = value.split("/") if isinstance(value, str) else value
    try:
        if not isinstance(parts, (tuple, list)) or len(parts) != 2:
            raise ValueError
        return Canonicalization(parts[0]), Canonicalization(parts[1])
    except ValueError:
        raise DKIMConfigError(
            "canonicalization must be a (header, body) pair of 'simple'/'relaxed', "
            f"or 'header/body', but got {value!r}"
        ) from None


class DKIMSigner:
    """Signs messages with one DKIM key (RFC 6376; RFC 8463 for Ed25519).

    A :class:`Signer`: call it with the message bytes, get one
    ``DKIM-Signature`` header line back. The key is parsed once, here.

    Args:
        domain: the signing domain, ``d=``; an ASCII DNS name.
        selector: the key's selector, ``s=``; the public key is published at
            ``<selector>._domainkey.<domain>``.
        private_key: a PEM file path, PEM bytes, or a ``cryptography`` RSA or
            Ed25519 private key. RSA keys must have at least 1024 bits.
        algorithm: ``"rsa-sha256"`` or ``"ed25519-sha256"``; taken from the
            key when omitted.
        canonicalization: ``(header, body)``, each ``"relaxed"`` or ``"simple"``.
        headers: the fields to sign when present; :data:`DEFAULT_HEADERS`
            when omitted. ``from`` must be here or in ``oversign``.
        oversign: the fields to sign once more than they occur, so that none
            can be added without breaking the signature.
        expiry: when set, ``x=`` says the signature expires this long after ``t=``.
        identity: the agent or user identity, ``i=``; ``@<domain>`` when omitted.
        verify: check each new signature with the key's public half before
            returning it (no DNS involved).
        clock: returns the current Unix time, for ``t=``; inject one in tests.

    Raises:
        DKIMConfigError: a bad domain, selector, identity, header name,
            canonicalization, expiry, or key.

    Warns:
        WeakKeyWarning: an RSA key below 2048 bits.

    Example:
        >>> from mailtransfer.dkim import DKIMSigner, generate_key
        >>> pem, txt = generate_key("ed25519")
        >>> signer = DKIMSigner(domain="example.com", selector="s1", private_key=pem)
        >>> signer(b"From: a@example.com\\r\\n\\r\\nHi\\r\\n", None)[:40]
        b'DKIM-Signature: v=1; a=ed25519-sha256; c'
    """

    __slots__ = (
        "_body_canon",
        "_clock",
        "_domain",
        "_expiry",
        "_header_canon",
        "_key",
        "_oversign",
        "_prefix",
        "_selector",
        "_sign_set",
        "_verify",
    )

    def __init__(
        self,
        *,
        domain: str,
        selector: str,
        private_key: KeyLike,
        algorithm: Algorithm | str | None = None,
        canonicalization: tuple[str, str] | str = ("relaxed", "relaxed"),
        headers: Iterable[str] | None = None,
        oversign: Iterable[str] = DEFAULT_OVERSIGN,
        expiry: timedelta | None = None,
        identity: str | None = None,
        verify: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._domain = check_domain(domain)
        self._selector = check_selector(selector)
        if len(selector) + len("._domainkey.") + len(domain) > 253:
            raise DKIMConfigError(
                "selector and domain must fit in a DNS name (253 characters) with "
                f"'._domainkey.' between them, but {selector!r} and {domain!r} do not"
            )
        self._key: SigningKey = load_key(private_key)
        if algorithm is not None:
            try:
                wanted = Algorithm(algorithm)
            except ValueError:
                raise DKIMConfigError(
                    "algorithm must be 'rsa-sha256' or 'ed25519-sha256' (rsa-sha1 is "
                    f"forbidden by RFC 8301), but got {algorithm!r}"
                ) from None
            if wanted is not self._key.algorithm:
                raise DKIMConfigError(
                    f"algorithm is {wanted.value!r}, but private_key is a key for "
                    f"{self._key.algorithm.value!r}"
                )
        self._header_canon, self._body_canon = _canon_pair(canonicalization)
        over = check_header_names(oversign, what="oversign")
        signed = check_header_names(DEFAULT_HEADERS if headers is None else headers, what="headers")
        if "from" not in signed and "from" not in over:
            raise DKIMConfigError("headers must include 'from': RFC 6376 section 5.4 requires it")
        self._sign_set = frozenset(name.encode("ascii") for name in signed + over)
        self._oversign = [name.encode("ascii") for name in over]
        lifetime: object = expiry  # checked at run time whatever the annotation says
        if lifetime is None:
            self._expiry = 0
        elif isinstance(lifetime, timedelta) and lifetime.total_seconds() >= 1:
            self._expiry = int(lifetime.total_seconds())
        else:
            raise DKIMConfigError(
                f"expiry must be a timedelta of at least one second, but got {expiry!r}"
            )
        ident = "@" + domain if identity is None else check_identity(identity, domain)
        self._verify = bool(verify)
        self._clock = clock
        c = f"{self._header_canon.value}/{self._body_canon.value}"
        self._prefix = (
            f"v=1; a={self._key.algorithm.value}; c={c}; d={domain}; i={ident}; "
            f"q=dns/txt; s={selector}; t="
        ).encode("ascii")

    @property
    def domain(self) -> str:
        """The signing domain, ``d=``."""
        return self._domain

    @property
    def selector(self) -> str:
        """The selector, ``s=``."""
        return self._selector

    @property
    def algorithm(self) -> Algorithm:
        """The signing algorithm, ``a=``."""
        return self._key.algorithm

    @property
    def canonicalization(self) -> tuple[Canonicalization, Canonicalization]:
        """The ``(header, body)`` canonicalization, ``c=``."""
        return self._header_canon, self._body_canon

    @property
    def key_bits(self) -> int:
        """The key size in bits (256 for Ed25519)."""
        return self._key.bits

    def dns_record(self) -> str:
        """The TXT record to publish at ``<selector>._domainkey.<domain>`` for this key."""
        return self._key.dns_record()

    def __repr__(self) -> str:
        return (
            f"DKIMSigner(domain={self.domain!r}, selector={self.selector!r}, "
            f"algorithm={self._key.algorithm.value!r}, bits={self._key.bits})"
        )

    def __call__(self, message: bytes, envelope: object = None) -> bytes:
        """Sign ``message``; return its ``DKIM-Signature`` header line (CRLF-terminated).

        Args:
            message: the message; bare CR or LF line endings and a missing
                final CRLF are treated as the transport will send them.
            envelope: ignored; a signer may use it.

        Returns:
            ``b"DKIM-Signature: ...\\r\\n"``, folded, to put on top of the message.

        Raises:
            UnsignableMessage: a malformed header section, or not exactly one From.
            DKIMVerificationFailed: with ``verify=True``, the check failed.
        """
        return self._sign_fields(*split_message(wire_form(message)))

    def _sign_fields(self, fields: Sequence[Field], body: bytes) -> bytes:
        # The work of __call__, for a message already split (the keyring
        # splits it to find the From domain and must not do so twice).
        sign_set = self._sign_set
        lowered = [name.lower() for name, _ in fields]
        names = [name for name in lowered if name in sign_set]
        if names.count(b"from") != 1:
            raise UnsignableMessage(
                "message must have exactly one From field (RFC 5322 section 3.6), "
                f"but it has {names.count(b'from')}"
            )
        names += self._oversign
        body_hash = base64.b64encode(hashlib.sha256(body_canon(body, self._body_canon)).digest())
        now = int(self._clock())
        tags = self._prefix + str(now).encode("ascii")
        if self._expiry:
            tags += b"; x=" + str(now + self._expiry).encode("ascii")
        tags += b"; h=" + b" : ".join(names) + b"; bh=" + body_hash + b"; b="
        # RFC 6376 section 3.7: the signature field itself is hashed last,
        # with an empty b= value and without its final CRLF.
        folded = fold(tags + _PLACEHOLDER, _FIRST_LINE)
        # b= always starts a line of its own ("; bh=" and 44 characters come
        # before it), so the finished header is this text with the signature
        # folded after it: no need to fold everything again.
        if not folded.endswith(b"\r\n b=" + _PLACEHOLDER):  # pragma: no cover
            raise DKIMError("internal error: b= does not start a line of its own")
        head = folded[: -len(_PLACEHOLDER)]
        hc = self._header_canon
        data = b"".join([header_canon(field, hc) for field in select(fields, names, lowered)])
        data += header_canon((_NAME, b" " + head), hc).rstrip()
        signature = self._key.sign(hashlib.sha256(data).digest())
        line = _NAME + b": " + head[:-2] + _fold_b(b"b=" + base64.b64encode(signature))
        if self._verify:
            self._check(line, fields, body_hash)
        return line

    def _check(self, line: bytes, fields: Sequence[Field], body_hash: bytes) -> None:
        # Verify the way a receiver does (RFC 6376 section 6.1.3), from the
        # finished header line rather than from the values used to build it.
        value = line[len(_NAME) + 1 :]
        tags = {}
        for spec in value.replace(_CRLF, b"").split(b";"):
            key, _, tag_value = spec.partition(b"=")
            tags[key.strip()] = tag_value.strip()
        stripped = _B_VALUE.sub(rb"\1", value)
        names = [name.strip() for name in tags.get(b"h", b"").split(b":")]
        hc = self._header_canon
        data = b"".join([header_canon(field, hc) for field in select(fields, names)])
        data += header_canon((_NAME, stripped), hc).rstrip()
        signature = base64.b64decode(_WSP.sub(b"", tags.get(b"b", b"")))
        if (
            tags.get(b"bh") != body_hash
            or stripped == value
            or not self._key.verify(signature, hashlib.sha256(data).digest())
        ):
            raise DKIMVerificationFailed(
                f"the new DKIM signature for d={self.domain} s={self.selector} does not verify "
                "with its own public key; the message was not signed"
            )


def _fold_b(text: bytes) -> bytes:
    # dkimpy cuts the b= line, final CRLF included, into 71-byte pieces.
    # For a few key sizes (e.g. 2096 or 2536 bits) the CRLF, or its LF
    # alone, then lands on a continuation line of its own, a broken header;
    # only there, the CRLF is added after cutting (a deliberate difference).
    with_crlf = text + _CRLF
    pieces = [with_crlf[i : i + 71] for i in range(0, len(with_crlf), 71)]
    if pieces[-1] in (_CRLF, b"\n"):
        pieces = [text[i : i + 71] for i in range(0, len(text), 71)]
        pieces[-1] += _CRLF
    return b"\r\n ".join(pieces)


def _check_added(added: object, signer: object) -> bytes:
    if not isinstance(added, bytes):
        raise DKIMError(f"signer {signer!r} must return bytes, but returned {type(added).__name__}")
    if not added:
        return added
    if not added.endswith(_CRLF) or wire_form(added) != added:
        raise DKIMError(f"signer {signer!r} returned header lines that do not all end with CRLF")
    try:
        parse_fields(added)
    except DKIMError:
        raise DKIMError(f"signer {signer!r} returned bytes that are not header fields") from None
    return added


def sign_chain(message: bytes, envelope: object, signers: Iterable[Signer]) -> bytes:
    """Apply signers in order, each seeing the header lines the previous ones added.

    The message is first put in wire form (CRLF line endings, final CRLF),
    so the signatures cover the bytes that are sent. Signing with RSA and
    then Ed25519, for example, leaves the Ed25519 signature on top; an ARC
    signer can follow the DKIM ones.

    Args:
        message: the message as it will be transmitted, before dot-stuffing.
        envelope: the SMTP envelope, passed to each signer.
        signers: the signers, applied first to last.

    Returns:
        The message with every signer's header lines on top.

    Raises:
        DKIMError: a signer failed, or returned something other than
            CRLF-terminated header fields (it would corrupt the message).
    """
    data = wire_form(message)
    for signer in signers:
        data = _check_added(signer(data, envelope), signer) + data
    return data
