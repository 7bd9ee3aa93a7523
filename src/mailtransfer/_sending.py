"""What the sync and async mailers share: turning a send() call into bytes and an envelope.

No I/O here. A :class:`Submission` is made once per ``send()`` (message built,
headers checked, Date and Message-ID added, Bcc removed); then, for each
connection it is tried on, :meth:`Submission.for_server` adapts it to what
that server offers (8BITMIME, SMTPUTF8) and signs the exact bytes that will go
on the wire, so a DKIM signature always covers what was sent.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from email.message import EmailMessage
from typing import Any

from .errors import (
    ConnectError,
    DeliveryUnknown,
    MailTransferError,
    PartialDelivery,
    RateLimited,
    RecipientsRefused,
    ReplyError,
    ServiceUnavailable,
    Timeout,
    TooManyConnections,
    UsageError,
)
from .message import Envelope, PreparedMessage, build_message, downgrade, prepare
from .protocol import Extensions, Stage
from .results import SendResult, make_result
from .retry import RetryPolicy, is_retryable

__all__ = [
    "BUILD_ARGUMENTS",
    "Submission",
    "check_strict",
    "envelope_options",
    "finish_result",
    "is_deferral",
    "is_relay_failure",
    "note_message_id",
    "with_retries",
    "with_retries_async",
]

BUILD_ARGUMENTS = frozenset(
    {
        "sender",
        "to",
        "cc",
        "bcc",
        "reply_to",
        "subject",
        "text",
        "html",
        "attachments",
        "inline",
        "headers",
        "message_id",
        "date",
    }
)
"""The keyword arguments of ``send()`` that build a message."""


@dataclasses.dataclass(slots=True)
class Submission:
    """One message on its way: prepared once, adapted and signed per server capability."""

    prepared: PreparedMessage
    signers: tuple[Any, ...] = ()
    _variant: tuple[tuple[bool, bool], bytes, Envelope] | None = None
    """The bytes and envelope made for the last kind of server, after its key.

    Nearly every message meets one kind of server. A retry on a relay of another
    kind adapts (and signs) the message again, as the first attempt there did.
    """

    @classmethod
    def create(
        cls,
        message: EmailMessage | bytes | None,
        *,
        envelope: Envelope | None = None,
        recipients: Sequence[str] | None = None,
        signers: Iterable[Any] = (),
        build: Mapping[str, Any],
    ) -> Submission:
        """Build (if needed) and prepare the message; raises typed errors before any I/O.

        Raises:
            UsageError: a message and build arguments together, or neither.
            HeaderInjection, InvalidAddress: from building and preparing.
        """
        # A finished message with at most the envelope sender (the bulk case) has no build
        # arguments to check or filter.
        if message is None or (build and build.keys() != {"sender"}):
            if not BUILD_ARGUMENTS.issuperset(build):
                unknown = build.keys() - BUILD_ARGUMENTS
                raise UsageError(
                    f"send() got unknown keyword arguments {', '.join(sorted(unknown))};"
                    f" expected message keywords from: {', '.join(sorted(BUILD_ARGUMENTS))}"
                )
            build = {k: v for k, v in build.items() if v is not None and v not in ((), [])}
        if message is None:
            if "sender" not in build:
                raise UsageError("send() needs a message, or at least sender= and to=/cc=/bcc=")
            message = build_message(**build)
            prepared = prepare(message, envelope=envelope, recipients=recipients)
        elif len(build) > ("sender" in build):  # something besides sender=
            raise UsageError(
                "pass either a message or the keyword arguments that build one, not both"
                f" (got {', '.join(sorted(build))})"
            )
        else:
            prepared = prepare(
                message, envelope=envelope, sender=build.get("sender"), recipients=recipients
            )
        return cls(prepared, tuple(signers))

    @property
    def message_id(self) -> str | None:
        """The Message-ID of the message."""
        return self.prepared.message_id

    def for_server(self, extensions: Extensions) -> tuple[bytes, Envelope]:
        """The bytes to send and the envelope, adapted to the server and signed.

        Raises:
            SMTPUTF8Required: the message needs SMTPUTF8 and cannot be re-encoded.
        """
        key = (extensions.eightbitmime, extensions.smtputf8)
        last = self._variant
        if last is not None and last[0] == key:
            return last[1], last[2]
        prepared = self.prepared
        if (prepared.needs_8bit and not extensions.eightbitmime) or (
            prepared.needs_smtputf8 and not extensions.smtputf8
        ):
            prepared = downgrade(
                prepared, eightbitmime=extensions.eightbitmime, smtputf8=extensions.smtputf8
            )
        data = prepared.data
        if self.signers:
            from .dkim import sign_chain  # noqa: PLC0415  (dkimpy loads only when signing)

            data = sign_chain(data, prepared.envelope, self.signers)
        self._variant = (key, data, prepared.envelope)
        return data, prepared.envelope

    def send_arguments(self, extensions: Extensions) -> dict[str, Any]:
        """Keyword arguments for ``SyncConnection.send`` / ``AsyncConnection.send``."""
        data, envelope = self.for_server(extensions)
        return {
            "body": data,
            "sender": envelope.sender,
            "recipients": envelope.recipients,
            "smtputf8": envelope.smtputf8,
            "eight_bit": not data.isascii(),
            **envelope_options(envelope),
        }


def envelope_options(envelope: Envelope) -> dict[str, Any]:
    """The envelope's DSN, REQUIRETLS and BINARYMIME settings, as ``send()`` keywords.

    Empty for a plain envelope (the common case).
    """
    options: dict[str, Any] = {}
    if envelope.ret is not None:
        options["ret"] = envelope.ret
    if envelope.envid is not None:
        options["envid"] = envelope.envid
    if envelope.notify is not None:
        options["notify"] = envelope.notify
    if envelope.requiretls:
        options["requiretls"] = True
    if envelope.body == "BINARYMIME":
        options["body_type"] = "BINARYMIME"
    return options


def note_message_id(exc: MailTransferError, submission: Submission) -> None:
    """Attach the Message-ID to an error about this submission (DeliveryUnknown needs it)."""
    if isinstance(exc, DeliveryUnknown) and exc.message_id is None:
        exc.message_id = submission.message_id


def finish_result(
    result: SendResult, submission: Submission, *, host: str, strict: bool
) -> SendResult:
    """Add the Message-ID and host to a result; with ``strict``, any refusal raises.

    Raises:
        PartialDelivery: ``strict`` and some recipients were refused (the others
            did get the message: the error carries the result).
    """
    result = make_result(
        result.accepted,
        result.refused,
        result.reply,
        result.queue_id,
        message_id=submission.message_id,
        host=host,
    )
    return check_strict(result, strict)


def check_strict(result: SendResult, strict: bool) -> SendResult:
    """``result`` itself; with ``strict``, PartialDelivery when a recipient was refused.

    Raises:
        PartialDelivery: ``strict`` and some recipients were refused (the others
            did get the message: the error carries the result).
    """
    if strict and result.refused:
        raise PartialDelivery(
            f"{len(result.refused)} recipient(s) refused, {len(result.accepted)} accepted",
            result=result,
        )
    return result


_CONNECT_STAGES = frozenset({Stage.CONNECT, Stage.GREETING, Stage.TLS_HANDSHAKE})


def is_relay_failure(exc: BaseException) -> bool:
    """A failure to reach or be greeted by a relay: try the next relay, cool this one down."""
    if isinstance(exc, (ConnectError, Timeout, ReplyError)):
        return exc.stage in _CONNECT_STAGES and not isinstance(exc, DeliveryUnknown)
    return False


def is_deferral(exc: BaseException) -> bool:
    """Whether ``exc`` asks the whole destination to slow down, not just this message.

    A 421, a rate limit, a connection limit, or any 4.7.x deferral (rate,
    reputation, policy: REPLY-CODES.md) is about the sender: the pool stops
    opening connections for a while. For refused recipients, every refusal
    must be such a deferral.
    """
    if isinstance(exc, RecipientsRefused):
        return all(_is_reply_deferral(error) for error in exc.refused.values())
    return _is_reply_deferral(exc)


def _is_reply_deferral(exc: BaseException) -> bool:
    if isinstance(exc, (ServiceUnavailable, RateLimited, TooManyConnections)):
        return True
    if isinstance(exc, ReplyError) and exc.transient:
        enhanced = exc.enhanced
        # The enhanced code counts only when its class agrees with the reply (RFC 3463 2).
        return enhanced is not None and enhanced.klass == 4 and enhanced.subject == 7
    return False


# -- retries: the first attempt runs bare, tenacity takes over only after a retryable failure --
# Building a tenacity retrier and running an attempt through it costs more than the rest of a
# mailer's own work per message; most sends succeed first time, so they skip it. The first
# failure is handed to tenacity as its attempt 1 (re-raised, no I/O), and its clock is set back
# to when that attempt started: the backoff, the logs, ``attempts`` and ``max_time`` all behave
# as if tenacity had run every attempt.


def with_retries(
    policy: RetryPolicy,
    attempt: Callable[[], SendResult],
    *,
    failed: BaseException | None = None,
    started: float | None = None,
) -> SendResult:
    """Run ``attempt()``, and again per ``policy`` while it fails with a retryable error.

    ``failed``: the first attempt was already made elsewhere (a pipelined run,
    starting at ``started``, a ``time.monotonic()``) and failed with this error.
    """
    if failed is None:
        started = time.monotonic()
        try:
            return attempt()
        except BaseException as exc:
            failed = exc
    if policy.attempts == 1 or not is_retryable(failed):
        raise failed
    first: BaseException | None = failed
    for manager in policy.retrying():
        if first is not None:
            manager.retry_state.start_time = started if started is not None else time.monotonic()
        with manager:
            if first is not None:
                error, first = first, None
                raise error
            return attempt()
    raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover


async def with_retries_async(
    policy: RetryPolicy,
    attempt: Callable[[], Awaitable[SendResult]],
    *,
    failed: BaseException | None = None,
    started: float | None = None,
) -> SendResult:
    """The asyncio twin of :func:`with_retries`."""
    if failed is None:
        started = time.monotonic()
        try:
            return await attempt()
        except BaseException as exc:
            failed = exc
    if policy.attempts == 1 or not is_retryable(failed):
        raise failed
    first: BaseException | None = failed
    async for manager in policy.async_retrying():
        if first is not None:
            manager.retry_state.start_time = started if started is not None else time.monotonic()
        with manager:
            if first is not None:
                error, first = first, None
                raise error
            return await attempt()
    raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover
