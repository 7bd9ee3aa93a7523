"""Checks on what a signer writes into DKIM-Signature tags: ``d=``, ``s=``, ``i=``, ``h=``.

Strategy: every value is checked against a strict grammar before it can
reach a header, so none can end a tag (``;``), start one (``=``), fold the
field (CR, LF) or carry a control character: the tag injection that
nodemailer had to fix (THREATS.md S10). Nothing is stripped or repaired.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ._errors import DKIMConfigError

__all__ = [
    "NEVER_SIGN",
    "check_domain",
    "check_header_names",
    "check_identity",
    "check_selector",
]

# RFC 1035 section 2.3.1 / RFC 5321 section 4.1.2 (sub-domain): letters,
# digits and hyphens, not at either end, 1 to 63 characters.
_LDH_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
# Selectors are DNS names below _domainkey; RFC 6376 section 3.1 asks for
# sub-domain syntax, but DNS allows "_" and some providers use it.
_SELECTOR_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
# RFC 6376 section 2.11: dkim-safe-char is %x21-3A / %x3C / %x3E-7E, so an
# i= local part without ";" and "="; "@" is left out too, to keep one "@".
_IDENTITY_LOCAL = re.compile(r"[\x21-\x3a\x3c\x3e\x3f\x41-\x7e]*")
# RFC 5322 ftext, less the characters that mean something in a tag list or
# next to one (";", "=", ",", quotes): real header names never use them.
_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")
# RFC 6376 section 5.4.1 advises against these; dkimpy refuses them, and so
# does this module (DKIM-Signature fields are added above, never signed).
NEVER_SIGN = frozenset(
    {"return-path", "received", "comments", "keywords", "bcc", "resent-bcc", "dkim-signature"}
)


def _check_name(value: object, what: str, label: re.Pattern[str], hint: str) -> str:
    if not isinstance(value, str):
        raise DKIMConfigError(f"{what} must be a str, but got {type(value).__name__}")
    if not value.isascii():
        raise DKIMConfigError(
            f"{what} must be ASCII; write an internationalised name in its A-label "
            f"(xn--) form, but got {value!r}"
        )
    if len(value) > 253:
        raise DKIMConfigError(f"{what} must be at most 253 characters, but has {len(value)}")
    for part in value.split("."):
        if label.fullmatch(part) is None:
            why = "an empty label" if not part else f"the label {part!r}"
            raise DKIMConfigError(f"{what} must be a DNS name ({hint}), but {value!r} has {why}")
    return value


def check_domain(value: object, *, what: str = "domain") -> str:
    """Return ``value`` if it is a valid ``d=`` domain, else raise DKIMConfigError."""
    return _check_name(value, what, _LDH_LABEL, "letters, digits and inner hyphens")


def check_selector(value: object, *, what: str = "selector") -> str:
    """Return ``value`` if it is a valid ``s=`` selector, else raise DKIMConfigError."""
    return _check_name(value, what, _SELECTOR_LABEL, "letters, digits, '_' and inner hyphens")


def check_identity(value: object, domain: str) -> str:
    """Return ``value`` if it is a valid ``i=`` for ``d=domain`` (RFC 6376 section 3.5).

    Raises:
        DKIMConfigError: not ``[local]@domain``, a character that is not
            dkim-safe, or a domain that is neither ``domain`` nor below it.
    """
    if not isinstance(value, str):
        raise DKIMConfigError(f"identity must be a str, but got {type(value).__name__}")
    local, at, host = value.partition("@")
    if not at or _IDENTITY_LOCAL.fullmatch(local) is None:
        raise DKIMConfigError(
            "identity must be [local-part]@domain with a local part of printable ASCII "
            f"without ';', '=' or '@' (RFC 6376 section 3.5), but got {value!r}"
        )
    check_domain(host, what="identity domain")
    if not (host.lower() == domain.lower() or host.lower().endswith("." + domain.lower())):
        raise DKIMConfigError(
            f"identity domain must be {domain!r} or a subdomain of it (RFC 6376 section 3.5), "
            f"but got {host!r}"
        )
    return value


def check_header_names(names: Iterable[object], *, what: str) -> tuple[str, ...]:
    """Lower-case, de-duplicate and check header field names for ``h=``.

    Raises:
        DKIMConfigError: a name that is not a plain field name, or one that
            must not be signed (:data:`NEVER_SIGN`).
    """
    if isinstance(names, (str, bytes)):
        raise DKIMConfigError(
            f"{what} must be a list of header names, not a single {type(names).__name__}"
        )
    seen: dict[str, None] = {}
    for name in names:
        if not isinstance(name, str) or _HEADER_NAME.fullmatch(name) is None:
            raise DKIMConfigError(
                f"{what} must hold header field names (letters, digits, '-' and the like, "
                f"no ':', ';', '=' or spaces), but got {name!r}"
            )
        lower = name.lower()
        if lower in NEVER_SIGN:
            raise DKIMConfigError(
                f"{what} must not include {name!r}: it changes in transit or must not be "
                "signed (RFC 6376 section 5.4.1)"
            )
        seen[lower] = None
    return tuple(seen)
