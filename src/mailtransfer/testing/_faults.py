"""`Faults`: the refusals, delays and hang-ups a `RecordingServer` plays on cue."""

from __future__ import annotations

import threading
from dataclasses import dataclass

__all__ = ["Faults"]


@dataclass(slots=True)
class _Rule:
    command: str
    address: str | None
    reply: str | None
    delay: float
    remaining: int | None


def reply_line(code: int, text: str, *, lowest: int) -> str:
    """``"code text"`` for a scripted reply, after checking both (a ValueError if not usable)."""
    if not lowest <= code <= 599:
        classes = " or ".join(f"{c}xx" for c in range(lowest // 100, 6))
        raise ValueError(f"code must be a {classes} reply code, got {code!r}")
    if any(ch in text for ch in "\r\n\x00"):
        raise ValueError("text must be one line without CR, LF or NUL")
    return f"{code} {text}".rstrip()


_HANGUP_COMMANDS = frozenset(
    {
        "EHLO",
        "HELO",
        "LHLO",
        "STARTTLS",
        "AUTH",
        "MAIL",
        "RCPT",
        "DATA",
        "RSET",
        "NOOP",
        "QUIT",
        ".",
    }
)


class Faults:
    """Refusals, delays and hang-ups that a `RecordingServer` applies to later commands.

    Every method adds a rule; ``times`` limits how often it fires (``None``: for ever), so
    ``refuse_recipient("a@x.test", 451, "4.7.1 Try later", times=1)`` models greylisting.
    Rules are matched in the order they were added. Safe to call from any thread.

    Example:
        >>> with RecordingServer() as server:  # doctest: +SKIP
        ...     server.faults.refuse_recipient("nobody@example.test")
        ...     server.faults.reply_to_data(452, "4.3.1 Out of space", times=1)
    """

    def __init__(self) -> None:
        """Start with no rules."""
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []

    def _add(self, rule: _Rule, times: int | None) -> None:
        if times is not None and times < 1:
            raise ValueError(f"times must be a positive integer or None, got {times!r}")
        with self._lock:
            self._rules.append(rule)

    def refuse_sender(
        self,
        address: str | None = None,
        code: int = 550,
        text: str = "5.7.1 Sender refused",
        *,
        times: int | None = None,
    ) -> None:
        """Answer ``MAIL FROM`` with an error.

        Args:
            address: the reverse-path to refuse (case-insensitive); ``None`` for any sender.
            code: the reply code, 400-599.
            text: the reply text, conventionally starting with an enhanced status code.
            times: how many times the rule fires; ``None`` for every time.

        Raises:
            ValueError: ``code``, ``text`` or ``times`` is out of range.
        """
        reply = reply_line(code, text, lowest=400)
        self._add(_Rule("MAIL", address, reply, 0.0, times), times)

    def refuse_recipient(
        self,
        address: str | None = None,
        code: int = 550,
        text: str = "5.1.1 Mailbox unavailable",
        *,
        times: int | None = None,
    ) -> None:
        """Answer ``RCPT TO`` with an error.

        Args:
            address: the recipient to refuse (case-insensitive); ``None`` for every recipient.
            code: the reply code, 400-599.
            text: the reply text.
            times: how many times the rule fires; ``None`` for every time.

        Raises:
            ValueError: ``code``, ``text`` or ``times`` is out of range.
        """
        reply = reply_line(code, text, lowest=400)
        self._add(_Rule("RCPT", address, reply, 0.0, times), times)

    def reply_to_data(
        self,
        code: int = 554,
        text: str = "5.6.0 Message refused",
        *,
        recipient: str | None = None,
        times: int | None = None,
    ) -> None:
        """Replace the reply after the end of the data (the final ``.``).

        A 2xx code is allowed, to test how a client reads unusual success text. With LMTP,
        each recipient gets its own reply (RFC 2033 section 4.2) and ``recipient`` picks one;
        every recipient's reply uses up one of ``times``. A refused message is not recorded.

        Args:
            code: the reply code, 200-599.
            text: the reply text.
            recipient: for LMTP, the recipient whose reply changes; ``None`` for all.
            times: how many times the rule fires; ``None`` for every time.

        Raises:
            ValueError: ``code``, ``text`` or ``times`` is out of range.
        """
        reply = reply_line(code, text, lowest=200)
        self._add(_Rule("DATA", recipient, reply, 0.0, times), times)

    def delay(self, command: str, seconds: float, *, times: int | None = None) -> None:
        """Wait before replying to a command, e.g. to trip a client's timeout.

        Args:
            command: one of ``EHLO`` (also ``LHLO``), ``MAIL``, ``RCPT``, ``DATA`` (the reply
                after the final ``.``), ``RSET`` or ``NOOP``.
            seconds: how long to wait.
            times: how many times the rule fires; ``None`` for every time.

        Raises:
            ValueError: an unsupported command, or a negative delay.
        """
        verb = command.upper()
        if verb not in {"EHLO", "MAIL", "RCPT", "DATA", "RSET", "NOOP"}:
            raise ValueError(
                f"command must be EHLO, MAIL, RCPT, DATA, RSET or NOOP, not {command!r}"
            )
        if seconds < 0:
            raise ValueError(f"seconds must be zero or more, got {seconds!r}")
        self._add(_Rule(verb, None, None, seconds, times), times)

    def disconnect(
        self,
        command: str,
        code: int | None = None,
        text: str = "",
        *,
        times: int | None = None,
    ) -> None:
        """Hang up (TCP FIN) when ``command`` arrives, optionally after one last reply.

        ``"."`` hangs up after the whole message data arrived, without answering it: the
        client cannot know whether the message was delivered (mailtransfer raises
        `DeliveryUnknown`). ``disconnect("DATA", 354, "Go ahead")`` hangs up while the client
        is sending the data; ``disconnect("MAIL", 421, "4.3.2 Shutting down")`` is a server
        going away. A message cut off this way is not recorded.

        Args:
            command: ``EHLO``, ``HELO``, ``LHLO``, ``STARTTLS``, ``AUTH``, ``MAIL``, ``RCPT``,
                ``DATA``, ``RSET``, ``NOOP`` or ``QUIT``; or ``"."`` for the end of the data.
            code: a reply to send before hanging up (100-599); ``None`` for none.
            text: the reply text.
            times: how many times the rule fires; ``None`` for every time.

        Raises:
            ValueError: an unsupported command, or a bad ``code``, ``text`` or ``times``.
        """
        verb = command.upper()
        if verb not in _HANGUP_COMMANDS:
            raise ValueError(f"command must be one of {', '.join(sorted(_HANGUP_COMMANDS))}")
        reply = "" if code is None else reply_line(code, text, lowest=100)
        self._add(_Rule(f"HANGUP {verb}", None, reply, 0.0, times), times)

    def _hangup(self, command: str) -> str | None:
        """Consume a disconnect rule for ``command``: None, or the last reply (maybe ``""``)."""
        reply, _ = self._take(f"HANGUP {command.upper()}")
        return reply

    def clear(self) -> None:
        """Remove every rule."""
        with self._lock:
            self._rules.clear()

    def _take(self, command: str, address: str | None = None) -> tuple[str | None, float]:
        """Consume the matching rules: the first refusal and every delay."""
        reply: str | None = None
        delay = 0.0
        with self._lock:
            for rule in list(self._rules):
                if rule.command != command:
                    continue
                if rule.address is not None and (
                    address is None or rule.address.lower() != address.lower()
                ):
                    continue
                if rule.reply is None:
                    delay += rule.delay
                elif reply is None:
                    reply = rule.reply
                else:
                    continue
                if rule.remaining is not None:
                    rule.remaining -= 1
                    if rule.remaining == 0:
                        self._rules.remove(rule)
        return reply, delay
