"""Property and example tests for every record parser: tag lists, SPF, DMARC, DKIM, TLS-RPT
and BIMI. Canonical text round-trips; arbitrary text never raises anything but
InvalidRecord."""

from __future__ import annotations

import base64
import contextlib
import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailtransfer.deliverability import (
    DMARCRecord,
    InvalidRecord,
    Mechanism,
    Qualifier,
    SPFRecord,
    dmarc_candidates,
    parse_bimi,
    parse_dkim_key,
    parse_dmarc,
    parse_spf,
    parse_tag_list,
    parse_tlsrpt,
)
from mailtransfer.dkim import generate_key

# -- strategies ---------------------------------------------------------------------------

tag_names = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,8}", fullmatch=True)
tag_values = st.from_regex(r"(?:[!-:<-~]{1,12}(?: [!-:<-~]{1,12}){0,2})?", fullmatch=True)
labels = st.from_regex(r"[a-z][a-z0-9]{0,10}", fullmatch=True)
domains = st.lists(labels, min_size=2, max_size=4).map(".".join)
qualifiers = st.sampled_from(list(Qualifier))
networks4 = st.builds(
    lambda n, p: ipaddress.IPv4Network(f"{ipaddress.IPv4Address(n)}/{p}", strict=False),
    st.integers(0, 2**32 - 1),
    st.integers(0, 32),
)
networks6 = st.builds(
    lambda n, p: ipaddress.IPv6Network(f"{ipaddress.IPv6Address(n)}/{p}", strict=False),
    st.integers(0, 2**128 - 1),
    st.integers(0, 128),
)
mechanisms = st.one_of(
    st.builds(lambda q: Mechanism(qualifier=q, kind="all"), qualifiers),
    st.builds(
        lambda q, k, d: Mechanism(qualifier=q, kind=k, domain=d),
        qualifiers,
        st.sampled_from(["include", "exists"]),
        domains,
    ),
    st.builds(
        lambda q, k, d, c4, c6: Mechanism(qualifier=q, kind=k, domain=d, cidr4=c4, cidr6=c6),
        qualifiers,
        st.sampled_from(["a", "mx"]),
        st.none() | domains,
        st.none() | st.integers(0, 32),
        st.none() | st.integers(0, 128),
    ),
    st.builds(
        lambda q, d: Mechanism(qualifier=q, kind="ptr", domain=d), qualifiers, st.none() | domains
    ),
    st.builds(lambda q, n: Mechanism(qualifier=q, kind="ip4", network=n), qualifiers, networks4),
    st.builds(lambda q, n: Mechanism(qualifier=q, kind="ip6", network=n), qualifiers, networks6),
)
spf_records = st.builds(
    lambda m, r, e: SPFRecord(mechanisms=tuple(m), redirect=r, explanation=e),
    st.lists(mechanisms, max_size=8),
    st.none() | domains,
    st.none() | domains,
)
mailtos = st.builds(lambda u, d: f"mailto:{u}@{d}", labels, domains)


# -- tag lists --------------------------------------------------------------------------


@given(st.dictionaries(tag_names, tag_values, max_size=6))
def test_tag_list_round_trip(tags: dict[str, str]) -> None:
    """Rendering a tag list with any spacing and parsing it gives the same tags back."""
    for separator in (";", "; ", " ;\t", ";\r\n "):
        text = separator.join(f"{k} = {v}" for k, v in tags.items())
        assert parse_tag_list(text) == {k: v for k, v in tags.items()}
        if tags:
            assert parse_tag_list(text + ";") == tags


@given(st.text(max_size=80))
def test_tag_list_never_crashes(text: str) -> None:
    """Any text parses or raises InvalidRecord, nothing else."""
    with contextlib.suppress(InvalidRecord):
        parse_tag_list(text)


@pytest.mark.parametrize("bad", ["a=1; a=2", "=1", "1a=2", "a", "a=1;;b=2", "a=x;y"])
def test_tag_list_rejects(bad: str) -> None:
    """Duplicates, empty tags, bad names and missing '=' are refused."""
    with pytest.raises(InvalidRecord):
        parse_tag_list(bad)


# -- SPF --------------------------------------------------------------------------------


@given(spf_records)
def test_spf_round_trip(record: SPFRecord) -> None:
    """str() of a record parses back to an equal record."""
    assert parse_spf(str(record)) == record


@given(st.text(max_size=120))
def test_spf_never_crashes(text: str) -> None:
    """Any text parses or raises InvalidRecord."""
    with contextlib.suppress(InvalidRecord):
        parse_spf("v=spf1 " + text)


@pytest.mark.parametrize(
    "bad",
    [
        "v=spf2 -all",
        "v=spf1 ip4:1.2.3.4/33",
        "v=spf1 ip4:1.2.3",
        "v=spf1 ip6:192.0.2.1",
        "v=spf1 include",
        "v=spf1 include:localhost",
        "v=spf1 a/024",
        "v=spf1 all:x",
        "v=spf1 redirect=a.example redirect=b.example",
        "v=spf1 -foo",
        "v=spf1 exists:%{z}.example.org",
    ],
)
def test_spf_rejects(bad: str) -> None:
    """RFC 7208 section 12 grammar violations are InvalidRecord."""
    with pytest.raises(InvalidRecord):
        parse_spf(bad)


def test_spf_terms_and_lookups() -> None:
    """Qualifiers, dual CIDR and modifiers are parsed; lookup terms counted."""
    record = parse_spf(
        "v=spf1 +a/24//64 ~mx:Example.org ?ptr -exists:%{i}.x.example ip6:2001:db8::/32"
        " include:_spf.example.net redirect=r.example exp=e.example foo=bar"
    )
    first = record.mechanisms[0]
    assert (first.kind, first.cidr4, first.cidr6) == ("a", 24, 64)
    assert [m.qualifier.value for m in record.mechanisms[:4]] == ["+", "~", "?", "-"]
    assert record.lookup_terms == 6
    assert record.modifiers == (("foo", "bar"),)
    assert record.all is None


# -- DMARC ------------------------------------------------------------------------------


policies = st.sampled_from(["none", "quarantine", "reject"])
dmarc_records = st.builds(
    DMARCRecord,
    policy=policies,
    subdomain_policy=st.none() | policies,
    adkim=st.sampled_from("rs"),
    aspf=st.sampled_from("rs"),
    pct=st.integers(0, 100),
    rua=st.lists(mailtos, max_size=3).map(tuple),
    ruf=st.lists(mailtos, max_size=2).map(tuple),
    fo=st.sampled_from(["0", "1", "d", "s", "0:d"]),
    interval=st.integers(0, 2**32 - 1),
)


@given(dmarc_records)
def test_dmarc_round_trip(record: DMARCRecord) -> None:
    """str() of a DMARC record parses back to an equal record."""
    assert parse_dmarc(str(record)) == record


@given(st.text(max_size=80))
def test_dmarc_never_crashes(text: str) -> None:
    """Any text parses or raises InvalidRecord."""
    with contextlib.suppress(InvalidRecord):
        parse_dmarc("v=DMARC1; " + text)


@pytest.mark.parametrize(
    "bad",
    [
        "p=reject; v=DMARC1",
        "v=DMARC1",
        "v=DMARC1; p=block",
        "v=DMARC1; p=none; pct=101",
        "v=DMARC1; p=none; adkim=x",
        "v=DMARC1; p=none; rua=https://example.org/r",
    ],
)
def test_dmarc_rejects(bad: str) -> None:
    """v= not first, a missing or unknown policy, out-of-range tags are refused."""
    with pytest.raises(InvalidRecord):
        parse_dmarc(bad)


def test_dmarc_tree_walk() -> None:
    """Candidates go up to the two-label domain, at most 8, jumping long names to 7 labels."""
    assert dmarc_candidates("example.org") == ["example.org"]
    long = ".".join(f"l{i}" for i in range(10)) + ".example.org"
    names = dmarc_candidates(long)
    assert names[0] == long
    assert names[1].count(".") == 6
    assert names[-1] == "example.org"
    assert len(names) <= 8


# -- DKIM -------------------------------------------------------------------------------


def test_dkim_generated_keys_parse() -> None:
    """Keys made by mailtransfer.dkim.generate_key parse with their type and size."""
    rsa = parse_dkim_key(generate_key("rsa", bits=2048)[1])
    assert (rsa.key_type, rsa.bits, rsa.weak, rsa.revoked) == ("rsa", 2048, False, False)
    ed = parse_dkim_key(generate_key("ed25519")[1])
    assert (ed.key_type, ed.bits) == ("ed25519", 256)


@given(
    raw=st.binary(min_size=32, max_size=32),
    flags=st.lists(st.sampled_from(["y", "s"]), unique=True),
    notes=tag_values,
)
def test_dkim_ed25519_any_key(raw: bytes, flags: list[str], notes: str) -> None:
    """Any 32 bytes are an Ed25519 key record; t= flags are read, with folded p= values."""
    p = base64.b64encode(raw).decode()
    folded = " ".join(p[i : i + 10] for i in range(0, len(p), 10))
    text = f"v=DKIM1; k=ed25519; t={':'.join(flags)}; n={notes}; p={folded}"
    key = parse_dkim_key(text)
    assert key.bits == 256
    assert key.testing == ("y" in flags)


@given(st.text(max_size=80))
def test_dkim_never_crashes(text: str) -> None:
    """Any text parses or raises InvalidRecord."""
    with contextlib.suppress(InvalidRecord):
        parse_dkim_key("v=DKIM1; " + text)


@pytest.mark.parametrize(
    "bad",
    [
        "k=rsa; v=DKIM1; p=",
        "v=DKIM2; p=",
        "v=DKIM1; k=rsa",
        "v=DKIM1; k=dsa; p=AAAA",
        "v=DKIM1; p=!!!!",
        "v=DKIM1; p=bm90IGEga2V5",
        "v=DKIM1; k=ed25519; p=AAAA",
    ],
)
def test_dkim_rejects(bad: str) -> None:
    """v= not first, no p=, unknown k=, bad base64, keys that do not load are refused."""
    with pytest.raises(InvalidRecord):
        parse_dkim_key(bad)


def test_dkim_revoked() -> None:
    """An empty p= is a revoked key, not an error."""
    key = parse_dkim_key("v=DKIM1; p=")
    assert key.revoked
    assert key.bits == 0
    assert not key.weak


# -- TLS-RPT and BIMI (MTA-STS records are parsed by mailtransfer.tls.mta_sts) ---------


@given(
    st.lists(
        st.one_of(mailtos, domains.map(lambda d: f"https://{d}/tlsrpt")), min_size=1, max_size=3
    )
)
def test_tlsrpt_round_trip(uris: list[str]) -> None:
    """Any mailto:/https: list is read back in order."""
    assert parse_tlsrpt(f"v=TLSRPTv1; rua={', '.join(uris)}").rua == tuple(uris)


@pytest.mark.parametrize(
    "bad", ["v=TLSRPTv1", "rua=mailto:a@b.example; v=TLSRPTv1", "v=TLSRPTv1; rua=http://x.example/"]
)
def test_tlsrpt_rejects(bad: str) -> None:
    """No rua, v= not first, a URI that is neither mailto: nor https: are refused."""
    with pytest.raises(InvalidRecord):
        parse_tlsrpt(bad)


def test_bimi() -> None:
    """l= and a= must be https: URLs; an empty l= declines."""
    assert parse_bimi("v=BIMI1; l=; a=").logo == ""
    with pytest.raises(InvalidRecord):
        parse_bimi("v=BIMI1; l=http://example.org/logo.svg")
