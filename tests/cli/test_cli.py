"""The ``mailtransfer`` command line, run as a subprocess against real loopback servers."""

from __future__ import annotations

import json
import mailbox
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import dkim as dkimpy
import pytest

from mailtransfer import Mailer, NoTLS, RetryPolicy
from mailtransfer.cli import ExitCode
from mailtransfer.dkim import generate_key
from mailtransfer.testing import RecordingServer, TLSCertificates

Factory = Callable[..., RecordingServer]
SECRET = "pa55-w0rd-XYZZY"


def cli(
    *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MAILTRANSFER_")}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "mailtransfer", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )


def plain(server: RecordingServer) -> list[str]:
    return ["--server", f"{server.host}:{server.port}", "--tls", "none"]


def test_send_builds_the_message_from_options(smtp_server: RecordingServer, tmp_path: Path) -> None:
    attachment = tmp_path / "report.csv"
    attachment.write_text("a,b\n1,2\n")
    done = cli(
        "send", *plain(smtp_server),
        "--from", "Ada <ada@example.test>", "--to", "bob@example.test,carol@example.test",
        "--cc", "dan@example.test", "--bcc", "eve@example.test", "--subject", "Report ✓",
        "--header", "X-Ticket: 42", "--attach", str(attachment),
        stdin="Hello Bob\n.\nbye\n",
    )  # fmt: skip
    assert done.returncode == ExitCode.OK, done.stderr
    assert "accepted <" in done.stdout
    (message,) = smtp_server.messages
    assert message.mail_from == "ada@example.test"
    assert set(message.rcpt_tos) == {f"{n}@example.test" for n in ("bob", "carol", "dan", "eve")}
    parsed = message.parsed()
    assert parsed["Subject"] == "Report ✓"
    assert parsed["X-Ticket"] == "42"
    assert parsed["Bcc"] is None
    assert b"eve@" not in message.data
    body = parsed.get_body(("plain",))
    assert body is not None
    assert body.get_content().replace("\r\n", "\n") == "Hello Bob\n.\nbye\n"
    (part,) = list(parsed.iter_attachments())
    assert part.get_filename() == "report.csv"


def test_send_data_file_as_it_is(smtp_server: RecordingServer, tmp_path: Path) -> None:
    raw = tmp_path / "m.eml"
    raw.write_bytes(b"From: a@example.test\r\nTo: b@example.test\r\nSubject: raw\r\n\r\nHi\r\n")
    done = cli("send", *plain(smtp_server), "--data", str(raw))
    assert done.returncode == 0, done.stderr
    assert smtp_server.messages[0].rcpt_tos == ("b@example.test",)
    done = cli("send", *plain(smtp_server), "--data", str(raw), "--from", "x@example.test")
    assert done.returncode == ExitCode.USAGE
    assert len(smtp_server.messages) == 1


def test_starttls_auth_with_password_from_environment(
    recording_server: Factory, tls: TLSCertificates, tmp_path: Path
) -> None:
    server = recording_server(
        tls_context=tls.server_context, auth={"alice": SECRET}, require_auth=True
    )
    cafile = str(tls.write_ca(tmp_path / "ca.pem"))
    args = ["send", f"smtp://localhost:{server.port}", "--cafile", cafile, "--auth-user", "alice"]
    message = ["--from", "alice@example.test", "--to", "bob@example.test", "--body", os.devnull]
    done = cli(*args, *message, "-v", env={"MAILTRANSFER_PASSWORD": SECRET})
    assert done.returncode == ExitCode.OK, done.stderr
    assert server.messages[0].tls
    assert server.messages[0].auth_user == "alice"
    assert "AUTH PLAIN ****" in done.stderr  # the -v transcript, masked
    assert SECRET not in done.stdout + done.stderr

    no_password = cli(*args, *message)
    assert no_password.returncode == ExitCode.USAGE
    assert "MAILTRANSFER_PASSWORD" in no_password.stderr

    wrong = cli(*args, *message, "--password-env", "OTHER", env={"OTHER": "wrong"})
    assert wrong.returncode == ExitCode.AUTH, wrong.stderr
    assert len(server.messages) == 1


def test_untrusted_certificate_is_a_tls_failure(
    recording_server: Factory, tls: TLSCertificates
) -> None:
    server = recording_server(implicit_tls=tls.server_context)
    done = cli("send", f"smtps://localhost:{server.port}", "--from", "a@example.test",
               "--to", "b@example.test", "--body", os.devnull)  # fmt: skip
    assert done.returncode == ExitCode.TLS, done.stderr
    assert "CertificateVerifyFailed" in done.stderr
    assert server.messages == []


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (lambda f: f.refuse_recipient("nobody@example.test"), ExitCode.DELIVERY),
        (lambda f: f.refuse_recipient(None, 550, "5.1.1 No such user"), ExitCode.DELIVERY),
        (lambda f: f.reply_to_data(554, "5.6.0 Rejected"), ExitCode.DELIVERY),
        (lambda f: f.disconnect("."), ExitCode.UNKNOWN),
        (lambda f: f.disconnect("EHLO", 421, "4.3.2 Busy"), ExitCode.CONNECTION),
        (lambda f: f.refuse_sender(None, 530, "5.7.0 Authentication required"), ExitCode.AUTH),
    ],
    ids=["partial", "all-refused", "data-refused", "unknown", "421-greeting", "auth-needed"],
)
def test_exit_codes_name_the_failure(
    smtp_server: RecordingServer, fault: Callable[[Any], None], expected: ExitCode
) -> None:
    fault(smtp_server.faults)
    done = cli("send", *plain(smtp_server), "--from", "a@example.test",
               "--to", "bob@example.test,nobody@example.test", "--body", os.devnull)  # fmt: skip
    assert done.returncode == expected, done.stdout + done.stderr


def test_usage_and_connection_exit_codes(tmp_path: Path) -> None:
    assert cli("send", "--server", "127.0.0.1:1", "--to", "b@x.test").returncode == 2
    assert cli("send", "--from", "a@x.test", "--to", "b@x.test").returncode == 2  # no server
    assert cli("frobnicate").returncode == 2
    refused = cli("send", "--server", "127.0.0.1:1", "--tls", "none", "--from", "a@x.test",
                  "--to", "b@x.test", "--body", os.devnull)  # fmt: skip
    assert refused.returncode == ExitCode.CONNECTION
    assert "ConnectError" in refused.stderr
    bad_header = cli("send", "--server", "127.0.0.1:1", "--tls", "none", "--from", "a@x.test",
                     "--to", "b@x.test", "--subject", "x\nBcc: e@x.test")  # fmt: skip
    assert bad_header.returncode == ExitCode.USAGE


def test_dkim_key_signs(smtp_server: RecordingServer, tmp_path: Path) -> None:
    private, record = generate_key("ed25519")
    key = tmp_path / "dkim.pem"
    key.write_bytes(private if isinstance(private, bytes) else private.encode())
    done = cli("send", *plain(smtp_server), "--from", "a@example.test", "--to", "b@example.test",
               "--dkim-key", str(key), "--dkim-selector", "s1", "--body", os.devnull)  # fmt: skip
    assert done.returncode == 0, done.stderr

    def dns(name: bytes, timeout: int = 5) -> bytes:
        return record.encode() if name == b"s1._domainkey.example.test." else b""

    assert dkimpy.verify(smtp_server.messages[0].data, dnsfunc=dns)


def test_verify_shows_every_stage(
    recording_server: Factory, tls: TLSCertificates, tmp_path: Path
) -> None:
    server = recording_server(tls_context=tls.server_context, auth={"alice": SECRET})
    cafile = str(tls.write_ca(tmp_path / "ca.pem"))
    done = cli("verify", "--url", f"smtp://localhost:{server.port}", "--cafile", cafile,
               "--auth-user", "alice", env={"MAILTRANSFER_PASSWORD": SECRET})  # fmt: skip
    assert done.returncode == ExitCode.OK, done.stderr
    out = done.stdout
    assert "greeting     220 localhost" in out
    assert "tls          TLSv1." in out
    assert "certificate  verified" in out
    assert "subject" in out
    assert "issuer" in out
    assert "expires" in out
    assert "IP:127.0.0.1" in out
    assert "logged in as alice with" in out
    assert "auth       C: AUTH PLAIN ****" in out
    assert "tls        C: STARTTLS" in out
    assert SECRET not in out + done.stderr
    assert server.messages == []

    wrong = cli("verify", "--url", f"smtp://localhost:{server.port}", "--cafile", cafile,
                "--auth-user", "alice", env={"MAILTRANSFER_PASSWORD": "nope"})  # fmt: skip
    assert wrong.returncode == ExitCode.AUTH
    assert "C: AUTH PLAIN ****" in wrong.stdout
    assert "nope" not in wrong.stdout


def test_verify_plaintext_server_with_required_starttls(smtp_server: RecordingServer) -> None:
    done = cli("verify", "--server", f"{smtp_server.host}:{smtp_server.port}", "--tls", "starttls")
    assert done.returncode == ExitCode.TLS
    assert "TLSRequired" in done.stderr


def _batch_messages() -> list[EmailMessage]:
    messages = []
    for n in range(3):
        m = EmailMessage()
        m["From"] = "a@example.test"
        m["To"] = f"r{n}@example.test"
        m["Subject"] = f"m{n}"
        m.set_content(f"body {n}\nFrom the start of a line\n")
        messages.append(m)
    return messages


def test_bulk_from_mbox_eml_directory_and_json_lines(
    smtp_server: RecordingServer, tmp_path: Path
) -> None:
    box = mailbox.mbox(tmp_path / "out.mbox")
    for m in _batch_messages():
        box.add(m)
    box.close()
    done = cli("bulk", str(tmp_path / "out.mbox"), *plain(smtp_server))
    assert done.returncode == 0, done.stderr
    assert "sent 3 of 3" in done.stdout
    assert "3/3  ok 3  failed 0" in done.stderr  # the progress bar
    assert sorted(m.parsed()["Subject"] for m in smtp_server.messages) == ["m0", "m1", "m2"]
    assert all(
        b"X-Status" not in m.data and b"\r\nStatus:" not in m.data for m in smtp_server.messages
    )

    folder = tmp_path / "eml"
    folder.mkdir()
    for n, m in enumerate(_batch_messages()):
        (folder / f"{n}.eml").write_bytes(m.as_bytes())
    smtp_server.clear()
    smtp_server.faults.refuse_recipient("r1@example.test")
    done = cli("bulk", str(folder), *plain(smtp_server), "--no-progress")
    assert done.returncode == ExitCode.DELIVERY
    assert "1.eml: delivery: RecipientsRefused" in done.stderr
    assert "sent 2 of 3" in done.stdout
    assert len(smtp_server.messages) == 2


def test_bulk_json_lines_checked_before_sending(
    smtp_server: RecordingServer, tmp_path: Path
) -> None:
    lines = tmp_path / "batch.jsonl"
    good = {"from": "a@example.test", "to": ["b@example.test"], "subject": "j", "text": "x"}
    lines.write_text(json.dumps(good) + "\n" + json.dumps({**good, "colour": "red"}) + "\n")
    done = cli("bulk", str(lines), *plain(smtp_server))
    assert done.returncode == ExitCode.USAGE
    assert "line 2: unknown keys colour" in done.stderr
    assert smtp_server.messages == []
    lines.write_text(json.dumps(good) + "\n\n" + json.dumps({**good, "to": ["bad"]}) + "\n")
    done = cli("bulk", str(lines), *plain(smtp_server))
    assert done.returncode == ExitCode.USAGE  # InvalidAddress: bad input for that message
    assert "line 3: usage: InvalidAddress" in done.stderr
    assert len(smtp_server.messages) == 1


def test_serve_prints_and_saves_until_interrupted(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "mailtransfer", "serve", "--port", "0",
               "--save", str(tmp_path / "saved")]  # fmt: skip
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        try:
            assert proc.stdout is not None
            first = proc.stdout.readline()
            assert first.startswith("listening on 127.0.0.1:"), first
            port = int(first.rsplit(":", 1)[1])
            assert "?tls=none" in proc.stdout.readline()
            with Mailer(host="127.0.0.1", port=port, tls=NoTLS(), retry=RetryPolicy.none()) as m:
                m.send(sender="a@example.test", to=["b@example.test"], subject="Hi", text="x")
            assert proc.stdout.readline().startswith(
                "#1 from <a@example.test> to b@example.test: Hi"
            )
            assert "saved" in proc.stdout.readline()
        finally:
            proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "stopped after 1 message(s)" in out
    (saved,) = (tmp_path / "saved").iterdir()
    assert b"Subject: Hi" in saved.read_bytes()


def test_demo_still_works() -> None:
    done = cli("demo")
    assert done.returncode == 0, done.stderr
    assert "verifies the DKIM signature of the received bytes: True" in done.stdout
