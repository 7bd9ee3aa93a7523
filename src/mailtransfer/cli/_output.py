"""How the commands report: results on stdout, problems on stderr, secrets never."""

from __future__ import annotations

import sys
from typing import TextIO

from ..errors import MailTransferError
from ..results import SendResult
from ._exit import ExitCode, exit_code_for

__all__ = ["report_error", "report_result"]


def report_result(result: SendResult, *, out: TextIO | None = None) -> None:
    """Print what the server did with a message (one line per refused recipient)."""
    out = out or sys.stdout
    queue = f" queue id {result.queue_id}" if result.queue_id else ""
    print(f"accepted {result.message_id}{queue} by {result.host}: {result.reply}", file=out)
    for address in result.accepted:
        print(f"  to <{address}>: accepted", file=out)
    for address, error in result.refused.items():
        print(f"  to <{address}>: refused: {error.reply}", file=out)


def report_error(exc: MailTransferError, *, transcript: bool = False) -> ExitCode:
    """Print an error (and, if asked, its redacted transcript) to stderr; return its exit code."""
    code = exit_code_for(exc)
    print(f"error ({code.name.lower()}): {type(exc).__name__}: {exc}", file=sys.stderr)
    if transcript and exc.transcript:
        print("transcript (secrets masked):", file=sys.stderr)
        for line in exc.transcript:
            print(f"  {line}", file=sys.stderr)
    return code
