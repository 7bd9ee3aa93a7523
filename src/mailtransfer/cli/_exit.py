"""The command line's exit codes: one per kind of failure, so scripts can tell them apart."""

from __future__ import annotations

import enum

from ..errors import (
    AuthenticationFailed,
    AuthenticationRequired,
    ConnectError,
    DeliveryUnknown,
    InsecureAuthRefused,
    MailTransferError,
    NoSuitableMechanism,
    PartialDelivery,
    RecipientsRefused,
    ReplyError,
    TemporaryAuthFailure,
    Timeout,
    TLSError,
    UsageError,
)
from ..protocol import Stage

__all__ = ["ExitCode", "exit_code_for"]


class ExitCode(enum.IntEnum):
    """What ``mailtransfer`` exits with (see docs/cli.md)."""

    OK = 0
    """Everything was delivered (``verify``: every stage succeeded)."""
    DELIVERY = 1
    """The server refused the message or a recipient (nothing lost: it said so)."""
    USAGE = 2
    """Bad arguments or bad message input; nothing was sent."""
    CONNECTION = 3
    """No connection, a lost connection, a timeout, or a server breaking the protocol."""
    TLS = 4
    """TLS could not be set up as required (certificate, handshake, no STARTTLS)."""
    AUTH = 5
    """Logging in failed, or the server requires a login that was not given."""
    UNKNOWN = 6
    """The connection failed after the message was sent: it may have been delivered."""
    INTERRUPTED = 130
    """Stopped with Ctrl-C (128 + SIGINT), as shells report it."""


_AUTH_ERRORS = (
    AuthenticationFailed,
    AuthenticationRequired,
    TemporaryAuthFailure,
    NoSuitableMechanism,
    InsecureAuthRefused,
)
_CONNECT_STAGES = frozenset({Stage.CONNECT, Stage.GREETING, Stage.EHLO, Stage.HELO})


def exit_code_for(exc: MailTransferError) -> ExitCode:
    """The exit code for an error, most specific kind first.

    Args:
        exc: the error that stopped the command.

    Returns:
        `ExitCode.UNKNOWN` for `DeliveryUnknown`; `AUTH`, `TLS`, `USAGE` or `CONNECTION`
        for failures of those stages; `DELIVERY` for refusals of the message itself.
    """
    stage = exc.stage
    if isinstance(exc, DeliveryUnknown):
        return ExitCode.UNKNOWN
    if isinstance(exc, _AUTH_ERRORS) or stage is Stage.AUTH:
        return ExitCode.AUTH
    if isinstance(exc, TLSError) or stage in (Stage.STARTTLS, Stage.TLS_HANDSHAKE):
        return ExitCode.TLS
    if isinstance(exc, UsageError):
        return ExitCode.USAGE
    if isinstance(exc, (ConnectError, Timeout)) or stage in _CONNECT_STAGES:
        return ExitCode.CONNECTION
    if isinstance(exc, (ReplyError, RecipientsRefused, PartialDelivery)):
        return ExitCode.DELIVERY
    return ExitCode.CONNECTION  # a protocol violation or another failure of the session
