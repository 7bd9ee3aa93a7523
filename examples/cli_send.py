"""The ``mailtransfer`` command line against a loopback server with STARTTLS and a login.

Run it: ``python examples/cli_send.py`` (needs the ``testing`` extra:
``pip install 'mailtransfer[testing]'``). It starts an in-process SMTP server that requires
STARTTLS and AUTH, with a throw-away CA, and runs the command line as a user would:

1. ``mailtransfer verify``: greeting, TLS version and certificate, login, extensions and a
   per-stage transcript in which the password is masked.
2. ``mailtransfer send``: a message with Cc, Bcc and an attachment, the body from stdin and
   the password from ``$MAILTRANSFER_PASSWORD`` (never on the command line).
3. ``mailtransfer send`` to a recipient the server refuses: exit code 1, and a wrong
   password: exit code 5 (see the exit code table in docs/cli.md).

It exits 0 when the server received what the script expected and every exit code matched.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from mailtransfer.testing import RecordingServer, tls_certificates

PASSWORD = "correct horse battery staple"


def mailtransfer(*args: str, stdin: str = "", password: str = PASSWORD) -> int:
    env = {**os.environ, "MAILTRANSFER_PASSWORD": password}
    print("$ mailtransfer", " ".join(args))
    done = subprocess.run(
        [sys.executable, "-m", "mailtransfer", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )
    for line in (done.stdout + done.stderr).splitlines():
        print(f"    {line}")
    print(f"    (exit code {done.returncode})\n")
    if password in done.stdout + done.stderr:
        raise SystemExit("the password was printed!")
    return done.returncode


def main() -> int:
    certs = tls_certificates("localhost", "127.0.0.1")
    failures = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        RecordingServer(
            tls_context=certs.server_context, auth={"alice": PASSWORD}, require_auth=True
        ) as server,
    ):
        cafile = str(certs.write_ca(Path(tmp) / "ca.pem"))
        report = Path(tmp) / "report.csv"
        report.write_text("month,total\nMay,42\n")
        server.faults.refuse_recipient("nobody@example.test", 550, "5.1.1 No such user")
        common = [f"smtp://localhost:{server.port}", "--cafile", cafile, "--auth-user", "alice"]

        if mailtransfer("verify", *common) != 0:
            failures.append("verify")
        code = mailtransfer(
            "send", *common, "--from", "Alice <alice@example.test>",
            "--to", "bob@example.test", "--cc", "carol@example.test",
            "--bcc", "archive@example.test", "--subject", "Monthly report",
            "--attach", str(report), stdin="Hi Bob,\nthe report is attached.\n",
        )  # fmt: skip
        if code != 0:
            failures.append("send")
        code = mailtransfer("send", *common, "--from", "alice@example.test",
                            "--to", "nobody@example.test")  # fmt: skip
        if code != 1:
            failures.append(f"refused recipient: exit code {code}, expected 1")
        code = mailtransfer("send", *common, "--from", "alice@example.test",
                            "--to", "bob@example.test", password="wrong")  # fmt: skip
        if code != 5:
            failures.append(f"wrong password: exit code {code}, expected 5")

    messages = server.messages
    if len(messages) != 1:
        failures.append(f"expected 1 message on the server, got {len(messages)}")
    else:
        message = messages[0]
        print(f"The server received {len(message.data)} bytes over TLS={message.tls}"
              f" from {message.auth_user} for {', '.join(message.rcpt_tos)}")  # fmt: skip
        if b"archive@" in message.data or "archive@example.test" not in message.rcpt_tos:
            failures.append("Bcc should be in the envelope only")
    for failure in failures:
        print("FAILED:", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
