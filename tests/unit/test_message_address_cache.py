"""Addresses given as strings are parsed once; the cache changes no result and no error."""

from __future__ import annotations

import pytest

from mailtransfer._message._addresses import _COERCED, _COERCED_LIMIT, coerce_address
from mailtransfer.errors import HeaderInjection, InvalidAddress
from mailtransfer.message import build_message


def test_same_string_gives_the_same_address() -> None:
    first = coerce_address("Ann Example <ann@example.org>", what="to")
    again = coerce_address("Ann Example <ann@example.org>", what="cc")
    assert again == first
    assert (again.display_name, again.addr_spec) == ("Ann Example", "ann@example.org")


@pytest.mark.parametrize("what", ["to", "cc"])
def test_errors_are_not_cached_and_name_the_argument(what: str) -> None:
    for _ in range(2):
        with pytest.raises(InvalidAddress, match=f"{what} must hold exactly one address"):
            coerce_address("a@example.org, b@example.org", what=what)
        with pytest.raises(HeaderInjection, match=f"{what} address"):
            coerce_address("a@example.org\r\nBcc: x@example.org", what=what)


def test_messages_built_twice_are_the_same() -> None:
    def build() -> bytes:
        msg = build_message(sender="Ann <ann@example.org>", to="Bob <bob@example.net>", text="hi")
        del msg["Date"], msg["Message-ID"]
        return msg.as_bytes()

    assert build() == build()


def test_the_cache_stays_bounded() -> None:
    for i in range(2 * _COERCED_LIMIT + 5):
        assert coerce_address(f"N <u{i}@example.org>", what="to").username == f"u{i}"
    assert len(_COERCED) <= _COERCED_LIMIT
