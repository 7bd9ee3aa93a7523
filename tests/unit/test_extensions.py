"""Reading the EHLO reply into Extensions: tables, odd servers, and properties."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailtransfer.protocol._extensions import Extensions
from mailtransfer.protocol._reply import Reply, ReplyParser


def ehlo(*lines: str) -> Extensions:
    """Extensions from a 250 reply whose first line names the server."""
    return Extensions.from_ehlo(Reply(250, ("mx.example.org ESMTP", *lines)))


def test_postfix_style_reply() -> None:
    """A typical reply sets the matching typed fields and records every keyword."""
    ext = ehlo(
        "PIPELINING",
        "SIZE 10240000",
        "VRFY",
        "ETRN",
        "STARTTLS",
        "ENHANCEDSTATUSCODES",
        "8BITMIME",
        "DSN",
        "SMTPUTF8",
        "CHUNKING",
    )
    assert ext.domain == "mx.example.org"
    assert (ext.pipelining, ext.starttls, ext.enhancedstatuscodes) == (True, True, True)
    assert (ext.eightbitmime, ext.dsn, ext.smtputf8, ext.chunking) == (True, True, True, True)
    assert (ext.binarymime, ext.requiretls) == (False, False)
    assert ext.size == 10240000
    assert ext.auth == frozenset()
    assert dict(ext.keywords) == {
        "PIPELINING": "",
        "SIZE": "10240000",
        "VRFY": "",
        "ETRN": "",
        "STARTTLS": "",
        "ENHANCEDSTATUSCODES": "",
        "8BITMIME": "",
        "DSN": "",
        "SMTPUTF8": "",
        "CHUNKING": "",
    }


FLAGS = [
    ("PIPELINING", "pipelining"),
    ("8BITMIME", "eightbitmime"),
    ("SMTPUTF8", "smtputf8"),
    ("CHUNKING", "chunking"),
    ("BINARYMIME", "binarymime"),
    ("DSN", "dsn"),
    ("REQUIRETLS", "requiretls"),
    ("STARTTLS", "starttls"),
    ("ENHANCEDSTATUSCODES", "enhancedstatuscodes"),
]


@pytest.mark.parametrize(("keyword", "attribute"), FLAGS)
def test_each_keyword_sets_only_its_flag(keyword: str, attribute: str) -> None:
    """Each known keyword turns on its own typed field and no other."""
    ext = ehlo(keyword.lower())
    on = {name for _, name in FLAGS if getattr(ext, name)}
    assert on == {attribute}


@pytest.mark.parametrize(
    ("line", "size"),
    [
        ("SIZE 35882577", 35882577),
        ("SIZE", 0),
        ("SIZE 0", 0),
        ("size 12", 12),
        ("SIZE   77  ", 77),
        ("SIZE abc", None),
        ("SIZE -5", None),
        ("SIZE 1.5", None),
        ("SIZE 10 20", None),
        ("SIZE \u0661\u0662", None),
        ("SIZE " + "9" * 5000, None),
    ],
)
def test_size_parameter(line: str, size: int | None) -> None:
    """SIZE gives its limit, 0 for no fixed limit, and None when malformed."""
    assert ehlo(line).size == size


def test_malformed_size_keeps_the_keyword() -> None:
    """A malformed SIZE parameter still shows SIZE as advertised in keywords."""
    ext = ehlo("SIZE lots")
    assert ext.size is None
    assert ext.has("SIZE")


def test_size_absent_is_none() -> None:
    """Without SIZE, size is None."""
    assert ehlo("PIPELINING").size is None


@pytest.mark.parametrize(
    ("lines", "mechanisms"),
    [
        (["AUTH PLAIN LOGIN"], {"PLAIN", "LOGIN"}),
        (["AUTH=PLAIN LOGIN"], {"PLAIN", "LOGIN"}),
        (["auth plain xoauth2"], {"PLAIN", "XOAUTH2"}),
        (["AUTH CRAM-MD5", "AUTH=LOGIN"], {"CRAM-MD5", "LOGIN"}),
        (["AUTH=LOGIN", "AUTH PLAIN"], {"PLAIN", "LOGIN"}),
        (["AUTH GSSAPI", "AUTH NTLM"], {"GSSAPI", "NTLM"}),
        (["AUTH"], set()),
        (["AUTH="], set()),
    ],
)
def test_auth_mechanisms_from_both_forms(lines: list[str], mechanisms: set[str]) -> None:
    """AUTH mechanisms from the standard and the old ``AUTH=`` form are merged, upper-cased."""
    assert ehlo(*lines).auth == mechanisms


def test_old_auth_form_alone_still_advertises_auth() -> None:
    """A server sending only ``AUTH=LOGIN`` is treated as offering AUTH."""
    ext = ehlo("AUTH=LOGIN PLAIN")
    assert ext.has("auth")
    assert ext.keywords["AUTH"] == "LOGIN PLAIN"


def test_standard_auth_line_wins_the_keyword_entry() -> None:
    """With both forms, keywords["AUTH"] holds the standard line's parameters."""
    ext = ehlo("AUTH=LOGIN", "AUTH PLAIN CRAM-MD5")
    assert ext.keywords["AUTH"] == "PLAIN CRAM-MD5"


@pytest.mark.parametrize(
    "line",
    [
        "",
        "   ",
        "-BAD",
        "X_UNDERSCORE",
        "ÜBER",
        "SIZE=100",
        ".",
        "LINING?",
        "\u017fIZE 1",
        "\u0131x",
    ],
)
def test_invalid_lines_are_ignored(line: str) -> None:
    """Lines that are not valid ehlo-lines are skipped without failing."""
    ext = ehlo("PIPELINING", line, "DSN")
    assert set(ext.keywords) == {"PIPELINING", "DSN"}


def test_keywords_are_upper_cased_and_params_kept() -> None:
    """Keywords are stored upper-cased; parameters keep their case, single-spaced."""
    ext = ehlo("x-Custom-Ext  Alpha   beta")
    assert dict(ext.keywords) == {"X-CUSTOM-EXT": "Alpha beta"}


def test_duplicate_keyword_keeps_first_parameters() -> None:
    """A keyword listed twice keeps the parameters of its first line."""
    assert ehlo("SIZE 100", "SIZE 200").size == 100


def test_keywords_are_read_only() -> None:
    """The keywords mapping cannot be changed."""
    ext = ehlo("PIPELINING")
    with pytest.raises(TypeError):
        ext.keywords["DSN"] = ""  # type: ignore[index]


@pytest.mark.parametrize("name", ["pipelining", "PIPELINING", "PipeLining"])
def test_has_is_case_insensitive(name: str) -> None:
    """has() finds a keyword whatever its case."""
    assert ehlo("Pipelining").has(name)


def test_has_unknown_keyword_is_false() -> None:
    """has() is False for a keyword the server did not list."""
    assert not ehlo("PIPELINING").has("CHUNKING")


@pytest.mark.parametrize(
    ("first", "domain"),
    [
        ("mx.example.org Hello client [192.0.2.1]", "mx.example.org"),
        ("mx.example.org", "mx.example.org"),
        ("  spaced.example ", "spaced.example"),
        ("", ""),
    ],
)
def test_domain_is_first_word_of_first_line(first: str, domain: str) -> None:
    """The domain is the first word of the reply's first line."""
    assert Extensions.from_ehlo(Reply(250, (first, "PIPELINING"))).domain == domain


def test_first_line_is_never_a_keyword() -> None:
    """The greeting line names the server and is not read as a keyword."""
    ext = Extensions.from_ehlo(Reply(250, ("PIPELINING",)))
    assert not ext.pipelining
    assert ext.domain == "PIPELINING"


def test_from_helo_has_no_extensions() -> None:
    """A HELO reply sets only the domain, even if its lines look like keywords."""
    ext = Extensions.from_helo(Reply(250, ("mx.example.org hi", "PIPELINING")))
    assert ext.domain == "mx.example.org"
    assert dict(ext.keywords) == {}
    assert not ext.pipelining


def test_empty_offers_nothing() -> None:
    """empty() has no domain, no keywords, no size and no mechanisms."""
    ext = Extensions.empty()
    assert (ext.domain, dict(ext.keywords), ext.size, ext.auth) == ("", {}, None, frozenset())
    assert not any(getattr(ext, name) for _, name in FLAGS)


def test_direct_construction_copies_the_mapping() -> None:
    """Changing the dict passed to the constructor does not change the value."""
    source = {"PIPELINING": ""}
    ext = Extensions(keywords=source, pipelining=True)
    source["DSN"] = ""
    assert dict(ext.keywords) == {"PIPELINING": ""}


def test_equal_replies_give_equal_hashable_values() -> None:
    """Two reads of the same reply are equal and hash alike."""
    a, b = ehlo("PIPELINING", "SIZE 5"), ehlo("PIPELINING", "SIZE 5")
    assert a == b
    assert hash(a) == hash(b)
    assert a != ehlo("PIPELINING", "SIZE 6")


def test_from_bytes_through_the_reply_parser() -> None:
    """Bytes of a real-looking EHLO reply end up as the expected extensions."""
    parser = ReplyParser()
    parser.feed(
        b"250-smtp.example.com at your service\r\n250-SIZE 35882577\r\n"
        b"250-8BITMIME\r\n250-AUTH LOGIN PLAIN XOAUTH2\r\n250-ENHANCEDSTATUSCODES\r\n"
        b"250-PIPELINING\r\n250-CHUNKING\r\n250 SMTPUTF8\r\n"
    )
    reply = parser.next_reply()
    assert reply is not None
    ext = Extensions.from_ehlo(reply)
    assert ext.domain == "smtp.example.com"
    assert ext.size == 35882577
    assert ext.auth == {"LOGIN", "PLAIN", "XOAUTH2"}
    assert ext.chunking
    assert ext.smtputf8


# --- properties -------------------------------------------------------------------

KNOWN = [k for k, _ in FLAGS] + ["SIZE", "VRFY", "ETRN", "DELIVERBY"]
keyword = st.sampled_from(KNOWN) | st.from_regex(r"[A-Za-z0-9][A-Za-z0-9-]{0,15}", fullmatch=True)
# RFC 5321 4.1.1.1: ehlo-param = 1*(%d33-126)
param = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=10)
mechanism = st.from_regex(r"[A-Za-z0-9_-]{1,20}", fullmatch=True)
domain = st.from_regex(r"[a-z0-9][a-z0-9.-]{0,20}", fullmatch=True)
case = st.sampled_from([str.upper, str.lower, str.title, lambda s: s])


@st.composite
def keyword_sets(draw: st.DrawFn) -> dict[str, list[str]]:
    """Distinct keywords (AUTH excluded), each with a list of parameters."""
    names = draw(
        st.lists(keyword.filter(lambda k: k.upper() != "AUTH"), unique_by=str.upper, max_size=12)
    )
    return {name: draw(st.lists(param, max_size=3)) for name in names}


@given(domain, keyword_sets(), case)
def test_random_keyword_sets_round_trip(
    host: str, advertised: dict[str, list[str]], recase: Callable[[str], str]
) -> None:
    """Keywords listed in any case come back upper-cased with their parameters, flags matching."""
    lines = [f"{recase(name)} {' '.join(params)}".rstrip() for name, params in advertised.items()]
    ext = Extensions.from_ehlo(Reply(250, (f"{host} greets you", *lines)))
    assert ext.domain == host
    assert dict(ext.keywords) == {n.upper(): " ".join(p) for n, p in advertised.items()}
    for name, attribute in FLAGS:
        assert getattr(ext, attribute) == (name in ext.keywords)
    assert all(ext.has(name.lower()) for name in advertised)


@given(st.lists(mechanism, max_size=5), st.lists(mechanism, max_size=5), st.booleans())
def test_auth_mechanisms_are_the_union_of_both_forms(
    standard: list[str], old: list[str], old_first: bool
) -> None:
    """Mechanisms from ``AUTH`` and ``AUTH=`` lines merge into one upper-cased set."""
    lines = ["AUTH " + " ".join(standard), "AUTH=" + " ".join(old)]
    if old_first:
        lines.reverse()
    ext = ehlo(*lines)
    assert ext.auth == {m.upper() for m in standard + old}
    assert ext.has("AUTH")


@given(domain, keyword_sets())
def test_rendered_extensions_parse_back_equal(host: str, advertised: dict[str, list[str]]) -> None:
    """Extensions rendered to EHLO bytes and parsed again are equal to the original."""
    original = Extensions.from_keywords(host, {n: " ".join(p) for n, p in advertised.items()})
    lines = [host, *(f"{k} {v}".rstrip() for k, v in original.keywords.items())]
    wire = b"".join(
        f"250{'-' if i < len(lines) - 1 else ' '}{line}\r\n".encode()
        for i, line in enumerate(lines)
    )
    parser = ReplyParser()
    parser.feed(wire)
    reply = parser.next_reply()
    assert reply is not None
    assert Extensions.from_ehlo(reply) == original
