"""The I/O instructions that flows yield and drivers execute."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

from ..protocol import Stage

__all__ = [
    "Call",
    "Deadline",
    "Flow",
    "Instruction",
    "Poll",
    "Read",
    "StartTLS",
    "TLSInfo",
    "Write",
    "tls_info",
]


@dataclass(frozen=True, slots=True)
class Deadline:
    """Start a new deadline: the following reads and writes must finish within ``seconds``.

    ``stage`` names the phase, so a timeout becomes the right typed error.
    """

    seconds: float | None
    stage: Stage


@dataclass(slots=True)  # not frozen: one is made per write, and a frozen __init__ costs 2x
class Write:
    """Write all of ``data``. The driver returns None.

    A write that fails may have handed part of ``data`` to the system. When
    ``mark_end`` is set, the end-of-data mark ends at that offset and more bytes
    follow it; a driver whose failed write had already handed over at least that
    many bytes raises its error with the stage ``END_OF_DATA``, so the flow knows
    the message may have gone out. (An asyncio write hands over all or nothing:
    a failure there always comes before the first byte.)
    """

    data: bytes
    mark_end: int | None = None


@dataclass(frozen=True, slots=True)
class Read:
    """Read whatever arrives (at least one byte); the driver returns it, ``b""`` at EOF."""


@dataclass(frozen=True, slots=True)
class Poll:
    """Return bytes that have already arrived without waiting: ``None`` if none, ``b""`` at EOF."""


@dataclass(frozen=True, slots=True)
class StartTLS:
    """Run the TLS handshake on the open connection; the driver returns a ``TLSInfo``."""

    context: ssl.SSLContext
    server_hostname: str


@dataclass(frozen=True, slots=True)
class TLSInfo:
    """What the driver learnt from a TLS handshake."""

    version: str | None
    cipher: str | None
    tls_unique: bytes | None = field(default=None, repr=False)
    """The RFC 5929 ``tls-unique`` channel binding (TLS 1.2 only; Python's ``ssl``
    exposes no TLS 1.3 exporter), for SCRAM ``-PLUS`` mechanisms."""


@dataclass(frozen=True, slots=True)
class Call:
    """Call ``func()``; if it returns an awaitable, the async driver awaits it.

    Used for user callbacks that may be async, such as OAuth2 token providers.
    """

    func: Callable[[], Any]


def tls_info(obj: object) -> TLSInfo | None:
    """Describe the TLS session of an ``SSLSocket`` or ``SSLObject`` (None for plaintext)."""
    if not isinstance(obj, (ssl.SSLSocket, ssl.SSLObject)):
        return None
    cipher = obj.cipher()
    version = obj.version()
    unique = None
    if version != "TLSv1.3":  # tls-unique is undefined for TLS 1.3 (RFC 9266)
        try:
            unique = obj.get_channel_binding("tls-unique")
        except (ValueError, NotImplementedError):
            unique = None
    return TLSInfo(version=version, cipher=cipher[0] if cipher else None, tls_unique=unique)


READ = Read()
POLL = Poll()

Instruction = Deadline | Write | Read | Poll | StartTLS | Call
Flow = Generator[Instruction, Any, Any]
"""A flow: yields instructions, receives their results, returns its outcome."""
