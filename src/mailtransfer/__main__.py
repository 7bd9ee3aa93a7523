"""``python -m mailtransfer``: a demo on an in-process server, and small send/verify commands."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from . import __version__
from ._sync.mailer import Mailer
from .errors import MailTransferError
from .retry import RetryPolicy
from .tls import NoTLS

__all__ = ["main"]


def _demo(args: argparse.Namespace) -> int:
    """Send a DKIM-signed message to an in-process SMTP server and verify what arrived."""
    try:
        from .testing import RecordingServer  # noqa: PLC0415  (needs the testing extra)
    except ImportError as exc:
        print(f"the demo needs the testing extra: {exc}", file=sys.stderr)
        return 2
    import dkim as dkimpy  # noqa: PLC0415

    from .dkim import DKIMSigner, generate_key  # noqa: PLC0415

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


def _send(args: argparse.Namespace) -> int:
    with Mailer(args.url) as mailer:
        result = mailer.send(
            sender=args.sender, to=args.to, subject=args.subject, text=sys.stdin.read()
        )
    print(f"sent {result.message_id} queue id {result.queue_id} refused {dict(result.refused)}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    with Mailer(args.url) as mailer:
        info = mailer.verify()
    print(f"{info.host}: TLS {info.tls_version or 'none'}, logged in: {info.authenticated}")
    for keyword, params in sorted(info.extensions.keywords.items()):
        print(f"  {keyword} {params}".rstrip())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line: ``demo``, ``send URL`` or ``verify URL``."""
    parser = argparse.ArgumentParser(prog="mailtransfer", description=__doc__)
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="send a DKIM-signed message to an in-process server")
    send = commands.add_parser("send", help="send stdin as the text of a message")
    send.add_argument("url", help="smtp://user:pass@host:587, smtps://..., lmtp://...")
    send.add_argument("--from", dest="sender", required=True)
    send.add_argument("--to", action="append", required=True)
    send.add_argument("--subject", default="")
    verify = commands.add_parser("verify", help="connect, TLS, log in; show what the server offers")
    verify.add_argument("url")
    args = parser.parse_args(argv)
    handler = {"demo": _demo, "send": _send, "verify": _verify}[args.command]
    try:
        return handler(args)
    except MailTransferError as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
