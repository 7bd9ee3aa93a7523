"""Header injection checks (THREATS.md S3).

Strategy: two independent guards, so a bug in one is caught by the other.

1. Inputs: a header name must be RFC 5322 ``ftext``; a value given by the
   caller must not hold CR, LF or NUL (folding is the serialiser's job).
2. Output: every header, once folded into bytes, must be exactly one field:
   ``name:`` followed by lines that each start with a space or a tab, no bare
   CR or LF, no NUL and no blank or whitespace-only continuation line (which
   some parsers take for the end of the header section). This is what
   ``verify_generated_headers`` does on Python 3.13+ (CVE-2024-6923), done
   here on every version and for every policy.

Nothing is ever stripped or repaired: a bad header raises
:class:`~mailtransfer.errors.HeaderInjection`, because silently removing a
line break hides the attack and changes the message.
"""

from __future__ import annotations

import re
from typing import Any

from mailtransfer.errors import HeaderInjection, InvalidArgument

from ._headers import CachingHeaderRegistry

__all__ = [
    "check_decoded",
    "check_folded",
    "check_name",
    "check_value",
    "describe",
    "parse_field",
]

# RFC 5322 section 3.6.8: field-name = 1*ftext; ftext = %d33-57 / %d59-126
_FIELD_NAME = re.compile(r"[!-9;-~]+")
# In a folded field (without its final CRLF): a CR not starting "CRLF WSP", a
# LF not preceded by CR, NUL, or a continuation line of whitespace only.
_BAD_FOLD = re.compile(rb"\r\n[ \t]*(?=\r\n|\Z)|\r(?!\n[ \t])|(?<!\r)\n|\x00")
# CR, LF and NUL, and the other characters str.splitlines() breaks lines at:
# the email package splits on them too (and some readers do), so a value
# holding one could be cut into two fields.
_BAD_VALUE = re.compile("[\r\n\x00\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
# RFC 2047 section 2: encoded-word = "=?" charset "?" encoding "?" encoded-text "?="
_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")
_FOLDING = re.compile(r"\r?\n(?=[ \t])")
_NAMES_OK: set[str] = set()
_NAMES_CACHE_LIMIT = 512
# The modern parser's header factory (the classes of email.policy.default), remembering
# the classes and headers it makes.
_FIELDS = CachingHeaderRegistry()


def describe(char: str) -> str:
    """Name a forbidden character for an error message."""
    return {"\r": "CR", "\n": "LF", "\x00": "NUL"}.get(char, f"line break {char!r}")


def check_name(name: object) -> str:
    """Return ``name`` if it is a valid header field name, else raise HeaderInjection."""
    if name in _NAMES_OK:
        return name
    if not isinstance(name, str):
        raise HeaderInjection(f"header name must be str, but got {type(name).__name__}")
    if _FIELD_NAME.fullmatch(name) is None:
        found = re.search(r"[^!-9;-~]", name)
        where = "it is empty" if found is None else f"it has {describe(found.group())}"
        raise HeaderInjection(
            "header name must be printable ASCII without ':' or spaces (RFC 5322 section "
            f"3.6.8), but {where}"
        )
    if len(_NAMES_OK) < _NAMES_CACHE_LIMIT:
        _NAMES_OK.add(name)
    return name


def check_value(value: str, *, what: str) -> str:
    """Return ``value`` if it holds no CR, LF, NUL or other line break, else raise HeaderInjection.

    Args:
        value: a header value, display name, file name or address as the
            caller gave it, before any folding.
        what: what the value is, for the error message (``"Subject"``).
    """
    found = _BAD_VALUE.search(value)
    if found is not None:
        raise HeaderInjection(
            f"{what} must not contain CR, LF or NUL, but has {describe(found.group())} "
            f"at position {found.start()}"
        )
    return value


def parse_field(name: str, value: object, *, error: type[InvalidArgument] = InvalidArgument) -> Any:
    """Parse a field value with the modern ``email`` parser, turning its crashes into ``error``.

    The parser raises ``IndexError`` and friends on some malformed input
    (``" :"`` as an address list, for one); a caller must get a typed error.
    """
    try:
        return _FIELDS(name, value)
    except Exception as exc:
        raise error(
            f"{name} cannot be parsed ({type(exc).__name__}); it is not valid RFC 5322 syntax"
        ) from None


def check_decoded(value: str, *, what: str) -> str:
    """Return ``value`` unless its RFC 2047 encoded words decode to CR, LF or NUL.

    Readers decode encoded words (and the ``email`` package decodes them when
    a header is set), so ``=?utf-8?q?a=0D=0ABcc:_x?=`` is a line break in
    disguise: refused as :func:`check_value` refuses a literal one.
    """
    if "=?" in value and _ENCODED_WORD.search(value):
        unfolded = _FOLDING.sub("", value)
        decoded = str(parse_field("X-Decoded", unfolded))
        check_value(decoded, what=f"{what} (once its RFC 2047 encoded words are decoded)")
    return value


def check_folded(name: str, folded: bytes) -> bytes:
    """Return ``folded`` if it is exactly one well-formed header field, else raise.

    Args:
        name: the field name the line must start with.
        folded: the serialised field, ending with CRLF.
    """
    prefix = name.encode("ascii") + b":"
    if not folded.startswith(prefix) or not folded.endswith(b"\r\n"):
        raise HeaderInjection(f"header {name} did not serialise to one field ending in CRLF")
    found = _BAD_FOLD.search(folded, len(prefix), len(folded) - 2)
    if found is not None:
        raise HeaderInjection(
            f"header {name} serialises with a line break that starts a new line "
            f"({describe(found.group()[:1].decode('latin-1'))} at byte {found.start()}); "
            "a value must not contain CR, LF or NUL"
        )
    return folded
