"""The simple built-in mechanisms: PLAIN, LOGIN, CRAM-MD5, XOAUTH2 and OAUTHBEARER.

Strategy: each is a small state machine over a step counter. The constructor
takes the credentials (and the channel binding, unused here) so the class
itself is a :data:`MechanismFactory`; it validates everything, so a bad
credential fails before a byte is sent. Extra challenges raise
:class:`SASLError` instead of being answered again.
"""

from __future__ import annotations

import hmac
import json
from typing import TypeVar

from mailtransfer.protocol._errors import InvalidArgument, LocalProtocolError

from ._base import SASLError
from ._credentials import ChannelBinding, OAuth2, Password, check_int

__all__ = ["CramMD5", "Login", "OAuthBearer", "Plain", "XOAuth2"]

_C = TypeVar("_C", Password, OAuth2)


def require_credentials(credentials: object, kind: type[_C], mechanism: str) -> _C:
    """Return ``credentials`` if it is a ``kind``, else raise ``InvalidArgument`` naming both."""
    if not isinstance(credentials, kind):
        raise InvalidArgument(
            f"{mechanism} needs {kind.__name__} credentials, but got {type(credentials).__name__}"
        )
    return credentials


def saslname(name: str) -> str:
    """Escape a name for a GS2 header: ``=`` to ``=3D`` and ``,`` to ``=2C`` (RFC 5801)."""
    return name.replace("=", "=3D").replace(",", "=2C")


def _no_controls(value: str, argument: str, mechanism: str) -> str:
    # \x01 separates XOAUTH2/OAUTHBEARER fields (RFC 7628 section 3.1): a control character
    # in a field could end it early and smuggle in another.
    if any(char < " " or char == "\x7f" for char in value):
        raise InvalidArgument(f"{mechanism} {argument} must not contain control characters")
    return value


class _Steps:
    """Shared bookkeeping: single use, a step counter, and a repr without secrets."""

    __slots__ = ("_started", "_step", "server_error")
    name = "X-UNSET"
    requires_tls = True

    def __init__(self) -> None:
        self._started = False
        self._step = 0
        self.server_error: dict[str, object] | None = None

    def _start(self) -> None:
        if self._started:
            raise LocalProtocolError(
                f"this {self.name} mechanism was already used; it is single-use"
            )
        self._started = True

    def _next_step(self, steps: int) -> int:
        if not self._started:
            raise LocalProtocolError(f"call initial_response() before respond() ({self.name})")
        self._step += 1
        if self._step > steps:
            allowed = {0: "no challenges", 1: "one challenge"}.get(steps, f"{steps} challenges")
            raise SASLError(
                f"the server sent {self.name} challenge {self._step},"
                f" but {self.name} answers {allowed}",
                mechanism=self.name,
            )
        return self._step

    def initial_response(self) -> bytes | None:
        """Start the exchange; these mechanisms either send first or wait for a challenge."""
        self._start()
        return None

    def respond(self, challenge: bytes) -> bytes:
        """Refuse any challenge: the mechanism sends everything up front."""
        self._next_step(0)
        return b""  # pragma: no cover - _next_step(0) always raises

    def verify_success(self, data: bytes | None) -> None:
        """Accept success: these mechanisms do not authenticate the server."""
        return None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} [step {self._step}]>"


class Plain(_Steps):
    """PLAIN (RFC 4616): ``authzid NUL username NUL password`` in the initial response.

    Args:
        credentials: a :class:`Password`.
        channel_binding: ignored.

    Raises:
        InvalidArgument: the credentials are not a :class:`Password`.
    """

    __slots__ = ("_message",)
    name = "PLAIN"

    def __init__(
        self, credentials: Password, channel_binding: ChannelBinding | None = None
    ) -> None:
        super().__init__()
        password = require_credentials(credentials, Password, self.name)
        # Password refuses NUL in every field, so these three cannot run into each other.
        fields = (password.authzid or "", password.username, password.password)
        self._message = "\x00".join(fields).encode("utf-8")

    def initial_response(self) -> bytes:
        """Return the whole PLAIN message."""
        self._start()
        return self._message


class Login(_Steps):
    """LOGIN (draft-murchison-sasl-login): the username, then the password, one per challenge.

    The server's prompts (usually ``Username:`` and ``Password:``) are not
    checked; the answer depends only on the step, as every client does it.

    Args:
        credentials: a :class:`Password`.
        channel_binding: ignored.

    Raises:
        InvalidArgument: the credentials are not a :class:`Password`.
    """

    __slots__ = ("_password", "_username")
    name = "LOGIN"

    def __init__(
        self, credentials: Password, channel_binding: ChannelBinding | None = None
    ) -> None:
        super().__init__()
        password = require_credentials(credentials, Password, self.name)
        self._username = password.username.encode("utf-8")
        self._password = password.password.encode("utf-8")

    def respond(self, challenge: bytes) -> bytes:
        """Send the username on the first challenge and the password on the second."""
        return self._username if self._next_step(2) == 1 else self._password


class CramMD5(_Steps):
    """CRAM-MD5 (RFC 2195): ``username SP hex(HMAC-MD5(password, challenge))``.

    The password never crosses the wire, but the server is not authenticated
    and the digest can be attacked offline, so prefer SCRAM.

    Args:
        credentials: a :class:`Password`.
        channel_binding: ignored.

    Raises:
        InvalidArgument: the credentials are not a :class:`Password`.
    """

    __slots__ = ("_password", "_username")
    name = "CRAM-MD5"
    requires_tls = False

    def __init__(
        self, credentials: Password, channel_binding: ChannelBinding | None = None
    ) -> None:
        super().__init__()
        password = require_credentials(credentials, Password, self.name)
        self._username = password.username.encode("utf-8")
        self._password = password.password.encode("utf-8")

    def respond(self, challenge: bytes) -> bytes:
        """Answer the server's timestamp challenge with the keyed digest."""
        self._next_step(1)
        if not challenge:
            raise SASLError("the CRAM-MD5 challenge is empty", mechanism=self.name)
        digest = hmac.new(self._password, challenge, "md5").hexdigest()
        return self._username + b" " + digest.encode("ascii")


def _parse_server_error(challenge: bytes) -> dict[str, object]:
    try:
        value = json.loads(challenge.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


class XOAuth2(_Steps):
    """XOAUTH2 (Google and Microsoft): ``user=... ^A auth=Bearer <token> ^A ^A``.

    The token provider is called once, here in the constructor. When the server
    refuses the token it sends a base64 JSON error as a challenge; this
    mechanism stores it in :attr:`server_error` and answers with an empty
    response, after which the server replies 535.

    Args:
        credentials: an :class:`OAuth2`.
        channel_binding: ignored.

    Raises:
        InvalidArgument: the credentials are not :class:`OAuth2`, the username
            contains a control character, or the token is malformed.
        UsageError: the token provider is asynchronous (see :meth:`OAuth2.aresolve`).
    """

    __slots__ = ("_message",)
    name = "XOAUTH2"

    def __init__(self, credentials: OAuth2, channel_binding: ChannelBinding | None = None) -> None:
        super().__init__()
        oauth = require_credentials(credentials, OAuth2, self.name)
        user = _no_controls(oauth.username, "username", self.name)
        token = oauth.get_token()
        self._message = f"user={user}\x01auth=Bearer {token}\x01\x01".encode()

    def initial_response(self) -> bytes:
        """Return the whole XOAUTH2 message."""
        self._start()
        return self._message

    def respond(self, challenge: bytes) -> bytes:
        """Record the server's error and send the empty response it expects."""
        self._next_step(1)
        self.server_error = _parse_server_error(challenge)
        return b""


class OAuthBearer(_Steps):
    """OAUTHBEARER (RFC 7628): a GS2 header with ``a=<user>``, then key=value pairs.

    On a refused token the server sends a JSON error as a challenge (RFC 7628
    section 3.2.2); this mechanism stores it in :attr:`server_error` and sends
    the single ``\\x01`` the RFC requires (section 3.2.3), after which the
    server fails the exchange.

    Args:
        credentials: an :class:`OAuth2`.
        channel_binding: ignored: OAUTHBEARER defines no channel binding.
        host: the server name the client connected to, sent as ``host=``.
        port: the port the client connected to, sent as ``port=``.

    Raises:
        InvalidArgument: the credentials are not :class:`OAuth2`, a field
            contains a control character, ``port`` is out of range, or the token
            is malformed.
        UsageError: the token provider is asynchronous (see :meth:`OAuth2.aresolve`).
    """

    __slots__ = ("_message",)
    name = "OAUTHBEARER"

    def __init__(
        self,
        credentials: OAuth2,
        channel_binding: ChannelBinding | None = None,
        *,
        host: str | None = None,
        port: int | None = None,
    ) -> None:
        super().__init__()
        oauth = require_credentials(credentials, OAuth2, self.name)
        user = saslname(_no_controls(oauth.username, "username", self.name))
        pairs = []
        if host is not None:
            pairs.append(f"host={_no_controls(host, 'host', self.name)}")
        if port is not None:
            pairs.append(f"port={check_int(port, 'port', low=1, high=65535)}")
        pairs.append(f"auth=Bearer {oauth.get_token()}")
        # RFC 7628 section 3.1: gs2-header, kvsep, then each kvpair followed by kvsep, then kvsep.
        body = "".join(pair + "\x01" for pair in pairs)
        self._message = f"n,a={user},\x01{body}\x01".encode()

    def initial_response(self) -> bytes:
        """Return the whole OAUTHBEARER client response."""
        self._start()
        return self._message

    def respond(self, challenge: bytes) -> bytes:
        """Record the server's error and send the ``\\x01`` response (RFC 7628 section 3.2.3)."""
        self._next_step(1)
        self.server_error = _parse_server_error(challenge)
        return b"\x01"
