"""``mailtransfer verify``: connect, greet, TLS, log in; show each stage, send no mail."""

from __future__ import annotations

import argparse
import datetime
import ssl
from typing import Any

from .._settings import MailerConfig
from .._sync.connection import SyncConnection
from ..errors import MailTransferError
from ._exit import ExitCode
from ._options import add_connection_options, describe_endpoint, mailer_arguments
from ._output import report_error

__all__ = ["add_parser", "describe_certificate", "run", "stage_of"]


def add_parser(commands: Any) -> None:
    """Register ``verify`` on the command parser."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "verify",
        help="connect, TLS, log in; show what the server offers (sends no mail)",
        description="Connect to the server, read its greeting, negotiate TLS and log in as"
        " configured, then show the greeting, the TLS certificate and session, the login"
        " result, the extensions offered and a per-stage transcript with secrets masked.",
    )
    add_connection_options(parser)


def run(args: argparse.Namespace) -> int:
    """Run every stage of a session up to the first message, and report each.

    Raises:
        UsageError: bad options (before connecting).
    """
    url, options = mailer_arguments(args)
    config = MailerConfig.resolve(url, **options)
    endpoint = config.endpoints[0]
    print(f"server       {describe_endpoint(endpoint)}")
    conn = SyncConnection(**config.connection_arguments(endpoint))
    try:
        extensions = conn.open()
    except MailTransferError as exc:
        _print_transcript(exc.transcript)
        return report_error(exc)
    try:
        transcript = conn.transcript()
        print(f"greeting     {_greeting(transcript)}")
        _print_tls(conn)
        if endpoint.credentials is None:
            print("auth         not tried (no --auth-user)")
        else:
            mechanism = _mechanism(transcript)
            user = getattr(endpoint.credentials, "username", "?")
            print(f"auth         logged in as {user} with {mechanism}")
        print(f"extensions   {extensions.domain}")
        for keyword, params in sorted(extensions.keywords.items()):
            print(f"  {keyword} {params}".rstrip())
    finally:
        conn.quit()
    _print_transcript(conn.transcript())
    return ExitCode.OK


def stage_of(line: str, current: str) -> str:
    """The session stage a transcript line belongs to, given the stage before it."""
    verb = line[3:].split(" ", 1)[0].upper() if line.startswith("C: ") else ""
    return {
        "EHLO": "ehlo",
        "HELO": "ehlo",
        "LHLO": "ehlo",
        "STARTTLS": "tls",
        "AUTH": "auth",
        "QUIT": "quit",
    }.get(verb, current)


def describe_certificate(der: bytes) -> list[tuple[str, str]]:
    """Subject, issuer, names and validity of a DER certificate, as label/value pairs."""
    from cryptography import x509  # noqa: PLC0415  (a dependency; only needed here)

    cert = x509.load_der_x509_certificate(der)
    expires = cert.not_valid_after_utc
    days = (expires - datetime.datetime.now(datetime.timezone.utc)).days
    rows = [
        ("subject", cert.subject.rfc4514_string() or "(empty)"),
        ("issuer", cert.issuer.rfc4514_string() or "(empty)"),
        ("valid from", cert.not_valid_before_utc.isoformat()),
        ("expires", f"{expires.isoformat()} ({'in ' if days >= 0 else ''}{days} days)"),
    ]
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return rows
    shown = [f"DNS:{n}" for n in names.get_values_for_type(x509.DNSName)]
    shown += [f"IP:{n}" for n in names.get_values_for_type(x509.IPAddress)]
    rows.append(("names", ", ".join(shown)))
    return rows


def _greeting(transcript: tuple[str, ...]) -> str:
    for line in transcript:
        if line.startswith("S: "):
            return line[3:].replace("\n", " / ")
    return "(none)"


def _mechanism(transcript: tuple[str, ...]) -> str:
    for line in reversed(transcript):
        if line.startswith("C: AUTH "):
            return line[8:].split(" ", 1)[0]
    return "?"


def _print_tls(conn: SyncConnection) -> None:
    info = conn.tls_info
    if info is None:
        print("tls          none (the session is not encrypted)")
        return
    print(f"tls          {info.version} {info.cipher}")
    sock = conn._stream.sock if conn._stream is not None else None
    der = sock.getpeercert(binary_form=True) if isinstance(sock, ssl.SSLSocket) else None
    if not der:
        print("certificate  (none presented)")
        return
    verified = conn.tls.ssl_context().verify_mode is ssl.CERT_REQUIRED
    print(f"certificate  {'verified' if verified else 'NOT verified (policy does not check it)'}")
    for label, value in describe_certificate(der):
        print(f"  {label:<11}{value}")


def _print_transcript(transcript: tuple[str, ...]) -> None:
    if not transcript:
        return
    print("transcript (secrets masked)")
    stage = "greeting"
    for line in transcript:
        stage = stage_of(line, stage)
        text = line.replace("\n", "\n" + " " * 13)
        print(f"  {stage:<9}  {text}")
