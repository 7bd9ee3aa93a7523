"""SCRAM (RFC 5802, RFC 7677) and SASLprep (RFC 4013): RFC vectors and a test-only server."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailtransfer.auth import (
    ChannelBinding,
    Password,
    SASLError,
    Scram,
    SCRAMServerError,
    ServerVerificationFailed,
    saslprep,
)
from mailtransfer.protocol._errors import InvalidArgument, LocalProtocolError

# -- a minimal SCRAM server, written from RFC 5802 section 3 independently of the client ------


def _hi(hash_name: str, password: bytes, salt: bytes, iterations: int) -> bytes:
    """RFC 5802 section 2.2 Hi(), by hand (the client uses hashlib.pbkdf2_hmac)."""
    block = hmac.new(password, salt + b"\x00\x00\x00\x01", hash_name).digest()
    total = int.from_bytes(block, "big")
    for _ in range(iterations - 1):
        block = hmac.new(password, block, hash_name).digest()
        total ^= int.from_bytes(block, "big")
    return total.to_bytes(len(block), "big")


class ScramServer:
    """Stores a password as RFC 5802 does (StoredKey, ServerKey) and checks client proofs."""

    def __init__(
        self,
        hash_name: str,
        stored_password: str,
        *,
        iterations: int = 4096,
        binding: ChannelBinding | None = None,
        expect_flag: str = "n",
    ) -> None:
        self.hash_name = hash_name
        self.salt = secrets.token_bytes(16)
        self.iterations = iterations
        salted = _hi(hash_name, stored_password.encode("utf-8"), self.salt, iterations)
        client_key = hmac.new(salted, b"Client Key", hash_name).digest()
        self.stored_key = hashlib.new(hash_name, client_key).digest()
        self.server_key = hmac.new(salted, b"Server Key", hash_name).digest()
        self.binding = binding
        self.expect_flag = expect_flag
        self.username = ""
        self.authzid = ""

    def first(self, client_first: bytes) -> bytes:
        flag, authzid, bare = client_first.decode("utf-8").split(",", 2)
        assert flag == self.expect_flag
        self.authzid = _unescape(authzid[2:]) if authzid else ""
        self.gs2_header = f"{flag},{authzid},".encode()
        self.client_first_bare = bare.encode("utf-8")
        name, nonce = bare.split(",")
        self.username = _unescape(name[2:])
        self.nonce = nonce[2:] + secrets.token_urlsafe(18)
        salt = base64.b64encode(self.salt).decode()
        self.server_first = f"r={self.nonce},s={salt},i={self.iterations}".encode()
        return self.server_first

    def final(self, client_final: bytes) -> bytes:
        without_proof, proof = client_final.rsplit(b",p=", 1)
        channel, nonce = without_proof.decode().split(",")
        binding_data = self.binding.data if self.binding is not None else b""
        if base64.b64decode(channel[2:]) != self.gs2_header + binding_data:
            return b"e=channel-bindings-dont-match"
        if nonce[2:] != self.nonce:
            return b"e=other-error"
        auth_message = b",".join((self.client_first_bare, self.server_first, without_proof))
        signature = hmac.new(self.stored_key, auth_message, self.hash_name).digest()
        client_key = bytes(a ^ b for a, b in zip(base64.b64decode(proof), signature, strict=True))
        if hashlib.new(self.hash_name, client_key).digest() != self.stored_key:
            return b"e=invalid-proof"
        verifier = hmac.new(self.server_key, auth_message, self.hash_name).digest()
        return b"v=" + base64.b64encode(verifier)


def _unescape(name: str) -> str:
    return name.replace("=2C", ",").replace("=3D", "=")


def run(mechanism: Scram, server: ScramServer) -> bytes:
    """Drive one full exchange; return the server-final-message."""
    server_final = server.final(mechanism.respond(server.first(mechanism.initial_response())))
    assert mechanism.respond(server_final) == b""
    mechanism.verify_success(None)
    return server_final


# -- RFC vectors ------------------------------------------------------------------------------

RFC5802 = (
    b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
    b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
    b"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
    b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
)
RFC7677 = (
    b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
    b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
    b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
)


def rfc5802(**options: object) -> Scram:
    return Scram(
        Password("user", "pencil"),
        algorithm="SHA-1",
        client_nonce="fyko+d2lbbFgONRv9qkxdawL",
        **options,
    )


def rfc7677(**options: object) -> Scram:
    return Scram(Password("user", "pencil"), client_nonce="rOprNGfwEbeRWgbNEkqO", **options)


@pytest.mark.parametrize(("factory", "vector"), [(rfc5802, RFC5802), (rfc7677, RFC7677)])
def test_rfc_example_reproduces_byte_for_byte(factory, vector):
    """The RFC 5802 section 5 and RFC 7677 section 3 exchanges come out exactly."""
    client_first, server_first, client_final, server_final = vector
    mechanism = factory()
    assert mechanism.initial_response() == client_first
    assert mechanism.respond(server_first) == client_final
    assert mechanism.respond(server_final) == b""
    mechanism.verify_success(None)


def test_rfc7677_names_the_mechanism():
    """The default algorithm is SHA-256 and the name says so."""
    assert rfc7677().name == "SCRAM-SHA-256"
    assert rfc5802().name == "SCRAM-SHA-1"


def test_wrong_server_signature_is_refused():
    """A v= that does not match the expected server signature raises ServerVerificationFailed."""
    mechanism = rfc7677()
    mechanism.initial_response()
    mechanism.respond(RFC7677[1])
    forged = b"v=" + base64.b64encode(bytes(32))
    with pytest.raises(ServerVerificationFailed, match="does not match"):
        mechanism.respond(forged)


def test_server_final_without_verifier_is_refused():
    """A server-final-message with neither v= nor e= raises ServerVerificationFailed."""
    mechanism = rfc7677()
    mechanism.initial_response()
    mechanism.respond(RFC7677[1])
    with pytest.raises(ServerVerificationFailed, match="no server signature"):
        mechanism.respond(b"x=whatever")


def test_success_without_server_signature_is_an_attack():
    """A 235 right after the client proof (no v= ever) is refused by verify_success."""
    mechanism = rfc7677()
    mechanism.initial_response()
    mechanism.respond(RFC7677[1])
    with pytest.raises(ServerVerificationFailed, match="impostor"):
        mechanism.verify_success(None)


def test_success_data_can_carry_the_server_final_message():
    """For protocols with data on success, verify_success checks it as the server-final."""
    mechanism = rfc7677()
    mechanism.initial_response()
    mechanism.respond(RFC7677[1])
    mechanism.verify_success(RFC7677[3])


def test_server_error_attribute_raises_typed_error():
    """An e= server-final-message raises SCRAMServerError carrying the error value."""
    mechanism = rfc7677()
    mechanism.initial_response()
    mechanism.respond(RFC7677[1])
    with pytest.raises(SCRAMServerError) as info:
        mechanism.respond(b"e=invalid-proof")
    assert info.value.error == "invalid-proof"
    assert info.value.mechanism == "SCRAM-SHA-256"


def test_iteration_count_below_4096_is_refused():
    """i=1024 is refused by default (RFC 7677 section 4)."""
    mechanism = rfc7677()
    mechanism.initial_response()
    with pytest.raises(SASLError, match="1024 iterations"):
        mechanism.respond(RFC7677[1].replace(b"i=4096", b"i=1024"))


def test_low_iteration_count_accepted_when_configured():
    """min_iterations=1024 lets a legacy server's i=1024 through."""
    mechanism = rfc7677(min_iterations=1024)
    mechanism.initial_response()
    response = mechanism.respond(RFC7677[1].replace(b"i=4096", b"i=1024"))
    assert response.startswith(b"c=biws,")


def test_huge_iteration_count_is_refused():
    """An iteration count above max_iterations is refused before any hashing (S9)."""
    mechanism = rfc7677()
    mechanism.initial_response()
    started = time.perf_counter()
    with pytest.raises(SASLError, match="outside the accepted range"):
        mechanism.respond(RFC7677[1].replace(b"i=4096", b"i=2147483647"))
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize(
    ("server_first", "problem"),
    [
        (b"r=someoneelse123,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "nonce"),
        (b"m=ext,r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "mandatory"),
        (b"r=rOprNGfwEbeRWgbNEkqOxyz,s=not base64!,i=4096", "salt"),
        (b"r=rOprNGfwEbeRWgbNEkqOxyz,s=,i=4096", "empty salt"),
        (b"r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=04096", "positive number"),
        (b"r=rOprNGfwEbeRWgbNEkqOxyz,i=4096,s=W22ZaJ0SNY7soEsUEjb6gQ==", "r=, s= and i="),
        (b"r=rOprNGfwEbeRWgbNEkqO\xff,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "UTF-8"),
    ],
)
def test_malformed_server_first_is_refused(server_first, problem):
    """Each defect of the server-first-message raises SASLError naming it."""
    mechanism = rfc7677()
    mechanism.initial_response()
    with pytest.raises(SASLError, match=problem):
        mechanism.respond(server_first)


@given(st.binary(max_size=200))
def test_server_first_parser_only_raises_sasl_error(data):
    """Arbitrary server-first bytes give a client-final or a SASLError, nothing else."""
    mechanism = Scram(
        Password("user", "pencil"), client_nonce="abc", min_iterations=1, max_iterations=5000
    )
    mechanism.initial_response()
    try:
        response = mechanism.respond(data)
    except SASLError:
        return
    assert response.startswith(b"c=biws,r=abc")


@given(st.binary(max_size=100))
def test_server_final_parser_only_raises_sasl_errors(data):
    """Arbitrary server-final bytes are either the right signature or a SASLError."""
    mechanism = rfc7677()
    mechanism.initial_response()
    mechanism.respond(RFC7677[1])
    try:
        mechanism.respond(data)
    except SASLError:
        return
    assert data.split(b",")[0] == RFC7677[3]


def test_challenge_after_verification_is_refused():
    """A third challenge after a verified server-final raises SASLError."""
    mechanism = rfc7677()
    mechanism.initial_response()
    mechanism.respond(RFC7677[1])
    mechanism.respond(RFC7677[3])
    with pytest.raises(SASLError, match="unexpected"):
        mechanism.respond(b"more")


def test_mechanism_is_single_use():
    """Calling initial_response twice raises LocalProtocolError."""
    mechanism = rfc7677()
    mechanism.initial_response()
    with pytest.raises(LocalProtocolError, match="single-use"):
        mechanism.initial_response()


def test_random_nonce_differs_each_time():
    """Without an injected nonce, two mechanisms send different nonces."""
    first = Scram(Password("u", "p")).initial_response()
    second = Scram(Password("u", "p")).initial_response()
    assert first != second
    assert len(first.split(b",r=")[1]) >= 32


@pytest.mark.parametrize("nonce", ["", "a,b", "caf\u00e9", "sp ace"])
def test_bad_injected_nonce_is_refused(nonce):
    """An injected nonce must be printable ASCII without a comma."""
    with pytest.raises(InvalidArgument, match="client_nonce"):
        Scram(Password("u", "p"), client_nonce=nonce)


def test_repr_shows_no_secret():
    """The mechanism's repr names it and its state, never the password."""
    mechanism = Scram(Password("user", "hunter2-secret"))
    assert repr(mechanism) == "<Scram SCRAM-SHA-256 [ready]>"
    assert "hunter2" not in str(mechanism)


def test_username_is_escaped():
    """'=' and ',' in the username become =3D and =2C (RFC 5802 section 5.1)."""
    mechanism = Scram(Password("a=b,c", "p"), client_nonce="n")
    assert mechanism.initial_response() == b"n,,n=a=3Db=2Cc,r=n"


def test_authzid_goes_in_the_gs2_header():
    """An authzid is sent as a= in the GS2 header."""
    mechanism = Scram(Password("user", "p", authzid="admin"), client_nonce="n")
    assert mechanism.initial_response() == b"n,a=admin,n=user,r=n"


# -- channel binding --------------------------------------------------------------------------

BINDING = ChannelBinding("tls-exporter", bytes(range(32)))


def test_plus_without_binding_is_refused():
    """A -PLUS mechanism cannot be built without channel binding data."""
    with pytest.raises(InvalidArgument, match="channel_binding"):
        Scram(Password("u", "p"), plus=True)


def test_plus_sends_binding_type_in_header():
    """SCRAM-SHA-256-PLUS sends p=<kind> in the GS2 header."""
    mechanism = Scram(Password("u", "p"), BINDING, plus=True, client_nonce="n")
    assert mechanism.name == "SCRAM-SHA-256-PLUS"
    assert mechanism.initial_response() == b"p=tls-exporter,,n=u,r=n"


def test_binding_without_plus_sends_y():
    """With a binding but the plain variant, the client says 'y' (RFC 5802 section 6)."""
    mechanism = Scram(Password("u", "p"), BINDING, client_nonce="n")
    assert mechanism.initial_response() == b"y,,n=u,r=n"


@pytest.mark.parametrize("algorithm", ["SHA-1", "SHA-256"])
def test_plus_exchange_verifies_against_server(algorithm):
    """A -PLUS exchange carries the binding data in c= and verifies both ways."""
    server_hash = algorithm.replace("-", "").lower()
    server = ScramServer(server_hash, "pw", binding=BINDING, expect_flag="p=tls-exporter")
    mechanism = Scram(Password("u", "pw"), BINDING, algorithm=algorithm, plus=True)
    assert run(mechanism, server).startswith(b"v=")


def test_plus_exchange_with_other_binding_fails():
    """A client bound to a different TLS channel fails the server's c= check."""
    server = ScramServer("sha256", "pw", binding=BINDING, expect_flag="p=tls-exporter")
    other = ChannelBinding("tls-exporter", bytes(32))
    mechanism = Scram(Password("u", "pw"), other, plus=True)
    server_final = server.final(mechanism.respond(server.first(mechanism.initial_response())))
    with pytest.raises(SCRAMServerError) as info:
        mechanism.respond(server_final)
    assert info.value.error == "channel-bindings-dont-match"


# -- the test server: random passwords, including ones SASLprep rewrites ----------------------

STABLE = st.text(
    alphabet=st.sampled_from(
        [chr(code) for code in range(0x20, 0x7F)] + list("\u00e9\u00df\u00fc\u00f8\u0416\u6f22")
    ),
    min_size=1,
    max_size=24,
)
"""Passwords SASLprep leaves unchanged: printable ASCII plus a few NFKC-stable letters."""


def _decorate(password: str, data: st.DataObject) -> str:
    """Rewrite a stable password into an equivalent one SASLprep must map back."""
    out = []
    for char in password:
        if char == " " and data.draw(st.booleans()):
            out.append(data.draw(st.sampled_from(["\u00a0", "\u1680", "\u3000"])))  # C.1.2
        elif char == "\u00e9" and data.draw(st.booleans()):
            out.append("e\u0301")  # decomposed: NFKC composes it again
        else:
            out.append(char)
        if data.draw(st.booleans()):
            out.append(data.draw(st.sampled_from(["\u00ad", "\u200d", "\ufe0f"])))  # B.1
    return "".join(out)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    password=STABLE,
    username=st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1),
    algorithm=st.sampled_from(["SHA-1", "SHA-256"]),
    data=st.data(),
)
def test_client_proof_verifies_for_random_passwords(password, username, algorithm, data):
    """The test server accepts our proof, and we accept its signature, for any password."""
    client_password = _decorate(password, data)
    server = ScramServer(algorithm.replace("-", "").lower(), password)
    mechanism = Scram(Password(username, client_password), algorithm=algorithm)
    assert run(mechanism, server).startswith(b"v=")
    assert server.username == username


@settings(max_examples=20, deadline=None)
@given(password=STABLE, other=STABLE)
def test_wrong_password_is_rejected_by_server(password, other):
    """A client with another password gets e=invalid-proof and raises SCRAMServerError."""
    if saslprep(other) == password:
        return
    server = ScramServer("sha256", password)
    mechanism = Scram(Password("u", other))
    server_final = server.final(mechanism.respond(server.first(mechanism.initial_response())))
    with pytest.raises(SCRAMServerError):
        mechanism.respond(server_final)


# -- SASLprep (RFC 4013 section 3 examples and the rules behind them) -------------------------


@pytest.mark.parametrize(
    ("given_text", "expected"),
    [
        ("I\u00adX", "IX"),  # SOFT HYPHEN mapped to nothing
        ("user", "user"),
        ("USER", "USER"),  # no case folding
        ("\u00aa", "a"),  # FEMININE ORDINAL INDICATOR, NFKC
        ("\u2168", "IX"),  # ROMAN NUMERAL NINE, NFKC
        ("a\u00a0b", "a b"),  # NO-BREAK SPACE mapped to SPACE
        ("a\u1680b", "a b"),  # OGHAM SPACE MARK: only the C.1.2 mapping makes it a SPACE
        ("a\u200bb", "a b"),  # ZERO WIDTH SPACE is in C.1.2 and B.1; C.1.2 wins, as in libidn
        ("\u0627\u0031\u0628", "\u0627\u0031\u0628"),  # RandALCat first and last
    ],
)
def test_saslprep_rfc4013_examples(given_text, expected):
    """SASLprep maps and normalizes as the RFC 4013 examples show."""
    assert saslprep(given_text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "\u0007",  # control character (RFC 4013 section 3 example)
        "\u0627\u0031",  # RandALCat not last (RFC 4013 section 3 example)
        "a\u0627",  # RandALCat mixed with LCat
        "\ue000",  # private use
        "\ufffe",  # non-character
        "a\x00b",  # NUL
    ],
)
def test_saslprep_refuses_prohibited_input(text):
    """Prohibited characters and bad bidi raise InvalidArgument without quoting the text."""
    with pytest.raises(InvalidArgument, match="SASLprep") as info:
        saslprep(text)
    assert text not in str(info.value)


def test_saslprep_unassigned_only_in_queries():
    """An unassigned code point (in Unicode 3.2) is refused for stored strings only."""
    with pytest.raises(InvalidArgument):
        saslprep("a\u0221")
    assert saslprep("a\u0221", allow_unassigned=True) == "a\u0221"


def test_password_refused_by_saslprep_fails_at_construction():
    """A password SASLprep refuses fails when the mechanism is built, before any byte."""
    with pytest.raises(InvalidArgument, match="SASLprep"):
        Scram(Password("u", "bad\u0007"))


def test_username_empty_after_saslprep_is_refused():
    """A username of only SOFT HYPHENs prepares to nothing and is refused."""
    with pytest.raises(InvalidArgument, match="empty after SASLprep"):
        Scram(Password("\u00ad\u00ad", "p"))


@given(st.text(max_size=30))
def test_saslprep_output_is_stable(text):
    """Preparing an already prepared string changes nothing, or the input was refused."""
    try:
        prepared = saslprep(text)
    except InvalidArgument:
        return
    assert saslprep(prepared) == prepared


# -- cost -------------------------------------------------------------------------------------


def test_exchange_cost_at_4096_iterations():
    """A whole SCRAM-SHA-256 client exchange at i=4096 costs well under 50 ms."""
    started = time.perf_counter()
    for _ in range(10):
        mechanism = rfc7677()
        mechanism.initial_response()
        mechanism.respond(RFC7677[1])
        mechanism.respond(RFC7677[3])
    assert (time.perf_counter() - started) / 10 < 0.05
