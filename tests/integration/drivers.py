"""Run one scenario through both connection drivers: ``SyncConnection`` and ``AsyncConnection``.

Strategy: a test asks the ``driver`` fixture for a session and calls plain methods on it.
For ``"sync"`` that is a `SyncConnection` itself; for ``"async"`` it is `AsyncSession`, which
owns a private event loop and runs each coroutine of a real `AsyncConnection` to completion
on it. Both therefore meet the same servers and must raise the same typed errors, which is
what the parametrised tests assert; nothing about the asyncio driver is mocked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from typing import Any, Protocol, TypeVar

import pytest

from mailtransfer import AsyncConnection, SyncConnection
from mailtransfer.protocol import Extensions, Reply
from mailtransfer.results import SendResult

__all__ = ["DRIVERS", "AsyncSession", "Session", "SessionFactory", "open_session"]

_T = TypeVar("_T")

DRIVERS = ("sync", "async")


class Session(Protocol):
    """What the tests use of a connection, whichever driver runs it."""

    tls_info: Any

    @property
    def extensions(self) -> Extensions: ...

    @property
    def is_usable(self) -> bool: ...

    def open(self) -> Extensions: ...

    def send(self, body: Any, **kwargs: Any) -> SendResult: ...

    def noop(self) -> Reply: ...

    def rset(self) -> Reply: ...

    def quit(self) -> None: ...

    def close(self) -> None: ...

    def transcript(self) -> tuple[str, ...]: ...


class AsyncSession:
    """An `AsyncConnection` driven from synchronous test code, on a loop of its own."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self._loop: asyncio.AbstractEventLoop | None = asyncio.new_event_loop()

    def _run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        if self._loop is None:
            coro.close()
            raise RuntimeError("the session's event loop is closed")
        return self._loop.run_until_complete(coro)

    @property
    def tls_info(self) -> Any:
        """The connection's TLS details."""
        return self.conn.tls_info

    @property
    def extensions(self) -> Extensions:
        """The server's extensions."""
        return self.conn.extensions

    @property
    def is_usable(self) -> bool:
        """Whether another message may be sent."""
        return self.conn.is_usable

    def open(self) -> Extensions:
        """Connect, greet, EHLO, TLS and AUTH as configured."""
        return self._run(self.conn.open())

    def send(self, body: Any, **kwargs: Any) -> SendResult:
        """Send one message."""
        return self._run(self.conn.send(body, **kwargs))

    def noop(self) -> Reply:
        """NOOP."""
        return self._run(self.conn.noop())

    def rset(self) -> Reply:
        """RSET."""
        return self._run(self.conn.rset())

    def quit(self) -> None:
        """QUIT (the loop stays open until `close`, so later calls meet the real errors)."""
        self._run(self.conn.quit())

    def close(self) -> None:
        """Close without QUIT, and close the loop. Never raises."""
        if self._loop is None:
            return
        try:
            self._run(self.conn.aclose())
        finally:
            self._close_loop()

    def transcript(self) -> tuple[str, ...]:
        """The redacted transcript."""
        return self.conn.transcript()

    def _close_loop(self) -> None:
        loop, self._loop = self._loop, None
        if loop is not None:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()


class SessionFactory(Protocol):
    """``driver(host, port, **options)``: a session, closed at teardown."""

    name: str

    def __call__(self, host: str, port: int, **options: Any) -> Session: ...


class _Factory:
    def __init__(self, name: str) -> None:
        self.name = name
        self.sessions: list[Session] = []

    def __call__(self, host: str, port: int, **options: Any) -> Session:
        session: Session
        if self.name == "sync":
            session = SyncConnection(host, port, **options)
        else:
            session = AsyncSession(AsyncConnection(host, port, **options))
        self.sessions.append(session)
        return session

    def close_all(self) -> None:
        for session in self.sessions:
            session.close()


def open_session(session: Session, error: type[BaseException]) -> BaseException:
    """Open ``session`` expecting ``error``; return it (the session is closed afterwards)."""
    try:
        with pytest.raises(error) as info:
            session.open()
    finally:
        session.close()
    return info.value


@pytest.fixture(params=DRIVERS)
def driver(request: pytest.FixtureRequest) -> Iterator[SessionFactory]:
    """Factory of sessions run by the sync or the asyncio driver (both, by parametrisation)."""
    factory = _Factory(request.param)
    try:
        yield factory
    finally:
        factory.close_all()
