"""Mailer URLs and keyword settings: ``parse_url`` and ``MailerConfig.resolve``."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailtransfer import ImplicitTLS, NoTLS, Opportunistic, Password, StartTLS, parse_url
from mailtransfer._settings import Endpoint, MailerConfig
from mailtransfer.config import PoolLimits, Timeouts
from mailtransfer.errors import UsageError

SECRET = "Sup3r-Secr3t-Pa55"


# -- schemes, hosts and ports ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "port", "policy", "lmtp"),
    [
        ("smtp://mail.example.org", 587, StartTLS, False),
        ("smtps://mail.example.org", 465, ImplicitTLS, False),
        ("lmtp://mail.example.org", 24, NoTLS, True),
        ("SMTP://mail.example.org", 587, StartTLS, False),
        ("smtp://mail.example.org:25", 25, StartTLS, False),
        ("smtps://mail.example.org:2465", 2465, ImplicitTLS, False),
        ("lmtp://mail.example.org:2003", 2003, NoTLS, True),
        ("smtp://mail.example.org:587/", 587, StartTLS, False),
    ],
)
def test_scheme_sets_default_port_tls_and_protocol(
    url: str, port: int, policy: type, lmtp: bool
) -> None:
    """Each scheme has its port, TLS policy and protocol; an explicit port wins."""
    endpoint = parse_url(url).endpoint
    assert (endpoint.host, endpoint.port, endpoint.lmtp) == ("mail.example.org", port, lmtp)
    assert type(endpoint.tls) is policy


def test_ipv6_literal_host() -> None:
    """A bracketed IPv6 literal gives the bare address as host."""
    endpoint = parse_url("smtp://[2001:db8::25]:2525?tls=none").endpoint
    assert (endpoint.host, endpoint.port) == ("2001:db8::25", 2525)


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("http://mail.example.org", "scheme"),
        ("mail.example.org:25", "scheme"),
        ("smtp://", "host"),
        ("smtp://:25", "host"),
        ("smtp://mail.example.org:0", "port"),
        ("smtp://mail.example.org:65536", "port"),
        ("smtp://mail.example.org:25x", "port"),
        ("smtp://mail.example.org/inbox", "path"),
        ("smtp://mail.example.org#frag", "fragment"),
    ],
)
def test_malformed_urls_rejected(url: str, fragment: str) -> None:
    """A bad scheme, host, port, path or fragment is a UsageError saying which."""
    with pytest.raises(UsageError, match=fragment):
        parse_url(url)


def test_non_string_url_rejected() -> None:
    """A URL that is not a str is a UsageError naming the type."""
    with pytest.raises(UsageError, match="bytes"):
        parse_url(b"smtp://mail.example.org")  # type: ignore[arg-type]


@given(st.integers(min_value=1, max_value=65535))
def test_any_valid_port_round_trips(port: int) -> None:
    """Every port from 1 to 65535 is read back as given."""
    assert parse_url(f"smtp://mail.example.org:{port}").endpoint.port == port


# -- credentials -------------------------------------------------------------------------------


def test_percent_encoded_credentials_decoded() -> None:
    """``%40``, ``%3A``, ``%2F``, ``%3F``, ``%23`` and ``%25`` decode; ``+`` stays a plus."""
    url = "smtp://alice%40corp.example:p%40ss%3Aw%2Fo%3Frd%23%25+1@mail.example.org"
    credentials = parse_url(url).endpoint.credentials
    assert credentials == Password("alice@corp.example", "p@ss:w/o?rd#%+1")


def test_no_userinfo_means_no_credentials() -> None:
    """A URL without ``user:pass@`` logs in as nobody."""
    assert parse_url("smtp://mail.example.org").endpoint.credentials is None


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        (f"smtp://:{SECRET}@mail.example.org", "empty user name"),
        ("smtp://alice@mail.example.org", "no password"),
        ("smtp://alice:@mail.example.org", "no password"),
    ],
)
def test_incomplete_credentials_rejected(url: str, fragment: str) -> None:
    """A password without a user, or a user without a password, is a UsageError."""
    with pytest.raises(UsageError, match=fragment) as caught:
        parse_url(url)
    assert SECRET not in str(caught.value)


# Letters, digits and punctuation a password may hold, URL specials included.
_PASSWORD_CHARS = st.characters(
    codec="utf-8", exclude_categories=("Cs", "Cc"), include_characters="@:/?#%+&= "
)


@given(
    username=st.text(_PASSWORD_CHARS, min_size=1, max_size=20),
    password=st.text(_PASSWORD_CHARS, min_size=1, max_size=30),
)
def test_any_percent_encoded_credentials_round_trip(username: str, password: str) -> None:
    """Whatever the characters, percent-encoding them gives them back exactly."""
    url = f"smtp://{quote(username, safe='')}:{quote(password, safe='')}@mail.example.org"
    assert parse_url(url).endpoint.credentials == Password(username, password)


@given(password=st.text(_PASSWORD_CHARS, min_size=1, max_size=30))
def test_repr_never_shows_password(password: str) -> None:
    """Neither the settings, the endpoint nor a mailer config repr shows the password."""
    secret = f"{SECRET}{password}"
    url = f"smtp://alice:{quote(secret, safe='')}@mail.example.org?pool_size=2"
    settings = parse_url(url)
    config = MailerConfig.resolve(url)
    for text in (repr(settings), repr(settings.endpoint), str(settings.endpoint), repr(config)):
        assert SECRET not in text
        assert quote(secret, safe="") not in text


@pytest.mark.parametrize(
    "query",
    [
        "?pool_size=x",
        "?pool_size=0",
        "?timeout=-1",
        "?timeout=inf",
        "?timeout=nan",
        "?timeout=0",
        "?tls=maybe",
        "?bogus=1",
        "?pool_size=2&pool_size=3",
        "?allow_insecure_auth=perhaps",
        "?cafile=/nonexistent/ca.pem",
        "?tls=none&cafile=/etc/ssl/ca.pem",
    ],
)
def test_errors_never_show_password(query: str) -> None:
    """Every bad option raises a UsageError whose message leaves the password out."""
    with pytest.raises(UsageError) as caught:
        parse_url(f"smtp://alice:{SECRET}@mail.example.org{query}")
    assert SECRET not in str(caught.value)
    assert SECRET not in repr(caught.value)


def test_malformed_port_error_never_shows_password() -> None:
    """urllib's own port error (which quotes the netloc) is replaced by ours."""
    with pytest.raises(UsageError) as caught:
        parse_url(f"smtp://alice:{SECRET}@mail.example.org:99999")
    assert SECRET not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


# -- query options -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "policy"),
    [
        ("none", NoTLS),
        ("opportunistic", Opportunistic),
        ("starttls", StartTLS),
        ("implicit", ImplicitTLS),
        ("STARTTLS", StartTLS),
    ],
)
def test_tls_option_chooses_policy(value: str, policy: type) -> None:
    """``tls=`` picks the policy whatever the scheme's default."""
    assert type(parse_url(f"lmtp://h.example?tls={value}").endpoint.tls) is policy


def test_pool_and_timeout_options() -> None:
    """Pool and timeout options land in the limits and timeouts, as numbers."""
    settings = parse_url(
        "smtp://h.example?pool_size=4&max_messages=50&idle_timeout=12.5"
        "&connect_timeout=3&command_timeout=20&data_timeout=120&greeting_timeout=9"
    )
    assert PoolLimits(**settings.limits) == PoolLimits(
        max_connections=4, max_messages_per_connection=50, idle_timeout=12.5
    )
    assert Timeouts(**settings.timeouts) == Timeouts(
        connect=3.0, greeting=9.0, command=20.0, data=120.0
    )


def test_timeout_option_sets_every_phase() -> None:
    """``timeout=`` sets the connect, greeting, command and data deadlines together."""
    assert Timeouts(**parse_url("smtp://h.example?timeout=7").timeouts) == Timeouts.all(7.0)


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("?pool_size=x", "pool_size must be a number"),
        ("?pool_size=1.5", "pool_size must be a number"),
        ("?pool_size=-2", "pool_size must be a finite number"),
        ("?pool_size=0", "max_connections must be at least 1"),
        ("?timeout=0", "must be a positive number"),
        ("?timeout=inf", "timeout must be a finite number"),
        ("?idle_timeout=nan", "idle_timeout must be a finite number"),
        ("?tls=tlsv1", "tls must be one of"),
        ("?bogus=1", "unknown mailer URL option 'bogus'"),
        ("?pool_size=2&pool_size=3", "more than once"),
        ("?allow_insecure_auth=perhaps", "true or false"),
        ("?cafile=/nonexistent/ca.pem", "cafile cannot be loaded"),
        ("?tls=none&cafile=/etc/ssl/ca.pem", "cafile needs TLS"),
    ],
)
def test_bad_options_named(query: str, fragment: str) -> None:
    """Each bad option is a UsageError naming the option and what was expected."""
    with pytest.raises(UsageError, match=fragment):
        parse_url(f"smtp://h.example{query}")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", True), ("true", True), ("YES", True), ("on", True), ("0", False), ("off", False)],
)
def test_allow_insecure_auth_values(value: str, expected: bool) -> None:
    """``allow_insecure_auth`` reads the usual spellings of true and false."""
    endpoint = parse_url(f"lmtp://h.example?allow_insecure_auth={value}").endpoint
    assert endpoint.allow_insecure_auth is expected


def test_mechanisms_and_local_hostname() -> None:
    """``mechanisms`` is a comma list (upper-cased, blanks dropped); ``local_hostname`` kept."""
    settings = parse_url(
        "smtp://h.example?mechanisms=scram-sha-256,%20plain,,&local_hostname=me.example"
    )
    assert settings.endpoint.mechanisms == ("SCRAM-SHA-256", "PLAIN")
    assert settings.local_hostname == "me.example"


def test_cafile_builds_a_verifying_context(tmp_path: Path) -> None:
    """``cafile`` loads the CA into the policy's context."""
    trustme = pytest.importorskip("trustme")
    ca_path = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(ca_path))
    policy = parse_url(f"smtps://h.example?cafile={ca_path}").endpoint.tls
    assert policy is not None
    assert policy.context is not None
    assert policy.context.cert_store_stats()["x509_ca"] == 1


# -- MailerConfig.resolve: URLs and keywords together --------------------------------------------


def test_keywords_win_over_url() -> None:
    """tls, credentials, port, mechanisms given as keywords replace the URL's."""
    config = MailerConfig.resolve(
        "smtp://alice:pw@h.example:2525",
        tls=NoTLS(),
        username="bob",
        password="other",
        port=26,
        mechanisms=["PLAIN"],
        allow_insecure_auth=True,
    )
    (endpoint,) = config.endpoints
    assert endpoint == Endpoint(
        host="h.example",
        port=26,
        tls=NoTLS(),
        credentials=Password("bob", "other"),
        mechanisms=("PLAIN",),
        allow_insecure_auth=True,
    )


def test_url_options_feed_limits_and_timeouts() -> None:
    """Pool and timeout options from the URL become the config's limits and timeouts."""
    config = MailerConfig.resolve("smtp://h.example?pool_size=3&timeout=9&local_hostname=me.test")
    assert config.limits.max_connections == 3
    assert config.timeouts == Timeouts.all(9.0)
    assert config.local_hostname == "me.test"


def test_limits_keyword_wins_over_url_pool_size() -> None:
    """A ``limits=`` keyword replaces the URL's pool options."""
    config = MailerConfig.resolve("smtp://h.example?pool_size=3", limits=PoolLimits())
    assert config.limits == PoolLimits()


def test_several_relays_in_order_duplicates_dropped() -> None:
    """A list of URLs gives the relays in order; a relay listed twice counts once."""
    config = MailerConfig.resolve(
        ["smtp://a.example", "smtps://b.example", "smtp://a.example", "lmtp://c.example"]
    )
    assert [str(e) for e in config.endpoints] == [
        "smtp://a.example:587",
        "smtp://b.example:465",
        "lmtp://c.example:24",
    ]


def test_host_keyword_builds_endpoint() -> None:
    """``host=`` without a URL: port 587 (24 with lmtp) unless given."""
    assert MailerConfig.resolve(host="h.example").endpoints[0].port == 587
    assert MailerConfig.resolve(host="h.example", lmtp=True).endpoints[0].port == 24
    assert MailerConfig.resolve(host="h.example", port=2525).endpoints[0].port == 2525


@pytest.mark.parametrize(
    ("url", "options", "fragment"),
    [
        (None, {}, "needs a URL"),
        ("smtp://h.example", {"host": "x.example"}, "not both"),
        ([], {}, "empty"),
        ("smtp://h.example", {"credentials": Password("a", "b"), "username": "c"}, "not both"),
        (["smtp://a.example", "smtp://b.example"], {"port": 25}, "single URL"),
        ("smtp://h.example", {"rate_limit": 0}, "rate_limit"),
        ("smtp://h.example", {"rate_limit": -3.0}, "rate_limit"),
        ("smtp://h.example", {"cooldown": -1}, "cooldown"),
        ("smtp://h.example", {"deferral": float("nan")}, "deferral"),
    ],
)
def test_conflicting_or_bad_keywords(
    url: object, options: dict[str, object], fragment: str
) -> None:
    """Contradictions and out-of-range values are UsageErrors naming the argument."""
    with pytest.raises(UsageError, match=fragment):
        MailerConfig.resolve(url, **options)  # type: ignore[arg-type]


def test_connection_arguments_carry_endpoint_and_config() -> None:
    """The arguments for a connection combine the endpoint with the mailer-wide settings."""
    config = MailerConfig.resolve(
        "lmtp://u:p@h.example:2003?timeout=4", local_hostname="me.test", source_address=("::1", 0)
    )
    arguments = config.connection_arguments(config.endpoints[0])
    assert arguments["host"] == "h.example"
    assert arguments["port"] == 2003
    assert arguments["lmtp"] is True
    assert arguments["credentials"] == Password("u", "p")
    assert arguments["timeouts"] == Timeouts.all(4.0)
    assert arguments["local_hostname"] == "me.test"
    assert arguments["source_address"] == ("::1", 0)
