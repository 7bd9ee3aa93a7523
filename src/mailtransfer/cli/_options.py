"""Options every client command shares: which server, which TLS, who logs in.

The server comes from a URL (positional, ``--url`` or ``MAILTRANSFER_URL``) or from
``--server host[:port]``; the flags win over what the URL says, as keyword options win over
the URL in `Mailer`. A password is read from an environment variable or asked for at the
terminal, so it never has to be on the command line (where ``ps`` shows it to everyone).
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import Any

from .._settings import Endpoint, MailerConfig, parse_url
from ..config import Timeouts
from ..errors import UsageError
from ..retry import RetryPolicy
from ..tls import ImplicitTLS, NoTLS, Opportunistic, StartTLS, TLSPolicy, create_ssl_context

__all__ = ["add_connection_options", "describe_endpoint", "mailer_arguments"]

_TLS_POLICIES: dict[str, type[TLSPolicy]] = {
    "none": NoTLS,
    "opportunistic": Opportunistic,
    "starttls": StartTLS,
    "implicit": ImplicitTLS,
}
PASSWORD_ENV = "MAILTRANSFER_PASSWORD"


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    """Add the server, TLS and authentication options to a command's parser."""
    server = parser.add_argument_group("server")
    server.add_argument(
        "url",
        nargs="?",
        help="smtp://host:587, smtps://host:465 or lmtp://host:24, with ?options"
        " (default: $MAILTRANSFER_URL)",
    )
    server.add_argument("--url", dest="url_option", metavar="URL", help="the same, as an option")
    server.add_argument("-s", "--server", metavar="HOST[:PORT]", help="the server, without a URL")
    server.add_argument("-p", "--port", type=int, help="the port (default 587; 465 for implicit)")
    server.add_argument("--lmtp", action="store_true", help="speak LMTP (with --server)")
    server.add_argument(
        "--tls",
        choices=sorted(_TLS_POLICIES),
        help="none, opportunistic, starttls (required) or implicit (SMTPS)",
    )
    server.add_argument("--cafile", help="trust the CA certificates in this PEM file")
    server.add_argument("--ehlo", metavar="NAME", help="the name to give in EHLO")
    server.add_argument("--timeout", type=float, metavar="SECONDS", help="for every phase")
    auth = parser.add_argument_group("authentication")
    auth.add_argument("-au", "--auth-user", metavar="USER", help="log in as USER")
    auth.add_argument(
        "--password-env",
        default=PASSWORD_ENV,
        metavar="VAR",
        help=f"read the password from this environment variable (default {PASSWORD_ENV});"
        " when unset, it is asked for at the terminal",
    )
    auth.add_argument(
        "--auth-mechanism",
        action="append",
        metavar="MECH",
        help="a SASL mechanism to use (repeat for several); default: the strongest offered",
    )
    auth.add_argument(
        "--allow-insecure-auth",
        action="store_true",
        help="allow logging in without TLS (a trusted local relay only)",
    )


def mailer_arguments(args: argparse.Namespace) -> tuple[str | None, dict[str, Any]]:
    """The URL and keyword options for `Mailer` that the parsed options ask for.

    Raises:
        UsageError: contradictory or missing options, or no password available.
    """
    url: str | None = args.url_option or args.url
    if args.url and args.url_option:
        raise UsageError("give the URL once: as an argument or with --url")
    options: dict[str, Any] = {"retry": RetryPolicy.none()}
    if args.server:
        if url:
            raise UsageError("give either a URL or --server, not both")
        host, _, port = args.server.rpartition(":") if ":" in args.server else (args.server, "", "")
        options["host"] = host.strip("[]")
        if port:
            options["port"] = _port(port)
        options["lmtp"] = args.lmtp
    elif not url:
        url = os.environ.get("MAILTRANSFER_URL") or None
        if url is None:
            raise UsageError("say which server: a URL, --server HOST[:PORT] or $MAILTRANSFER_URL")
    if args.port is not None:
        options["port"] = _port(str(args.port))
    tls = _tls_policy(args, url, options)
    if tls is not None:
        options["tls"] = tls
    if args.ehlo:
        options["local_hostname"] = args.ehlo
    if args.timeout is not None:
        seconds = args.timeout
        try:
            options["timeouts"] = Timeouts(
                connect=seconds, greeting=seconds, command=seconds, data=seconds
            )
        except ValueError as exc:
            raise UsageError(f"--timeout: {exc}") from None
    if args.auth_user:
        options["username"] = args.auth_user
        options["password"] = _password(args.auth_user, args.password_env)
    if args.auth_mechanism:
        options["mechanisms"] = [m.upper() for m in args.auth_mechanism]
    if args.allow_insecure_auth:
        options["allow_insecure_auth"] = True
    return url, options


def describe_endpoint(endpoint: Endpoint) -> str:
    """``scheme://host:port`` with the user name, never the password."""
    scheme = "lmtp" if endpoint.lmtp else "smtp"
    user = getattr(endpoint.credentials, "username", None)
    who = f"{user}@" if user else ""
    return f"{scheme}://{who}{endpoint.host}:{endpoint.port} ({type(endpoint.tls).__name__})"


def resolve(url: str | None, options: dict[str, Any]) -> MailerConfig:
    """Check the options as `Mailer` would, without connecting.

    Raises:
        UsageError: the URL or an option is invalid.
    """
    return MailerConfig.resolve(url, **options)


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise UsageError(f"the port must be a number from 1 to 65535, got {text!r}")
    return int(text)


def _tls_policy(
    args: argparse.Namespace, url: str | None, options: dict[str, Any]
) -> TLSPolicy | None:
    if args.tls is None and args.cafile is None:
        return None
    if args.tls is not None:
        policy_type = _TLS_POLICIES[args.tls]
    elif url is not None:
        policy_type = type(parse_url(url).endpoint.tls or StartTLS())
    else:
        policy_type = ImplicitTLS if options.get("port") == 465 else StartTLS
    if args.cafile is None:
        return policy_type()
    if policy_type is NoTLS:
        raise UsageError("--cafile needs TLS, but --tls is none")
    try:
        context = create_ssl_context(cafile=args.cafile)
    except OSError as exc:
        raise UsageError(f"--cafile {args.cafile}: {exc.strerror or exc}") from None
    return policy_type(context=context)


def _password(user: str, variable: str) -> str:
    password = os.environ.get(variable)
    if password:
        return password
    if not sys.stderr.isatty():
        raise UsageError(
            f"no password for {user}: set the environment variable {variable}"
            " (or --password-env), or run in a terminal to be asked for it"
        )
    try:
        return getpass.getpass(f"Password for {user}: ")
    except EOFError:
        raise UsageError(f"no password for {user} was entered") from None
