"""Tests for mailtransfer.dns: configuration, MX ordering rules, and lookups against dnsmasq."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

import dns.rcode
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dnsserver import broken_dns, mx_lines, resolver_for, tlsa_line
from mailtransfer import dns as mdns
from mailtransfer.dns._mx import order
from mailtransfer.errors import (
    DNSTemporaryError,
    InvalidArgument,
    NoMailExchanger,
    NXDomain,
)
from peers import DnsServer

RECORDS = [
    *mx_lines(
        "example.test",
        [("mx1.example.test", 10, "127.0.0.2"), ("mx2.example.test", 20, "127.0.0.3")],
    ),
    "host-record=dual.example.test,127.0.0.5,::1",
    "mx-host=nullmx.test,.,0",
    "host-record=implicit.test,127.0.0.4",
    "mx-host=literal.test,127.0.0.9,10",
    "mx-host=mixed.test,127.0.0.9,5",
    "mx-host=mixed.test,mx1.example.test,10",
    "mx-host=xn--bcher-kva.test,mx1.example.test,5",
    'txt-record=example.test,"v=spf1 ip4:127.0.0.1 -all"',
    'txt-record=long.example.test,"first part ","second part"',
    tlsa_line("_25._tcp.mx1.example.test", 3, 1, 1, bytes(range(32))),
    "ptr-record=2.0.0.127.in-addr.arpa,mx1.example.test",
    "mx-host=empty.test,mx1.example.test,10",
    "txt-record=noaddr.test,nothing here",
]


@pytest.fixture
def resolver(dns_server: Callable[..., DnsServer]) -> mdns.Resolver:
    """A resolver asking a dnsmasq serving RECORDS."""
    return resolver_for(dns_server(RECORDS))


# --------------------------------------------------------------- configuration


def test_resolver_rejects_bad_values() -> None:
    """Bad resolver settings are refused when the value is built."""
    with pytest.raises(ValueError, match="port"):
        mdns.Resolver(port=0)
    with pytest.raises(ValueError, match="timeout"):
        mdns.Resolver(timeout=0)
    with pytest.raises(ValueError, match="at least one"):
        mdns.Resolver(nameservers=())
    with pytest.raises(TypeError, match="tuple"):
        mdns.Resolver(nameservers="127.0.0.1")  # type: ignore[arg-type]


def test_resolver_repr_and_equality() -> None:
    """Resolvers compare by value and show their settings."""
    a = mdns.Resolver(nameservers=("127.0.0.1",), port=5353)
    assert a == mdns.Resolver(nameservers=("127.0.0.1",), port=5353)
    assert repr(a) == "Resolver(nameservers=('127.0.0.1',), port=5353, timeout=5.0)"


@pytest.mark.parametrize(
    ("given_name", "expected"),
    [("Example.ORG.", "example.org"), ("bücher.example", "xn--bcher-kva.example")],
)
def test_to_ascii(given_name: str, expected: str) -> None:
    """Names are IDNA-encoded, lower-cased and lose the trailing dot."""
    assert mdns.to_ascii(given_name) == expected


@pytest.mark.parametrize("bad", ["", ".", "a..b", "x" * 64 + ".test", "a\r\nb.test", "a b.test"])
def test_to_ascii_rejects_malformed(bad: str) -> None:
    """Malformed names are a typed usage error."""
    with pytest.raises(InvalidArgument):
        mdns.to_ascii(bad)


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyzäöüé0123456789-.", max_size=60))
def test_to_ascii_is_idempotent_or_refuses(name: str) -> None:
    """to_ascii either refuses with InvalidArgument or gives a fixed point of itself."""
    try:
        ascii_name = mdns.to_ascii(name)
    except InvalidArgument:
        return
    assert ascii_name.isascii()
    assert mdns.to_ascii(ascii_name) == ascii_name


# --------------------------------------------------------------- MX ordering

mx_records = st.lists(
    st.builds(
        mdns.MXRecord,
        st.integers(0, 65535),
        st.sampled_from(["a.test", "b.test", "c.test", "d.test", "e.test"]),
    ),
    max_size=12,
)


@given(mx_records, st.integers())
def test_order_sorts_by_preference_and_keeps_every_record(
    records: list[mdns.MXRecord], seed: int
) -> None:
    """order() is a permutation sorted by preference (RFC 5321 §5.1)."""
    ordered = order(tuple(records), random.Random(seed))
    assert sorted(ordered, key=repr) == sorted(records, key=repr)
    assert [r.preference for r in ordered] == sorted(r.preference for r in records)


def test_order_shuffles_equal_preferences() -> None:
    """Hosts of equal preference come in different orders over many draws."""
    records = tuple(mdns.MXRecord(10, f"mx{i}.test") for i in range(4))
    firsts = {order(records, random.Random(seed))[0].exchange for seed in range(64)}
    assert len(firsts) == 4


# --------------------------------------------------------------- real lookups


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_mail_exchangers_in_preference_order(resolver: mdns.Resolver, asynchronous: bool) -> None:
    """MX hosts come back lowest preference first, sync and async alike."""
    if asynchronous:
        found = asyncio.run(mdns.amail_exchangers("example.test", resolver=resolver))
    else:
        found = mdns.mail_exchangers("example.test", resolver=resolver)
    assert [(h.host, h.preference) for h in found.hosts] == [
        ("mx1.example.test", 10),
        ("mx2.example.test", 20),
    ]
    assert not found.implicit
    assert not found.authenticated


def test_implicit_mx(resolver: mdns.Resolver) -> None:
    """A domain without MX but with an address is its own mail host."""
    found = mdns.mail_exchangers("implicit.test", resolver=resolver)
    assert found.implicit
    assert found.hosts == (mdns.MailExchanger("implicit.test", 0),)


def test_no_mx_and_no_address(resolver: mdns.Resolver) -> None:
    """A domain with neither MX nor address takes no mail (permanent)."""
    with pytest.raises(NoMailExchanger, match="no MX record and no address") as info:
        mdns.mail_exchangers("noaddr.test", resolver=resolver)
    assert not info.value.transient


def test_null_mx_is_permanent(resolver: mdns.Resolver) -> None:
    """A null MX (RFC 7505) raises NoMailExchanger, not retried."""
    with pytest.raises(NoMailExchanger, match="null MX") as info:
        mdns.mail_exchangers("nullmx.test", resolver=resolver)
    assert not info.value.transient


def test_ip_literal_mx_is_skipped(resolver: mdns.Resolver) -> None:
    """An MX naming an IP address is skipped; alone, the domain has no usable host."""
    with pytest.raises(NoMailExchanger, match="not an IP address"):
        mdns.mail_exchangers("literal.test", resolver=resolver)
    found = mdns.mail_exchangers("mixed.test", resolver=resolver)
    assert [h.host for h in found.hosts] == ["mx1.example.test"]
    assert found.skipped[0][0] == "127.0.0.9"


def test_idna_domain(resolver: mdns.Resolver) -> None:
    """A Unicode domain is looked up by its A-label."""
    found = mdns.mail_exchangers("bücher.test", resolver=resolver)
    assert found.domain == "xn--bcher-kva.test"
    assert [h.host for h in found.hosts] == ["mx1.example.test"]


def test_nxdomain_is_permanent(resolver: mdns.Resolver) -> None:
    """A domain that does not exist raises NXDomain, which is not transient."""
    with pytest.raises(NXDomain) as info:
        mdns.mail_exchangers("nothere.test", resolver=resolver)
    assert not info.value.transient


def test_txt_strings_and_text(resolver: mdns.Resolver) -> None:
    """TXT records keep their strings; .text joins them."""
    answer = mdns.lookup_txt("long.example.test", resolver=resolver)
    assert answer.records[0].strings == (b"first part ", b"second part")
    assert answer.records[0].text == "first part second part"


def test_nodata_is_an_empty_answer(resolver: mdns.Resolver) -> None:
    """A name with no record of the asked type gives an empty answer, not an error."""
    answer = mdns.lookup_txt("mx1.example.test", resolver=resolver)
    assert answer.records == ()
    assert not answer


def test_tlsa_records(resolver: mdns.Resolver) -> None:
    """TLSA records are parsed into usage, selector, matching type and data."""
    answer = mdns.lookup_tlsa("_25._tcp.mx1.example.test", resolver=resolver)
    assert answer.records == (mdns.TLSARecord(3, 1, 1, bytes(range(32))),)


def test_addresses_both_families(resolver: mdns.Resolver) -> None:
    """lookup_addresses gives IPv4 then IPv6 addresses."""
    answer = mdns.lookup_addresses("dual.example.test", resolver=resolver)
    assert answer.records == ("127.0.0.5", "::1")


def test_ptr_and_generic(resolver: mdns.Resolver) -> None:
    """PTR and generic lookups return lower-case names without the final dot."""
    assert mdns.lookup_ptr("127.0.0.2", resolver=resolver).records == ("mx1.example.test",)
    assert mdns.lookup("mx2.example.test", "A", resolver=resolver).records == ("127.0.0.3",)
    with pytest.raises(InvalidArgument):
        mdns.lookup("mx2.example.test", "NOPE", resolver=resolver)
    with pytest.raises(InvalidArgument):
        mdns.lookup_ptr("not-an-ip", resolver=resolver)


def test_assume_authenticated_sets_the_flag(dns_server: Callable[..., DnsServer]) -> None:
    """The test-only option marks answers authenticated; dnsmasq itself never does."""
    server = dns_server(RECORDS)
    plain = mdns.lookup_mx("example.test", resolver=resolver_for(server))
    forced = mdns.lookup_mx(
        "example.test", resolver=resolver_for(server, assume_authenticated=True)
    )
    assert (plain.authenticated, forced.authenticated) == (False, True)


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_servfail_is_transient(asynchronous: bool) -> None:
    """SERVFAIL raises DNSTemporaryError, which is transient."""
    with broken_dns(dns.rcode.SERVFAIL) as server:
        resolver = resolver_for(server)

        def lookup() -> object:
            if asynchronous:
                return asyncio.run(mdns.amail_exchangers("example.test", resolver=resolver))
            return mdns.mail_exchangers("example.test", resolver=resolver)

        with pytest.raises(DNSTemporaryError, match="SERVFAIL") as info:
            lookup()
    assert info.value.transient


def test_timeout_is_transient() -> None:
    """A server that never answers gives DNSTemporaryError after the timeout."""
    with (
        broken_dns(None) as server,
        pytest.raises(DNSTemporaryError, match="no DNS answer") as info,
    ):
        mdns.lookup_mx("example.test", resolver=resolver_for(server, timeout=0.3))
    assert info.value.transient
