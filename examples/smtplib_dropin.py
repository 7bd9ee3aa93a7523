"""Switch existing smtplib code to mailtransfer with one line, and see what changes.

Run it: ``PYTHONPATH=src python examples/smtplib_dropin.py`` (needs the ``testing`` extra:
``pip install 'mailtransfer[testing]'``). An in-process SMTP server from
``mailtransfer.testing`` stands in for your mail server; nothing leaves the machine.

What it shows:

1. ``mailtransfer.compat.install()`` makes ``import smtplib`` give
   ``mailtransfer.compat.smtplib``; the unchanged "legacy" function below sends with it.
2. A message whose bytes hold a bare LF before a dot line (the SMTP smuggling trick)
   arrives as one message with CRLF line endings: the standard module would send the
   bare LF as it is.
3. A recipient with a CR/LF in it is refused with a ValueError before anything is sent,
   where the standard module's address parsing would silently cut it.
4. Errors are both kinds: ``except smtplib.SMTPRecipientsRefused`` and ``except
   mailtransfer.errors.RecipientsRefused`` catch the same exception.
5. With ``set_debuglevel(1)`` the AUTH credentials are printed as ``<credentials hidden>``.

It exits 0 when everything behaved as described, and 1 otherwise.
"""

from __future__ import annotations

import contextlib
import io
import sys

from mailtransfer import compat, errors
from mailtransfer.testing import RecordingServer

compat.install()  # the one line: from here on, `import smtplib` is mailtransfer's

import smtplib  # noqa: E402 - deliberately after install()

failures: list[str] = []


def check(condition: bool, what: str) -> None:
    """Record ``what`` as a failure unless ``condition`` holds."""
    if not condition:
        failures.append(what)


def legacy_send(host: str, port: int, to: list[str], body: bytes) -> dict[str, object]:
    """Code written for the standard smtplib, unchanged."""
    with smtplib.SMTP(host, port, local_hostname="app.example.test") as smtp:
        return dict(smtp.sendmail("app@example.test", to, body))


def main() -> int:
    """Send through the replacement and compare what the server saw with what was meant."""
    check(smtplib.__name__ == "mailtransfer.compat.smtplib", "import smtplib was not replaced")
    with RecordingServer(auth={"app": "app-password"}, auth_require_tls=False) as server:
        server.faults.refuse_recipient("gone@example.test")

        # 1 and 2: a legacy call; the bare LF before ".\r\n" cannot end the data early.
        body = b"Subject: report\r\n\r\nline one\n.\r\nMAIL FROM:<evil@example.test>\r\n"
        refused = legacy_send(server.host, server.port, ["bob@example.test"], body)
        message = server.messages[0]
        print("delivered:", message.data)
        check(refused == {}, "bob was refused")
        check(len(server.messages) == 1, "the message was split in two")
        check(message.data.count(b"\n") == message.data.count(b"\r\n"), "a bare LF arrived")

        with smtplib.SMTP(server.host, server.port, local_hostname="app.example.test") as smtp:
            # 3: CR/LF in an address is refused before a byte is sent.
            try:
                smtp.sendmail("app@example.test", ["bob@example.test\r\nDATA"], b"x")
                check(False, "an address with CR/LF was accepted")
            except ValueError as exc:
                print("refused before sending:", exc)

            # 4: one exception, two hierarchies.
            try:
                smtp.sendmail("app@example.test", ["gone@example.test"], b"x")
            except errors.RecipientsRefused as exc:
                check(isinstance(exc, smtplib.SMTPRecipientsRefused), "not an smtplib error")
                print("refused:", exc.recipients)

            # 5: debug output without the password.
            stderr = io.StringIO()
            with contextlib.redirect_stderr(stderr):
                smtp.set_debuglevel(1)
                smtp.login("app", "app-password")
                smtp.set_debuglevel(0)
            print(stderr.getvalue().splitlines()[0])
            check("app-password" not in stderr.getvalue(), "the password was printed")
            check("<credentials hidden>" in stderr.getvalue(), "the AUTH line was not masked")

    compat.uninstall()
    for failure in failures:
        print("FAILED:", failure, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
