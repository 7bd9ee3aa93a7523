"""build_message's shortcuts: the same bytes, headers and errors as the stdlib's parsers give.

``POLICY`` keeps header classes per name and header objects per value (see
``CachingHeaderRegistry``). Each message here is built with ``POLICY`` three times (a value
is kept from its second time, so the third build is from the caches) and once with the
plain ``email.policy.default`` equivalent, and
everything a caller can observe must agree: the serialised bytes, the prepared wire
bytes, every header's text, class and defects, and any error raised. The shortcut of
``coerce_address`` for a plain ``Name <a@b>`` is held to the RFC 5322 parser the same way.
"""

from __future__ import annotations

import contextlib
import email.policy
import itertools
import os
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from email.headerregistry import (
    Address,
    BaseHeader,
    HeaderRegistry,
    UniqueUnstructuredHeader,
    UnstructuredHeader,
)
from email.message import Message
from email.policy import EmailPolicy
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mailtransfer._message import _build
from mailtransfer._message._addresses import (
    _SIMPLE_NAME_ADDR,
    _parsed_address,
    _simple_name_addr,
)
from mailtransfer._message._build import POLICY
from mailtransfer._message._headers import (
    _HEADER_CACHE_LIMIT,
    _HEADER_CACHE_VALUE,
    _SEEN_LIMIT,
    CachingHeaderRegistry,
)
from mailtransfer.errors import InvalidArgument
from mailtransfer.message import Attachment, prepare

SETTINGS = settings(
    max_examples=int(os.environ.get("MT_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
_PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(40))


def _plain_policy(factory: Any = None) -> EmailPolicy[Any]:
    """What POLICY would be without the caches: the stdlib registry, the same options."""
    options: dict[str, Any] = {
        "linesep": "\r\n",
        "header_factory": HeaderRegistry() if factory is None else factory,
    }
    if hasattr(email.policy.default, "verify_generated_headers"):
        options["verify_generated_headers"] = True
    policy = email.policy.default.clone(**options)
    assert isinstance(policy, EmailPolicy)
    return policy


@contextlib.contextmanager
def _building_with(policy: EmailPolicy[Any]) -> Iterator[None]:
    """Make build_message use ``policy``, with boundaries that repeat from run to run."""
    counter = itertools.count()
    saved = _build.POLICY, _build.new_boundary
    _build.POLICY = policy
    _build.new_boundary = lambda: f"=_test{next(counter)}"
    try:
        yield
    finally:
        _build.POLICY, _build.new_boundary = saved


def _headers(msg: Message) -> list[tuple[str, str, str, tuple[str, ...]]]:
    """Every header of every part: name, text, specialised class, defects."""
    return [
        (
            name,
            str(value),
            type(value).__mro__[1].__name__,
            tuple(type(d).__name__ for d in getattr(value, "defects", ())),
        )
        for part in msg.walk()
        for name, value in part.raw_items()
    ]


def _outcome(policy: EmailPolicy[Any], kwargs: dict[str, Any]) -> tuple[object, ...]:
    """What a caller sees of build_message(**kwargs) and prepare() with ``policy``."""
    with _building_with(policy):
        try:
            msg = _build.build_message(**kwargs)
        except Exception as exc:
            return ("build error", type(exc).__name__, str(exc))
        built = msg.as_bytes(policy=msg.policy.clone(utf8=True))
        try:
            data = prepare(msg).data
        except Exception as exc:
            return ("prepare error", type(exc).__name__, str(exc), built, _headers(msg))
        return ("ok", built, data, _headers(msg))


_NAME = st.one_of(
    st.sampled_from(["", "Ann", "Zoë Ünicode", "Doe, John", 'Quote "Q"', "a@b", "=?utf-8?q?x?="]),
    st.text(
        st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"), blacklist_characters="\x85"),
        max_size=40,
    ),
)
_SPEC = st.sampled_from(
    [
        "ann@example.org",
        "bob.smith@example.net",
        "zoë@example.org",
        '"a b"@example.org',
        "x@[192.0.2.1]",
        "user@bücher.example",
    ]
)
_ADDRESS = st.one_of(
    _SPEC,
    st.tuples(_NAME, _SPEC),
    st.builds(lambda n, s: f"{n} <{s}>", st.sampled_from(["Ann", '"Doe, John"', "Zoë"]), _SPEC),
    st.builds(
        lambda n, s: Address(n, *s.rpartition("@")[::2]), st.sampled_from(["", "Ann", "Zoë"]), _SPEC
    ),
)
# One bad value, now and then: errors must be the same too.
_SPOIL = st.one_of(
    st.none(),
    st.none(),
    st.none(),
    st.sampled_from(
        [
            ("subject", "a\r\nBcc: v@evil.example"),
            ("subject", "=?utf-8?q?a=0D=0ABcc:_v@evil.example?="),
            ("to", ["bad..dots@example.org"]),
            ("to", "alice@example.org)<bob@example.org>"),
            ("sender", "no-domain"),
            ("sender", "Ann <ann@example.org>, Bob <bob@example.org>"),
            ("cc", ['"Bcc: x@evil.example" <bob@example.net>']),
            ("cc", [("A\nB", "a@example.org")]),
            ("headers", {"X-Bad": "a\rb"}),
            ("headers", {"Content-Type": "text/html"}),
            ("headers", {"Resent-To": "a@example.org)<b@example.org>"}),
            ("reply_to", [42]),
        ]
    ),
)
_ADDRESSES = st.lists(_ADDRESS, max_size=3)
_RECIPIENTS = st.lists(_ADDRESS, min_size=1, max_size=3)
_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=200)
_SUBJECT = st.one_of(
    _NAME,
    st.sampled_from(
        [
            "Hello",
            "hello",
            "Grüße aus Köln " * 8,
            "grüße aus köln " * 8,
            "a\r\nBcc: v@evil.example",
            "x" * 250,
        ]
    ),
)
_ATTACHMENT = st.one_of(
    st.tuples(
        st.sampled_from(["a.txt", "bericht-ä.pdf", "", "x" * 90 + ".bin"]), st.binary(max_size=60)
    ),
    st.builds(
        Attachment,
        st.sampled_from(["notes.txt", "daten.csv", "ü.txt"]),
        st.one_of(_TEXT, st.binary(max_size=60)),
        st.sampled_from([None, "text/plain", "application/pdf", "text/csv"]),
    ),
)
_EXTRA = st.dictionaries(
    st.sampled_from(
        ["X-Note", "x-note", "List-Id", "Resent-To", "resent-to", "Sender", "X-Ü", "Keywords"]
    ),
    st.one_of(
        _TEXT, _SPEC, st.sampled_from(["<list.example.org>", "a@example.org, b@example.org"])
    ),
    max_size=3,
)


@SETTINGS
@given(
    sender=_ADDRESS,
    to=_RECIPIENTS,
    cc=_ADDRESSES,
    bcc=_ADDRESSES,
    reply_to=_ADDRESSES,
    subject=_SUBJECT,
    text=st.none() | _TEXT,
    html=st.none() | _TEXT,
    attachments=st.lists(_ATTACHMENT, max_size=2),
    logo=st.booleans(),
    headers=_EXTRA,
    days=st.integers(0, 3),
    spoil=_SPOIL,
)
@example(
    sender="Bench Sender <sender@bench.example>",
    to=["Bench Recipient <rcpt@bench.example>"],
    cc=[],
    bcc=["hidden@example.org"],
    reply_to=[],
    subject="mailtransfer throughput benchmark",
    text="Hello\n",
    html=None,
    attachments=[],
    logo=False,
    headers={},
    days=0,
    spoil=None,
)
def test_cached_policy_builds_what_the_stdlib_policy_builds(  # noqa: PLR0917
    sender: Any,
    to: list[Any],
    cc: list[Any],
    bcc: list[Any],
    reply_to: list[Any],
    subject: str,
    text: str | None,
    html: str | None,
    attachments: list[Any],
    logo: bool,
    headers: dict[str, str],
    days: int,
    spoil: tuple[str, Any] | None,
) -> None:
    kwargs: dict[str, Any] = {
        "sender": sender,
        "to": to,
        "cc": cc,
        "bcc": bcc,
        "reply_to": reply_to,
        "subject": subject,
        "text": text,
        "html": html,
        "attachments": attachments,
        "inline": {"logo": _PNG} if logo and html is not None else {},
        "headers": headers,
        "message_id": "<id@example.org>",
        "date": datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=days))),
    }
    if spoil is not None:
        kwargs[spoil[0]] = spoil[1]
    expected = _outcome(_plain_policy(), kwargs)
    assert _outcome(POLICY, kwargs) == expected
    assert _outcome(POLICY, kwargs) == expected  # values seen twice are kept now
    assert _outcome(POLICY, kwargs) == expected  # from the caches


_SAMPLE: dict[str, Any] = {
    "sender": "Zoë <zoe@example.org>",
    "to": ["Bob <bob@example.net>", "carol@example.net"],
    "subject": "Grüße",
    "text": "hi",
    "html": "<p>hi</p>",
    "attachments": [("ä.txt", b"x")],
    "headers": {"X-Note": "a note"},
    "message_id": "<id@example.org>",
    "date": datetime(2024, 1, 2, tzinfo=timezone.utc),
}


class _OneClassRegistry(HeaderRegistry):
    """A wrong cache: the class made for the first name, whatever the name."""

    made: Any = None

    def __getitem__(self, name: str) -> Any:
        if self.made is None:
            self.made = super().__getitem__(name)
        return self.made


class _ByNameRegistry(HeaderRegistry):
    """A wrong cache: the first header object made per name, whatever the value."""

    def __init__(self) -> None:
        super().__init__()
        self.made: dict[str, BaseHeader] = {}

    def __call__(self, name: str, value: Any) -> BaseHeader:
        if name not in self.made:
            self.made[name] = super().__call__(name, value)
        return self.made[name]


def test_the_comparison_catches_a_wrong_cache() -> None:
    expected = _outcome(_plain_policy(), _SAMPLE)
    assert expected[0] == "ok"
    assert _outcome(_plain_policy(_OneClassRegistry()), _SAMPLE) != expected
    by_name = _plain_policy(_ByNameRegistry())
    _outcome(by_name, {**_SAMPLE, "subject": "first", "to": "x@example.org"})
    assert _outcome(by_name, _SAMPLE) != expected


def test_classes_are_made_once_per_name() -> None:
    registry = CachingHeaderRegistry()
    assert registry["To"] is registry["to"] is registry["TO"]
    assert registry["To"] is not registry["Cc"]
    assert registry["Subject"].max_count == 1
    assert type(registry("Subject", "x")) is registry["Subject"]


def test_map_to_type_and_registry_changes_take_effect() -> None:
    registry = CachingHeaderRegistry()
    before = registry["X-Thing"]
    assert before.__mro__[1] is UnstructuredHeader
    assert registry("X-Thing", "v").__class__ is before
    registry.map_to_type("X-THING", UniqueUnstructuredHeader)
    after = registry["X-Thing"]
    assert after.__mro__[1] is UniqueUnstructuredHeader
    assert after.max_count == 1
    assert type(registry("X-Thing", "v")) is after
    registry.registry["x-thing"] = UnstructuredHeader
    assert registry["x-thing"].__mro__[1] is UnstructuredHeader
    assert type(registry("X-Thing", "v")) is registry["x-thing"]


def test_a_value_is_kept_from_its_second_time() -> None:
    registry = CachingHeaderRegistry()
    first = registry("Subject", "hello")
    second = registry("Subject", "hello")
    assert second is not first
    assert registry("Subject", "hello") is second
    assert str(first) == str(second) == "hello"


def test_header_objects_are_shared_only_for_equal_values() -> None:
    registry = CachingHeaderRegistry()
    for name, value in [
        ("Subject", "hello"),
        ("subject", "hello"),
        ("To", [Address("Ann", "ann", "example.org")]),
        ("Cc", [Address("Ann", "ann", "example.org")]),
    ]:
        registry(name, value)  # seen once: kept from the next time on
    assert registry("Subject", "hello") is registry("Subject", "hello")
    assert registry("Subject", "hello") is not registry("subject", "hello")
    assert str(registry("Subject", "other")) == "other"
    ann = registry("To", [Address("Ann", "ann", "example.org")])
    assert registry("To", Address("Ann", "ann", "example.org")) is ann
    assert registry("To", [Address("Ann", "ann", "example.org")]) is ann
    assert registry("To", [Address("Anne", "ann", "example.org")]) is not ann
    assert registry("Cc", [Address("Ann", "ann", "example.org")]).name == "Cc"
    assert ann.addresses == (Address("Ann", "ann", "example.org"),)


def test_unusual_values_are_not_cached() -> None:
    class MyAddress(Address):
        pass

    class MyStr(str):
        __slots__ = ()

    registry = CachingHeaderRegistry()
    long = "y" * (_HEADER_CACHE_VALUE + 1)
    mine = MyAddress("Ann", "ann", "example.org")
    many = [Address("", f"u{i}", "example.org") for i in range(5)]
    unusual = [("Subject", long), ("To", mine), ("Subject", MyStr("a")), ("To", many)]
    for name, value in unusual * 2:  # seen twice: a usual value would be kept now
        registry(name, value)
    for name, value in unusual:
        assert registry(name, value) is not registry(name, value)
    assert not registry._headers


def test_the_header_cache_stays_bounded() -> None:
    registry = CachingHeaderRegistry()
    for i in range(3 * _HEADER_CACHE_LIMIT):
        for _ in range(2):
            assert str(registry("Subject", f"subject {i}")) == f"subject {i}"
    assert 0 < len(registry._headers) <= _HEADER_CACHE_LIMIT


def test_values_seen_once_are_not_kept() -> None:
    registry = CachingHeaderRegistry()
    for i in range(3 * _HEADER_CACHE_LIMIT):
        assert str(registry("Subject", f"subject {i}")) == f"subject {i}"
    assert not registry._headers
    assert 0 < len(registry._seen) <= _SEEN_LIMIT


def test_policy_uses_its_own_caching_registry() -> None:
    assert isinstance(POLICY.header_factory, CachingHeaderRegistry)
    assert POLICY.header_factory is not email.policy.default.header_factory
    assert POLICY.linesep == "\r\n"


_NAME_ADDR = st.one_of(
    st.from_regex(_SIMPLE_NAME_ADDR, fullmatch=True),
    st.text(st.sampled_from('aZ09 <>@.-_+=?"(),\\é'), max_size=30),
    st.builds(
        lambda n, s: f"{n} <{s}>",
        st.text(st.sampled_from('aZ9 ."=?é'), min_size=1, max_size=8),
        st.text(st.sampled_from("aZ9.-_+@=?[]"), min_size=1, max_size=12),
    ),
)


@SETTINGS
@given(text=_NAME_ADDR)
@example(text="Recipient 5 <rcpt5@bench.example>")
@example(text="Ann <a..b@example.org>")
@example(text="Ann <a@-x.example>")
@example(text="Ann <=?utf-8?q?x?=@example.org>")
def test_simple_name_addr_is_what_the_parser_finds(text: str) -> None:
    """The shortcut for ``Name <a@b>`` gives the parser's address, or leaves it to the parser."""
    fast = _simple_name_addr(text, what="to")
    try:
        slow = _parsed_address(text, what="to")
    except InvalidArgument:
        assert fast is None
        return
    if fast is not None:
        assert (type(fast), fast) == (type(slow), slow)
        assert (fast.display_name, fast.username, fast.domain) == (
            slow.display_name,
            slow.username,
            slow.domain,
        )
