"""Test zones for the deliverability checks, as dnsmasq configuration lines."""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from mailtransfer.dkim import generate_key, txt_strings

BLOCKLIST = "bl.test"


def txt(name: str, record: str) -> str:
    """A dnsmasq TXT line; long records are split into 255-byte strings."""
    strings = ",".join(f'"{piece}"' for piece in txt_strings(record))
    return f"txt-record={name},{strings}"


def weak_rsa_record(bits: int) -> str:
    """A DKIM record holding an RSA key too short for generate_key (which refuses them)."""
    public = rsa.generate_private_key(public_exponent=65537, key_size=bits).public_key()
    der = public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"


def zone_lines() -> list[str]:
    """Every test zone: good.test (all right), its subdomain, and the broken ones."""
    rsa2048 = generate_key("rsa", bits=2048)[1]
    rsa1024 = weak_rsa_record(1024)
    ed25519 = generate_key("ed25519")[1]
    lines = [
        "local=/in-addr.arpa/",  # reverse names we do not list: NXDOMAIN, not REFUSED
        # good.test: everything as it should be
        "mx-host=good.test,mx1.good.test,10",
        "host-record=mx1.good.test,127.0.0.1",
        txt("good.test", "v=spf1 ip4:192.0.2.0/28 include:_spf.good.test -all"),
        txt("good.test", "google-site-verification=not-spf"),
        txt("_spf.good.test", "v=spf1 a:mx1.good.test ~all"),
        txt("s2048._domainkey.good.test", rsa2048),
        txt("s1024._domainkey.good.test", rsa1024),
        txt("ed._domainkey.good.test", ed25519),
        txt("old._domainkey.good.test", "v=DKIM1; k=rsa; p="),
        txt("bad._domainkey.good.test", "v=DKIM1; k=rsa; p=bm90IGEga2V5"),
        txt("_dmarc.good.test", "v=DMARC1; p=reject; sp=quarantine; rua=mailto:d@good.test"),
        txt("_mta-sts.good.test", "v=STSv1; id=20240101T000000"),
        "host-record=mta-sts.good.test,127.0.0.1",
        txt("_smtp._tls.good.test", "v=TLSRPTv1; rua=mailto:tls@good.test"),
        txt("default._bimi.good.test", "v=BIMI1; l=https://good.test/logo.svg"),
        "host-record=mail.good.test,192.0.2.10",  # A and PTR: forward-confirmed
        "ptr-record=11.2.0.192.in-addr.arpa,liar.good.test",  # no A behind it
        f"host-record=11.2.0.192.{BLOCKLIST},127.0.0.2",  # 192.0.2.11 is listed
        # sub.good.test: no MX (implicit), DMARC inherited from good.test
        "host-record=sub.good.test,127.0.0.1",
        # broken.test: two SPF records, no MX, no address, no DMARC
        txt("broken.test", "v=spf1 -all"),
        txt("broken.test", "v=spf1 mx -all"),
        'txt-record=_dmarc.broken.test,"v=DMARC1; p=maybe"',
        # toomany.test: 11 DNS-lookup terms through includes; plusall.test: +all
        txt("toomany.test", "v=spf1 include:a.toomany.test include:b.toomany.test -all"),
        txt("a.toomany.test", "v=spf1 " + " ".join(f"a:h{i}.toomany.test" for i in range(5))),
        txt("b.toomany.test", "v=spf1 " + " ".join(f"a:k{i}.toomany.test" for i in range(5))),
        txt("plusall.test", "v=spf1 +all"),
        txt("_dmarc.plusall.test", "v=DMARC1; p=none"),
        # nullmx.test: a null MX (RFC 7505)
        "mx-host=nullmx.test,.,0",
        # partial.test: MTA-STS in testing mode that forgets an MX host
        "mx-host=partial.test,mx1.partial.test,10",
        "mx-host=partial.test,mx2.partial.test,20",
        "host-record=mx1.partial.test,127.0.0.1",
        txt("_mta-sts.partial.test", "v=STSv1; id=1"),
        "host-record=mta-sts.partial.test,127.0.0.1",
        # nopolicy.test: an MTA-STS record but no policy host
        "mx-host=nopolicy.test,mx1.good.test,10",
        txt("_mta-sts.nopolicy.test", "v=STSv1; id=1"),
    ]
    return lines


POLICIES = {
    "mta-sts.good.test": (
        "version: STSv1\r\nmode: enforce\r\nmx: mx1.good.test\r\nmax_age: 604800\r\n"
    ),
    "mta-sts.partial.test": "version: STSv1\nmode: testing\nmx: mx1.partial.test\nmax_age: 86400\n",
}
