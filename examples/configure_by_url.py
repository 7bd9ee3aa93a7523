"""Configure a mailer with one URL: scheme, credentials, TLS and pool options in a string.

Run it: ``PYTHONPATH=src python examples/configure_by_url.py`` (needs the ``testing`` extra,
which brings aiosmtpd and trustme: ``pip install 'mailtransfer[testing]'``). An in-process
SMTP server with STARTTLS and AUTH, and a throw-away certificate authority, stand in for
your provider; nothing leaves the machine.

What it shows:

1. What ``parse_url()`` makes of typical URLs: port, TLS policy, pool limits, timeouts.
2. Bad URLs fail at once with ``UsageError``, whose message names the problem and never
   repeats the password.
3. A real send configured only by a URL: STARTTLS required and verified against a private
   CA (``cafile=``), a password with ``@``, ``:`` and ``/`` percent-encoded, and pool and
   timeout options. Keyword arguments then override parts of the URL.
4. ``Mailer.from_env()`` and the module-level ``mailtransfer.send()``, both reading the
   ``MAILTRANSFER_URL`` environment variable.

It exits 0 when each step behaved as described, and 1 otherwise.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from urllib.parse import quote

import mailtransfer
from mailtransfer import Mailer, PoolLimits, Timeouts, parse_url
from mailtransfer.errors import UsageError
from mailtransfer.testing import RecordingServer, tls_certificates

# aiosmtpd, inside the test server, logs a deprecation notice of its own at every login.
logging.getLogger("mail.log").setLevel(logging.ERROR)

PASSWORD = "s@cret:/9"  # needs percent-encoding in a URL: s%40cret%3A%2F9
failures: list[str] = []


def check(condition: bool, what: str) -> None:
    """Record ``what`` as a failure unless ``condition`` holds."""
    if not condition:
        failures.append(what)


def explain() -> None:
    """Step 1: what typical URLs mean."""
    print("1. parse_url():")
    for url in (
        "smtp://user:pw@smtp.example.org",
        "smtps://user:pw@smtp.example.org",
        "smtp://relay.internal:25?tls=opportunistic&pool_size=16&max_messages=500",
        "lmtp://127.0.0.1:24?timeout=10",
        "smtp://mx.example.org:2525?tls=none&connect_timeout=3&data_timeout=120",
    ):
        settings = parse_url(url)
        endpoint = settings.endpoint
        print(f"   {url}")
        print(
            f"     -> port {endpoint.port}, tls {endpoint.tls!r}, lmtp {endpoint.lmtp},"
            f" limits {settings.limits}, timeouts {settings.timeouts}"
        )
    check(parse_url("smtp://h").endpoint.port == 587, "smtp:// should default to port 587")
    check(parse_url("smtps://h").endpoint.port == 465, "smtps:// should default to port 465")


def refuse_bad_urls() -> None:
    """Step 2: bad URLs are refused, and the password is never quoted."""
    print("2. bad URLs:")
    for url in (
        "smtp://user:hunter2@mail.example.org?pool_sise=4",  # a typo in an option
        "smtp://user:hunter2@mail.example.org?tls=maybe",
        "smtp://user:hunter2@mail.example.org:99999",
        "smtp://user:hunter2@mail.example.org/path",
        "http://user:hunter2@mail.example.org",
    ):
        try:
            parse_url(url)
        except UsageError as exc:
            print(f"   UsageError: {exc}")
            check("hunter2" not in str(exc), f"the password leaked: {exc}")
        else:
            failures.append(f"{url} was accepted")


def send_by_url(server: RecordingServer, ca_file: Path) -> str:
    """Step 3: send through STARTTLS and AUTH, all configured by the URL.

    Returns:
        The URL, for step 4.
    """
    url = (
        f"smtp://alice:{quote(PASSWORD, safe='')}@localhost:{server.port}"
        f"?cafile={ca_file}&pool_size=2&timeout=5"
    )
    with Mailer(url) as mailer:
        result = mailer.send(
            sender="alice@example.test", to=["bob@example.test"], subject="By URL", text="Hi"
        )
        print(f"3. Mailer(url): {result!r}")
        print(f"   {mailer!r}")
        check(mailer.config.limits.max_connections == 2, "pool_size=2 was not applied")
        check(mailer.config.timeouts == Timeouts.all(5), "timeout=5 was not applied")
    # Keywords win over the URL: here the pool limits and the command deadline.
    with Mailer(url, limits=PoolLimits(max_connections=1), timeouts=Timeouts(command=20)) as m:
        print(f"   with keywords: {m.config.limits}")
        print(f"                  {m.config.timeouts}")
        check(m.config.limits.max_connections == 1, "limits= did not override pool_size")
    (message,) = server.wait_for(1)
    print(f"   the server saw: TLS {message.tls}, logged in as {message.auth_user!r}")
    check(message.tls, "the message was not sent over TLS")
    check(message.auth_user == "alice", f"logged in as {message.auth_user!r}")
    return url


def from_environment(server: RecordingServer, url: str) -> None:
    """Step 4: the same URL from MAILTRANSFER_URL."""
    os.environ["MAILTRANSFER_URL"] = url
    with Mailer.from_env() as mailer:
        mailer.send(sender="alice@example.test", to=["carol@example.test"], text="from env")
    # The module-level send() builds one default mailer on first use, closed at exit.
    result = mailtransfer.send(sender="alice@example.test", to=["dave@example.test"], text="hi")
    print(f"4. Mailer.from_env() and mailtransfer.send(): {result!r}")
    received = server.wait_for(3)
    check(len(received) == 3, f"the server has {len(received)} messages, not 3")


def main() -> int:
    """Run the four steps."""
    explain()
    refuse_bad_urls()
    certificates = tls_certificates("localhost")  # your provider's CA, in real life
    with tempfile.TemporaryDirectory() as folder:
        ca_file = certificates.write_ca(Path(folder) / "ca.pem")
        with RecordingServer(
            tls_context=certificates.server_context,
            require_starttls=True,
            auth={"alice": PASSWORD},
            require_auth=True,
        ) as server:
            url = send_by_url(server, ca_file)
            from_environment(server, url)
    for failure in failures:
        print(f"FAILED: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
