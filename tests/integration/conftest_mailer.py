"""Helpers for the Mailer, pool and retry tests: a small counting SMTP server and mailer options.

:class:`MiniSmtp` is a ``ScriptedServer`` script (a real SMTP server on loopback, with
PIPELINING) that counts connections as the server sees them, records every message it
accepts by Message-ID, and fails on cue: a :class:`Fault` chosen per connection or per
transaction by a ``chooser`` callback. Test modules start it through a ``mini`` fixture
built on :func:`mini_servers`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

from mailtransfer import NoTLS, RetryPolicy, Timeouts
from mailtransfer.testing import ScriptedPeer, ScriptedServer, ScriptError

FAST_RETRY = RetryPolicy(
    attempts=4, max_time=20.0, initial_backoff=0.001, max_backoff=0.005, jitter=0.001
)
"""Retries with tiny backoff, so fault tests run fast."""

CLIENT_NAME = "client.example.test"

_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(<[^>\r\n]+>)", re.IGNORECASE | re.MULTILINE)


class Fault(enum.Enum):
    """What :class:`MiniSmtp` does instead of the normal reply, at one point of a session."""

    NONE = "none"
    GREETING_421 = "greeting-421"
    """At connect: greet with 421 and close."""
    MAIL_421 = "mail-421"
    """At MAIL: answer 421 and close."""
    DROP_AT_DATA = "drop-at-data"
    """At DATA: close without a reply."""
    DROP_MID_DATA = "drop-mid-data"
    """At DATA: say 354, read a few bytes of the body, then reset the connection."""
    REPLY_421_AFTER_DOT = "421-after-dot"
    """After the final dot: answer 421 (not accepted) and close."""
    DROP_AFTER_DOT_DELIVERED = "drop-after-dot-delivered"
    """After the final dot: accept the message, then close without replying."""
    DROP_AFTER_DOT_LOST = "drop-after-dot-lost"
    """After the final dot: close without replying, the message not accepted."""


Point = str
"""Where a fault is chosen: ``"connect"``, ``"mail"``, ``"data"`` or ``"dot"``."""

DEFAULT_EXTENSIONS = ("PIPELINING", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "SIZE 10485760")


def message_id_of(data: bytes) -> str | None:
    """The Message-ID header's value in raw message bytes."""
    found = _MESSAGE_ID.search(data.split(b"\r\n\r\n", 1)[0])
    return found.group(1).decode("ascii") if found else None


class MiniSmtp:
    """A small ESMTP server script that counts connections and fails on cue.

    A recipient whose local part starts with ``gone`` is refused (``550 5.1.1``).

    Args:
        extensions: the EHLO keywords to offer.
        chooser: ``chooser(point) -> Fault`` at each point (connect, mail, data, dot);
            called on the server's loop thread.
        idle_timeout: close a connection idle for this long (after a 421 when
            ``idle_reply``), as real servers do.
        idle_reply: send ``421 4.4.2`` before closing an idle connection.
        reply_delay: seconds to wait before answering the final dot.
        greeting_delay: seconds to wait before the greeting.
    """

    def __init__(
        self,
        *,
        extensions: tuple[str, ...] = DEFAULT_EXTENSIONS,
        chooser: Callable[[Point], Fault] | None = None,
        idle_timeout: float | None = None,
        idle_reply: bool = True,
        reply_delay: float = 0.0,
        greeting_delay: float = 0.0,
    ) -> None:
        self.extensions = extensions
        self.chooser = chooser
        self.idle_timeout = idle_timeout
        self.idle_reply = idle_reply
        self.reply_delay = reply_delay
        self.greeting_delay = greeting_delay
        self._lock = threading.Lock()
        self._active = 0
        self._max_active = 0
        self._connections = 0
        self._quits = 0
        self._noops = 0
        self._transactions = 0
        self._faults: collections.Counter[Fault] = collections.Counter()
        self._delivered: list[tuple[int, bytes]] = []

    # -- what the tests read (thread-safe snapshots) -------------------------------------

    @property
    def active(self) -> int:
        """Connections open right now, as the server sees them."""
        with self._lock:
            return self._active

    @property
    def max_active(self) -> int:
        """The most connections that were open at once."""
        with self._lock:
            return self._max_active

    @property
    def connections(self) -> int:
        """Connections accepted so far."""
        with self._lock:
            return self._connections

    @property
    def quits(self) -> int:
        """QUIT commands received."""
        with self._lock:
            return self._quits

    @property
    def noops(self) -> int:
        """NOOP commands received."""
        with self._lock:
            return self._noops

    @property
    def transactions(self) -> int:
        """DATA commands received (each a delivery attempt)."""
        with self._lock:
            return self._transactions

    @property
    def faults(self) -> collections.Counter[Fault]:
        """How often each fault was played."""
        with self._lock:
            return collections.Counter(self._faults)

    @property
    def delivered(self) -> list[bytes]:
        """The data of every accepted message, in order."""
        with self._lock:
            return [data for _, data in self._delivered]

    def per_connection(self) -> collections.Counter[int]:
        """How many messages each connection (by index) delivered."""
        with self._lock:
            return collections.Counter(index for index, _ in self._delivered)

    def arrivals(self) -> collections.Counter[str | None]:
        """How many times each Message-ID arrived."""
        return collections.Counter(message_id_of(data) for data in self.delivered)

    def wait_until(self, check: Callable[[MiniSmtp], bool], timeout: float = 5.0) -> None:
        """Poll until ``check(self)`` holds.

        Raises:
            AssertionError: it did not hold within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while not check(self):
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {timeout} s: {self!r}")
            time.sleep(0.01)

    def __repr__(self) -> str:
        return (
            f"<MiniSmtp active={self.active} max_active={self.max_active}"
            f" connections={self.connections} delivered={len(self.delivered)}>"
        )

    # -- the script ------------------------------------------------------------------------

    def _choose(self, point: Point) -> Fault:
        fault = Fault.NONE if self.chooser is None else self.chooser(point)
        if fault is not Fault.NONE:
            with self._lock:
                self._faults[fault] += 1
        return fault

    def _record(self, peer: ScriptedPeer, body: bytes) -> int:
        lines = body.split(b"\r\n")
        data = b"\r\n".join(line[1:] if line.startswith(b".") else line for line in lines)
        with self._lock:
            self._delivered.append((peer.index, data))
            return len(self._delivered)

    async def __call__(self, peer: ScriptedPeer) -> None:
        """Serve one connection."""
        with self._lock:
            self._connections += 1
            self._active += 1
            self._max_active = max(self._max_active, self._active)
        try:
            await self._serve(peer)
        finally:
            peer.close()
            with self._lock:
                self._active -= 1

    async def _serve(self, peer: ScriptedPeer) -> None:
        if self._choose("connect") is Fault.GREETING_421:
            await peer.send(b"421 4.3.2 mini.test busy, try later\r\n")
            return
        if self.greeting_delay:
            await peer.sleep(self.greeting_delay)
        await peer.send(b"220 mini.test ESMTP\r\n")
        while True:
            try:
                line = await peer.readline(timeout=self.idle_timeout)
            except TimeoutError:
                if self.idle_reply:
                    await peer.send(b"421 4.4.2 mini.test idle for too long, closing\r\n")
                return
            if not line:
                return
            verb = line.split(b" ", 1)[0].strip().upper()
            if not await self._command(peer, verb, line):
                return

    async def _command(self, peer: ScriptedPeer, verb: bytes, line: bytes) -> bool:
        """Answer one command; False ends the session."""
        if verb in (b"EHLO", b"LHLO"):
            names = ["mini.test", *self.extensions]
            reply = "".join(f"250-{n}\r\n" for n in names[:-1]) + f"250 {names[-1]}\r\n"
            await peer.send(reply.encode())
        elif verb == b"MAIL":
            if self._choose("mail") is Fault.MAIL_421:
                await peer.send(b"421 4.7.0 mini.test too many messages, slow down\r\n")
                return False
            await peer.send(b"250 2.1.0 Ok\r\n")
        elif verb == b"RCPT":
            if b":<gone" in line.lower():  # a recipient that does not exist
                await peer.send(b"550 5.1.1 no such user\r\n")
            else:
                await peer.send(b"250 2.1.5 Ok\r\n")
        elif verb == b"DATA":
            return await self._data(peer)
        elif verb in (b"RSET", b"NOOP", b"HELO"):
            if verb == b"NOOP":
                with self._lock:
                    self._noops += 1
            await peer.send(b"250 2.0.0 Ok\r\n")
        elif verb == b"QUIT":
            with self._lock:
                self._quits += 1
            await peer.send(b"221 2.0.0 Bye\r\n")
            return False
        else:
            await peer.send(b"500 5.5.2 Command not recognized\r\n")
        return True

    async def _data(self, peer: ScriptedPeer) -> bool:
        with self._lock:
            self._transactions += 1
        fault = self._choose("data")
        if fault is Fault.DROP_AT_DATA:
            return False
        await peer.send(b"354 End data with <CR><LF>.<CR><LF>\r\n")
        if fault is Fault.DROP_MID_DATA:
            try:
                await peer.read_exactly(16)
            except ScriptError:
                return False
            peer.abort()
            return False
        try:
            body = await peer.read_until_dot(timeout=None)
        except ScriptError:
            return False  # the client went away mid-data
        fault = self._choose("dot")
        if fault is Fault.REPLY_421_AFTER_DOT:
            await peer.send(b"421 4.3.0 mini.test temporary problem, closing\r\n")
            return False
        if fault is Fault.DROP_AFTER_DOT_LOST:
            return False
        if self.reply_delay:
            await peer.sleep(self.reply_delay)
            if peer.closed:
                return False  # the client gave up waiting: nothing was accepted
        queued = self._record(peer, body)
        if fault is Fault.DROP_AFTER_DOT_DELIVERED:
            return False
        await peer.send(b"250 2.0.0 Ok: queued as MINI%d\r\n" % queued)
        return True


def until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``check()`` until it holds (the servers live in another thread).

    Raises:
        AssertionError: it did not hold within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.01)


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``check()`` from a coroutine until it holds (the server lives in another thread).

    Raises:
        AssertionError: it did not hold within ``timeout`` seconds.
    """
    for _ in range(int(timeout / 0.01) + 1):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"condition not met within {timeout} s")


def closed_port() -> int:
    """A loopback port with nothing listening (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def mailer_options(port: int, **overrides: Any) -> dict[str, Any]:
    """Keyword arguments for a Mailer/AsyncMailer to a plaintext test server on ``port``."""
    options: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "tls": NoTLS(),
        "local_hostname": CLIENT_NAME,
        "retry": FAST_RETRY,
        "timeouts": Timeouts.all(5.0),
    }
    options.update(overrides)
    return options


Mini = Callable[..., tuple[ScriptedServer, MiniSmtp]]
"""``mini(**MiniSmtp options)`` starts a server and returns ``(server, script)``."""


@contextlib.contextmanager
def mini_servers() -> Iterator[Mini]:
    """Yield a :data:`Mini` factory; every server it started stops on exit.

    A ``ScriptedServer`` raises whatever its script raised when it stops, so a script
    that went wrong fails the test. Each test module wraps this in a ``mini`` fixture.
    """
    with ExitStack() as stack:

        def start(**options: Any) -> tuple[ScriptedServer, MiniSmtp]:
            script = MiniSmtp(**options)
            server = stack.enter_context(ScriptedServer(script))
            return server, script

        yield start
