"""Pure pool bookkeeping, shared by the sync and async pools: no I/O, no locks, no clock.

Strategy: :class:`PoolBook` only answers questions and moves connections
between lists; every method that decides to close connections *returns* them,
and the caller closes them after releasing its lock (httpcore's pattern).
Idle connections are reused last-in first-out, so the warmest one serves and
the coldest ones age out. Time comes in as an argument.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from .config import PoolLimits

__all__ = [
    "Limiter",
    "PoolBook",
    "PoolStats",
    "Pooled",
    "RateLimiter",
    "RelaySet",
    "pacer",
    "wait_time",
]


class Pooled(Protocol):
    """What the pool asks of a connection."""

    @property
    def is_usable(self) -> bool:
        """Open, healthy and between transactions."""

    @property
    def messages_sent(self) -> int:
        """How many messages went through this connection."""


C = TypeVar("C", bound=Pooled)
T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolStats:
    """A snapshot of a pool's counts, for monitoring and tests.

    Attributes:
        in_use: connections leased to a sender right now.
        idle: open connections waiting in the pool.
        opening: connections being connected (greeting, EHLO, TLS, AUTH).
        closing: connections taken out of the pool and being closed (QUIT).
        max_seen: the most connections that counted against the limit at once.
        closed: whether the pool was closed.
    """

    in_use: int
    idle: int
    opening: int
    closing: int
    max_seen: int
    closed: bool

    @property
    def total(self) -> int:
        """Every connection that counts against ``max_connections``."""
        return self.in_use + self.idle + self.opening + self.closing


@dataclass(slots=True)
class PoolBook(Generic[C]):
    """Which connections are idle, in use or being opened, and which to close."""

    limits: PoolLimits
    idle: list[tuple[C, float]] = field(default_factory=list)
    in_use: int = 0
    opening: int = 0
    closing: int = 0
    """Connections handed to the caller to close: they count against the limit until
    :meth:`finished_closing`, so the server never sees more than ``max_connections``."""
    max_seen: int = 0
    closed: bool = False
    not_before: float = 0.0
    """No new connection is opened before this time (a 421 or rate deferral)."""

    @property
    def total(self) -> int:
        """Connections open, being opened or being closed."""
        return len(self.idle) + self.in_use + self.opening + self.closing

    def take(self, now: float) -> tuple[C | None, bool, list[C]]:
        """Take the most recently used idle connection, if any.

        Returns:
            ``(connection, needs_check, to_close)``: the connection (None if
            none is idle), whether it was idle long enough to deserve a NOOP,
            and the expired connections the caller must close.
        """
        to_close = self.expire(now)
        while self.idle:
            conn, since = self.idle.pop()
            if not conn.is_usable:
                self.closing += 1
                to_close.append(conn)
                continue
            self.in_use += 1
            return conn, now - since > self.limits.check_after_idle, to_close
        return None, False, to_close

    def may_open(self, now: float) -> bool:
        """Whether a new connection may be opened now."""
        return (
            not self.closed and self.total < self.limits.max_connections and now >= self.not_before
        )

    def start_opening(self) -> None:
        """Count a connection being opened against the limit."""
        self.opening += 1
        self.max_seen = max(self.max_seen, self.total)

    def opened(self, ok: bool) -> None:
        """A connection finished opening (``ok``) or failed to."""
        self.opening -= 1
        if ok:
            self.in_use += 1

    def give_back(self, conn: C, now: float) -> list[C]:
        """Return a connection after use; returns what the caller must close."""
        self.in_use -= 1
        limit = self.limits.max_messages_per_connection
        worn_out = limit and conn.messages_sent >= limit
        if self.closed or not conn.is_usable or worn_out:
            self.closing += 1
            return [conn]
        self.idle.append((conn, now))
        return []

    def discard(self) -> None:
        """A connection in use was closed by its user (it will not come back).

        The caller closes the connection *before* calling this, so the slot is
        free only once the socket is gone.
        """
        self.in_use -= 1

    def finished_closing(self, count: int) -> None:
        """The caller closed ``count`` connections this book handed it to close."""
        self.closing -= count

    def expire(self, now: float) -> list[C]:
        """Remove idle connections older than ``idle_timeout``; returns them to close."""
        cutoff = now - self.limits.idle_timeout
        idle = self.idle
        if not idle or min(idle[0][1], idle[-1][1]) >= cutoff:
            # Returned in time order, so the oldest is first: nothing expired (the usual case).
            # (``[-1]`` too: threads may hand in clock readings a hair out of order.)
            return []
        expired = [conn for conn, since in idle if since < cutoff]
        if expired:
            self.idle = [(conn, since) for conn, since in self.idle if since >= cutoff]
            self.closing += len(expired)
        return expired

    def defer(self, now: float, seconds: float) -> None:
        """Open no new connection for ``seconds`` (the server asked us to slow down)."""
        self.not_before = max(self.not_before, now + seconds)

    def close(self) -> list[C]:
        """Close the pool; returns every idle connection (in-use ones close on return)."""
        self.closed = True
        idle = [conn for conn, _ in self.idle]
        self.idle.clear()
        self.closing += len(idle)
        return idle

    def stats(self) -> PoolStats:
        """A snapshot of the counts."""
        return PoolStats(
            in_use=self.in_use,
            idle=len(self.idle),
            opening=self.opening,
            closing=self.closing,
            max_seen=self.max_seen,
            closed=self.closed,
        )

    def describe(self) -> str:
        """Counts for reprs: ``[connections: 2 in use, 1 idle, 0 opening, 0 closing]``."""
        state = "closed | " if self.closed else ""
        return (
            f"[{state}connections: {self.in_use} in use, {len(self.idle)} idle,"
            f" {self.opening} opening, {self.closing} closing]"
        )


@dataclass(slots=True)
class RateLimiter:
    """A token bucket: at most ``rate`` messages per second, with bursts of ``burst``.

    :meth:`reserve` books a slot and says how long to wait for it, so every
    connection of a pool shares one budget.
    """

    rate: float
    burst: float = 1.0
    _tokens: float = 0.0
    """Tokens in the bucket; negative while callers wait for slots already booked."""
    _updated: float | None = None

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise ValueError(f"rate must be positive, got {self.rate!r}")
        self.burst = max(self.burst, 1.0)

    def reserve(self, now: float) -> float:
        """Take one slot; return the seconds to wait before using it (0 when free now)."""
        if self._updated is None:
            self._tokens, self._updated = self.burst, now
        if now > self._updated:
            # A caller may bring a slightly older clock reading (threads): never refill backwards.
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
        self._tokens -= 1.0
        if self._tokens >= 0:
            return 0.0
        return self._updated - self._tokens / self.rate - now


class Limiter(Protocol):
    """What a pool asks of a pacing hook (``limiter=``): one slot per message.

    :class:`RateLimiter` is one; a warm-up schedule
    (:class:`mailtransfer.deliverability.WarmupLimiter`) is another.
    """

    def reserve(self, now: float) -> float:
        """Book a slot for one message; return the seconds to wait before using it.

        ``now`` is the pool's monotonic clock. Raise a ``MailTransferError`` to
        refuse the message before it is sent (the caller gets the error).
        """


@dataclass(slots=True)
class _Both:
    first: Limiter
    second: Limiter

    def reserve(self, now: float) -> float:
        return max(self.first.reserve(now), self.second.reserve(now))


def pacer(rate_limit: float | None, limiter: Limiter | None) -> Limiter | None:
    """The pool's pacing: a ``rate_limit`` token bucket, a ``limiter`` hook, both, or none."""
    rate = RateLimiter(rate_limit, burst=1.0) if rate_limit else None
    if rate is not None and limiter is not None:
        # The hook goes first: when it refuses, no token of the bucket is spent.
        return _Both(limiter, rate)
    return rate or limiter


def wait_time(book: PoolBook[C], now: float, deadline: float | None) -> float | None:
    """How long a caller waiting for a connection should sleep before looking again.

    ``None`` means until woken; ``0`` or less means the deadline has passed.
    """
    wait = None if deadline is None else deadline - now
    if wait is not None and wait <= 0:
        return wait
    if book.not_before > now:
        pause = book.not_before - now
        wait = pause if wait is None else min(wait, pause)
    return wait


@dataclass(slots=True)
class RelaySet(Generic[T]):
    """Several relays used round-robin; one that fails to connect sits out a cool-down."""

    relays: tuple[T, ...]
    cooldown: float = 30.0
    _next: int = 0
    _cooling: dict[int, float] = field(default_factory=dict)

    def order(self, now: float) -> list[T]:
        """The relays to try for the next message, best first (cooling ones last)."""
        count = len(self.relays)
        if count == 1:
            return [self.relays[0]]  # one relay: nothing to rotate, nowhere else to go
        start = self._next % count
        self._next += 1
        rotated = [(start + i) % count for i in range(count)]
        ready = [i for i in rotated if self._cooling.get(i, 0.0) <= now]
        cooling = [i for i in rotated if self._cooling.get(i, 0.0) > now]
        return [self.relays[i] for i in ready + cooling]

    def cool(self, relay: T, now: float) -> None:
        """Skip ``relay`` for the cool-down period (it failed at connect or greeting)."""
        self._cooling[self.relays.index(relay)] = now + self.cooldown
