"""Send mail from asyncio with ``AsyncMailer``: one message, many tasks, and ``send_iter``.

Run it: ``PYTHONPATH=src python examples/async_send.py`` (needs the ``testing`` extra:
``pip install 'mailtransfer[testing]'``). An in-process SMTP server from
``mailtransfer.testing`` stands in for your mail server; nothing leaves the machine.

What it shows:

1. ``await mailer.verify()``: connect and report what the server offers, sending no mail.
2. ``await mailer.send(...)``: the same arguments and results as the sync ``Mailer``.
3. Many tasks sharing one mailer with ``asyncio.gather``: the pool hands each task its own
   connection, never more than ``PoolLimits.max_connections`` at once.
4. ``send_iter()`` yields ``(index, result or error)`` as each message finishes. Closing it
   early (``contextlib.aclosing`` plus ``break``) cancels the rest and leaves no connection
   in use; a message that was in flight at that moment may still have been delivered, and
   its outcome is not reported.

It exits 0 when the server received what the script expected, and 1 otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib

from mailtransfer import AsyncMailer, NoTLS, PoolLimits, RetryPolicy, SendResult
from mailtransfer.errors import RecipientsRefused
from mailtransfer.testing import RecordingServer

failures: list[str] = []


def check(condition: bool, what: str) -> None:
    """Record ``what`` as a failure unless ``condition`` holds."""
    if not condition:
        failures.append(what)


async def run(server: RecordingServer) -> None:
    """The four steps, against ``server``."""
    limits = PoolLimits(max_connections=3)
    async with AsyncMailer(
        host=server.host, port=server.port, tls=NoTLS(), limits=limits, retry=RetryPolicy.none()
    ) as mailer:
        # 1. What does the server offer?
        info = await mailer.verify()
        print(f"1. verify: {info.host} offers {sorted(info.extensions.keywords)}")
        print(f"   TLS {info.tls_version or 'none'}, logged in: {info.authenticated}")

        # 2. One message.
        result = await mailer.send(
            sender="alice@example.test",
            to=["bob@example.test"],
            subject="Hello from asyncio",
            text="Sent with AsyncMailer.",
        )
        print(f"2. send: {result!r} Message-ID {result.message_id}")

        # 3. Twenty tasks at once share three connections.
        results = await asyncio.gather(
            *(
                mailer.send(sender="alice@example.test", to=[f"user{n}@example.test"], text="hi")
                for n in range(20)
            )
        )
        (pool,) = mailer.pools.values()
        print(f"3. gather: {len(results)} sent, at most {pool.stats.max_seen} connections")
        check(pool.stats.max_seen <= 3, f"{pool.stats.max_seen} connections were open at once")

        # 4. send_iter: handle each outcome as it arrives; stop after the first refusal.
        batch = [
            {"sender": "alice@example.test", "to": [address], "text": "newsletter"}
            for address in [*(f"r{n}@example.test" for n in range(5)), "nobody@example.test"]
            + ["late@example.test"] * 50
        ]
        seen = 0
        async with contextlib.aclosing(mailer.send_iter(batch, concurrency=2)) as outcomes:
            async for index, outcome in outcomes:
                seen += 1
                if isinstance(outcome, RecipientsRefused):
                    print(f"4. send_iter: item {index} refused ({outcome}); stopping early")
                    break
                check(isinstance(outcome, SendResult), f"item {index} failed: {outcome!r}")
        print(f"   handled {seen} of {len(batch)} outcomes; the pool afterwards: {pool!r}")
        check(pool.stats.in_use == 0, "a connection was left in use after stopping early")
        check(seen < len(batch), "send_iter did not stop early")


def main() -> int:
    """Start the server, run the asyncio part, and check what arrived."""
    with RecordingServer(hostname="mx.example.test") as server:
        server.faults.refuse_recipient("nobody@example.test")
        asyncio.run(run(server))
        received = server.messages
    # 1 + 20 messages, then those of the batch that finished or were in flight at the stop:
    # with two workers, at least four of the five before the refusal, and never all 56.
    print(f"\nThe server received {len(received)} messages")
    check(
        25 <= len(received) <= 30,
        f"expected 25 to 30 messages, the server got {len(received)}",
    )
    check(received[0].rcpt_tos == ("bob@example.test",), "the first message went astray")
    for failure in failures:
        print(f"FAILED: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
