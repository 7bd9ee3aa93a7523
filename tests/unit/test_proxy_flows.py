"""The Proxy value and the sans-I/O SOCKS5 / HTTP CONNECT handshakes, driven without sockets.

Expected bytes are written from RFC 1928 (SOCKS5), RFC 1929 (username/password), RFC 9110
section 9.3.6 (CONNECT) and RFC 7617 (Basic), not copied from the implementation.
"""

from __future__ import annotations

import base64
import itertools
import pickle
import ssl
from collections.abc import Generator
from dataclasses import FrozenInstanceError, dataclass, field
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailtransfer._flows._io import Deadline, Read, StartTLS, TLSInfo, Write
from mailtransfer._flows.proxy import MAX_HTTP_RESPONSE_HEAD, http_connect, socks5_connect, tunnel
from mailtransfer.errors import ConnectError
from mailtransfer.protocol import Connection, Response, Stage
from mailtransfer.protocol._errors import InvalidArgument
from mailtransfer.proxy import Proxy, ProxyScheme

SOCKS = Proxy.parse("socks5://127.0.0.1:1080")
SOCKS_AUTH = Proxy.parse("socks5://alice:pr0xy-s3cret@127.0.0.1:1080")
HTTP = Proxy.parse("http://127.0.0.1:3128")
HTTP_AUTH = Proxy.parse("http://alice:pr0xy-s3cret@127.0.0.1:3128")
SECRET = "pr0xy-s3cret"
GREETING = b"220 mx.example.test ESMTP\r\n"
# RFC 1928 section 6: VER=5 REP=0 RSV=0 ATYP=1 BND.ADDR=0.0.0.0 BND.PORT=0
SOCKS_OK = b"\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00"


@dataclass
class Run:
    """What a flow did against a scripted peer."""

    writes: list[bytes] = field(default_factory=list)
    instructions: list[Any] = field(default_factory=list)
    result: Any = None
    reads_left: int = 0


def drive(flow: Generator[Any, Any, Any], chunks: list[bytes], tls: TLSInfo | None = None) -> Run:
    """Execute ``flow``: Read returns the next chunk (``b""`` once none are left)."""
    run = Run()
    pending = list(chunks)
    value: Any = None
    while True:
        try:
            instruction = flow.send(value)
        except StopIteration as stop:
            run.result = stop.value
            run.reads_left = len(pending)
            return run
        run.instructions.append(instruction)
        value = None
        if isinstance(instruction, Write):
            run.writes.append(instruction.data)
        elif isinstance(instruction, Read):
            value = pending.pop(0) if pending else b""
        elif isinstance(instruction, StartTLS):
            value = tls


def fails(flow: Generator[Any, Any, Any], chunks: list[bytes]) -> tuple[Exception, Run]:
    """Run ``flow`` expecting an exception; return it and what was written before it."""
    run = Run()
    pending = list(chunks)
    value: Any = None
    while True:
        try:
            instruction = flow.send(value)
        except StopIteration:
            pytest.fail("the flow finished; an error was expected")
        except Exception as exc:
            run.reads_left = len(pending)
            return exc, run
        value = None
        if isinstance(instruction, Write):
            run.writes.append(instruction.data)
        elif isinstance(instruction, Read):
            value = pending.pop(0) if pending else b""


def socks_domain_request(name: bytes, port: int) -> bytes:
    """RFC 1928 section 4: CONNECT with ATYP=3 (DOMAINNAME)."""
    return b"\x05\x01\x00\x03" + bytes([len(name)]) + name + port.to_bytes(2, "big")


# --- the Proxy value ------------------------------------------------------------------------


def test_parse_socks5_url_with_credentials() -> None:
    """A socks5 URL gives the scheme, host, port and both credentials."""
    proxy = Proxy.parse("socks5://alice:pw@proxy.example.net:1081")
    assert (proxy.scheme, proxy.host, proxy.port) == (ProxyScheme.SOCKS5, "proxy.example.net", 1081)
    assert (proxy.username, proxy.password) == ("alice", "pw")


def test_parse_socks5_defaults_to_port_1080() -> None:
    """A socks5 URL without a port uses the IANA socks port, 1080."""
    assert Proxy.parse("socks5://proxy.example.net").port == 1080


def test_parse_socks5h_is_socks5() -> None:
    """socks5h:// is accepted as the same SOCKS5 proxy (the proxy always resolves names)."""
    assert Proxy.parse("socks5h://p.example:9050").scheme is ProxyScheme.SOCKS5


def test_parse_http_needs_a_port() -> None:
    """An http proxy URL must name its port: there is no standard one to guess."""
    with pytest.raises(InvalidArgument, match="port"):
        Proxy.parse("http://proxy.example.net")


def test_parse_https_is_refused_with_a_hint() -> None:
    """https:// proxies are refused, and the message says to use http:// instead."""
    with pytest.raises(InvalidArgument, match="http://"):
        Proxy.parse("https://proxy.example.net:443")


@pytest.mark.parametrize(
    "url",
    [
        "ftp://proxy.example.net:21",
        "socks4://proxy.example.net:1080",
        "http://proxy.example.net:3128/path",
        "http://proxy.example.net:3128?x=1",
        "http://proxy.example.net:3128#frag",
        "socks5://:1080",
    ],
)
def test_parse_refuses_malformed_urls(url: str) -> None:
    """Unsupported schemes, paths, queries, fragments and missing hosts are InvalidArgument."""
    with pytest.raises(InvalidArgument):
        Proxy.parse(url)


def test_parse_percent_decodes_credentials() -> None:
    """Credentials are percent-decoded, so '@' and ':' can appear in them."""
    proxy = Proxy.parse("http://us%40er:p%40ss%3Aw@proxy.example.net:3128")
    assert (proxy.username, proxy.password) == ("us@er", "p@ss:w")


def test_parse_ipv6_host_loses_its_brackets() -> None:
    """An IPv6 literal is stored bare and shown in brackets."""
    proxy = Proxy.parse("socks5://[::1]:1080")
    assert proxy.host == "::1"
    assert proxy.where == "[::1]:1080"


def test_parse_bad_port_message_does_not_repeat_the_password() -> None:
    """A malformed URL's error never quotes the password it contained."""
    with pytest.raises(InvalidArgument) as info:
        Proxy.parse(f"socks5://alice:{SECRET}@proxy.example.net:99999")
    assert SECRET not in str(info.value)


def test_repr_and_str_mask_the_password() -> None:
    """repr() and str() show the user name and '****' instead of the password."""
    assert repr(SOCKS_AUTH) == "Proxy('socks5://alice:****@127.0.0.1:1080')"
    assert SECRET not in str(SOCKS_AUTH)


def test_repr_without_credentials_has_no_userinfo() -> None:
    """A proxy without credentials shows just scheme, host and port."""
    assert repr(HTTP) == "Proxy('http://127.0.0.1:3128')"


def test_proxy_is_frozen() -> None:
    """Proxy values cannot be changed after they are built."""
    with pytest.raises(FrozenInstanceError):
        SOCKS.port = 1  # type: ignore[misc]


def test_proxy_pickles() -> None:
    """A Proxy survives pickling (it crosses process boundaries in task queues)."""
    assert pickle.loads(pickle.dumps(SOCKS_AUTH)) == SOCKS_AUTH


@pytest.mark.parametrize("bad", ["\r\n", "\r", "\n", "\x00", "\t", "\x7f"])
def test_password_with_control_characters_is_refused(bad: str) -> None:
    """Control characters in credentials are refused, without quoting the value."""
    with pytest.raises(InvalidArgument) as info:
        Proxy(scheme=ProxyScheme.HTTP, host="p", port=1, username="u", password=f"x{bad}y")
    assert f"x{bad}y" not in str(info.value)


def test_socks5_credentials_longer_than_255_bytes_are_refused() -> None:
    """RFC 1929 carries each credential in at most 255 octets."""
    with pytest.raises(InvalidArgument, match="255"):
        Proxy(scheme=ProxyScheme.SOCKS5, host="p", port=1, username="u", password="é" * 128)


def test_socks5_username_without_password_is_refused() -> None:
    """RFC 1929 needs a non-empty password (PLEN >= 1)."""
    with pytest.raises(InvalidArgument, match="password"):
        Proxy(scheme=ProxyScheme.SOCKS5, host="p", port=1, username="u")


def test_http_username_with_colon_is_refused() -> None:
    """RFC 7617 forbids ':' in a Basic user-id."""
    with pytest.raises(InvalidArgument, match=":"):
        Proxy(scheme=ProxyScheme.HTTP, host="p", port=1, username="a:b", password="c")


def test_password_without_username_is_refused() -> None:
    """A password alone means nothing to either proxy kind."""
    with pytest.raises(InvalidArgument, match="username"):
        Proxy(scheme=ProxyScheme.HTTP, host="p", port=1, password="c")


@pytest.mark.parametrize("host", ["", "a b", "a\r\nb", "x/y", "a@b", "h" * 254])
def test_bad_proxy_host_is_refused(host: str) -> None:
    """The proxy host must be a plain name or address."""
    with pytest.raises(InvalidArgument):
        Proxy(scheme=ProxyScheme.HTTP, host=host, port=3128)


_CREDENTIAL = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x2FF, exclude_characters="\x7f"),
    min_size=1,
    max_size=40,
)


@given(user=_CREDENTIAL.filter(lambda u: ":" not in u), password=_CREDENTIAL)
def test_parse_round_trips_any_percent_encoded_credentials(user: str, password: str) -> None:
    """Whatever credentials are percent-encoded into a URL come back unchanged."""
    url = f"http://{quote(user, safe='')}:{quote(password, safe='')}@proxy.example.net:3128"
    proxy = Proxy.parse(url)
    assert (proxy.username, proxy.password) == (user, password)


@given(password=st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=12))
def test_repr_never_contains_the_password(password: str) -> None:
    """Whatever the password, repr() and str() do not contain it."""
    proxy = Proxy(
        scheme=ProxyScheme.SOCKS5, host="p.example", port=1, username="u", password=password
    )
    assert password not in repr(proxy)
    assert password not in str(proxy)


# --- SOCKS5 ---------------------------------------------------------------------------------


def test_socks5_without_credentials_offers_only_no_auth() -> None:
    """The greeting is VER=5, NMETHODS=1, METHOD=0 (RFC 1928 section 3)."""
    run = drive(socks5_connect(SOCKS, "mx.example.test", 25), [b"\x05\x00", SOCKS_OK])
    assert run.writes[0] == b"\x05\x01\x00"


def test_socks5_sends_host_names_for_the_proxy_to_resolve() -> None:
    """A host name goes as ATYP=3 DOMAINNAME, so the proxy does the DNS lookup."""
    run = drive(socks5_connect(SOCKS, "mx.example.test", 587), [b"\x05\x00", SOCKS_OK])
    assert run.writes[1] == socks_domain_request(b"mx.example.test", 587)


def test_socks5_sends_ipv4_literals_as_addresses() -> None:
    """An IPv4 literal goes as ATYP=1 with its four octets."""
    run = drive(socks5_connect(SOCKS, "192.0.2.7", 25), [b"\x05\x00", SOCKS_OK])
    assert run.writes[1] == b"\x05\x01\x00\x01\xc0\x00\x02\x07\x00\x19"


def test_socks5_sends_ipv6_literals_as_addresses() -> None:
    """An IPv6 literal (bracketed or not) goes as ATYP=4 with its sixteen octets."""
    run = drive(socks5_connect(SOCKS, "[2001:db8::1]", 465), [b"\x05\x00", SOCKS_OK])
    expected = b"\x05\x01\x00\x04" + bytes.fromhex("20010db8" + "0" * 23 + "1") + b"\x01\xd1"
    assert run.writes[1] == expected


def test_socks5_sends_non_ascii_names_in_idna_form() -> None:
    """A non-ASCII server name is sent in its IDNA (xn--) form."""
    run = drive(socks5_connect(SOCKS, "bücher.example", 25), [b"\x05\x00", SOCKS_OK])
    assert run.writes[1] == socks_domain_request(b"xn--bcher-kva.example", 25)


def test_socks5_with_credentials_does_rfc1929_login() -> None:
    """With credentials it offers methods 0 and 2 and sends VER=1 ULEN UNAME PLEN PASSWD."""
    run = drive(
        socks5_connect(SOCKS_AUTH, "mx.example.test", 25), [b"\x05\x02", b"\x01\x00", SOCKS_OK]
    )
    assert run.writes[0] == b"\x05\x02\x00\x02"
    assert run.writes[1] == b"\x01\x05alice\x0c" + SECRET.encode()
    assert run.writes[2] == socks_domain_request(b"mx.example.test", 25)


def test_socks5_skips_login_when_proxy_picks_no_auth() -> None:
    """Credentials are not sent when the proxy chooses 'no authentication'."""
    run = drive(socks5_connect(SOCKS_AUTH, "mx.example.test", 25), [b"\x05\x00", SOCKS_OK])
    assert not any(SECRET.encode() in w for w in run.writes)


def test_socks5_returns_bytes_that_followed_the_reply() -> None:
    """The server's greeting, arriving with the proxy's reply, is handed back."""
    run = drive(socks5_connect(SOCKS, "mx.example.test", 25), [b"\x05\x00", SOCKS_OK + GREETING])
    assert run.result == GREETING


def test_socks5_reads_a_domain_name_bound_address() -> None:
    """A reply with ATYP=3 BND.ADDR is consumed by its length byte."""
    reply = b"\x05\x00\x00\x03\x0bproxy.local\x04\x38"
    run = drive(socks5_connect(SOCKS, "mx.example.test", 25), [b"\x05\x00", reply + GREETING])
    assert run.result == GREETING


@given(cuts=st.lists(st.integers(min_value=0, max_value=10 + len(GREETING)), max_size=8))
def test_socks5_reply_split_anywhere_gives_the_same_result(cuts: list[int]) -> None:
    """However the proxy's bytes are split across reads, the handshake ends the same."""
    stream = b"\x05\x00" + SOCKS_OK + GREETING
    points = sorted({0, len(stream), *(c for c in cuts if c < len(stream))})
    chunks = [stream[a:b] for a, b in itertools.pairwise(points)]
    run = drive(socks5_connect(SOCKS, "mx.example.test", 25), chunks)
    assert run.result + b"".join(chunks[len(chunks) - run.reads_left :]) == GREETING


@pytest.mark.parametrize(
    ("code", "meaning", "transient"),
    [
        (0x01, "general SOCKS server failure", True),
        (0x02, "not allowed by ruleset", False),
        (0x03, "network unreachable", True),
        (0x04, "host unreachable", True),
        (0x05, "connection refused", True),
        (0x06, "TTL expired", True),
        (0x07, "command not supported", False),
        (0x08, "address type not supported", False),
    ],
)
def test_socks5_failure_replies_are_typed(code: int, meaning: str, transient: bool) -> None:
    """Each RFC 1928 REP code becomes a ConnectError naming it, transient where retry helps."""
    error, _ = fails(
        socks5_connect(SOCKS, "mx.example.test", 25),
        [b"\x05\x00", bytes([5, code, 0, 1, 0, 0, 0, 0, 0, 0])],
    )
    assert isinstance(error, ConnectError)
    assert meaning in str(error)
    assert "mx.example.test:25" in str(error)
    assert error.transient is transient
    assert error.stage is Stage.CONNECT


def test_socks5_no_acceptable_method_asks_for_credentials() -> None:
    """METHOD=0xFF without credentials says to put them in the URL."""
    error, _ = fails(socks5_connect(SOCKS, "mx.example.test", 25), [b"\x05\xff"])
    assert isinstance(error, ConnectError)
    assert "socks5://user:password@" in str(error)
    assert error.transient is False


def test_socks5_refused_login_is_typed_and_hides_the_password() -> None:
    """A non-zero RFC 1929 status is a permanent ConnectError without the password."""
    error, _ = fails(socks5_connect(SOCKS_AUTH, "mx.example.test", 25), [b"\x05\x02", b"\x01\x01"])
    assert isinstance(error, ConnectError)
    assert "check the credentials" in str(error)
    assert SECRET not in str(error)
    assert error.transient is False


def test_socks5_method_not_offered_is_refused() -> None:
    """A proxy choosing username/password that was not offered is a protocol error."""
    error, run = fails(socks5_connect(SOCKS, "mx.example.test", 25), [b"\x05\x02"])
    assert isinstance(error, ConnectError)
    assert len(run.writes) == 1


def test_socks5_proxy_closing_mid_handshake_is_a_connect_error() -> None:
    """EOF before the reply is complete is a ConnectError naming the handshake."""
    error, _ = fails(socks5_connect(SOCKS, "mx.example.test", 25), [b"\x05\x00", b"\x05\x00"])
    assert isinstance(error, ConnectError)
    assert "SOCKS5 handshake" in str(error)


def test_socks5_to_a_mail_server_says_so() -> None:
    """An SMTP greeting instead of a SOCKS5 answer is recognised at once."""
    error, _ = fails(socks5_connect(SOCKS, "mx.example.test", 25), [GREETING])
    assert isinstance(error, ConnectError)
    assert "mail server" in str(error)


def test_socks5_to_an_http_proxy_says_to_use_http() -> None:
    """An HTTP answer to the SOCKS5 greeting points at the http:// scheme."""
    error, _ = fails(
        socks5_connect(SOCKS, "mx.example.test", 25), [b"HTTP/1.1 400 Bad Request\r\n\r\n"]
    )
    assert "http://" in str(error)


def test_socks5_unknown_bound_address_type_is_refused() -> None:
    """A reply with an address type outside 1, 3, 4 is an error."""
    error, _ = fails(
        socks5_connect(SOCKS, "mx.example.test", 25), [b"\x05\x00", b"\x05\x00\x00\x09"]
    )
    assert isinstance(error, ConnectError)
    assert "address type" in str(error)


@pytest.mark.parametrize("bad", ["\r\n", "\r", "\n", "\x00", "\t", "\x7f", " "])
def test_socks5_refuses_injected_host_before_writing(bad: str) -> None:
    """A server name with control characters or spaces is refused before any byte is written."""
    error, run = fails(socks5_connect(SOCKS, f"mx{bad}evil.test", 25), [])
    assert isinstance(error, InvalidArgument)
    assert run.writes == []


# --- HTTP CONNECT ---------------------------------------------------------------------------


def test_http_connect_request_line_and_host_header() -> None:
    """CONNECT uses authority-form and repeats it in Host (RFC 9110 section 9.3.6)."""
    run = drive(http_connect(HTTP, "mx.example.test", 587), [b"HTTP/1.1 200 OK\r\n\r\n"])
    assert run.writes == [
        b"CONNECT mx.example.test:587 HTTP/1.1\r\nHost: mx.example.test:587\r\n\r\n"
    ]


def test_http_connect_sends_basic_proxy_authorization() -> None:
    """Credentials go in Proxy-Authorization: Basic base64(user ':' password) (RFC 7617)."""
    run = drive(http_connect(HTTP_AUTH, "mx.example.test", 25), [b"HTTP/1.1 200 OK\r\n\r\n"])
    token = base64.b64encode(f"alice:{SECRET}".encode()).decode()
    assert f"\r\nProxy-Authorization: Basic {token}\r\n".encode() in run.writes[0]


def test_http_connect_brackets_ipv6_targets() -> None:
    """An IPv6 target is written in brackets."""
    run = drive(http_connect(HTTP, "2001:db8::25", 25), [b"HTTP/1.1 200 OK\r\n\r\n"])
    assert run.writes[0].startswith(b"CONNECT [2001:db8::25]:25 HTTP/1.1\r\n")


@pytest.mark.parametrize(
    "status", [b"HTTP/1.1 200 Connection established", b"HTTP/1.0 200", b"HTTP/1.1 204 No Content"]
)
def test_http_connect_accepts_any_2xx(status: bytes) -> None:
    """Any 2xx status opens the tunnel, HTTP/1.0 or 1.1, with or without a reason."""
    run = drive(http_connect(HTTP, "mx.example.test", 25), [status + b"\r\nVia: 1.1 p\r\n\r\n"])
    assert run.result == b""


def test_http_connect_returns_bytes_after_the_header_block() -> None:
    """The server's greeting in the same segment as the 200 is handed back."""
    run = drive(http_connect(HTTP, "mx.example.test", 25), [b"HTTP/1.1 200 OK\r\n\r\n" + GREETING])
    assert run.result == GREETING


@given(cuts=st.lists(st.integers(min_value=0, max_value=80), max_size=10))
def test_http_connect_response_split_anywhere_gives_the_same_result(cuts: list[int]) -> None:
    """However the response is split across reads, the leftover is the greeting's start."""
    stream = b"HTTP/1.1 200 Connection established\r\nX-A: b\r\n\r\n" + GREETING
    points = sorted({0, len(stream), *(c for c in cuts if c < len(stream))})
    chunks = [stream[a:b] for a, b in itertools.pairwise(points)]
    run = drive(http_connect(HTTP, "mx.example.test", 25), chunks)
    assert run.result + b"".join(chunks[len(chunks) - run.reads_left :]) == GREETING


@given(value=st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=200))
def test_http_connect_ignores_header_contents(value: str) -> None:
    """Arbitrary printable header values neither break parsing nor leak into the tunnel."""
    response = f"HTTP/1.1 200 OK\r\nX-Anything: {value}\r\n\r\n".encode()
    run = drive(http_connect(HTTP, "mx.example.test", 25), [response + GREETING])
    assert run.result == GREETING


def test_http_407_without_credentials_asks_for_them() -> None:
    """407 without credentials says to put them in the proxy URL."""
    error, _ = fails(
        http_connect(HTTP, "mx.example.test", 25),
        [b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n"],
    )
    assert isinstance(error, ConnectError)
    assert "http://user:password@" in str(error)
    assert error.transient is False


def test_http_407_with_credentials_says_they_were_refused() -> None:
    """407 after credentials were sent is a permanent error without the password."""
    error, _ = fails(
        http_connect(HTTP_AUTH, "mx.example.test", 25),
        [b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n"],
    )
    assert "check the credentials" in str(error)
    assert SECRET not in str(error)
    assert base64.b64encode(f"alice:{SECRET}".encode()).decode() not in str(error)


def test_http_403_hints_at_the_allowed_ports() -> None:
    """403 quotes the status and mentions that proxies often allow only port 443."""
    error, _ = fails(http_connect(HTTP, "mx.example.test", 25), [b"HTTP/1.1 403 Forbidden\r\n\r\n"])
    assert "403 Forbidden" in str(error)
    assert "443" in str(error)
    assert error.transient is False


def test_http_502_is_transient() -> None:
    """A gateway error (the proxy could not reach the server) may succeed later."""
    error, _ = fails(
        http_connect(HTTP, "mx.example.test", 25), [b"HTTP/1.1 502 Bad Gateway\r\n\r\n"]
    )
    assert isinstance(error, ConnectError)
    assert error.transient is True


def test_http_connect_to_a_mail_server_fails_on_its_first_line() -> None:
    """An SMTP greeting is recognised without waiting for a blank line that never comes."""
    error, run = fails(http_connect(HTTP, "mx.example.test", 25), [GREETING, b"never read"])
    assert isinstance(error, ConnectError)
    assert "mail server" in str(error)
    assert run.reads_left == 1


def test_http_connect_caps_the_response_head() -> None:
    """Endless headers end in an error once they pass MAX_HTTP_RESPONSE_HEAD bytes."""
    chunks = [b"HTTP/1.1 200 OK\r\n"] + [b"X-Pad: " + b"a" * 1000 + b"\r\n"] * 20
    error, _ = fails(http_connect(HTTP, "mx.example.test", 25), chunks)
    assert isinstance(error, ConnectError)
    assert str(MAX_HTTP_RESPONSE_HEAD) in str(error)


def test_http_connect_escapes_control_characters_in_the_reason() -> None:
    """A hostile reason phrase cannot put control characters into the error message."""
    error, _ = fails(http_connect(HTTP, "mx.example.test", 25), [b"HTTP/1.1 403 a\x1b[2Jb\r\n\r\n"])
    assert "\x1b" not in str(error)


@pytest.mark.parametrize("bad", ["\r\n", "\r", "\n", "\x00", "\t", "\x7f", " "])
def test_http_connect_refuses_injected_target_before_writing(bad: str) -> None:
    """CR, LF and other controls in the target are refused with zero bytes written (S2)."""
    error, run = fails(http_connect(HTTP, f"mx.example.test{bad}Evil: 1", 25), [])
    assert isinstance(error, InvalidArgument)
    assert run.writes == []


# --- the tunnel -----------------------------------------------------------------------------


def test_tunnel_sets_a_connect_deadline_first() -> None:
    """The handshake runs under its own deadline, in the CONNECT stage (ConnectTimeout)."""
    flow = tunnel(Connection(), HTTP, "mx.example.test", 25, timeout=7.0)
    run = drive(flow, [b"HTTP/1.1 200 OK\r\n\r\n"])
    assert run.instructions[0] == Deadline(7.0, Stage.CONNECT)


def test_tunnel_hands_early_bytes_to_the_smtp_connection() -> None:
    """A greeting that came with the proxy's answer is parsed as the SMTP greeting."""
    conn = Connection()
    drive(
        tunnel(conn, SOCKS, "mx.example.test", 25, timeout=None), [b"\x05\x00", SOCKS_OK + GREETING]
    )
    event = conn.next_event()
    assert isinstance(event, Response)
    assert event.reply.code == 220


def test_tunnel_runs_implicit_tls_through_the_tunnel() -> None:
    """With tls=, the TLS handshake follows the proxy handshake under a TLS deadline."""
    info = TLSInfo(version="TLSv1.3", cipher="TLS_AES_128_GCM_SHA256")
    start = StartTLS(ssl.create_default_context(), "mx.example.test")
    flow = tunnel(Connection(), HTTP, "mx.example.test", 465, timeout=5.0, tls=start)
    run = drive(flow, [b"HTTP/1.1 200 OK\r\n\r\n"], tls=info)
    assert run.instructions[-2:] == [Deadline(5.0, Stage.TLS_HANDSHAKE), start]
    assert run.result is info


def test_tunnel_refuses_plaintext_before_implicit_tls() -> None:
    """Bytes arriving before the implicit-TLS handshake are refused, not fed to TLS or SMTP."""
    start = StartTLS(ssl.create_default_context(), "mx.example.test")
    flow = tunnel(Connection(), HTTP, "mx.example.test", 465, timeout=5.0, tls=start)
    error, _ = fails(flow, [b"HTTP/1.1 200 OK\r\n\r\n" + GREETING])
    assert isinstance(error, ConnectError)
    assert "465" in str(error)
