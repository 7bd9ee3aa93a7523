"""What the deliverability checks ask of DNS (and HTTPS), as values: no I/O here.

Strategy: every check that needs the network is a generator (a *lookup flow*)
that yields a batch of :class:`Query` or :class:`FetchPolicy` requests and
receives one :class:`DnsResult` per request, in order, as the client's SMTP flows
do with their I/O instructions. The SPF evaluator, the domain check and the
address check are written once; :mod:`._drivers` runs them blocking or with
asyncio (a batch's requests then run concurrently). Unit tests drive the same
flows from a dictionary of records.
"""

from __future__ import annotations

import enum
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from typing import TypeVar

__all__ = [
    "DnsResult",
    "DnsStatus",
    "FetchPolicy",
    "Lookups",
    "Query",
    "Request",
    "mx_targets",
    "run_offline",
]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Query:
    """A DNS question: ``name`` (ASCII, no trailing dot) and ``rdtype``.

    ``rdtype`` is one of ``"TXT"``, ``"MX"``, ``"A"``, ``"AAAA"``, ``"PTR"``.
    """

    name: str
    rdtype: str


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    """Fetch the MTA-STS policy of ``domain`` over HTTPS (RFC 8461 section 3.3)."""

    domain: str


Request = Query | FetchPolicy


class DnsStatus(enum.Enum):
    """How a lookup ended."""

    OK = "ok"
    """Records came back."""
    NXDOMAIN = "nxdomain"
    """The name does not exist."""
    NODATA = "nodata"
    """The name exists, but has no record of that type."""
    ERROR = "error"
    """A timeout, SERVFAIL or refusal: the answer is unknown (SPF's temperror)."""


@dataclass(frozen=True, slots=True)
class DnsResult:
    """The answer to one request.

    Attributes:
        records: TXT records as text (each record's strings joined); MX as
            ``"preference host"``; A/AAAA addresses; PTR names; for a
            :class:`FetchPolicy` the policy file's text. Names are lower case
            without the trailing dot.
        status: how the lookup ended.
        detail: why it failed, for reports (empty when it did not).
    """

    records: tuple[str, ...] = ()
    status: DnsStatus = DnsStatus.OK
    detail: str = ""

    @property
    def void(self) -> bool:
        """NXDOMAIN or no records: a "void lookup" in RFC 7208 section 4.6.4's sense."""
        return self.status in (DnsStatus.NXDOMAIN, DnsStatus.NODATA) or (
            self.status is DnsStatus.OK and not self.records
        )


Lookups = Generator[tuple[Request, ...], tuple[DnsResult, ...], T]
"""A lookup flow returning ``T``: yields request batches, receives their answers."""


def mx_targets(answer: DnsResult) -> list[tuple[int, str]]:
    """``(preference, host)`` pairs of an MX answer, best (lowest) first."""
    pairs: list[tuple[int, str]] = []
    for record in answer.records:
        preference, _, host = record.partition(" ")
        pairs.append((int(preference), host))
    return sorted(pairs)


def run_offline(flow: Lookups[T], zone: Mapping[tuple[str, str], tuple[str, ...] | DnsStatus]) -> T:
    """Run a lookup flow against a dictionary instead of DNS (docs, tests, dry runs).

    Args:
        flow: the flow to run.
        zone: ``(name, rdtype) -> records`` (or a :class:`DnsStatus` for a
            failure); names missing from it are NXDOMAIN. A fetched MTA-STS
            policy is looked up as ``(domain, "MTA-STS")``.

    Returns:
        What the flow returns.
    """
    names = {name for name, _ in zone}
    try:
        batch = next(flow)
        while True:
            answers = []
            for request in batch:
                key = (
                    (request.name.lower(), request.rdtype)
                    if isinstance(request, Query)
                    else (request.domain.lower(), "MTA-STS")
                )
                found = zone.get(key)
                if isinstance(found, DnsStatus):
                    answers.append(DnsResult(status=found, detail=found.value))
                elif found is not None:
                    answers.append(DnsResult(found))
                elif key[0] in names:
                    answers.append(DnsResult(status=DnsStatus.NODATA, detail="no such record"))
                else:
                    answers.append(DnsResult(status=DnsStatus.NXDOMAIN, detail="no such name"))
            batch = flow.send(tuple(answers))
    except StopIteration as done:
        result: T = done.value
        return result
