"""SCRAM (RFC 5802, RFC 7677) with and without channel binding, and SASLprep (RFC 4013).

Strategy: the client sends ``gs2-header client-first-bare``; the server answers
with its nonce, salt and iteration count; the client proves it knows the
salted password; the server proves it knows it too, with ``v=``. Success
without that proof is refused (:class:`ServerVerificationFailed`): it is what
an impostor who does not know the password would send. Hashing is hashlib's
PBKDF2 and hmac.digest, both in C.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import re
import secrets
import stringprep
import unicodedata
from typing import Literal

from mailtransfer.protocol._errors import InvalidArgument, LocalProtocolError

from ._base import SASLError, SCRAMServerError, ServerVerificationFailed
from ._credentials import ChannelBinding, Password, check_int
from ._mechanisms import require_credentials, saslname

__all__ = ["Scram", "saslprep"]

DEFAULT_MIN_ITERATIONS = 4096
"""RFC 7677 section 4: the iteration count SHOULD be at least 4096."""

DEFAULT_MAX_ITERATIONS = 1_000_000
"""A hostile server could ask for 2**31 iterations and stall the client for minutes (THREATS S9)."""

_HASHES = {"SHA-1": "sha1", "SHA-256": "sha256"}

# RFC 5802 section 7: printable = %x21-2B / %x2D-7E (no comma); posit-number = %x31-39 *DIGIT.
_PRINTABLE = re.compile(r"[\x21-\x2b\x2d-\x7e]+")
_POSITIVE = re.compile(r"[1-9][0-9]{0,9}")

# RFC 3454 tables checked by SASLprep (RFC 4013 section 2.3): C.1.2, C.2.1, C.2.2, C.3-C.9.
_PROHIBITED = (
    stringprep.in_table_c12,
    stringprep.in_table_c21_c22,
    stringprep.in_table_c3,
    stringprep.in_table_c4,
    stringprep.in_table_c5,
    stringprep.in_table_c6,
    stringprep.in_table_c7,
    stringprep.in_table_c8,
    stringprep.in_table_c9,
)


def saslprep(text: str, *, allow_unassigned: bool = False) -> str:
    """Prepare a username or password with SASLprep (RFC 4013), using the stdlib stringprep tables.

    Example:
        >>> saslprep("I\\u00adX")  # SOFT HYPHEN is mapped to nothing
        'IX'
        >>> saslprep("\\u2168")  # ROMAN NUMERAL NINE, NFKC
        'IX'

    Args:
        text: the string to prepare.
        allow_unassigned: True for "query" strings (SCRAM usernames), False for
            "stored" strings (SCRAM passwords), RFC 3454 section 7.

    Returns:
        The prepared string (possibly empty).

    Raises:
        InvalidArgument: the string contains a prohibited character, or breaks the
            bidirectional rule. The message gives the position, never the text.
    """
    if text.isascii() and text.isprintable():
        return text  # every step is the identity on printable ASCII
    # 2.1 Mapping: non-ASCII spaces become SPACE, "commonly mapped to nothing" characters go.
    # U+200B is in both tables; like libidn and PostgreSQL, C.1.2 is tested first.
    mapped = "".join(
        " " if stringprep.in_table_c12(char) else char
        for char in text
        if stringprep.in_table_c12(char) or not stringprep.in_table_b1(char)
    )
    # 2.2 Normalization: NFKC, with the Unicode 3.2 data that stringprep is defined on.
    prepared = unicodedata.ucd_3_2_0.normalize("NFKC", mapped)
    for position, char in enumerate(prepared):
        # 2.3 Prohibited output; 2.5 unassigned code points (stored strings only).
        if any(table(char) for table in _PROHIBITED) or (
            not allow_unassigned and stringprep.in_table_a1(char)
        ):
            # The message must not help guess a password: position only, not the character.
            raise InvalidArgument(
                f"SASLprep (RFC 4013) prohibits the character at position {position}"
                " (a control, private-use, non-character, unassigned or similar code point)"
            )
    # 2.4 Bidi (RFC 3454 section 6): with any RandALCat character, no LCat character,
    # and a RandALCat character first and last.
    if any(stringprep.in_table_d1(char) for char in prepared) and (
        any(stringprep.in_table_d2(char) for char in prepared)
        or not stringprep.in_table_d1(prepared[0])
        or not stringprep.in_table_d1(prepared[-1])
    ):
        raise InvalidArgument("SASLprep (RFC 4013) refuses this mix of right-to-left text")
    return prepared


class _State(enum.Enum):
    READY = "ready"
    SENT_FIRST = "sent-client-first"
    SENT_FINAL = "sent-client-final"
    VERIFIED = "server-verified"


class Scram:
    """SCRAM-SHA-1 / SCRAM-SHA-256, optionally ``-PLUS`` with channel binding (RFC 5802, 7677).

    Args:
        credentials: a :class:`Password`.
        channel_binding: the connection's binding. Required with ``plus=True``;
            without ``-PLUS`` its presence makes the client send ``y`` (RFC 5802
            section 6), so a server that does support channel binding detects a
            downgrade.
        algorithm: ``"SHA-256"`` (default) or ``"SHA-1"``.
        plus: use channel binding (the ``-PLUS`` variant).
        client_nonce: a fixed nonce, for tests only; by default 24 random bytes
            from :mod:`secrets`.
        min_iterations: refuse a smaller server iteration count.
        max_iterations: refuse a larger one (a stall attack).

    Raises:
        InvalidArgument: bad credentials (not a :class:`Password`, or refused by
            SASLprep), no channel binding with ``plus=True``, or a bad option.
    """

    __slots__ = (
        "_auth_message",
        "_client_first_bare",
        "_gs2_header",
        "_gs2_header_c",
        "_hash",
        "_max_iterations",
        "_min_iterations",
        "_nonce",
        "_password",
        "_server_signature",
        "_state",
        "name",
        "server_error",
    )
    requires_tls = False

    def __init__(
        self,
        credentials: Password,
        channel_binding: ChannelBinding | None = None,
        *,
        algorithm: Literal["SHA-1", "SHA-256"] = "SHA-256",
        plus: bool = False,
        client_nonce: str | None = None,
        min_iterations: int = DEFAULT_MIN_ITERATIONS,
        max_iterations: int = DEFAULT_MAX_ITERATIONS,
    ) -> None:
        if algorithm not in _HASHES:
            raise InvalidArgument(f"algorithm must be 'SHA-1' or 'SHA-256', but got {algorithm!r}")
        self.name = f"SCRAM-{algorithm}{'-PLUS' if plus else ''}"
        self.server_error: dict[str, object] | None = None
        self._hash = _HASHES[algorithm]
        password = require_credentials(credentials, Password, self.name)
        self._min_iterations = check_int(min_iterations, "min_iterations", low=1)
        self._max_iterations = check_int(max_iterations, "max_iterations", low=min_iterations)
        # RFC 5802 section 5.1: the username is a "query" string, the password (section 2.2)
        # a "stored" one.
        username = saslprep(password.username, allow_unassigned=True)
        if not username:
            raise InvalidArgument(f"{self.name} username is empty after SASLprep")
        self._password = saslprep(password.password).encode("utf-8")
        if plus:
            if channel_binding is None:
                raise InvalidArgument(f"{self.name} needs channel_binding, but got None")
            flag = f"p={channel_binding.kind}"
            binding_data = channel_binding.data
        else:
            flag = "n" if channel_binding is None else "y"
            binding_data = b""
        authzid = "" if password.authzid is None else "a=" + saslname(saslprep(password.authzid))
        self._gs2_header = f"{flag},{authzid},".encode()
        # c= carries the GS2 header and, for -PLUS, the binding data (RFC 5802 section 7).
        self._gs2_header_c = base64.b64encode(self._gs2_header + binding_data).decode("ascii")
        if client_nonce is None:
            client_nonce = secrets.token_urlsafe(24)
        elif not _PRINTABLE.fullmatch(str(client_nonce)):
            raise InvalidArgument("client_nonce must be printable ASCII without ','")
        self._nonce = client_nonce
        self._client_first_bare = f"n={saslname(username)},r={client_nonce}".encode()
        self._auth_message = b""
        self._server_signature = b""
        self._state = _State.READY

    def __repr__(self) -> str:
        return f"<Scram {self.name} [{self._state.value}]>"

    def initial_response(self) -> bytes:
        """Return the client-first-message."""
        if self._state is not _State.READY:
            raise LocalProtocolError(
                f"this {self.name} mechanism was already used; it is single-use"
            )
        self._state = _State.SENT_FIRST
        return self._gs2_header + self._client_first_bare

    def respond(self, challenge: bytes) -> bytes:
        """Answer the server-first-message with the proof; accept the server-final-message.

        Raises:
            SASLError: malformed message, foreign nonce, mandatory extension or
                iteration count out of range, or a challenge after the last step.
            SCRAMServerError: the server-final-message is an ``e=`` error.
            ServerVerificationFailed: the server signature is wrong.
        """
        if self._state is _State.SENT_FIRST:
            return self._client_final(challenge)
        if self._state is _State.SENT_FINAL:
            self._check_server_final(challenge)
            return b""  # RFC 4954: SMTP has no "data with success", so the client answers empty
        raise SASLError(
            f"unexpected {self.name} challenge after the exchange ({self._state.value})",
            mechanism=self.name,
        )

    def verify_success(self, data: bytes | None) -> None:
        """Refuse success unless the server proved it knows the password.

        Raises:
            ServerVerificationFailed: no valid server signature was received.
        """
        if data is not None and self._state is _State.SENT_FINAL:
            self._check_server_final(data)
        if self._state is not _State.VERIFIED:
            raise ServerVerificationFailed(
                f"the server reported {self.name} success without proving that it knows the"
                " password (no server signature); it may be an impostor",
                mechanism=self.name,
            )

    def _fail(self, problem: str) -> SASLError:
        return SASLError(f"the {self.name} server-first-message {problem}", mechanism=self.name)

    def _client_final(self, server_first: bytes) -> bytes:
        try:
            text = server_first.decode("utf-8")
        except UnicodeDecodeError:
            raise self._fail("is not UTF-8") from None
        parts = text.split(",")
        if parts[0].startswith("m="):
            # RFC 5802 section 5.1: an unknown mandatory extension fails authentication.
            raise self._fail("asks for a mandatory extension (m=) this client does not support")
        if len(parts) < 3 or [part[:2] for part in parts[:3]] != ["r=", "s=", "i="]:
            raise self._fail("does not start with r=, s= and i=")
        nonce, salt_text, count_text = (part[2:] for part in parts[:3])
        if not _PRINTABLE.fullmatch(nonce) or not nonce.startswith(self._nonce):
            raise self._fail("carries a nonce that does not extend the client nonce")
        try:
            salt = base64.b64decode(salt_text.encode("ascii"), validate=True)
        except (UnicodeEncodeError, binascii.Error):
            raise self._fail("carries a salt that is not base64") from None
        if not salt:
            raise self._fail("carries an empty salt")
        if not _POSITIVE.fullmatch(count_text):
            raise self._fail("carries an iteration count that is not a positive number")
        iterations = int(count_text)
        if not self._min_iterations <= iterations <= self._max_iterations:
            raise self._fail(
                f"asks for {iterations} iterations, outside the accepted range"
                f" {self._min_iterations} to {self._max_iterations} (RFC 7677 asks for at"
                " least 4096; pass min_iterations= or max_iterations= to change the range)"
            )
        final_without_proof = f"c={self._gs2_header_c},r={nonce}".encode("ascii")
        self._auth_message = b",".join((self._client_first_bare, server_first, final_without_proof))
        salted = hashlib.pbkdf2_hmac(self._hash, self._password, salt, iterations)
        client_key = hmac.digest(salted, b"Client Key", self._hash)
        stored_key = hashlib.new(self._hash, client_key).digest()
        client_signature = hmac.digest(stored_key, self._auth_message, self._hash)
        proof = bytes(a ^ b for a, b in zip(client_key, client_signature, strict=True))
        server_key = hmac.digest(salted, b"Server Key", self._hash)
        self._server_signature = hmac.digest(server_key, self._auth_message, self._hash)
        self._state = _State.SENT_FINAL
        return final_without_proof + b",p=" + base64.b64encode(proof)

    def _check_server_final(self, server_final: bytes) -> None:
        first = server_final.split(b",", 1)[0]
        if first.startswith(b"e="):
            error = first[2:].decode("utf-8", "replace")
            raise SCRAMServerError(
                f"the server refused the {self.name} exchange: {error}",
                mechanism=self.name,
                error=error,
            )
        if not first.startswith(b"v="):
            raise ServerVerificationFailed(
                f"the {self.name} server-final-message has no server signature (v=)",
                mechanism=self.name,
            )
        try:
            signature = base64.b64decode(first[2:], validate=True)
        except binascii.Error:
            signature = b""
        if not hmac.compare_digest(signature, self._server_signature):
            raise ServerVerificationFailed(
                f"the {self.name} server signature does not match: the server does not know"
                " the password, or someone is between client and server",
                mechanism=self.name,
            )
        self._state = _State.VERIFIED
