"""Warm-up: a growing daily and hourly quota for a new sending IP or domain, kept in SQLite.

Strategy: :class:`WarmupSchedule` is a pure value (the quota of each day);
:class:`WarmupLimiter` counts what was sent in SQLite (stdlib ``sqlite3``), so a
restart, or several processes sharing the file, continue the same ramp. It
plugs into a mailer's pool with ``Mailer(..., limiter=...)``: the pool asks
``reserve()`` before each message, and an exhausted quota raises
:class:`~mailtransfer.deliverability.WarmupLimitReached` before any byte is
sent (or waits, up to ``max_wait``, when the next slot is close).

Days and hours count from the first message, not from midnight: the schedule
needs no time zone, and day 1 lasts 24 hours whenever it starts.
"""

from __future__ import annotations

import contextlib
import math
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ._errors import WarmupLimitReached

__all__ = ["WarmupLimiter", "WarmupSchedule", "WarmupStatus"]

_DAY = 86400.0
_HOUR = 3600.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS warmup_start (key TEXT PRIMARY KEY, started REAL NOT NULL);
CREATE TABLE IF NOT EXISTS warmup_sent (
    key TEXT NOT NULL, bucket TEXT NOT NULL, sent INTEGER NOT NULL, PRIMARY KEY (key, bucket)
);
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class WarmupSchedule:
    """How many messages may go out on each day of a warm-up, and how fast within a day.

    Example:
        >>> schedule = WarmupSchedule.ramp(first_day=50, target=10_000, days=14)
        >>> schedule.daily[:4], schedule.daily[-1]
        ((50, 75, 113, 170), 10000)
        >>> schedule.hourly_limit(0)  # 50 spread over at least 8 hours
        7

    Attributes:
        daily: the quota of day 1, 2, ...; after the last day there is no limit.
        spread_hours: each day's quota is spread over at least this many hours
            (the hourly quota is ``ceil(daily / spread_hours)``); 24 spreads
            evenly, 1 allows a whole day's quota in one hour.
    """

    daily: tuple[int, ...]
    spread_hours: float = 8.0

    def __post_init__(self) -> None:
        if not self.daily or any(n < 1 for n in self.daily):
            raise ValueError(
                f"daily must be a non-empty tuple of positive ints, got {self.daily!r}"
            )
        if not 1.0 <= self.spread_hours <= 24.0:
            raise ValueError(f"spread_hours must be from 1 to 24, got {self.spread_hours!r}")

    @classmethod
    def ramp(
        cls, *, first_day: int = 50, target: int = 50_000, days: int = 30, spread_hours: float = 8.0
    ) -> WarmupSchedule:
        """A geometric ramp from ``first_day`` to ``target`` messages a day over ``days`` days.

        Raises:
            ValueError: ``days`` under 2, or ``target`` below ``first_day``.
        """
        if days < 2 or target < first_day or first_day < 1:
            raise ValueError("need days >= 2 and 1 <= first_day <= target")
        growth = (target / first_day) ** (1 / (days - 1))
        daily = [round(first_day * growth**day) for day in range(days)]
        daily[-1] = target
        return cls(daily=tuple(daily), spread_hours=spread_hours)

    @property
    def days(self) -> int:
        """How many days the warm-up lasts."""
        return len(self.daily)

    def daily_limit(self, day: int) -> int | None:
        """The quota of ``day`` (0 is the first day); ``None`` once the warm-up is over."""
        return self.daily[day] if 0 <= day < len(self.daily) else None

    def hourly_limit(self, day: int) -> int | None:
        """The hourly quota on ``day``; ``None`` once the warm-up is over."""
        limit = self.daily_limit(day)
        return None if limit is None else math.ceil(limit / self.spread_hours)


@dataclass(frozen=True, slots=True, kw_only=True)
class WarmupStatus:
    """Where a warm-up stands.

    Attributes:
        day: the current day (0 is the first); ``None`` before the first message.
        sent_today: messages counted today.
        daily_limit: today's quota (``None``: the warm-up is over, or not started).
        sent_this_hour: messages counted this hour.
        hourly_limit: this hour's quota (``None`` as for ``daily_limit``).
        finished: every day of the schedule has passed.
    """

    day: int | None
    sent_today: int
    daily_limit: int | None
    sent_this_hour: int
    hourly_limit: int | None
    finished: bool


class WarmupLimiter:
    """Enforces a :class:`WarmupSchedule`, counting messages in an SQLite file.

    Give it to a mailer (``Mailer(url, limiter=WarmupLimiter(...))``): every
    message reserves a slot before its connection is used. Several mailers,
    threads or processes may share one file and ``key``: SQLite's write lock
    keeps the counts exact. A slot is counted when it is reserved, so a message
    refused by the server still counts (receivers judge what you attempt).

    Example:
        >>> schedule = WarmupSchedule(daily=(2, 4), spread_hours=1)
        >>> limiter = WarmupLimiter(schedule, ":memory:", key="ip-1")
        >>> limiter.reserve(0.0), limiter.reserve(0.0)
        (0.0, 0.0)
        >>> limiter.reserve(0.0)  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        WarmupLimitReached: warm-up day 1 of 2: the daily quota of 2 is used up; ...

    Args:
        schedule: the quotas.
        path: the SQLite database file (created if missing); ``":memory:"``
            keeps the counts in this process only (tests, dry runs).
        key: which IP or domain this warm-up is for; one file can hold many.
        max_wait: when the next slot opens within this many seconds, wait for
            it instead of raising (the pool sleeps; default 0: raise at once).
        clock: wall-clock time in seconds (``time.time``); tests pass their own.
    """

    def __init__(
        self,
        schedule: WarmupSchedule,
        path: str | Path,
        *,
        key: str = "default",
        max_wait: float = 0.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.schedule = schedule
        self.key = key
        self.max_wait = max_wait
        self._clock = clock
        self._path = str(path)
        self._memory = sqlite3.connect(":memory:") if self._path == ":memory:" else None
        db = self._memory or sqlite3.connect(self._path, timeout=30.0)
        try:
            db.executescript(_SCHEMA)  # commits on its own; IF NOT EXISTS makes it idempotent
        finally:
            if self._memory is None:
                db.close()

    def __repr__(self) -> str:
        return f"<WarmupLimiter key={self.key!r} days={self.schedule.days} path={self._path!r}>"

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        db = self._memory or sqlite3.connect(self._path, timeout=30.0, isolation_level=None)
        try:
            if self._memory is not None:
                db.isolation_level = None
            db.execute("BEGIN IMMEDIATE")  # take the write lock now: read-then-write is atomic
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        finally:
            if self._memory is None:
                db.close()

    def reserve(self, now: float = 0.0) -> float:
        """Count one message against today's and this hour's quota.

        The pool calls this before each message; ``now`` is the pool's
        monotonic clock, which this limiter ignores (quotas follow wall-clock
        time from ``clock``).

        Returns:
            0 when the slot is free now; else the seconds to wait for it
            (never more than ``max_wait``).

        Raises:
            WarmupLimitReached: the quota is used up and the next slot is more
                than ``max_wait`` seconds away. Nothing was counted.
        """
        del now
        current = self._clock()
        with self._transaction() as db:
            started = self._started(db, current)
            elapsed = max(0.0, current - started)
            slot, reason = elapsed, ""
            while True:  # find the first moment with room in both the day and the hour
                day, hour = int(slot // _DAY), int(slot // _HOUR)
                daily, hourly = self.schedule.daily_limit(day), self.schedule.hourly_limit(day)
                if daily is None or hourly is None:
                    return max(0.0, slot - elapsed)  # the warm-up is over: no quota
                if self._sent(db, f"d{day}") >= daily:
                    slot, reason = (day + 1) * _DAY, f"the daily quota of {daily} is used up"
                elif self._sent(db, f"h{hour}") >= hourly:
                    slot, reason = (hour + 1) * _HOUR, f"the hourly quota of {hourly} is used up"
                else:
                    break
                if slot - elapsed > self.max_wait:
                    wait = slot - elapsed
                    raise WarmupLimitReached(
                        f"warm-up day {int(elapsed // _DAY) + 1} of {self.schedule.days}:"
                        f" {reason}; the next slot opens in {wait:.0f} s",
                        retry_after=wait,
                    )
            self._count(db, f"d{day}")
            self._count(db, f"h{hour}")
            return slot - elapsed

    def status(self) -> WarmupStatus:
        """Where the warm-up stands now (reads the database; counts nothing)."""
        current = self._clock()
        with self._transaction() as db:
            row = db.execute("SELECT started FROM warmup_start WHERE key = ?", (self.key,))
            found = row.fetchone()
            if found is None:
                return WarmupStatus(
                    day=None,
                    sent_today=0,
                    daily_limit=self.schedule.daily_limit(0),
                    sent_this_hour=0,
                    hourly_limit=self.schedule.hourly_limit(0),
                    finished=False,
                )
            elapsed = max(0.0, current - float(found[0]))
            day, hour = int(elapsed // _DAY), int(elapsed // _HOUR)
            return WarmupStatus(
                day=day,
                sent_today=self._sent(db, f"d{day}"),
                daily_limit=self.schedule.daily_limit(day),
                sent_this_hour=self._sent(db, f"h{hour}"),
                hourly_limit=self.schedule.hourly_limit(day),
                finished=day >= self.schedule.days,
            )

    def _started(self, db: sqlite3.Connection, current: float) -> float:
        db.execute(
            "INSERT OR IGNORE INTO warmup_start (key, started) VALUES (?, ?)", (self.key, current)
        )
        row = db.execute("SELECT started FROM warmup_start WHERE key = ?", (self.key,)).fetchone()
        return float(row[0])

    def _sent(self, db: sqlite3.Connection, bucket: str) -> int:
        row = db.execute(
            "SELECT sent FROM warmup_sent WHERE key = ? AND bucket = ?", (self.key, bucket)
        ).fetchone()
        return 0 if row is None else int(row[0])

    def _count(self, db: sqlite3.Connection, bucket: str) -> None:
        db.execute(
            "INSERT INTO warmup_sent (key, bucket, sent) VALUES (?, ?, 1)"
            " ON CONFLICT (key, bucket) DO UPDATE SET sent = sent + 1",
            (self.key, bucket),
        )
