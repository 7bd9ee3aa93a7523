"""Tests for mailtransfer.tls.mta_sts: TXT and policy parsers, MX matching, the cache."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from mailtransfer.tls.mta_sts import (
    MAX_POLICY_SIZE,
    MTASTS,
    MTASTSCache,
    MTASTSMode,
    MTASTSPolicy,
    mx_matches,
    parse_policy,
    parse_txt,
    policy_url,
)

label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
hostname = st.lists(label, min_size=2, max_size=4).map(".".join)
ident = st.from_regex(r"[A-Za-z0-9]{1,32}", fullmatch=True)


# ------------------------------------------------------------------ TXT record


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("v=STSv1; id=20160831085700Z;", "20160831085700Z"),
        ("v=STSv1;id=abc", "abc"),
        ("v=STSv1; id=1; ext=value", "1"),
    ],
)
def test_parse_txt(text: str, expected: str) -> None:
    """Valid records give their id; unknown extension fields are allowed."""
    assert parse_txt(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "v=STSv2; id=1",
        "id=1; v=STSv1",
        "v=STSv1",
        "v=STSv1; id=",
        "v=STSv1; id=" + "a" * 33,
        "v=STSv1; id=a-b",
        "v=STSv1; id=1; broken",
        "",
    ],
)
def test_parse_txt_rejects(text: str) -> None:
    """Malformed records raise ValueError (the domain then has no policy)."""
    with pytest.raises(ValueError, match="MTA-STS"):
        parse_txt(text)


@given(ident, st.lists(st.sampled_from([" ", "\t", ""]), min_size=3, max_size=3))
def test_parse_txt_round_trip(value: str, spaces: list[str]) -> None:
    """Any valid id, with optional whitespace around fields, parses back."""
    a, b, c = spaces
    assert parse_txt(f"v=STSv1;{a}id={value}{b};{c}") == value


@given(st.text(max_size=80))
def test_parse_txt_never_crashes(text: str) -> None:
    """Arbitrary text either parses to a valid id or raises ValueError."""
    try:
        result = parse_txt(text)
    except ValueError:
        return
    assert 1 <= len(result) <= 32
    assert result.isalnum()


# ------------------------------------------------------------------ policy file


def test_parse_policy() -> None:
    """The RFC 8461 §3.2 example parses, LF or CRLF."""
    text = (
        "version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmax_age: 1296000\n"
    )
    for body in (text, text.replace("\n", "\r\n").encode()):
        policy = parse_policy(body, id="x1")
        assert policy == MTASTSPolicy(
            mode=MTASTSMode.ENFORCE,
            max_age=1296000,
            mx=("mail.example.com", "*.example.net"),
            id="x1",
        )


def test_policy_mode_none_needs_no_mx() -> None:
    """A mode none policy may list no mx."""
    policy = parse_policy("version: STSv1\nmode: none\nmax_age: 86400\n")
    assert policy.mode is MTASTSMode.NONE
    assert policy.mx == ()


@pytest.mark.parametrize(
    "text",
    [
        "mode: enforce\nmx: a.example\nmax_age: 1\n",
        "version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1\n",
        "version: STSv1\nmode: strict\nmx: a.example\nmax_age: 1\n",
        "version: STSv1\nmode: enforce\nmax_age: 1\n",
        "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: -1\n",
        "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 31557601\n",
        "version: STSv1\nmode: enforce\nmx: a.example\n",
        "version: STSv1\nmode: enforce\nmx: a..example\nmax_age: 1\n",
        "version: STSv1\nmode: enforce\nmx: a.*.example\nmax_age: 1\n",
        "version: STSv1\nmode enforce\nmx: a.example\nmax_age: 1\n",
    ],
)
def test_parse_policy_rejects(text: str) -> None:
    """Policies missing or misusing a required field raise ValueError."""
    with pytest.raises(ValueError, match=r"\w"):
        parse_policy(text)


def test_parse_policy_size_limit() -> None:
    """A file over 64 KiB is refused."""
    with pytest.raises(ValueError, match="larger"):
        parse_policy(b"x" * (MAX_POLICY_SIZE + 1))


policies = st.builds(
    lambda mode, age, mx: (mode, age, mx),
    st.sampled_from(["enforce", "testing"]),
    st.integers(0, 31557600),
    st.lists(st.one_of(hostname, hostname.map(lambda h: "*." + h)), min_size=1, max_size=4),
)


@given(policies, st.sampled_from(["\n", "\r\n"]), st.booleans())
def test_parse_policy_round_trip(
    fields: tuple[str, int, list[str]], newline: str, extra: bool
) -> None:
    """Any well-formed policy, with unknown keys mixed in, parses back to its fields."""
    mode, age, mx = fields
    lines = ["version: STSv1", f"mode: {mode}", f"max_age: {age}"]
    lines += [f"mx: {m}" for m in mx]
    if extra:
        lines.insert(1, "x-extension: whatever: with colons")
    policy = parse_policy(newline.join(lines) + newline)
    assert (policy.mode.value, policy.max_age, list(policy.mx)) == (mode, age, mx)


@given(st.binary(max_size=300))
def test_parse_policy_never_crashes(body: bytes) -> None:
    """Arbitrary bytes either parse or raise ValueError."""
    try:
        policy = parse_policy(body)
    except ValueError:
        return
    assert policy.mode is MTASTSMode.NONE or policy.mx


# ------------------------------------------------------------------ MX matching


@pytest.mark.parametrize(
    ("pattern", "host", "expected"),
    [
        ("mx.example.org", "mx.example.org", True),
        ("mx.example.org", "MX.Example.ORG.", True),
        ("*.example.org", "mx.example.org", True),
        ("*.example.org", "example.org", False),
        ("*.example.org", "a.b.example.org", False),
        ("*.example.org", "mxexample.org", False),
        ("mx.example.org", "mx2.example.org", False),
    ],
)
def test_mx_matches(pattern: str, host: str, expected: bool) -> None:
    """Wildcards cover exactly one leftmost label (RFC 8461 §4.1)."""
    assert mx_matches(pattern, host) is expected


@given(label, hostname)
def test_wildcard_matches_one_label_only(first: str, domain: str) -> None:
    """*.D matches L.D, never D or L.L.D."""
    assert mx_matches(f"*.{domain}", f"{first}.{domain}")
    assert not mx_matches(f"*.{domain}", domain)
    assert not mx_matches(f"*.{domain}", f"{first}.{first}.{domain}")


@given(hostname, hostname)
def test_exact_pattern_matches_only_itself(pattern: str, host: str) -> None:
    """A pattern without a wildcard matches only the same name."""
    assume(pattern != host)
    assert mx_matches(pattern, pattern)
    assert not mx_matches(pattern, host)


# ------------------------------------------------------------------ cache, policy


def test_cache_expires_by_max_age() -> None:
    """A cached policy is returned until max_age seconds have passed."""
    cache = MTASTSCache()
    policy = MTASTSPolicy(mode=MTASTSMode.ENFORCE, max_age=100, mx=("a.test",), id="1")
    cache.put("example.test", policy, now=1000.0)
    assert cache.get("example.test", 1099.0) is policy
    assert cache.get("example.test", 1100.0) is None
    assert cache.get("other.test", 1000.0) is None
    assert "0 domain" in repr(cache)


def test_policy_allows_and_tls_policy() -> None:
    """allows() applies the patterns; the MTASTS TLS policy requires verified STARTTLS."""
    policy = MTASTSPolicy(mode=MTASTSMode.ENFORCE, max_age=1, mx=("*.example.test",))
    assert policy.allows("mx1.example.test")
    assert not policy.allows("evil.test")
    tls = MTASTS(policy=policy, server_hostname="mx1.example.test")
    assert tls.required
    context = tls.ssl_context()
    assert context.check_hostname
    assert policy_url("example.test") == "https://mta-sts.example.test/.well-known/mta-sts.txt"
