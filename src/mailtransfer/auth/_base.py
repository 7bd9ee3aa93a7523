"""The SASL seam: the mechanism protocol, the errors, redaction and the exchange driver.

Strategy: a :class:`Mechanism` knows only bytes. It is handed the server's
challenges already base64-decoded and returns raw responses. Everything
SMTP-specific (base64, the ``AUTH`` line and its 512-octet limit, the ``*``
cancellation, the cap on round trips, redaction for the transcript) lives in
:class:`AuthExchange`, which the session drives with replies and which hands
back the lines to write. So a mechanism is written once, knows nothing of
sockets or of SMTP, and every mechanism, built-in or not, gets the same
protections.
"""

from __future__ import annotations

import base64
import binascii
import enum
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from mailtransfer.protocol._errors import (
    InvalidArgument,
    LocalProtocolError,
    MailTransferError,
    RemoteProtocolError,
    Stage,
)

from ._credentials import REDACTED, ChannelBinding, check_int

if TYPE_CHECKING:
    from mailtransfer.protocol._reply import Reply

__all__ = [
    "MAX_ROUND_TRIPS",
    "AuthExchange",
    "AuthLine",
    "AuthState",
    "Mechanism",
    "MechanismFactory",
    "SASLError",
    "SCRAMServerError",
    "ServerVerificationFailed",
    "check_mechanism_name",
    "redact_auth_line",
]

MAX_ROUND_TRIPS = 10
"""How many ``334`` challenges one exchange accepts (THREATS S9, the endless-334 attack)."""

# RFC 5321 section 4.5.3.1.4: a command line is at most 512 octets, CRLF included.
_MAX_COMMAND_LINE = 512

# RFC 4422 section 3.1: sasl-mech = 1*20mech-char; mech-char = UPPER-ALPHA / DIGIT / "-" / "_".
_MECHANISM_NAME = re.compile(r"[A-Z0-9_-]{1,20}")

# "AUTH", the mechanism name, then anything at all: the rest is masked.
_AUTH_WITH_ARGUMENT = re.compile(r"(\s*AUTH\s+\S+)\s+\S.*", re.IGNORECASE | re.DOTALL)


# -- errors -----------------------------------------------------------------------------------
# InsecureAuthRefused and NoSuitableMechanism live in mailtransfer.errors. The three SASL errors
# below are raised only by this package; they are defined here until errors.py takes them in.


class SASLError(RemoteProtocolError):
    """The server's side of a SASL exchange broke the mechanism's rules.

    Examples: a challenge that is not base64, more challenges than the
    mechanism has steps, a SCRAM nonce that does not extend ours. The message
    names the mechanism and never quotes a credential.

    Attributes:
        mechanism: the SASL mechanism name, e.g. ``"SCRAM-SHA-256"``.
    """

    def __init__(self, message: str, *, mechanism: str) -> None:
        super().__init__(message, stage=Stage.AUTH)
        self.mechanism = mechanism


class ServerVerificationFailed(SASLError):
    """The server did not prove that it knows the password (SCRAM ``v=`` wrong or missing).

    Treat it as an attack: someone between client and server may be
    impersonating the server. The connection must be closed.
    """


class SCRAMServerError(SASLError):
    """The server ended a SCRAM exchange with ``e=`` (RFC 5802 section 7).

    Attributes:
        error: the server-error-value, e.g. ``"invalid-proof"`` or ``"other-error"``.
    """

    def __init__(self, message: str, *, mechanism: str, error: str) -> None:
        super().__init__(message, mechanism=mechanism)
        self.error = error


# -- values and the mechanism protocol -----------------------------------------------------------


class Mechanism(Protocol):
    """One SASL client exchange (RFC 4422), without I/O. An instance is single-use.

    The driver (normally :class:`AuthExchange`) calls :meth:`initial_response`
    exactly once, then :meth:`respond` once per server challenge, then
    :meth:`verify_success` when the server reports success.

    Plain class attributes satisfy the three properties: ``name = "X-MINE"``,
    ``requires_tls = True``, ``server_error = None``.
    """

    @property
    def name(self) -> str:
        """The registered SASL name, e.g. ``"SCRAM-SHA-256"``."""
        ...

    @property
    def requires_tls(self) -> bool:
        """Whether an eavesdropper learns the secret: PLAIN, LOGIN, XOAUTH2, OAUTHBEARER."""
        ...

    @property
    def server_error(self) -> dict[str, object] | None:
        """The JSON error an OAuth 2.0 server sent instead of success; None when there was none.

        ``{"status": "401", ...}`` (XOAUTH2) or ``{"status": "invalid_token", ...}``
        (OAUTHBEARER) means the token was refused: the session may fetch a new
        one and retry once. An empty dict means the error was not readable JSON.
        """
        ...

    def initial_response(self) -> bytes | None:
        """Return the client's first message, or None to wait for the server's first challenge.

        Returns:
            The raw (not base64) initial response; ``b""`` is a present but empty
            response. None means the server speaks first.
        """
        ...

    def respond(self, challenge: bytes) -> bytes:
        """Answer one server challenge.

        Args:
            challenge: the decoded challenge (the ``334`` text, base64-decoded).

        Returns:
            The raw response; the driver base64-encodes it.

        Raises:
            SASLError: the challenge is malformed or unexpected at this step.
        """
        ...

    def verify_success(self, data: bytes | None) -> None:
        """Check that success is believable; called when the server reports success.

        Args:
            data: additional data sent with success. SMTP has none (RFC 4954
                section 4), so the SMTP driver passes None.

        Raises:
            ServerVerificationFailed: the mechanism authenticates the server and
                the server has not proved itself.
        """
        ...


MechanismFactory = Callable[[Any, "ChannelBinding | None"], Mechanism]
"""Builds a mechanism from credentials and the connection's channel binding (or None).

Credentials are typed ``Any`` because each factory accepts its own kind;
the registry records which kinds, and each built-in checks at run time.
"""


def check_mechanism_name(name: object) -> str:
    """Return ``name`` if it is a valid SASL mechanism name (RFC 4422 section 3.1).

    Raises:
        InvalidArgument: ``name`` is not 1 to 20 characters of ``A-Z 0-9 - _``.
    """
    if not isinstance(name, str) or _MECHANISM_NAME.fullmatch(name) is None:
        raise InvalidArgument(
            f"mechanism name must be 1 to 20 characters of A-Z, 0-9, '-' and '_', but got {name!r}"
        )
    return name


# -- redaction ------------------------------------------------------------------------------------


def redact_auth_line(line: str) -> str:
    """Mask everything after the mechanism name in an ``AUTH`` command line.

    Lines that are not ``AUTH`` commands, or carry no argument after the
    mechanism, come back unchanged. A trailing CRLF or LF is kept.

    Example:
        >>> redact_auth_line("AUTH PLAIN AHUAcA==\\r\\n")
        'AUTH PLAIN ****\\r\\n'
        >>> redact_auth_line("MAIL FROM:<a@example.com>")
        'MAIL FROM:<a@example.com>'

    Args:
        line: one command line, with or without its line ending.

    Returns:
        The line as it may appear in logs and transcripts.
    """
    ending = ""
    body = line
    if body.endswith("\r\n"):
        body, ending = body[:-2], "\r\n"
    elif body.endswith("\n"):
        body, ending = body[:-1], "\n"
    match = _AUTH_WITH_ARGUMENT.fullmatch(body)
    if match is None:
        return line
    return f"{match.group(1)} {REDACTED}{ending}"


@dataclass(frozen=True, slots=True)
class AuthLine:
    """A line the session must write during AUTH, with its redacted form for the transcript.

    Attributes:
        text: the line to send, without CRLF.
        secret: whether ``text`` carries credentials; :attr:`redacted` then masks it.
    """

    text: str
    secret: bool

    @property
    def redacted(self) -> str:
        """The form that may be logged: the ``AUTH`` line with its argument masked, or ``****``."""
        if not self.secret:
            return self.text
        if self.text.upper().startswith("AUTH "):
            return redact_auth_line(self.text)
        return REDACTED

    def to_bytes(self) -> bytes:
        """Return the bytes to write: ``text`` in ASCII followed by CRLF."""
        return self.text.encode("ascii") + b"\r\n"

    def __repr__(self) -> str:
        return f"AuthLine({self.redacted!r})"


# -- the exchange driver ---------------------------------------------------------------------


class AuthState(enum.Enum):
    """Where an :class:`AuthExchange` stands."""

    READY = "ready"
    """Created; :meth:`AuthExchange.start` not called yet."""
    IN_PROGRESS = "in-progress"
    """``AUTH`` sent; every line written now is secret."""
    CANCELLING = "cancelling"
    """``*`` sent after a mechanism error; the next reply ends the exchange with that error."""
    SUCCEEDED = "succeeded"
    """The server answered 235 and the mechanism accepted it."""
    FAILED = "failed"
    """The server refused (4xx/5xx), or the exchange raised."""


class AuthExchange:
    """Drives one :class:`Mechanism` through one SMTP ``AUTH`` exchange (RFC 4954), sans I/O.

    Example:
        A session flow uses it like this::

            exchange = AuthExchange(mechanism)
            write(exchange.start())
            while (line := exchange.receive(read_reply())) is not None:
                write(line)
            if exchange.state is AuthState.FAILED:
                ...  # map the last reply to an error; see mechanism.server_error

    Write ``line.to_bytes()`` to the wire and ``line.redacted`` to the
    transcript. After any exception the connection must be closed.

    Args:
        mechanism: a fresh mechanism, usually from :func:`choose`.
        max_round_trips: how many ``334`` challenges to answer before giving up.
    """

    __slots__ = (
        "_error",
        "_max_round_trips",
        "_mechanism",
        "_name",
        "_pending",
        "_round_trips",
        "_state",
    )

    def __init__(self, mechanism: Mechanism, *, max_round_trips: int = MAX_ROUND_TRIPS) -> None:
        # Read the name once: a property could return a checked name now and a CRLF later.
        self._name = check_mechanism_name(mechanism.name)
        self._max_round_trips = check_int(max_round_trips, "max_round_trips", low=1)
        self._mechanism = mechanism
        self._state = AuthState.READY
        self._round_trips = 0
        self._pending: bytes | None = None  # an initial response too long for the AUTH line
        self._error: MailTransferError | None = None

    @property
    def mechanism(self) -> Mechanism:
        """The mechanism being driven."""
        return self._mechanism

    @property
    def state(self) -> AuthState:
        """Where the exchange stands."""
        return self._state

    @property
    def in_progress(self) -> bool:
        """Whether lines written now are SASL continuations, to be masked in any trace."""
        return self._state in (AuthState.IN_PROGRESS, AuthState.CANCELLING)

    @property
    def round_trips(self) -> int:
        """How many challenges the server has sent so far."""
        return self._round_trips

    def __repr__(self) -> str:
        return f"<AuthExchange {self._name} [{self._state.value}, {self._round_trips} challenges]>"

    def start(self) -> AuthLine:
        """Return the ``AUTH`` command, with the initial response when it fits on the line.

        Raises:
            LocalProtocolError: the exchange was already started.
            InvalidArgument: the mechanism returned something other than bytes.
        """
        if self._state is not AuthState.READY:
            raise LocalProtocolError("this AuthExchange was already started; it is single-use")
        name = self._name
        initial = self._mechanism.initial_response()
        self._state = AuthState.IN_PROGRESS
        if initial is None:
            return AuthLine(f"AUTH {name}", secret=False)
        # RFC 4954 section 4: an empty initial response is sent as "=".
        encoded = _encode(initial, name) or "="
        line = f"AUTH {name} {encoded}"
        if len(line) + 2 > _MAX_COMMAND_LINE:
            # RFC 4954 section 4: too long for the command line, so send AUTH alone and
            # give the initial response in answer to the server's empty 334 challenge.
            self._pending = initial
            return AuthLine(f"AUTH {name}", secret=False)
        return AuthLine(line, secret=True)

    def receive(self, reply: Reply) -> AuthLine | None:
        """Take the server's reply; return the next line to write, or None when it is over.

        Args:
            reply: the server's reply to the last line written.

        Returns:
            The line to write next, or None once the server answered 235 (see
            :attr:`state`: SUCCEEDED) or refused with 4xx/5xx (FAILED).

        Raises:
            SASLError: the mechanism rejected a challenge, or the server sent
                more than ``max_round_trips`` of them; raised on the reply that
                follows the ``*`` cancellation.
            ServerVerificationFailed: the server said 235 without proving itself.
            RemoteProtocolError: the reply code makes no sense after ``AUTH``.
            LocalProtocolError: the exchange is not in progress.
        """
        if self._state is AuthState.CANCELLING:
            self._state = AuthState.FAILED
            error = self._error or SASLError("cancelled", mechanism=self._name)
            error.reply = reply
            raise error
        if self._state is not AuthState.IN_PROGRESS:
            raise LocalProtocolError(
                f"receive() needs an exchange in progress, but it is {self._state.value}"
            )
        if reply.code == 334:
            return self._challenge(reply)
        if reply.code == 235:
            self._state = AuthState.FAILED  # until the mechanism accepts the success
            self._mechanism.verify_success(None)
            self._state = AuthState.SUCCEEDED
            return None
        self._state = AuthState.FAILED
        if 400 <= reply.code < 600:
            return None
        raise RemoteProtocolError(
            f"expected 235, 334, 4xx or 5xx in answer to AUTH, but got {reply.code}",
            reply=reply,
            stage=Stage.AUTH,
        )

    def _challenge(self, reply: Reply) -> AuthLine:
        name = self._name
        self._round_trips += 1
        try:
            if self._round_trips > self._max_round_trips:
                raise SASLError(
                    f"the server sent more than {self._max_round_trips} {name} challenges",
                    mechanism=name,
                )
            challenge = _decode("".join(reply.lines).strip(" \t"), name)
            if self._pending is not None:
                if challenge:
                    raise SASLError(
                        f"expected an empty {name} challenge before the initial response,"
                        f" but got {len(challenge)} bytes",
                        mechanism=name,
                    )
                response, self._pending = self._pending, None
            else:
                response = self._mechanism.respond(challenge)
            return AuthLine(_encode(response, name), secret=True)
        except MailTransferError as exc:
            # RFC 4954 section 4: the client cancels with "*"; the server answers 501.
            self._error = exc
            self._state = AuthState.CANCELLING
            return AuthLine("*", secret=False)


def _encode(data: bytes, mechanism: str) -> str:
    if not isinstance(data, bytes):
        raise InvalidArgument(
            f"the {mechanism} mechanism must return bytes, but returned {type(data).__name__}"
        )
    return base64.b64encode(data).decode("ascii")


def _decode(text: str, mechanism: str) -> bytes:
    # RFC 4954 section 4: reject any character outside the base64 alphabet and misplaced padding.
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        raise SASLError(
            f"the server's {mechanism} challenge is not valid base64", mechanism=mechanism
        ) from None
