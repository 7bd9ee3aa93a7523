"""DKIM key records (RFC 6376 section 3.6.1, RFC 8463): parse and measure the key, no DNS.

Strategy: the tag list is parsed by :func:`~._tags.parse_tag_list`; the public
key is loaded with ``cryptography`` (already a dependency, for signing) only
to learn its type and size, so a record whose key does not load is reported
as unparseable instead of passing on the strength of its syntax.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key

from ._errors import InvalidRecord
from ._tags import parse_tag_list

__all__ = ["DKIMKeyRecord", "dkim_record_name", "parse_dkim_key"]

WEAK_RSA_BITS = 2048
"""RSA keys shorter than this draw a warning (RFC 8301 requires at least 1024; 2048 is usual)."""

_BASE64 = re.compile(r"[A-Za-z0-9+/=]*\Z")


@dataclass(frozen=True, slots=True, kw_only=True)
class DKIMKeyRecord:
    """A parsed DKIM public-key record.

    Attributes:
        key_type: ``"rsa"`` or ``"ed25519"`` (``k=``, default rsa).
        bits: the key size in bits (RSA modulus; 256 for Ed25519); 0 when revoked.
        revoked: ``p=`` is empty: the key was withdrawn (RFC 6376 section 3.6.1).
        testing: ``t=y``: verifiers treat failures as if unsigned.
        hash_algorithms: ``h=`` (empty: any).
        services: ``s=`` (default ``("*",)``).
        notes: ``n=``, for humans.
    """

    key_type: str
    bits: int
    revoked: bool
    testing: bool = False
    hash_algorithms: tuple[str, ...] = ()
    services: tuple[str, ...] = ("*",)
    notes: str = ""

    @property
    def weak(self) -> bool:
        """An RSA key under 2048 bits."""
        return self.key_type == "rsa" and not self.revoked and self.bits < WEAK_RSA_BITS


def dkim_record_name(selector: str, domain: str) -> str:
    """The DNS name of a DKIM key: ``selector._domainkey.domain``."""
    return f"{selector}._domainkey.{domain.rstrip('.')}"


def parse_dkim_key(text: str) -> DKIMKeyRecord:
    """Parse a DKIM key record and measure its key.

    Args:
        text: the TXT record, strings already joined.

    Returns:
        The record, with the key's type and size.

    Raises:
        InvalidRecord: a bad tag list, ``v=`` not first or not ``DKIM1``, no
            ``p=``, an unknown ``k=``, or a key that is not valid base64 or
            does not load as that key type.

    Example:
        >>> parse_dkim_key("v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=")
        DKIMKeyRecord(key_type='ed25519', bits=256, revoked=False, testing=False, hash_algorithms=(), services=('*',), notes='')
    """  # noqa: E501
    tags = parse_tag_list(text, what="DKIM key record")
    names = list(tags)
    if "v" in tags and (names[0] != "v" or tags["v"] != "DKIM1"):
        raise InvalidRecord("DKIM key record: v= must come first and be 'DKIM1'")
    if "p" not in tags:
        raise InvalidRecord("DKIM key record has no p= (public key) tag")
    key_type = tags.get("k", "rsa").lower()
    if key_type not in ("rsa", "ed25519"):
        raise InvalidRecord(f"DKIM key record has an unknown key type k={key_type!r}")
    data = "".join(tags["p"].split())
    common = {
        "key_type": key_type,
        "testing": "y" in _split(tags.get("t", ""), ":"),
        "hash_algorithms": _split(tags.get("h", ""), ":"),
        "services": _split(tags.get("s", "*"), ":") or ("*",),
        "notes": tags.get("n", ""),
    }
    if not data:
        return DKIMKeyRecord(bits=0, revoked=True, **common)  # type: ignore[arg-type]
    if not _BASE64.match(data):
        raise InvalidRecord("DKIM key record: p= is not base64")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRecord("DKIM key record: p= is not valid base64") from None
    return DKIMKeyRecord(bits=_key_bits(key_type, raw), revoked=False, **common)  # type: ignore[arg-type]


def _key_bits(key_type: str, raw: bytes) -> int:
    if key_type == "ed25519":
        # RFC 8463 section 4.2: the bare 32-byte public key.
        if len(raw) != 32:
            raise InvalidRecord(f"DKIM ed25519 key is {len(raw)} bytes; it must be 32")
        return 256
    try:
        key = load_der_public_key(raw)
    except (ValueError, TypeError):
        raise InvalidRecord("DKIM rsa key does not load (expected SubjectPublicKeyInfo)") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise InvalidRecord("DKIM key record says k=rsa but holds another key type")
    return key.key_size


def _split(value: str, sep: str) -> tuple[str, ...]:
    return tuple(part.strip().lower() for part in value.split(sep) if part.strip())
