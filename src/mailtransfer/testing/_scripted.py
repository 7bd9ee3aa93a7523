"""A TCP server whose every byte a test scripts: for hostile and faulty SMTP peers.

Strategy: one asyncio loop in a background thread accepts connections on loopback and runs the
test's ``async def script(peer)`` once per connection. `ScriptedPeer` gives the script
line-level reads with timeouts, raw writes, a server-side TLS upgrade, and both kinds of
disconnect (FIN and RST). Whatever a script raises is kept and raised again in the test when
the server stops, so a script that went wrong cannot let a test pass. The peer is in
``_peer``; `EsmtpScript`, a small correct ESMTP server (with PIPELINING and CHUNKING, which
aiosmtpd lacks), is in ``_esmtp``; the ready-made fault scripts that bend it at one chosen
command are in ``_scripts``.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
from typing import TypeVar

from ._loop import _LoopThread
from ._peer import DEFAULT_TIMEOUT, Script, ScriptedPeer, ScriptError, _Connection

__all__ = ["DEFAULT_TIMEOUT", "Script", "ScriptError", "ScriptedPeer", "ScriptedServer"]

_T = TypeVar("_T")


class ScriptedServer:
    """A TCP server on loopback that runs ``script`` for every connection.

    Use it as a context manager. When it stops, it waits up to ``shutdown_timeout`` seconds
    for scripts that are still running (a script blocked on a client that has gone sees the
    end of the stream at once), cancels the rest, and then raises the first exception any
    script raised.

    Args:
        script: ``async def script(peer: ScriptedPeer) -> None``.
        host: the address to listen on (any of 127.0.0.0/8 works on Linux).
        port: the port; 0 picks a free one.
        implicit_tls: a server context to wrap every connection in TLS at once.
        shutdown_timeout: how long stopping waits for running scripts.

    Example:
        >>> async def script(peer: ScriptedPeer) -> None:  # doctest: +SKIP
        ...     await peer.send(b"220 hi\\r\\n")
        ...     await peer.expect(b"EHLO")
        ...     await peer.send(b"421 4.3.2 Bye\\r\\n")
        >>> with ScriptedServer(script) as server:  # doctest: +SKIP
        ...     run_your_client("127.0.0.1", server.port)
    """

    def __init__(
        self,
        script: Script,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        implicit_tls: ssl.SSLContext | None = None,
        shutdown_timeout: float = 2.0,
    ) -> None:
        self.script = script
        self.host = host
        self._requested_port = port
        self._implicit_tls = implicit_tls
        self._shutdown_timeout = shutdown_timeout
        self._port: int | None = None
        self._loop_thread: _LoopThread | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._connections: list[_Connection] = []
        self._active = 0
        self._cond = threading.Condition()
        self.peers: list[ScriptedPeer] = []
        """One `ScriptedPeer` per accepted connection, in order."""
        self.errors: list[BaseException] = []
        """Exceptions raised by scripts so far (raised again when the server stops)."""
        self.max_concurrent = 0
        """The most scripts that ran at the same time."""

    @property
    def port(self) -> int:
        """The port the server listens on.

        Raises:
            RuntimeError: the server is not running.
        """
        if self._port is None:
            raise RuntimeError("the ScriptedServer is not running: use it in a with block")
        return self._port

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)``, ready for ``socket.create_connection``."""
        return (self.host, self.port)

    @property
    def connections(self) -> int:
        """How many connections have been accepted."""
        return len(self.peers)

    def wait_for_connections(self, count: int, timeout: float = 5.0) -> None:
        """Block until at least ``count`` connections were accepted.

        Raises:
            TimeoutError: fewer arrived in time.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.peers) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"expected {count} connection(s) within {timeout} s, got {len(self.peers)}"
                    )
                self._cond.wait(remaining)

    def _connected(self, conn: _Connection) -> None:
        with self._cond:
            peer = ScriptedPeer(conn, len(self.peers))
            self.peers.append(peer)
            self._connections.append(conn)
            self._cond.notify_all()
        task = asyncio.get_running_loop().create_task(self._run(peer, conn))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, peer: ScriptedPeer, conn: _Connection) -> None:
        self._active += 1
        self.max_concurrent = max(self.max_concurrent, self._active)
        try:
            await self.script(peer)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # every failure must reach the test
            if hasattr(exc, "add_note"):
                exc.add_note(f"raised by the script of connection #{peer.index}")
            self.errors.append(exc)
        finally:
            self._active -= 1
            if conn.transport is not None and not conn.transport.is_closing():
                conn.transport.close()

    def start(self) -> None:
        """Start listening (the ``with`` statement calls this).

        Raises:
            RuntimeError: the server is already running.
            OSError: the address cannot be bound.
        """
        if self._loop_thread is not None:
            raise RuntimeError("the ScriptedServer is already running")
        loop_thread = _LoopThread(f"ScriptedServer:{self.host}")
        loop_thread.start()
        try:
            self._server = loop_thread.run(self._listen(loop_thread.loop))
        except BaseException:
            loop_thread.stop()
            raise
        self._loop_thread = loop_thread
        self._port = int(self._server.sockets[0].getsockname()[1])

    async def _listen(self, loop: asyncio.AbstractEventLoop) -> asyncio.Server:
        return await loop.create_server(
            lambda: _Connection(self), self.host, self._requested_port, ssl=self._implicit_tls
        )

    async def _shutdown(self) -> None:
        assert self._server is not None
        # A few loop turns first, so connections the kernel has already completed (a client
        # that connected and left just before the test ended) are accepted and served.
        for _ in range(5):
            await asyncio.sleep(0)
        self._server.close()
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=self._shutdown_timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for conn in self._connections:
            for transport in (conn.transport, conn.raw_transport):
                if transport is not None:
                    transport.abort()
        for _ in range(3):
            await asyncio.sleep(0)
        await asyncio.wait_for(self._server.wait_closed(), 5.0)

    def stop(self) -> None:
        """Stop the server, then raise the first exception a script raised.

        Raises:
            BaseException: whatever a script raised (the others stay in `errors`).
        """
        loop_thread, self._loop_thread = self._loop_thread, None
        if loop_thread is None:
            return
        try:
            loop_thread.run(self._shutdown(), timeout=self._shutdown_timeout + 10.0)
        finally:
            loop_thread.stop()
            self._port = None
        if self.errors:
            raise self.errors[0]

    def __enter__(self) -> ScriptedServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = f"{self.host}:{self._port}" if self._port is not None else "stopped"
        return f"<ScriptedServer {where} connections={self.connections} errors={len(self.errors)}>"


# --- A minimal correct ESMTP server, and fault scripts built on it ------------------------
