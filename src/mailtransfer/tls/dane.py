"""DANE for SMTP (RFC 7672): match a server's certificate chain against its TLSA records.

Strategy: TLSA records are trusted only when DNSSEC vouched for them (the
resolver's AD bit); the drivers decide that. Here, pure functions say whether
a certificate chain (DER, leaf first) matches a record, and :class:`DANE` is the
TLS policy of a host with usable records: STARTTLS is required, the handshake
itself does not verify (the TLSA records, not the CA system, authenticate the
server), and :meth:`DANE.verify_chain` runs right after the handshake, before
any mail is sent.

Usable records (RFC 7672 §3.1): DANE-TA(2) and DANE-EE(3), selector 0 (full
certificate) or 1 (SubjectPublicKeyInfo), matching type 0 (exact), 1 (SHA-256)
or 2 (SHA-512). PKIX-TA(0)/PKIX-EE(1) are not used for SMTP (§3.1.3).
"""

from __future__ import annotations

import datetime
import hashlib
import itertools
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ..dns import TLSARecord
from ..errors import DANEMismatch
from ._context import create_ssl_context
from ._policy import TLSMode, TLSPolicy

__all__ = [
    "DANE",
    "association_data",
    "chain_matches",
    "peer_chain",
    "usable",
]

DANE_TA, DANE_EE = 2, 3
_DIGESTS = {0: None, 1: "sha256", 2: "sha512"}


def usable(record: TLSARecord) -> bool:
    """Whether an SMTP client may use ``record`` (RFC 7672 §3.1)."""
    return (
        record.usage in (DANE_TA, DANE_EE)
        and record.selector in (0, 1)
        and record.mtype in _DIGESTS
        and bool(record.data)
    )


def association_data(certificate: bytes, selector: int, mtype: int) -> bytes:
    """What a TLSA record with ``selector`` and ``mtype`` holds for a DER certificate.

    Args:
        certificate: the certificate, DER.
        selector: 0 the whole certificate, 1 its SubjectPublicKeyInfo.
        mtype: 0 exact bytes, 1 SHA-256, 2 SHA-512.

    Raises:
        ValueError: an unknown selector or matching type, or a certificate that does not parse.
    """
    if selector == 0:
        selected = certificate
    elif selector == 1:
        cert = x509.load_der_x509_certificate(certificate)
        selected = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    else:
        raise ValueError(f"unknown TLSA selector {selector}")
    if mtype not in _DIGESTS:
        raise ValueError(f"unknown TLSA matching type {mtype}")
    digest = _DIGESTS[mtype]
    return selected if digest is None else hashlib.new(digest, selected).digest()


def _matches(record: TLSARecord, certificate: bytes) -> bool:
    try:
        return association_data(certificate, record.selector, record.mtype) == record.data
    except ValueError:
        return False


def _name_matches(pattern: str, host: str) -> bool:
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if pattern.startswith("*."):
        first, dot, rest = host.partition(".")
        return bool(first) and bool(dot) and rest == pattern[2:]
    return pattern == host


def _chains_to(position: int, chain: Sequence[bytes], host: str) -> bool:
    # DANE-TA (RFC 7672 §3.1.2, §3.2.2): chain[position] matched a TLSA record; the leaf must
    # chain up to it by signatures, every certificate below it must be in date, the issuers
    # must be CAs, and the leaf must name the MX host. CA/B Forum profile rules are not applied:
    # private CAs are what DANE-TA is for.
    try:
        path = [x509.load_der_x509_certificate(der) for der in chain[: position + 1]]
        now = datetime.datetime.now(datetime.timezone.utc)
        for child, parent in itertools.pairwise(path):
            child.verify_directly_issued_by(parent)
            constraints = parent.extensions.get_extension_for_class(x509.BasicConstraints)
            if not constraints.value.ca:
                return False
        for cert in path[:-1]:
            if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
                return False
        names = path[0].extensions.get_extension_for_class(x509.SubjectAlternativeName)
        dns_names = names.value.get_values_for_type(x509.DNSName)
    except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
        return False
    return any(_name_matches(name, host) for name in dns_names)


def chain_matches(
    records: Sequence[TLSARecord], chain: Sequence[bytes], host: str
) -> TLSARecord | None:
    """The first usable record that authenticates ``chain`` for ``host``, or None.

    DANE-EE(3) records match the leaf alone (names and dates are not checked,
    RFC 7672 §3.1.1); DANE-TA(2) records match a certificate of the chain that
    the leaf, valid for ``host``, chains to.

    Args:
        records: the host's TLSA records.
        chain: the server's certificates, DER, leaf first.
        host: the MX host name (the reference identifier for DANE-TA).
    """
    if not chain:
        return None
    for record in records:
        if not usable(record):
            continue
        if record.usage == DANE_EE:
            if _matches(record, chain[0]):
                return record
        else:
            for position in range(1, len(chain)):
                if _matches(record, chain[position]) and _chains_to(position, chain, host):
                    return record
    return None


def peer_chain(ssl_object: Any) -> tuple[bytes, ...]:
    """The certificates the server sent, DER, leaf first, from an ``SSLSocket``/``SSLObject``.

    Uses ``get_unverified_chain()`` (public from Python 3.13, present on the
    underlying object before); falls back to the leaf alone.
    """
    for owner in (ssl_object, getattr(ssl_object, "_sslobj", None)):
        getter = getattr(owner, "get_unverified_chain", None)
        if getter is None:
            continue
        chain = getter() or []
        out = []
        for cert in chain:
            if isinstance(cert, bytes):
                out.append(cert)
            else:
                out.append(cert.public_bytes(ssl._ssl.ENCODING_DER))  # type: ignore[attr-defined]
        if out:
            return tuple(out)
    leaf = ssl_object.getpeercert(binary_form=True)
    return (leaf,) if leaf else ()


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class DANE(TLSPolicy):
    """STARTTLS required; the certificate must match the host's TLSA records (RFC 7672).

    The handshake does not check the certificate against CAs; call
    :meth:`verify_chain` right after it. With no usable record, TLS is still
    required but not authenticated (RFC 7672 §2.2).

    Attributes:
        host: the MX host name the records belong to.
        records: the host's DNSSEC-validated TLSA records.
    """

    mode: ClassVar[TLSMode] = TLSMode.STARTTLS
    host: str = ""
    records: tuple[TLSARecord, ...] = field(default=())

    @property
    def authenticates(self) -> bool:
        """Whether any record is usable, so the certificate is checked."""
        return any(usable(r) for r in self.records)

    def ssl_context(self) -> ssl.SSLContext:
        """An encrypting context that leaves authentication to :meth:`verify_chain`."""
        return self.context if self.context is not None else create_ssl_context(verify=False)

    def verify_chain(self, chain: Sequence[bytes]) -> TLSARecord | None:
        """Check the server's chain; return the record that matched (None: nothing to check).

        Raises:
            DANEMismatch: usable records exist and none matches the chain.
        """
        if not self.authenticates:
            return None
        record = chain_matches(self.records, chain, self.host)
        if record is None:
            raise DANEMismatch(
                f"the certificate of {self.host} matches none of its"
                f" {len(self.records)} TLSA record(s); the host is not used"
            )
        return record

    def __repr__(self) -> str:
        return f"DANE(host={self.host!r}, records={len(self.records)})"
