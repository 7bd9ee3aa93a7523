"""CPU cost per message of message preparation and of the sans-I/O protocol core.

No sockets and no server: each item runs in a loop in this process and prints
microseconds per message (the best of ``--repeat`` rounds, to damp noise from
other jobs). ``--profile ITEM`` prints a cProfile of that item instead.
See docs/performance.md, section *Preparation and protocol core*.

Items:

- ``prepare bytes``: ``Submission.create`` for the 2 KB benchmark message as bytes
  (what ``bench_send.py`` sends);
- ``prepare EmailMessage``: the same text as an ``EmailMessage``;
- ``prepare kwargs``: ``Submission.create`` building the message from keyword arguments;
- ``core transaction``: the ``transaction`` flow driving a ``protocol.Connection``
  through MAIL, RCPT, DATA, the body and the final reply, answered from memory;
- ``core pipeline``: one message of a long ``pipeline`` run (``send_many``'s flow):
  the body and end of data riding with the next envelope, answered from memory;
- ``... new recipient``: the same items with a recipient never seen before in each
  message (a newsletter's case: no cache of checked addresses or commands can hit).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _sink import make_message

from mailtransfer._flows._io import Deadline, Poll, Read, Write
from mailtransfer._flows.envelope import envelope_commands
from mailtransfer._flows.pipeline import Job, pipeline
from mailtransfer._flows.transaction import transaction
from mailtransfer._sending import Submission
from mailtransfer.config import Timeouts
from mailtransfer.protocol import Connection, Ehlo
from mailtransfer.results import SendResult

SENDER = "sender@bench.example"
RECIPIENTS = ["rcpt@bench.example"]
EHLO_REPLY = (
    b"250-sink.example\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SIZE 10240000\r\n"
    b"250-DSN\r\n250 ENHANCEDSTATUSCODES\r\n"
)
GROUP_REPLY = b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
FINAL_REPLY = b"250 2.0.0 Ok: queued as 1234\r\n"


def _email_message(raw: bytes) -> EmailMessage:
    head, _, body = raw.partition(b"\r\n\r\n")
    msg = EmailMessage()
    for line in head.decode("ascii").split("\r\n"):
        name, _, value = line.partition(": ")
        if name.lower() not in ("mime-version", "content-type", "content-transfer-encoding"):
            msg[name] = value
    msg.set_content(body.decode("ascii"))
    return msg


def _ready_connection() -> Connection:
    conn = Connection()
    conn.receive_data(b"220 sink.example ESMTP\r\n")
    conn.next_event()
    conn.send(Ehlo("client.example"))
    conn.receive_data(EHLO_REPLY)
    conn.next_event()
    return conn


def _drive(flow: Any, replies: list[bytes]) -> Any:
    """Run a flow generator, answering each read with the next canned reply block."""
    value: Any = None
    try:
        while True:
            instruction = flow.send(value)
            value = None
            if isinstance(instruction, Read):
                value = replies.pop(0)
            elif isinstance(instruction, Poll):
                value = None
            elif not isinstance(instruction, (Write, Deadline)):
                raise AssertionError(f"unexpected instruction {instruction!r}")
    except StopIteration as stop:
        return stop.value


class _NewRecipients:
    """Each call gives a one-recipient list with an address not given before."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> list[str]:
        self.count += 1
        return [f"r{self.count}@bench.example"]


class _Jobs:
    """A JobSource handing out the same message for ever, insisting that each is sent."""

    def __init__(self, body: bytes, recipients: Callable[[], list[str]]) -> None:
        self.body = body
        self.recipients = recipients
        self.finished = 0

    def take(self) -> Job:
        mail, rcpts = envelope_commands(SENDER, self.recipients(), CONN_EXTENSIONS)
        return Job(mail, rcpts, self.body)

    def finish(self, job: Job, outcome: object) -> None:
        if not isinstance(outcome, SendResult):
            raise AssertionError(f"a message failed: {outcome!r}")
        self.finished += 1

    def give_back(self, job: Job) -> None:
        raise AssertionError("no message is given back when every reply is a success")


class _PipelineStep:
    """Each call runs a pipelined flow through one more message, answered from memory."""

    def __init__(self, conn: Connection, body: bytes, recipients: Callable[[], list[str]]) -> None:
        self.jobs = _Jobs(body, recipients)
        self.flow = pipeline(conn, self.jobs, Timeouts())
        self.answer: Any = None
        self.reads = 0

    def __call__(self) -> int:
        flow = self.flow
        value, self.answer = self.answer, None
        while True:
            instruction = flow.send(value)
            value = None
            if isinstance(instruction, Read):
                # The first read wants the envelope's replies; each later one the last
                # message's final reply and the next envelope's replies.
                self.answer = FINAL_REPLY + GROUP_REPLY if self.reads else GROUP_REPLY
                self.reads += 1
                return self.jobs.finished
            elif not isinstance(instruction, (Write, Deadline, Poll)):
                raise AssertionError(f"unexpected instruction {instruction!r}")


CONN_EXTENSIONS = _ready_connection().extensions


def items() -> dict[str, Callable[[], object]]:
    """The benchmark items, each a callable that handles one message."""
    raw = make_message(2048)
    email_message = _email_message(raw)
    build = {
        "sender": "Bench Sender <sender@bench.example>",
        "to": "Bench Recipient <rcpt@bench.example>",
        "subject": "mailtransfer throughput benchmark",
        "text": raw.partition(b"\r\n\r\n")[2].decode("ascii"),
    }
    conn = _ready_connection()
    timeouts = Timeouts()
    prepared = Submission.create(raw, recipients=RECIPIENTS, build={"sender": SENDER}).prepared
    new_recipient = _NewRecipients()

    def core() -> object:
        mail, rcpts = envelope_commands(
            prepared.envelope.sender,
            prepared.envelope.recipients,
            conn.extensions,
            size=prepared.size,
        )
        flow = transaction(conn, mail=mail, rcpts=rcpts, body=prepared.data, timeouts=timeouts)
        return _drive(flow, [GROUP_REPLY, FINAL_REPLY])

    return {
        "prepare bytes": lambda: Submission.create(
            raw, recipients=RECIPIENTS, build={"sender": SENDER}
        ),
        "prepare EmailMessage": lambda: Submission.create(email_message, build={}),
        "prepare kwargs": lambda: Submission.create(None, build=build),
        "core transaction": core,
        "core pipeline": _PipelineStep(_ready_connection(), prepared.data, lambda: RECIPIENTS),
        "prepare bytes, new recipient": lambda: Submission.create(
            raw, recipients=new_recipient(), build={"sender": SENDER}
        ),
        "core pipeline, new recipient": _PipelineStep(
            _ready_connection(), prepared.data, _NewRecipients()
        ),
    }


def measure(func: Callable[[], object], count: int, repeat: int) -> float:
    """Best-of-``repeat`` CPU microseconds per call over ``count`` calls."""
    for _ in range(min(count, 200)):
        func()
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        for _ in range(count):
            func()
        best = min(best, time.process_time() - start)
    return best / count * 1e6


def main() -> int:
    """Print microseconds per message for each item, or profile one item."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000, help="messages per round")
    parser.add_argument("--repeat", type=int, default=5, help="rounds; the best is kept")
    parser.add_argument("--profile", metavar="ITEM", help="cProfile one item instead")
    args = parser.parse_args()
    table = items()
    if args.profile:
        func = table[args.profile]
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(args.count):
            func()
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        return 0
    for name, func in table.items():
        print(f"{name:30} {measure(func, args.count, args.repeat):8.1f} us/message")
    return 0


if __name__ == "__main__":
    sys.exit(main())
