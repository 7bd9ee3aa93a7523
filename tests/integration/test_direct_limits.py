"""Direct delivery's per-domain connection limit, and its configuration parsing."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dnsserver import mx_lines, resolver_for
from mailtransfer import Mailer, Timeouts
from mailtransfer._direct._routing import group_by_domain
from mailtransfer._direct._url import parse_direct_url
from mailtransfer._settings import MailerConfig
from mailtransfer.direct import DirectOptions
from mailtransfer.errors import InvalidAddress, UsageError
from mailtransfer.testing import EsmtpScript, ScriptedPeer, ScriptedServer
from peers import DnsServer, free_port


class _Counting:
    """An ESMTP script that records how many sessions were open at once."""

    def __init__(self) -> None:
        self.active = 0
        self.peak = 0
        self.esmtp = EsmtpScript()

    async def __call__(self, peer: ScriptedPeer) -> None:
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            await asyncio.sleep(0.05)  # hold the session so that others could overlap it
            await self.esmtp(peer)
        finally:
            self.active -= 1


@pytest.mark.parametrize("limit", [1, 2])
def test_per_domain_limit_caps_simultaneous_sessions(
    dns_server: Callable[..., DnsServer], limit: int
) -> None:
    """send_many never has more than per_domain sessions open to one domain."""
    port = free_port()
    counting = _Counting()
    with ScriptedServer(counting, host="127.0.0.30", port=port):
        server = dns_server(mx_lines("busy.test", [("mx.busy.test", 10, "127.0.0.30")]))
        options = DirectOptions(resolver=resolver_for(server), port=port, per_domain=limit)
        mailer = Mailer(transport="direct", direct=options, timeouts=Timeouts.all(5.0))
        with mailer:
            items = [{"sender": "a@c.test", "to": [f"u{i}@busy.test"]} for i in range(6)]
            outcomes = mailer.send_many(items, concurrency=6)
    assert all(not isinstance(o, Exception) for o in outcomes)
    assert len(counting.esmtp.messages) == 6
    assert 1 <= counting.peak <= limit


# ------------------------------------------------------------------ configuration


def test_direct_url_options() -> None:
    """direct:// carries the port, HELO name, policy switches and timeouts."""
    config = MailerConfig.resolve(
        "direct://?port=2525&helo=out.example.test&dane=false&timeout=3&dns_timeout=1.5"
    )
    assert config.direct is not None
    assert config.endpoints == ()
    assert (config.direct.port, config.direct.dane, config.direct.mta_sts) == (2525, False, True)
    assert config.local_hostname == "out.example.test"
    assert config.timeouts.command == 3.0
    assert config.direct.resolver is not None
    assert config.direct.resolver.timeout == 1.5


@pytest.mark.parametrize(
    "url",
    [
        "direct://mx.example.test",
        "direct://?port=0",
        "direct://?port=x",
        "direct://?dane=maybe",
        "direct://?timeout=-1",
        "direct://?bogus=1",
        "direct://?port=25&port=26",
    ],
)
def test_direct_url_rejects(url: str) -> None:
    """Bad direct:// URLs raise UsageError naming the problem."""
    with pytest.raises(UsageError, match="direct://"):
        MailerConfig.resolve(url)


def test_direct_transport_conflicts() -> None:
    """transport="direct" takes no relay; unknown transports are refused."""
    with pytest.raises(UsageError, match="finds the servers itself"):
        MailerConfig.resolve("smtp://relay.example.test", transport="direct")
    with pytest.raises(UsageError, match="transport"):
        MailerConfig.resolve(host="x", transport="carrier-pigeon")
    with pytest.raises(ValueError, match="per_domain"):
        DirectOptions(per_domain=0)
    with pytest.raises(ValueError, match="port"):
        DirectOptions(port=70000)


@given(
    st.lists(
        st.tuples(
            st.from_regex(r"[a-z]{1,8}", fullmatch=True),
            st.sampled_from(["a.test", "B.TEST", "b.test.", "bücher.test"]),
        ),
        min_size=1,
        max_size=10,
    )
)
def test_grouping_keeps_every_recipient_once(pairs: list[tuple[str, str]]) -> None:
    """Every recipient lands in exactly one group, keyed by its ASCII lower-case domain."""
    recipients = [f"{local}@{domain}" for local, domain in pairs]
    groups = group_by_domain(recipients)
    assert sorted(i for indexes in groups.values() for i in indexes) == list(range(len(pairs)))
    assert set(groups) <= {"a.test", "b.test", "xn--bcher-kva.test"}
    for domain, indexes in groups.items():
        assert all(indexes == tuple(sorted(indexes)) for _ in [domain])


@pytest.mark.parametrize("address", ["nobody", "@a.test", "x@", "x@[127.0.0.1]", "x@a..test"])
def test_grouping_rejects(address: str) -> None:
    """Addresses direct delivery cannot route raise InvalidAddress before any I/O."""
    with pytest.raises(InvalidAddress):
        group_by_domain([address])


@given(st.text(max_size=40))
def test_direct_url_parser_is_total(query: str) -> None:
    """Any query string parses or raises UsageError."""
    with contextlib.suppress(UsageError):
        parse_direct_url("direct://?" + query)
