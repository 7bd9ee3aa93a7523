"""Frozen configuration values shared by the connections, the pool and the mailer."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Timeouts"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeouts:
    """Deadlines, in seconds, for each phase of a session (``None`` waits forever).

    Each is a *deadline* for the whole phase, not a limit per ``recv()``: a
    server that trickles one byte at a time cannot stretch a command past it.
    The defaults are shorter than RFC 5321 4.5.3.2's server-side minimums,
    which suit MTAs with queues more than applications waiting on ``send()``.

    Example:
        >>> Timeouts(command=10.0).connect
        15.0

    Attributes:
        connect: opening the TCP connection (and the TLS handshake for implicit TLS).
        greeting: from connect to the complete 220 greeting.
        command: from writing a command (or a pipelined group) to its last reply;
            also each STARTTLS handshake and each write of a body chunk.
        data: from the end-of-data mark to its reply (RFC 5321 suggests 10 minutes:
            the server may be scanning the message).
    """

    connect: float | None = 15.0
    greeting: float | None = 30.0
    command: float | None = 60.0
    data: float | None = 300.0

    @classmethod
    def all(cls, seconds: float | None) -> Timeouts:
        """The same deadline for every phase."""
        return cls(connect=seconds, greeting=seconds, command=seconds, data=seconds)

    def __post_init__(self) -> None:
        for name in ("connect", "greeting", "command", "data"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(
                    f"Timeouts.{name} must be a positive number or None, got {value!r}"
                )


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolLimits:
    """How many connections a pool keeps, and for how long.

    Attributes:
        max_connections: the most connections open to one server at once.
        max_messages_per_connection: a connection is closed (QUIT) after this many
            messages (0: no limit); servers often cap it around 100 to 1000.
        idle_timeout: idle connections older than this many seconds are closed.
        check_after_idle: a connection idle for longer than this gets a NOOP
            before it is reused, so a connection the server dropped is not used.
        acquire_timeout: how long ``send()`` waits for a free connection (None: forever).
    """

    max_connections: int = 8
    max_messages_per_connection: int = 1000
    idle_timeout: float = 30.0
    check_after_idle: float = 5.0
    acquire_timeout: float | None = None

    def __post_init__(self) -> None:
        if self.max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, got {self.max_connections!r}")
        if self.max_messages_per_connection < 0:
            raise ValueError("max_messages_per_connection must be 0 (no limit) or more")
