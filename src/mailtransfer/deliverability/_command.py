"""``mailtransfer check DOMAIN``: the deliverability report as a table (or JSON).

Follows the CLI's one-module-per-command shape (``add_parser`` and ``run``);
:func:`main_check` runs it on its own. Exit status: 0 when nothing failed
(1 with ``--strict`` when anything warned), 1 when a check failed, 2 for bad
arguments.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from typing import Any

from ..dns import Resolver
from ..errors import MailTransferError, UsageError
from ._check import DEFAULT_BLOCKLISTS
from ._report import DomainReport, Status, render_report
from ._run import check_domain

__all__ = ["add_parser", "main_check", "run"]


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("domain", help="the domain you send mail from")
    parser.add_argument(
        "-s", "--selector", action="append", default=[], help="a DKIM selector you sign with"
    )
    parser.add_argument(
        "--ip", action="append", default=[], help="a sending IP: SPF, reverse DNS, blocklists"
    )
    parser.add_argument(
        "--blocklist",
        action="append",
        default=None,
        metavar="ZONE",
        help=f"a DNSBL zone to query (default: {', '.join(DEFAULT_BLOCKLISTS)})",
    )
    parser.add_argument("--no-blocklists", action="store_true", help="query no blocklist")
    parser.add_argument("--no-mta-sts", action="store_true", help="do not fetch the policy")
    parser.add_argument(
        "--nameserver", action="append", default=None, help="a DNS server to ask (default: system)"
    )
    parser.add_argument("--dns-port", type=int, default=53, help="the DNS servers' port")
    parser.add_argument("--dns-timeout", type=float, default=5.0, help="seconds per lookup")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--strict", action="store_true", help="exit 1 on warnings too")


def add_parser(commands: Any) -> None:
    """Register ``check`` on the command parser (``commands`` is argparse's subparsers)."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "check",
        help="check a domain's MX, SPF, DKIM, DMARC, MTA-STS, reverse DNS and blocklists",
        description="Check what receivers will find in DNS for mail from DOMAIN, with a"
        " pass / warn / fail line per check and the fix for each problem.",
    )
    _configure(parser)


def run(args: argparse.Namespace) -> int:
    """Run the check and print the report.

    Returns:
        0 when nothing failed (with ``--strict``: nothing warned either), else 1.
    """
    resolver = None
    if args.nameserver or args.dns_port != 53 or args.dns_timeout != 5.0:
        resolver = Resolver(
            nameservers=tuple(args.nameserver) if args.nameserver else None,
            port=args.dns_port,
            timeout=args.dns_timeout,
        )
    if args.no_blocklists:
        blocklists: Sequence[str] = ()
    else:
        blocklists = args.blocklist if args.blocklist is not None else DEFAULT_BLOCKLISTS
    try:
        report = check_domain(
            args.domain,
            dkim_selectors=args.selector,
            sending_ips=args.ip,
            blocklists=blocklists,
            mta_sts=not args.no_mta_sts,
            resolver=resolver,
        )
    except ValueError as exc:
        if isinstance(exc, MailTransferError):
            raise
        raise UsageError(f"check: {exc}") from exc  # a --ip that is not an IP address
    if args.json:
        print(json.dumps(report_to_json(report), indent=2))
    else:
        print(render_report(report), end="")
    failed = {Status.FAIL, Status.WARN} if args.strict else {Status.FAIL}
    return 1 if report.status in failed else 0


def report_to_json(report: DomainReport) -> dict[str, Any]:
    """The report as JSON-ready data: the domain, the overall status and every finding."""
    return {
        "domain": report.domain,
        "status": report.status.value,
        "findings": [{**dataclasses.asdict(f), "status": f.status.value} for f in report.findings],
    }


def main_check(argv: Sequence[str] | None = None) -> int:
    """Run ``check`` as a program of its own (``argv`` without the command name).

    Returns:
        The exit status (0 ok, 1 a check failed, 2 bad arguments).
    """
    parser = argparse.ArgumentParser(prog="mailtransfer check")
    _configure(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        return run(args)
    except UsageError as exc:  # a bad IP or domain name
        print(f"mailtransfer check: {exc}", file=sys.stderr)
        return 2
