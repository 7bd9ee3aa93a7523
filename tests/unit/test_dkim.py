"""Tests for mailtransfer.dkim: byte-identical to dkimpy, verified by dkimpy, hard to misuse.

dkimpy is the reference: for the same key, message, ``h=`` list,
canonicalization and ``t=``, our header must equal ``dkim.sign``'s byte for
byte, and ``dkim.verify`` (with a dnsfunc serving the key record) must accept
it. The Ed25519 comparisons need PyNaCl, which dkimpy uses for Ed25519; they
are skipped without it.
"""

from __future__ import annotations

import base64
import functools
import pickle
import re
import time
import warnings
from datetime import timedelta
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from hypothesis import given
from hypothesis import strategies as st

from mailtransfer._dkim._canon import (
    Canonicalization,
    body_canon,
    fold,
    header_canon,
    select,
    split_message,
    wire_form,
)
from mailtransfer.dkim import (
    DEFAULT_HEADERS,
    DEFAULT_OVERSIGN,
    DKIMConfigError,
    DKIMError,
    DKIMKeyring,
    DKIMSigner,
    DKIMVerificationFailed,
    Signer,
    UnsignableMessage,
    WeakKeyWarning,
    dns_record,
    generate_key,
    sign_chain,
    txt_strings,
    zone_entry,
)
from mailtransfer.errors import InvalidArgument, MailTransferError

try:
    import nacl.signing  # noqa: F401 - dkimpy needs it for Ed25519

    HAVE_NACL = True
except ImportError:
    HAVE_NACL = False

needs_nacl = pytest.mark.skipif(not HAVE_NACL, reason="dkimpy needs PyNaCl for Ed25519")
CANONS = [
    ("relaxed", "relaxed"),
    ("relaxed", "simple"),
    ("simple", "relaxed"),
    ("simple", "simple"),
]
MESSAGE = (
    b"From: Alice <alice@example.com>\r\nTo: bob@example.org\r\nSubject: Hello\r\n"
    b"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <1@example.com>\r\n\r\n"
    b"Hi Bob,\r\n.a line starting with a dot\r\n..two dots\r\n\r\n"
)
# A deliberately weak 512-bit key: RFC 8301 forbids it, so the signer must refuse it.
WEAK_512 = b"""-----BEGIN PRIVATE KEY-----
MIIBUwIBADANBgkqhkiG9w0BAQEFAASCAT0wggE5AgEAAkEA5My6CRN6vxfzSycP
vQ8y4hBwAdZbqw8vaU3c7XyBb2Gq/GrqRvRDHPBjNA4Ov21RHrWoOXZkFOyEkXE3
ViwQHwIDAQABAkAJpFQVv2zwIdzGzQT3Rqx7mkfrRqZ/2Fxd9CD/WdrpLgTf3Jrm
MeYGQ8o9v1lVzqaBp4pG8pjnu4kc5+lu/cQhAiEA+jvLKTDMGT4VthIT1Ih5w8KB
xPn3tzdUAPU5I84EghECIQDqEDa8YiIUFNjRQFJk3fA0U2NjW/Q6nfsGPYz2xNdJ
LwIgYuf0WKlAJrKCkLv6ijQFvJ/CFQTkOqA9wzfAEGtX4fECIQDN+aD3iO/A+tux
gaUvP6DmI8g/w7kDtNE/ffsV2qTpjQIgC2OkW2VNiBjBANOtpowtdwwm2NPy/fhE
IXftOcJDI2I=
-----END PRIVATE KEY-----
"""


@functools.cache
def rsa_key(bits: int = 2048, number: int = 0) -> rsa.RSAPrivateKey:
    """A cached RSA key of the given size (``number`` tells keys of one size apart)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


@functools.cache
def ed_key() -> ed25519.Ed25519PrivateKey:
    """A cached Ed25519 key."""
    return ed25519.Ed25519PrivateKey.generate()


def pem_of(key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    """The unencrypted PKCS#8 PEM of a key."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def dkimpy_key(key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    """The private key in the form dkim.sign takes: PEM for RSA, base64 seed for Ed25519."""
    if isinstance(key, rsa.RSAPrivateKey):
        return pem_of(key)
    raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return base64.b64encode(raw)


def tags_of(header: bytes) -> dict[bytes, bytes]:
    """The tag=value pairs of a DKIM-Signature line, whitespace removed."""
    value = re.sub(rb"\s+", b"", header.split(b":", 1)[1])
    return dict(spec.split(b"=", 1) for spec in value.split(b";") if spec)


def verifies(signed: bytes, record: str, idx: int = 0) -> bool:
    """Whether dkimpy accepts signature number ``idx`` of ``signed``, with ``record`` in DNS."""

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        return record.encode()

    try:
        return bool(dkim.DKIM(signed).verify(idx=idx, dnsfunc=dnsfunc))
    except dkim.DKIMException:  # what dkim.verify() does for signature 0
        return False


def reference(message: bytes, ours: bytes, key: object, canon: tuple[str, str]) -> bytes:
    """What dkim.sign makes with our d=, s=, i=, h= and algorithm (at the current time)."""
    tags = tags_of(ours)
    return bytes(
        dkim.sign(
            wire_form(message),
            tags[b"s"],
            tags[b"d"],
            dkimpy_key(key),  # type: ignore[arg-type]
            identity=tags[b"i"],
            canonicalize=(canon[0].encode(), canon[1].encode()),
            signature_algorithm=tags[b"a"],
            include_headers=tags[b"h"].split(b":"),
        )
    )


def compare(message: bytes, key: object, canon: tuple[str, str], **options: object) -> bytes:
    """Sign with both at the same t=; assert equality; return our header."""
    now = [int(time.time())]
    signer = DKIMSigner(
        private_key=key,  # type: ignore[arg-type]
        canonicalization=canon,
        clock=lambda: now[0],
        **options,  # type: ignore[arg-type]
    )
    ours = signer(message, None)
    ref = reference(message, ours, key, canon)
    if tags_of(ref)[b"t"] != tags_of(ours)[b"t"]:  # a second boundary passed in between
        now[0] = int(tags_of(ref)[b"t"])
        ours = signer(message, None)
    assert ours == ref
    return ours


# ---------------------------------------------------------------- strategies

_EOL = st.sampled_from([b"\r\n", b"\n", b"\r"])
_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,14}[a-z0-9])?", fullmatch=True)
_domains = st.lists(_label, min_size=1, max_size=3).map(lambda ls: ".".join([*ls, "example"]))
_selectors = st.from_regex(r"[a-z0-9_]([a-z0-9_-]{0,20}[a-z0-9_])?", fullmatch=True)
_word = st.sampled_from(
    [
        b"hello",
        b"x",
        b"caf\xc3\xa9",
        b"\xe6\x97\xa5\xe6\x9c\xac",
        b"<a@b.example>",
        b"=?utf-8?q?x?=",
    ]
)
_gap = st.sampled_from([b" ", b"  ", b"\t", b" \t ", b"\r\n ", b"\r\n\t", b"\x0c"])
_value = st.lists(st.one_of(_word, _gap), max_size=30).map(b"".join)
_names = st.sampled_from(
    ["To", "Cc", "Subject", "Date", "Message-ID", "Reply-To", "MIME-Version", "Content-Type",
     "List-Id", "List-Unsubscribe", "Received", "X-Mailer", "References", "Sender", "Keywords"]
) | st.from_regex(r"X-[A-Za-z0-9-]{1,12}", fullmatch=True)  # fmt: skip
_case = st.sampled_from([str, str.lower, str.upper])
_field = st.tuples(_names, _case, _value).map(lambda t: t[1](t[0]).encode() + b":" + t[2])
_line = st.one_of(
    st.sampled_from(
        [b"", b".", b"..", b".dot", b"runs  of   space", b"\ttab\t", b"trailing  ", b" ", b"-- "]
    ),
    st.binary(max_size=30).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
)


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    """Messages with exactly one From, random fields, dotted bodies, mixed line endings."""
    eol = draw(_EOL)
    fields = draw(st.lists(_field, max_size=8))
    fields.insert(draw(st.integers(0, len(fields))), b"From: " + draw(_value) + b" <a@x.example>")
    body = draw(st.lists(_line, max_size=12)) + [b""] * draw(st.integers(0, 3))
    head = eol.join(fields) + eol
    if draw(st.booleans()) and not body:
        return head
    return head + eol + eol.join(body) + draw(st.sampled_from([b"", eol]))


# ---------------------------------------------------------------- the reference


@given(messages(), st.sampled_from(CANONS), _domains, _selectors)
def test_rsa_header_equals_dkimpy_and_verifies(
    message: bytes, canon: tuple[str, str], domain: str, selector: str
) -> None:
    """RSA: our header equals dkim.sign's for the same inputs, and dkim.verify accepts it."""
    ours = compare(message, rsa_key(), canon, domain=domain, selector=selector)
    assert verifies(ours + wire_form(message), dns_record(rsa_key()))


@needs_nacl
@given(messages(), st.sampled_from(CANONS), _domains, _selectors)
def test_ed25519_header_equals_dkimpy_and_verifies(
    message: bytes, canon: tuple[str, str], domain: str, selector: str
) -> None:
    """Ed25519: our header equals dkim.sign's for the same inputs, and dkim.verify accepts it."""
    ours = compare(message, ed_key(), canon, domain=domain, selector=selector)
    assert verifies(ours + wire_form(message), dns_record(ed_key()))


@given(messages(), _domains)
def test_identity_and_subdomain_identity_match_dkimpy(message: bytes, domain: str) -> None:
    """An explicit i= in a subdomain gives dkimpy's header too."""
    ours = compare(
        message, rsa_key(), ("relaxed", "relaxed"), domain=domain, selector="s1",
        identity=f"news+x@mail.{domain}",
    )  # fmt: skip
    assert tags_of(ours)[b"i"] == f"news+x@mail.{domain}".encode()


def test_large_body_equals_dkimpy() -> None:
    """A 600 kB body with whitespace runs canonicalises exactly as dkimpy does."""
    body = b"".join(b"line %d  with\t runs   \r\n" % i for i in range(25_000))
    message = MESSAGE + body
    for canon in CANONS:
        ours = compare(message, rsa_key(), canon, domain="example.com", selector="big")
        assert verifies(ours + message, dns_record(rsa_key()))


def test_bare_lf_message_is_signed_as_sent() -> None:
    """Bare LF input is signed in its CRLF wire form, which dkimpy then verifies."""
    signer = DKIMSigner(domain="example.com", selector="s1", private_key=rsa_key())
    crlf = MESSAGE[:-2]  # ends with a non-empty line
    lf = crlf.replace(b"\r\n", b"\n")[:-1]  # and no final line ending
    header = signer(lf, None)
    assert header == signer(crlf, None)
    assert verifies(header + crlf, dns_record(rsa_key()))


@given(
    st.lists(
        st.one_of(st.sampled_from([b" ", b" : ", b"; "]), st.binary(min_size=1, max_size=80)),
        max_size=30,
    ).map(lambda parts: b"".join(parts).replace(b"\r", b"").replace(b"\n", b"")),
    st.booleans(),
)
def test_fold_equals_dkimpy(value: bytes, crlf: bool) -> None:
    """fold() cuts lines exactly where dkim.fold does."""
    value += b"\r\n" if crlf else b""
    assert fold(value, 58) == dkim.fold(value, namelen=14)


_body = st.lists(_line, max_size=20).map(b"\r\n".join) | st.binary(max_size=60).map(wire_form)


@given(_body)
def test_body_canonicalisation_equals_dkimpy(body: bytes) -> None:
    """Simple and relaxed body canonicalisation equal dkimpy's."""
    relaxed, simple = dkim.canonicalization.Relaxed, dkim.canonicalization.Simple
    assert body_canon(body, Canonicalization.RELAXED) == relaxed.canonicalize_body(body)
    assert body_canon(body, Canonicalization.SIMPLE) == simple.canonicalize_body(body)


@given(_value)
def test_relaxed_header_canonicalisation_equals_dkimpy(value: bytes) -> None:
    """Relaxed header canonicalisation equals dkimpy's (unfold, squeeze, strip)."""
    field = (b"X-Test", value + b"\r\n")
    [(name, canon_value)] = dkim.canonicalization.Relaxed.canonicalize_headers([field])
    assert header_canon(field, Canonicalization.RELAXED) == name + b":" + canon_value


@given(
    st.lists(st.sampled_from([b"From", b"to", b"To", b"subject"]), max_size=8),
    st.lists(st.sampled_from([b"from", b"to", b"subject", b"cc"]), max_size=8),
)
def test_header_selection_equals_dkimpy(present: list[bytes], wanted: list[bytes]) -> None:
    """Fields are picked bottom-up per name, as dkim.select_headers does."""
    fields = [(name, b" %d\r\n" % i) for i, name in enumerate(present)]
    assert select(fields, wanted) == [tuple(f) for f in dkim.select_headers(fields, wanted)]


# ---------------------------------------------------------------- what gets signed


@given(messages())
def test_oversigned_fields_are_listed_once_more_than_they_occur(message: bytes) -> None:
    """Every default oversigned name appears in h= one more time than in the message."""
    header = DKIMSigner(domain="example.com", selector="s", private_key=ed_key())(message, None)
    listed = tags_of(header)[b"h"].split(b":")
    fields, _ = split_message(wire_form(message))
    for name in DEFAULT_OVERSIGN:
        present = sum(1 for n, _ in fields if n.lower() == name.encode())
        assert listed.count(name.encode()) == present + 1


@given(messages(), st.sampled_from(CANONS))
def test_l_tag_is_never_written(message: bytes, canon: tuple[str, str]) -> None:
    """No signature carries l= (body length limits allow appended content)."""
    header = DKIMSigner(
        domain="example.com", selector="s", private_key=ed_key(), canonicalization=canon
    )(message, None)
    assert b"l" not in tags_of(header)


def test_fields_outside_the_lists_are_not_signed() -> None:
    """X-Mailer and Received are left out of h=."""
    message = b"Received: from x\r\nX-Mailer: y\r\n" + MESSAGE
    header = DKIMSigner(domain="example.com", selector="s", private_key=ed_key())(message, None)
    listed = tags_of(header)[b"h"].split(b":")
    assert b"x-mailer" not in listed
    assert b"received" not in listed


def test_expiry_sets_x_and_still_verifies() -> None:
    """expiry writes x= = t= + expiry, and dkimpy accepts the signature."""
    signer = DKIMSigner(
        domain="example.com", selector="s1", private_key=rsa_key(), expiry=timedelta(days=7)
    )
    header = signer(MESSAGE, None)
    tags = tags_of(header)
    assert int(tags[b"x"]) - int(tags[b"t"]) == 7 * 86400
    assert verifies(header + MESSAGE, dns_record(rsa_key()))


def test_injected_clock_sets_t() -> None:
    """The clock decides t=."""
    signer = DKIMSigner(
        domain="example.com", selector="s", private_key=ed_key(), clock=lambda: 1234567890.9
    )
    assert tags_of(signer(MESSAGE, None))[b"t"] == b"1234567890"


# ---------------------------------------------------------------- tampering


@pytest.fixture
def signed() -> bytes:
    """MESSAGE signed with the default RSA signer."""
    signer = DKIMSigner(domain="example.com", selector="s1", private_key=rsa_key())
    return signer(MESSAGE, None) + MESSAGE


def test_untouched_message_with_dot_lines_verifies(signed: bytes) -> None:
    """The control case: lines starting with '.' and all, the signed message verifies."""
    assert verifies(signed, dns_record(rsa_key()))


def test_appended_body_text_fails(signed: bytes) -> None:
    """Text appended to the body breaks the signature."""
    assert not verifies(signed + b"Click here\r\n", dns_record(rsa_key()))


@pytest.mark.parametrize("where", ["top", "bottom"])
def test_second_from_fails(signed: bytes, where: str) -> None:
    """A second From field, above or below the first, breaks the signature."""
    extra = b"From: mallory@evil.example\r\n"
    if where == "top":
        tampered = extra + signed
    else:
        tampered = signed.replace(b"\r\n\r\n", b"\r\n" + extra + b"\r\n", 1)
    assert not verifies(tampered, dns_record(rsa_key()))


def test_added_subject_fails_when_none_was_there() -> None:
    """Adding a Subject to a message signed without one breaks the signature."""
    message = MESSAGE.replace(b"Subject: Hello\r\n", b"")
    signer = DKIMSigner(domain="example.com", selector="s1", private_key=rsa_key())
    tampered = signer(message, None) + b"Subject: Pay now\r\n" + message
    assert not verifies(tampered, dns_record(rsa_key()))


def test_added_second_subject_fails(signed: bytes) -> None:
    """A second Subject on top breaks the oversigned signature."""
    assert not verifies(b"Subject: Pay now\r\n" + signed, dns_record(rsa_key()))


def test_without_oversigning_a_second_subject_goes_unnoticed() -> None:
    """What oversigning buys: without it, a Subject added on top still verifies."""
    signer = DKIMSigner(
        domain="example.com", selector="s1", private_key=rsa_key(), oversign=["from"]
    )
    tampered = b"Subject: Pay now\r\n" + signer(MESSAGE, None) + MESSAGE
    assert verifies(tampered, dns_record(rsa_key()))


# ---------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    "domain",
    ["example.com; l=0", "example.com;", "exa mple.com", "example.com\r\nX: y", "-bad.example",
     "a..example", "", "example.com.", "ex=ample.com", "ex\x00ample.com", "bücher.example",
     "a" * 64 + ".example"],
)  # fmt: skip
def test_bad_domain_is_refused(domain: str) -> None:
    """d= must be a plain DNS name: no tag delimiters, controls, spaces or empty labels."""
    with pytest.raises(DKIMConfigError, match="domain"):
        DKIMSigner(domain=domain, selector="s1", private_key=ed_key())


@pytest.mark.parametrize("selector", ["s1; t=1", "s1=x", "s 1", "s1\n", "", "s1.", "-s1", "s\t1"])
def test_bad_selector_is_refused(selector: str) -> None:
    """s= must be a DNS name: no tag delimiters, controls or spaces."""
    with pytest.raises(DKIMConfigError, match="selector"):
        DKIMSigner(domain="example.com", selector=selector, private_key=ed_key())


@pytest.mark.parametrize(
    "identity", ["@evil.example", "a;b@example.com", "a=b@example.com", "a b@example.com",
                 "example.com", "a@notexample.com", "a@example.com\r\nX: y"],
)  # fmt: skip
def test_bad_identity_is_refused(identity: str) -> None:
    """i= must be dkim-safe and in d= or below it."""
    with pytest.raises(DKIMConfigError, match="identity"):
        DKIMSigner(domain="example.com", selector="s", private_key=ed_key(), identity=identity)


@pytest.mark.parametrize(
    "name", ["x;y", "a=b", "Sub ject", "From:", "X\r\nY", "", "bcc", "Received"]
)
def test_bad_header_name_is_refused(name: str) -> None:
    """Header names for h= cannot carry delimiters or be fields that must not be signed."""
    with pytest.raises(DKIMConfigError, match="headers"):
        DKIMSigner(domain="example.com", selector="s", private_key=ed_key(), headers=["from", name])


def test_from_must_be_signed() -> None:
    """A header list without From is refused (RFC 6376 section 5.4)."""
    with pytest.raises(DKIMConfigError, match="from"):
        DKIMSigner(
            domain="example.com", selector="s", private_key=ed_key(), headers=["to"], oversign=[]
        )


@pytest.mark.parametrize(
    ("option", "value"),
    [("canonicalization", ("relaxed", "loose")), ("canonicalization", "relaxed"),
     ("expiry", timedelta(0)), ("expiry", 3600), ("algorithm", "rsa-sha1"),
     ("algorithm", "rsa-sha256")],
)  # fmt: skip
def test_bad_option_is_refused(option: str, value: object) -> None:
    """Unknown canonicalizations, non-positive expiries and mismatched algorithms are refused."""
    with pytest.raises(DKIMConfigError, match=option):
        DKIMSigner(domain="example.com", selector="s", private_key=ed_key(), **{option: value})  # type: ignore[arg-type]


def test_every_key_form_signs_alike(tmp_path: Path) -> None:
    """A PEM path (str or Path), PEM bytes, PEM text and a key object give the same signature."""
    pem = pem_of(rsa_key())
    path = tmp_path / "key.pem"
    path.write_bytes(pem)
    forms: list[object] = [rsa_key(), pem, pem.decode(), str(path), path]
    headers = {
        DKIMSigner(domain="example.com", selector="s", private_key=f, clock=lambda: 1)(MESSAGE)  # type: ignore[arg-type]
        for f in forms
    }
    assert len(headers) == 1


@pytest.mark.parametrize(
    "key",
    [b"-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n",
     "/nonexistent/k.pem", 42, WEAK_512],
)  # fmt: skip
def test_bad_key_is_refused(key: object) -> None:
    """Garbage, a missing file, a wrong type and a 512-bit key are refused."""
    with pytest.raises(DKIMConfigError, match="private_key"):
        DKIMSigner(domain="example.com", selector="s", private_key=key)  # type: ignore[arg-type]


def test_error_does_not_echo_key_material() -> None:
    """A malformed PEM's contents never reach the error message."""
    secret = b"-----BEGIN PRIVATE KEY-----\nU0VDUkVUU0VDUkVU\n-----END PRIVATE KEY-----\n"
    with pytest.raises(DKIMConfigError) as info:
        DKIMSigner(domain="example.com", selector="s", private_key=secret)
    assert "U0VDUkVU" not in str(info.value)


class ExternalKey(rsa.RSAPrivateKey):
    """An RSA key whose signing happens elsewhere (an HSM or KMS stand-in); it records calls."""

    def __init__(self, inner: rsa.RSAPrivateKey) -> None:
        self.inner = inner
        self.digests: list[bytes] = []

    def sign(self, data: bytes, padding: object, algorithm: object) -> bytes:  # type: ignore[override]
        self.digests.append(data)
        return self.inner.sign(data, padding, algorithm)  # type: ignore[arg-type]

    def public_key(self) -> rsa.RSAPublicKey:
        return self.inner.public_key()

    @property
    def key_size(self) -> int:
        return self.inner.key_size

    def decrypt(self, ciphertext: bytes, padding: object) -> bytes:  # type: ignore[override]
        raise NotImplementedError

    def private_numbers(self) -> rsa.RSAPrivateNumbers:
        raise NotImplementedError

    def private_bytes(self, *args: object) -> bytes:  # type: ignore[override]
        raise NotImplementedError

    def __copy__(self) -> ExternalKey:
        return self

    def __deepcopy__(self, memo: object) -> ExternalKey:
        return self


def test_external_key_object_signs_the_header_digest() -> None:
    """A key object that signs elsewhere gets one SHA-256 digest per message and verifies."""
    external = ExternalKey(rsa_key())
    header = DKIMSigner(domain="example.com", selector="s", private_key=external)(MESSAGE)
    assert [len(d) for d in external.digests] == [32]
    assert verifies(header + MESSAGE, dns_record(rsa_key()))


def test_other_key_types_and_encrypted_keys_are_refused() -> None:
    """EC keys and encrypted PEM are refused (load those yourself, pass RSA/Ed25519 objects)."""
    ec_key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(DKIMConfigError, match="RSA or Ed25519"):
        DKIMSigner(domain="example.com", selector="s", private_key=ec_key)  # type: ignore[arg-type]
    encrypted = ed_key().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    with pytest.raises(DKIMConfigError, match="unencrypted"):
        DKIMSigner(domain="example.com", selector="s", private_key=encrypted)


def test_1024_bit_key_warns_and_still_verifies() -> None:
    """A 1024-bit RSA key works (RFC 8301 minimum) but warns."""
    with pytest.warns(WeakKeyWarning, match="1024-bit"):
        signer = DKIMSigner(domain="example.com", selector="s", private_key=rsa_key(1024))
    assert verifies(signer(MESSAGE) + MESSAGE, dns_record(rsa_key(1024)))


def test_2048_bit_key_does_not_warn() -> None:
    """No warning for a 2048-bit key."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        DKIMSigner(domain="example.com", selector="s", private_key=rsa_key())


def test_odd_key_size_folds_cleanly_and_verifies() -> None:
    """A 2096-bit key, where dkimpy splits the final CRLF, gets a well-formed header."""
    key = rsa_key(2096)
    header = DKIMSigner(domain="example.com", selector="s", private_key=key)(MESSAGE)
    assert header.endswith(b"==\r\n")
    assert wire_form(header) == header
    assert all(line.strip() for line in header.split(b"\r\n")[:-1])
    assert verifies(header + MESSAGE, dns_record(key))


def test_repr_shows_no_key() -> None:
    """The repr names domain, selector and algorithm, never key material."""
    text = repr(DKIMSigner(domain="example.com", selector="s", private_key=pem_of(rsa_key())))
    assert (
        text == "DKIMSigner(domain='example.com', selector='s', algorithm='rsa-sha256', bits=2048)"
    )


# ---------------------------------------------------------------- messages that cannot be signed


@pytest.mark.parametrize(
    "message",
    [b"To: b@example.org\r\n\r\nhi\r\n", b"From: a@x.example\r\nFrom: b@y.example\r\n\r\nhi\r\n",
     b"From: a@x.example\r\nBad line\r\n\r\n", b" continued\r\nFrom: a@x.example\r\n\r\n",
     b"From: a@x.example\r\nX-\xc3\xa9: y\r\n\r\n",
     b"From nobody Mon Jan 1\r\nFrom: a@x.example\r\n\r\n"],
)  # fmt: skip
def test_unsignable_message_is_refused(message: bytes) -> None:
    """No From, two From, and malformed header lines raise UnsignableMessage."""
    with pytest.raises(UnsignableMessage):
        DKIMSigner(domain="example.com", selector="s", private_key=ed_key())(message)


# ---------------------------------------------------------------- verify=True


def test_verify_option_returns_the_same_header() -> None:
    """verify=True checks and returns the very header verify=False makes."""
    kwargs: dict[str, object] = {"domain": "example.com", "selector": "s", "clock": lambda: 7}
    for key in (rsa_key(), ed_key()):
        for canon in CANONS:
            checked = DKIMSigner(private_key=key, canonicalization=canon, verify=True, **kwargs)  # type: ignore[arg-type]
            plain = DKIMSigner(private_key=key, canonicalization=canon, **kwargs)  # type: ignore[arg-type]
            assert checked(MESSAGE) == plain(MESSAGE)


@pytest.mark.parametrize("damage", [(b"t=7", b"t=8"), (b"bh=", b"bh=A"), (b" b=", b" b=AAAA")])
def test_self_check_rejects_a_damaged_signature(damage: tuple[bytes, bytes]) -> None:
    """The verify=True check raises DKIMVerificationFailed for a header that does not verify."""
    signer = DKIMSigner(domain="example.com", selector="s", private_key=rsa_key(), clock=lambda: 7)
    fields, _ = split_message(MESSAGE)
    header = signer(MESSAGE)
    body_hash = tags_of(header)[b"bh"]
    signer._check(header, fields, body_hash)  # the undamaged header passes
    with pytest.raises(DKIMVerificationFailed):
        signer._check(header.replace(*damage), fields, body_hash)


# ---------------------------------------------------------------- keyring


@pytest.fixture
def keyring() -> DKIMKeyring:
    """Keys for one.example (RSA) and two.example (Ed25519), skipping unknown domains."""
    return DKIMKeyring(
        {"one.example": ("rsa1", rsa_key()), "two.example": ("ed1", ed_key())},
    )


@pytest.mark.parametrize(
    ("sender", "domain"),
    [("a@one.example", b"one.example"), ("B <b@TWO.example>", b"two.example"),
     ("c@news.two.example", b"two.example")],
)  # fmt: skip
def test_keyring_picks_the_from_domain_key(
    keyring: DKIMKeyring, sender: str, domain: bytes
) -> None:
    """The From domain, or its nearest parent with a key, chooses the key."""
    header = keyring(b"From: " + sender.encode() + b"\r\n\r\nhi\r\n", None)
    assert tags_of(header)[b"d"] == domain


def test_keyring_signature_verifies(keyring: DKIMKeyring) -> None:
    """What the keyring signs, dkimpy verifies."""
    message = MESSAGE.replace(b"example.com>", b"one.example>")
    assert verifies(keyring(message, None) + message, dns_record(rsa_key()))


def test_keyring_matches_idn_from_domain() -> None:
    """A From domain in U-label form finds the key stored under its A-label."""
    ring = DKIMKeyring({"xn--bcher-kva.example": ("s", ed_key())})
    header = ring("From: a@bücher.example\r\n\r\n".encode(), None)
    assert tags_of(header)[b"d"] == b"xn--bcher-kva.example"


def test_keyring_skips_unknown_domain(keyring: DKIMKeyring) -> None:
    """With on_missing='skip', a message from another domain gets no header."""
    assert keyring(b"From: a@three.example\r\n\r\nhi\r\n", None) == b""


@pytest.mark.parametrize(
    "message", [b"From: a@three.example\r\n\r\n", b"To: b@one.example\r\n\r\n"]
)
def test_keyring_refuses_unknown_domain(message: bytes) -> None:
    """With on_missing='refuse', no key (or no From) raises UnsignableMessage."""
    ring = DKIMKeyring({"one.example": ("s", ed_key())}, on_missing="refuse")
    with pytest.raises(UnsignableMessage, match="no DKIM key"):
        ring(message, None)


@pytest.mark.parametrize(
    "message",
    [b"From: a@one.example\r\nFrom: b@one.example\r\n\r\n",
     b"From: a@one.example, b@two.example\r\n\r\n", b"From: <a@one.example\r\n\r\n"],
)  # fmt: skip
def test_keyring_refuses_ambiguous_from(keyring: DKIMKeyring, message: bytes) -> None:
    """Several From fields, several domains or an unparsable From raise even in skip mode."""
    with pytest.raises(UnsignableMessage):
        keyring(message, None)


def test_keyring_rejects_bad_configuration() -> None:
    """A bad on_missing, a signer filed under another domain, or a bad entry is refused."""
    with pytest.raises(DKIMConfigError, match="on_missing"):
        DKIMKeyring({}, on_missing="ignore")
    other = DKIMSigner(domain="one.example", selector="s", private_key=ed_key())
    with pytest.raises(DKIMConfigError, match="must match"):
        DKIMKeyring({"two.example": other})
    with pytest.raises(DKIMConfigError, match="pair"):
        DKIMKeyring({"two.example": "s"})  # type: ignore[dict-item]


# ---------------------------------------------------------------- sign_chain


def test_chain_of_two_rsa_signers_both_verify() -> None:
    """Each signer in a chain signs; dkimpy verifies both signatures."""
    first = DKIMSigner(domain="example.com", selector="a", private_key=rsa_key())
    second = DKIMSigner(domain="example.com", selector="b", private_key=rsa_key(2048, 1))
    signed = sign_chain(MESSAGE, None, [first, second])
    assert signed.count(b"DKIM-Signature:") == 2
    assert signed.index(b"s=b;") < signed.index(b"s=a;")  # the last signer's header is on top
    assert verifies(signed, dns_record(rsa_key(2048, 1)), idx=0)
    assert verifies(signed, dns_record(rsa_key()), idx=1)


@needs_nacl
def test_chain_rsa_then_ed25519_both_verify() -> None:
    """RSA and Ed25519 both sign; dkimpy verifies both."""
    rsa_signer = DKIMSigner(domain="example.com", selector="r", private_key=rsa_key())
    ed_signer = DKIMSigner(domain="example.com", selector="e", private_key=ed_key())
    signed = sign_chain(MESSAGE, None, [rsa_signer, ed_signer])
    assert verifies(signed, dns_record(ed_key()), idx=0)
    assert verifies(signed, dns_record(rsa_key()), idx=1)


def test_chain_signs_the_wire_form() -> None:
    """Bare LF input comes back in CRLF wire form with a final CRLF, as it will be sent."""
    signer = DKIMSigner(domain="example.com", selector="s", private_key=rsa_key())
    crlf = MESSAGE[:-2]  # ends with a non-empty line
    lf = crlf.replace(b"\r\n", b"\n")[:-1]  # and no final line ending
    signed = sign_chain(lf, None, [signer])
    assert signed.endswith(crlf)
    assert verifies(signed, dns_record(rsa_key()))


def test_chain_passes_envelope_and_accepts_empty_output() -> None:
    """Signers get the envelope; one returning b'' leaves the message unchanged."""
    seen: list[object] = []

    def quiet(message: bytes, envelope: object) -> bytes:
        seen.append(envelope)
        return b""

    assert isinstance(quiet, Signer)
    assert sign_chain(MESSAGE, "env", [quiet]) == MESSAGE
    assert seen == ["env"]


@pytest.mark.parametrize(
    "output",
    [b"X-Sig: 1", b"X-Sig: 1\n", b"X-Sig: 1\r\n\r\n", b"not a header\r\n", b"\r\n", "X: 1\r\n"],
)
def test_chain_rejects_malformed_signer_output(output: object) -> None:
    """A signer output that is not CRLF-terminated header fields raises DKIMError."""
    with pytest.raises(DKIMError, match="signer"):
        sign_chain(MESSAGE, None, [lambda message, envelope: output])  # type: ignore[list-item]


# ---------------------------------------------------------------- keys and DNS


def test_generated_rsa_key_signs_and_verifies() -> None:
    """generate_key('rsa') gives a PEM the signer loads and a record dkimpy verifies with."""
    pem, record = generate_key("rsa")
    assert record.startswith("v=DKIM1; k=rsa; p=")
    signer = DKIMSigner(domain="example.com", selector="s", private_key=pem)
    assert signer.dns_record() == record
    assert verifies(signer(MESSAGE) + MESSAGE, record)


def test_generated_ed25519_record_holds_the_raw_key() -> None:
    """An Ed25519 record's p= is the 32-byte raw public key (RFC 8463 section 4)."""
    pem, record = generate_key("ed25519")
    assert record.startswith("v=DKIM1; k=ed25519; p=")
    assert len(base64.b64decode(record.split("p=")[1])) == 32
    assert DKIMSigner(domain="example.com", selector="s", private_key=pem).key_bits == 256


@pytest.mark.parametrize(("kind", "bits"), [("dsa", 2048), ("rsa", 1024), ("rsa", "2048")])
def test_generate_key_refuses_bad_arguments(kind: str, bits: object) -> None:
    """Unknown kinds and RSA sizes below 2048 are refused."""
    with pytest.raises(DKIMConfigError):
        generate_key(kind, bits)  # type: ignore[arg-type]


@given(st.text(st.characters(max_codepoint=127), max_size=1200), st.integers(1, 255))
def test_txt_strings_split_losslessly(record: str, limit: int) -> None:
    """The pieces join back to the record and none exceeds the limit."""
    pieces = txt_strings(record, limit)
    assert "".join(pieces) == record
    assert all(len(piece.encode()) <= limit for piece in pieces)


def test_zone_entry_quotes_each_string() -> None:
    """A 2048-bit record becomes two quoted strings under <selector>._domainkey."""
    record = dns_record(rsa_key())
    line = zone_entry("s1", record, ttl=300)
    strings = re.findall(r'"([^"]*)"', line)
    assert line.startswith("s1._domainkey 300 IN TXT ( ")
    assert len(strings) == 2
    assert "".join(strings) == record


# ---------------------------------------------------------------- errors


def test_errors_fit_the_hierarchy_and_pickle() -> None:
    """DKIM errors are MailTransferErrors, config errors also ValueErrors, and all pickle."""
    assert issubclass(DKIMConfigError, InvalidArgument)
    assert issubclass(DKIMConfigError, ValueError)
    assert issubclass(UnsignableMessage, DKIMError)
    assert issubclass(DKIMError, MailTransferError)
    copy = pickle.loads(pickle.dumps(UnsignableMessage("no From")))
    assert str(copy) == "no From"
    assert type(copy) is UnsignableMessage


def test_default_lists_are_consistent() -> None:
    """Every oversigned default is also signed, From is in both, and none is forbidden."""
    assert set(DEFAULT_OVERSIGN) <= set(DEFAULT_HEADERS)
    assert "from" in DEFAULT_OVERSIGN
    assert not {"bcc", "received", "return-path", "dkim-signature"} & set(DEFAULT_HEADERS)
