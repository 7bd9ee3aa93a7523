"""An in-memory outbox: a mailer that keeps messages in a list instead of sending them.

It takes the same ``send()`` / ``send_many()`` arguments as `mailtransfer.Mailer` and
returns the same results, and it checks them in exactly the same way, because it hands
them to the same `Submission` the real mailers use: a header injection or an invalid
address raises the same typed error, before anything is recorded. What the outbox
records is what a real server would have been sent: the final bytes (Bcc removed, Date
and Message-ID added, DKIM-signed when signers are given) and the envelope.
"""

from __future__ import annotations

import email.policy
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from types import TracebackType
from typing import Any

from .._bulk import Outgoing, Progress
from .._sending import Submission, finish_result
from ..errors import MailTransferError, RecipientsRefused, ReplyError, UsageError, classify
from ..message import Envelope
from ..protocol import Extensions, Reply, Stage
from ..protocol._reply import parse_enhanced
from ..results import SendResult, ServerInfo
from ._faults import reply_line

__all__ = ["AsyncOutboxMailer", "OutboxMailer", "OutboxMessage"]

_HOST = "outbox.invalid"  # RFC 2606: a name that can never be a real server


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxMessage:
    """One message an `OutboxMailer` accepted, as it would have gone on the wire.

    The field names match `ReceivedMessage`, so a test can move between the outbox and a
    `RecordingServer` without rewriting its assertions.

    Attributes:
        mail_from: the envelope sender; ``""`` for the null sender.
        rcpt_tos: the accepted recipients (To, Cc and Bcc), in envelope order.
        data: the message bytes, CRLF line endings, signed when the mailer has signers.
        envelope: the full envelope, with DSN and REQUIRETLS options.
        message_id: the ``Message-ID`` (``"<...>"``).
        queue_id: the queue id the outbox gave the message (``"outbox-1"``, ...).
    """

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes = field(repr=False)
    envelope: Envelope
    message_id: str | None
    queue_id: str

    def parsed(self) -> EmailMessage:
        """Parse ``data`` with the modern ``email`` policy.

        Returns:
            The message as an `email.message.EmailMessage`.
        """
        return BytesParser(policy=email.policy.default).parsebytes(self.data)

    @property
    def subject(self) -> str | None:
        """The decoded ``Subject`` header, if the message has one."""
        value = self.parsed()["Subject"]
        return None if value is None else str(value)


class OutboxMailer:
    """A `Mailer` look-alike that records messages in `outbox` instead of sending them.

    Every check `Mailer.send` makes before the first byte is made here too, by the same
    code; then the message is adapted and signed as for a server offering ``8BITMIME``,
    ``SMTPUTF8``, ``DSN`` and ``REQUIRETLS`` (pass ``smtputf8=False`` or
    ``eightbitmime=False`` to see the downgraded form instead). Thread-safe.

    Example:
        >>> outbox = OutboxMailer()
        >>> result = outbox.send(sender="a@example.test", to=["b@example.test"], text="hi")
        >>> [m.rcpt_tos for m in outbox.outbox], result.queue_id
        ([('b@example.test',)], 'outbox-1')

    Args:
        signers: DKIM signers, as `Mailer`'s ``signers=`` option.
        strict: raise `PartialDelivery` when some recipient is refused (see `refuse`).
        smtputf8: act as a server that offers SMTPUTF8.
        eightbitmime: act as a server that offers 8BITMIME.
    """

    def __init__(
        self,
        *,
        signers: Iterable[Any] = (),
        strict: bool = False,
        smtputf8: bool = True,
        eightbitmime: bool = True,
    ) -> None:
        self.outbox: list[OutboxMessage] = []
        """The accepted messages, oldest first. Tests may clear or inspect it freely."""
        self._signers = tuple(signers)
        self._strict = strict
        keywords = ["DSN", "REQUIRETLS", "ENHANCEDSTATUSCODES"]
        keywords += ["SMTPUTF8"] if smtputf8 else []
        keywords += ["8BITMIME"] if eightbitmime else []
        self._extensions = Extensions.from_ehlo(Reply(250, (_HOST, *keywords)))
        self._refusals: dict[str, Reply] = {}
        self._lock = threading.Lock()
        self._sequence = 0
        self._closed = False

    @property
    def messages(self) -> list[OutboxMessage]:
        """A snapshot of `outbox` (the name `RecordingServer` uses)."""
        with self._lock:
            return list(self.outbox)

    def clear(self) -> None:
        """Empty the outbox (refusals stay)."""
        with self._lock:
            self.outbox.clear()

    def refuse(
        self, address: str, code: int = 550, text: str = "5.1.1 Mailbox unavailable"
    ) -> None:
        """Refuse ``address`` as a server would at ``RCPT TO``, from now on.

        A message whose every recipient is refused raises `RecipientsRefused`; with some
        recipients left, it is recorded for those and the result lists the refusals.

        Args:
            address: the recipient to refuse (the domain is compared case-insensitively).
            code: a 4xx or 5xx reply code.
            text: the reply text, conventionally starting with an enhanced status code.

        Raises:
            ValueError: ``code`` is not a 4xx or 5xx code, or ``text`` has a line break.
        """
        reply_line(code, text, lowest=400)  # the same checks as the server's faults
        with self._lock:
            self._refusals[_key(address)] = Reply(code, (text,), parse_enhanced(text, code))

    # -- sending --------------------------------------------------------------------------

    def send(
        self,
        message: EmailMessage | bytes | None = None,
        /,
        *,
        envelope: Envelope | None = None,
        recipients: Sequence[str] | None = None,
        strict: bool | None = None,
        **build: Any,
    ) -> SendResult:
        """Check, build, sign and record one message; the arguments of `Mailer.send`.

        Returns:
            The result a server accepting the message would give.

        Raises:
            UsageError: bad input (header injection, invalid address...), as `Mailer.send`.
            RecipientsRefused: every recipient was refused (see `refuse`).
            PartialDelivery: with ``strict``, some recipient was refused.
        """
        if self._closed:
            raise UsageError("the mailer is closed")
        submission = Submission.create(
            message, envelope=envelope, recipients=recipients, signers=self._signers, build=build
        )
        data, env = submission.for_server(self._extensions)
        accepted: dict[str, Reply] = {}
        refused: dict[str, ReplyError] = {}
        with self._lock:
            for address in env.recipients:
                refusal = self._refusals.get(_key(address))
                if refusal is None:
                    accepted[address] = Reply(250, ("2.1.5 OK",))
                else:
                    command = f"RCPT TO:<{address}>"
                    refused[address] = classify(refusal, stage=Stage.RCPT, command=command)
            if not accepted:
                raise RecipientsRefused(refused=refused)
            self._sequence += 1
            queue_id = f"outbox-{self._sequence}"
            self.outbox.append(
                OutboxMessage(
                    mail_from=env.sender,
                    rcpt_tos=tuple(accepted),
                    data=data,
                    envelope=env,
                    message_id=submission.message_id,
                    queue_id=queue_id,
                )
            )
        result = SendResult(
            accepted=accepted,
            refused=refused,
            reply=Reply(250, (f"2.0.0 OK: queued as {queue_id}",)),
            queue_id=queue_id,
        )
        strict = self._strict if strict is None else strict
        return finish_result(result, submission, host=_HOST, strict=strict)

    def send_many(
        self,
        messages: Iterable[Outgoing],
        *,
        concurrency: int | None = None,
        progress: Progress | None = None,
    ) -> list[SendResult | MailTransferError]:
        """Record many messages; each entry is a `SendResult` or the error that stopped it.

        Args:
            messages: as `Mailer.send_many`: messages, or mappings of ``send()`` arguments.
            concurrency: accepted for compatibility (checked, then unused).
            progress: called as ``progress(done, total)`` after each message.
        """
        return [
            outcome
            for _, outcome in self.send_iter(messages, concurrency=concurrency, progress=progress)
        ]

    def send_iter(
        self,
        messages: Iterable[Outgoing],
        *,
        concurrency: int | None = None,
        progress: Progress | None = None,
    ) -> Iterator[tuple[int, SendResult | MailTransferError]]:
        """Like `send_many`, yielding ``(index, result or error)`` in input order.

        Raises:
            UsageError: ``concurrency`` is less than 1.
        """
        items = list(messages)
        if concurrency is not None and concurrency < 1:
            raise UsageError(f"concurrency must be at least 1, got {concurrency!r}")
        for index, item in enumerate(items):
            try:
                outcome: SendResult | MailTransferError = self._send_item(item)
            except MailTransferError as exc:
                outcome = exc
            if progress is not None:
                progress(index + 1, len(items))
            yield index, outcome

    def _send_item(self, item: Outgoing) -> SendResult:
        if isinstance(item, EmailMessage):
            return self.send(item)
        arguments = dict(item)
        message = arguments.pop("message", None)
        return self.send(message, **arguments)

    def verify(self) -> ServerInfo:
        """What `Mailer.verify` would report for the outbox's pretend server."""
        return ServerInfo(
            host=_HOST, extensions=self._extensions, tls_version=None, authenticated=False
        )

    # -- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        """Refuse further sends (the outbox keeps its messages)."""
        self._closed = True

    def __enter__(self) -> OutboxMailer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<OutboxMailer messages={len(self.outbox)}>"


class AsyncOutboxMailer:
    """The `AsyncMailer` look-alike of `OutboxMailer`: the same checks, ``await`` on each call.

    Args:
        outbox: share this `OutboxMailer`'s list and refusals (a new one by default).
    """

    def __init__(self, outbox: OutboxMailer | None = None) -> None:
        self.mailer = outbox if outbox is not None else OutboxMailer()
        """The synchronous outbox doing the work."""

    @property
    def outbox(self) -> list[OutboxMessage]:
        """The accepted messages, oldest first."""
        return self.mailer.outbox

    async def send(
        self, message: EmailMessage | bytes | None = None, /, **arguments: Any
    ) -> SendResult:
        """`OutboxMailer.send`, awaitable.

        Raises:
            UsageError, RecipientsRefused, PartialDelivery: as `OutboxMailer.send`.
        """
        return self.mailer.send(message, **arguments)

    async def send_many(
        self, messages: Iterable[Outgoing], **options: Any
    ) -> list[SendResult | MailTransferError]:
        """`OutboxMailer.send_many`, awaitable."""
        return self.mailer.send_many(messages, **options)

    async def verify(self) -> ServerInfo:
        """`OutboxMailer.verify`, awaitable."""
        return self.mailer.verify()

    async def aclose(self) -> None:
        """Refuse further sends."""
        self.mailer.close()

    async def __aenter__(self) -> AsyncOutboxMailer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def _key(address: str) -> str:
    local, at, domain = address.rpartition("@")
    return f"{local}{at}{domain.lower()}" if at else address
