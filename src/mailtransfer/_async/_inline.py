"""Run a flow inside the transport's callbacks: no task switch, no coroutine, per read.

Strategy: for a long run of transactions (``send_many``), the stream driver's
cost per message is mostly asyncio's: a coroutine chain per read and write, a
future per read, and a task wake-up each time replies arrive. Here the flow is
advanced directly from ``data_received``: the replies are parsed and the next
write is made in the same callback. For the run, this protocol takes the
transport's place (``set_protocol``); afterwards the stream's own protocol is
put back, with anything that arrived late handed over to it, so the session
goes on exactly as before.

Writes are coalesced across connections: a write waits until the end of the
loop turn, when every driver's write of that turn goes out back to back (see
:class:`_Writes`). The flow stays at its write until then, so a failed write
is reported exactly as an immediate one would be.

Only what a run of transactions needs is supported: writes, reads, polls and
deadlines. Deadlines behave as in :class:`~mailtransfer._async._stream.AsyncStream`:
each read (and each wait for the transport to drain) must finish by the current
one, and a single timer serves them all.
"""

from __future__ import annotations

import asyncio
import ssl
import weakref
from typing import Any

from .._flows._io import Deadline, Flow, Poll, Read, Write
from .._flows._translate import timeout_error, translate
from ..errors import MailTransferError, UsageError
from ..protocol import Stage
from ._stream import READ_SIZE, AsyncStream, LazyTimer, _buffered

__all__ = ["InlineDriver"]

_POLL_TURNS = 2
"""Loop turns a poll waits for bytes the kernel holds (see ``AsyncStream.poll``)."""
_BUFFER_LIMIT = 2 * READ_SIZE
"""Unread bytes kept before the transport stops reading (as asyncio's streams do)."""


class _Writes:
    """The writes the drivers of one event loop made this turn, made together at its end.

    On loopback (and on a busy host), a write to a server process that sleeps costs
    a wake-up of that process, several times the cost of the write itself. When the
    replies of many sessions arrive in one loop turn, each driver prepares its next
    message; writing them all back to back, once the turn's callbacks are done, finds
    the server awake for all but the first: about 6 us less per message at 16
    connections on the benchmark machine (docs/performance.md).
    """

    __slots__ = ("_drivers", "_loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._drivers: list[InlineDriver] = []

    def add(self, driver: InlineDriver) -> None:
        """Make ``driver``'s pending write at the end of this loop turn."""
        if not self._drivers:
            self._loop.call_soon(self._flush)
        self._drivers.append(driver)

    def _flush(self) -> None:
        drivers, self._drivers = self._drivers, []
        for driver in drivers:
            try:
                driver._flush()
            except BaseException as exc:  # a bug: it ends that run, not the turn's others
                driver._finish(None, exc)


# One per event loop, forgotten with its loop.
_WRITES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Writes] = weakref.WeakKeyDictionary()


def _writes(loop: asyncio.AbstractEventLoop) -> _Writes:
    writes = _WRITES.get(loop)
    if writes is None:
        writes = _WRITES[loop] = _Writes(loop)
    return writes


class InlineDriver(asyncio.BufferedProtocol):
    """Drives one flow from the callbacks of a stream's transport.

    A buffered protocol: the transport reads into one buffer made for the run
    (``recv_into``), instead of allocating a fresh 256 KB object for every read,
    which glibc serves with ``mmap`` and gives back with ``mremap`` and ``munmap``:
    three system calls per read, which cost more than the read itself.
    """

    def __init__(self, stream: AsyncStream, flow: Flow) -> None:
        self._stream = stream
        self._flow = flow
        self._loop = asyncio.get_running_loop()
        self._transport: Any = stream.writer.transport
        self._over_ssl = self._transport.get_extra_info("sslcontext") is not None
        self._buffer = bytearray()
        self._read_buffer = memoryview(bytearray(READ_SIZE))
        self._eof = False
        self._lost: BaseException | None = None
        self._lost_called = False
        self._lost_exc: BaseException | None = None
        self._waiting: str | None = None  # "read", "write" (drain), "flush" or "poll"
        self._paused = False
        self._reading_paused = False
        self._polls = 0
        self._deadline: float | None = None
        self._seconds: float | None = None
        self._stage = Stage.MAIL
        self._timer = LazyTimer(lambda: self._deadline, self._on_deadline)
        self._done: asyncio.Future[Any] = self._loop.create_future()
        self._writes = _writes(self._loop)
        self._unwritten = b""  # the data of a write waiting for the end of the loop turn

    @staticmethod
    def usable(stream: AsyncStream) -> bool:
        """Whether a stream can hand its transport over now (nothing buffered or pending)."""
        reader = stream.reader
        transport: Any = stream.writer.transport
        return (
            not _buffered(reader)
            and not reader.at_eof()
            and reader.exception() is None
            and not transport.is_closing()
            and transport.is_reading()
            and hasattr(transport, "set_protocol")
        )

    @property
    def finished(self) -> bool:
        """Whether the flow returned (the session is between transactions again)."""
        done = self._done
        return done.done() and not done.cancelled() and done.exception() is None

    async def run(self) -> Any:
        """Run the flow to its end and return its value (or raise what it raised)."""
        transport = self._transport
        original = transport.get_protocol()
        transport.set_protocol(self)
        try:
            self._advance(None, None)
            return await self._done
        finally:
            self._timer.cancel()
            self._waiting = None  # a write still waiting for the turn's end is not made
            transport.set_protocol(original)
            self._hand_back(original)
            if not self._done.done():  # cancelled: the flow goes no further
                self._flow.close()

    def _hand_back(self, original: Any) -> None:
        """Tell the stream's protocol what happened while it was away."""
        if self._reading_paused and not self._lost_called:
            self._transport.resume_reading()  # the stream's reader applies its own limit
        if self._paused:
            original.pause_writing()  # it must see the pause before the resume
        if self._buffer:
            self._stream.reader.feed_data(bytes(self._buffer))
            self._buffer.clear()
        if self._lost_called:
            original.connection_lost(self._lost_exc)
        elif self._eof:
            original.eof_received()

    # -- the flow ----------------------------------------------------------------------

    def _advance(self, value: Any, error: MailTransferError | None) -> None:
        """Run the flow until it must wait for the network (or ends)."""
        flow = self._flow
        while True:
            try:
                instruction = flow.send(value) if error is None else flow.throw(error)
            except StopIteration as stop:
                self._finish(stop.value, None)
                return
            except BaseException as exc:  # the flow's error, or a bug: the caller's to handle
                self._finish(None, exc)
                return
            value, error = None, None
            kind = type(instruction)
            if kind is Write:
                # Made at the end of the loop turn (_Writes); the flow waits at its write.
                self._unwritten = instruction.data  # type: ignore[union-attr]
                self._waiting = "flush"
                self._writes.add(self)
                return
            elif kind is Read:
                if self._buffer:
                    value = bytes(self._buffer)
                    self._buffer.clear()
                    if self._reading_paused:
                        self._reading_paused = False
                        self._transport.resume_reading()
                elif self._eof:
                    value, error = self._at_end()
                else:
                    error = self._expired("read")
                    if error is None:
                        self._wait("read")
                        return
            elif kind is Deadline:
                seconds = instruction.seconds  # type: ignore[union-attr]
                self._seconds = seconds
                self._stage = instruction.stage  # type: ignore[union-attr]
                self._deadline = None if seconds is None else self._loop.time() + seconds
            elif kind is Poll:
                if self._buffer or self._eof:
                    value = bytes(self._buffer) if self._buffer else b""
                    self._buffer.clear()
                elif self._stream._socket_readable():
                    # Bytes in the kernel that the loop has not read yet: give it two turns.
                    self._polls = _POLL_TURNS
                    self._waiting = "poll"
                    self._loop.call_soon(self._poll_turn)
                    return
            else:
                error = UsageError(f"{kind.__name__} cannot run inside transport callbacks")

    def _flush(self) -> None:
        """Make the write the flow waits at (the loop turn is over), then go on."""
        if self._waiting != "flush":
            return  # the run ended (cancelled) before the turn did: nothing is written
        data, self._unwritten = self._unwritten, b""
        error = self._write(data)
        if error is None and self._paused:
            error = self._expired("write")
            if error is None:
                self._wait("write")
                return
        self._resume(None, error)

    def _finish(self, value: Any, exc: BaseException | None) -> None:
        self._timer.cancel()
        if self._done.done():
            return
        if exc is not None:
            self._done.set_exception(exc)
        else:
            self._done.set_result(value)

    def _wait(self, what: str) -> None:
        self._waiting = what
        if self._deadline is not None:
            self._timer.arm(self._deadline)

    def _resume(self, value: Any, error: MailTransferError | None) -> None:
        self._waiting = None
        self._advance(value, error)

    def _write(self, data: bytes) -> MailTransferError | None:
        transport = self._transport
        try:
            # A lost transport drops writes silently: say so, or a body whose end never
            # left would look sent (see AsyncStream.write).
            if transport.is_closing():
                raise ConnectionResetError("the connection was lost before this write")
            transport.write(data)
            if transport.is_closing():
                raise ConnectionResetError("the connection was lost during this write")
        except (OSError, ssl.SSLError) as exc:
            return translate(exc, self._stage, self._stream.where)
        return None

    def _at_end(self) -> tuple[bytes, MailTransferError | None]:
        """What a read gets once the stream has ended: ``b""``, or the error that ended it."""
        lost = self._lost
        if lost is not None and isinstance(lost, (OSError, ssl.SSLError)):
            return b"", translate(lost, self._stage, self._stream.where)
        return b"", None

    def _expired(self, operation: str) -> MailTransferError | None:
        deadline = self._deadline
        if deadline is not None and self._loop.time() >= deadline:
            return timeout_error(self._stage, operation, self._seconds, self._stream.where)
        return None

    def _on_deadline(self) -> None:
        waiting = self._waiting
        if waiting in ("read", "write"):
            error = timeout_error(self._stage, waiting, self._seconds, self._stream.where)
            self._resume(None, error)

    def _poll_turn(self) -> None:
        if self._waiting != "poll":
            return
        self._polls -= 1
        if self._buffer or self._eof:
            value = bytes(self._buffer) if self._buffer else b""
            self._buffer.clear()
            self._resume(value, None)
        elif self._polls > 0:
            self._loop.call_soon(self._poll_turn)
        else:
            self._resume(None, None)

    # -- the transport's callbacks ---------------------------------------------------

    def get_buffer(self, sizehint: int) -> memoryview:
        """Where the transport puts the bytes it reads."""
        return self._read_buffer

    def buffer_updated(self, nbytes: int) -> None:
        """The transport read ``nbytes`` into the buffer."""
        self.data_received(bytes(self._read_buffer[:nbytes]))

    def data_received(self, data: bytes) -> None:
        """Bytes from the server: to the flow if it waits for them, else kept."""
        if self._waiting == "read":
            if self._buffer:
                self._buffer += data
                data = bytes(self._buffer)
                self._buffer.clear()
            self._resume(data, None)
            return
        self._buffer += data
        if len(self._buffer) > _BUFFER_LIMIT and not self._reading_paused:
            # A server that talks while nobody listens is not read without limit.
            self._reading_paused = True
            self._transport.pause_reading()

    def eof_received(self) -> bool:
        """The server closed its side."""
        self._eof = True
        if self._waiting == "read":
            self._resume(*self._at_end())
        return not self._over_ssl  # as asyncio's stream protocol answers

    def connection_lost(self, exc: Exception | None) -> None:
        """The connection is gone (reset, or closed)."""
        self._lost_called, self._lost_exc = True, exc
        self._eof = True
        self._lost = exc
        if self._waiting == "read":
            self._resume(*self._at_end())
        elif self._waiting == "write":
            error = translate(
                exc or ConnectionResetError("the connection was lost"),
                self._stage,
                self._stream.where,
            )
            self._resume(None, error)

    def pause_writing(self) -> None:
        """The transport's buffer is full: the next write waits."""
        self._paused = True

    def resume_writing(self) -> None:
        """The transport drained: a waiting write goes on."""
        self._paused = False
        if self._waiting == "write":
            self._resume(None, None)
