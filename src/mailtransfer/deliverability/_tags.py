"""Tag-value lists (RFC 6376 section 3.2), shared by DKIM, DMARC, TLS-RPT, MTA-STS and BIMI.

Strategy: one parser, strict about the grammar and about duplicates, returning
the tags in order; each record parser then checks its own tags. Whitespace
(SP, HTAB and folded CRLF) around names, values and separators is dropped.

    tag-list  =  tag-spec *( ";" tag-spec ) [ ";" ]
    tag-spec  =  [FWS] tag-name [FWS] "=" [FWS] tag-value [FWS]
    tag-name  =  ALPHA *ALNUMPUNC            ; ALNUMPUNC = ALPHA / DIGIT / "_"
    tag-value =  [ tval *( 1*(WSP / FWS) tval ) ]
    tval      =  1*VALCHAR                   ; VALCHAR = %x21-3A / %x3C-7E
"""

from __future__ import annotations

import re

from ._errors import InvalidRecord

__all__ = ["parse_tag_list", "render_tag_list"]

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_VALUE = re.compile(r"(?:[!-:<-~]+(?:[ \t\r\n]+[!-:<-~]+)*)?\Z")
_FWS = " \t\r\n"


def parse_tag_list(text: str, *, what: str = "record") -> dict[str, str]:
    """Parse ``name=value; name=value`` into an ordered dict.

    Args:
        text: the record, TXT strings already joined.
        what: the record type, for error messages (``"DKIM key record"``).

    Returns:
        Tag names (as written) to values (inner whitespace kept).

    Raises:
        InvalidRecord: an empty tag, a name or value outside the grammar, a
            tag without ``=``, or a tag given twice.

    Example:
        >>> parse_tag_list("v=DKIM1; k=ed25519; p=abc")
        {'v': 'DKIM1', 'k': 'ed25519', 'p': 'abc'}
    """
    tags: dict[str, str] = {}
    parts = text.split(";")
    if parts and parts[-1].strip(_FWS) == "":
        parts.pop()  # a trailing ";" is allowed
    for index, part in enumerate(parts, start=1):
        name, equals, value = part.partition("=")
        name, value = name.strip(_FWS), value.strip(_FWS)
        if not equals:
            if not name:
                raise InvalidRecord(f"{what} has an empty tag (tag {index})")
            raise InvalidRecord(f"{what} tag {index} has no '=' ({_quote(name)})")
        if not _NAME.match(name):
            raise InvalidRecord(f"{what} tag {index} has an invalid name {_quote(name)}")
        if not _VALUE.match(value):
            raise InvalidRecord(f"{what} tag {name!r} has an invalid value {_quote(value)}")
        if name in tags:
            raise InvalidRecord(f"{what} gives the tag {name!r} twice")
        tags[name] = value
    return tags


def render_tag_list(tags: dict[str, str]) -> str:
    """The canonical text of a tag list: ``a=1; b=2`` (the inverse of :func:`parse_tag_list`)."""
    return "; ".join(f"{name}={value}" for name, value in tags.items())


def _quote(text: str, limit: int = 40) -> str:
    """``repr`` of ``text``, cut to ``limit`` characters so errors never carry whole records."""
    return repr(text if len(text) <= limit else text[:limit] + "...")
