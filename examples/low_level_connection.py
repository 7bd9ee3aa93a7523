"""One SMTP session by hand: ``SyncConnection`` and ``AsyncConnection``, without a pool.

Run it: ``PYTHONPATH=src python examples/low_level_connection.py`` (needs the ``testing``
extra: ``pip install 'mailtransfer[testing]'``). In-process servers from
``mailtransfer.testing`` play the mail servers; nothing leaves the machine.

What it shows:

1. Open a session, see what the server offers, send finished bytes with an explicit
   envelope, NOOP, and read the redacted transcript.
2. A refused command (here ``MAIL FROM``) raises a typed error, and the session stays usable
   for the next message; a partial refusal is a result, not an error.
3. Timeouts are deadlines for a whole phase: a server that trickles its greeting one byte
   every 100 ms still times out at the 0.5 s greeting deadline.
4. The TLS policy argument: ``StartTLS()`` against a server that does not offer STARTTLS
   fails with ``TLSRequired`` before any mail command is sent.
5. The asyncio twin, ``AsyncConnection``, with the same arguments.

It exits 0 when each step behaved as described, and 1 otherwise.
"""

from __future__ import annotations

import asyncio
import time

from mailtransfer import AsyncConnection, NoTLS, StartTLS, SyncConnection, Timeouts
from mailtransfer.errors import GreetingTimeout, PolicyRejected, ReplyError, TLSRequired
from mailtransfer.testing import RecordingServer, ScriptedServer, trickle

MESSAGE = b"From: app@example.test\r\nTo: ops@example.test\r\nSubject: Disk 91%\r\n\r\nAlert.\r\n"
failures: list[str] = []


def check(condition: bool, what: str) -> None:
    """Record ``what`` as a failure unless ``condition`` holds."""
    if not condition:
        failures.append(what)


def one_session(server: RecordingServer) -> None:
    """Steps 1 and 2: a session, a message, a refusal, and the transcript."""
    # NoTLS(): the loopback test server speaks plaintext; never use it across a network.
    with SyncConnection(
        server.host, server.port, tls=NoTLS(), local_hostname="client.example.test"
    ) as conn:
        ext = conn.extensions
        print(f"1. {conn!r}")
        print(f"   server {ext.domain}: SIZE {ext.size}, 8BITMIME {ext.eightbitmime},")
        print(f"   SMTPUTF8 {ext.smtputf8}, PIPELINING {ext.pipelining}, AUTH {sorted(ext.auth)}")
        result = conn.send(MESSAGE, sender="app@example.test", recipients=["ops@example.test"])
        print(f"   send: {result!r}, reply {result.reply}")
        print(f"   noop: {conn.noop()}")
        print("   transcript (one entry per command or reply):")
        for entry in conn.transcript():
            for line in entry.splitlines():
                print(f"     {line}")

        try:
            conn.send(MESSAGE, sender="spammer@example.test", recipients=["ops@example.test"])
        except ReplyError as exc:
            print(
                f"2. {type(exc).__name__}: {exc} (stage {exc.stage.value if exc.stage else None})"
            )
            print(f"   code {exc.code}, enhanced {exc.enhanced}, transient {exc.transient}")
            check(isinstance(exc, PolicyRejected), f"expected PolicyRejected, got {exc!r}")
        else:
            failures.append("the refused sender was accepted")
        print(f"   still usable: {conn.is_usable}")
        check(conn.is_usable, "the session did not survive a refused MAIL FROM")
        result = conn.send(
            MESSAGE,
            sender="app@example.test",
            recipients=["ops@example.test", "nobody@example.test"],
        )
        print(f"   partial: accepted {sorted(result.accepted)}, refused {sorted(result.refused)}")
        check(result.partial, "the second recipient should have been refused")
        check(conn.messages_sent == 2, f"{conn.messages_sent} messages sent on the session")
    # Leaving the with block sent QUIT.
    check(server.commands[-1] == "QUIT", f"the last command was {server.commands[-1]!r}")


def deadlines() -> None:
    """Step 3: a greeting trickled byte by byte still ends at the deadline."""
    with ScriptedServer(trickle(interval=0.1)) as server:
        conn = SyncConnection(
            server.host, server.port, tls=NoTLS(), timeouts=Timeouts(greeting=0.5)
        )
        started = time.perf_counter()
        try:
            conn.open()
        except GreetingTimeout as exc:
            elapsed = time.perf_counter() - started
            print(f"3. GreetingTimeout after {elapsed:.2f} s: {exc}")
            check(elapsed < 1.0, f"the 0.5 s deadline ended after {elapsed:.2f} s")
        else:
            failures.append("a trickled greeting did not time out")


def tls_policy(server: RecordingServer) -> None:
    """Step 4: STARTTLS required, but not offered."""
    before = len(server.commands)
    try:
        with SyncConnection(server.host, server.port, tls=StartTLS()):
            failures.append("StartTLS() went on without TLS")
    except TLSRequired as exc:
        print(f"4. TLSRequired: {exc}")
    sent = server.commands[before:]
    print(f"   commands the server saw: {sent}")
    check(len(sent) == 1 and sent[0].startswith("EHLO"), f"the server saw {sent}")
    # Without tls=, the policy follows the port and the credentials:
    default = SyncConnection("smtp.example.org", 587).tls
    print(
        f"   default policy for port 587: {default!r}; for port 25: "
        f"{SyncConnection('mx.example.org', 25).tls!r}"
    )


async def asyncio_twin(server: RecordingServer) -> None:
    """Step 5: the same session with asyncio."""
    async with AsyncConnection(server.host, server.port, tls=NoTLS()) as conn:
        result = await conn.send(
            MESSAGE, sender="app@example.test", recipients=["ops@example.test"]
        )
        print(f"5. {conn!r}: {result!r}")


def main() -> int:
    """Run the five steps."""
    with RecordingServer(hostname="mx.example.test") as server:
        server.faults.refuse_sender("spammer@example.test", 550, "5.7.1 Sender blocked")
        server.faults.refuse_recipient("nobody@example.test")
        one_session(server)
        deadlines()
        tls_policy(server)
        asyncio.run(asyncio_twin(server))
        received = server.wait_for(3)
    check(len(received) == 3, f"the server received {len(received)} messages, not 3")
    check(received[0].data == MESSAGE, "the bytes received differ from the bytes sent")
    for failure in failures:
        print(f"FAILED: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
