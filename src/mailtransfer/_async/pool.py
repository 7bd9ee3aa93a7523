"""``AsyncConnectionPool``: reuse of ``AsyncConnection`` sessions to one endpoint, task-safe."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from .._pooling import PoolBook, RateLimiter, wait_time
from ..config import PoolLimits
from ..errors import MailTransferError, PoolTimeout, UsageError
from .connection import AsyncConnection

__all__ = ["AsyncConnectionPool"]


class AsyncConnectionPool:
    """Open sessions to one server, each leased to one task at a time.

    The asyncio twin of :class:`~mailtransfer.ConnectionPool`: the same rules,
    the same bookkeeping, with ``asyncio.Condition`` instead of a lock. A task
    cancelled while it holds a connection aborts that connection (its state is
    unknown) and frees the slot; nothing leaks.
    """

    def __init__(
        self,
        factory: Callable[[], AsyncConnection],
        limits: PoolLimits | None = None,
        *,
        rate_limit: float | None = None,
    ) -> None:
        self._factory = factory
        self.limits = limits or PoolLimits()
        self._book: PoolBook[AsyncConnection] = PoolBook(self.limits)
        self._cond = asyncio.Condition()
        self._rate = RateLimiter(rate_limit, burst=1.0) if rate_limit else None
        self.max_seen = 0
        """The most connections that were open at once (for tests and monitoring)."""

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection]:
        """Lease an open connection for one transaction; it returns to the pool afterwards.

        Raises:
            PoolTimeout: no connection became free within ``limits.acquire_timeout``.
            UsageError: the pool is closed.
            ConnectError, Timeout, TLSError, ReplyError: opening a new connection failed.
        """
        conn = await self._acquire()
        try:
            yield conn
        except BaseException:
            if not conn.is_usable:
                conn.abort()
            raise
        finally:
            await self._release(conn)

    async def _acquire(self) -> AsyncConnection:
        loop = asyncio.get_running_loop()
        deadline = None
        if self.limits.acquire_timeout is not None:
            deadline = loop.time() + self.limits.acquire_timeout
        while True:
            async with self._cond:
                conn, needs_check, to_close, reserved = await self._wait_for_slot(deadline)
            for stale in to_close:
                await stale.quit()
            if conn is None:
                if reserved:
                    return await self._open_new()
                continue
            if needs_check and not await _healthy(conn):
                async with self._cond:
                    self._book.discard()
                    self._cond.notify()
                conn.abort()
                continue
            await self._pace()
            return conn

    async def _wait_for_slot(
        self, deadline: float | None
    ) -> tuple[AsyncConnection | None, bool, list[AsyncConnection], bool]:
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
                self.max_seen = max(self.max_seen, book.total)
                return None, False, to_close, True
            if to_close:
                return None, False, to_close, False
            wait = wait_time(book, now, deadline)
            if wait is not None and wait <= 0:
                raise PoolTimeout(
                    f"no connection became free within {self.limits.acquire_timeout}s"
                    f" {book.describe()}"
                )
            with contextlib.suppress(asyncio.TimeoutError, TimeoutError):
                await asyncio.wait_for(self._cond.wait(), wait)

    async def _open_new(self) -> AsyncConnection:
        conn = self._factory()
        try:
            await conn.open()
        except BaseException:
            conn.abort()
            async with self._cond:
                self._book.opened(ok=False)
                self._cond.notify()
            raise
        async with self._cond:
            self._book.opened(ok=True)
        await self._pace()
        return conn

    async def _pace(self) -> None:
        if self._rate is None:
            return
        wait = self._rate.reserve(asyncio.get_running_loop().time())
        if wait > 0:
            await asyncio.sleep(wait)

    async def _release(self, conn: AsyncConnection) -> None:
        loop = asyncio.get_running_loop()
        # Shielded: a cancelled task must still give its slot back.
        async with self._cond:
            to_close = self._book.give_back(conn, loop.time())
            self._cond.notify()
        for stale in to_close:
            if stale.is_usable:
                await asyncio.shield(stale.quit())
            else:
                stale.abort()

    def defer(self, seconds: float) -> None:
        """Open no new connection for ``seconds``: the server asked us to slow down."""
        self._book.defer(asyncio.get_running_loop().time(), seconds)

    async def aclose(self) -> None:
        """QUIT every idle connection; connections in use close when returned."""
        async with self._cond:
            idle = self._book.close()
            self._cond.notify_all()
        await asyncio.gather(*(conn.quit() for conn in idle), return_exceptions=True)

    def __repr__(self) -> str:
        return f"<AsyncConnectionPool {self._book.describe()}>"


async def _healthy(conn: AsyncConnection) -> bool:
    try:
        return (await conn.noop()).is_success and conn.is_usable
    except MailTransferError:
        return False
