"""Trust a private certificate authority, and present a client certificate (mutual TLS).

Run it: ``python examples/custom_ca.py``. It needs ``trustme`` and ``aiosmtpd``
(``pip install 'mailtransfer[test]'``). A throw-away CA stands in for your company CA; an
in-process SMTP server (from ``mailtransfer.testing``) stands in for the internal relay.

What it shows:

1. The default context trusts only the system's CAs, so a certificate from a private CA is
   refused with ``CertificateVerifyFailed``, before any mail command is sent.
2. ``create_ssl_context(cafile=...)`` trusts that CA (and still checks the host name and
   requires TLS 1.2 or newer). Do this rather than turning verification off.
3. A relay that demands a client certificate gets one with
   ``create_ssl_context(cafile=..., certfile=..., keyfile=...)``.
"""

from __future__ import annotations

import logging
import ssl
import tempfile
from pathlib import Path

import trustme

from mailtransfer import StartTLS, SyncConnection, create_ssl_context
from mailtransfer.errors import CertificateVerifyFailed
from mailtransfer.testing import RecordingServer, tls_certificates

MESSAGE = b"From: app@example.test\r\nTo: ops@example.test\r\nSubject: hi\r\n\r\nHello\r\n"

# The demo server logs the handshake it is meant to lose; keep the output readable.
logging.getLogger("mail.log").setLevel(logging.CRITICAL)


def send(port: int, context: ssl.SSLContext | None) -> None:
    """Send one message to localhost over STARTTLS with ``context`` (None: the default)."""
    policy = StartTLS(context=context) if context is not None else StartTLS()
    with SyncConnection("localhost", port, tls=policy) as conn:
        conn.send(MESSAGE, sender="app@example.test", recipients=["ops@example.test"])


def main() -> int:
    """Run the three steps; return 0 when each behaved as described."""
    company = tls_certificates("localhost")  # your company CA and the relay's certificate
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ca_file = company.write_ca(folder / "company-ca.pem")  # e.g. /etc/ssl/company-ca.pem

        with RecordingServer(tls_context=company.server_context) as relay:
            # 1. The system trust store does not know the company CA.
            try:
                send(relay.port, None)
            except CertificateVerifyFailed as error:
                print(f"1. default trust store: refused, as it should be:\n   {error}")
            else:
                raise AssertionError("the default context accepted an unknown CA")

            # 2. Trust the company CA explicitly.
            send(relay.port, create_ssl_context(cafile=ca_file))
            print(f"2. cafile=company-ca.pem: sent over TLS = {relay.wait_for(1)[0].tls}")

        # 3. A relay that only accepts clients with a certificate from a client CA.
        client_ca = trustme.CA()
        issued = client_ca.issue_cert("app.example.test")
        cert_file, key_file = folder / "app.crt", folder / "app.key"
        issued.cert_chain_pems[0].write_to_path(cert_file)
        issued.private_key_pem.write_to_path(key_file)
        strict = company.server_context_for("localhost")
        strict.verify_mode = ssl.CERT_REQUIRED
        client_ca.configure_trust(strict)
        with RecordingServer(tls_context=strict) as relay:
            context = create_ssl_context(cafile=ca_file, certfile=cert_file, keyfile=key_file)
            send(relay.port, context)
            print(f"3. client certificate presented: accepted = {bool(relay.wait_for(1))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
