"""DKIM signing speed: dkimpy's ``dkim.sign`` against ``mailtransfer.dkim.DKIMSigner``.

Run: ``PYTHONPATH=src python benchmarks/bench_dkim.py [--seconds 0.5]``

Both sign the same message with the same key, ``h=`` list and relaxed/relaxed
canonicalization, in one process, one after the other; the table gives
signatures per second (best of three alternating rounds) and the ratio. Before timing,
each pair of headers is checked to be byte-identical at the same ``t=``.
dkimpy parses the PEM key on every call (its API takes the key per call);
``DKIMSigner`` parses it once, at construction, which is part of its design.
dkimpy needs PyNaCl for Ed25519; without it those rows show ``n/a``.
"""

from __future__ import annotations

import argparse
import base64
import platform
import time
from collections.abc import Callable
from importlib import metadata

import cryptography
import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from mailtransfer.dkim import DKIMSigner

HEAD = (
    b"From: Alice Example <alice@example.com>\r\n"
    b"To: Bob Example <bob@example.org>\r\n"
    b"Cc: carol@example.net\r\n"
    b"Subject: Quarterly report, with figures and a longer subject line\r\n"
    b"Date: Mon, 01 Jan 2024 09:00:00 +0000\r\n"
    b"Message-ID: <20240101090000.12345@mail.example.com>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n"
)
LINE = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\r\n"


def message(size: int) -> bytes:
    """A plain-text message of exactly ``size`` bytes, ending with CRLF."""
    body = LINE * (size // len(LINE) + 1)
    body = body[: size - len(HEAD) - 2] + b"\r\n"
    return HEAD + body


def one_round(call: Callable[[], object], seconds: float) -> float:
    """Calls per second over one round of at least ``seconds``."""
    count, start = 0, time.perf_counter()
    while True:
        call()
        count += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return count / elapsed


def rates(calls: list[Callable[[], object]], seconds: float) -> list[float]:
    """Best of three rounds for each call; rounds alternate, so load drift hits all alike."""
    best = [0.0] * len(calls)
    for _ in range(3):
        for index, call in enumerate(calls):
            best[index] = max(best[index], one_round(call, seconds))
    return best


def tags(header: bytes) -> dict[bytes, bytes]:
    """The tags of a DKIM-Signature line, whitespace removed."""
    value = b"".join(header.split(b":", 1)[1].split())
    return dict(spec.split(b"=", 1) for spec in value.split(b";") if spec)


def main() -> None:
    """Print the comparison table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.5, help="minimum time per round")
    args = parser.parse_args()
    try:
        import nacl.signing  # noqa: F401 - dkimpy's Ed25519 backend

        have_nacl = True
    except ImportError:
        have_nacl = False

    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ed_key = ed25519.Ed25519PrivateKey.generate()
    no_enc = serialization.NoEncryption()
    keys = {
        "rsa-sha256 (2048)": (
            rsa_key,
            rsa_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, no_enc
            ),
        ),
        "ed25519-sha256": (
            ed_key,
            base64.b64encode(
                ed_key.private_bytes(
                    serialization.Encoding.Raw, serialization.PrivateFormat.Raw, no_enc
                )
            ),
        ),
    }
    print(
        f"Python {platform.python_version()}, dkimpy {metadata.version('dkimpy')}, "
        f"cryptography {cryptography.__version__}, {platform.machine()}"
    )
    print("DKIM-Signature per second, relaxed/relaxed, best of 3 (higher is better)\n")
    print(f"{'algorithm':<19}{'message':>9}{'dkimpy':>12}{'mailtransfer':>15}{'ratio':>9}  same")
    for label, (key, dkimpy_key) in keys.items():
        for size_label, size in (("2 KB", 2048), ("1 MB", 1 << 20)):
            skip = label.startswith("ed") and not have_nacl
            print(f"{label:<19}{size_label:>9}" + row(key, dkimpy_key, size, args.seconds, skip))


def row(key: object, dkimpy_key: bytes, size: int, seconds: float, skip_dkimpy: bool) -> str:
    """Time both signers on one message size; the rest of the table row."""
    data = message(size)
    now = [int(time.time())]
    signer = DKIMSigner(
        domain="example.com",
        selector="bench",
        private_key=key,  # type: ignore[arg-type]
        clock=lambda: now[0],
    )
    ours = signer(data, None)
    if skip_dkimpy:
        [ours_rate] = rates([lambda: signer(data, None)], seconds)
        return f"{'n/a':>12}{ours_rate:>15,.0f}{'':>9}  n/a"
    t = tags(ours)

    def reference() -> bytes:
        return bytes(
            dkim.sign(
                data, t[b"s"], t[b"d"], dkimpy_key,
                canonicalize=(b"relaxed", b"relaxed"), signature_algorithm=t[b"a"],
                include_headers=t[b"h"].split(b":"),
            )
        )  # fmt: skip

    ref = reference()
    now[0] = int(tags(ref)[b"t"])  # sign again at dkimpy's t= to compare bytes
    same = "yes" if signer(data, None) == ref else "NO"
    ours_rate, ref_rate = rates([lambda: signer(data, None), reference], seconds)
    return f"{ref_rate:>12,.0f}{ours_rate:>15,.0f}{ours_rate / ref_rate:>8.1f}x  {same}"


if __name__ == "__main__":
    main()
