"""The SMTP envelope: who the message is from and to, as ``MAIL``/``RCPT`` see it.

The envelope is separate from the headers on purpose (RFC 5321 section 2.3.1):
``Bcc`` recipients are in the envelope and nowhere in the message, and a
bounce has the null reverse-path ``<>`` whatever its ``From:`` says.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from mailtransfer.errors import InvalidArgument
from mailtransfer.protocol._grammar import Mailbox, check_argument, parse_mailbox

__all__ = ["BodyType", "Envelope", "Notify", "Ret", "mailbox", "plain_envelope"]

BodyType = Literal["7BIT", "8BITMIME", "BINARYMIME"]
"""``MAIL FROM`` ``BODY=`` values (RFC 6152, RFC 3030)."""
Ret = Literal["FULL", "HDRS"]
"""DSN ``RET=`` values (RFC 3461 section 4.3)."""
Notify = Literal["NEVER", "SUCCESS", "FAILURE", "DELAY"]
"""DSN ``NOTIFY=`` values (RFC 3461 section 4.1)."""


def mailbox(address: str) -> Mailbox:
    """:func:`parse_mailbox` (which remembers what it parsed), and U-labels must encode.

    A non-ASCII domain must have an IDNA form: a domain that cannot be looked
    up is not an address, and readers' parsers disagree about such characters.
    """
    box = parse_mailbox(address)
    if not box.domain.isascii():
        _check_idna(box.domain)
    return box


@functools.lru_cache(maxsize=1024)
def _check_idna(domain: str) -> None:
    # Remembered (successes only): the IDNA codec is slow, and bulk sends repeat domains.
    Mailbox("x", domain).ascii_domain()


_BODY_TYPES = ("7BIT", "8BITMIME", "BINARYMIME")
_RETS = ("FULL", "HDRS")
_NOTIFIES = ("NEVER", "SUCCESS", "FAILURE", "DELAY")
_MAX_ENVID = 100  # RFC 3461 section 4.4


@dataclass(frozen=True, slots=True, kw_only=True)
class Envelope:
    """The SMTP envelope of one message: the ``MAIL FROM`` and ``RCPT TO`` arguments.

    Building one validates every address with the strict RFC 5321 / RFC 6531
    grammar (never the lenient header parser), so an invalid envelope cannot
    exist. Duplicate recipients are dropped, keeping the first spelling:
    addresses are compared exactly in the local part (RFC 5321 section 2.4
    leaves its case to the receiving host) and case-insensitively in the domain.

    Example:
        >>> env = Envelope(sender="a@example.org",
        ...                recipients=("b@example.net", "b@EXAMPLE.net", "c@example.net"))
        >>> env.recipients
        ('b@example.net', 'c@example.net')

    Attributes:
        sender: the reverse-path without angle brackets; ``""`` is the null
            reverse-path ``<>`` used for bounces (RFC 5321 section 4.5.5).
        recipients: the forward-paths, at least one.
        smtputf8: ask for ``SMTPUTF8`` (RFC 6531). Set automatically when an
            address is not ASCII; :func:`~mailtransfer.message.prepare` also
            sets it when the headers are not ASCII.
        body: ``BODY=`` (``None`` sends no parameter, which means 7BIT);
            :func:`~mailtransfer.message.prepare` sets ``8BITMIME`` for 8-bit data.
        ret: DSN ``RET=`` (RFC 3461 section 4.3).
        envid: DSN ``ENVID=``, at most 100 characters (xtext-encoded on the wire).
        notify: DSN ``NOTIFY=`` for every recipient; ``NEVER`` stands alone.
        requiretls: ``REQUIRETLS`` (RFC 8689): every hop must use verified TLS.

    Raises:
        InvalidAddress: the sender or a recipient is not a valid mailbox
            (control characters included).
        InvalidArgument: no recipients, a single ``str`` given as
            ``recipients``, or an invalid DSN or ``body`` value.
    """

    sender: str
    recipients: tuple[str, ...]
    smtputf8: bool = False
    body: BodyType | None = None
    ret: Ret | None = None
    envid: str | None = None
    notify: tuple[Notify, ...] | None = None
    requiretls: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.sender, str):
            raise InvalidArgument(f"sender must be str, but got {type(self.sender).__name__}")
        if self.sender:
            mailbox(self.sender)  # "" is the null reverse-path
        non_ascii = not self.sender.isascii()
        if isinstance(self.recipients, (str, bytes)):
            raise InvalidArgument(
                "recipients must be a sequence of addresses, but got a single "
                f"{type(self.recipients).__name__}; wrap it in a tuple"
            )
        seen: set[tuple[str, str]] = set()
        unique: list[str] = []
        for recipient in self.recipients:
            if not isinstance(recipient, str):
                raise InvalidArgument(
                    f"recipients must hold str addresses, but got {type(recipient).__name__}"
                )
            box = mailbox(recipient)
            key = (box.local_part, box.domain.lower())
            if key not in seen:
                seen.add(key)
                unique.append(recipient)
                non_ascii = non_ascii or not recipient.isascii()
        if not unique:
            raise InvalidArgument("recipients must hold at least one address, but it is empty")
        # The dataclass is frozen; these assignments only normalise our own fields.
        object.__setattr__(self, "recipients", tuple(unique))
        if non_ascii and not self.smtputf8:
            object.__setattr__(self, "smtputf8", True)
        self._check_parameters()

    def _check_parameters(self) -> None:
        if self.body is not None and self.body not in _BODY_TYPES:
            raise InvalidArgument(f"body must be 7BIT, 8BITMIME or BINARYMIME, got {self.body!r}")
        if self.ret is not None and self.ret not in _RETS:
            raise InvalidArgument(f"ret must be FULL or HDRS, got {self.ret!r}")
        if self.envid is not None:
            check_argument(self.envid, name="envid")
            if not 0 < len(self.envid) <= _MAX_ENVID:
                raise InvalidArgument(
                    f"envid must be 1 to {_MAX_ENVID} characters (RFC 3461 section 4.4), "
                    f"got {len(self.envid)}"
                )
        if self.notify is not None:
            if isinstance(self.notify, str):
                raise InvalidArgument("notify must be a tuple of values, but got a single str")
            notify = tuple(self.notify)
            if not notify or any(value not in _NOTIFIES for value in notify):
                raise InvalidArgument(
                    f"notify must hold NEVER, SUCCESS, FAILURE or DELAY, got {notify!r}"
                )
            if "NEVER" in notify and len(notify) > 1:
                raise InvalidArgument(
                    "notify NEVER cannot be combined with other values (RFC 3461 section 4.1)"
                )
            object.__setattr__(self, "notify", notify)


# Envelopes made by plain_envelope, by (sender, recipients) of exact str values. An
# Envelope is immutable and checked once made, so one is shared by every message with
# the same addresses (only successes are kept: an invalid address raises every time).
_PLAIN: dict[tuple[str, tuple[str, ...]], Envelope] = {}
_PLAIN_LIMIT = 1024


def plain_envelope(sender: str, recipients: Sequence[str]) -> Envelope:
    """``Envelope(sender=sender, recipients=tuple(recipients))``, remembered for bulk sends.

    Remembered only when the sender and every recipient are exactly ``str``
    (a subclass could compare equal to a different address).

    Raises:
        InvalidAddress, InvalidArgument: as :class:`Envelope` does.
    """
    recipients = tuple(recipients)
    if type(sender) is not str:
        return Envelope(sender=sender, recipients=recipients)
    for recipient in recipients:
        if type(recipient) is not str:
            return Envelope(sender=sender, recipients=recipients)
    key = (sender, recipients)
    found = _PLAIN.get(key)
    if found is None:
        found = Envelope(sender=sender, recipients=recipients)
        if len(_PLAIN) >= _PLAIN_LIMIT:
            _PLAIN.clear()
        _PLAIN[key] = found
    return found
