"""Small steps every flow uses: write a command, read its reply."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from ..errors import ServerDisconnected, classify
from ..protocol import NEED_DATA, Command, Connection, ConnectionClosed, Response, Stage
from ._io import READ, Deadline, Instruction, Write

__all__ = ["command", "read_response"]


def read_response(conn: Connection, stage: Stage) -> Generator[Instruction, Any, Response]:
    """Read until the next reply is complete and return it matched to its command.

    Raises:
        ServerDisconnected: the server closed the connection first.
        ServiceUnavailable: the server answered 421: it is closing the session.
    """
    while True:
        event = conn.next_event()
        if event is NEED_DATA:
            data = yield READ
            conn.receive_data(data)
            continue
        if isinstance(event, ConnectionClosed):
            raise ServerDisconnected(
                f"the server closed the connection during {stage.value}",
                stage=stage,
                transcript=conn.transcript(),
            )
        assert isinstance(event, Response)
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


def command(
    conn: Connection, cmd: Command, timeout: float | None
) -> Generator[Instruction, Any, Response]:
    """Send one command and return its reply, within ``timeout`` seconds."""
    yield Deadline(timeout, cmd.stage)
    yield Write(conn.send(cmd))
    return (yield from read_response(conn, cmd.stage))
