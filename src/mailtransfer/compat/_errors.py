"""The smtplib exception classes, as members of both hierarchies.

Strategy: each class derives from the standard library's class of the same
name first, so ``except smtplib.SMTPSenderRefused`` written against the
standard module catches it, then from this module's :class:`SMTPException`
(which restores the standard ``str()``, ``args`` and pickling over
:class:`~mailtransfer.errors.MailTransferError`'s), and then from the
mailtransfer class it corresponds to, so ``except
mailtransfer.errors.ReplyError`` catches it too.
Each ``__init__`` keeps the standard signature and then fills in the
attributes every :class:`~mailtransfer.errors.MailTransferError` carries.
"""

from __future__ import annotations

import importlib.util
import smtplib as _imported_smtplib
import sys
import sysconfig
from collections.abc import Mapping
from types import ModuleType
from typing import Any

from ..errors import (
    AuthenticationFailed,
    ConnectError,
    ExtensionNotSupported,
    MailTransferError,
    RecipientsRefused,
    ReplyError,
    ServerDisconnected,
    STARTTLSInjection,
    classify,
)
from ..protocol import Reply
from ..protocol._reply import parse_enhanced

__all__ = [
    "SMTPAuthenticationError",
    "SMTPConnectError",
    "SMTPDataError",
    "SMTPException",
    "SMTPHeloError",
    "SMTPNotSupportedError",
    "SMTPRecipientsRefused",
    "SMTPResponseException",
    "SMTPSenderRefused",
    "SMTPServerDisconnected",
    "SMTPStartTLSInjection",
    "standard_smtplib",
]


def _load_standard() -> ModuleType:
    """The standard library's smtplib, even when ``sys.modules["smtplib"]`` is this package's."""
    if not getattr(_imported_smtplib, "__mailtransfer_compat__", False):
        return _imported_smtplib
    # install() ran before this module was (re)loaded: load the real one under a private name.
    path = sysconfig.get_path("stdlib") + "/smtplib.py"
    spec = importlib.util.spec_from_file_location("_mailtransfer_std_smtplib", path)
    if spec is None or spec.loader is None:  # pragma: no cover - a broken Python install
        raise ImportError(f"cannot find the standard smtplib at {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


standard_smtplib: ModuleType = _load_standard()
"""The standard library's ``smtplib`` module, whose exception classes these derive from."""
_std: Any = standard_smtplib


def _text(message: object) -> str:
    if isinstance(message, bytes):
        return message.decode("utf-8", "replace")
    return str(message)


def _adopt(error: MailTransferError, reply: Reply | None = None) -> None:
    """Give a standard-style exception the attributes of a MailTransferError."""
    error.message = OSError.__str__(error)
    error.reply = reply
    error.command = None
    error.stage = None
    error.transcript = ()
    if reply is not None:
        error.transient = 400 <= reply.code < 500


def _reply(code: int, message: object) -> Reply:
    lines = tuple(_text(message).split("\n"))
    return Reply(code, lines, parse_enhanced(lines[0], code))


class SMTPException(MailTransferError, _std.SMTPException):  # type: ignore[misc]
    """Base class of every exception this module raises (``smtplib.SMTPException``).

    ``str()``, ``args`` and pickling are those of the standard class.
    """

    def __init__(self, *args: object) -> None:
        OSError.__init__(self, *args)
        _adopt(self)

    def __str__(self) -> str:
        return OSError.__str__(self)

    def __reduce__(self) -> Any:
        return OSError.__reduce__(self)


class SMTPNotSupportedError(
    _std.SMTPNotSupportedError,  # type: ignore[misc]
    SMTPException,
    ExtensionNotSupported,
):
    """The server does not support the command or option asked for."""

    def __init__(self, *args: object) -> None:
        OSError.__init__(self, *args)
        _adopt(self)


class SMTPServerDisconnected(
    _std.SMTPServerDisconnected,  # type: ignore[misc]
    SMTPException,
    ServerDisconnected,
):
    """Not connected, or the server closed the connection."""

    def __init__(self, *args: object) -> None:
        OSError.__init__(self, *args)
        _adopt(self)


class SMTPResponseException(
    _std.SMTPResponseException,  # type: ignore[misc]
    SMTPException,
    ReplyError,
):
    """The server answered with an error code.

    Args:
        code: the reply code (``smtp_code``).
        msg: the reply text (``smtp_error``), usually bytes.
    """

    def __init__(self, code: int, msg: object) -> None:
        _std.SMTPResponseException.__init__(self, code, msg)
        _adopt(self, _reply(code, msg))


class SMTPSenderRefused(_std.SMTPSenderRefused, SMTPResponseException):  # type: ignore[misc]
    """The server refused the sender address (``sender`` holds it).

    Args:
        code: the reply code.
        msg: the reply text.
        sender: the refused address.
    """

    def __init__(self, code: int, msg: object, sender: object) -> None:
        _std.SMTPSenderRefused.__init__(self, code, msg, sender)
        _adopt(self, _reply(code, msg))


class SMTPRecipientsRefused(
    _std.SMTPRecipientsRefused,  # type: ignore[misc]
    SMTPException,
    RecipientsRefused,
):
    """Every recipient was refused; ``recipients`` maps each to its ``(code, message)``.

    ``refused`` (the mailtransfer attribute) maps the same addresses to typed
    :class:`~mailtransfer.errors.ReplyError` values, for the 4xx/5xx replies.

    Args:
        recipients: address -> (code, message), as ``sendmail()`` returns.
    """

    def __init__(self, recipients: Mapping[str, tuple[int, bytes]]) -> None:
        _std.SMTPRecipientsRefused.__init__(self, recipients)
        _adopt(self)
        refused: dict[str, ReplyError] = {}
        for address, (code, text) in dict(recipients).items():
            if 400 <= code < 600:
                refused[str(address)] = classify(_reply(code, text))
        self.refused = refused
        self.transient = len(refused) > 0 and all(e.transient for e in refused.values())


class SMTPDataError(_std.SMTPDataError, SMTPResponseException):  # type: ignore[misc]
    """The server refused the message data."""


class SMTPConnectError(
    _std.SMTPConnectError,  # type: ignore[misc]
    SMTPResponseException,
    ConnectError,
):
    """The server's greeting was not 220."""


class SMTPHeloError(_std.SMTPHeloError, SMTPResponseException):  # type: ignore[misc]
    """The server refused HELO/EHLO."""


class SMTPAuthenticationError(
    _std.SMTPAuthenticationError,  # type: ignore[misc]
    SMTPResponseException,
    AuthenticationFailed,
):
    """The server refused the credentials."""


class SMTPStartTLSInjection(SMTPException, STARTTLSInjection):
    """The server sent more after its 220 reply to STARTTLS, before the TLS handshake.

    Those bytes travelled in clear and may have been injected by an attacker
    (RFC 3207 section 4.2); the connection is closed. Not in
    the standard module, which drops them silently: it is an
    ``SMTPException``, so existing handlers catch it.
    """
