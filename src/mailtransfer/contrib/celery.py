"""Send mail from Celery workers: a JSON-only task over one connection pool per worker process.

Strategy: the producer builds and checks the message (:func:`enqueue`), so bad input fails
with a typed error before anything is queued, and the task carries only JSON: the exact
RFC 5322 bytes (base64) and the envelope. The Message-ID is fixed before queueing, so a
retried task sends the very same message. Each worker process makes its
:class:`~mailtransfer.Mailer` on first use (never sharing one across ``fork``) and closes it
on Celery's worker shutdown signals.

Failures map onto Celery's retry: a transient failure (``is_retryable``, or a 4xx refusal
of every recipient) is retried with exponential backoff; a permanent one fails the task;
:class:`~mailtransfer.errors.DeliveryUnknown` (the server may have the message) and
:class:`~mailtransfer.errors.PartialDelivery` (some recipients have it) are never retried,
so no message is delivered twice.

Configuration, read from the Celery app's settings (``app.conf``) by each worker:
``mailtransfer_url`` (else the ``MAILTRANSFER_URL`` environment variable),
``mailtransfer_options`` (a dict of :class:`~mailtransfer.MailerOptions`),
``mailtransfer_retry_backoff`` (first countdown in seconds, default 30; doubled per retry,
capped at one hour) and ``mailtransfer_max_retries`` (default 5).
"""

from __future__ import annotations

import base64
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from typing import Any

try:
    from celery import shared_task
    from celery.signals import worker_process_shutdown, worker_shutdown
except ImportError as _exc:  # pragma: no cover - exercised only without Celery
    raise ImportError(
        "mailtransfer.contrib.celery needs Celery: pip install 'mailtransfer[celery]'"
    ) from _exc

from .._sync.mailer import Mailer
from ..errors import (
    DeliveryUnknown,
    MailTransferError,
    PartialDelivery,
    RecipientsRefused,
    UsageError,
)
from ..message import Attachment, build_message, prepare
from ..results import SendResult
from ..retry import is_retryable

__all__ = [
    "TASK_NAME",
    "close_worker_mailer",
    "enqueue",
    "message_payload",
    "send_message",
    "should_retry",
    "worker_mailer",
]

logger = logging.getLogger("mailtransfer.contrib.celery")

TASK_NAME = "mailtransfer.send_message"
"""The registered name of :data:`send_message`."""

_MAX_COUNTDOWN = 3600.0
_lock = threading.Lock()
_mailer: Mailer | None = None
_mailer_pid: int | None = None


def worker_mailer(conf: Mapping[str, Any] | None = None) -> Mailer:
    """This process's mailer, made on first use from ``conf`` (a Celery ``app.conf``).

    Args:
        conf: settings holding ``mailtransfer_url`` and ``mailtransfer_options``.

    Raises:
        UsageError: no URL is configured, or the configuration is invalid.
    """
    global _mailer, _mailer_pid  # noqa: PLW0603  (one mailer per worker process)
    with _lock:
        if _mailer is not None and _mailer_pid == os.getpid():
            return _mailer
        # After fork, the parent's pooled sockets are not ours to use: start afresh.
        settings = conf or {}
        url = settings.get("mailtransfer_url") or os.environ.get("MAILTRANSFER_URL")
        if not url:
            raise UsageError(
                "set mailtransfer_url in the Celery configuration (or MAILTRANSFER_URL)"
            )
        _mailer = Mailer(url, **dict(settings.get("mailtransfer_options") or {}))
        _mailer_pid = os.getpid()
        return _mailer


def close_worker_mailer(**_signal: Any) -> None:
    """Close this process's mailer (QUIT every pooled connection); the next task makes a new one.

    Connected to Celery's ``worker_process_shutdown`` and ``worker_shutdown`` signals.

    Args:
        **_signal: the signal's arguments, unused.
    """
    global _mailer
    with _lock:
        mailer, _mailer = _mailer, None
    if mailer is not None and _mailer_pid == os.getpid():
        mailer.close()


worker_process_shutdown.connect(close_worker_mailer, weak=False)
worker_shutdown.connect(close_worker_mailer, weak=False)


def should_retry(exc: BaseException) -> bool:
    """Whether a failed task may be retried later without risking a second delivery.

    Example:
        >>> from mailtransfer.errors import DeliveryUnknown
        >>> should_retry(DeliveryUnknown("lost after the final dot"))
        False
    """
    if isinstance(exc, (DeliveryUnknown, PartialDelivery)):
        return False
    if is_retryable(exc):
        return True
    # A transient refusal the mailer does not retry by itself (e.g. greylisting needs
    # minutes, not seconds) is what a queue's delayed retry is for.
    return isinstance(exc, (MailTransferError, RecipientsRefused)) and bool(
        getattr(exc, "transient", False)
    )


def message_payload(
    message: EmailMessage | bytes | None = None,
    *,
    sender: str | None = None,
    recipients: Sequence[str] | None = None,
    **build: Any,
) -> dict[str, Any]:
    """The JSON-safe keyword arguments of :data:`send_message` for one message.

    The message is built (from ``build`` keywords such as ``to``, ``subject``, ``text``,
    ``attachments``) and checked now; the Message-ID is fixed now.

    Returns:
        ``{"raw": base64 of the bytes, "sender": ..., "recipients": [...]}``.

    Raises:
        UsageError: bad input (an invalid address, header injection...), typed.
    """
    if message is None:
        if sender is None:
            raise UsageError("a message needs sender=, or pass a finished message")
        message = build_message(sender=sender, **build)
        prepared = prepare(message, recipients=recipients)
    elif build:
        raise UsageError(
            "pass either a message or the keyword arguments that build one, not both"
            f" (got {', '.join(sorted(build))})"
        )
    else:
        prepared = prepare(message, sender=sender, recipients=recipients)
    return {
        "raw": base64.b64encode(prepared.data).decode("ascii"),
        "sender": prepared.envelope.sender,
        "recipients": list(prepared.envelope.recipients),
    }


def enqueue(
    message: EmailMessage | bytes | None = None,
    /,
    *,
    sender: str | None = None,
    recipients: Sequence[str] | None = None,
    task_options: Mapping[str, Any] | None = None,
    **build: Any,
) -> Any:
    """Check and serialise a message now, and queue :data:`send_message` for it.

    Example:
        >>> result = enqueue(sender="app@example.org", to=["bob@example.org"],  # doctest: +SKIP
        ...                  subject="Welcome", text="Hello!")
        >>> result.get(timeout=60)["message_id"]  # doctest: +SKIP

    Args:
        message: an ``EmailMessage`` or finished bytes; or none, and ``build`` keywords.
        sender: the envelope sender (required with bytes).
        recipients: the envelope recipients (default: from the headers).
        task_options: passed to ``apply_async`` (``queue``, ``countdown``, ``priority``...).
        **build: ``to``, ``cc``, ``bcc``, ``subject``, ``text``, ``html``, ``attachments``...

    Returns:
        Celery's ``AsyncResult``; its value is the dict :data:`send_message` returns.

    Raises:
        UsageError: bad input, before anything is queued.
    """
    payload = message_payload(message, sender=sender, recipients=recipients, **build)
    return send_message.apply_async(kwargs=payload, **dict(task_options or {}))


def _result_dict(result: SendResult) -> dict[str, Any]:
    return {
        "message_id": result.message_id,
        "queue_id": result.queue_id,
        "host": result.host,
        "accepted": list(result.accepted),
        "refused": {
            address: {"code": error.reply.code, "text": error.reply.text}
            for address, error in result.refused.items()
        },
    }


def _decode_attachments(items: Sequence[Any]) -> list[Attachment]:
    attachments = []
    for item in items:
        if not isinstance(item, Mapping) or "content_base64" not in item:
            raise UsageError(
                "attachments in a task must be {'filename', 'content_base64', 'mimetype'} dicts"
            )
        content = base64.b64decode(item["content_base64"], validate=True)
        attachments.append(Attachment(item.get("filename", ""), content, item.get("mimetype")))
    return attachments


@shared_task(bind=True, name=TASK_NAME, max_retries=None)  # type: ignore[untyped-decorator]
def send_message(
    self: Any,
    *,
    raw: str | None = None,
    sender: str | None = None,
    recipients: Sequence[str] | None = None,
    **build: Any,
) -> dict[str, Any]:
    """Send one message through this worker's pooled mailer (a Celery task, JSON arguments).

    Give ``raw`` (base64 of the RFC 5322 bytes, as :func:`message_payload` makes it) with
    ``sender`` and ``recipients``; or the keywords that build a message (``to``,
    ``subject``, ``text``, ``html``, ``headers``; ``attachments`` as dicts with
    ``filename``, ``content_base64`` and ``mimetype``).

    Returns:
        ``{"message_id", "queue_id", "host", "accepted": [...], "refused": {address:
        {"code", "text"}}}``: recipients refused while others got the message are listed.

    Raises:
        MailTransferError: a permanent failure, ``DeliveryUnknown``, or a transient
            one after ``mailtransfer_max_retries`` retries.
    """
    conf = self.app.conf
    if raw is None:
        if "attachments" in build:
            build["attachments"] = _decode_attachments(build["attachments"])
        payload = message_payload(sender=sender, recipients=recipients, **build)
    else:
        payload = {"raw": raw, "sender": sender, "recipients": list(recipients or ())}
    data = base64.b64decode(payload["raw"], validate=True)
    mailer = worker_mailer(conf)
    try:
        result = mailer.send(data, sender=payload["sender"], recipients=payload["recipients"])
    except MailTransferError as exc:
        if not should_retry(exc):
            logger.warning("not retried: %s: %s", type(exc).__name__, exc)
            raise
        backoff = float(conf.get("mailtransfer_retry_backoff", 30.0))
        countdown = min(_MAX_COUNTDOWN, backoff * 2.0 ** int(self.request.retries))
        max_retries = int(conf.get("mailtransfer_max_retries", 5))
        # Retry with the finished bytes: the same Message-ID, whatever the first call got.
        raise self.retry(
            exc=exc, countdown=countdown, kwargs=payload, max_retries=max_retries
        ) from exc
    return _result_dict(result)
