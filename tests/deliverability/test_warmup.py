"""Warm-up schedules: the quota arithmetic, SQLite persistence, and the pool hook in real sends."""

from __future__ import annotations

import asyncio
import pickle
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailtransfer import AsyncMailer, Mailer
from mailtransfer.deliverability import WarmupLimiter, WarmupLimitReached, WarmupSchedule
from mailtransfer.testing import RecordingServer
from mailtransfer.tls import NoTLS

HOUR, DAY = 3600.0, 86400.0


class Clock:
    """A wall clock the test moves by hand."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_ramp_grows_to_target() -> None:
    """ramp() starts at first_day, never shrinks, and ends at target."""
    schedule = WarmupSchedule.ramp(first_day=20, target=5000, days=10)
    assert schedule.daily[0] == 20
    assert schedule.daily[-1] == 5000
    assert list(schedule.daily) == sorted(schedule.daily)
    assert schedule.daily_limit(10) is None
    assert schedule.hourly_limit(10) is None


@given(
    first=st.integers(1, 1000),
    extra=st.integers(0, 10**6),
    days=st.integers(2, 60),
    spread=st.floats(1, 24),
)
def test_ramp_property(first: int, extra: int, days: int, spread: float) -> None:
    """Every ramp is non-decreasing, days long, and its hourly quota covers the day's."""
    schedule = WarmupSchedule.ramp(first_day=first, target=first + extra, days=days)
    schedule = WarmupSchedule(daily=schedule.daily, spread_hours=spread)
    assert schedule.days == days
    assert all(a <= b for a, b in zip(schedule.daily, schedule.daily[1:], strict=False))
    for day in range(days):
        hourly = schedule.hourly_limit(day)
        assert hourly is not None
        assert hourly * spread >= schedule.daily[day]


@pytest.mark.parametrize("bad", [(), (0,), (5, -1)])
def test_schedule_refuses_bad_quotas(bad: tuple[int, ...]) -> None:
    """Empty or non-positive quotas are refused."""
    with pytest.raises(ValueError, match="daily"):
        WarmupSchedule(daily=bad)


def test_hourly_then_daily_quota(tmp_path: Path) -> None:
    """The hourly quota stops the 3rd message of an hour; the daily quota the 5th of the day."""
    clock = Clock()
    limiter = WarmupLimiter(
        WarmupSchedule(daily=(4, 8), spread_hours=2), tmp_path / "w.db", clock=clock
    )
    assert limiter.reserve() == 0.0
    assert limiter.reserve() == 0.0
    with pytest.raises(WarmupLimitReached, match="hourly quota of 2") as caught:
        limiter.reserve()
    assert caught.value.retry_after == pytest.approx(HOUR)
    clock.now += HOUR
    assert limiter.reserve() == 0.0
    assert limiter.reserve() == 0.0
    clock.now += HOUR
    with pytest.raises(WarmupLimitReached, match="daily quota of 4") as caught:
        limiter.reserve()
    assert caught.value.retry_after == pytest.approx(DAY - 2 * HOUR)
    status = limiter.status()
    assert (status.day, status.sent_today, status.daily_limit) == (0, 4, 4)
    clock.now += DAY
    assert limiter.status().daily_limit == 8
    assert limiter.reserve() == 0.0


def test_after_the_last_day_no_limit(tmp_path: Path) -> None:
    """Once every day has passed, reserve() never refuses."""
    clock = Clock()
    limiter = WarmupLimiter(WarmupSchedule(daily=(1,)), tmp_path / "w.db", clock=clock)
    limiter.reserve()
    clock.now += DAY
    assert all(limiter.reserve() == 0.0 for _ in range(50))
    assert limiter.status().finished


def test_progress_survives_a_restart(tmp_path: Path) -> None:
    """A new limiter on the same file continues the day and the counts; keys stay apart."""
    clock = Clock()
    path = tmp_path / "warmup.sqlite"
    schedule = WarmupSchedule(daily=(2, 10), spread_hours=1)
    first = WarmupLimiter(schedule, path, key="192.0.2.10", clock=clock)
    first.reserve()
    first.reserve()
    clock.now += 5 * HOUR
    again = WarmupLimiter(schedule, path, key="192.0.2.10", clock=clock)
    with pytest.raises(WarmupLimitReached):
        again.reserve()
    other = WarmupLimiter(schedule, path, key="192.0.2.11", clock=clock)
    assert other.reserve() == 0.0
    clock.now += DAY
    assert again.status().day == 1
    assert again.reserve() == 0.0


def test_max_wait_returns_the_wait_instead(tmp_path: Path) -> None:
    """With max_wait, a slot opening soon is booked and its wait returned."""
    clock = Clock()
    limiter = WarmupLimiter(
        WarmupSchedule(daily=(10,), spread_hours=10), tmp_path / "w.db", clock=clock, max_wait=HOUR
    )
    assert limiter.reserve() == 0.0
    assert limiter.reserve() == pytest.approx(HOUR)
    with pytest.raises(WarmupLimitReached):  # the next free hour is 2 h away: beyond max_wait
        limiter.reserve()
    clock.now += HOUR
    assert limiter.status().sent_this_hour == 1


def test_error_pickles_with_retry_after() -> None:
    """WarmupLimitReached crosses process boundaries with its retry_after."""
    error = pickle.loads(pickle.dumps(WarmupLimitReached("quota", retry_after=12.5)))
    assert error.retry_after == 12.5
    assert str(error) == "quota"


def _options(server: RecordingServer, limiter: WarmupLimiter) -> dict[str, object]:
    return {"host": "127.0.0.1", "port": server.port, "tls": NoTLS(), "limiter": limiter}


def test_mailer_enforces_the_quota(smtp_server: RecordingServer, tmp_path: Path) -> None:
    """Mailer(limiter=...) sends the quota, then raises before sending anything more."""
    clock = Clock()
    limiter = WarmupLimiter(
        WarmupSchedule(daily=(2, 4), spread_hours=1), tmp_path / "w.db", clock=clock
    )
    with Mailer(rate_limit=1000.0, **_options(smtp_server, limiter)) as mailer:  # type: ignore[arg-type]
        for n in range(2):
            mailer.send(sender="a@example.org", to=["b@example.org"], text=str(n))
        with pytest.raises(WarmupLimitReached):
            mailer.send(sender="a@example.org", to=["b@example.org"], text="over")
    assert len(smtp_server.messages) == 2
    clock.now += DAY
    restarted = WarmupLimiter(limiter.schedule, tmp_path / "w.db", clock=clock)
    with Mailer(**_options(smtp_server, restarted)) as mailer:  # type: ignore[arg-type]
        mailer.send(sender="a@example.org", to=["b@example.org"], text="day 2")
    assert len(smtp_server.messages) == 3


def test_async_mailer_enforces_the_quota(smtp_server: RecordingServer, tmp_path: Path) -> None:
    """AsyncMailer(limiter=...) behaves the same."""
    limiter = WarmupLimiter(WarmupSchedule(daily=(1,)), tmp_path / "w.db", clock=Clock())

    async def main() -> None:
        async with AsyncMailer(**_options(smtp_server, limiter)) as mailer:  # type: ignore[arg-type]
            await mailer.send(sender="a@example.org", to=["b@example.org"], text="one")
            with pytest.raises(WarmupLimitReached):
                await mailer.send(sender="a@example.org", to=["b@example.org"], text="two")

    asyncio.run(main())
    assert len(smtp_server.messages) == 1


def test_shared_file_never_exceeds_the_quota(tmp_path: Path) -> None:
    """Limiters in 4 threads on one file hand out exactly the quota, no more."""
    clock = Clock()
    path = tmp_path / "shared.sqlite"
    schedule = WarmupSchedule(daily=(25,), spread_hours=1)
    granted: list[int] = []

    def worker() -> None:
        limiter = WarmupLimiter(schedule, path, clock=clock)
        mine = 0
        for _ in range(20):
            try:
                limiter.reserve()
                mine += 1
            except WarmupLimitReached:
                pass
        granted.append(mine)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(granted) == 25
