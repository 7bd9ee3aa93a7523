"""Pure pool bookkeeping: ``PoolBook``, ``RateLimiter``, ``RelaySet`` and ``wait_time``.

No sockets and no clock: time is an argument, and the connections are small stand-ins that
have just the two properties the book reads.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from mailtransfer._pooling import PoolBook, RateLimiter, RelaySet, wait_time
from mailtransfer.config import PoolLimits


@dataclass(eq=False)
class Conn:
    """A stand-in connection: usable or not, and how many messages it carried."""

    name: str = "c"
    is_usable: bool = True
    messages_sent: int = 0


def book(**limits: float) -> PoolBook[Conn]:
    """A book with the given limits."""
    return PoolBook(PoolLimits(**limits))  # type: ignore[arg-type]


def lease_new(pool: PoolBook[Conn], name: str = "c") -> Conn:
    """Open a connection through the book, as the pools do."""
    assert pool.may_open(0.0)
    pool.start_opening()
    pool.opened(ok=True)
    return Conn(name)


# -- PoolBook ----------------------------------------------------------------------------------


def test_empty_book_has_nothing_to_take() -> None:
    """A new book has no idle connection and allows opening one."""
    pool = book()
    assert pool.take(0.0) == (None, False, [])
    assert pool.may_open(0.0)


def test_opening_counts_against_the_limit() -> None:
    """Connections being opened count: no more than max_connections at once."""
    pool = book(max_connections=2)
    pool.start_opening()
    pool.start_opening()
    assert not pool.may_open(0.0)
    pool.opened(ok=False)
    assert pool.may_open(0.0)
    assert pool.stats().opening == 1


def test_given_back_connection_is_reused_last_in_first_out() -> None:
    """The most recently returned connection serves next (the warmest)."""
    pool = book()
    first, second = lease_new(pool, "first"), lease_new(pool, "second")
    assert pool.give_back(first, 1.0) == []
    assert pool.give_back(second, 2.0) == []
    conn, needs_check, to_close = pool.take(2.5)
    assert conn is second
    assert (needs_check, to_close) == (False, [])
    assert pool.stats().in_use == 1


def test_connection_idle_past_check_after_idle_needs_check() -> None:
    """A connection idle longer than ``check_after_idle`` is handed out with a NOOP due."""
    pool = book(check_after_idle=5.0, idle_timeout=60.0)
    pool.give_back(lease_new(pool), 10.0)
    _, needs_check, _ = pool.take(15.5)
    assert needs_check


def test_expired_connections_handed_back_to_close_and_still_counted() -> None:
    """Idle past ``idle_timeout``: returned for closing, and counted until closed."""
    pool = book(max_connections=1, idle_timeout=30.0)
    old = lease_new(pool)
    pool.give_back(old, 0.0)
    conn, _, to_close = pool.take(31.0)
    assert conn is None
    assert to_close == [old]
    assert not pool.may_open(31.0)  # the closing one still holds the only slot
    pool.finished_closing(1)
    assert pool.may_open(31.0)


def test_unusable_idle_connection_discarded_on_take() -> None:
    """An idle connection that went bad (the server closed it) is closed, not handed out."""
    pool = book()
    bad = lease_new(pool)
    pool.give_back(bad, 0.0)
    bad.is_usable = False
    conn, _, to_close = pool.take(1.0)
    assert conn is None
    assert to_close == [bad]
    assert pool.stats().closing == 1


def test_broken_connection_not_kept() -> None:
    """A connection given back unusable (421, timeout, protocol error) is to be closed."""
    pool = book()
    conn = lease_new(pool)
    conn.is_usable = False
    assert pool.give_back(conn, 0.0) == [conn]
    assert pool.stats().idle == 0


@pytest.mark.parametrize(("sent", "kept"), [(2, True), (3, False), (4, False)])
def test_worn_out_connection_closed(sent: int, kept: bool) -> None:
    """A connection that carried ``max_messages_per_connection`` messages is retired."""
    pool = book(max_messages_per_connection=3)
    conn = lease_new(pool)
    conn.messages_sent = sent
    assert (pool.give_back(conn, 0.0) == []) is kept


def test_zero_max_messages_means_no_limit() -> None:
    """``max_messages_per_connection=0`` never retires a connection."""
    pool = book(max_messages_per_connection=0)
    conn = lease_new(pool)
    conn.messages_sent = 10**6
    assert pool.give_back(conn, 0.0) == []


def test_close_returns_idle_and_retires_the_rest_on_return() -> None:
    """Closing hands back the idle connections; one in use is closed when returned."""
    pool = book()
    idle, busy = lease_new(pool, "idle"), lease_new(pool, "busy")
    pool.give_back(idle, 0.0)
    assert pool.close() == [idle]
    assert not pool.may_open(0.0)
    assert pool.give_back(busy, 1.0) == [busy]
    assert pool.stats().closed


def test_defer_blocks_new_connections_until_time() -> None:
    """After a deferral no connection is opened until the time has passed; deferrals extend."""
    pool = book()
    pool.defer(10.0, 5.0)
    pool.defer(11.0, 1.0)  # a shorter, later deferral does not shorten the first
    assert not pool.may_open(14.9)
    assert pool.may_open(15.0)


def test_max_seen_records_the_peak() -> None:
    """``max_seen`` is the largest number of counted connections at any one time."""
    pool = book(max_connections=5)
    conns = [lease_new(pool, str(i)) for i in range(3)]
    for conn in conns:
        pool.give_back(conn, 0.0)
    lease_new(pool)
    assert pool.stats().max_seen == 4
    assert pool.stats().total == 4


def test_describe_shows_counts() -> None:
    """The repr text names each count."""
    pool = book()
    lease_new(pool)
    assert pool.describe() == "[connections: 1 in use, 0 idle, 0 opening, 0 closing]"


class PoolMachine(RuleBasedStateMachine):
    """Random sequences of pool operations never break the counts or the limit."""

    LIMIT = 3

    def __init__(self) -> None:
        super().__init__()
        self.pool: PoolBook[Conn] = PoolBook(
            PoolLimits(
                max_connections=self.LIMIT,
                max_messages_per_connection=4,
                idle_timeout=10.0,
                check_after_idle=2.0,
            )
        )
        self.now = 0.0
        self.leased: list[Conn] = []
        self.opening = 0
        self.closing: list[Conn] = []
        self.made = 0

    @rule(seconds=st.floats(min_value=0.0, max_value=6.0))
    def tick(self, seconds: float) -> None:
        """Time passes."""
        self.now += seconds

    @rule()
    def acquire(self) -> None:
        """Take an idle connection, or reserve a slot to open one."""
        conn, _, to_close = self.pool.take(self.now)
        self.closing += to_close
        if conn is not None:
            assert conn.is_usable
            self.leased.append(conn)
        elif self.pool.may_open(self.now):
            self.pool.start_opening()
            self.opening += 1

    @precondition(lambda self: self.opening > 0)
    @rule(ok=st.booleans())
    def finish_opening(self, ok: bool) -> None:
        """An opening connection succeeds or fails."""
        self.pool.opened(ok=ok)
        self.opening -= 1
        if ok:
            self.made += 1
            self.leased.append(Conn(str(self.made)))

    @precondition(lambda self: bool(self.leased))
    @rule(index=st.integers(min_value=0), usable=st.booleans())
    def release(self, index: int, usable: bool) -> None:
        """A leased connection carries a message and comes back, healthy or not."""
        conn = self.leased.pop(index % len(self.leased))
        conn.messages_sent += 1
        conn.is_usable = usable
        self.closing += self.pool.give_back(conn, self.now)

    @precondition(lambda self: bool(self.leased))
    @rule()
    def drop(self) -> None:
        """A leased connection fails its health check and is closed by its user."""
        self.leased.pop()
        self.pool.discard()

    @precondition(lambda self: bool(self.closing))
    @rule()
    def finish_closing(self) -> None:
        """The caller finished closing what the book handed it."""
        self.pool.finished_closing(len(self.closing))
        self.closing.clear()

    @rule()
    def close(self) -> None:
        """The pool is closed."""
        self.closing += self.pool.close()

    @invariant()
    def counts_match_the_world(self) -> None:
        """The book's counts are exactly what the callers hold."""
        stats = self.pool.stats()
        assert stats.in_use == len(self.leased)
        assert stats.opening == self.opening
        assert stats.closing == len(self.closing)
        assert min(stats.in_use, stats.idle, stats.opening, stats.closing) >= 0

    @invariant()
    def never_over_the_limit(self) -> None:
        """Open, opening and closing connections together never exceed the limit."""
        assert self.pool.total <= self.LIMIT
        assert self.pool.max_seen <= self.LIMIT

    @invariant()
    def idle_connections_are_usable_and_not_leased(self) -> None:
        """Nothing idle is also leased or being closed."""
        idle = [conn for conn, _ in self.pool.idle]
        assert all(conn.is_usable for conn in idle)
        assert not set(map(id, idle)) & set(map(id, self.leased + self.closing))


TestPoolMachine = PoolMachine.TestCase


# -- wait_time -----------------------------------------------------------------------------------


def test_wait_time_none_without_deadline_or_deferral() -> None:
    """With no deadline and no deferral the caller waits until woken."""
    assert wait_time(book(), 5.0, None) is None


def test_wait_time_until_deadline() -> None:
    """The wait ends at the caller's deadline; past it, the result is not positive."""
    assert wait_time(book(), 5.0, 7.5) == 2.5
    remaining = wait_time(book(), 8.0, 7.5)
    assert remaining is not None
    assert remaining <= 0


def test_wait_time_until_deferral_ends() -> None:
    """A deferral shortens the wait so the caller looks again when it ends."""
    pool = book()
    pool.defer(0.0, 3.0)
    assert wait_time(pool, 1.0, None) == 2.0
    assert wait_time(pool, 1.0, 1.5) == 0.5


# -- RateLimiter ---------------------------------------------------------------------------------


def test_first_message_free_then_spaced_by_rate() -> None:
    """At 10/s, messages asked for at once get slots 0.1 s apart."""
    limiter = RateLimiter(10.0)
    waits = [limiter.reserve(100.0) for _ in range(4)]
    assert waits == pytest.approx([0.0, 0.1, 0.2, 0.3])


def test_tokens_refill_with_time_up_to_burst() -> None:
    """Idle time refills the bucket, but never beyond ``burst``."""
    limiter = RateLimiter(2.0, burst=3.0)
    for _ in range(3):
        assert limiter.reserve(0.0) == 0.0
    assert limiter.reserve(0.0) == pytest.approx(0.5)
    # A long pause refills only three tokens.
    waits = [limiter.reserve(1000.0) for _ in range(4)]
    assert waits == pytest.approx([0.0, 0.0, 0.0, 0.5])


def test_older_clock_reading_does_not_refill() -> None:
    """A caller with a slightly older ``now`` (threads) cannot create tokens."""
    limiter = RateLimiter(1.0)
    assert limiter.reserve(10.0) == 0.0
    assert limiter.reserve(9.0) == pytest.approx(2.0)  # slot at 11.0, asked at 9.0


@pytest.mark.parametrize("rate", [0.0, -1.0, float("nan")])
def test_rate_must_be_positive(rate: float) -> None:
    """A rate that is not positive is refused."""
    with pytest.raises(ValueError, match="rate must be positive"):
        RateLimiter(rate)


@given(
    rate=st.floats(min_value=0.5, max_value=1000.0),
    burst=st.integers(min_value=1, max_value=5),
    gaps=st.lists(st.floats(min_value=0.0, max_value=2.0), min_size=1, max_size=60),
)
def test_booked_slots_never_exceed_the_rate(rate: float, burst: int, gaps: list[float]) -> None:
    """However callers arrive, in any window at most ``burst + rate * window`` slots start."""
    limiter = RateLimiter(rate, burst=float(burst))
    now = 0.0
    slots: list[float] = []
    for gap in gaps:
        now += gap
        wait = limiter.reserve(now)
        assert wait >= 0.0
        slots.append(now + wait)
    slots.sort()
    for first in range(len(slots)):
        for last in range(first, len(slots)):
            window = slots[last] - slots[first]
            assert last - first + 1 <= burst + rate * window + 1e-6


# -- RelaySet ------------------------------------------------------------------------------------


def test_relays_rotate_round_robin() -> None:
    """Each call starts one relay further along."""
    relays = RelaySet(("a", "b", "c"))
    assert [relays.order(0.0) for _ in range(4)] == [
        ["a", "b", "c"],
        ["b", "c", "a"],
        ["c", "a", "b"],
        ["a", "b", "c"],
    ]


def test_cooling_relay_tried_last_until_cooldown_ends() -> None:
    """A relay that failed goes to the back for ``cooldown`` seconds, then rejoins."""
    relays = RelaySet(("a", "b", "c"), cooldown=30.0)
    relays.cool("a", 100.0)
    assert relays.order(110.0) == ["b", "c", "a"]
    assert relays.order(120.0) == ["b", "c", "a"]
    assert relays.order(129.9) == ["c", "b", "a"]
    assert relays.order(130.0) == ["a", "b", "c"]


def test_every_relay_cooling_still_returns_all() -> None:
    """When all relays cool down, all are still offered (nothing else to try)."""
    relays = RelaySet(("a", "b"), cooldown=30.0)
    relays.cool("a", 0.0)
    relays.cool("b", 0.0)
    assert sorted(relays.order(1.0)) == ["a", "b"]


@given(
    count=st.integers(min_value=1, max_value=6),
    cooled=st.sets(st.integers(min_value=0, max_value=5)),
    calls=st.integers(min_value=1, max_value=20),
)
def test_order_is_a_permutation_with_cooling_last(count: int, cooled: set[int], calls: int) -> None:
    """Every order lists each relay once, and cooling relays come after the ready ones."""
    names = tuple(f"r{i}" for i in range(count))
    relays = RelaySet(names, cooldown=10.0)
    cooling = {names[i] for i in cooled if i < count}
    for name in cooling:
        relays.cool(name, 0.0)
    for _ in range(calls):
        order = relays.order(5.0)
        assert sorted(order) == sorted(names)
        ready = [name for name in order if name not in cooling]
        assert order == ready + [name for name in order if name in cooling]
