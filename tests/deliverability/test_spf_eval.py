"""The SPF evaluator against the examples of RFC 7208 (appendix A, section 7.4) and its limits."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailtransfer.deliverability import (
    DnsStatus,
    SPFOutcome,
    evaluate_spf,
    expand_macros,
    run_offline,
)

# RFC 7208 appendix A's zone.
ZONE: dict[tuple[str, str], tuple[str, ...] | DnsStatus] = {
    ("example.com", "MX"): ("10 mail-a.example.com", "20 mail-b.example.com"),
    ("example.com", "A"): ("192.0.2.10", "192.0.2.11"),
    ("amy.example.com", "A"): ("192.0.2.65",),
    ("bob.example.com", "A"): ("192.0.2.66",),
    ("mail-a.example.com", "A"): ("192.0.2.129",),
    ("mail-b.example.com", "A"): ("192.0.2.130",),
    ("example.org", "MX"): ("10 mail-c.example.org",),
    ("mail-c.example.org", "A"): ("192.0.2.140",),
    ("10.2.0.192.in-addr.arpa", "PTR"): ("example.com",),
    ("11.2.0.192.in-addr.arpa", "PTR"): ("example.com",),
    ("65.2.0.192.in-addr.arpa", "PTR"): ("amy.example.com",),
    ("66.2.0.192.in-addr.arpa", "PTR"): ("bob.example.com",),
    ("129.2.0.192.in-addr.arpa", "PTR"): ("mail-a.example.com",),
    ("130.2.0.192.in-addr.arpa", "PTR"): ("mail-b.example.com",),
    ("140.2.0.192.in-addr.arpa", "PTR"): ("mail-c.example.org",),
    ("10.0.0.10.in-addr.arpa", "PTR"): ("bob.example.com",),
}

ADDRESSES = [
    "192.0.2.10", "192.0.2.11", "192.0.2.65", "192.0.2.66", "192.0.2.128", "192.0.2.129",
    "192.0.2.130", "192.0.2.131", "192.0.2.140", "192.0.2.143", "192.0.2.200", "10.0.0.10",
]  # fmt: skip


def spf(record: str, ip: str, extra: dict[tuple[str, str], tuple[str, ...]] | None = None) -> str:
    zone = {**ZONE, ("example.com", "TXT"): (record,), **(extra or {})}
    return run_offline(evaluate_spf(ip, "example.com"), zone).outcome.value


@pytest.mark.parametrize(
    ("record", "passing"),
    [
        ("v=spf1 +all", ADDRESSES),
        ("v=spf1 a -all", ["192.0.2.10", "192.0.2.11"]),
        ("v=spf1 a:example.org -all", []),
        ("v=spf1 mx -all", ["192.0.2.129", "192.0.2.130"]),
        ("v=spf1 mx:example.org -all", ["192.0.2.140"]),
        ("v=spf1 mx mx:example.org -all", ["192.0.2.129", "192.0.2.130", "192.0.2.140"]),
        (
            "v=spf1 mx/30 mx:example.org/30 -all",
            [
                "192.0.2.128",
                "192.0.2.129",
                "192.0.2.130",
                "192.0.2.131",
                "192.0.2.140",
                "192.0.2.143",
            ],
        ),
        (
            "v=spf1 ptr -all",
            ["192.0.2.10", "192.0.2.11", "192.0.2.65", "192.0.2.66", "192.0.2.129", "192.0.2.130"],
        ),
        (
            "v=spf1 ip4:192.0.2.128/28 -all",
            [
                "192.0.2.128",
                "192.0.2.129",
                "192.0.2.130",
                "192.0.2.131",
                "192.0.2.140",
                "192.0.2.143",
            ],
        ),
    ],
)
def test_rfc7208_appendix_a1(record: str, passing: list[str]) -> None:
    """Each example policy of appendix A.1 passes exactly the addresses the RFC lists."""
    for ip in ADDRESSES:
        assert spf(record, ip) == ("pass" if ip in passing else "fail"), ip


def test_include_passes_only_on_pass() -> None:
    """include: matches on the included pass; its fail or neutral does not match (5.2)."""
    extra = {
        ("a.example.net", "TXT"): ("v=spf1 ip4:192.0.2.1 -all",),
        ("b.example.net", "TXT"): ("v=spf1 ?all",),
    }
    record = "v=spf1 include:b.example.net include:a.example.net ~all"
    assert spf(record, "192.0.2.1", extra) == "pass"
    assert spf(record, "192.0.2.2", extra) == "softfail"


def test_include_of_domain_without_spf_is_permerror() -> None:
    """include: of a domain without a record is a PermError (5.2)."""
    assert spf("v=spf1 include:nothing.example.net -all", "192.0.2.1") == "permerror"


def test_redirect_and_all() -> None:
    """redirect= applies only when nothing matched; a target without SPF is a PermError."""
    extra = {("spf.example.net", "TXT"): ("v=spf1 ip4:192.0.2.5 ?all",)}
    assert spf("v=spf1 redirect=spf.example.net", "192.0.2.5", extra) == "pass"
    assert spf("v=spf1 redirect=spf.example.net", "192.0.2.6", extra) == "neutral"
    assert spf("v=spf1 -all redirect=spf.example.net", "192.0.2.5", extra) == "fail"
    assert spf("v=spf1 redirect=none.example.net", "192.0.2.5") == "permerror"


def test_no_record_is_none_and_two_records_permerror() -> None:
    """No SPF record gives none; two give PermError (4.5)."""
    zone = {("example.com", "TXT"): ("some other text",)}
    assert run_offline(evaluate_spf("192.0.2.1", "example.com"), zone).outcome is SPFOutcome.NONE
    zone = {("example.com", "TXT"): ("v=spf1 -all", "v=spf1 +all")}
    assert run_offline(evaluate_spf("192.0.2.1", "example.com"), zone).outcome.value == "permerror"
    assert run_offline(evaluate_spf("192.0.2.1", "example.com"), {}).outcome is SPFOutcome.NONE


def test_syntax_error_is_permerror() -> None:
    """A record that breaks the grammar is a PermError, whatever the IP."""
    assert spf("v=spf1 ip4:192.0.2.300 -all", "192.0.2.1") == "permerror"
    assert spf("v=spf1 foo:bar -all", "192.0.2.1") == "permerror"


def test_dns_failure_is_temperror() -> None:
    """A lookup that times out or SERVFAILs gives TempError."""
    zone = {("example.com", "TXT"): DnsStatus.ERROR}
    assert run_offline(evaluate_spf("192.0.2.1", "example.com"), zone).outcome.value == "temperror"
    extra = {("example.org", "A"): DnsStatus.ERROR}
    assert spf("v=spf1 a:example.org -all", "192.0.2.1", extra) == "temperror"  # type: ignore[dict-item]


def test_lookup_limit() -> None:
    """An 11th DNS-lookup term is a PermError; 10 are fine (4.6.4)."""
    extra = {(f"n{i}.example.net", "TXT"): ("v=spf1 -all",) for i in range(11)}
    ten = "v=spf1 " + " ".join(f"include:n{i}.example.net" for i in range(10)) + " +all"
    eleven = "v=spf1 " + " ".join(f"include:n{i}.example.net" for i in range(11)) + " +all"
    assert spf(ten, "192.0.2.1", extra) == "pass"
    result = run_offline(
        evaluate_spf("192.0.2.1", "example.com"),
        {**ZONE, **extra, ("example.com", "TXT"): (eleven,)},
    )
    assert result.outcome is SPFOutcome.PERMERROR
    assert result.lookups == 11
    assert "more than 10" in result.reason


def test_include_loop_ends_in_permerror() -> None:
    """A record that includes itself runs into the lookup limit instead of looping."""
    assert spf("v=spf1 include:example.com -all", "192.0.2.1") == "permerror"


def test_void_lookup_limit() -> None:
    """A third lookup that finds nothing is a PermError (4.6.4)."""
    record = "v=spf1 a:x1.example.net a:x2.example.net a:x3.example.net +all"
    assert spf(record, "192.0.2.1") == "permerror"
    record = "v=spf1 a:x1.example.net a:x2.example.net +all"
    assert spf(record, "192.0.2.1") == "pass"


def test_too_many_mx_names() -> None:
    """An mx mechanism over more than 10 MX records is a PermError."""
    extra = {("many.example.net", "MX"): tuple(f"10 m{i}.example.net" for i in range(11))}
    assert spf("v=spf1 mx:many.example.net -all", "192.0.2.1", extra) == "permerror"


def test_exists_and_macros() -> None:
    """exists: with %{i} asks for an A record named after the IP."""
    record = "v=spf1 exists:%{ir}.%{v}.allow.example.net -all"
    extra = {("1.2.0.192.in-addr.allow.example.net", "A"): ("127.0.0.2",)}
    assert spf(record, "192.0.2.1", extra) == "pass"
    assert spf(record, "192.0.2.2", extra) == "fail"


def test_ipv6_and_mapped_ipv4() -> None:
    """ip6 matches IPv6 senders; an IPv4-mapped address is checked as IPv4."""
    record = "v=spf1 ip6:2001:db8::/32 ip4:192.0.2.0/24 -all"
    assert spf(record, "2001:db8::1") == "pass"
    assert spf(record, "2001:db9::1") == "fail"
    assert spf(record, "::ffff:192.0.2.7") == "pass"


def test_a_with_dual_cidr_for_ipv6() -> None:
    """a//64 compares the first 64 bits of AAAA records."""
    extra = {("example.com", "AAAA"): ("2001:db8:1:2::10",)}
    assert spf("v=spf1 a//64 -all", "2001:db8:1:2::99", extra) == "pass"
    assert spf("v=spf1 a -all", "2001:db8:1:2::99", extra) == "fail"


SENDER = "strong-bad@email.example.com"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("%{s}", "strong-bad@email.example.com"),
        ("%{o}", "email.example.com"),
        ("%{d}", "email.example.com"),
        ("%{d4}", "email.example.com"),
        ("%{d3}", "email.example.com"),
        ("%{d2}", "example.com"),
        ("%{d1}", "com"),
        ("%{dr}", "com.example.email"),
        ("%{d2r}", "example.email"),
        ("%{l}", "strong-bad"),
        ("%{l-}", "strong.bad"),
        ("%{lr}", "strong-bad"),
        ("%{lr-}", "bad.strong"),
        ("%{l1r-}", "strong"),
        ("%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"),
        ("%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"),
        ("%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"),
        ("%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com"),
        ("%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net"),
    ],
)
def test_rfc7208_section_7_4_macros(spec: str, expected: str) -> None:
    """The macro examples of section 7.4 expand as the RFC shows."""
    ip = ipaddress.ip_address("192.0.2.3")
    assert (
        expand_macros(spec, ip=ip, sender=SENDER, domain="email.example.com", helo="h") == expected
    )


def test_rfc7208_ipv6_macro() -> None:
    """%{ir} of an IPv6 address is its reversed nibbles (section 7.4)."""
    ip = ipaddress.ip_address("2001:db8::cb01")
    expected = (
        "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com"
    )
    got = expand_macros(
        "%{ir}.%{v}._spf.%{d2}", ip=ip, sender=SENDER, domain="email.example.com", helo="h"
    )
    assert got == expected


@given(record=st.text(max_size=80), ip=st.ip_addresses())
def test_any_record_gives_a_result(
    record: str, ip: ipaddress.IPv4Address | ipaddress.IPv6Address
) -> None:
    """Whatever the published text, evaluation ends in an outcome and never raises."""
    zone = {**ZONE, ("example.com", "TXT"): ("v=spf1 " + record,)}
    result = run_offline(evaluate_spf(ip, "example.com"), zone)
    assert result.outcome in set(SPFOutcome)
    assert result.lookups <= 11
