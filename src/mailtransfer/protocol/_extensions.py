"""What the server offers: the service extensions listed in its EHLO reply.

Strategy: the first line of a 250 reply to EHLO (or LHLO) names the server;
every later line is an ``ehlo-line`` (RFC 5321 section 4.1.1.1), a keyword
and its parameters. :meth:`Extensions.from_ehlo` keeps every keyword in a
read-only mapping and also decodes the ones the client acts on into typed
fields, so the rest of the core reads ``extensions.pipelining`` or
``extensions.size`` instead of parsing strings. A line that is not a valid
ehlo-line is skipped, not an error: servers send odd lines, and refusing to
talk to them over an extension the client may never use helps nobody.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ._reply import Reply

__all__ = ["Extensions"]

# RFC 5321 section 4.1.1.1: ehlo-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
_KEYWORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")

# Before RFC 2554 was final some servers advertised "AUTH=LOGIN PLAIN"; a few
# still do, next to or instead of the standard "AUTH LOGIN PLAIN" line.
_OLD_AUTH_PREFIX = "AUTH="

_EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True, kw_only=True)
class Extensions:
    """The service extensions a server advertised in its reply to EHLO or LHLO.

    Build it with :meth:`from_ehlo`, :meth:`from_helo` or :meth:`empty`;
    direct construction is meant for tests and does not cross-check the
    typed fields against ``keywords``.

    Example:
        >>> ext = Extensions.from_ehlo(
        ...     Reply(250, ("mx.example.org hello", "PIPELINING", "SIZE 10240000", "AUTH PLAIN"))
        ... )
        >>> ext.pipelining, ext.size, sorted(ext.auth), ext.has("size")
        (True, 10240000, ['PLAIN'], True)
    """

    domain: str = ""
    """The server's name: the first word of the reply's first line."""
    keywords: Mapping[str, str] = field(default_factory=lambda: _EMPTY, hash=False)
    """Every advertised keyword, upper-cased, mapped to its parameters joined by
    single spaces (``""`` when it has none). Read-only. A keyword listed twice
    keeps the parameters of its first line."""
    pipelining: bool = False
    """``PIPELINING`` (RFC 2920): commands may be sent without waiting for each reply."""
    eightbitmime: bool = False
    """``8BITMIME`` (RFC 6152): ``BODY=8BITMIME`` is accepted."""
    smtputf8: bool = False
    """``SMTPUTF8`` (RFC 6531): UTF-8 addresses and headers are accepted."""
    chunking: bool = False
    """``CHUNKING`` (RFC 3030): ``BDAT`` may be used instead of ``DATA``."""
    binarymime: bool = False
    """``BINARYMIME`` (RFC 3030): ``BODY=BINARYMIME`` is accepted, with ``BDAT`` only."""
    dsn: bool = False
    """``DSN`` (RFC 3461): ``RET``, ``ENVID``, ``NOTIFY`` and ``ORCPT`` are accepted."""
    requiretls: bool = False
    """``REQUIRETLS`` (RFC 8689): the ``REQUIRETLS`` MAIL parameter is accepted."""
    starttls: bool = False
    """``STARTTLS`` (RFC 3207): the session can be upgraded to TLS."""
    enhancedstatuscodes: bool = False
    """``ENHANCEDSTATUSCODES`` (RFC 2034): replies carry RFC 3463 codes."""
    size: int | None = None
    """The ``SIZE`` limit in bytes (RFC 1870). None: SIZE not advertised, or its
    parameter is not a number (the keyword is still in ``keywords``); 0: SIZE
    advertised without a fixed limit."""
    auth: frozenset[str] = frozenset()
    """The upper-cased SASL mechanisms from ``AUTH`` lines (RFC 4954), merged
    with those of the old ``AUTH=`` form."""

    def __post_init__(self) -> None:
        # Copy and freeze what the caller gave, so the value stays immutable even
        # if the caller later changes its own dict.
        if self.keywords is not _EMPTY:
            object.__setattr__(self, "keywords", MappingProxyType(dict(self.keywords)))

    @classmethod
    def empty(cls) -> Extensions:
        """The state before EHLO, or after STARTTLS (RFC 3207 section 4.2): nothing offered.

        Returns:
            Extensions with no domain and no keywords.
        """
        return cls()

    @classmethod
    def from_helo(cls, reply: Reply) -> Extensions:
        """Read the reply to ``HELO``, which offers no extensions (RFC 5321 section 4.1.1.1).

        Args:
            reply: the server's reply; the caller has checked that it is a success.

        Returns:
            Extensions with only ``domain`` set.
        """
        return cls(domain=_first_word(reply))

    @classmethod
    def from_ehlo(cls, reply: Reply) -> Extensions:
        """Read the extensions listed in a reply to ``EHLO`` or ``LHLO``.

        Keywords are case-insensitive and stored upper-cased; lines that are
        not valid ehlo-lines are skipped.

        Args:
            reply: the server's reply; the caller has checked that it is a success.

        Returns:
            The advertised extensions.
        """
        keywords: dict[str, str] = {}
        auth: set[str] = set()
        old_auth: str | None = None
        for line in reply.lines[1:]:
            words = line.split()
            if not words:
                continue
            word = words[0]
            if not word.isascii():
                # Keywords are ASCII; checking first also stops str.upper() from
                # turning a non-ASCII letter into one ("\u017fIZE" -> "SIZE").
                continue
            keyword = word.upper()
            params = words[1:]
            if keyword.startswith(_OLD_AUTH_PREFIX):
                first = word[len(_OLD_AUTH_PREFIX) :]
                mechanisms = [first, *params] if first else params
                auth.update(m.upper() for m in mechanisms)
                if old_auth is None:
                    old_auth = " ".join(mechanisms)
                continue
            if not _KEYWORD.fullmatch(keyword):
                continue
            if keyword == "AUTH":
                auth.update(p.upper() for p in params)
            keywords.setdefault(keyword, " ".join(params))
        if old_auth is not None:
            # Only the old form was sent: still record that AUTH is offered.
            keywords.setdefault("AUTH", old_auth)
        return cls.from_keywords(_first_word(reply), keywords, auth=auth)

    @classmethod
    def from_keywords(
        cls, domain: str, keywords: Mapping[str, str], *, auth: Iterable[str] | None = None
    ) -> Extensions:
        """Build the value from a keyword mapping, deriving every typed field from it.

        Args:
            domain: the server's name.
            keywords: keyword to its parameter string; keywords are upper-cased.
            auth: the SASL mechanisms; by default the words of ``keywords["AUTH"]``.

        Returns:
            The extensions, their typed fields consistent with ``keywords``.
        """
        keywords = {key.upper(): value for key, value in keywords.items()}
        if auth is None:
            auth = keywords.get("AUTH", "").split()
        return cls(
            domain=domain,
            keywords=keywords,
            pipelining="PIPELINING" in keywords,
            eightbitmime="8BITMIME" in keywords,
            smtputf8="SMTPUTF8" in keywords,
            chunking="CHUNKING" in keywords,
            binarymime="BINARYMIME" in keywords,
            dsn="DSN" in keywords,
            requiretls="REQUIRETLS" in keywords,
            starttls="STARTTLS" in keywords,
            enhancedstatuscodes="ENHANCEDSTATUSCODES" in keywords,
            size=_parse_size(keywords.get("SIZE")),
            auth=frozenset(m.upper() for m in auth),
        )

    def has(self, keyword: str) -> bool:
        """Whether the server advertised ``keyword``, compared case-insensitively.

        Args:
            keyword: an EHLO keyword such as ``"pipelining"`` or ``"X-EXPS"``.

        Returns:
            True when the keyword was in the EHLO reply.
        """
        return keyword.upper() in self.keywords


def _first_word(reply: Reply) -> str:
    words = reply.lines[0].split(maxsplit=1) if reply.lines else []
    return words[0] if words else ""


def _parse_size(params: str | None) -> int | None:
    # RFC 1870 section 4: size-param = [1*DIGIT]; no number, or 0, means no fixed
    # limit. Anything else is malformed and read as "no usable limit known" (None),
    # so the client neither sends SIZE= nor refuses a message on a guess.
    if params is None:
        return None
    if not params:
        return 0
    if not (params.isascii() and params.isdigit()):
        return None
    try:
        return int(params)
    except ValueError:  # more digits than int() converts (sys.int_info.str_digits_check_threshold)
        return None
