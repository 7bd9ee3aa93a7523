"""The module-level ``mailtransfer.send()``: a lazily built default mailer from the environment."""

from __future__ import annotations

import atexit
import threading
from collections.abc import Sequence
from email.message import EmailMessage
from typing import Any

from ._sync.mailer import Mailer
from .message import Envelope
from .results import SendResult

__all__ = ["send"]

_lock = threading.Lock()
_default: Mailer | None = None


def _mailer() -> Mailer:
    global _default  # noqa: PLW0603  (one process-wide default, built on first use)
    with _lock:
        if _default is None:
            _default = Mailer.from_env()
            atexit.register(_default.close)
        return _default


def send(
    message: EmailMessage | bytes | None = None,
    /,
    *,
    envelope: Envelope | None = None,
    recipients: Sequence[str] | None = None,
    **build: Any,
) -> SendResult:
    """Send one message with the default mailer, configured by ``MAILTRANSFER_URL``.

    The mailer is created on the first call and closed when the process exits.
    Arguments are those of :meth:`Mailer.send <mailtransfer.Mailer.send>`.

    Example:
        >>> import mailtransfer  # doctest: +SKIP
        >>> mailtransfer.send(sender="me@example.org", to=["you@example.org"],
        ...                   subject="Hi", text="Hello")

    Raises:
        UsageError: ``MAILTRANSFER_URL`` is not set; and every error of ``Mailer.send``.
    """
    return _mailer().send(message, envelope=envelope, recipients=recipients, **build)
