"""Small steps every flow uses: write a command, read its reply."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from ..errors import RemoteProtocolError, ServerDisconnected, classify
from ..protocol import NEED_DATA, Command, Connection, ConnectionClosed, Response, Stage
from ._io import POLL, READ, Deadline, Instruction, Write

__all__ = ["buffered_response", "check_unsolicited", "command", "read_response"]


def read_response(
    conn: Connection, stage: Stage, *, short: bool = False, deadline: Deadline | None = None
) -> Generator[Instruction, Any, Response]:
    """Read until the next reply is complete and return it matched to its command.

    ``short``: the caller just found the buffered bytes short of a reply
    (:func:`buffered_response` returned None), so reading starts at once.
    ``deadline``: set it before the first read, if one is needed.

    Raises:
        ServerDisconnected: the server closed the connection first.
        ServiceUnavailable: the server answered 421: it is closing the session.
        RemoteProtocolError: the reply broke the protocol (its stage is set to ``stage``).
    """
    while True:
        if short:
            short = False
        else:
            response = buffered_response(conn, stage)
            if response is not None:
                return response
        if deadline is not None:
            yield deadline
            deadline = None
        data = yield READ
        conn.receive_data(data)


def buffered_response(conn: Connection, stage: Stage) -> Response | None:
    """The next reply if its bytes are all in, else None: :func:`read_response` without I/O.

    A run of pipelined replies usually arrives in one read; taking the rest this way
    costs no generator each.

    Raises:
        ServerDisconnected, ServiceUnavailable, RemoteProtocolError: as :func:`read_response`.
    """
    try:
        event = conn.next_event()
    except RemoteProtocolError as exc:
        # The core knows the bytes, not the session: say where the bad reply came.
        if exc.stage is None:
            exc.stage = stage
        raise
    if type(event) is not Response:  # NEED_DATA or ConnectionClosed, the rare cases
        if event is NEED_DATA:
            return None
        raise ServerDisconnected(
            f"the server closed the connection during {stage.value}",
            stage=stage,
            transcript=conn.transcript(),
        )
    if event.reply.code == 421:
        # RFC 5321 3.8: the server is closing the session, whatever it was asked; any
        # replies still awaited will never come. Report the 421 itself.
        error = classify(
            event.reply,
            stage=stage,
            command=event.command.redacted() if event.command is not None else None,
        )
        error.transcript = conn.transcript()
        raise error
    return event


def check_unsolicited(conn: Connection, stage: Stage) -> Generator[Instruction, Any, None]:
    """Before a command that starts an exchange, make sure the server has said nothing.

    With no reply outstanding, any byte from the server is a reply nobody asked for: left
    alone it would be taken for the answer to the next command and shift every later reply
    by one (THREATS S11). The core raises RemoteProtocolError for it; a 421 (allowed at any
    time, RFC 5321 3.8) is reported as such, and an end of stream as ServerDisconnected.
    """
    if conn.pending:
        return
    early = yield POLL
    if early is not None:
        conn.receive_data(early)
    elif not conn.has_buffered_data():
        return
    try:
        event = conn.next_event()
    except RemoteProtocolError as exc:
        exc.stage = exc.stage or stage
        raise
    if isinstance(event, ConnectionClosed):
        raise ServerDisconnected(
            f"the server closed the connection before {stage.value}",
            stage=stage,
            transcript=conn.transcript(),
        )
    if isinstance(event, Response) and event.reply.code == 421:
        error = classify(event.reply, stage=stage)
        error.transcript = conn.transcript()
        raise error


def command(
    conn: Connection, cmd: Command, timeout: float | None
) -> Generator[Instruction, Any, Response]:
    """Send one command and return its reply, within ``timeout`` seconds."""
    yield Deadline(timeout, cmd.stage)
    yield from check_unsolicited(conn, cmd.stage)
    yield Write(conn.send(cmd))
    return (yield from read_response(conn, cmd.stage))
