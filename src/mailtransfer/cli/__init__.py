"""The ``mailtransfer`` command line: ``send``, ``bulk``, ``verify``, ``serve`` and ``demo``.

One module per command; each offers ``add_parser(commands)`` and ``run(args) -> int``.
`main` parses, runs, and turns a typed error into its exit code (`ExitCode`,
documented in docs/cli.md), so scripts can tell a refused message from a lost connection,
a TLS failure or a failed login.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from .._version import __version__
from ..deliverability import _command as _check_command
from ..errors import MailTransferError
from . import bulk, demo, send, serve, verify
from ._exit import ExitCode, exit_code_for
from ._output import report_error

__all__ = ["ExitCode", "exit_code_for", "main"]

_COMMANDS = {"send": send, "bulk": bulk, "verify": verify, "serve": serve, "demo": demo}
_COMMANDS["check"] = _check_command  # mailtransfer.deliverability (docs/deliverability.md)


class _Parser(argparse.ArgumentParser):
    """argparse, exiting with `ExitCode.USAGE` (2) on bad arguments, as it does by default."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every command."""
    parser = _Parser(
        prog="mailtransfer",
        description="Send mail, check a server, or run a local capture server.",
        epilog="Exit codes: 0 ok, 1 refused, 2 usage, 3 connection, 4 TLS, 5 auth,"
        " 6 delivery unknown, 130 interrupted (docs/cli.md).",
    )
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in _COMMANDS.values():
        module.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``).

    Returns:
        The exit code (see `ExitCode`).
    """
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = _COMMANDS[args.command].run
    try:
        return int(handler(args))
    except MailTransferError as exc:
        return int(report_error(exc, transcript=getattr(args, "verbose", False)))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)
