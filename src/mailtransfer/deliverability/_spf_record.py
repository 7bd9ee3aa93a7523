"""SPF records (RFC 7208): parse and render, no DNS.

Strategy: a record is split on spaces into terms; each term is a modifier
(``name=value``) or a directive (``[qualifier]mechanism[:domain-spec][/cidr]``),
checked against the section 12 grammar and turned into a frozen value. Domain
specs keep their macros unexpanded (:mod:`._spf_eval` expands them per check).
``str()`` of a parsed record is its canonical text, and parsing that text
gives back an equal record.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from dataclasses import dataclass

from ._errors import InvalidRecord
from ._tags import _quote

__all__ = [
    "LOOKUP_LIMIT",
    "Mechanism",
    "Qualifier",
    "SPFRecord",
    "is_spf_record",
    "parse_spf",
]

LOOKUP_LIMIT = 10
"""RFC 7208 section 4.6.4: at most 10 terms that cause DNS lookups per evaluation."""

LOOKUP_MECHANISMS = frozenset({"include", "a", "mx", "ptr", "exists"})
"""Mechanisms that cost a DNS lookup (``redirect=`` costs one too)."""

_MECHANISMS = frozenset({"all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists"})

# macro-expand = ( "%{" macro-letter transformers *delimiter "}" ) / "%%" / "%_" / "%-"
# macro-literal = %x21-24 / %x26-7E
_MACRO_EXPAND = r"%\{[slodiphcrtvSLODIPHCRTV][0-9]*[rR]?[.\-+,/_=]*\}|%%|%_|%-"
_MACRO_STRING = re.compile(rf"(?:{_MACRO_EXPAND}|[!-$&-~])*\Z")
# toplabel = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-" *( alphanum / "-" ) alphanum )
_TOPLABEL = r"(?:[A-Za-z0-9]*[A-Za-z][A-Za-z0-9]*|[A-Za-z0-9]+-[A-Za-z0-9-]*[A-Za-z0-9])"
_DOMAIN_END = re.compile(rf"(?:\.{_TOPLABEL}\.?|{_MACRO_EXPAND})\Z")
_MODIFIER_NAME = re.compile(r"[A-Za-z][A-Za-z0-9\-_.]*\Z")
_IP4 = re.compile(
    r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(?:\.(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}\Z"
)
_CIDR = re.compile(r"(?:0|[1-9][0-9]{0,2})\Z")
_VERSION = re.compile(r"v=spf1(?: |\Z)", re.IGNORECASE)


class Qualifier(enum.Enum):
    """The result a matching mechanism gives (RFC 7208 section 4.6.2)."""

    PASS = "+"
    FAIL = "-"
    SOFTFAIL = "~"
    NEUTRAL = "?"


@dataclass(frozen=True, slots=True, kw_only=True)
class Mechanism:
    """One directive of an SPF record.

    Attributes:
        qualifier: the result when it matches (default ``+``, pass).
        kind: ``all``, ``include``, ``a``, ``mx``, ``ptr``, ``ip4``, ``ip6`` or ``exists``.
        domain: the domain-spec, macros unexpanded; ``None`` when omitted
            (``a``, ``mx``, ``ptr`` then mean the current domain).
        network: the network of ``ip4``/``ip6`` (host bits cleared).
        cidr4: the IPv4 prefix length of ``a``/``mx`` (``None``: 32).
        cidr6: the IPv6 prefix length of ``a``/``mx`` (``None``: 128).
    """

    qualifier: Qualifier = Qualifier.PASS
    kind: str
    domain: str | None = None
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    cidr4: int | None = None
    cidr6: int | None = None

    @property
    def costs_lookup(self) -> bool:
        """Whether evaluating it counts against the limit of 10 DNS lookups."""
        return self.kind in LOOKUP_MECHANISMS

    def __str__(self) -> str:
        text = "" if self.qualifier is Qualifier.PASS else self.qualifier.value
        text += self.kind
        if self.network is not None:
            full = self.network.max_prefixlen == self.network.prefixlen
            address = self.network.network_address
            return f"{text}:{address}" if full else f"{text}:{self.network}"
        if self.domain is not None:
            text += f":{self.domain}"
        if self.cidr4 is not None:
            text += f"/{self.cidr4}"
        if self.cidr6 is not None:
            text += f"//{self.cidr6}"
        return text


@dataclass(frozen=True, slots=True, kw_only=True)
class SPFRecord:
    """A parsed SPF record.

    Attributes:
        mechanisms: the directives, in order.
        redirect: the ``redirect=`` domain-spec, if any.
        explanation: the ``exp=`` domain-spec, if any.
        modifiers: unknown modifiers ``(name, value)``, kept and ignored.
    """

    mechanisms: tuple[Mechanism, ...] = ()
    redirect: str | None = None
    explanation: str | None = None
    modifiers: tuple[tuple[str, str], ...] = ()

    @property
    def all(self) -> Mechanism | None:
        """The first ``all`` mechanism (nothing after it is ever evaluated)."""
        return next((m for m in self.mechanisms if m.kind == "all"), None)

    @property
    def lookup_terms(self) -> int:
        """Terms of this record alone that cost a DNS lookup (includes not followed)."""
        return sum(m.costs_lookup for m in self.mechanisms) + (self.redirect is not None)

    def __str__(self) -> str:
        terms = ["v=spf1", *(str(m) for m in self.mechanisms)]
        if self.redirect is not None:
            terms.append(f"redirect={self.redirect}")
        if self.explanation is not None:
            terms.append(f"exp={self.explanation}")
        terms.extend(f"{name}={value}" for name, value in self.modifiers)
        return " ".join(terms)


def is_spf_record(text: str) -> bool:
    """Whether a TXT record is meant as SPF: it starts with ``v=spf1`` then a space or its end.

    RFC 7208 section 4.5: other TXT records at the name are ignored.
    """
    return _VERSION.match(text) is not None


def parse_spf(text: str) -> SPFRecord:
    """Parse an SPF record (RFC 7208 section 12).

    Args:
        text: the TXT record, strings already joined.

    Returns:
        The record.

    Raises:
        InvalidRecord: not ``v=spf1``, an unknown mechanism, a bad domain-spec,
            network or prefix length, or ``redirect=``/``exp=`` given twice.
            The message quotes the offending term.

    Example:
        >>> record = parse_spf("v=spf1 ip4:192.0.2.0/24 include:_spf.example.org -all")
        >>> [str(m) for m in record.mechanisms]
        ['ip4:192.0.2.0/24', 'include:_spf.example.org', '-all']
    """
    if not is_spf_record(text):
        raise InvalidRecord("SPF record does not start with 'v=spf1'")
    mechanisms: list[Mechanism] = []
    redirect = explanation = None
    modifiers: list[tuple[str, str]] = []
    for term in text[6:].split(" "):
        if term == "":
            continue  # RFC 7208 section 12 allows runs of spaces (and trailing ones)
        name, equals, value = term.partition("=")
        if equals and _MODIFIER_NAME.match(name):
            key = name.lower()
            if key in ("redirect", "exp"):
                _check_domain_spec(value, term)
                if (redirect if key == "redirect" else explanation) is not None:
                    raise InvalidRecord(f"SPF record has more than one {key}= modifier")
                if key == "redirect":
                    redirect = value
                else:
                    explanation = value
            else:
                if not _MACRO_STRING.match(value):
                    raise InvalidRecord(f"SPF modifier {_quote(term)} has an invalid value")
                modifiers.append((name, value))
            continue
        mechanisms.append(_parse_directive(term))
    return SPFRecord(
        mechanisms=tuple(mechanisms),
        redirect=redirect,
        explanation=explanation,
        modifiers=tuple(modifiers),
    )


def _parse_directive(term: str) -> Mechanism:
    qualifier = Qualifier.PASS
    body = term
    if body[:1] in ("+", "-", "~", "?"):
        qualifier, body = Qualifier(body[0]), body[1:]
    match = re.match(r"[A-Za-z0-9]+", body)
    kind = match.group().lower() if match else ""
    if kind not in _MECHANISMS:
        raise InvalidRecord(f"SPF record has an unknown mechanism in {_quote(term)}")
    rest = body[len(kind) :]
    if kind == "all":
        if rest:
            raise InvalidRecord(f"SPF 'all' takes no argument, got {_quote(term)}")
        return Mechanism(qualifier=qualifier, kind=kind)
    if kind in ("ip4", "ip6"):
        return Mechanism(qualifier=qualifier, kind=kind, network=_parse_network(kind, rest, term))
    cidr4 = cidr6 = None
    if kind in ("a", "mx"):
        rest, cidr4, cidr6 = _split_dual_cidr(rest, term)
    domain = None
    if rest:
        if not rest.startswith(":"):
            raise InvalidRecord(f"SPF mechanism {_quote(term)} is malformed")
        domain = rest[1:]
        _check_domain_spec(domain, term)
    elif kind in ("include", "exists"):
        raise InvalidRecord(f"SPF {kind} needs a domain, got {_quote(term)}")
    return Mechanism(qualifier=qualifier, kind=kind, domain=domain, cidr4=cidr4, cidr6=cidr6)


def _split_dual_cidr(rest: str, term: str) -> tuple[str, int | None, int | None]:
    """Split ``[:domain]/24//64`` into the domain part and the two prefix lengths."""
    cidr4 = cidr6 = None
    head, sep, v6 = rest.partition("//")
    if sep:
        cidr6 = _cidr(v6, 128, term)
        rest = head
    slash = rest.rfind("/")
    if slash >= 0:
        cidr4 = _cidr(rest[slash + 1 :], 32, term)
        rest = rest[:slash]
    return rest, cidr4, cidr6


def _cidr(text: str, maximum: int, term: str) -> int:
    if not _CIDR.match(text) or int(text) > maximum:
        raise InvalidRecord(f"SPF term {_quote(term)} has an invalid prefix length")
    return int(text)


def _parse_network(
    kind: str, rest: str, term: str
) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    if not rest.startswith(":"):
        raise InvalidRecord(f"SPF {kind} needs an address, got {_quote(term)}")
    address, _, length = rest[1:].partition("/")
    maximum = 32 if kind == "ip4" else 128
    prefix = _cidr(length, maximum, term) if "/" in rest else maximum
    try:
        if kind == "ip4":
            if not _IP4.match(address):
                raise ValueError(address)
            return ipaddress.IPv4Network(f"{address}/{prefix}", strict=False)
        if ":" not in address:
            raise ValueError(address)
        return ipaddress.IPv6Network(f"{address}/{prefix}", strict=False)
    except ValueError:
        raise InvalidRecord(f"SPF {kind} has an invalid address in {_quote(term)}") from None


def _check_domain_spec(spec: str, term: str) -> None:
    """domain-spec = macro-string domain-end (RFC 7208 section 7.1)."""
    if not spec or not _MACRO_STRING.match(spec):
        raise InvalidRecord(f"SPF term {_quote(term)} has an invalid domain-spec")
    if not _DOMAIN_END.search(spec) or spec.startswith("."):
        raise InvalidRecord(f"SPF term {_quote(term)} has an invalid domain-spec")
