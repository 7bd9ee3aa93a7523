"""validate_address / validate_addresses: syntax, IDNA, and MX checks against a real dnsmasq."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dnsserver import broken_dns, resolver_for
from mailtransfer.deliverability import (
    Verdict,
    avalidate_addresses,
    validate_address,
    validate_addresses,
)
from mailtransfer.dns import Resolver
from mailtransfer.protocol import parse_mailbox
from peers import dnsmasq

ZONE = [
    "mx-host=mail.test,mx1.mail.test,10",
    "host-record=mx1.mail.test,127.0.0.1",
    "host-record=implicit.test,127.0.0.1",  # no MX: the A record is the implicit MX
    "mx-host=nullmx.test,.,0",
    'txt-record=nothing.test,"exists, but no MX and no address"',
    "mx-host=xn--bcher-kva.test,mx1.mail.test,10",  # bücher.test
]


@pytest.fixture(scope="module")
def resolver() -> Iterator[Resolver]:
    """dnsmasq serving the address-test zones."""
    with dnsmasq(ZONE) as server:
        yield resolver_for(server)


@pytest.mark.peers
@pytest.mark.parametrize(
    ("address", "verdict", "reason"),
    [
        ("user@mail.test", Verdict.VALID, ""),
        ("user@implicit.test", Verdict.VALID, ""),
        ("user@bücher.test", Verdict.VALID, ""),
        ("user@nullmx.test", Verdict.INVALID, "null MX"),
        ("user@nothing.test", Verdict.INVALID, "no MX and no address"),
        ("user@missing.test", Verdict.INVALID, "does not exist"),
    ],
)
def test_domain_accepts_mail(
    resolver: Resolver, address: str, verdict: Verdict, reason: str
) -> None:
    """MX, implicit MX and IDNA pass; null MX, no mail host and NXDOMAIN fail with a reason."""
    check = validate_address(address, resolver=resolver)
    assert check.verdict is verdict
    assert reason in check.reason


@pytest.mark.peers
def test_mail_hosts(resolver: Resolver) -> None:
    """The check names where mail would go: the MX hosts, or the domain itself."""
    assert validate_address("a@mail.test", resolver=resolver).mail_hosts == ("mx1.mail.test",)
    assert validate_address("a@implicit.test", resolver=resolver).mail_hosts == ("implicit.test",)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("no-at-sign", "no '@'"),
        ("a..b@example.org", "unexpected '.'"),
        ("a@example", "no dot"),
        ("a@[192.0.2.1]", "address literal"),
        ("a@example.123", "numeric"),
        ("a b@example.org", "unexpected ' '"),
        ("a@exa mple.org", "unexpected ' '"),
        ("a\r\n@example.org", "control characters"),
        ("x" * 65 + "@example.org", "64"),
    ],
)
def test_syntax_rejections_have_reasons(address: str, reason: str) -> None:
    """Each syntax or hygiene problem is INVALID with a reason naming it (no DNS needed)."""
    check = validate_address(address, check_dns=False)
    assert check.verdict is Verdict.INVALID
    assert reason in check.reason


def test_non_ascii_local_part_needs_smtputf8() -> None:
    """A UTF-8 local part is valid (RFC 6531) and flagged as needing SMTPUTF8."""
    check = validate_address("用户@例子.example", check_dns=False)
    assert check.ok
    assert check.smtputf8
    assert check.normalized == "用户@xn--fsqu00a.example"


@pytest.mark.peers
def test_bulk_deduplicates_and_asks_each_domain_once(resolver: Resolver) -> None:
    """Duplicates (domain case, IDNA form) collapse; order is first-seen; async agrees."""
    addresses = [
        "a@mail.test",
        "a@MAIL.test",
        "b@mail.test",
        "c@bücher.test",
        "c@xn--bcher-kva.test",
        "bad@@mail.test",
        "bad@@mail.test",
        "z@nullmx.test",
    ]
    checks = validate_addresses(addresses, resolver=resolver)
    assert [c.address for c in checks] == [
        "a@mail.test",
        "b@mail.test",
        "c@bücher.test",
        "bad@@mail.test",
        "z@nullmx.test",
    ]
    assert [c.verdict for c in checks] == [
        Verdict.VALID,
        Verdict.VALID,
        Verdict.VALID,
        Verdict.INVALID,
        Verdict.INVALID,
    ]
    assert asyncio.run(avalidate_addresses(addresses, resolver=resolver)) == checks


def test_dns_failure_is_unknown_not_invalid() -> None:
    """A SERVFAIL makes the verdict UNKNOWN: the address is not thrown away."""
    with broken_dns() as (host, port):
        resolver = Resolver(nameservers=(host,), port=port, timeout=1.0)
        check = validate_address("user@example.test", resolver=resolver)
    assert check.verdict is Verdict.UNKNOWN
    assert "failed" in check.reason


local_parts = st.from_regex(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,20}", fullmatch=True)
domain_labels = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)


@given(
    local=local_parts,
    labels=st.lists(domain_labels, min_size=1, max_size=3),
    tld=st.from_regex(r"[a-z]{2,6}", fullmatch=True),
)
def test_valid_syntax_matches_the_sending_grammar(local: str, labels: list[str], tld: str) -> None:
    """What validate_address accepts, parse_mailbox (used by send()) accepts, and vice versa."""
    address = f"{local}@{'.'.join([*labels, tld])}"
    check = validate_address(address, check_dns=False)
    assert check.ok
    assert str(parse_mailbox(address)) == address
    assert check.normalized == address  # the domain is already lower-case ASCII


@given(st.text(max_size=60))
def test_any_text_gets_a_verdict(text: str) -> None:
    """validate_address never raises on any string; INVALID always has a reason."""
    check = validate_address(text, check_dns=False)
    assert check.verdict in (Verdict.VALID, Verdict.INVALID)
    assert check.ok or check.reason
