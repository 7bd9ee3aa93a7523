"""Commands the client sends, and the events the core hands back.

Strategy: every command is a frozen dataclass that validates its arguments
when it is built (h11 ``_events`` style), so an invalid command cannot exist
and bad input fails before a byte is produced. ``to_bytes()`` renders the
exact wire line; ``redacted()`` renders the line for transcripts and logs,
never showing a credential. Don't subclass these.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from ._errors import InvalidAddress, InvalidArgument, Stage
from ._grammar import (
    Mailbox,
    check_argument,
    check_esmtp_keyword,
    check_esmtp_value,
    parse_domain,
    parse_mailbox,
    parse_reverse_path,
    xtext_encode,
)
from ._reply import Reply

__all__ = [
    "NEED_DATA",
    "Auth",
    "AuthResponse",
    "Bdat",
    "Command",
    "ConnectionClosed",
    "Data",
    "Ehlo",
    "EndOfData",
    "Helo",
    "Lhlo",
    "MailFrom",
    "Noop",
    "NeedData",
    "Quit",
    "RcptTo",
    "Response",
    "Rset",
    "StartTLS",
    "Verb",
    "Vrfy",
]

BodyType = Literal["7BIT", "8BITMIME", "BINARYMIME"]
Ret = Literal["FULL", "HDRS"]
Notify = Literal["NEVER", "SUCCESS", "FAILURE", "DELAY"]

_CRLF = b"\r\n"
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")


def _ascii(line: str) -> bytes:
    return line.encode("utf-8") + _CRLF


@dataclass(frozen=True, slots=True)
class Ehlo:
    """``EHLO name`` (RFC 5321 4.1.1.1): opens the session and asks for extensions."""

    name: str
    verb: ClassVar[str] = "EHLO"
    stage: ClassVar[Stage] = Stage.EHLO

    def __post_init__(self) -> None:
        # Keep the wire form: U-labels become A-labels (RFC 6531 3.7.1).
        object.__setattr__(self, "name", parse_domain(self.name))

    def to_bytes(self) -> bytes:
        """The exact line written to the wire."""
        return _ascii(f"EHLO {self.name}")

    def redacted(self) -> str:
        """The line as shown in transcripts and logs."""
        return f"EHLO {self.name}"


@dataclass(frozen=True, slots=True)
class Helo:
    """``HELO name``: the RFC 821 greeting, used when a server refuses EHLO."""

    name: str
    verb: ClassVar[str] = "HELO"
    stage: ClassVar[Stage] = Stage.HELO

    def __post_init__(self) -> None:
        # Keep the wire form: U-labels become A-labels (RFC 6531 3.7.1).
        object.__setattr__(self, "name", parse_domain(self.name))

    def to_bytes(self) -> bytes:
        """The exact line written to the wire."""
        return _ascii(f"HELO {self.name}")

    def redacted(self) -> str:
        """The line as shown in transcripts and logs."""
        return f"HELO {self.name}"


@dataclass(frozen=True, slots=True)
class Lhlo:
    """``LHLO name``: the LMTP greeting (RFC 2033 4.1)."""

    name: str
    verb: ClassVar[str] = "LHLO"
    stage: ClassVar[Stage] = Stage.EHLO

    def __post_init__(self) -> None:
        # Keep the wire form: U-labels become A-labels (RFC 6531 3.7.1).
        object.__setattr__(self, "name", parse_domain(self.name))

    def to_bytes(self) -> bytes:
        """The exact line written to the wire."""
        return _ascii(f"LHLO {self.name}")

    def redacted(self) -> str:
        """The line as shown in transcripts and logs."""
        return f"LHLO {self.name}"


@dataclass(frozen=True, slots=True)
class _Bare:
    """A command with no argument."""

    verb: ClassVar[str] = ""
    stage: ClassVar[Stage] = Stage.OTHER
    _wire: ClassVar[bytes] = b""

    def __init_subclass__(cls) -> None:
        # The line never changes: render it once per class, not once per send. (No
        # super() call: slots=True rebuilds the class, which breaks its zero-argument form,
        # and object.__init_subclass__ does nothing.)
        cls._wire = cls.verb.encode("ascii") + _CRLF

    def to_bytes(self) -> bytes:
        """The exact line written to the wire."""
        return self._wire

    def redacted(self) -> str:
        """The line as shown in transcripts and logs."""
        return self.verb


@dataclass(frozen=True, slots=True)
class StartTLS(_Bare):
    """``STARTTLS`` (RFC 3207). Always sent alone, never pipelined."""

    verb: ClassVar[str] = "STARTTLS"
    stage: ClassVar[Stage] = Stage.STARTTLS


@dataclass(frozen=True, slots=True)
class Data(_Bare):
    """``DATA``: asks for the 354 go-ahead before the message body."""

    verb: ClassVar[str] = "DATA"
    stage: ClassVar[Stage] = Stage.DATA


@dataclass(frozen=True, slots=True)
class Rset(_Bare):
    """``RSET``: aborts the current mail transaction."""

    verb: ClassVar[str] = "RSET"
    stage: ClassVar[Stage] = Stage.RSET


@dataclass(frozen=True, slots=True)
class Noop(_Bare):
    """``NOOP``: a health check; changes nothing."""

    verb: ClassVar[str] = "NOOP"
    stage: ClassVar[Stage] = Stage.NOOP


@dataclass(frozen=True, slots=True)
class Quit(_Bare):
    """``QUIT``: asks the server to close the session."""

    verb: ClassVar[str] = "QUIT"
    stage: ClassVar[Stage] = Stage.QUIT


@dataclass(frozen=True, slots=True)
class EndOfData:
    """The end-of-data mark (``CRLF . CRLF``) after a DATA body.

    Not a command of its own on the wire, but it gets a reply of its own,
    and once it is written the message may be delivered: the reply to it
    decides whether a retry could duplicate the message.
    """

    verb: ClassVar[str] = "."
    stage: ClassVar[Stage] = Stage.END_OF_DATA

    def to_bytes(self) -> bytes:
        """Only the final dot line; the body encoder supplies the CRLF before it."""
        return b".\r\n"

    def redacted(self) -> str:
        """The line as shown in transcripts and logs."""
        return "."


@dataclass(frozen=True, slots=True)
class Vrfy:
    """``VRFY string`` (RFC 5321 3.5.1)."""

    argument: str
    verb: ClassVar[str] = "VRFY"
    stage: ClassVar[Stage] = Stage.VRFY

    def __post_init__(self) -> None:
        check_argument(self.argument, name="VRFY argument")
        if not self.argument:
            raise InvalidArgument("VRFY argument must not be empty")

    def to_bytes(self) -> bytes:
        """The exact line written to the wire."""
        return _ascii(f"VRFY {self.argument}")

    def redacted(self) -> str:
        """The line as shown in transcripts and logs."""
        return f"VRFY {self.argument}"


@dataclass(frozen=True, slots=True)
class Auth:
    """``AUTH mechanism [initial-response]`` (RFC 4954 4).

    ``initial_response`` is the already base64-encoded text (``=`` for an empty
    one), as :class:`mailtransfer.auth.AuthExchange` produces it. Transcripts
    show ``AUTH PLAIN ****``.
    """

    mechanism: str
    initial_response: str | None = field(default=None, repr=False)
    verb: ClassVar[str] = "AUTH"
    stage: ClassVar[Stage] = Stage.AUTH

    def __post_init__(self) -> None:
        check_esmtp_keyword(self.mechanism)
        if self.initial_response is not None:
            _check_base64(self.initial_response, allow_empty_marker=True)

    def to_bytes(self) -> bytes:
        """The exact line written to the wire."""
        if self.initial_response is None:
            return _ascii(f"AUTH {self.mechanism}")
        return _ascii(f"AUTH {self.mechanism} {self.initial_response}")

    def redacted(self) -> str:
        """The line as shown in transcripts and logs: the response is masked."""
        if self.initial_response is None:
            return f"AUTH {self.mechanism}"
        return f"AUTH {self.mechanism} ****"

    def __repr__(self) -> str:
        return f"Auth({self.redacted()!r})"


@dataclass(frozen=True, slots=True)
class AuthResponse:
    """A client line answering a 334 SASL challenge: base64 text, or ``*`` to cancel."""

    line: str = field(default="", repr=False)
    verb: ClassVar[str] = "AUTH-RESPONSE"
    stage: ClassVar[Stage] = Stage.AUTH

    def __post_init__(self) -> None:
        if self.line != "*":
            _check_base64(self.line, allow_empty_marker=False)

    def to_bytes(self) -> bytes:
        """The exact line written to the wire."""
        return _ascii(self.line)

    def redacted(self) -> str:
        """Always masked, except the ``*`` cancellation: continuation lines carry secrets."""
        return "*" if self.line == "*" else "****"

    def __repr__(self) -> str:
        return f"AuthResponse({self.redacted()!r})"


def _check_base64(text: str, *, allow_empty_marker: bool) -> None:
    if allow_empty_marker and text == "=":
        return
    if not _BASE64.fullmatch(text):
        raise InvalidArgument("an AUTH response must be base64 text (RFC 4954 4)")


@dataclass(frozen=True, slots=True, kw_only=True)
class MailFrom:
    """``MAIL FROM:<sender> [parameters]`` (RFC 5321 4.1.1.2).

    Args:
        sender: the reverse-path; ``""`` is the null sender used for bounces.
        size: the message size in octets, for ``SIZE=`` (RFC 1870).
        body: ``BODY=`` (RFC 6152 8BITMIME, RFC 3030 BINARYMIME).
        smtputf8: add ``SMTPUTF8`` (RFC 6531).
        ret: DSN ``RET=`` (RFC 3461).
        envid: DSN ``ENVID=``, xtext-encoded on the wire.
        requiretls: add ``REQUIRETLS`` (RFC 8689).
        extra: further ``keyword[=value]`` parameters.
    """

    sender: str
    size: int | None = None
    body: BodyType | None = None
    smtputf8: bool = False
    ret: Ret | None = None
    envid: str | None = None
    requiretls: bool = False
    extra: tuple[tuple[str, str | None], ...] = ()
    _line: str = field(init=False, repr=False, compare=False)
    _wire: bytes = field(init=False, repr=False, compare=False)
    verb: ClassVar[str] = "MAIL"
    stage: ClassVar[Stage] = Stage.MAIL

    def __post_init__(self) -> None:
        check_argument(self.sender, name="sender")
        mailbox = parse_reverse_path(self.sender)
        path = "" if mailbox is None else _wire_path(mailbox)
        if not path.isascii() and not self.smtputf8:
            raise InvalidArgument(
                "the sender has a non-ASCII local part (or a domain with no IDNA form): "
                "it needs smtputf8=True"
            )
        if self.size is not None and (type(self.size) is not int or self.size < 0):
            raise InvalidArgument(f"size must be a non-negative int, got {self.size!r}")
        if self.body not in (None, "7BIT", "8BITMIME", "BINARYMIME"):
            raise InvalidArgument(f"body must be 7BIT, 8BITMIME or BINARYMIME, got {self.body!r}")
        if self.ret not in (None, "FULL", "HDRS"):
            raise InvalidArgument(f"ret must be FULL or HDRS, got {self.ret!r}")
        if self.envid is not None:
            check_argument(self.envid, name="envid")
            if not self.envid or len(self.envid) > 100:
                raise InvalidArgument(
                    f"envid must be 1 to 100 characters (RFC 3461 4.4), got {len(self.envid)}"
                )
        object.__setattr__(self, "extra", _check_extra(self.extra))
        # Render now: a value that cannot be encoded fails here, before any state changes.
        line = " ".join([f"MAIL FROM:<{path}>", *self.parameters()])
        object.__setattr__(self, "_line", line)
        object.__setattr__(self, "_wire", _ascii(line))

    def parameters(self) -> list[str]:
        """The ESMTP parameters in wire form."""
        params: list[str] = []
        if self.size is not None:
            params.append(f"SIZE={self.size}")
        if self.body is not None:
            params.append(f"BODY={self.body}")
        if self.smtputf8:
            params.append("SMTPUTF8")
        if self.ret is not None:
            params.append(f"RET={self.ret}")
        if self.envid is not None:
            params.append(f"ENVID={xtext_encode(self.envid)}")
        if self.requiretls:
            params.append("REQUIRETLS")
        params.extend(k if v is None else f"{k}={v}" for k, v in self.extra)
        return params

    def redacted(self) -> str:
        """The line as shown in transcripts and logs (the same as on the wire)."""
        return self._line

    def to_bytes(self) -> bytes:
        """The exact line written to the wire."""
        return self._wire


@dataclass(frozen=True, slots=True, kw_only=True)
class RcptTo:
    """``RCPT TO:<recipient> [parameters]`` (RFC 5321 4.1.1.3).

    Args:
        recipient: the forward-path mailbox.
        notify: DSN ``NOTIFY=`` values (RFC 3461 4.1); ``NEVER`` stands alone.
        orcpt: DSN ``ORCPT=rfc822;`` original recipient, xtext-encoded on the wire.
        extra: further ``keyword[=value]`` parameters.
    """

    recipient: str
    notify: tuple[Notify, ...] | None = None
    orcpt: str | None = None
    extra: tuple[tuple[str, str | None], ...] = ()
    _line: str = field(init=False, repr=False, compare=False)
    _wire: bytes = field(init=False, repr=False, compare=False)
    verb: ClassVar[str] = "RCPT"
    stage: ClassVar[Stage] = Stage.RCPT

    def __post_init__(self) -> None:
        check_argument(self.recipient, name="recipient")
        path = _wire_path(parse_mailbox(self.recipient))
        if self.notify is not None:
            if not isinstance(self.notify, (tuple, list)):
                raise InvalidArgument(
                    f"notify must be a tuple of values, got {type(self.notify).__name__}"
                )
            object.__setattr__(self, "notify", tuple(self.notify))
            allowed = ("NEVER", "SUCCESS", "FAILURE", "DELAY")
            if not self.notify or any(n not in allowed for n in self.notify):
                raise InvalidArgument(
                    f"notify must hold NEVER, SUCCESS, FAILURE or DELAY, got {self.notify!r}"
                )
            if "NEVER" in self.notify and len(self.notify) > 1:
                raise InvalidArgument("notify NEVER cannot be combined with other values")
            if len(set(self.notify)) != len(self.notify):
                raise InvalidArgument(f"notify must not repeat a value, got {self.notify!r}")
        if self.orcpt is not None:
            check_argument(self.orcpt, name="orcpt")
            if not self.orcpt:
                raise InvalidArgument("orcpt must not be empty")
        line = f"RCPT TO:<{path}>"
        if type(self.extra) is not tuple or self.extra:
            object.__setattr__(self, "extra", _check_extra(self.extra))
        if self.notify is not None or self.orcpt is not None or self.extra:
            line = " ".join([line, *self.parameters()])
        # Rendered now: a value that cannot be encoded fails here, before any state changes.
        object.__setattr__(self, "_line", line)
        object.__setattr__(self, "_wire", _ascii(line))

    @property
    def needs_smtputf8(self) -> bool:
        """True when the recipient cannot be written in ASCII (RFC 6531): the MAIL needs SMTPUTF8.

        That is when the local part is non-ASCII; a non-ASCII domain goes on
        the wire as IDNA A-labels instead, whenever it has that form.
        """
        return not self._line.isascii()

    def parameters(self) -> list[str]:
        """The ESMTP parameters in wire form."""
        params: list[str] = []
        if self.notify is not None:
            params.append("NOTIFY=" + ",".join(self.notify))
        if self.orcpt is not None:
            params.append(f"ORCPT=rfc822;{xtext_encode(self.orcpt)}")
        params.extend(k if v is None else f"{k}={v}" for k, v in self.extra)
        return params

    def redacted(self) -> str:
        """The line as shown in transcripts and logs (the same as on the wire)."""
        return self._line

    def to_bytes(self) -> bytes:
        """The exact line written to the wire."""
        return self._wire


@dataclass(frozen=True, slots=True)
class Bdat:
    """``BDAT size [LAST]`` (RFC 3030 2); the chunk itself follows the line."""

    size: int
    last: bool = False
    verb: ClassVar[str] = "BDAT"
    stage: ClassVar[Stage] = Stage.BDAT

    def __post_init__(self) -> None:
        if type(self.size) is not int or self.size < 0:
            raise InvalidArgument(f"BDAT size must be a non-negative int, got {self.size!r}")
        if not isinstance(self.last, bool):
            raise InvalidArgument(f"BDAT last must be a bool, got {type(self.last).__name__}")

    def to_bytes(self) -> bytes:
        """The exact line written to the wire (without the chunk)."""
        return _ascii(self.redacted())

    def redacted(self) -> str:
        """The line as shown in transcripts and logs."""
        return f"BDAT {self.size} LAST" if self.last else f"BDAT {self.size}"


def _wire_path(mailbox: Mailbox) -> str:
    """The address as written between ``<`` and ``>``.

    RFC 5321 allows only ASCII without SMTPUTF8 (RFC 6531). A non-ASCII domain
    with an ASCII local part has an ASCII form, its IDNA A-labels, which every
    server accepts, so it is always sent that way; only a non-ASCII local part
    (or a domain IDNA cannot encode) stays UTF-8 and needs SMTPUTF8.
    """
    if mailbox.needs_smtputf8 or mailbox.domain.isascii():
        return str(mailbox)
    try:
        return mailbox.to_ascii()
    except InvalidAddress:
        return str(mailbox)


def _check_extra(extra: object) -> tuple[tuple[str, str | None], ...]:
    """Validate ``extra`` ESMTP parameters and return them as a tuple of pairs."""
    if isinstance(extra, (str, bytes, Mapping)) or not isinstance(extra, (tuple, list)):
        raise InvalidArgument(
            f"extra must be a tuple of (keyword, value) pairs, got {type(extra).__name__}"
        )
    pairs: list[tuple[str, str | None]] = []
    for item in extra:
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise InvalidArgument("each extra parameter must be a (keyword, value) pair")
        keyword, value = item
        check_esmtp_keyword(keyword)
        if value is not None:
            check_esmtp_value(value)
        pairs.append((keyword, value))
    return tuple(pairs)


Command = (
    Ehlo
    | Helo
    | Lhlo
    | StartTLS
    | Auth
    | AuthResponse
    | MailFrom
    | RcptTo
    | Data
    | EndOfData
    | Bdat
    | Rset
    | Noop
    | Quit
    | Vrfy
)
"""Every command the core can send."""

Verb = str


@dataclass(frozen=True, slots=True)
class Response:
    """A reply matched to the command it answers (``command`` is None for the greeting).

    For LMTP, the end-of-data mark gets one Response per accepted recipient,
    in RCPT order, with ``recipient`` set.
    """

    command: Command | None
    reply: Reply
    recipient: str | None = None


# The connection builds one Response per reply: filling the slots directly skips the frozen
# dataclass's __init__ (three object.__setattr__ calls), which is most of the cost.
_NEW = object.__new__
_SET_COMMAND = vars(Response)["command"].__set__
_SET_REPLY = vars(Response)["reply"].__set__
_SET_RECIPIENT = vars(Response)["recipient"].__set__


def make_response(command: Command | None, reply: Reply, recipient: str | None) -> Response:
    """``Response(command, reply, recipient)``, built faster; the same value."""
    response: Response = _NEW(Response)
    _SET_COMMAND(response, command)
    _SET_REPLY(response, reply)
    _SET_RECIPIENT(response, recipient)
    return response


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The server closed the connection (EOF)."""


class NeedData:
    """The sentinel type of :data:`NEED_DATA`."""

    _instance: ClassVar[NeedData | None] = None

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA = NeedData()
"""Returned by ``next_event()`` when more bytes from the server are needed."""
