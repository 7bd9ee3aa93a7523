"""DKIM keys: loading, signing primitives, generation and the DNS record.

Strategy: a key is parsed once into a :class:`SigningKey`, which holds the
``cryptography`` private key (OpenSSL does the arithmetic), its public half
for self-verification, and the algorithm it implies. Only the two algorithms
RFC 8301 and RFC 8463 leave standing are supported: rsa-sha256 and
ed25519-sha256 (rsa-sha1 is forbidden for signing).
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import os
import warnings
from typing import Literal, Union

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from ._errors import DKIMConfigError, WeakKeyWarning
from ._names import check_selector

__all__ = [
    "Algorithm",
    "KeyLike",
    "SigningKey",
    "dns_record",
    "generate_key",
    "load_key",
    "txt_strings",
    "zone_entry",
]

PrivateKey = Union[rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey]  # noqa: UP007 - runtime alias
PublicKey = Union[rsa.RSAPublicKey, ed25519.Ed25519PublicKey]  # noqa: UP007 - runtime alias
KeyLike = Union[str, "os.PathLike[str]", bytes, rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey]
"""A private key: a PEM file path, PEM bytes (or PEM text), or a ``cryptography`` key object."""

# RFC 8301 section 3.2: verifiers MUST NOT consider keys below 1024 bits
# valid; signers MUST use at least 1024 and SHOULD use at least 2048.
_MIN_RSA_BITS = 1024
_GOOD_RSA_BITS = 2048
_PKCS1_V15 = padding.PKCS1v15()
_PREHASHED_SHA256 = Prehashed(hashes.SHA256())


class Algorithm(str, enum.Enum):
    """A DKIM signing algorithm, the ``a=`` tag."""

    RSA_SHA256 = "rsa-sha256"
    """RSASSA-PKCS1-v1_5 with SHA-256 (RFC 6376 section 3.3.1); every receiver checks it."""
    ED25519_SHA256 = "ed25519-sha256"
    """Ed25519 over the SHA-256 hash of the header data (RFC 8463); sign with RSA too."""


@dataclasses.dataclass(frozen=True, slots=True)
class SigningKey:
    """A parsed private key ready to sign DKIM header hashes.

    Attributes:
        algorithm: the ``a=`` value this key signs with.
        bits: the key size (256 for Ed25519).
    """

    algorithm: Algorithm
    bits: int
    _private: PrivateKey = dataclasses.field(repr=False)
    _public: PublicKey = dataclasses.field(repr=False)

    def sign(self, digest: bytes) -> bytes:
        """Sign the SHA-256 digest of the canonicalised header data."""
        key = self._private
        if isinstance(key, rsa.RSAPrivateKey):
            return key.sign(digest, _PKCS1_V15, _PREHASHED_SHA256)
        # RFC 8463 section 3: Ed25519 signs the SHA-256 hash, not the data.
        return key.sign(digest)

    def verify(self, signature: bytes, digest: bytes) -> bool:
        """Check ``signature`` over ``digest`` with the public half of this key."""
        key = self._public
        try:
            if isinstance(key, rsa.RSAPublicKey):
                key.verify(signature, digest, _PKCS1_V15, _PREHASHED_SHA256)
            else:
                key.verify(signature, digest)
        except InvalidSignature:
            return False
        return True

    def dns_record(self) -> str:
        """The DKIM TXT record (RFC 6376 section 3.6.1) that publishes this key's public half."""
        return dns_record(self._private)


def _read_pem(key: bytes | bytearray | str | os.PathLike[str], what: str) -> bytes:
    if isinstance(key, (bytes, bytearray)):
        return bytes(key)
    if isinstance(key, str) and "-----BEGIN" in key:
        return key.encode("ascii", "replace")
    try:
        with open(key, "rb") as handle:
            return handle.read()
    except OSError as exc:
        # Not naming the path: a key pasted as a str (say a base64 seed) would be echoed.
        raise DKIMConfigError(
            f"{what} must be PEM bytes, PEM text or a readable PEM file path, but the file "
            f"could not be read ({exc.strerror or type(exc).__name__})"
        ) from None


def load_key(key: KeyLike, *, what: str = "private_key") -> SigningKey:
    """Parse a private key once, for signing.

    Args:
        key: a PEM file path (``str`` or path object), PEM bytes or text
            (PKCS#8 or PKCS#1, unencrypted), or a ``cryptography``
            ``RSAPrivateKey`` / ``Ed25519PrivateKey`` (load an encrypted key
            yourself and pass the object).
        what: the argument name, for error messages.

    Returns:
        The parsed key.

    Raises:
        DKIMConfigError: unreadable, unparsable or encrypted PEM, another key
            type, or an RSA key below 1024 bits (RFC 8301).

    Warns:
        WeakKeyWarning: an RSA key below 2048 bits.
    """
    obj: object = key
    if isinstance(obj, (bytes, bytearray, str, os.PathLike)):
        pem = _read_pem(obj, what)
        try:
            obj = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            # The message must not echo the key material.
            raise DKIMConfigError(
                f"{what} could not be parsed as an unencrypted PEM private key"
            ) from None
    if isinstance(obj, ed25519.Ed25519PrivateKey):
        return SigningKey(Algorithm.ED25519_SHA256, 256, obj, obj.public_key())
    if not isinstance(obj, rsa.RSAPrivateKey):
        raise DKIMConfigError(
            f"{what} must be an RSA or Ed25519 private key (RFC 8301, RFC 8463), or a PEM "
            f"path or PEM bytes holding one, but got {type(obj).__name__}"
        )
    bits = obj.key_size
    if bits < _MIN_RSA_BITS:
        raise DKIMConfigError(
            f"{what} must be an RSA key of at least {_MIN_RSA_BITS} bits (RFC 8301), "
            f"but it has {bits}"
        )
    if bits < _GOOD_RSA_BITS:
        warnings.warn(
            f"{what} is a {bits}-bit RSA key; use at least {_GOOD_RSA_BITS} bits (RFC 8301)",
            WeakKeyWarning,
            stacklevel=3,
        )
    return SigningKey(Algorithm.RSA_SHA256, bits, obj, obj.public_key())


def dns_record(private_key: PrivateKey) -> str:
    """The DKIM TXT record publishing the public half of ``private_key``.

    RSA keys are published as a DER SubjectPublicKeyInfo (RFC 6376 section
    3.6.1), Ed25519 keys as the 32 raw public key bytes (RFC 8463 section 4).

    Args:
        private_key: a ``cryptography`` RSA or Ed25519 private key.

    Returns:
        ``"v=DKIM1; k=rsa; p=..."`` or ``"v=DKIM1; k=ed25519; p=..."``.
    """
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        raw = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        kind = "ed25519"
    else:
        raw = private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        kind = "rsa"
    return f"v=DKIM1; k={kind}; p={base64.b64encode(raw).decode('ascii')}"


def generate_key(kind: Literal["rsa", "ed25519"] = "rsa", bits: int = 2048) -> tuple[bytes, str]:
    """Make a new DKIM key pair.

    Args:
        kind: ``"rsa"`` (what every receiver checks) or ``"ed25519"`` (RFC 8463;
            publish it alongside an RSA key, not instead of one).
        bits: the RSA key size, 2048 to 4096 usually; ignored for Ed25519.

    Returns:
        ``(private_pem, dns_txt)``: the private key as unencrypted PKCS#8 PEM
        (keep it secret), and the TXT record to publish at
        ``<selector>._domainkey.<domain>``.

    Raises:
        DKIMConfigError: an unknown ``kind``, or ``bits`` below 2048 for RSA.

    Example:
        >>> pem, txt = generate_key("ed25519")
        >>> txt.startswith("v=DKIM1; k=ed25519; p=")
        True
    """
    key: PrivateKey
    if kind == "ed25519":
        key = ed25519.Ed25519PrivateKey.generate()
    elif kind == "rsa":
        size: object = bits  # checked at run time whatever the annotation says
        if not isinstance(size, int) or size < _GOOD_RSA_BITS:
            raise DKIMConfigError(
                f"bits must be an int of at least {_GOOD_RSA_BITS} for a new RSA key "
                f"(RFC 8301), but got {bits!r}"
            )
        key = rsa.generate_private_key(public_exponent=65537, key_size=size)
    else:
        raise DKIMConfigError(f"kind must be 'rsa' or 'ed25519', but got {kind!r}")
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return pem, dns_record(key)


def txt_strings(record: str, limit: int = 255) -> tuple[str, ...]:
    """Split a TXT record into character-strings a zone file accepts.

    One DNS character-string holds at most 255 bytes (RFC 1035 section
    3.3); a 2048-bit RSA record is longer, so it is published as several
    strings, which receivers concatenate (RFC 6376 section 3.6.2.2).

    Args:
        record: the record, e.g. from :func:`generate_key` (ASCII).
        limit: the most bytes per string.

    Returns:
        The pieces, in order; ``"".join(...)`` gives ``record`` back.

    Raises:
        DKIMConfigError: ``record`` is not ASCII, or ``limit`` is not 1 to 255.
    """
    if not record.isascii():
        raise DKIMConfigError("record must be ASCII, as DKIM key records are")
    if not 1 <= limit <= 255:
        raise DKIMConfigError(f"limit must be 1 to 255 bytes, but got {limit}")
    return tuple(record[i : i + limit] for i in range(0, len(record), limit)) or ("",)


def zone_entry(selector: str, record: str, *, ttl: int | None = None) -> str:
    """A zone-file line (BIND syntax, relative to the domain's origin) for a DKIM key.

    Args:
        selector: the selector the key is published under.
        record: the TXT record, e.g. from :func:`generate_key`.
        ttl: an optional TTL in seconds.

    Returns:
        For example ``s1._domainkey 3600 IN TXT ( "v=DKIM1; k=rsa; p=MIIB..." "...QAB" )``.

    Raises:
        DKIMConfigError: a bad selector or record.
    """
    check_selector(selector)
    if '"' in record or "\\" in record:
        raise DKIMConfigError("record must not hold a double quote or a backslash")
    strings = " ".join(f'"{piece}"' for piece in txt_strings(record))
    middle = "" if ttl is None else f" {int(ttl)}"
    return f"{selector}._domainkey{middle} IN TXT ( {strings} )"
