"""Small TXT records: TLS-RPT (RFC 8460) and BIMI (MTA-STS is in mailtransfer.tls.mta_sts).

Strategy: both are tag lists whose first tag names the version; each
parser checks the version, the tags it needs, and the URIs they hold.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass

from ._errors import InvalidRecord
from ._tags import _quote, parse_tag_list

__all__ = [
    "BIMIRecord",
    "TLSRPTRecord",
    "parse_bimi",
    "parse_tlsrpt",
]

_MAILTO = re.compile(r"mailto:[^@\s,]+@[^@\s,]+\Z", re.IGNORECASE)


@dataclass(frozen=True, slots=True, kw_only=True)
class TLSRPTRecord:
    """A TLS-RPT record at ``_smtp._tls.<domain>``.

    Attributes:
        rua: where reports go: ``mailto:`` or ``https:`` URIs.
    """

    rua: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class BIMIRecord:
    """A BIMI assertion record at ``default._bimi.<domain>``.

    Attributes:
        logo: ``l=``: the HTTPS URL of the SVG logo (empty: declined).
        authority: ``a=``: the HTTPS URL of the mark certificate (empty: none).
    """

    logo: str
    authority: str = ""


def _versioned(text: str, what: str, version: str) -> dict[str, str]:
    tags = parse_tag_list(text, what=what)
    if list(tags)[:1] != ["v"] or tags["v"] != version:
        raise InvalidRecord(f"{what} record must start with 'v={version}'")
    return tags


def parse_tlsrpt(text: str) -> TLSRPTRecord:
    """Parse a TLS-RPT record (RFC 8460 section 3).

    Raises:
        InvalidRecord: not ``v=TLSRPTv1`` first, no ``rua=``, or a URI that is
            neither ``mailto:`` nor ``https:``.

    Example:
        >>> parse_tlsrpt("v=TLSRPTv1; rua=mailto:tls@example.org").rua
        ('mailto:tls@example.org',)
    """
    tags = _versioned(text, "TLS-RPT", "TLSRPTv1")
    if not tags.get("rua"):
        raise InvalidRecord("TLS-RPT record has no rua= (report URI)")
    uris = tuple(part.strip() for part in tags["rua"].split(","))
    for uri in uris:
        if not (_MAILTO.match(uri) or _https(uri)):
            raise InvalidRecord(f"TLS-RPT rua= holds {_quote(uri)}, not mailto: or https:")
    return TLSRPTRecord(rua=uris)


def parse_bimi(text: str) -> BIMIRecord:
    """Parse a BIMI assertion record.

    Raises:
        InvalidRecord: not ``v=BIMI1`` first, or an ``l=``/``a=`` that is not an HTTPS URL.

    Example:
        >>> parse_bimi("v=BIMI1; l=https://example.org/logo.svg").logo
        'https://example.org/logo.svg'
    """
    tags = _versioned(text, "BIMI", "BIMI1")
    logo, authority = tags.get("l", ""), tags.get("a", "")
    for name, value in (("l", logo), ("a", authority)):
        if value and not _https(value):
            raise InvalidRecord(f"BIMI {name}= must be an https: URL, got {_quote(value)}")
    return BIMIRecord(logo=logo, authority=authority)


def _https(uri: str) -> bool:
    parts = urllib.parse.urlsplit(uri)
    return parts.scheme.lower() == "https" and bool(parts.hostname)
