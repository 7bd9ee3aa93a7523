"""What is retried, what is not, and what to do when delivery is unknown.

Run it: ``PYTHONPATH=src python examples/retries_and_unknown_delivery.py``. Scripted
in-process servers from ``mailtransfer.testing`` play the failing mail servers; nothing
leaves the machine, and only the standard library is needed besides mailtransfer.

What it shows:

1. A transient ``451`` to the end of the data: the server did not take the message, so the
   mailer waits (backoff) and sends it again; the second attempt succeeds.
2. The connection lost before the message was complete (here: at ``DATA``): nothing can have
   been accepted, so the mailer retries on a fresh connection, and succeeds.
3. The connection lost *after* the final ``.`` and before the server's reply: the server
   has the whole message and may have queued it. Retrying could deliver it twice, so the
   mailer never does: it raises ``DeliveryUnknown`` with the Message-ID, after one attempt.
4. What the application may then do: if a duplicate is better than a loss, resend on
   purpose with the *same* Message-ID, so receivers can recognise the copy.

It exits 0 when each case behaved as described, and 1 otherwise.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from mailtransfer import Mailer, NoTLS, RetryPolicy
from mailtransfer.errors import DeliveryUnknown, Stage
from mailtransfer.testing import (
    EsmtpScript,
    ScriptedPeer,
    ScriptedServer,
    basic_ok_server,
    disconnect_after,
)

# Short waits so the example runs in a second; the defaults are 0.5 s doubling, 3 attempts.
POLICY = RetryPolicy(attempts=3, initial_backoff=0.1, max_backoff=1.0, jitter=0.05)
MESSAGE: dict[str, Any] = {
    "sender": "billing@example.test",
    "to": ["customer@example.test"],
    "subject": "Invoice 2024-117",
    "text": "Your invoice is attached.",
}

failures: list[str] = []


def check(condition: bool, what: str) -> None:
    """Record ``what`` as a failure unless ``condition`` holds."""
    if not condition:
        failures.append(what)


def mailer_for(server: ScriptedServer) -> Mailer:
    """A mailer for a loopback test server (plaintext, chosen explicitly)."""
    return Mailer(host=server.host, port=server.port, tls=NoTLS(), retry=POLICY)


def transient_451() -> None:
    """Case 1: 451 to the end of the data once, then success."""
    answered = 0

    async def intercept(peer: ScriptedPeer, line: bytes) -> bool:
        nonlocal answered
        if line == b".\r\n" and answered == 0:  # the end of the data, first time only
            answered += 1
            await peer.send(b"451 4.3.0 Temporary local problem, try again later\r\n")
            return True
        return False

    script = EsmtpScript(intercept=intercept)
    with ScriptedServer(script) as server, mailer_for(server) as mailer:
        result = mailer.send(**MESSAGE)
    print(f"1. 451, then 250: {result!r}, reply {result.reply}")
    # A refusal leaves the session healthy, so the retry may reuse the same connection.
    print(f"   connections: {server.connections}, messages stored: {len(script.messages)}")
    check(len(script.messages) == 1, f"case 1 stored {len(script.messages)} messages")


def lost_before_the_data() -> None:
    """Case 2: the first connection is dropped at DATA; the retry uses a new one."""

    async def intercept(peer: ScriptedPeer, line: bytes) -> bool:
        if peer.index == 0 and line.upper().startswith(b"DATA"):
            peer.close()  # MAIL and RCPT were answered; DATA never is
            return True
        return False

    script = EsmtpScript(intercept=intercept)
    with ScriptedServer(script) as server, mailer_for(server) as mailer:
        result = mailer.send(**MESSAGE)
    print(f"2. dropped at DATA, then sent: accepted {sorted(result.accepted)}")
    print(f"   connections: {server.connections}, messages stored: {len(script.messages)}")
    check(server.connections == 2, f"case 2 used {server.connections} connections, not 2")
    check(len(script.messages) == 1, f"case 2 stored {len(script.messages)} messages")


def lost_after_the_dot() -> str | None:
    """Case 3: the connection drops after the final dot: DeliveryUnknown, no retry.

    Returns:
        The Message-ID of the message whose fate is unknown.
    """
    with ScriptedServer(disconnect_after(".")) as server, mailer_for(server) as mailer:
        try:
            mailer.send(**MESSAGE)
        except DeliveryUnknown as exc:
            print(f"3. DeliveryUnknown: {exc}")
            print(f"   message_id={exc.message_id} stage={exc.stage} transient={exc.transient}")
            print(f"   last lines of the transcript: {list(exc.transcript[-3:])}")
            whole = b"\r\n.\r\n" in server.peers[0].received
            print(f"   attempts: {server.connections}; the server got the final dot: {whole}")
            check(server.connections == 1, "DeliveryUnknown was retried")
            check(exc.stage is Stage.END_OF_DATA, f"stage was {exc.stage}")
            check(whole, "the server did not receive the whole message")
            return exc.message_id
    failures.append("case 3 did not raise DeliveryUnknown")
    return None


def resend_on_purpose(message_id: str) -> None:
    """Case 4: the application chooses to resend, keeping the Message-ID."""
    script = basic_ok_server()
    with ScriptedServer(script) as server, mailer_for(server) as mailer:
        result = mailer.send(**MESSAGE, message_id=message_id)
    sent_id = script.messages[0].parsed()["Message-ID"] if script.messages else None
    print(f"4. resent with the same Message-ID: {result.message_id}")
    check(sent_id == message_id, f"the resent message had Message-ID {sent_id}")


def main() -> int:
    """Run the four cases, showing the mailer's retry log lines."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("   log %(name)s: %(message)s"))
    retry_log = logging.getLogger("mailtransfer.retry")  # INFO: one line per retry
    retry_log.addHandler(handler)
    retry_log.setLevel(logging.INFO)
    transient_451()
    lost_before_the_data()
    message_id = lost_after_the_dot()
    if message_id is not None:
        resend_on_purpose(message_id)
    for failure in failures:
        print(f"FAILED: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
