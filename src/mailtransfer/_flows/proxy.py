"""Opening a tunnel through a proxy: SOCKS5 (RFC 1928, 1929) and HTTP CONNECT (RFC 9110).

Strategy: each handshake is a sans-I/O flow like the SMTP ones. It yields
``Write`` and ``Read`` instructions, keeps what it reads in a small buffer,
and returns the bytes that arrived *after* the proxy's answer: a server that
greets at once may have its ``220`` in the same segment as the proxy's reply,
and those bytes belong to the SMTP session, not to the proxy. :func:`tunnel`
wraps a handshake with its deadline and hands those bytes on (or, before
implicit TLS, refuses them). Every failure is a
:class:`~mailtransfer.errors.ConnectError` whose message names the proxy, the
target and what to check; none quotes the proxy password. Reads are bounded,
so a hostile proxy cannot make the client buffer without limit (THREATS S9).
"""

from __future__ import annotations

import base64
import ipaddress
import re
from collections.abc import Generator
from typing import Any

from ..auth._credentials import check_int
from ..errors import ConnectError
from ..protocol import Connection, Stage
from ..protocol._errors import InvalidArgument
from ..proxy import Proxy, ProxyScheme, check_proxy_host
from ._io import READ, Deadline, Instruction, StartTLS, TLSInfo, Write

__all__ = ["MAX_HTTP_RESPONSE_HEAD", "http_connect", "socks5_connect", "tunnel"]

MAX_HTTP_RESPONSE_HEAD = 16 * 1024
"""The most bytes of status line and headers accepted from an HTTP proxy."""

# RFC 1928 section 3 (methods), section 4 (request), section 5 (address types), section 6 (replies).
_SOCKS_VERSION = 5
_NO_AUTH = 0x00
_USERNAME_PASSWORD = 0x02
_NO_ACCEPTABLE = 0xFF
_CMD_CONNECT = 0x01
_ATYP_IPV4, _ATYP_DOMAIN, _ATYP_IPV6 = 0x01, 0x03, 0x04
_SOCKS_REPLIES = {
    0x01: ("general SOCKS server failure", True),
    0x02: ("connection not allowed by ruleset", False),
    0x03: ("network unreachable", True),
    0x04: ("host unreachable", True),
    0x05: ("connection refused", True),
    0x06: ("TTL expired", True),
    0x07: ("command not supported", False),
    0x08: ("address type not supported", False),
}
"""REP code: (meaning, whether trying again later may help)."""

# RFC 1929 section 2: the sub-negotiation version.
_USERPASS_VERSION = 1

# RFC 9110 section 4.2 / RFC 9112 section 4: HTTP-version SP status-code [SP reason-phrase].
_STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([1-5][0-9]{2})(?: ([^\r\n]*))?\r?\n")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class _Buffer:
    """What the proxy sent that the handshake has not consumed yet."""

    def __init__(self, proxy: Proxy, what: str) -> None:
        self.data = bytearray()
        self.proxy = proxy
        self.what = what

    def fill(self) -> Generator[Instruction, Any, None]:
        """Read once more; the proxy hanging up mid-handshake is an error."""
        chunk = yield READ
        if not chunk:
            raise ConnectError(
                f"the proxy at {self.proxy.where} closed the connection during the {self.what}"
                f"{' after ' + _sample(self.data) if self.data else ''}: check that"
                f" {self.proxy.where} is a {_kind(self.proxy)} proxy and that it allows you",
                stage=Stage.CONNECT,
            )
        self.data += chunk

    def take(self, count: int) -> Generator[Instruction, Any, bytes]:
        """Return exactly ``count`` bytes, reading as often as needed."""
        while len(self.data) < count:
            yield from self.fill()
        taken = bytes(self.data[:count])
        del self.data[:count]
        return taken


def _kind(proxy: Proxy) -> str:
    return "SOCKS5" if proxy.scheme is ProxyScheme.SOCKS5 else "HTTP CONNECT"


def _sample(data: bytes | bytearray) -> str:
    # Show what a confused peer sent, bounded and with control characters escaped.
    text = bytes(data[:60]).decode("latin-1")
    return repr(_CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text))


def _error(message: str, *, transient: bool = True) -> ConnectError:
    error = ConnectError(message, stage=Stage.CONNECT)
    error.transient = transient
    return error


def _not_a_proxy(proxy: Proxy, data: bytes | bytearray) -> ConnectError:
    """Name what the peer looks like instead, so the fix is obvious (wrong port or scheme)."""
    start = bytes(data[:4])
    if start[:3].isdigit():
        looks = "an SMTP server's greeting: the proxy address points at a mail server"
    elif start.startswith(b"HTTP"):
        looks = "an HTTP response: use an http:// proxy URL for this proxy"
    elif start[:1] == b"\x05":
        looks = "a SOCKS5 reply: use a socks5:// proxy URL for this proxy"
    elif start[:1] == b"\x15":
        looks = "a TLS alert: the proxy expects TLS, which mailtransfer does not speak to proxies"
    else:
        looks = f"no {_kind(proxy)} proxy that mailtransfer knows"
    return _error(
        f"{proxy.where} did not answer like a {_kind(proxy)} proxy; it sent {_sample(data)},"
        f" which looks like {looks}",
        transient=False,
    )


def _target(host: str) -> tuple[int, bytes]:
    """The SOCKS5 address type and bytes for ``host``; names stay names (the proxy resolves)."""
    bare = check_proxy_host(_idna(host), "the server host name")
    try:
        address = ipaddress.ip_address(bare)
    except ValueError:
        name = bare.encode("ascii")
        return _ATYP_DOMAIN, bytes([len(name)]) + name
    return (_ATYP_IPV4 if address.version == 4 else _ATYP_IPV6), address.packed


def _idna(host: str) -> str:
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        raise InvalidArgument(
            f"the server host name {host!r} cannot be converted to IDNA for the proxy"
        ) from None


def socks5_connect(proxy: Proxy, host: str, port: int) -> Generator[Instruction, Any, bytes]:
    """Ask a SOCKS5 proxy for a TCP tunnel to ``host:port``; return the bytes read past its reply.

    Host names are sent as DOMAINNAME (address type 3), so the proxy resolves
    them and no DNS query leaves this machine (RFC 1928 section 4).

    Raises:
        InvalidArgument: ``host`` cannot be sent (nothing was written).
        ConnectError: the proxy refused, failed, or is not a SOCKS5 proxy.
    """
    atyp, address = _target(host)
    check_int(port, "port", low=1, high=65535)
    buffer = _Buffer(proxy, "SOCKS5 handshake")
    # Section 3: offer "no authentication", and username/password when we have credentials.
    methods = [_NO_AUTH] if proxy.username is None else [_NO_AUTH, _USERNAME_PASSWORD]
    yield Write(bytes([_SOCKS_VERSION, len(methods), *methods]))
    version, method = yield from buffer.take(2)
    if version != _SOCKS_VERSION:
        raise _not_a_proxy(proxy, bytes([version, method]) + buffer.data)
    if method == _NO_ACCEPTABLE:
        need = (
            "refused the user name and password method"
            if proxy.username is not None
            else "requires authentication: put the credentials in the URL,"
            " socks5://user:password@host:port"
        )
        raise _error(f"the SOCKS5 proxy at {proxy.where} {need}", transient=False)
    if method not in methods:
        raise _error(
            f"the SOCKS5 proxy at {proxy.where} chose authentication method {method:#04x},"
            " which was not offered",
            transient=False,
        )
    if method == _USERNAME_PASSWORD:
        yield from _socks5_login(proxy, buffer)
    # Section 4: VER CMD RSV ATYP DST.ADDR DST.PORT.
    yield Write(
        bytes([_SOCKS_VERSION, _CMD_CONNECT, 0x00, atyp]) + address + port.to_bytes(2, "big")
    )
    version, reply, _reserved, bound_type = yield from buffer.take(4)
    if version != _SOCKS_VERSION:
        raise _not_a_proxy(proxy, bytes([version, reply]))
    if reply != 0x00:
        # Section 6: the proxy closes the connection after a failure; do not read on.
        meaning, transient = _SOCKS_REPLIES.get(reply, ("unknown error", True))
        raise _error(
            f"the SOCKS5 proxy at {proxy.where} could not connect to {host}:{port}:"
            f" {meaning} (reply {reply:#04x})",
            transient=transient,
        )
    if bound_type == _ATYP_IPV4:
        skip = 4
    elif bound_type == _ATYP_IPV6:
        skip = 16
    elif bound_type == _ATYP_DOMAIN:
        skip = (yield from buffer.take(1))[0]
    else:
        raise _error(
            f"the SOCKS5 proxy at {proxy.where} answered with unknown address type"
            f" {bound_type:#04x}",
            transient=False,
        )
    yield from buffer.take(skip + 2)  # BND.ADDR and BND.PORT: not needed for CONNECT
    return bytes(buffer.data)


def _socks5_login(proxy: Proxy, buffer: _Buffer) -> Generator[Instruction, Any, None]:
    # RFC 1929 section 2: VER ULEN UNAME PLEN PASSWD; the Proxy value checked both lengths.
    assert proxy.username is not None
    user = proxy.username.encode("utf-8")
    secret = (proxy.password or "").encode("utf-8")
    yield Write(bytes([_USERPASS_VERSION, len(user)]) + user + bytes([len(secret)]) + secret)
    version, status = yield from buffer.take(2)
    # Some proxies answer the sub-negotiation with version 5; the status is what counts.
    if version not in (_USERPASS_VERSION, _SOCKS_VERSION):
        raise _not_a_proxy(proxy, bytes([version, status]))
    if status != 0x00:
        raise _error(
            f"the SOCKS5 proxy at {proxy.where} refused the user name {proxy.username!r}"
            f" and its password (status {status:#04x}): check the credentials in the proxy URL",
            transient=False,
        )


def _authority(host: str, port: int) -> str:
    # RFC 9110 section 9.3.6: CONNECT takes authority-form, host:port, IPv6 in brackets.
    # check_proxy_host refuses CR, LF, spaces and every other character that could end the
    # request line early and smuggle in a header (THREATS S2: nodemailer's CONNECT injection).
    bare = check_proxy_host(_idna(host), "the server host name")
    check_int(port, "port", low=1, high=65535)
    return f"[{bare}]:{port}" if ":" in bare else f"{bare}:{port}"


def http_connect(proxy: Proxy, host: str, port: int) -> Generator[Instruction, Any, bytes]:
    """Ask an HTTP proxy for a tunnel with ``CONNECT``; return the bytes read past its answer.

    Raises:
        InvalidArgument: ``host`` contains characters a request line cannot carry
            (nothing was written).
        ConnectError: the proxy refused (the message quotes its status line), wants
            credentials (407), or is not an HTTP proxy.
    """
    authority = _authority(host, port)
    lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
    if proxy.username is not None:
        # RFC 7617 section 2: user-id ":" password, UTF-8 (section 2.1), base64.
        pair = f"{proxy.username}:{proxy.password or ''}".encode()
        lines.append(f"Proxy-Authorization: Basic {base64.b64encode(pair).decode('ascii')}")
    yield Write(("\r\n".join(lines) + "\r\n\r\n").encode("ascii"))
    buffer = _Buffer(proxy, "HTTP CONNECT exchange")
    # Judge the status line as soon as it is complete: a mail server dialled by mistake
    # greets with "220 ..." and never sends the blank line a header block ends with.
    while b"\n" not in buffer.data:
        if len(buffer.data) >= MAX_HTTP_RESPONSE_HEAD:
            raise _not_a_proxy(proxy, buffer.data)
        yield from buffer.fill()
    status = _STATUS_LINE.match(buffer.data)
    if status is None:
        raise _not_a_proxy(proxy, buffer.data)
    while True:
        end = buffer.data.find(b"\r\n\r\n")
        size = end + 4 if end >= 0 else len(buffer.data)
        if size > MAX_HTTP_RESPONSE_HEAD:
            raise _error(
                f"the HTTP proxy at {proxy.where} sent more than {MAX_HTTP_RESPONSE_HEAD}"
                " bytes of response headers",
                transient=False,
            )
        if end >= 0:
            break
        yield from buffer.fill()
    code = int(status.group(1))
    if 200 <= code < 300:
        # Section 9.3.6: any 2xx means the tunnel is open; what follows is the server's.
        return bytes(buffer.data[end + 4 :])
    raise _http_refusal(proxy, authority, code, (status.group(2) or b"").decode("latin-1"))


def _http_refusal(proxy: Proxy, authority: str, code: int, reason: str) -> ConnectError:
    said = f"{code} {_CONTROL.sub('?', reason)[:200]}".rstrip()
    where = f"the HTTP proxy at {proxy.where}"
    if code == 407:
        if proxy.username is None:
            return _error(
                f"{where} requires authentication ({said}): put the credentials in the URL,"
                " http://user:password@host:port",
                transient=False,
            )
        return _error(
            f"{where} refused the user name {proxy.username!r} and its password ({said}):"
            " check the credentials in the proxy URL",
            transient=False,
        )
    if code in (502, 503, 504):
        return _error(f"{where} could not reach {authority} ({said})")
    hint = ""
    if code in (403, 405):
        hint = (
            "; many proxies allow CONNECT only to port 443: ask for the mail port"
            f" ({authority.rsplit(':', 1)[1]}) to be allowed"
        )
    return _error(f"{where} refused to CONNECT to {authority} ({said}){hint}", transient=False)


def tunnel(
    conn: Connection,
    proxy: Proxy,
    host: str,
    port: int,
    *,
    timeout: float | None,
    tls: StartTLS | None = None,
) -> Generator[Instruction, Any, TLSInfo | None]:
    """Open the tunnel to ``host:port``, then start implicit TLS through it when asked.

    Run it right after the TCP connection to the proxy is made, before the
    greeting. Bytes the server sent along with the proxy's answer go to
    ``conn`` (they are the start of its greeting).

    Args:
        conn: the session's protocol state.
        proxy: the proxy the socket is connected to.
        host: the mail server's name or address, as the proxy should reach it.
        port: the mail server's port.
        timeout: the deadline for the whole proxy handshake, and again for TLS.
        tls: the handshake to run through the tunnel, for implicit TLS.

    Returns:
        The driver's TLS information when ``tls`` was given, else None.

    Raises:
        ConnectError: the proxy handshake failed, or data arrived before the
            implicit-TLS handshake.
        InvalidArgument: ``host`` or ``port`` cannot be sent to the proxy.
    """
    yield Deadline(timeout, Stage.CONNECT)
    handshake = socks5_connect if proxy.scheme is ProxyScheme.SOCKS5 else http_connect
    early = yield from handshake(proxy, host, port)
    if tls is None:
        if early:
            conn.receive_data(early)
        return None
    if early:
        # With implicit TLS the client speaks first; anything here was not sent through TLS.
        raise _error(
            f"{len(early)} bytes arrived through the proxy at {proxy.where} before the TLS"
            f" handshake with {host}:{port}; implicit TLS expects the server to wait for the"
            " client. Check the port (465 is implicit TLS) and the proxy",
            transient=False,
        )
    yield Deadline(timeout, Stage.TLS_HANDSHAKE)
    info: TLSInfo | None = yield tls
    return info
