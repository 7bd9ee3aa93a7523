"""Send mail from Django through mailtransfer's pooled backend, to a server on loopback.

Run: ``python examples/django_backend.py`` (needs ``pip install 'mailtransfer[django,testing]'``)

Django is configured in code here (``settings.configure``); in a project the same names go
in ``settings.py``. Three ``send_mail()`` calls make three backend objects, yet share one
SMTP session; a refused recipient stays visible on the message.
"""

from __future__ import annotations

import sys

import django
from django.conf import settings
from django.core import mail

from mailtransfer.contrib.django import close_shared_mailers
from mailtransfer.testing import RecordingServer


def main() -> int:
    """Send through the backend; 0 when the server got every message over one session."""
    with RecordingServer() as server:
        settings.configure(
            EMAIL_BACKEND="mailtransfer.contrib.django.EmailBackend",
            DEFAULT_FROM_EMAIL="Shop <shop@example.com>",
            # A loopback test server without TLS; real relays: EMAIL_USE_TLS = True.
            MAILTRANSFER_URL=f"smtp://{server.host}:{server.port}?tls=none&pool_size=4",
        )
        django.setup()
        server.faults.refuse_recipient("gone@example.net", 550, "5.1.1 No such user")

        for n in range(3):
            sent = mail.send_mail(f"Order {n}", "Thanks for your order.", None, ["ann@example.net"])
            print(f"send_mail #{n}: {sent} sent")

        message = mail.EmailMultiAlternatives(
            "Newsletter", "Plain text", None, ["ann@example.net", "gone@example.net"]
        )
        message.attach_alternative("<h1>HTML</h1>", "text/html")
        message.attach("prices.csv", "item,price\nwidget,3\n", "text/csv")
        print(f"newsletter: {message.send()} sent")
        result = message.mailtransfer_result
        for address, error in result.refused.items():
            print(f"  refused {address}: {error.reply.code} {error.reply.text}")

        close_shared_mailers()  # also runs at exit; QUITs the pooled session
        sessions = sum(1 for c in server.commands if c.startswith("EHLO"))
        print(f"the server received {len(server.messages)} messages over {sessions} session(s)")
        return 0 if len(server.messages) == 4 and sessions == 1 and result.refused else 1


if __name__ == "__main__":
    sys.exit(main())
