"""``mailtransfer send``: one message, from options (swaks style) or a ready-made file."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from .._sync.mailer import Mailer
from ..errors import UsageError
from ..message import Envelope
from ._dkim import add_dkim_options, signers_from
from ._exit import ExitCode
from ._options import add_connection_options, mailer_arguments
from ._output import report_result

__all__ = ["add_parser", "run"]

_DEFAULT_BODY = "This is a test message sent by mailtransfer.\n"


def add_parser(commands: Any) -> None:
    """Register ``send`` on the command parser."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "send",
        help="send one message",
        description="Send one message. The body is read from --body FILE, or from stdin"
        " when it is not a terminal; --data sends a complete message file as it is.",
    )
    add_connection_options(parser)
    message = parser.add_argument_group("message")
    message.add_argument("-f", "--from", dest="sender", metavar="ADDRESS", help="the sender")
    for flag, name in (("--to", "recipients"), ("--cc", "copies"), ("--bcc", "hidden")):
        message.add_argument(
            flag,
            dest=name,
            action="append",
            default=[],
            metavar="ADDRESS",
            help=f"a {flag[2:]} recipient (repeat, or separate with commas)",
        )
    message.add_argument("--reply-to", action="append", default=[], metavar="ADDRESS")
    message.add_argument("--subject", default="", help="the subject")
    message.add_argument("--body", metavar="FILE", help="the text body from a file ('-' for stdin)")
    message.add_argument("--html", metavar="FILE", help="an HTML alternative from a file")
    message.add_argument(
        "--attach", action="append", default=[], metavar="FILE", help="attach a file (repeat)"
    )
    message.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="add a header field (repeat)",
    )
    message.add_argument(
        "--data",
        metavar="FILE",
        help="send this RFC 5322 message as it is ('-' for stdin); --from and --to"
        " then set the envelope (default: taken from its headers)",
    )
    add_dkim_options(parser)
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show the session transcript (masked)"
    )


def run(args: argparse.Namespace) -> int:
    """Send the message the options describe and print the result.

    Raises:
        MailTransferError: what went wrong, for `main` to report with its exit code.
    """
    url, options = mailer_arguments(args)
    to = _addresses(args.recipients)
    cc = _addresses(args.copies)
    bcc = _addresses(args.hidden)
    options["signers"] = signers_from(args, args.sender)
    if args.verbose:
        _show_transcript()
    if args.data is not None:
        if any((args.subject, args.body, args.html, args.attach, args.header, args.reply_to)):
            raise UsageError("--data sends a complete message: no --subject, --body, --attach...")
        data = _read_bytes(args.data)
        recipients = [*to, *cc, *bcc]
        with Mailer(url, **options) as mailer:
            if args.sender is not None or recipients:
                if args.sender is None or not recipients:
                    raise UsageError("with --data, give both --from and --to, or neither")
                envelope = Envelope(sender=args.sender, recipients=tuple(recipients))
                result = mailer.send(data, envelope=envelope)
            else:
                result = mailer.send(_parse(data))
    else:
        if args.sender is None:
            raise UsageError("send needs --from (or --data with a complete message)")
        if not (to or cc or bcc):
            raise UsageError("send needs at least one --to, --cc or --bcc")
        build: dict[str, Any] = {
            "sender": args.sender,
            "to": to,
            "cc": cc,
            "bcc": bcc,
            "reply_to": _addresses(args.reply_to),
            "subject": args.subject,
            "text": _body(args.body),
            "attachments": args.attach,
            "headers": [_header(field) for field in args.header],
        }
        if args.html is not None:
            build["html"] = _read_bytes(args.html).decode("utf-8")
        with Mailer(url, **options) as mailer:
            result = mailer.send(**build)
    report_result(result)
    return ExitCode.DELIVERY if result.refused else ExitCode.OK


def _addresses(values: list[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _header(field: str) -> tuple[str, str]:
    name, colon, value = field.partition(":")
    if not colon or not name.strip():
        raise UsageError(f"--header must look like 'Name: value', got {field!r}")
    return name.strip(), value.strip()


def _read_bytes(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None


def _body(path: str | None) -> str:
    if path is None:
        if sys.stdin is None or sys.stdin.isatty():
            return _DEFAULT_BODY
        path = "-"
    data = _read_bytes(path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"the body ({path}) is not UTF-8 text; attach it instead") from None


def _parse(data: bytes) -> Any:
    import email.policy  # noqa: PLC0415
    from email.parser import BytesParser  # noqa: PLC0415

    return BytesParser(policy=email.policy.default).parsebytes(data)


def _show_transcript() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("  %(message)s"))
    logger = logging.getLogger("mailtransfer.connection")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
