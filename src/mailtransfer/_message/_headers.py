"""A header factory for the ``email`` package that remembers the classes and headers it made.

The standard ``HeaderRegistry`` creates a new class with ``type()`` for every
header it makes, and parses every value again; building many messages from
keyword arguments repeats the same names and often the same values. Both the
message builder's policy and the strict field parser use this one.
"""

from __future__ import annotations

from email.headerregistry import Address, BaseHeader, HeaderRegistry
from typing import Any

__all__ = ["CachingHeaderRegistry"]


class CachingHeaderRegistry(HeaderRegistry):
    """``HeaderRegistry`` that remembers what it made; the same headers, much faster.

    The standard registry creates a new class with ``type()`` for every header
    it makes (and for every ``max_count`` lookup), and parses every value,
    though a message built from keywords sets the same ``MIME-Version``,
    ``Content-Type`` and ``From`` values again and again. This one keeps the
    class per lower-cased name, checked against the registry on each use (so
    ``map_to_type`` and changes to ``registry`` take effect), and the header
    object per (class, name, value) for short exact ``str`` values and for
    lists of a few plain ``Address`` values, from the second time a value is
    set (a value set once stays out of memory). The header object is what the
    standard registry makes from the same arguments: its class's ``parse``
    depends on them alone, and header objects are immutable (folding reads
    the parse tree, never changes it), so messages can share one. Both caches
    are bounded; threads racing on a miss only build the same thing twice.
    """

    def __init__(self) -> None:
        super().__init__()
        self._classes: dict[str, tuple[object, object, type[BaseHeader]]] = {}
        self._headers: dict[tuple[type[BaseHeader], str, object], BaseHeader] = {}
        self._seen: set[tuple[type[BaseHeader], str, object]] = set()

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        special: object = self.registry.get(key, self.default_class)
        found = self._classes.get(key)
        if found is not None and found[0] is special and found[1] is self.base_class:
            return found[2]
        made: type[BaseHeader] = super().__getitem__(name)
        if len(self._classes) >= _CLASS_CACHE_LIMIT:
            self._classes.clear()
        self._classes[key] = (special, self.base_class, made)
        return made

    def __call__(self, name: str, value: Any) -> BaseHeader:
        cls = self[name]
        key = _value_key(value)
        if key is None:
            header: BaseHeader = cls(name, value)
            return header
        full = (cls, name, key)
        found = self._headers.get(full)
        if found is not None:
            return found
        made: BaseHeader = cls(name, value)
        # Kept from a value's second sighting on. A value seen once (a recipient, a
        # subject with a name in it) would only keep its parse tree, hundreds of
        # objects, for the garbage collector to walk until the cache is cleared.
        seen = self._seen
        if full in seen:
            if len(self._headers) >= _HEADER_CACHE_LIMIT:
                self._headers.clear()
            self._headers[full] = made
        else:
            if len(seen) >= _SEEN_LIMIT:
                seen.clear()
            seen.add(full)
        return made


# Bounds of the CachingHeaderRegistry caches. A header object holds its parse
# tree, up to 400 bytes per character of value: 128 entries of at most 200
# characters stay near 10 MB at worst, well under 1 MB for usual values.
_CLASS_CACHE_LIMIT = 256
_HEADER_CACHE_LIMIT = 128
_SEEN_LIMIT = 1024  # keys only (values of at most 200 characters): no parse trees
_HEADER_CACHE_VALUE = 200
_HEADER_CACHE_ADDRESSES = 4


def _value_key(value: object) -> object:
    """A hashable stand-in for a header value whose header object can be shared, or None."""
    if type(value) is str:
        return value if len(value) <= _HEADER_CACHE_VALUE else None
    items = value if type(value) is list else [value]
    if not items or len(items) > _HEADER_CACHE_ADDRESSES:
        return None
    key = []
    size = 0
    for item in items:
        if type(item) is not Address:
            return None
        name, user, domain = item.display_name, item.username, item.domain
        if type(name) is not str or type(user) is not str or type(domain) is not str:
            return None
        size += len(name) + len(user) + len(domain)
        key.append((name, user, domain))
    return tuple(key) if size <= _HEADER_CACHE_VALUE else None
