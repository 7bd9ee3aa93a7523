"""MTA-STS (RFC 8461): parse a domain's policy, match MX names, cache it, enforce it.

Strategy: everything here is pure. The ``_mta-sts`` TXT record and the policy
file are parsed into frozen values; :class:`MTASTSCache` keeps policies until
their ``max_age`` runs out; :class:`MTASTS` is the TLS policy an MX host gets
under an enforced policy (STARTTLS required, certificate verified against the
MX host name). Fetching the file over HTTPS is the drivers' job.
"""

from __future__ import annotations

import enum
import re
import ssl
from dataclasses import dataclass, field
from typing import ClassVar

from ._context import create_ssl_context
from ._policy import TLSMode, TLSPolicy

__all__ = [
    "MAX_POLICY_SIZE",
    "MTASTS",
    "MTASTSCache",
    "MTASTSMode",
    "MTASTSPolicy",
    "mx_matches",
    "parse_policy",
    "parse_txt",
    "policy_url",
]

MAX_POLICY_SIZE = 64 * 1024
"""RFC 8461 §3.2: a policy file is at most 64 KiB."""
MAX_MAX_AGE = 31_557_600
"""RFC 8461 §3.2: ``max_age`` is at most one year (in seconds)."""

_ID = re.compile(r"[A-Za-z0-9]{1,32}")
_FIELD = re.compile(r"([A-Za-z0-9_.-]+)=([\x21-\x3a\x3c\x3e-\x7e]*)")
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


class MTASTSMode(enum.Enum):
    """What a domain asks senders to do (RFC 8461 §5)."""

    ENFORCE = "enforce"
    """Deliver only to listed MX hosts over verified TLS."""
    TESTING = "testing"
    """Deliver as usual; report failures (TLSRPT)."""
    NONE = "none"
    """No policy is in force."""


def parse_txt(text: str) -> str:
    """Parse an ``_mta-sts`` TXT record and return its policy ``id`` (RFC 8461 §3.1).

    Example:
        >>> parse_txt("v=STSv1; id=20160831085700Z;")
        '20160831085700Z'

    Args:
        text: the record's strings joined.

    Raises:
        ValueError: the record is not a valid ``v=STSv1`` record.
    """
    fields = [part.strip(" \t") for part in text.split(";")]
    if fields and fields[-1] == "":
        fields.pop()
    if not fields or fields[0] != "v=STSv1":
        raise ValueError(f"an MTA-STS record starts with v=STSv1, got {text[:40]!r}")
    ident: str | None = None
    for part in fields[1:]:
        match = _FIELD.fullmatch(part)
        if match is None:
            raise ValueError(f"malformed field {part[:40]!r} in the MTA-STS record")
        if match.group(1) == "id":
            if not _ID.fullmatch(match.group(2)):
                raise ValueError(f"the MTA-STS id must be 1-32 letters or digits: {part[:40]!r}")
            ident = match.group(2)
    if ident is None:
        raise ValueError("the MTA-STS record has no id")
    return ident


def _valid_pattern(pattern: str) -> bool:
    labels = pattern[2:].split(".") if pattern.startswith("*.") else pattern.split(".")
    return len(labels) >= 1 and all(_LABEL.fullmatch(label) for label in labels)


def mx_matches(pattern: str, host: str) -> bool:
    """Whether an MX host name matches a policy's ``mx`` pattern (RFC 8461 §4.1).

    ``*.example.org`` matches exactly one extra leftmost label: ``mx.example.org``,
    not ``example.org`` nor ``a.b.example.org``. Case-insensitive; no trailing dot.

    Args:
        pattern: the ``mx`` value from the policy.
        host: the MX host name (A-labels).
    """
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if pattern.startswith("*."):
        first, dot, rest = host.partition(".")
        return bool(first) and bool(dot) and rest == pattern[2:]
    return host == pattern


@dataclass(frozen=True, slots=True, kw_only=True)
class MTASTSPolicy:
    """A domain's MTA-STS policy, as parsed from its policy file.

    Attributes:
        mode: enforce, testing or none.
        max_age: seconds the policy may be cached.
        mx: the MX host patterns (``mx.example.org``, ``*.example.org``).
        id: the ``id`` from the TXT record it was fetched for ("" when unknown).
    """

    mode: MTASTSMode
    max_age: int
    mx: tuple[str, ...] = ()
    id: str = ""

    def allows(self, host: str) -> bool:
        """Whether ``host`` matches one of the policy's ``mx`` patterns."""
        return any(mx_matches(pattern, host) for pattern in self.mx)


def parse_policy(text: str | bytes, *, id: str = "") -> MTASTSPolicy:
    """Parse an MTA-STS policy file (RFC 8461 §3.2).

    Lines are ``key: value``, separated by CRLF or LF; unknown keys are ignored.

    Args:
        text: the file's content (bytes are decoded as UTF-8).
        id: the ``id`` of the TXT record the file was fetched for.

    Raises:
        ValueError: the file is too big, not STSv1, or lacks a valid mode,
            max_age, or (unless the mode is none) an mx line.
    """
    if isinstance(text, bytes):
        if len(text) > MAX_POLICY_SIZE:
            raise ValueError(f"the policy file is larger than {MAX_POLICY_SIZE} bytes")
        text = text.decode("utf-8", "replace")
    elif len(text) > MAX_POLICY_SIZE:
        raise ValueError(f"the policy file is larger than {MAX_POLICY_SIZE} characters")
    values: dict[str, str] = {}
    mx: list[str] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line.strip():
            continue
        key, colon, value = line.partition(":")
        key, value = key.strip(), value.strip(" \t")
        if not colon or not key:
            raise ValueError(f"malformed policy line {line[:60]!r}")
        if key == "mx":
            if not _valid_pattern(value.lower()):
                raise ValueError(f"malformed mx pattern {value[:60]!r}")
            mx.append(value.lower())
        else:
            values.setdefault(key, value)
    if values.get("version") != "STSv1":
        raise ValueError("the policy's version is not STSv1")
    try:
        mode = MTASTSMode(values.get("mode", ""))
    except ValueError:
        raise ValueError(f"unknown policy mode {values.get('mode', '')[:20]!r}") from None
    age = values.get("max_age", "")
    if not age.isascii() or not age.isdigit() or len(age) > 10 or int(age) > MAX_MAX_AGE:
        raise ValueError(f"max_age must be 0-{MAX_MAX_AGE} seconds, got {age[:20]!r}")
    if mode is not MTASTSMode.NONE and not mx:
        raise ValueError(f"a {mode.value} policy must list at least one mx")
    return MTASTSPolicy(mode=mode, max_age=int(age), mx=tuple(mx), id=id)


def policy_url(domain: str) -> str:
    """The HTTPS URL of ``domain``'s policy file (RFC 8461 §3.3)."""
    return f"https://mta-sts.{domain}/.well-known/mta-sts.txt"


class MTASTSCache:
    """Policies by domain until their ``max_age`` runs out (RFC 8461 §5.1); thread-safe.

    Share one cache across mailers so that a policy survives an outage of the
    domain's policy host, as the RFC intends.
    """

    def __init__(self) -> None:
        # Single dict operations are atomic in CPython: no lock needed for get/put.
        self._entries: dict[str, tuple[MTASTSPolicy, float]] = {}

    def get(self, domain: str, now: float) -> MTASTSPolicy | None:
        """The cached, unexpired policy of ``domain`` at time ``now`` (monotonic seconds)."""
        entry = self._entries.get(domain)
        if entry is None:
            return None
        if now >= entry[1]:
            self._entries.pop(domain, None)
            return None
        return entry[0]

    def put(self, domain: str, policy: MTASTSPolicy, now: float) -> None:
        """Cache ``policy`` for ``domain`` from ``now`` for its ``max_age``."""
        self._entries[domain] = (policy, now + policy.max_age)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"<MTASTSCache [{len(self)} domain(s)]>"


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class MTASTS(TLSPolicy):
    """STARTTLS required with a certificate valid for the MX host: an enforced MTA-STS policy.

    The certificate is verified against the system trust store (or ``context``)
    and the MX host name (RFC 8461 §4.2).

    Attributes:
        policy: the domain's policy.
    """

    mode: ClassVar[TLSMode] = TLSMode.STARTTLS
    policy: MTASTSPolicy | None = field(default=None, compare=False)

    def ssl_context(self) -> ssl.SSLContext:
        """A verifying context: ``context`` when given, else the secure default."""
        return self.context if self.context is not None else create_ssl_context()
