"""Direct delivery against a real DNS server (dnsmasq) and real SMTP servers on 127.0.0.x.

One world per module: dnsmasq answers for the *.test domains below, and aiosmtpd
servers listen on the same port on different loopback addresses, each standing
for an MX host. MTA-STS policies come from a local HTTPS server with a trustme
certificate; DANE answers are marked authenticated by the resolver's test-only
``assume_authenticated`` option (dnsmasq does not validate DNSSEC).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import http.server
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import dns.rcode
import pytest
import trustme

from dnsserver import broken_dns, mx_lines, resolver_for, tlsa_line
from mailtransfer import AsyncMailer, Mailer, Timeouts
from mailtransfer.direct import DirectOptions, DirectResult
from mailtransfer.dns import Resolver
from mailtransfer.errors import (
    CertificateVerifyFailed,
    DANEMismatch,
    DNSTemporaryError,
    MTASTSViolation,
    NoMailExchanger,
    NXDomain,
    PartialDelivery,
    RecipientsRefused,
    ReplyError,
    ServiceUnavailable,
    UsageError,
)
from mailtransfer.testing import EsmtpScript, RecordingServer, ScriptedPeer, ScriptedServer
from peers import dnsmasq, free_port

pytestmark = pytest.mark.peers

TIMEOUTS = Timeouts(connect=2.0, greeting=2.0, command=2.0, data=2.0)
POLICY = "version: STSv1\r\nmode: enforce\r\nmx: mx1.{domain}\r\nmax_age: 86400\r\n"


def _spki_sha256(pem: bytes) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    cert = x509.load_pem_x509_certificate(pem)
    spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).digest()


def _server_context(ca: trustme.CA, *names: str) -> tuple[ssl.SSLContext, bytes]:
    cert = ca.issue_cert(*names)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    return context, cert.cert_chain_pems[0].bytes()


class _PolicyHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path != "/.well-known/mta-sts.txt":
            self.send_error(404)
            return
        host = (self.headers.get("Host") or "").removeprefix("mta-sts.")
        body = POLICY.format(domain=host).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def https_server(host: str, context: ssl.SSLContext) -> Iterator[int]:
    """Serve POLICY over HTTPS on ``host``; yields the port."""
    server = http.server.ThreadingHTTPServer((host, 0), _PolicyHandler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _greeting(line: bytes) -> Any:
    async def script(peer: ScriptedPeer) -> None:
        await peer.send(line)
        with contextlib.suppress(Exception):
            await peer.readline(timeout=1.0)

    return script


class _BrokenTLSThenPlain:
    """Offers STARTTLS and breaks the handshake on even connections; plain ESMTP on odd ones."""

    def __init__(self) -> None:
        self.esmtp = EsmtpScript()

    async def __call__(self, peer: ScriptedPeer) -> None:
        if peer.index % 2 == 1:
            await self.esmtp(peer)
            return
        await peer.send(b"220 broken.test ESMTP\r\n")
        await peer.expect(b"EHLO")
        await peer.send(b"250-broken.test\r\n250 STARTTLS\r\n")
        await peer.expect(b"STARTTLS")
        await peer.send(b"220 go ahead\r\n")
        await peer.read_exactly(5)  # the start of the ClientHello
        await peer.send(b"\x15\x03\x03\x00\x02\x02\x28")  # alert: handshake_failure


@dataclass
class World:
    """The running servers and how to reach them."""

    resolver: Resolver
    port: int
    sts_port: int
    client_context: ssl.SSLContext
    servers: dict[str, RecordingServer]
    scripted: dict[str, ScriptedServer]
    broken: tuple[str, int]
    broken_tls: _BrokenTLSThenPlain

    def options(self, **changes: Any) -> DirectOptions:
        base = DirectOptions(
            resolver=self.resolver,
            port=self.port,
            mta_sts_port=self.sts_port,
            verify_context=self.client_context,
        )
        return replace(base, **changes)

    def mailer(self, **changes: Any) -> Mailer:
        return Mailer(
            transport="direct",
            direct=self.options(**changes),
            local_hostname="client.example.test",
            timeouts=TIMEOUTS,
        )

    def received(self, name: str) -> list[tuple[str, ...]]:
        return [m.rcpt_tos for m in self.servers[name].messages]


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    """Start every server of the test world once for the module."""
    ca = trustme.CA()
    plain_servers = {
        "mx1": "127.0.0.2",  # example.test, preference 10
        "mx2": "127.0.0.3",  # example.test, preference 20
        "implicit": "127.0.0.4",  # implicit.test (A record only)
        "other": "127.0.0.5",  # other.test
        "backup": "127.0.0.7",  # second MX of dead.test / greet4xx.test / greet5xx.test
    }
    sts_rogue_ctx, _ = _server_context(ca, "rogue.sts.test")
    sts_ctx, _ = _server_context(ca, "mx1.sts.test")
    bad_ctx, _ = _server_context(ca, "someone-else.test")
    policy_ctx, _ = _server_context(ca, "mta-sts.sts.test", "mta-sts.stsbad.test")
    dane_ctx, dane_pem = _server_context(ca, "mx1.dane.test")
    dane2_ctx, dane2_pem = _server_context(ca, "mx2.danebad.test")
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    port = free_port("127.0.0.1")
    with contextlib.ExitStack() as stack:
        servers: dict[str, RecordingServer] = {}
        for name, address in plain_servers.items():
            servers[name] = stack.enter_context(RecordingServer(host=address, port=port))
        tls_servers = {
            "rogue": ("127.0.0.11", sts_rogue_ctx),
            "sts": ("127.0.0.12", sts_ctx),
            "stsbad": ("127.0.0.16", bad_ctx),
            "dane": ("127.0.0.13", dane_ctx),
            "danebad1": ("127.0.0.14", dane_ctx),
            "danebad2": ("127.0.0.15", dane2_ctx),
        }
        for name, (address, context) in tls_servers.items():
            servers[name] = stack.enter_context(
                RecordingServer(host=address, port=port, tls_context=context)
            )
        scripted = {
            "421": stack.enter_context(
                ScriptedServer(_greeting(b"421 4.3.2 busy\r\n"), host="127.0.0.8", port=port)
            ),
            "554": stack.enter_context(
                ScriptedServer(_greeting(b"554 5.7.1 go away\r\n"), host="127.0.0.9", port=port)
            ),
        }
        broken_tls = _BrokenTLSThenPlain()
        scripted["broken-tls"] = stack.enter_context(
            ScriptedServer(broken_tls, host="127.0.0.17", port=port)
        )
        sts_port = stack.enter_context(https_server("127.0.0.10", policy_ctx))
        broken = stack.enter_context(broken_dns(dns.rcode.SERVFAIL))
        looping = stack.enter_context(broken_dns(cname_loop=True))
        records = [
            *mx_lines(
                "example.test",
                [("mx1.example.test", 10, "127.0.0.2"), ("mx2.example.test", 20, "127.0.0.3")],
            ),
            "host-record=implicit.test,127.0.0.4",
            *mx_lines("other.test", [("mx.other.test", 10, "127.0.0.5")]),
            *mx_lines(
                "dead.test",
                [("dead.dead.test", 10, "127.0.0.6"), ("backup.dead.test", 20, "127.0.0.7")],
            ),
            *mx_lines(
                "greet4xx.test",
                [
                    ("busy.greet4xx.test", 10, "127.0.0.8"),
                    ("backup.greet4xx.test", 20, "127.0.0.7"),
                ],
            ),
            *mx_lines(
                "greet5xx.test",
                [("no.greet5xx.test", 10, "127.0.0.9"), ("backup.greet5xx.test", 20, "127.0.0.7")],
            ),
            "mx-host=nullmx.test,.,0",
            *mx_lines("brokentls.test", [("mx.brokentls.test", 10, "127.0.0.17")]),
            f"server=/fail.test/{broken[0]}#{broken[1]}",
            # An MX host whose name is a CNAME loop (answered by a tiny hostile server).
            f"server=/loop.test/{looping[0]}#{looping[1]}",
            "mx-host=looped.test,mx.loop.test,10",
            *mx_lines("looped.test", [("backup.looped.test", 20, "127.0.0.7")]),
            # MTA-STS: the preferred MX is not in the policy.
            *mx_lines(
                "sts.test",
                [("rogue.sts.test", 10, "127.0.0.11"), ("mx1.sts.test", 20, "127.0.0.12")],
            ),
            'txt-record=_mta-sts.sts.test,"v=STSv1; id=20261129;"',
            "host-record=mta-sts.sts.test,127.0.0.10",
            # MTA-STS: the only MX presents a certificate for another name.
            *mx_lines("stsbad.test", [("mx1.stsbad.test", 10, "127.0.0.16")]),
            'txt-record=_mta-sts.stsbad.test,"v=STSv1; id=1"',
            "host-record=mta-sts.stsbad.test,127.0.0.10",
            # DANE: 3 1 1 of the server's key.
            *mx_lines("dane.test", [("mx1.dane.test", 10, "127.0.0.13")]),
            tlsa_line(f"_{port}._tcp.mx1.dane.test", 3, 1, 1, _spki_sha256(dane_pem)),
            # DANE: the first host's TLSA does not match, the second's does.
            *mx_lines(
                "danebad.test",
                [("mx1.danebad.test", 10, "127.0.0.14"), ("mx2.danebad.test", 20, "127.0.0.15")],
            ),
            tlsa_line(f"_{port}._tcp.mx1.danebad.test", 3, 1, 1, bytes(32)),
            tlsa_line(f"_{port}._tcp.mx2.danebad.test", 3, 1, 1, _spki_sha256(dane2_pem)),
        ]
        server = stack.enter_context(dnsmasq(records))
        yield World(
            resolver=resolver_for(server),
            port=port,
            sts_port=sts_port,
            client_context=client_context,
            servers=servers,
            scripted=scripted,
            broken=broken,
            broken_tls=broken_tls,
        )


@pytest.fixture(autouse=True)
def _clean(world: World) -> None:
    for server in world.servers.values():
        server.clear()
        server.faults.clear()


def _send(mailer: Mailer, *to: str, **extra: Any) -> DirectResult:
    with mailer:
        result = mailer.send(sender="a@client.example.test", to=list(to), subject="hi", text="x")
    assert isinstance(result, DirectResult)
    return result


# -------------------------------------------------------------------- routing


def test_lowest_preference_first(world: World) -> None:
    """The message goes to the MX with the lowest preference, and the result names it."""
    result = _send(world.mailer(), "bob@example.test")
    assert world.received("mx1") == [("bob@example.test",)]
    assert world.received("mx2") == []
    assert result.hosts == {"bob@example.test": "mx1.example.test"}
    domain = result.domains["example.test"]
    assert domain.host == "mx1.example.test"
    assert domain.policy == "none"
    assert domain.tls == "opportunistic"
    assert world.servers["mx1"].messages[0].helo == "client.example.test"


def test_dead_host_falls_back_to_the_next(world: World) -> None:
    """A host that refuses the connection is skipped for the next MX."""
    result = _send(world.mailer(), "carol@dead.test")
    assert world.received("backup") == [("carol@dead.test",)]
    attempts = result.domains["dead.test"].attempts
    assert [a.host for a in attempts] == ["dead.dead.test", "backup.dead.test"]
    assert attempts[0].error is not None
    assert attempts[0].error.transient


def test_4xx_greeting_moves_on(world: World) -> None:
    """A 421 greeting sends the message to the next MX host."""
    result = _send(world.mailer(), "dan@greet4xx.test")
    assert world.received("backup") == [("dan@greet4xx.test",)]
    assert isinstance(result.domains["greet4xx.test"].attempts[0].error, ServiceUnavailable)


def test_5xx_greeting_stops(world: World) -> None:
    """A 5xx greeting is final: the next MX is not tried."""
    with pytest.raises(ReplyError) as info:
        _send(world.mailer(), "erin@greet5xx.test")
    assert info.value.code == 554
    assert not info.value.transient
    assert world.received("backup") == []


def test_cname_loop_host_is_skipped(world: World) -> None:
    """An MX host whose name loops through CNAMEs is skipped for the next host."""
    result = _send(world.mailer(), "lou@looped.test")
    assert world.received("backup") == [("lou@looped.test",)]
    attempts = result.domains["looped.test"].attempts
    assert attempts[0].host == "mx.loop.test"
    assert isinstance(attempts[0].error, DNSTemporaryError)
    assert attempts[0].address is None


def test_broken_opportunistic_tls_falls_back_to_cleartext(world: World) -> None:
    """A failed opportunistic handshake is retried in cleartext on the same host."""
    result = _send(world.mailer(), "tia@brokentls.test")
    attempts = result.domains["brokentls.test"].attempts
    assert [(a.tls, type(a.error).__name__) for a in attempts] == [
        ("opportunistic", "TLSHandshakeFailed"),
        ("none", "NoneType"),
    ]
    assert [m.rcpt_tos for m in world.broken_tls.esmtp.messages] == [("tia@brokentls.test",)]


def test_implicit_mx(world: World) -> None:
    """A domain with only an A record receives at that address."""
    result = _send(world.mailer(), "fay@implicit.test")
    assert world.received("implicit") == [("fay@implicit.test",)]
    assert result.hosts["fay@implicit.test"] == "implicit.test"


def test_null_mx_is_a_permanent_error(world: World) -> None:
    """A null MX raises NoMailExchanger and nothing is sent."""
    with pytest.raises(NoMailExchanger, match="null MX") as info:
        _send(world.mailer(), "gus@nullmx.test")
    assert not info.value.transient
    result = info.value.result  # type: ignore[attr-defined]
    assert isinstance(result, DirectResult)
    assert result.failed == {"gus@nullmx.test": info.value}
    assert result.domains["nullmx.test"].attempts == ()


def test_nxdomain_is_permanent(world: World) -> None:
    """A recipient domain that does not exist raises NXDomain."""
    with pytest.raises(NXDomain):
        _send(world.mailer(), "hal@nowhere.test")


def test_servfail_is_transient(world: World) -> None:
    """SERVFAIL for the recipient domain is a transient typed error."""
    with pytest.raises(DNSTemporaryError) as info:
        _send(world.mailer(), "ivy@fail.test")
    assert info.value.transient


def test_domains_split_across_servers(world: World) -> None:
    """Recipients of two domains each reach their own MX; one result per recipient."""
    result = _send(
        world.mailer(), "a1@example.test", "b1@other.test", "a2@example.test", "z@nullmx.test"
    )
    assert world.received("mx1") == [("a1@example.test", "a2@example.test")]
    assert world.received("other") == [("b1@other.test",)]
    assert set(result.accepted) == {"a1@example.test", "a2@example.test", "b1@other.test"}
    assert isinstance(result.failed["z@nullmx.test"], NoMailExchanger)
    assert result.hosts["b1@other.test"] == "mx.other.test"
    assert result.partial


def test_strict_raises_partial_delivery(world: World) -> None:
    """With strict, a recipient that got nothing raises PartialDelivery with the result."""
    mailer = Mailer(
        transport="direct",
        direct=world.options(),
        strict=True,
        local_hostname="client.example.test",
        timeouts=TIMEOUTS,
    )
    with pytest.raises(PartialDelivery) as info, mailer:
        mailer.send(sender="a@client.example.test", to=["x@example.test", "y@nullmx.test"])
    assert isinstance(info.value.result, DirectResult)
    assert world.received("mx1") == [("x@example.test",)]


def test_direct_url_and_source_address(world: World) -> None:
    """direct:// configures the port and HELO name; source_address binds the client."""
    mailer = Mailer(
        f"direct://?port={world.port}&helo=url.example.test&mta_sts=false",
        direct=world.options(),
        source_address=("127.0.0.20", 0),
        timeouts=TIMEOUTS,
    )
    _send(mailer, "kim@other.test")
    message = world.servers["other"].messages[0]
    assert message.helo == "url.example.test"
    assert message.peer[0] == "127.0.0.20"


def test_async_mailer_delivers_directly(world: World) -> None:
    """AsyncMailer(transport="direct") routes like the blocking mailer."""

    async def main() -> DirectResult:
        async with AsyncMailer(
            transport="direct", direct=world.options(), local_hostname="c.test", timeouts=TIMEOUTS
        ) as mailer:
            result = await mailer.send(
                sender="a@c.test", to=["a@example.test", "b@other.test", "c@dead.test"]
            )
        assert isinstance(result, DirectResult)
        return result

    result = asyncio.run(main())
    assert world.received("mx1") == [("a@example.test",)]
    assert world.received("other") == [("b@other.test",)]
    assert world.received("backup") == [("c@dead.test",)]
    assert result.hosts["c@dead.test"] == "backup.dead.test"


# -------------------------------------------------------------------- MTA-STS


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_mta_sts_enforce_skips_hosts_outside_the_policy(world: World, asynchronous: bool) -> None:
    """Under an enforced policy an unlisted MX is not used; the listed one gets verified TLS."""
    options = world.options(mta_sts_cache=type(world.options().mta_sts_cache)())
    if asynchronous:

        async def main() -> Any:
            async with AsyncMailer(transport="direct", direct=options, timeouts=TIMEOUTS) as m:
                return await m.send(sender="a@c.test", to=["lee@sts.test"], text="x")

        result = asyncio.run(main())
    else:
        result = _send(
            Mailer(transport="direct", direct=options, timeouts=TIMEOUTS), "lee@sts.test"
        )
    domain = result.domains["sts.test"]
    assert domain.policy == "mta-sts"
    assert isinstance(domain.attempts[0].error, MTASTSViolation)
    assert domain.host == "mx1.sts.test"
    assert domain.tls == "mta-sts"
    assert domain.attempts[-1].tls_version is not None
    assert world.received("rogue") == []
    assert world.servers["sts"].messages[0].tls


def test_without_mta_sts_the_preferred_host_is_used(world: World) -> None:
    """With MTA-STS turned off, the unlisted but preferred host gets the message."""
    _send(world.mailer(mta_sts=False), "lee@sts.test")
    assert world.received("rogue") == [("lee@sts.test",)]


def test_mta_sts_bad_certificate_is_not_used(world: World) -> None:
    """Under enforce, a host whose certificate does not verify gets nothing."""
    with pytest.raises(CertificateVerifyFailed):
        _send(world.mailer(), "max@stsbad.test")
    assert world.received("stsbad") == []


# -------------------------------------------------------------------- DANE


def _dane_mailer(world: World) -> Mailer:
    resolver = replace(world.resolver, assume_authenticated=True)
    return world.mailer(resolver=resolver, mta_sts=False)


def test_dane_match(world: World) -> None:
    """A certificate matching its DNSSEC-validated TLSA record is used (3 1 1)."""
    result = _send(_dane_mailer(world), "ned@dane.test")
    domain = result.domains["dane.test"]
    assert (domain.policy, domain.tls) == ("dane", "dane")
    assert world.servers["dane"].messages[0].tls


def test_dane_mismatch_skips_the_host(world: World) -> None:
    """A host whose certificate matches no TLSA record is not used; the next one is."""
    result = _send(_dane_mailer(world), "ola@danebad.test")
    attempts = result.domains["danebad.test"].attempts
    assert isinstance(attempts[0].error, DANEMismatch)
    assert world.received("danebad1") == []
    assert world.received("danebad2") == [("ola@danebad.test",)]


def test_dane_needs_authenticated_answers(world: World) -> None:
    """Without the AD bit, TLSA records are ignored: opportunistic TLS to the first host."""
    result = _send(world.mailer(mta_sts=False), "ola@danebad.test")
    assert result.domains["danebad.test"].tls == "opportunistic"
    assert world.received("danebad1") == [("ola@danebad.test",)]


def test_permanent_refusal_stops(world: World) -> None:
    """A 550 to every recipient raises RecipientsRefused; the next MX is not tried."""
    world.servers["mx1"].faults.refuse_recipient()
    with pytest.raises(RecipientsRefused) as info:
        _send(world.mailer(), "pat@example.test")
    assert not info.value.transient
    assert world.received("mx2") == []


def test_transient_refusal_moves_on(world: World) -> None:
    """A 450 to every recipient sends the message to the next MX host."""
    world.servers["mx1"].faults.refuse_recipient(code=450, text="4.2.1 try later")
    result = _send(world.mailer(), "quin@example.test")
    assert world.received("mx2") == [("quin@example.test",)]
    assert result.hosts["quin@example.test"] == "mx2.example.test"


def test_partial_refusal_is_per_recipient(world: World) -> None:
    """One refused recipient among accepted ones is reported in refused, not raised."""
    world.servers["mx1"].faults.refuse_recipient("no@example.test")
    result = _send(world.mailer(), "yes@example.test", "no@example.test")
    assert set(result.accepted) == {"yes@example.test"}
    assert result.refused["no@example.test"].code == 550


def test_async_dane_match_and_mismatch(world: World) -> None:
    """The asyncio engine checks TLSA records against the chain as the blocking one does."""
    resolver = replace(world.resolver, assume_authenticated=True)

    async def main() -> DirectResult:
        async with AsyncMailer(
            transport="direct", direct=world.options(resolver=resolver), timeouts=TIMEOUTS
        ) as mailer:
            result = await mailer.send(
                sender="a@c.test", to=["ned@dane.test", "ola@danebad.test"], text="x"
            )
        assert isinstance(result, DirectResult)
        return result

    result = asyncio.run(main())
    assert result.domains["dane.test"].tls == "dane"
    attempts = result.domains["danebad.test"].attempts
    assert isinstance(attempts[0].error, DANEMismatch)
    assert world.received("danebad1") == []
    assert world.received("danebad2") == [("ola@danebad.test",)]


def test_choices_are_logged(world: World, caplog: pytest.LogCaptureFixture) -> None:
    """The MX list, the TLS level tried and the accepting host appear in the logs."""
    with caplog.at_level("DEBUG", logger="mailtransfer"):
        _send(world.mailer(), "rae@dead.test")
    text = caplog.text
    assert "dns.mx dead.test: 10 dead.dead.test, 20 backup.dead.test" in text
    assert "trying backup.dead.test [127.0.0.7]" in text
    assert "accepted by backup.dead.test [127.0.0.7] tls=opportunistic" in text


def test_send_many_and_verify_in_direct_mode(world: World) -> None:
    """send_many works with its default concurrency; verify() has no relay to check."""
    with world.mailer() as mailer:
        outcomes = mailer.send_many(
            [{"sender": "a@c.test", "to": [f"m{i}@example.test"]} for i in range(3)]
        )
        with pytest.raises(UsageError, match="direct"):
            mailer.verify()
    assert all(isinstance(o, DirectResult) for o in outcomes)
    assert sorted(world.received("mx1")) == [(f"m{i}@example.test",) for i in range(3)]

    async def main() -> list[Any]:
        async with AsyncMailer(transport="direct", direct=world.options()) as mailer:
            return await mailer.send_many([{"sender": "a@c.test", "to": ["n@other.test"]}])

    assert isinstance(asyncio.run(main())[0], DirectResult)
