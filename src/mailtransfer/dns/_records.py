"""Typed DNS answers: frozen values, independent of dnspython's classes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["Answer", "MXRecord", "TLSARecord", "TXTRecord"]

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class MXRecord:
    """One MX record.

    Attributes:
        preference: lower is tried first (RFC 5321 §5.1).
        exchange: the host name, lower case, ASCII, without the trailing dot;
            ``""`` for the root (``.``), as in a null MX (RFC 7505).
    """

    preference: int
    exchange: str


@dataclass(frozen=True, slots=True)
class TXTRecord:
    """One TXT record: its character-strings as sent.

    Attributes:
        strings: the record's strings (each at most 255 bytes on the wire).
    """

    strings: tuple[bytes, ...]

    @property
    def text(self) -> str:
        """The strings joined without separator (RFC 7208 §3.3), decoded as UTF-8.

        Bytes that are not UTF-8 become U+FFFD.
        """
        return b"".join(self.strings).decode("utf-8", "replace")


@dataclass(frozen=True, slots=True)
class TLSARecord:
    """One TLSA record (RFC 6698 §2.1).

    Attributes:
        usage: 0 PKIX-TA, 1 PKIX-EE, 2 DANE-TA, 3 DANE-EE.
        selector: 0 the full certificate, 1 its SubjectPublicKeyInfo.
        mtype: 0 exact match, 1 SHA-256, 2 SHA-512.
        data: the certificate association data.
    """

    usage: int
    selector: int
    mtype: int
    data: bytes

    def __str__(self) -> str:
        return f"{self.usage} {self.selector} {self.mtype} {self.data.hex()}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer(Generic[R]):
    """The records of one name and type.

    An empty ``records`` means the name exists but has no record of the type
    (NODATA); a name that does not exist raises
    :class:`~mailtransfer.errors.NXDomain` instead.

    Attributes:
        name: the name asked for (ASCII, lower case, no trailing dot).
        rdtype: the record type (``"MX"``, ``"TXT"``, ...).
        records: the records, in the order the server sent them.
        ttl: the smallest TTL of the answer in seconds (0 for NODATA).
        authenticated: the resolver vouched for the answer with the AD bit
            (DNSSEC-validated), or the resolver assumes so (tests only).
        canonical_name: the name after following CNAMEs (``name`` when there were none).
    """

    name: str
    rdtype: str
    records: tuple[R, ...]
    ttl: int = 0
    authenticated: bool = False
    canonical_name: str = ""

    def __bool__(self) -> bool:
        return bool(self.records)
