"""``mailtransfer bulk``: send every message of an mbox, a directory of .eml, or JSON lines."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .._sync.mailer import Mailer
from ..errors import MailTransferError, UsageError
from ._dkim import add_dkim_options, signers_from
from ._exit import ExitCode, exit_code_for
from ._options import add_connection_options, mailer_arguments
from ._progress import ProgressBar
from ._sources import FORMATS, detect_format, read_batch

__all__ = ["add_parser", "run"]


def add_parser(commands: Any) -> None:
    """Register ``bulk`` on the command parser."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "bulk",
        help="send many messages from an mbox, a directory of .eml files, or JSON lines",
        description="Send every message in SOURCE over a pool of connections, with a"
        " progress bar on stderr. Messages from mbox and .eml files keep their headers; the"
        " envelope comes from From/To/Cc/Bcc (Bcc is removed). Each JSON line is an object"
        ' of send() arguments: {"from": ..., "to": [...], "subject": ..., "text": ...}.',
    )
    parser.add_argument("source", help="an mbox file, a directory of .eml, or a .jsonl file")
    add_connection_options(parser)
    parser.add_argument("--format", choices=FORMATS, help="the source format (default: guessed)")
    parser.add_argument(
        "--concurrency", type=int, default=4, help="messages in flight at once (default 4)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_dkim_options(parser)


def run(args: argparse.Namespace) -> int:
    """Send the batch; report each failure and a summary.

    Raises:
        UsageError: bad options or a malformed source, before anything is sent.
    """
    if args.concurrency < 1:
        raise UsageError(f"--concurrency must be at least 1, got {args.concurrency}")
    source = Path(args.source)
    if not source.exists():
        raise UsageError(f"{source} does not exist")
    fmt = args.format or detect_format(source)
    batch = read_batch(source, fmt)
    url, options = mailer_arguments(args)
    options["signers"] = signers_from(args, None)
    if not batch:
        print(f"{source}: no messages")
        return ExitCode.OK
    bar = None if args.no_progress else ProgressBar(len(batch))
    labels = [label for label, _ in batch]
    failures: list[tuple[int, MailTransferError]] = []
    partial = 0
    with Mailer(url, **options) as mailer:
        for index, outcome in mailer.send_iter(
            [item for _, item in batch], concurrency=args.concurrency
        ):
            failed = isinstance(outcome, MailTransferError) or bool(outcome.refused)
            if bar is not None:
                bar.update(not failed)
            if isinstance(outcome, MailTransferError):
                failures.append((index, outcome))
            elif outcome.refused:
                partial += 1
                refused = ", ".join(outcome.refused)
                print(f"{labels[index]}: partly refused ({refused})", file=sys.stderr)
    failures.sort(key=lambda failure: failure[0])
    for index, error in failures:
        code = exit_code_for(error)
        print(
            f"{labels[index]}: {code.name.lower()}: {type(error).__name__}: {error}",
            file=sys.stderr,
        )
    print(f"sent {len(batch) - len(failures)} of {len(batch)} message(s), {len(failures)} failed")
    if failures:
        return exit_code_for(failures[0][1])
    return ExitCode.DELIVERY if partial else ExitCode.OK
