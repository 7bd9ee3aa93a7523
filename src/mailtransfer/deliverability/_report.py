"""The typed result of :func:`~mailtransfer.deliverability.check_domain`, and its table.

Strategy: every check adds :class:`Finding` lines (pass, warn, fail or info,
each failure or warning with the fix); the parsed records travel alongside so
programs need not re-read the text. :func:`render_report` is the only
formatting code; the CLI prints what it returns.
"""

from __future__ import annotations

import enum
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..tls.mta_sts import MTASTSPolicy
from ._dkim_record import DKIMKeyRecord
from ._dmarc import DMARCRecord
from ._spf_eval import SPFResult
from ._spf_record import SPFRecord
from ._txt_records import BIMIRecord, TLSRPTRecord

__all__ = ["DomainReport", "Finding", "IPReport", "MXHost", "Status", "render_report"]


class Status(enum.Enum):
    """How one check came out."""

    PASS = "pass"
    """As it should be."""
    INFO = "info"
    """Worth knowing; nothing to fix (an optional record that is absent)."""
    WARN = "warn"
    """Works, but costs deliverability or protection; the finding says how to fix it."""
    FAIL = "fail"
    """Broken: receivers will reject, junk or fail to authenticate mail; fix it."""


_RANK = {Status.PASS: 0, Status.INFO: 0, Status.WARN: 1, Status.FAIL: 2}


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """One line of the report.

    Attributes:
        area: ``MX``, ``SPF``, ``DKIM``, ``DMARC``, ``MTA-STS``, ``TLS-RPT``,
            ``BIMI``, ``PTR`` or ``DNSBL``.
        subject: what was checked (a domain, a selector, an IP, a zone).
        status: pass, info, warn or fail.
        message: what was found.
        fix: what to do about it (empty when nothing needs doing).
    """

    area: str
    subject: str
    status: Status
    message: str
    fix: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class MXHost:
    """A mail exchanger and its addresses.

    Attributes:
        preference: lower is tried first.
        host: the exchanger's name.
        addresses: its A and AAAA records.
    """

    preference: int
    host: str
    addresses: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class IPReport:
    """What DNS says about one sending IP.

    Attributes:
        ip: the address.
        ptr: the names its reverse DNS gives.
        forward_confirmed: some PTR name resolves back to ``ip`` (FCrDNS).
        listings: blocklist zone -> the A records it returned (listed zones only).
        spf: the SPF result of the domain's policy for this IP.
    """

    ip: str
    ptr: tuple[str, ...]
    forward_confirmed: bool
    listings: Mapping[str, tuple[str, ...]]
    spf: SPFResult | None


@dataclass(frozen=True, slots=True, kw_only=True)
class DomainReport:
    """Everything :func:`~mailtransfer.deliverability.check_domain` found.

    Attributes:
        domain: the domain checked (A-labels).
        findings: the report's lines, in check order.
        mx: the mail exchangers, best first (empty for a null MX or none).
        null_mx: the domain publishes a null MX (RFC 7505): it receives no mail.
        spf: the SPF record, if exactly one parsed.
        spf_lookups: DNS-lookup terms the SPF policy needs, includes expanded.
        dkim: selector -> its key record (``None``: missing or unparseable).
        dmarc: the DMARC record that applies, if any.
        dmarc_domain: where that record was found (the domain or a parent).
        mta_sts_id: the policy id of the ``_mta-sts`` TXT record, if valid.
        mta_sts_policy: the MTA-STS policy, if fetched and valid.
        tlsrpt: the ``_smtp._tls`` record, if valid.
        bimi: the ``default._bimi`` record, if valid.
        ips: one report per sending IP.
    """

    domain: str
    findings: tuple[Finding, ...]
    mx: tuple[MXHost, ...] = ()
    null_mx: bool = False
    spf: SPFRecord | None = None
    spf_lookups: int = 0
    dkim: Mapping[str, DKIMKeyRecord | None] = field(default_factory=dict)
    dmarc: DMARCRecord | None = None
    dmarc_domain: str | None = None
    mta_sts_id: str | None = None
    mta_sts_policy: MTASTSPolicy | None = None
    tlsrpt: TLSRPTRecord | None = None
    bimi: BIMIRecord | None = None
    ips: tuple[IPReport, ...] = ()

    @property
    def status(self) -> Status:
        """The worst status of any finding (``PASS`` when there are none)."""
        worst = max(self.findings, key=lambda f: _RANK[f.status], default=None)
        if worst is None or worst.status is Status.INFO:
            return Status.PASS
        return worst.status

    @property
    def ok(self) -> bool:
        """No finding failed (warnings allowed)."""
        return self.status is not Status.FAIL

    def select(self, area: str | None = None, status: Status | None = None) -> list[Finding]:
        """The findings of one area and/or status, in order."""
        return [
            f
            for f in self.findings
            if (area is None or f.area == area) and (status is None or f.status is status)
        ]


def render_report(report: DomainReport, *, width: int = 100) -> str:
    """The report as a plain-text table: one line per finding, the fix under it.

    Args:
        report: what :func:`~mailtransfer.deliverability.check_domain` returned.
        width: wrap fixes to this many columns.

    Returns:
        The table, ending with a summary line and a newline.
    """
    rows = [(f.status.value.upper(), f.area, f.subject, f.message, f.fix) for f in report.findings]
    area_w = max((len(r[1]) for r in rows), default=4)
    subject_w = min(max((len(r[2]) for r in rows), default=7), 36)
    lines = [f"Deliverability of {report.domain}", ""]
    lines.append(f"{'':6} {'area':<{area_w}}  {'checked':<{subject_w}}  result")
    for status, area, subject, message, fix in rows:
        lines.append(f"{status:<6} {area:<{area_w}}  {subject:<{subject_w}}  {message}")
        if fix:
            indent = " " * (6 + 1 + area_w + 2)
            lines.extend(
                textwrap.wrap(
                    fix,
                    width=max(width, len(indent) + 30),
                    initial_indent=indent + "fix: ",
                    subsequent_indent=indent + "     ",
                    break_on_hyphens=False,
                    break_long_words=False,
                )
            )
    counts = {s: len(report.select(status=s)) for s in Status}
    lines += [
        "",
        f"{counts[Status.PASS]} passed, {counts[Status.WARN]} warning(s),"
        f" {counts[Status.FAIL]} failed: {report.status.value.upper()}",
    ]
    return "\n".join(lines) + "\n"
