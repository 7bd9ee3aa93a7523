"""Generate a DKIM key, send a signed message through a local server, verify what arrived.

Run: ``python examples/dkim_send_and_verify.py``

The message goes through a real SMTP server on loopback (``mailtransfer.testing``'s
``RecordingServer``); the bytes it received are checked with dkimpy's verifier, as a
receiving MTA would. The key's DNS record is served by a function here instead of a real
DNS zone; the test suite does the same with a real DNS server (dnsmasq).
"""

from __future__ import annotations

import sys

import dkim

from mailtransfer import Mailer, NoTLS
from mailtransfer.dkim import DKIMSigner, generate_key
from mailtransfer.testing import RecordingServer

DOMAIN = "example.com"
SELECTORS = {"rsa": "mail2026", "ed25519": "mail2026e"}


def main() -> int:
    """Sign with RSA and Ed25519, send, verify both signatures; 0 when both verify."""
    # 1. Two key pairs: RSA for every receiver, Ed25519 next to it (RFC 8463).
    keys = {kind: generate_key(kind) for kind in ("rsa", "ed25519")}
    records = {
        f"{SELECTORS[kind]}._domainkey.{DOMAIN}.".encode(): txt.encode()
        for kind, (_, txt) in keys.items()
    }

    # 2. One signer per key; the Mailer signs the exact bytes it sends.
    signers = [
        DKIMSigner(domain=DOMAIN, selector=SELECTORS[kind], private_key=pem)
        for kind, (pem, _) in keys.items()
    ]

    with RecordingServer() as server:
        # NoTLS: a loopback test server; real relays get STARTTLS by default.
        with Mailer(host=server.host, port=server.port, tls=NoTLS(), signers=signers) as mailer:
            result = mailer.send(
                sender=f"news@{DOMAIN}",
                to=["reader@example.net"],
                subject="Signed twice",
                text="Hello!\n.\nA line with only a dot survives signing and transport.\n",
            )
        received = server.messages[0].data
    print(f"sent {result.message_id}; the server received {len(received)} bytes")

    # 3. Verify what the server received, as the recipient's MTA would.
    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        return records.get(name, b"")

    checker = dkim.DKIM(received)
    verdicts = [bool(checker.verify(idx=i, dnsfunc=dnsfunc)) for i in range(len(signers))]
    for kind, verdict in zip(SELECTORS, verdicts, strict=True):
        print(f"{kind:8} signature verifies: {verdict}")

    # 4. A header added downstream (a second Subject) breaks the signature: oversigning.
    forged = received.replace(b"\r\n\r\n", b"\r\nSubject: Forged\r\n\r\n", 1)
    tampered = bool(dkim.DKIM(forged).verify(idx=0, dnsfunc=dnsfunc))
    print(f"after adding a second Subject, it verifies: {tampered}")
    return 0 if all(verdicts) and not tampered else 1


if __name__ == "__main__":
    sys.exit(main())
