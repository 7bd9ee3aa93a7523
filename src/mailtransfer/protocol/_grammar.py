"""The RFC 5321 / RFC 6531 grammar: mailboxes, domains, ESMTP parameters, xtext.

Strategy: each ABNF rule we need is copied in as a named regex fragment with
the rule quoted above it (as h11's ``_abnf.py`` does). Every fragment is
written so that a string can be taken apart in only one way: repetitions are
separated by a character the repeated part cannot contain (``atom`` by ``.``,
alphanumeric runs by ``-``), and the address-literal forms have bounded
repetition counts. So matching is linear in the input, and a hostile
100 KB string costs one pass, never exponential backtracking.

Parsers ``match`` the longest valid prefix and look at the character where it
stops; that is how error messages can say *what* is wrong and *where*
(positions count from 0), without echoing the argument itself.

Every command argument, whatever its grammar, first goes through
:func:`check_argument`, which refuses the C0 controls and DEL: CR or LF in an
argument would let a caller's data end the command line and start another
(command injection, THREATS.md S2; python/cpython bpo-43124).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import NoReturn

from ._errors import InvalidAddress, InvalidArgument

__all__ = [
    "Mailbox",
    "check_argument",
    "check_esmtp_keyword",
    "check_esmtp_value",
    "parse_domain",
    "parse_mailbox",
    "parse_reverse_path",
    "xtext_decode",
    "xtext_encode",
]

# --- Fragments ---------------------------------------------------------------

# RFC 6532 section 3.1: UTF8-non-ascii = UTF8-2 / UTF8-3 / UTF8-4, seen here as
# code points. Surrogates cannot be encoded as UTF-8, and the C1 controls
# (U+0080-U+009F) are left out as well: RFC 5198 section 2 keeps them out of
# network text, and some of them (U+0085) are line breaks to other software.
_UTF8_NON_ASCII = "\u00a0-\ud7ff\ue000-\U0010ffff"

# RFC 5322 section 3.2.3, extended by RFC 6531 section 3.3:
#   atext = ALPHA / DIGIT / "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" /
#           "/" / "=" / "?" / "^" / "_" / "`" / "{" / "|" / "}" / "~"
#   atext =/ UTF8-non-ascii
_ATEXT = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~" + _UTF8_NON_ASCII + "-]"

# RFC 5321 section 4.1.2:
#   Atom       = 1*atext
#   Dot-string = Atom *("." Atom)
_DOT_STRING = rf"{_ATEXT}+(?:\.{_ATEXT}+)*"

# RFC 5321 section 4.1.2, extended by RFC 6531 section 3.3:
#   qtextSMTP       = %d32-33 / %d35-91 / %d93-126
#   qtextSMTP       =/ UTF8-non-ascii
#   quoted-pairSMTP = %d92 %d32-126
#   Quoted-string   = DQUOTE *QcontentSMTP DQUOTE
# qtextSMTP and quoted-pairSMTP start with different characters, so the
# repetition is unambiguous. The closing DQUOTE is checked by the scanner.
_QTEXT_SMTP = "[ !#-\\[\\]-~" + _UTF8_NON_ASCII + "]"
_QUOTED_PAIR_SMTP = r"\\[ -~]"
_QUOTED_STRING_OPEN = rf'"(?:{_QTEXT_SMTP}|{_QUOTED_PAIR_SMTP})*'

# RFC 5321 section 4.1.2:
#   sub-domain = Let-dig [Ldh-str]
#   Let-dig    = ALPHA / DIGIT
#   Ldh-str    = *( ALPHA / DIGIT / "-" ) Let-dig
#   Domain     = sub-domain *("." sub-domain)
# written as runs of Let-dig separated by runs of "-" (the same language, one
# parse). RFC 6531 section 3.3 adds "sub-domain =/ U-label"; U-label syntax
# proper is IDNA's business, so a non-ASCII character counts as a Let-dig
# here, except the three dots that IDNA treats as label separators (U+3002,
# U+FF0E, U+FF61), which would make the envelope and the DNS name disagree.
_LET_DIG = "[A-Za-z0-9]"
_SUB_DOMAIN = rf"{_LET_DIG}+(?:-+{_LET_DIG}+)*"
_DOMAIN = rf"{_SUB_DOMAIN}(?:\.{_SUB_DOMAIN})*"
_U_LET_DIG = "[A-Za-z0-9\u00a0-\u3001\u3003-\ud7ff\ue000-\uff0d\uff0f-\uff60\uff62-\U0010ffff]"
_U_SUB_DOMAIN = rf"{_U_LET_DIG}+(?:-+{_U_LET_DIG}+)*"
_U_DOMAIN = rf"{_U_SUB_DOMAIN}(?:\.{_U_SUB_DOMAIN})*"

# RFC 5321 section 4.1.3:
#   IPv4-address-literal = Snum 3("." Snum)
#   Snum = 1*3DIGIT ; representing a decimal integer value in the range 0 through 255
_SNUM = "(?:25[0-5]|2[0-4][0-9]|[01]?[0-9]?[0-9])"
_IPV4 = rf"{_SNUM}(?:\.{_SNUM}){{3}}"

# RFC 5321 section 4.1.3:
#   IPv6-hex    = 1*4HEXDIG
#   IPv6-full   = IPv6-hex 7(":" IPv6-hex)
#   IPv6-comp   = [IPv6-hex *5(":" IPv6-hex)] "::" [IPv6-hex *5(":" IPv6-hex)]
#   IPv6v4-full = IPv6-hex 5(":" IPv6-hex) ":" IPv4-address-literal
#   IPv6v4-comp = [IPv6-hex *3(":" IPv6-hex)] "::" [IPv6-hex *3(":" IPv6-hex) ":"]
#                 IPv4-address-literal
# The prose limits the compressed forms to 6 (resp. 4) groups besides "::";
# _ipv6_ok() checks those counts.
_H = "[0-9A-Fa-f]{1,4}"
_IPV6_FULL = rf"{_H}(?::{_H}){{7}}"
_IPV6_COMP = rf"(?:{_H}(?::{_H}){{0,5}})?::(?:{_H}(?::{_H}){{0,5}})?"
_IPV6V4_FULL = rf"{_H}(?::{_H}){{5}}:{_IPV4}"
_IPV6V4_COMP = rf"(?:{_H}(?::{_H}){{0,3}})?::(?:{_H}(?::{_H}){{0,3}}:)?{_IPV4}"

# RFC 5321 section 4.1.3:
#   General-address-literal = Standardized-tag ":" 1*dcontent
#   Standardized-tag        = Ldh-str
#   dcontent                = %d33-90 / %d94-126
_GENERAL_LITERAL = r"(?:-*[A-Za-z0-9])+:[!-Z^-~]+"

# RFC 5321 section 4.1.2:
#   esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
#   esmtp-value   = 1*(%d33-60 / %d62-126)
# RFC 6531 section 3.3: esmtp-value =/ UTF8-non-ascii
_ESMTP_KEYWORD = "[A-Za-z0-9][A-Za-z0-9-]*"
_ESMTP_VALUE = "[!-<>-~]+"
_ESMTP_VALUE_UTF8 = f"[!-<>-~{_UTF8_NON_ASCII}]+"

# RFC 3461 section 4:
#   xtext   = *( xchar / hexchar )
#   xchar   = any ASCII CHAR between "!" (33) and "~" (126) inclusive,
#             except for "+" and "=".
#   hexchar = ASCII "+" immediately followed by two upper case hexadecimal digits
_XCHAR = "[!-*,-<>-~]"
_XTEXT = f"(?:{_XCHAR}|\\+[0-9A-F]{{2}})*"

_CONTROL_RE = re.compile("[\x00-\x1f\x7f]")
_DOT_STRING_RE = re.compile(_DOT_STRING)
_QUOTED_STRING_OPEN_RE = re.compile(_QUOTED_STRING_OPEN)
_DOMAIN_RE = re.compile(_DOMAIN)
_U_DOMAIN_RE = re.compile(_U_DOMAIN)
_IPV4_RE = re.compile(_IPV4)
_IPV6_RE = re.compile(
    f"(?P<full>{_IPV6_FULL})|(?P<comp>{_IPV6_COMP})"
    f"|(?P<v4full>{_IPV6V4_FULL})|(?P<v4comp>{_IPV6V4_COMP})"
)
_GENERAL_LITERAL_RE = re.compile(_GENERAL_LITERAL)
_ESMTP_KEYWORD_RE = re.compile(_ESMTP_KEYWORD)
_ESMTP_VALUE_RE = re.compile(_ESMTP_VALUE)
_ESMTP_VALUE_UTF8_RE = re.compile(_ESMTP_VALUE_UTF8)
_XTEXT_RE = re.compile(_XTEXT)
_XTEXT_SPECIAL_RE = re.compile(b"[^!-*,-<>-~]")
_HEXCHAR_RE = re.compile(r"\+([0-9A-F]{2})")

# RFC 5321 section 4.5.3.1: size limits, in octets.
_MAX_LOCAL_PART = 64
_MAX_DOMAIN = 255
_MAX_PATH = 256  # "<" Mailbox ">"
_MAX_LABEL = 63  # RFC 1035 section 2.3.4


# --- Control characters --------------------------------------------------------


def check_argument(value: str, *, name: str) -> str:
    """Refuse a command argument that contains a C0 control character or DEL.

    Args:
        value: the argument, exactly as it would be written after the command.
        name: what the argument is, for the error message (``"EHLO name"``).

    Returns:
        ``value``, unchanged.

    Raises:
        InvalidArgument: ``value`` is not a ``str``, or holds a character in
            0x00-0x1F or 0x7F (CR, LF, NUL, TAB...). The message names the
            character and its position, never the value.
    """
    if not isinstance(value, str):
        raise InvalidArgument(f"{name} must be str, but got {type(value).__name__}")
    _refuse_controls(value, name, InvalidArgument)
    return value


def _refuse_controls(value: str, name: str, error: type[InvalidArgument]) -> None:
    found = _CONTROL_RE.search(value)
    if found is not None:
        raise error(
            f"{name} must not contain control characters, "
            f"but has {found.group()!r} at position {found.start()}"
        )


# --- Mailboxes -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Mailbox:
    """A valid RFC 5321 ``Mailbox`` (RFC 6531 when non-ASCII): ``local-part@domain``.

    Constructing one validates it, so an invalid mailbox cannot exist.
    ``local_part`` keeps the exact spelling, quotes included, and ``domain``
    is a domain name (possibly with U-labels) or an address literal such as
    ``[192.0.2.1]``; ``str()`` gives back exactly what was parsed.

    Example:
        >>> box = parse_mailbox("user@example.org")
        >>> (box.local_part, box.domain, str(box))
        ('user', 'example.org', 'user@example.org')

    Raises:
        InvalidAddress: on construction, when the parts break the grammar or
            the RFC 5321 section 4.5.3.1 size limits.
    """

    local_part: str
    domain: str

    def __post_init__(self) -> None:
        for part in (self.local_part, self.domain):
            if not isinstance(part, str):
                raise InvalidAddress(f"Mailbox parts must be str, but got {type(part).__name__}")
        _refuse_controls(str(self), "address", InvalidAddress)
        end = _scan_local_part(self.local_part, 0)
        if end != len(self.local_part):
            _fail_at(self.local_part, end)
        _check_domain_or_literal(self.domain, len(self.local_part) + 1)
        if _octets(self.local_part) > _MAX_LOCAL_PART:
            raise InvalidAddress(
                f"address local part is {_octets(self.local_part)} octets long; "
                f"the limit is {_MAX_LOCAL_PART} (RFC 5321 section 4.5.3.1.1)"
            )
        path = _octets(self.local_part) + 1 + _octets(self.domain) + 2
        if path > _MAX_PATH:
            raise InvalidAddress(
                f"address is {path - 2} octets long; the limit is {_MAX_PATH - 2} "
                "(RFC 5321 section 4.5.3.1.3)"
            )

    @property
    def needs_smtputf8(self) -> bool:
        """Whether the local part is non-ASCII, so only SMTPUTF8 (RFC 6531) can carry it.

        A non-ASCII domain alone does not need SMTPUTF8: see :meth:`ascii_domain`.
        """
        return not self.local_part.isascii()

    def __str__(self) -> str:
        return f"{self.local_part}@{self.domain}"

    def ascii_domain(self) -> str:
        """The domain in ASCII form: U-labels converted to A-labels (``xn--``).

        Uses the standard library's ``idna`` codec, which implements IDNA 2003
        (RFC 3490), not IDNA 2008 (RFC 5891): a few labels differ (``ß`` maps
        to ``ss``, characters added to Unicode after 3.2 are refused). Pass an
        A-label domain yourself, or use SMTPUTF8, where that matters.

        Returns:
            The domain unchanged when it is already ASCII (address literals
            always are), else its A-label form.

        Raises:
            InvalidAddress: the domain cannot be IDNA-encoded, or encodes to
                something that is not a valid RFC 5321 domain.
        """
        return _to_a_labels(self.domain, InvalidAddress)

    def to_ascii(self) -> str:
        """The mailbox as a plain ASCII ``local@domain``, for a server without SMTPUTF8.

        Returns:
            ``local_part@ascii_domain()``.

        Raises:
            InvalidAddress: the local part is non-ASCII (no ASCII form exists;
                the message needs SMTPUTF8), or the domain cannot be encoded.
        """
        if self.needs_smtputf8:
            raise InvalidAddress(
                "address local part is not ASCII; it can only be sent with SMTPUTF8 (RFC 6531)"
            )
        return f"{self.local_part}@{self.ascii_domain()}"


def parse_mailbox(address: str) -> Mailbox:
    """Parse a bare RFC 5321 ``Mailbox`` (``local@domain``, no angle brackets).

    Results are cached: bulk senders parse the same addresses over and over,
    and a :class:`Mailbox` is immutable. Failures are not cached.

    The local part is a Dot-string or a Quoted-string, non-ASCII allowed as in
    RFC 6531; the domain is a domain name or an address literal
    (``[192.0.2.1]``, ``[IPv6:2001:db8::1]``, ``[tag:content]``).

    Args:
        address: the address, without ``<`` ``>``.

    Returns:
        The parsed :class:`Mailbox`; ``str()`` of it equals ``address``.

    Raises:
        InvalidAddress: the address is malformed or too long. The message says
            what is wrong and at which position (counting from 0).
    """
    if not isinstance(address, str):
        raise InvalidAddress(f"address must be str, but got {type(address).__name__}")
    return _parse_mailbox(address)


@functools.lru_cache(maxsize=8192)
def _parse_mailbox(address: str) -> Mailbox:
    # Most addresses are plain ASCII: one match checks them whole, and the Mailbox is
    # made without checking the parts again. Anything else takes the general path,
    # which also says what is wrong and where.
    found = _PLAIN_MAILBOX_RE.fullmatch(address)
    if found is not None:
        local_part, domain = found.group(1, 2)
        if (
            len(local_part) <= _MAX_LOCAL_PART
            and len(address) + 2 <= _MAX_PATH
            and (len(domain) <= _MAX_LABEL or _labels_fit(domain))
        ):
            box: Mailbox = _NEW_OBJECT(Mailbox)
            _SET_LOCAL_PART(box, local_part)
            _SET_DOMAIN(box, domain)
            return box
    return _parse_general(address)


def _labels_fit(domain: str) -> bool:
    return all(len(label) <= _MAX_LABEL for label in domain.split("."))


def _parse_general(address: str) -> Mailbox:
    if address == "":
        raise InvalidAddress("address is empty (the null sender is for parse_reverse_path)")
    _refuse_controls(address, "address", InvalidAddress)
    end = _scan_local_part(address, 0)
    if end == len(address):
        raise InvalidAddress("address has no '@'")
    if address[end] != "@":
        _fail_at(address, end)
    return Mailbox(address[:end], address[end + 1 :])


# The plain ASCII form of a Mailbox: a Dot-string of ASCII atext, "@", an ASCII Domain.
# The lengths are checked after the match.
_ATEXT_ASCII = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_PLAIN_MAILBOX_RE = re.compile(f"({_ATEXT_ASCII}+(?:\\.{_ATEXT_ASCII}+)*)@({_DOMAIN})")
_NEW_OBJECT = object.__new__
_SET_LOCAL_PART = vars(Mailbox)["local_part"].__set__
_SET_DOMAIN = vars(Mailbox)["domain"].__set__


def parse_reverse_path(address: str) -> Mailbox | None:
    """Parse a ``MAIL FROM`` address, where ``""`` is the null reverse-path ``<>``.

    Args:
        address: the sender address without angle brackets, or ``""``.

    Returns:
        ``None`` for the null sender (bounces, RFC 5321 section 4.5.5), else
        the parsed :class:`Mailbox`.

    Raises:
        InvalidAddress: as :func:`parse_mailbox`.
    """
    if address == "":
        return None
    return parse_mailbox(address)


def parse_domain(name: str) -> str:
    """Validate an ``EHLO``/``HELO`` argument: a domain name or an address literal.

    RFC 6531 section 3.7.1 requires A-labels in EHLO (the client does not yet
    know whether the server has SMTPUTF8), so a name with U-labels is
    converted with the standard library's IDNA 2003 codec.

    Args:
        name: e.g. ``"mail.example.org"`` or ``"[192.0.2.1]"``.

    Returns:
        The name as it goes on the wire: unchanged when ASCII, else A-labels.

    Raises:
        InvalidArgument: not a domain or an address literal, too long, or not
            IDNA-encodable.
    """
    check_argument(name, name="EHLO name")
    _check_domain_or_literal(name, 0, "EHLO name", InvalidArgument)
    return _to_a_labels(name, InvalidArgument)


# --- Mailbox helpers ---------------------------------------------------------------


def _octets(text: str) -> int:
    return len(text.encode("utf-8"))


def _scan_local_part(text: str, start: int) -> int:
    """Return where the Local-part starting at ``start`` ends; raise if there is none."""
    if text.startswith('"', start):
        found = _QUOTED_STRING_OPEN_RE.match(text, start)
        assert found is not None  # the pattern matches any string starting with DQUOTE
        end = found.end()
        if end == len(text):
            raise InvalidAddress(f"address has an unterminated quoted string at position {start}")
        if text[end] != '"':
            if text[end] == "\\":
                end += 1  # the character after the backslash is the bad one
            _fail_at(text, end)
        return end + 1
    found = _DOT_STRING_RE.match(text, start)
    if found is None:
        if text.startswith("@", start):
            raise InvalidAddress("address has an empty local part")
        _fail_at(text, start)
    return found.end()


def _fail_at(
    text: str,
    pos: int,
    offset: int = 0,
    what: str = "address",
    error: type[InvalidArgument] = InvalidAddress,
) -> NoReturn:
    """Raise ``error`` naming the character at ``pos``, reported at ``offset + pos``."""
    if pos >= len(text):
        raise error(f"{what} ends unexpectedly at position {offset + pos}")
    char = text[pos]
    if char == ".":
        hint = " (a leading, trailing or doubled dot)"
    elif char == "-":
        hint = " (a domain label must not start or end with '-')"
    else:
        hint = ""
    raise error(f"{what} has an unexpected {char!r} at position {offset + pos}{hint}")


def _check_domain_or_literal(
    domain: str,
    offset: int,
    what: str = "address",
    error: type[InvalidArgument] = InvalidAddress,
) -> None:
    """Validate a Domain or address-literal; error positions are shifted by ``offset``."""
    if domain.startswith("["):
        if not _address_literal_ok(domain):
            raise error(
                f"{what} has an address literal at position {offset} that is not "
                "[IPv4], [IPv6:address] or [tag:content] with a closing ']'"
            )
        return
    if domain == "":
        raise error(f"{what} has an empty domain")
    found = _U_DOMAIN_RE.match(domain)
    end = 0 if found is None else found.end()
    if end != len(domain):
        if end > 0 and domain[end] == ".":
            # The dot is fine; what follows it is not a label.
            end += 1
            if end == len(domain):
                raise error(f"{what} ends with '.' at position {offset + end - 1}")
        _fail_at(domain, end, offset, what, error)
    if _octets(domain) > _MAX_DOMAIN:
        raise error(
            f"{what} has a domain of {_octets(domain)} octets; the limit is {_MAX_DOMAIN} "
            "(RFC 5321 section 4.5.3.1.2)"
        )
    for label in domain.split("."):
        if label.isascii() and len(label) > _MAX_LABEL:
            raise error(
                f"{what} has a domain label of {len(label)} characters; the limit is {_MAX_LABEL}"
            )


def _address_literal_ok(literal: str) -> bool:
    if len(literal) < 3 or not literal.endswith("]"):
        return False
    inner = literal[1:-1]
    if inner[:5].lower() == "ipv6:":
        return _ipv6_ok(inner[5:])
    return _IPV4_RE.fullmatch(inner) is not None or _GENERAL_LITERAL_RE.fullmatch(inner) is not None


def _ipv6_ok(text: str) -> bool:
    found = _IPV6_RE.fullmatch(text)
    if found is None:
        return False
    if found.lastgroup in ("full", "v4full"):
        return True
    # "::" stands for at least two zero groups, so at most 6 hex groups may be
    # written out, or 4 plus the IPv4 part (RFC 5321 section 4.1.3).
    left, right = text.split("::")
    pieces = (len(left.split(":")) if left else 0) + (len(right.split(":")) if right else 0)
    return pieces <= (6 if found.lastgroup == "comp" else 5)


def _to_a_labels(domain: str, error: type[InvalidArgument]) -> str:
    if domain.isascii():
        return domain
    try:
        encoded = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise error("domain cannot be converted to IDNA A-labels") from None
    # IDNA 2003 nameprep can map to ASCII punctuation (U+2100 becomes "a/c").
    if _DOMAIN_RE.fullmatch(encoded) is None or len(encoded) > _MAX_DOMAIN:
        raise error("domain does not convert to a valid ASCII domain name with IDNA")
    return encoded


# --- ESMTP parameters and xtext ------------------------------------------------------


def check_esmtp_keyword(keyword: str) -> str:
    """Validate an ESMTP parameter keyword (RFC 5321 section 4.1.2 ``esmtp-keyword``).

    Args:
        keyword: e.g. ``"SIZE"`` or ``"X-FOO"``.

    Returns:
        ``keyword``, unchanged.

    Raises:
        InvalidArgument: empty, a control character, or a character other than
            letters, digits and ``-`` (not first).
    """
    check_argument(keyword, name="ESMTP keyword")
    if _ESMTP_KEYWORD_RE.fullmatch(keyword) is None:
        raise InvalidArgument(
            "ESMTP keyword must be a letter or digit followed by letters, digits or '-'"
        )
    return keyword


def check_esmtp_value(value: str, *, smtputf8: bool = False, name: str = "ESMTP value") -> str:
    """Validate an ESMTP parameter value (RFC 5321 section 4.1.2 ``esmtp-value``).

    Args:
        value: the text after ``=``.
        smtputf8: allow non-ASCII characters (RFC 6531 section 3.3); only when
            the server offers SMTPUTF8 and the transaction uses it.
        name: what the value is, for the error message (``"ENVID"``).

    Returns:
        ``value``, unchanged.

    Raises:
        InvalidArgument: empty, or a control character, space, ``=`` or (unless
            ``smtputf8``) non-ASCII character.
    """
    check_argument(value, name=name)
    pattern = _ESMTP_VALUE_UTF8_RE if smtputf8 else _ESMTP_VALUE_RE
    if pattern.fullmatch(value) is None:
        allowed = "printable characters" if smtputf8 else "printable ASCII"
        raise InvalidArgument(f"{name} must be one or more {allowed} other than space and '='")
    return value


def xtext_encode(value: str) -> str:
    """Encode text as RFC 3461 section 4 ``xtext``, for ``ENVID`` and ``ORCPT``.

    Characters outside ``!``..``~``, and ``+`` and ``=``, become ``+HH``. A
    non-ASCII character becomes the ``+HH`` escapes of its UTF-8 octets.

    Args:
        value: any text.

    Returns:
        The xtext form, printable ASCII only.

    Raises:
        InvalidArgument: ``value`` holds a lone surrogate (not UTF-8 encodable).

    Example:
        >>> xtext_encode("a+b=c d")
        'a+2Bb+3Dc+20d'
    """
    try:
        raw = value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgument("xtext value cannot be encoded as UTF-8") from None
    return _XTEXT_SPECIAL_RE.sub(lambda m: f"+{m.group()[0]:02X}".encode("ascii"), raw).decode(
        "ascii"
    )


def xtext_decode(value: str) -> str:
    """Decode RFC 3461 section 4 ``xtext``; the inverse of :func:`xtext_encode`.

    Args:
        value: xtext, as found in ``ENVID=`` or ``ORCPT=``.

    Returns:
        The decoded text (octets from ``+HH`` decoded as UTF-8).

    Raises:
        InvalidArgument: a character that xtext does not allow, a ``+`` not
            followed by two upper-case hex digits, or octets that are not UTF-8.
    """
    check_argument(value, name="xtext value")
    if _XTEXT_RE.fullmatch(value) is None:
        raise InvalidArgument("xtext value must be '!'..'~' except '+' and '=', or '+HH' escapes")
    raw = _HEXCHAR_RE.sub(lambda m: chr(int(m.group(1), 16)), value).encode("latin-1")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidArgument("xtext value does not decode to UTF-8") from None
