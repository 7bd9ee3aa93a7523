"""DMARC records (RFC 7489 section 6.3) and where to find them, no DNS.

Strategy: :func:`parse_dmarc` is strict where a receiver would ignore the
record (``v=`` first, a known ``p=``) and lenient about unknown tags, which
receivers skip. :func:`dmarc_candidates` lists the names to try: the domain,
then its ancestors, following the DMARCbis "DNS tree walk" instead of RFC 7489's
Public Suffix List, so no list has to be shipped and kept fresh.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ._errors import InvalidRecord
from ._tags import _quote, parse_tag_list

__all__ = ["DMARCRecord", "dmarc_candidates", "is_dmarc_record", "parse_dmarc"]

POLICIES = ("none", "quarantine", "reject")
_TREE_WALK_LIMIT = 8
_MAILTO = re.compile(r"mailto:[^@\s,!]+@[^@\s,!]+(?:![0-9]+[kmgt]?)?\Z", re.IGNORECASE)


@dataclass(frozen=True, slots=True, kw_only=True)
class DMARCRecord:
    """A parsed DMARC record.

    Attributes:
        policy: ``p=``: none, quarantine or reject.
        subdomain_policy: ``sp=`` (``None``: subdomains get ``policy``).
        adkim: DKIM alignment, ``"r"`` (relaxed, default) or ``"s"`` (strict).
        aspf: SPF alignment, ``"r"`` or ``"s"``.
        pct: the percentage of failing mail the policy applies to (default 100).
        rua: aggregate report URIs.
        ruf: failure report URIs.
        fo: failure reporting options (default ``"0"``).
        interval: ``ri=``, seconds between aggregate reports (default 86400).
    """

    policy: str
    subdomain_policy: str | None = None
    adkim: str = "r"
    aspf: str = "r"
    pct: int = 100
    rua: tuple[str, ...] = ()
    ruf: tuple[str, ...] = ()
    fo: str = "0"
    interval: int = 86400

    def policy_for(self, *, subdomain: bool) -> str:
        """The policy that applies to the organisational domain or a subdomain of it."""
        if subdomain and self.subdomain_policy is not None:
            return self.subdomain_policy
        return self.policy

    def __str__(self) -> str:
        parts = [f"v=DMARC1; p={self.policy}"]
        if self.subdomain_policy is not None:
            parts.append(f"sp={self.subdomain_policy}")
        for name, value, default in (
            ("adkim", self.adkim, "r"),
            ("aspf", self.aspf, "r"),
            ("pct", str(self.pct), "100"),
            ("fo", self.fo, "0"),
            ("ri", str(self.interval), "86400"),
        ):
            if value != default:
                parts.append(f"{name}={value}")
        if self.rua:
            parts.append("rua=" + ",".join(self.rua))
        if self.ruf:
            parts.append("ruf=" + ",".join(self.ruf))
        return "; ".join(parts)


def is_dmarc_record(text: str) -> bool:
    """Whether a TXT record at ``_dmarc`` is meant as DMARC (starts with ``v=DMARC1``)."""
    return re.match(r"v\s*=\s*DMARC1(?:\s*;|\s*\Z)", text) is not None


def parse_dmarc(text: str) -> DMARCRecord:
    """Parse a DMARC record.

    Args:
        text: the TXT record at ``_dmarc.<domain>``, strings joined.

    Returns:
        The record.

    Raises:
        InvalidRecord: a bad tag list, ``v=DMARC1`` not first, a missing or
            unknown ``p=``, or an out-of-range ``sp``, ``adkim``, ``aspf``,
            ``pct``, ``ri`` or report URI.

    Example:
        >>> parse_dmarc("v=DMARC1; p=reject; rua=mailto:dmarc@example.org").policy
        'reject'
    """
    tags = {name.lower(): value for name, value in parse_tag_list(text, what="DMARC").items()}
    if list(tags)[:1] != ["v"] or tags["v"] != "DMARC1":
        raise InvalidRecord("DMARC record must start with 'v=DMARC1'")
    if "p" not in tags:
        raise InvalidRecord("DMARC record has no p= (policy) tag")
    return DMARCRecord(
        policy=_choice(tags, "p", POLICIES),
        subdomain_policy=_choice(tags, "sp", POLICIES) if "sp" in tags else None,
        adkim=_choice(tags, "adkim", ("r", "s")) if "adkim" in tags else "r",
        aspf=_choice(tags, "aspf", ("r", "s")) if "aspf" in tags else "r",
        pct=_number(tags, "pct", 100, 100),
        rua=_uris(tags.get("rua", ""), "rua"),
        ruf=_uris(tags.get("ruf", ""), "ruf"),
        fo=tags.get("fo", "0"),
        interval=_number(tags, "ri", 86400, 2**32 - 1),
    )


def dmarc_candidates(domain: str) -> list[str]:
    """The domains whose ``_dmarc`` record may apply to ``domain``, nearest first.

    The DMARCbis tree walk: the domain itself, then each parent, at most 8
    names, jumping from a very long name to its 7 rightmost labels; top-level
    domains are never tried. A name whose record carries ``psd=y`` would end
    the walk in DMARCbis; that refinement, and RFC 7489's exact PSL-based
    organisational domain, are not implemented (they differ only for domains
    under a public suffix that publishes DMARC itself).

    Example:
        >>> dmarc_candidates("a.b.mail.example.org")
        ['a.b.mail.example.org', 'b.mail.example.org', 'mail.example.org', 'example.org']
    """
    labels = domain.rstrip(".").lower().split(".")
    names = [".".join(labels)]
    if len(labels) > _TREE_WALK_LIMIT:
        labels = labels[-(_TREE_WALK_LIMIT - 1) :]
        names.append(".".join(labels))
    while len(labels) > 2:
        labels = labels[1:]
        names.append(".".join(labels))
    return names


def _choice(tags: dict[str, str], name: str, allowed: tuple[str, ...]) -> str:
    value = tags[name].lower()
    if value not in allowed:
        raise InvalidRecord(
            f"DMARC {name}= must be one of {', '.join(allowed)}, got {_quote(value)}"
        )
    return value


def _number(tags: dict[str, str], name: str, default: int, maximum: int) -> int:
    if name not in tags:
        return default
    value = tags[name]
    if not value.isdigit() or int(value) > maximum:
        raise InvalidRecord(
            f"DMARC {name}= must be a number from 0 to {maximum}, got {_quote(value)}"
        )
    return int(value)


def _uris(value: str, name: str) -> tuple[str, ...]:
    uris = tuple(part.strip() for part in value.split(",") if part.strip())
    for uri in uris:
        if not _MAILTO.match(uri):
            raise InvalidRecord(f"DMARC {name}= holds {_quote(uri)}, not a mailto: address")
    return uris
