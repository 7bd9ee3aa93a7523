"""``mailtransfer demo``: the README's first run, a real send to an in-process server."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from .._sync.mailer import Mailer
from .._version import __version__
from ..retry import RetryPolicy
from ..tls import NoTLS

__all__ = ["add_parser", "run"]


def add_parser(commands: Any) -> None:
    """Register ``demo`` on the command parser."""
    commands.add_parser("demo", help="send a DKIM-signed message to an in-process server")


def run(args: argparse.Namespace) -> int:
    """Send a DKIM-signed message to an in-process SMTP server and verify what arrived."""
    try:
        from ..testing import RecordingServer  # noqa: PLC0415  (needs the testing extra)
    except ImportError as exc:
        print(f"the demo needs the testing extra: {exc}", file=sys.stderr)
        return 2
    import dkim as dkimpy  # noqa: PLC0415

    from ..dkim import DKIMSigner, generate_key  # noqa: PLC0415

    domain, selector = "demo.example", "demo2026"
    private_pem, txt_record = generate_key("rsa", bits=2048)
    signer = DKIMSigner(domain=domain, selector=selector, private_key=private_pem)
    print(f"mailtransfer {__version__} demo\n")
    print(f"1. DKIM key generated; the DNS record to publish at {selector}._domainkey.{domain}:")
    print(f"   TXT {txt_record[:60]}...\n")
    with RecordingServer(hostname="mx.demo.example") as server:
        print(f"2. SMTP server listening on {server.host}:{server.port} (aiosmtpd, in-process)\n")
        with Mailer(
            host=server.host,
            port=server.port,
            tls=NoTLS(),  # a loopback test server: no TLS needed, chosen explicitly
            signers=[signer],
            retry=RetryPolicy.none(),
            local_hostname="client.demo.example",
        ) as mailer:
            started = time.perf_counter()
            result = mailer.send(
                sender=f"Ada Lovelace <ada@{domain}>",
                to=["charles@babbage.example"],
                bcc=["archive@demo.example"],
                subject="Notes on the Analytical Engine ✓",
                text="The engine weaves algebraic patterns\njust as the Jacquard loom weaves"
                " flowers and leaves.\n.\nA line with a single dot above, sent safely.\n",
                html="<p>The engine weaves <b>algebraic patterns</b>.</p>",
            )
            elapsed = (time.perf_counter() - started) * 1000
        print(f"3. Sent in {elapsed:.1f} ms: {result!r}")
        print(f"   Message-ID {result.message_id}; accepted {sorted(result.accepted)}\n")
        server.wait_for(1, timeout=5.0)
        received = server.messages[0]
        print(f"4. The server received {len(received.data)} bytes for {list(received.rcpt_tos)}")
        head = received.data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
        for line in head.splitlines()[:12]:
            print(f"   {line[:96]}")
        print(f"   Bcc header sent: {'Bcc:' in head} (the Bcc recipient is only in the envelope)\n")

        def dns(name: bytes, timeout: int = 5) -> bytes:
            wanted = f"{selector}._domainkey.{domain}.".encode()
            return txt_record.encode() if name == wanted else b""

        verified = dkimpy.verify(received.data, dnsfunc=dns)
        print(f"5. dkimpy verifies the DKIM signature of the received bytes: {verified}")
    return 0 if verified and not result.refused else 1
