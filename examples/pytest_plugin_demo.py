"""The pytest plugin as a user meets it: a test file using ``smtp_server`` and ``mail_outbox``.

Run it: ``python examples/pytest_plugin_demo.py`` (needs pytest and the ``testing`` extra,
all in ``pip install -e '.[test]'``). It writes a small application and its tests to a
temporary directory and runs pytest there. The fixtures come from mailtransfer's plugin,
which pytest loads by itself (the ``pytest11`` entry point): there is no conftest.py.

What the generated tests show:

1. ``smtp_server``: a real SMTP server on loopback; the test reads what arrived.
2. ``smtp_server.faults``: a refused recipient, a 421, and a hang-up after the data
   (``DeliveryUnknown``: the message may or may not have been delivered).
3. ``@pytest.mark.smtp_server(starttls=True, auth=...)`` with ``smtp_certificates``.
4. ``mail_outbox``: ``mailtransfer.send()`` records into a list instead of sending, after
   the same checks a real send makes (a header injection still fails).

It exits with pytest's code: 0 when all the generated tests pass.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

APP = '''
import mailtransfer
from mailtransfer import Mailer, RetryPolicy


def send_welcome(url, to, **options):
    with Mailer(url, retry=RetryPolicy.none(), **options) as mailer:
        return mailer.send(sender="app@example.test", to=to, subject="Welcome", text="Hi!")


def notify_admins(event):
    """Uses the default mailer (MAILTRANSFER_URL in production)."""
    mailtransfer.send(sender="app@example.test", to=["ops@example.test"], subject=event, text="")
'''

TESTS = """
import pytest

import mailtransfer
from app import notify_admins, send_welcome
from mailtransfer import StartTLS
from mailtransfer.errors import DeliveryUnknown, HeaderInjection, ServiceUnavailable


def test_welcome_arrives(smtp_server):
    send_welcome(smtp_server.url, ["bob@example.test"])
    (message,) = smtp_server.messages
    assert message.rcpt_tos == ("bob@example.test",)
    assert message.parsed()["Subject"] == "Welcome"


def test_refused_recipient_is_reported(smtp_server):
    smtp_server.faults.refuse_recipient("nobody@example.test", 550, "5.1.1 No such user")
    result = send_welcome(smtp_server.url, ["bob@example.test", "nobody@example.test"])
    assert list(result.refused) == ["nobody@example.test"]


def test_server_shutting_down(smtp_server):
    smtp_server.faults.disconnect("MAIL", 421, "4.3.2 Shutting down")
    with pytest.raises(ServiceUnavailable):
        send_welcome(smtp_server.url, ["bob@example.test"])


def test_connection_lost_after_the_data(smtp_server):
    smtp_server.faults.disconnect(".")
    with pytest.raises(DeliveryUnknown):
        send_welcome(smtp_server.url, ["bob@example.test"])
    assert smtp_server.messages == []


@pytest.mark.smtp_server(starttls=True, auth={"alice": "s3cret"}, require_auth=True)
def test_tls_and_login(smtp_server, smtp_certificates):
    tls = StartTLS(context=smtp_certificates.client_context)
    send_welcome(smtp_server.url, ["bob@example.test"], tls=tls, username="alice",
                 password="s3cret")
    assert smtp_server.messages[0].tls
    assert smtp_server.messages[0].auth_user == "alice"


def test_admins_notified(mail_outbox):
    notify_admins("disk full")
    assert [m.subject for m in mail_outbox.outbox] == ["disk full"]


def test_outbox_checks_like_a_real_send(mail_outbox):
    with pytest.raises(HeaderInjection):
        notify_admins("disk full\\r\\nBcc: eve@example.test")
    assert mail_outbox.outbox == []
"""


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "app.py").write_text(textwrap.dedent(APP))
        (root / "test_app.py").write_text(textwrap.dedent(TESTS))
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(root)]
        print("$", " ".join(command[1:]))
        done = subprocess.run(command, cwd=root, check=False, timeout=120)
        return done.returncode


if __name__ == "__main__":
    sys.exit(main())
