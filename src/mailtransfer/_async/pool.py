"""``AsyncConnectionPool``: reuse of ``AsyncConnection`` sessions to one endpoint, task-safe.

Strategy: the bookkeeping (:class:`~mailtransfer._pooling.PoolBook`) is only
ever changed in synchronous code, between two awaits, so one event loop needs
no lock for it. That matters under cancellation: giving a slot back never
waits for anything, so a task cancelled while it sends (or cancelled again
while it cleans up) cannot leak a slot. Waiting tasks park on plain futures,
woken one at a time.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from types import TracebackType

from .. import _telemetry
from .._pooling import Limiter, PoolBook, PoolStats, pacer, wait_time
from ..config import PoolLimits
from ..errors import MailTransferError, PoolTimeout, UsageError
from .connection import AsyncConnection

__all__ = ["AsyncConnectionPool"]


class AsyncConnectionPool:
    """Open sessions to one server, each leased to one task at a time.

    The asyncio twin of :class:`~mailtransfer.ConnectionPool`: the same rules,
    the same bookkeeping. A task cancelled while it holds a connection aborts
    that connection (its state is unknown) and frees the slot; nothing leaks.
    Use a pool from one event loop only.

    Args:
        factory: makes a new, unopened connection.
        limits: how many connections, for how long (:class:`~mailtransfer.config.PoolLimits`).
        rate_limit: at most this many messages per second through the whole pool.
        limiter: a pacing hook asked before each message (a warm-up schedule).
    """

    def __init__(
        self,
        factory: Callable[[], AsyncConnection],
        limits: PoolLimits | None = None,
        *,
        rate_limit: float | None = None,
        limiter: Limiter | None = None,
    ) -> None:
        self._factory = factory
        self.limits = limits or PoolLimits()
        self._book: PoolBook[AsyncConnection] = PoolBook(self.limits)
        _telemetry.pools.add(self)  # for the pool gauge (a WeakSet: no cost, no leak)
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._rate = pacer(rate_limit, limiter)

    @property
    def max_seen(self) -> int:
        """The most connections that were open at once (for tests and monitoring)."""
        return self._book.max_seen

    @property
    def waiting(self) -> int:
        """How many tasks are waiting for a connection."""
        return len(self._waiters)

    @property
    def paced(self) -> bool:
        """Whether each message waits for a rate limit or a warm-up schedule."""
        return self._rate is not None

    @property
    def stats(self) -> PoolStats:
        """A snapshot of the pool's counts: in use, idle, opening, closing."""
        return self._book.stats()

    def connection(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """Lease an open connection for one transaction; it returns to the pool afterwards.

        Use it as ``async with pool.connection() as conn:``.

        Raises:
            PoolTimeout: no connection became free within ``limits.acquire_timeout``.
            UsageError: the pool is closed.
            ConnectError, Timeout, TLSError, ReplyError: opening a new connection failed.
        """
        return _Lease(self)

    async def _acquire(self) -> AsyncConnection:
        loop = asyncio.get_running_loop()
        deadline = None
        if self.limits.acquire_timeout is not None:
            deadline = loop.time() + self.limits.acquire_timeout
        while True:
            conn, needs_check, to_close, reserved = await self._wait_for_slot(deadline)
            if to_close:
                await self._dispose(to_close)
            if conn is None:
                if reserved:
                    return await self._open_new()
                continue
            try:
                if not needs_check or await _healthy(conn):
                    if self._rate is not None:
                        await self._pace()
                    return conn
            except BaseException:
                self._drop(conn)
                raise
            self._drop(conn)

    async def _wait_for_slot(
        self, deadline: float | None
    ) -> tuple[AsyncConnection | None, bool, list[AsyncConnection], bool]:
        """``(idle connection, needs_check, to_close, reserved a new slot)``."""
        book = self._book
        loop = asyncio.get_running_loop()
        while True:
            if book.closed:
                raise UsageError("the connection pool is closed")
            now = loop.time()
            conn, needs_check, to_close = book.take(now)
            if conn is not None:
                return conn, needs_check, to_close, False
            if book.may_open(now):
                book.start_opening()
                return None, False, to_close, True
            if to_close:
                return None, False, to_close, False
            wait = wait_time(book, now, deadline)
            if wait is not None and wait <= 0:
                raise PoolTimeout(
                    f"no connection became free within {self.limits.acquire_timeout}s"
                    f" {book.describe()}"
                )
            await self._wait(wait)

    async def _wait(self, timeout: float | None) -> None:
        """Park until woken (a slot may be free) or ``timeout`` seconds pass."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append(waiter)
        timer = None if timeout is None else loop.call_later(timeout, _resolve, waiter)
        try:
            await waiter
        except BaseException:
            # Woken and cancelled at once: pass the wake-up on, or a slot stays unused.
            if waiter.done() and not waiter.cancelled():
                self._wake()
            raise
        finally:
            if timer is not None:
                timer.cancel()
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)

    def _wake(self, count: int = 1) -> None:
        """Wake up to ``count`` waiting tasks."""
        while count > 0 and self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                count -= 1

    async def _open_new(self) -> AsyncConnection:
        conn: AsyncConnection | None = None
        try:
            conn = self._factory()
            await conn.open()
        except BaseException:
            if conn is not None:
                conn.abort()
            self._book.opened(ok=False)
            self._wake()
            raise
        self._book.opened(ok=True)
        try:
            await self._pace()
        except BaseException:
            self._drop(conn)
            raise
        return conn

    def _drop(self, conn: AsyncConnection) -> None:
        """Abort a leased connection that will not be used, and free its slot."""
        conn.abort()
        self._book.discard()
        self._wake()

    async def _dispose(self, conns: list[AsyncConnection]) -> None:
        """QUIT (or abort) connections the book handed back, then free their slots.

        The slots are freed whatever happens, cancellation included.
        """
        if not conns:
            return
        try:
            await asyncio.gather(*(_quit_or_abort(conn) for conn in conns))
        finally:
            for conn in conns:
                conn.abort()
            self._book.finished_closing(len(conns))
            self._wake(len(conns))

    async def _pace(self) -> None:
        if self._rate is None:
            return
        wait = self._rate.reserve(asyncio.get_running_loop().time())
        if wait > 0:
            await asyncio.sleep(wait)

    async def _release(self, conn: AsyncConnection) -> None:
        # The bookkeeping happens before the first await: a cancelled task
        # (even one cancelled again here) always gives its slot back.
        to_close = self._book.give_back(conn, asyncio.get_running_loop().time())
        if not to_close:
            self._wake()
            return
        await self._dispose(to_close)

    def defer(self, seconds: float) -> None:
        """Open no new connection for ``seconds``: the server asked us to slow down."""
        self._book.defer(asyncio.get_running_loop().time(), seconds)

    async def aclose(self) -> None:
        """QUIT every idle connection; connections in use close when returned."""
        idle = self._book.close()
        self._wake(len(self._waiters))
        await self._dispose(idle)

    def __repr__(self) -> str:
        return f"<AsyncConnectionPool {self._book.describe()}>"


class _Lease:
    """``async with pool.connection()``: a plain class, cheaper per message than a generator."""

    __slots__ = ("_conn", "_pool")

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool
        self._conn: AsyncConnection | None = None

    async def __aenter__(self) -> AsyncConnection:
        self._conn = await self._pool._acquire()
        return self._conn

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn = self._conn
        assert conn is not None
        self._conn = None
        try:
            if exc_type is not None and not conn.is_usable:
                conn.abort()  # failed mid-transaction (or cancelled): its state is unknown
        finally:
            await self._pool._release(conn)


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


async def _quit_or_abort(conn: AsyncConnection) -> None:
    if conn.is_usable:
        await conn.quit()
    else:
        conn.abort()


async def _healthy(conn: AsyncConnection) -> bool:
    try:
        return (await conn.noop()).is_success and conn.is_usable
    except MailTransferError:
        return False
