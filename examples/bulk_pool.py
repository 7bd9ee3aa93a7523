"""Send many messages over a connection pool: ``send_many``, progress, limits, failover.

Run it: ``PYTHONPATH=src python examples/bulk_pool.py`` (needs the ``testing`` extra:
``pip install 'mailtransfer[testing]'``). In-process servers from ``mailtransfer.testing``
stand in for your relays; nothing leaves the machine.

What it shows:

1. ``send_many()`` sends 300 messages over at most 4 connections (``PoolLimits``), reusing
   each connection for up to 50 messages, and reports progress. Results come back in input
   order; the two messages whose only recipient is refused come back as
   ``RecipientsRefused`` *in their place*, without stopping the others. Each connection
   pipelines its messages: a message's envelope goes out with the end of the one before.
2. ``rate_limit=20`` paces a relay to 20 messages per second, however many threads send.
3. Two relay URLs: the first turns connections away (``421`` at the greeting), so each
   message fails over to the second, and the failed relay sits out a cool-down instead of
   being dialled for every message.

It exits 0 when every count matches what the script expected, and 1 otherwise.
"""

from __future__ import annotations

import time

from mailtransfer import Mailer, PoolLimits, RetryPolicy, SendResult
from mailtransfer.errors import MailTransferError, RecipientsRefused
from mailtransfer.testing import EsmtpScript, ScriptedPeer, ScriptedServer, greeting_then_close

failures: list[str] = []


def check(condition: bool, what: str) -> None:
    """Record ``what`` as a failure unless ``condition`` holds."""
    if not condition:
        failures.append(what)


def bulk(port: int) -> None:
    """Part 1: 300 messages, 4 connections, progress, errors in place."""
    subscribers = [f"reader{n}@example.test" for n in range(298)]
    subscribers[10:10] = ["bounce@example.test"]  # refused by the server below
    subscribers[200:200] = ["bounce@example.test"]
    messages = [
        {"sender": "news@example.test", "to": [address], "subject": "News", "text": "Issue 42"}
        for address in subscribers
    ]

    def progress(done: int, total: int) -> None:
        if done % 100 == 0 or done == total:
            print(f"   progress: {done}/{total}")

    limits = PoolLimits(max_connections=4, max_messages_per_connection=50)
    with Mailer(
        f"smtp://127.0.0.1:{port}?tls=none", limits=limits, retry=RetryPolicy.none()
    ) as mailer:
        started = time.perf_counter()
        results = mailer.send_many(messages, progress=progress)
        elapsed = time.perf_counter() - started
        (pool,) = mailer.pools.values()
        stats = pool.stats
    sent = [r for r in results if isinstance(r, SendResult)]
    refused = [i for i, r in enumerate(results) if isinstance(r, RecipientsRefused)]
    print(f"1. {len(sent)} sent, refused at {refused}, in {elapsed:.2f} s")
    print(f"   at most {stats.max_seen} connections at once; after close: {pool!r}")
    check(len(sent) == 298, f"expected 298 messages sent, got {len(sent)}")
    check(refused == [10, 200], f"expected refusals at [10, 200], got {refused}")
    check(stats.max_seen <= 4, f"the pool opened {stats.max_seen} connections at once")
    check(all(isinstance(r, (SendResult, MailTransferError)) for r in results), "lost a result")


def paced(port: int) -> None:
    """Part 2: at most 20 messages per second through one relay."""
    with Mailer(
        f"smtp://127.0.0.1:{port}?tls=none", rate_limit=20, retry=RetryPolicy.none()
    ) as mailer:
        started = time.perf_counter()
        mailer.send_many(
            {"sender": "a@example.test", "to": ["b@example.test"], "text": f"#{n}"}
            for n in range(11)
        )
        elapsed = time.perf_counter() - started
    # A token bucket with a burst of one: the first goes at once, the next ten 50 ms apart.
    print(f"2. 11 messages at rate_limit=20 took {elapsed:.2f} s (at least 0.50 s)")
    check(elapsed >= 0.45, f"rate_limit=20 let 11 messages through in {elapsed:.2f} s")


def failover(port: int) -> None:
    """Part 3: the first relay turns every connection away; each message goes to the second."""
    maintenance = greeting_then_close(b"421 4.3.2 relay1 closed for maintenance\r\n")
    with ScriptedServer(maintenance) as down:
        relays = [f"smtp://127.0.0.1:{down.port}?tls=none", f"smtp://127.0.0.1:{port}?tls=none"]
        with Mailer(relays, retry=RetryPolicy.none(), cooldown=30) as mailer:
            hosts = [
                mailer.send(sender="a@example.test", to=["b@example.test"], text="hi").host
                for _ in range(4)
            ]
    print(f"3. relay 1 said 421 at the greeting: 4 messages sent via {set(hosts)}")
    print(f"   relay 1 was dialled {down.connections} time(s), then cooled down for 30 s")
    check(hosts == [f"smtp://127.0.0.1:{port}"] * 4, f"messages went via {hosts}")
    check(down.connections == 1, f"the failed relay was dialled {down.connections} times")


def main() -> int:
    """Run the three parts against one fast in-process server with PIPELINING."""

    async def refuse_bounce(peer: ScriptedPeer, line: bytes) -> bool:
        # Every other command gets the script's normal, correct answer.
        if line.upper().startswith(b"RCPT TO:<BOUNCE@"):
            await peer.send(b"550 5.1.1 <bounce@example.test>: Recipient address rejected\r\n")
            return True
        return False

    script = EsmtpScript(intercept=refuse_bounce)
    with ScriptedServer(script) as server:
        bulk(server.port)
        paced(server.port)
        failover(server.port)
    check(len(script.messages) == 313, f"the server received {len(script.messages)} messages")
    print(
        f"\nThe server received {len(script.messages)} messages on {server.connections} connections"
    )
    for failure in failures:
        print(f"FAILED: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
