"""``mailtransfer serve``: a local capture server that shows (and saves) what it receives.

For trying a program against a real SMTP server without sending anything anywhere: point it
at ``smtp://127.0.0.1:2525?tls=none`` and every message it sends is printed here (and
written to ``--save DIR`` as ``.eml`` files). Runs until Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from ._exit import ExitCode

if TYPE_CHECKING:
    from ..testing import ReceivedMessage

__all__ = ["add_parser", "run"]


def add_parser(commands: Any) -> None:
    """Register ``serve`` on the command parser."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "serve",
        help="run a local SMTP server that prints (and saves) what it receives",
        description="Accept every message on a loopback port and print a summary of each"
        " (or all of it, with --print). Needs the testing extra (aiosmtpd). Stops on Ctrl-C.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="the address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=2525, help="the port (default 2525; 0: any)")
    parser.add_argument("--save", metavar="DIR", help="write each message to DIR/NNNN.eml")
    parser.add_argument("--print", dest="show", action="store_true", help="print whole messages")
    parser.add_argument("--lmtp", action="store_true", help="speak LMTP instead of SMTP")


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted.

    Raises:
        UsageError: the testing extra is missing, or ``--save`` is not a directory.
    """
    try:
        from ..testing import RecordingServer  # noqa: PLC0415  (needs the testing extra)

        server = RecordingServer(host=args.host, port=args.port, lmtp=args.lmtp)
    except ImportError as exc:
        raise UsageError(f"serve needs the testing extra: {exc}") from None
    save = Path(args.save) if args.save else None
    if save is not None:
        save.mkdir(parents=True, exist_ok=True)
    # SIGTERM stops the server as Ctrl-C does, so service managers get a clean exit; SIGINT
    # is set explicitly because a shell starts background jobs with it ignored.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    previous_int = signal.signal(signal.SIGINT, _interrupt)
    try:
        server.start()
    except OSError as exc:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)
        raise UsageError(
            f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}"
        ) from None
    seen = 0
    try:
        scheme = "lmtp" if args.lmtp else "smtp"
        print(f"listening on {server.host}:{server.port}", flush=True)
        print(
            f"  send to {scheme}://{server.host}:{server.port}?tls=none ; Ctrl-C stops", flush=True
        )
        while True:
            try:
                messages = server.wait_for(seen + 1, timeout=0.5)
            except TimeoutError:
                continue
            for message in messages[seen:]:
                seen += 1
                _show(seen, message, save=save, whole=args.show)
    except KeyboardInterrupt:
        print(f"stopped after {seen} message(s)", flush=True)
        return ExitCode.OK
    finally:
        server.stop()
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _show(number: int, message: ReceivedMessage, *, save: Path | None, whole: bool) -> None:
    parsed = message.parsed()
    subject = parsed.get("Subject", "")
    to = ", ".join(message.rcpt_tos)
    print(
        f"#{number} from <{message.mail_from}> to {to}: {subject!s} ({len(message.data)} bytes)",
        flush=True,
    )
    if save is not None:
        path = save / f"{number:04d}.eml"
        with open(path, "wb") as file:
            file.write(message.data)
            file.flush()
            os.fsync(file.fileno())
        print(f"  saved {path}", flush=True)
    if whole:
        sys.stdout.write(message.data.decode("utf-8", "replace").replace("\r\n", "\n"))
        print("-" * 40, flush=True)
