"""Connecting through a SOCKS5 or HTTP CONNECT proxy, and binding a source address.

The proxy is a small real one (:class:`LoopbackProxy`, below) on loopback: it parses the
handshake independently of the client, checks credentials, resolves names itself from a
table only it knows (so a test passes only if DNS happened at the proxy), and relays bytes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from mailtransfer import AsyncConnection, ImplicitTLS, NoTLS, StartTLS, SyncConnection, Timeouts
from mailtransfer._flows._io import Deadline, Read, Write, tls_info
from mailtransfer._flows._io import StartTLS as StartTLSInstruction
from mailtransfer._flows.handshake import handshake
from mailtransfer._flows.proxy import tunnel
from mailtransfer._sync._stream import SocketStream
from mailtransfer.errors import ConnectError, ConnectTimeout
from mailtransfer.protocol import Connection
from mailtransfer.proxy import Proxy
from mailtransfer.testing import RecordingServer, TLSCertificates, silent, tls_certificates

MESSAGE = b"From: a@example.test\r\nTo: b@example.test\r\nSubject: hi\r\n\r\nHello\r\n"
PROXY_SECRET = "pr0xy-s3cret-value"
HIDDEN_NAME = "smtp.proxy-only.test"
"""A name only the proxy can resolve: reaching it proves the client left DNS to the proxy."""


# --- a small real proxy -------------------------------------------------------------------


@dataclass
class ProxyRequest:
    """One tunnel request as the proxy parsed it."""

    target: str
    port: int
    address_type: int | None
    user: str | None
    peer: tuple[str, int]


@dataclass
class LoopbackProxy:
    """A SOCKS5 (RFC 1928/1929) or HTTP CONNECT proxy on 127.0.0.1, run in its own thread.

    Args:
        kind: ``"socks5"`` or ``"http"``.
        users: user name to password; when given, the proxy demands authentication.
        refuse: a SOCKS5 REP code or HTTP status to answer every request with.
        resolve: names only this proxy can resolve, to addresses.
        coalesce: send the HTTP 200 together with the server's first bytes in one write.
    """

    kind: str
    users: dict[str, str] | None = None
    refuse: int | None = None
    resolve: dict[str, str] = field(default_factory=dict)
    coalesce: bool = False
    requests: list[ProxyRequest] = field(default_factory=list)
    _loop: asyncio.AbstractEventLoop | None = None
    _server: asyncio.AbstractServer | None = None
    _thread: threading.Thread | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)
    port: int = 0

    def url(self, credentials: str = "") -> str:
        """The proxy URL, with ``user:password`` when given."""
        userinfo = f"{credentials}@" if credentials else ""
        return f"{self.kind}://{userinfo}127.0.0.1:{self.port}"

    def wait_idle(self, timeout: float = 5.0) -> None:
        """Wait until every tunnel has ended on both sides (the servers closed theirs too)."""
        deadline = time.monotonic() + timeout
        while self._tasks:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self._tasks)} tunnel(s) still open after {timeout} s")
            time.sleep(0.01)

    def __enter__(self) -> LoopbackProxy:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._accept, "127.0.0.1", 0), self._loop
        )
        self._server = future.result(5)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None
        assert self._thread is not None

        async def stop() -> None:
            assert self._server is not None
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            # abort() closes at once; a few loop turns let connection_lost close the sockets
            # before the loop stops (else: ResourceWarning for an unclosed socket).
            for writer in self._writers:
                writer.transport.abort()
            for _ in range(3):
                await asyncio.sleep(0)
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            upstream = await (self._socks5 if self.kind == "socks5" else self._http)(reader, writer)
            if upstream is not None:
                await self._relay(reader, writer, *upstream)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _open(
        self, host: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        try:
            reader, writer = await asyncio.open_connection(self.resolve.get(host, host), port)
        except OSError:
            return None
        self._writers.add(writer)
        return reader, writer

    async def _socks5(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        version, count = await reader.readexactly(2)
        assert version == 5
        methods = await reader.readexactly(count)
        wanted = 0x02 if self.users is not None else 0x00
        if wanted not in methods:
            writer.write(b"\x05\xff")
            return None
        writer.write(bytes([5, wanted]))
        user = None
        if wanted == 0x02:
            assert self.users is not None
            version, size = await reader.readexactly(2)
            assert version == 1
            name = (await reader.readexactly(size)).decode()
            secret = (await reader.readexactly((await reader.readexactly(1))[0])).decode()
            ok = self.users.get(name) == secret
            writer.write(b"\x01" + (b"\x00" if ok else b"\x01"))
            if not ok:
                return None
            user = name
        version, command, _, atyp = await reader.readexactly(4)
        assert (version, command) == (5, 1)
        if atyp == 3:
            target = (await reader.readexactly((await reader.readexactly(1))[0])).decode()
        else:
            target = str(ipaddress.ip_address(await reader.readexactly(4 if atyp == 1 else 16)))
        port = int.from_bytes(await reader.readexactly(2), "big")
        self.requests.append(ProxyRequest(target, port, atyp, user, _peer(writer)))
        upstream = None if self.refuse is not None else await self._open(target, port)
        code = self.refuse if self.refuse is not None else (0 if upstream else 5)
        writer.write(bytes([5, code, 0, 1, 0, 0, 0, 0, 0, 0]))
        return upstream

    async def _http(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        request, *lines = head[:-4].split("\r\n")
        method, authority, version = request.split(" ")
        assert (method, version) == ("CONNECT", "HTTP/1.1")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
        assert headers["host"] == authority
        host, _, port_text = authority.rpartition(":")
        host = host.strip("[]")
        user = None
        if self.users is not None:
            scheme, _, token = headers.get("proxy-authorization", "").partition(" ")
            name, _, secret = (
                base64.b64decode(token).decode().partition(":") if token else ("",) * 3
            )
            if scheme != "Basic" or self.users.get(name) != secret:
                writer.write(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                    b'Proxy-Authenticate: Basic realm="test"\r\nContent-Length: 0\r\n\r\n'
                )
                return None
            user = name
        self.requests.append(ProxyRequest(host, int(port_text), None, user, _peer(writer)))
        if self.refuse is not None:
            writer.write(f"HTTP/1.1 {self.refuse} Refused by test\r\n\r\n".encode())
            return None
        upstream = await self._open(host, int(port_text))
        if upstream is None:
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\n\r\n")
            return None
        ok = b"HTTP/1.1 200 Connection established\r\nVia: 1.1 loopback\r\n\r\n"
        if self.coalesce:
            ok += await upstream[0].read(65536)  # the greeting rides with the 200
        writer.write(ok)
        return upstream

    async def _relay(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
    ) -> None:
        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            with contextlib.suppress(OSError, RuntimeError):
                dst.write_eof()

        try:
            await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
        finally:
            up_writer.close()


def _peer(writer: asyncio.StreamWriter) -> tuple[str, int]:
    host, port = writer.get_extra_info("peername")[:2]
    return (host, port)


@pytest.fixture
def proxy() -> Iterator[Callable[..., LoopbackProxy]]:
    """Factory: ``proxy(kind, **options)`` starts a LoopbackProxy, stopped at teardown."""
    with contextlib.ExitStack() as stack:
        yield lambda kind, **options: stack.enter_context(LoopbackProxy(kind, **options))


@pytest.fixture(scope="module")
def hidden_tls() -> TLSCertificates:
    """Certificates for the name only the proxy resolves."""
    return tls_certificates(HIDDEN_NAME)


# --- the flows over real sockets (independent of the drivers' wiring) ---------------------


def run_sync(stream: SocketStream, flow: Any) -> Any:
    """Execute a flow's instructions on a real socket stream (what the sync driver does)."""
    value: Any = None
    while True:
        try:
            instruction = flow.send(value)
        except StopIteration as stop:
            return stop.value
        value = None
        if isinstance(instruction, Write):
            stream.write(instruction.data)
        elif isinstance(instruction, Read):
            value = stream.read()
        elif isinstance(instruction, Deadline):
            stream.set_deadline(instruction.seconds, instruction.stage)
        elif isinstance(instruction, StartTLSInstruction):
            value = tls_info(stream.start_tls(instruction.context, instruction.server_hostname))


@pytest.mark.parametrize("kind", ["socks5", "http"])
def test_tunnel_flow_carries_a_starttls_session(
    kind: str, proxy: Callable[..., LoopbackProxy], hidden_tls: TLSCertificates
) -> None:
    """Through either proxy, the greeting, EHLO and a verified STARTTLS reach the server."""
    with RecordingServer(tls_context=hidden_tls.server_context) as server:
        running = proxy(kind, resolve={HIDDEN_NAME: "127.0.0.1"})
        stream = SocketStream.connect("127.0.0.1", running.port, timeout=5)
        try:
            conn = Connection()
            run_sync(
                stream,
                tunnel(conn, Proxy.parse(running.url()), HIDDEN_NAME, server.port, timeout=5),
            )
            policy = StartTLS(context=hidden_tls.client_context)
            flow = handshake(
                conn,
                policy=policy,
                server_hostname=HIDDEN_NAME,
                local_hostname="client.test",
                timeouts=Timeouts.all(5),
            )
            info = run_sync(stream, flow)
        finally:
            stream.close()
    assert conn.tls_active
    assert info is not None
    assert info.version is not None
    assert running.requests[0].target == HIDDEN_NAME


def test_tunnel_flow_times_out_as_connect_timeout(
    proxy: Callable[..., LoopbackProxy], scripted: Callable[..., Any]
) -> None:
    """A proxy that never answers ends in ConnectTimeout within the deadline."""
    server = scripted(silent())
    stream = SocketStream.connect("127.0.0.1", server.port, timeout=5)
    try:
        with pytest.raises(ConnectTimeout):
            run_sync(
                stream,
                tunnel(
                    Connection(),
                    Proxy.parse(f"socks5://127.0.0.1:{server.port}"),
                    "x.test",
                    25,
                    timeout=0.3,
                ),
            )
    finally:
        stream.close()


# --- the connection option (needs the wiring) -----------------------------------------------


@pytest.mark.parametrize("kind", ["socks5", "http"])
def test_sync_send_through_proxy_resolves_at_the_proxy(
    kind: str, proxy: Callable[..., LoopbackProxy], hidden_tls: TLSCertificates
) -> None:
    """A message sent via proxy= arrives over TLS, for a name only the proxy can resolve."""
    with RecordingServer(tls_context=hidden_tls.server_context) as server:
        running = proxy(kind, resolve={HIDDEN_NAME: "127.0.0.1"})
        policy = StartTLS(context=hidden_tls.client_context)
        with SyncConnection(
            HIDDEN_NAME, server.port, tls=policy, proxy=Proxy.parse(running.url())
        ) as conn:
            conn.send(MESSAGE, sender="a@example.test", recipients=["b@example.test"])
        received = server.wait_for(1)
        port = server.port
        running.wait_idle()
    assert received[0].tls
    assert (running.requests[0].target, running.requests[0].port) == (HIDDEN_NAME, port)
    assert running.requests[0].address_type in (3, None)


@pytest.mark.parametrize("kind", ["socks5", "http"])
def test_async_send_through_proxy_with_credentials(
    kind: str, proxy: Callable[..., LoopbackProxy], hidden_tls: TLSCertificates
) -> None:
    """AsyncConnection authenticates to the proxy and sends through the tunnel."""
    with RecordingServer(tls_context=hidden_tls.server_context) as server:
        running = proxy(kind, users={"alice": PROXY_SECRET}, resolve={HIDDEN_NAME: "127.0.0.1"})
        url = running.url(f"alice:{PROXY_SECRET}")

        async def main() -> None:
            policy = StartTLS(context=hidden_tls.client_context)
            async with AsyncConnection(
                HIDDEN_NAME, server.port, tls=policy, proxy=Proxy.parse(url)
            ) as conn:
                await conn.send(MESSAGE, sender="a@example.test", recipients=["b@example.test"])

        asyncio.run(main())
        assert server.wait_for(1)[0].tls
        running.wait_idle()
    assert running.requests[0].user == "alice"


@pytest.mark.parametrize("kind", ["socks5", "http"])
def test_implicit_tls_through_proxy(
    kind: str, proxy: Callable[..., LoopbackProxy], tls: TLSCertificates
) -> None:
    """Implicit TLS starts inside the tunnel and the certificate is verified for the server."""
    with RecordingServer(implicit_tls=tls.server_context) as server:
        running = proxy(kind)
        policy = ImplicitTLS(context=tls.client_context)
        with SyncConnection(
            "localhost", server.port, tls=policy, proxy=Proxy.parse(running.url())
        ) as conn:
            assert conn.tls_info is not None
            conn.send(MESSAGE, sender="a@example.test", recipients=["b@example.test"])
        assert server.wait_for(1)[0].tls
        running.wait_idle()


def test_async_implicit_tls_through_socks5_proxy(
    proxy: Callable[..., LoopbackProxy], tls: TLSCertificates
) -> None:
    """AsyncConnection starts implicit TLS inside a SOCKS5 tunnel."""
    with RecordingServer(implicit_tls=tls.server_context) as server:
        running = proxy("socks5")

        async def main() -> None:
            policy = ImplicitTLS(context=tls.client_context)
            async with AsyncConnection(
                "localhost", server.port, tls=policy, proxy=Proxy.parse(running.url())
            ) as conn:
                await conn.send(MESSAGE, sender="a@example.test", recipients=["b@example.test"])

        asyncio.run(main())
        assert server.wait_for(1)[0].tls
        running.wait_idle()


def test_greeting_in_the_same_segment_as_the_http_200(
    proxy: Callable[..., LoopbackProxy], smtp_server: RecordingServer
) -> None:
    """A greeting that arrives with the proxy's 200 is read as the greeting, not lost."""
    running = proxy("http", coalesce=True)
    with SyncConnection(
        "127.0.0.1", smtp_server.port, tls=NoTLS(), proxy=Proxy.parse(running.url())
    ) as conn:
        assert conn.noop().code == 250
    running.wait_idle()
    assert conn.transcript()[0].startswith("S: 220")


@pytest.mark.parametrize(("kind", "code"), [("socks5", 0x02), ("http", 403)])
def test_proxy_refusal_is_a_connect_error(
    kind: str, code: int, proxy: Callable[..., LoopbackProxy], smtp_server: RecordingServer
) -> None:
    """A proxy refusing the tunnel gives a ConnectError naming the target; nothing is sent."""
    running = proxy(kind, refuse=code)
    conn = SyncConnection(
        "127.0.0.1", smtp_server.port, tls=NoTLS(), proxy=Proxy.parse(running.url())
    )
    with pytest.raises(ConnectError, match=f"127.0.0.1:{smtp_server.port}"):
        conn.open()
    assert smtp_server.commands == []


@pytest.mark.parametrize("kind", ["socks5", "http"])
def test_wrong_proxy_password_is_typed_and_not_quoted(
    kind: str, proxy: Callable[..., LoopbackProxy], smtp_server: RecordingServer
) -> None:
    """Bad proxy credentials give a permanent ConnectError that never shows the password."""
    running = proxy(kind, users={"alice": "the-right-one"})
    bad = Proxy.parse(running.url(f"alice:{PROXY_SECRET}"))
    conn = SyncConnection("127.0.0.1", smtp_server.port, tls=NoTLS(), proxy=bad)
    with pytest.raises(ConnectError) as info:
        conn.open()
    assert "check the credentials" in str(info.value)
    assert info.value.transient is False
    shown = " ".join([str(info.value), repr(info.value), repr(conn), *info.value.transcript])
    assert PROXY_SECRET not in shown


def test_dead_proxy_is_a_connect_error_naming_the_proxy(smtp_server: RecordingServer) -> None:
    """No proxy listening: the ConnectError names the proxy's address, not the server's."""
    with contextlib.closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    conn = SyncConnection(
        "127.0.0.1", smtp_server.port, tls=NoTLS(), proxy=Proxy.parse(f"socks5://127.0.0.1:{dead}")
    )
    with pytest.raises(ConnectError, match=f"127.0.0.1:{dead}"):
        conn.open()


def test_proxy_with_source_address(
    proxy: Callable[..., LoopbackProxy], smtp_server: RecordingServer
) -> None:
    """source_address binds the socket to the proxy too: the proxy sees that address."""
    running = proxy("socks5")
    with SyncConnection(
        "127.0.0.1",
        smtp_server.port,
        tls=NoTLS(),
        source_address=("127.0.0.2", 0),
        proxy=Proxy.parse(running.url()),
    ) as conn:
        conn.noop()
    running.wait_idle()
    assert running.requests[0].peer[0] == "127.0.0.2"


# --- binding a source address (both drivers) -------------------------------------------------


def test_sync_source_address_is_the_peer_the_server_sees(smtp_server: RecordingServer) -> None:
    """SyncConnection(source_address=...) binds before connecting."""
    with SyncConnection(
        "127.0.0.1", smtp_server.port, tls=NoTLS(), source_address=("127.0.0.2", 0)
    ) as conn:
        conn.send(MESSAGE, sender="a@example.test", recipients=["b@example.test"])
    assert smtp_server.wait_for(1)[0].peer[0] == "127.0.0.2"


def test_async_source_address_is_the_peer_the_server_sees(smtp_server: RecordingServer) -> None:
    """AsyncConnection(source_address=...) binds before connecting."""

    async def main() -> None:
        async with AsyncConnection(
            "127.0.0.1", smtp_server.port, tls=NoTLS(), source_address=("127.0.0.3", 0)
        ) as conn:
            await conn.send(MESSAGE, sender="a@example.test", recipients=["b@example.test"])

    asyncio.run(main())
    assert smtp_server.wait_for(1)[0].peer[0] == "127.0.0.3"


def test_unbindable_source_address_is_a_connect_error(smtp_server: RecordingServer) -> None:
    """An address this host does not have fails as a ConnectError before any SMTP."""
    conn = SyncConnection(
        "127.0.0.1", smtp_server.port, tls=NoTLS(), source_address=("192.0.2.1", 0)
    )
    with pytest.raises(ConnectError):
        conn.open()
    assert smtp_server.commands == []
