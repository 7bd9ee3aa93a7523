"""Reaching the mail server through a SOCKS5 or HTTP ``CONNECT`` proxy.

A :class:`Proxy` is a frozen value naming the proxy and, optionally, the
credentials it wants. The connection dials the proxy, asks it for a tunnel to
the mail server, and then speaks SMTP (and TLS) through that tunnel exactly as
it would directly: the proxy only ever sees TLS records when TLS is used.

Example:
    >>> Proxy.parse("socks5://alice:s3cret@proxy.example.net")
    Proxy('socks5://alice:****@proxy.example.net:1080')

Strategy: the value checks everything it will later put on the wire (host
name, user name, password) when it is built, so a bad proxy setting fails
before a byte is sent; the handshakes themselves live in
``mailtransfer._flows.proxy``.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from .auth._credentials import REDACTED, check_int
from .protocol._errors import InvalidArgument

__all__ = ["DEFAULT_SOCKS5_PORT", "Proxy", "ProxyScheme"]

DEFAULT_SOCKS5_PORT = 1080
"""The port a ``socks5://`` URL without one uses (IANA's ``socks`` port)."""

# A host name or address as it may stand in a URL authority and in SOCKS5's DOMAINNAME field:
# letters, digits and ". - _" for names, ":" and "%" (zone id) for IPv6 literals.
_HOST = re.compile(r"[A-Za-z0-9._:%-]{1,253}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# RFC 1929 section 2: ULEN and PLEN are one octet each, and at least 1.
_SOCKS5_FIELD_MAX = 255


class ProxyScheme(enum.Enum):
    """The kind of proxy, as the URL scheme names it."""

    SOCKS5 = "socks5"
    """SOCKS version 5 (RFC 1928), with optional user name and password (RFC 1929).

    The server's host name is sent to the proxy, which resolves it: ``socks5``
    and ``socks5h`` URLs mean the same here.
    """
    HTTP = "http"
    """An HTTP proxy that opens tunnels with ``CONNECT`` (RFC 9110 section 9.3.6)."""


_SCHEMES = {"socks5": ProxyScheme.SOCKS5, "socks5h": ProxyScheme.SOCKS5, "http": ProxyScheme.HTTP}


def _check_field(value: object, argument: str) -> str:
    # The message never quotes the value: it may be a password.
    if not isinstance(value, str):
        raise InvalidArgument(f"{argument} must be str or None, but got {type(value).__name__}")
    if _CONTROL.search(value):
        raise InvalidArgument(
            f"{argument} must not contain control characters (CR, LF, NUL, ...):"
            " they would inject into the proxy handshake"
        )
    return value


def check_proxy_host(host: object, argument: str = "host") -> str:
    """Return ``host`` without IPv6 brackets if it is a valid host name or address.

    Raises:
        InvalidArgument: ``host`` is not a str of 1 to 253 characters from
            ``A-Z a-z 0-9 . - _ : %`` (non-ASCII names must be given in IDNA form).
    """
    if not isinstance(host, str):
        raise InvalidArgument(f"{argument} must be str, but got {type(host).__name__}")
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not _HOST.fullmatch(bare):
        raise InvalidArgument(
            f"{argument} must be a host name or IP address of 1 to 253 characters from"
            f" A-Z, a-z, 0-9 and '.-_:%' (non-ASCII names in IDNA form), but got {host!r}"
        )
    return bare


@dataclass(frozen=True, slots=True, kw_only=True)
class Proxy:
    """A SOCKS5 or HTTP ``CONNECT`` proxy to reach the mail server through.

    Build one with :meth:`parse` or directly. The password never appears in
    ``repr()``, ``str()`` or error messages.

    Example:
        >>> Proxy(scheme=ProxyScheme.HTTP, host="10.0.0.8", port=3128)
        Proxy('http://10.0.0.8:3128')

    Attributes:
        scheme: SOCKS5 or HTTP.
        host: the proxy's host name or IP address (IPv6 without brackets).
        port: the proxy's port.
        username: the proxy user name, or None for a proxy without authentication.
        password: the proxy password; needs ``username``.

    Raises:
        InvalidArgument: a field is malformed. SOCKS5 credentials must each be 1 to
            255 UTF-8 bytes (RFC 1929); an HTTP user name must not contain ``:``
            (RFC 7617 section 2); no field may contain a control character.
    """

    scheme: ProxyScheme
    host: str
    port: int
    username: str | None = None
    password: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.scheme, ProxyScheme):
            raise InvalidArgument(
                f"scheme must be ProxyScheme.SOCKS5 or ProxyScheme.HTTP, but got {self.scheme!r}"
            )
        object.__setattr__(self, "host", check_proxy_host(self.host))
        check_int(self.port, "port", low=1, high=65535)
        if self.username is None:
            if self.password is not None:
                raise InvalidArgument("password was given without a username")
            return
        username = _check_field(self.username, "username")
        password = "" if self.password is None else _check_field(self.password, "password")
        if self.scheme is ProxyScheme.SOCKS5:
            for name, value in (("username", username), ("password", password)):
                size = len(value.encode("utf-8"))
                if not 1 <= size <= _SOCKS5_FIELD_MAX:
                    raise InvalidArgument(
                        f"a SOCKS5 {name} must be 1 to 255 bytes in UTF-8 (RFC 1929),"
                        f" but it is {size} bytes"
                    )
        elif ":" in username:
            raise InvalidArgument("an HTTP proxy username must not contain ':' (RFC 7617)")

    @classmethod
    def parse(cls, url: str) -> Proxy:
        """Build a proxy from a URL: ``socks5://[user:password@]host[:port]`` or ``http://...``.

        The user name and password are percent-decoded (``p%40ss`` is ``p@ss``).
        ``socks5h://`` is accepted as a synonym of ``socks5://`` (the proxy resolves
        the server's name either way). A SOCKS5 URL without a port uses 1080; an
        HTTP URL must name its port, since HTTP proxies have no standard one.

        Example:
            >>> Proxy.parse("http://proxy.internal:3128").port
            3128

        Raises:
            InvalidArgument: an unsupported scheme, a path, query or fragment, a
                missing host or port, or a bad field. The message never repeats
                the password.
        """
        if not isinstance(url, str):
            raise InvalidArgument(f"the proxy URL must be str, but got {type(url).__name__}")
        if _CONTROL.search(url):
            raise InvalidArgument("the proxy URL must not contain control characters")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            # urllib's message may quote the URL, password and all: give our own.
            raise InvalidArgument(
                "the proxy URL is malformed: expected scheme://[user:password@]host[:port]"
                " with a port from 1 to 65535"
            ) from None
        name = parts.scheme.lower()
        scheme = _SCHEMES.get(name)
        if scheme is None:
            hint = ""
            if name == "https":
                hint = (
                    "; TLS to the proxy itself is not supported. Use http:// for the proxy:"
                    " the mail session inside the tunnel is still protected by its own TLS"
                )
            raise InvalidArgument(
                f"the proxy URL scheme must be socks5, socks5h or http, but got {name!r}{hint}"
            )
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise InvalidArgument("the proxy URL must not have a path, query or fragment")
        if not parts.hostname:
            raise InvalidArgument("the proxy URL names no host")
        if port is None:
            if scheme is ProxyScheme.HTTP:
                raise InvalidArgument(
                    "an http:// proxy URL must name its port (HTTP proxies have no standard"
                    " port; 3128 and 8080 are common)"
                )
            port = DEFAULT_SOCKS5_PORT
        host = parts.hostname
        if not host.isascii():
            try:
                host = host.encode("idna").decode("ascii")
            except UnicodeError:
                raise InvalidArgument(
                    f"the proxy host name {host!r} cannot be converted to IDNA"
                ) from None
        username = None if parts.username is None else unquote(parts.username)
        password = None if parts.password is None else unquote(parts.password)
        if username == "" and password is None:
            username = None  # "socks5://@host" carries no credentials
        return cls(scheme=scheme, host=host, port=port, username=username, password=password)

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` of the proxy: where the TCP connection goes."""
        return (self.host, self.port)

    @property
    def where(self) -> str:
        """``host:port`` of the proxy (IPv6 in brackets), for messages."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def redacted_url(self) -> str:
        """The proxy as a URL with the password masked: ``socks5://user:****@host:1080``."""
        userinfo = ""
        if self.username is not None:
            secret = f":{REDACTED}" if self.password else ""
            userinfo = f"{self.username}{secret}@"
        return f"{self.scheme.value}://{userinfo}{self.where}"

    def __repr__(self) -> str:
        return f"Proxy({self.redacted_url()!r})"

    def __str__(self) -> str:
        return self.redacted_url()
