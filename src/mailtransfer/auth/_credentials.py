"""What the client authenticates with: credentials, and the TLS channel binding.

All are frozen values whose repr never shows a secret.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from mailtransfer.protocol._errors import InvalidArgument, UsageError

__all__ = ["REDACTED", "ChannelBinding", "OAuth2", "Password", "TokenProvider", "check_int"]

REDACTED = "****"
"""What reprs and transcripts show instead of a secret."""


TokenProvider = Callable[[], "str | Awaitable[str]"]
"""A zero-argument callable returning an OAuth 2.0 access token, or an awaitable of one."""


def check_int(value: object, argument: str, *, low: int, high: int | None = None) -> int:
    """Return ``value`` if it is an int (not a bool) from ``low`` to ``high``, else raise.

    Raises:
        InvalidArgument: naming ``argument``, the range and what arrived.
    """
    in_range = (
        isinstance(value, int)
        and not isinstance(value, bool)
        and low <= value
        and (high is None or value <= high)
    )
    if not in_range:
        expected = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise InvalidArgument(f"{argument} must be an int {expected}, but got {value!r}")
    return value  # type: ignore[return-value]


ChannelBindingType = Literal["tls-unique", "tls-exporter", "tls-server-end-point"]
_CHANNEL_BINDING_TYPES = ("tls-unique", "tls-exporter", "tls-server-end-point")


@dataclass(frozen=True, slots=True)
class ChannelBinding:
    """Data that ties a SASL exchange to the TLS connection it runs in (RFC 5056, RFC 5929).

    The TLS layer builds it. Use ``tls-exporter`` on TLS 1.3 (RFC 9266), where
    ``tls-unique`` is undefined. The repr shows the length of ``data``, not the bytes.

    Example:
        >>> ChannelBinding("tls-exporter", bytes(32))
        ChannelBinding(kind='tls-exporter', data=<32 bytes>)

    Raises:
        InvalidArgument: ``kind`` is not one of the three names, or ``data`` is
            not non-empty bytes.
    """

    kind: ChannelBindingType
    data: bytes

    def __post_init__(self) -> None:
        kind: object = self.kind  # checked at run time: callers may not be type-checked
        data: object = self.data
        if kind not in _CHANNEL_BINDING_TYPES:
            raise InvalidArgument(
                f"kind must be one of {', '.join(_CHANNEL_BINDING_TYPES)}, but got {kind!r}"
            )
        if not isinstance(data, bytes) or not data:
            raise InvalidArgument(
                f"data must be non-empty bytes, but got {type(data).__name__}"
                f" of length {len(data) if isinstance(data, (bytes, str)) else '?'}"
            )

    def __repr__(self) -> str:
        return f"ChannelBinding(kind={self.kind!r}, data=<{len(self.data)} bytes>)"


def _check_text(value: object, argument: str) -> str:
    if not isinstance(value, str):
        raise InvalidArgument(f"{argument} must be str, but got {type(value).__name__}")
    if not value:
        raise InvalidArgument(f"{argument} must not be empty")
    # NUL ends a field in PLAIN (RFC 4616) and SASLprep prohibits it (RFC 4013 section 2.3):
    # a NUL can only truncate or forge a field, so refuse it in every mechanism.
    if "\x00" in value:
        raise InvalidArgument(f"{argument} must not contain NUL (U+0000)")
    return value


@dataclass(frozen=True, slots=True)
class Password:
    """A username and password, for SCRAM, CRAM-MD5, PLAIN and LOGIN.

    Example:
        >>> Password("alice", "s3cret")
        Password(username='alice', password='****')

    Args:
        username: the authentication identity.
        password: the secret; never shown by ``repr()`` or ``str()``.
        authzid: the identity to act as, when it differs from ``username``
            (sent by PLAIN and SCRAM; most servers need none).

    Raises:
        InvalidArgument: a field is not a str, is empty, or contains NUL.
    """

    username: str
    password: str
    authzid: str | None = None

    def __post_init__(self) -> None:
        _check_text(self.username, "username")
        _check_text(self.password, "password")
        if self.authzid is not None:
            _check_text(self.authzid, "authzid")

    def __repr__(self) -> str:
        extra = "" if self.authzid is None else f", authzid={self.authzid!r}"
        return f"Password(username={self.username!r}, password={REDACTED!r}{extra})"


@dataclass(frozen=True, slots=True)
class _StaticToken:
    token: str

    def __call__(self) -> str:
        return self.token

    def __repr__(self) -> str:
        return REDACTED


@dataclass(frozen=True, slots=True)
class OAuth2:
    """A username and an OAuth 2.0 access-token source, for OAUTHBEARER and XOAUTH2.

    The provider is called each time a mechanism is created, so it should hand
    out a fresh token when the last one has expired. When the server rejects a
    token (see :attr:`Mechanism.server_error`), the session calls it once more
    and retries.

    Example:
        >>> OAuth2.static("alice@example.com", "ya29.a0Af...")
        OAuth2(username='alice@example.com', token_provider=****)

    Args:
        username: the mailbox the token was issued for.
        token_provider: a zero-argument callable returning the token, or an async
            callable (only the asyncio client can await it: see :meth:`aresolve`).

    Raises:
        InvalidArgument: ``username`` is not a non-empty str without NUL, or
            ``token_provider`` is not callable.
    """

    username: str
    token_provider: TokenProvider

    def __post_init__(self) -> None:
        _check_text(self.username, "username")
        if not callable(self.token_provider):
            raise InvalidArgument(
                f"token_provider must be callable, but got {type(self.token_provider).__name__}"
            )

    def __repr__(self) -> str:
        # A provider's own repr may show what it closes over (a refresh token in a partial).
        return f"OAuth2(username={self.username!r}, token_provider={REDACTED})"

    @classmethod
    def static(cls, username: str, token: str) -> OAuth2:
        """Credentials with a fixed token, for scripts and tests.

        Raises:
            InvalidArgument: the token is not printable ASCII without spaces.
        """
        return cls(username, _StaticToken(check_token(token)))

    def get_token(self) -> str:
        """Call the provider and return its token.

        Raises:
            UsageError: the provider is asynchronous; await :meth:`aresolve` first.
            InvalidArgument: the token is not printable ASCII without spaces.
        """
        result = self.token_provider()
        if inspect.isawaitable(result):
            if inspect.iscoroutine(result):
                result.close()  # never awaited: close it so no RuntimeWarning follows
            raise UsageError(
                "token_provider returned an awaitable; use the asyncio client,"
                " or call `await credentials.aresolve()` first"
            )
        return check_token(result)

    async def aresolve(self) -> OAuth2:
        """Await the provider (sync or async) and return credentials holding that token.

        The asyncio session calls this before :func:`choose`, since mechanisms
        are created synchronously.

        Raises:
            InvalidArgument: the token is not printable ASCII without spaces.
        """
        result = self.token_provider()
        if inspect.isawaitable(result):
            result = await result
        return OAuth2(self.username, _StaticToken(check_token(result)))


def check_token(token: object) -> str:
    """Return ``token`` if it can go on the wire as a bearer token.

    RFC 6750 section 2.1 limits tokens to a base64-like alphabet; this accepts
    any printable ASCII but no space or control character, since either would
    break the ``auth=Bearer <token>`` field. The message never quotes the token.

    Raises:
        InvalidArgument: not a str, empty, or outside printable ASCII.
    """
    if not isinstance(token, str):
        raise InvalidArgument(f"the OAuth2 token must be str, but got {type(token).__name__}")
    if not (token.isascii() and token.isprintable()) or not token or " " in token:
        raise InvalidArgument(
            "the OAuth2 token must be non-empty printable ASCII without spaces,"
            f" but got {len(token)} characters that are not"
        )
    return token
