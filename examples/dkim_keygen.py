"""Make a DKIM key, show its DNS record, sign a message and verify it with dkimpy.

Run: ``python examples/dkim_keygen.py``

Nothing here touches the network: the "DNS" that dkimpy's verifier asks is a
function serving the record this script just generated.
"""

from __future__ import annotations

import sys

import dkim

from mailtransfer.dkim import DKIMSigner, generate_key, sign_chain, zone_entry

DOMAIN = "example.com"
SELECTOR = "mail2024"


def main() -> int:
    """Generate, publish (print), sign, verify; 0 when dkimpy accepts the signature."""
    # 1. A new 2048-bit RSA key. Keep the PEM secret (file mode 0600, a secret store).
    private_pem, dns_txt = generate_key("rsa", bits=2048)

    # 2. What to publish: a TXT record at <selector>._domainkey.<domain>.
    print(f"Publish this TXT record at {SELECTOR}._domainkey.{DOMAIN}:")
    print(f"  {dns_txt}\n")
    print("In a zone file (split into 255-byte strings):")
    print(f"  {zone_entry(SELECTOR, dns_txt, ttl=3600)}\n")

    # 3. Sign. The key is parsed once; verify=True checks each new signature
    #    with the public key before it is returned.
    signer = DKIMSigner(domain=DOMAIN, selector=SELECTOR, private_key=private_pem, verify=True)
    message = (
        b"From: Alice <alice@example.com>\r\n"
        b"To: Bob <bob@example.org>\r\n"
        b"Subject: Signed with mailtransfer\r\n"
        b"Date: Mon, 01 Jan 2024 09:00:00 +0000\r\n"
        b"Message-ID: <example-1@example.com>\r\n"
        b"\r\n"
        b"Hello Bob,\r\n"
        b".this line starts with a dot, and still verifies\r\n"
    )
    signed = sign_chain(message, None, [signer])
    print("The signed message starts with:")
    print(signed.split(b"\r\nFrom:", 1)[0].decode("ascii"), "\n")

    # 4. Verify as a receiver would, with dkimpy, serving our record as DNS.
    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        expected = f"{SELECTOR}._domainkey.{DOMAIN}.".encode()
        return dns_txt.encode() if name == expected else b""

    ok = dkim.verify(signed, dnsfunc=dnsfunc)
    tampered = signed.replace(b"Hello Bob", b"Hello Eve")
    print(f"dkimpy verifies the signed message: {ok}")
    print(f"dkimpy verifies a tampered copy:    {dkim.verify(tampered, dnsfunc=dnsfunc)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
