"""Mail error logs without blocking the program, with a flood turned into one digest.

Run: ``python examples/logging_handler.py`` (needs ``pip install 'mailtransfer[testing]'``)

The handler queues records and a background thread mails them through the pool; at most
``burst`` mails go out at once (then ``rate`` per second), the rest are counted and listed
in a digest, which ``close()`` (or ``logging.shutdown()`` at exit) sends.
"""

from __future__ import annotations

import logging
import sys

from mailtransfer.contrib.logging import SMTPHandler
from mailtransfer.testing import RecordingServer


def main() -> int:
    """Log one error and a flood; 0 when the mails and the digest arrived."""
    with RecordingServer() as server:
        handler = SMTPHandler(
            server.url,  # a loopback server without TLS; or (host, port), as in the stdlib
            "app@example.com",
            ["oncall@example.com"],
            "Errors in app",
            rate=1 / 60,  # one mail a minute on average...
            burst=3,  # ...after the first three
            level=logging.ERROR,
        )
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        log = logging.getLogger("app")
        log.addHandler(handler)

        try:
            1 / 0  # noqa: B018  (an error to log)
        except ZeroDivisionError:
            log.exception("the report failed")
        for n in range(50):
            log.error("disk full (%d)", n)  # returns at once: nothing waits for the network

        log.removeHandler(handler)
        handler.close()  # sends what is queued and the digest
        print(repr(handler))
        for message in server.messages:
            parsed = message.parsed()
            body = parsed.get_body(preferencelist=("plain",))
            first = str(body.get_content()).splitlines()[0] if body else ""
            print(f"{parsed['Subject']!s:40} | {first}")
        return 0 if len(server.messages) == 4 and handler.stats.suppressed == 48 else 1


if __name__ == "__main__":
    sys.exit(main())
