"""``ConnectionPool``: thread-safe reuse of ``SyncConnection`` sessions to one endpoint."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from types import TracebackType

from .. import _telemetry
from .._pooling import Limiter, PoolBook, PoolStats, pacer, wait_time
from ..config import PoolLimits
from ..errors import MailTransferError, PoolTimeout, UsageError
from .connection import SyncConnection

__all__ = ["ConnectionPool"]


class ConnectionPool:
    """Open sessions to one server, handed out one thread at a time.

    A connection is never shared by two transactions at once; after use it
    goes back to the pool only if it is healthy and between transactions,
    so a connection that saw a 421, a timeout or a protocol error is never reused.
    A connection being closed still counts against ``max_connections`` until its
    socket is gone, so the server never sees more than that many at once.

    Args:
        factory: makes a new, unopened connection.
        limits: how many connections, for how long (:class:`~mailtransfer.config.PoolLimits`).
        rate_limit: at most this many messages per second through the whole pool.
        limiter: a pacing hook asked before each message (a warm-up schedule).
    """

    def __init__(
        self,
        factory: Callable[[], SyncConnection],
        limits: PoolLimits | None = None,
        *,
        rate_limit: float | None = None,
        limiter: Limiter | None = None,
    ) -> None:
        self._factory = factory
        self.limits = limits or PoolLimits()
        self._book: PoolBook[SyncConnection] = PoolBook(self.limits)
        _telemetry.pools.add(self)  # for the pool gauge (a WeakSet: no cost, no leak)
        self._cond = threading.Condition()
        self._waiting = 0
        self._rate = pacer(rate_limit, limiter)

    @property
    def max_seen(self) -> int:
        """The most connections that were open at once (for tests and monitoring)."""
        return self._book.max_seen

    @property
    def waiting(self) -> int:
        """How many callers are waiting for a connection."""
        return self._waiting

    @property
    def paced(self) -> bool:
        """Whether each message waits for a rate limit or a warm-up schedule."""
        return self._rate is not None

    @property
    def stats(self) -> PoolStats:
        """A snapshot of the pool's counts: in use, idle, opening, closing."""
        with self._cond:
            return self._book.stats()

    def connection(self) -> AbstractContextManager[SyncConnection]:
        """Lease an open connection for one transaction; it returns to the pool afterwards.

        Use it as ``with pool.connection() as conn:``.

        Raises:
            PoolTimeout: no connection became free within ``limits.acquire_timeout``.
            UsageError: the pool is closed.
            ConnectError, Timeout, TLSError, ReplyError: opening a new connection failed.
        """
        return _Lease(self)

    def _acquire(self) -> SyncConnection:
        deadline = None
        if self.limits.acquire_timeout is not None:
            deadline = time.monotonic() + self.limits.acquire_timeout
        while True:
            with self._cond:
                conn, needs_check, to_close, reserved = self._wait_for_slot(deadline)
            self._dispose(to_close)
            if conn is None:
                if reserved:
                    return self._open_new()
                continue
            try:
                if not needs_check or _healthy(conn):
                    self._pace()
                    return conn
            except BaseException:
                self._drop(conn)
                raise
            self._drop(conn)

    def _wait_for_slot(
        self, deadline: float | None
    ) -> tuple[SyncConnection | None, bool, list[SyncConnection], bool]:
        """Under the lock: ``(idle connection, needs_check, to_close, reserved a new slot)``."""
        book = self._book
        while True:
            if book.closed:
                raise UsageError("the connection pool is closed")
            now = time.monotonic()
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
            self._waiting += 1
            try:
                self._cond.wait(wait)
            finally:
                self._waiting -= 1

    def _open_new(self) -> SyncConnection:
        conn: SyncConnection | None = None
        try:
            conn = self._factory()
            conn.open()
        except BaseException:
            # Close first: the slot is free only once the socket is gone.
            if conn is not None:
                conn.close()
            with self._cond:
                self._book.opened(ok=False)
                self._cond.notify()
            raise
        with self._cond:
            self._book.opened(ok=True)
        try:
            self._pace()
        except BaseException:
            self._drop(conn)
            raise
        return conn

    def _drop(self, conn: SyncConnection) -> None:
        """Close a leased connection that will not be used, and free its slot."""
        conn.close()
        with self._cond:
            self._book.discard()
            self._cond.notify()

    def _dispose(self, conns: list[SyncConnection]) -> None:
        """QUIT (or close) connections the book handed back, then free their slots."""
        if not conns:
            return
        try:
            for conn in conns:
                conn.quit()
        finally:
            for conn in conns:
                conn.close()
            with self._cond:
                self._book.finished_closing(len(conns))
                self._cond.notify(len(conns))

    def _pace(self) -> None:
        if self._rate is None:
            return
        with self._cond:
            wait = self._rate.reserve(time.monotonic())
        if wait > 0:
            time.sleep(wait)

    def _release(self, conn: SyncConnection) -> None:
        with self._cond:
            to_close = self._book.give_back(conn, time.monotonic())
            if not to_close:
                self._cond.notify()
        self._dispose(to_close)

    def defer(self, seconds: float) -> None:
        """Open no new connection for ``seconds``: the server asked us to slow down (421, 4.7.x)."""
        with self._cond:
            self._book.defer(time.monotonic(), seconds)

    def close(self) -> None:
        """Close every idle connection with QUIT; connections in use close when returned."""
        with self._cond:
            idle = self._book.close()
            self._cond.notify_all()
        self._dispose(idle)

    def __repr__(self) -> str:
        return f"<ConnectionPool {self._book.describe()}>"


class _Lease:
    """``with pool.connection()``: a plain class, cheaper per message than a generator."""

    __slots__ = ("_conn", "_pool")

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool
        self._conn: SyncConnection | None = None

    def __enter__(self) -> SyncConnection:
        self._conn = self._pool._acquire()
        return self._conn

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn = self._conn
        assert conn is not None
        self._conn = None
        self._pool._release(conn)


def _healthy(conn: SyncConnection) -> bool:
    try:
        return conn.noop().is_success and conn.is_usable
    except MailTransferError:
        return False
