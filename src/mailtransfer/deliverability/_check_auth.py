"""Findings for the authentication records: SPF, DKIM and DMARC."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from ._dkim_record import WEAK_RSA_BITS, DKIMKeyRecord, dkim_record_name, parse_dkim_key
from ._dmarc import DMARCRecord, dmarc_candidates, is_dmarc_record, parse_dmarc
from ._errors import InvalidRecord
from ._findings import Findings
from ._lookups import DnsResult, DnsStatus, Lookups, Query
from ._spf_eval import SPFOutcome, SPFResult, _Abort, fetch_spf
from ._spf_record import LOOKUP_LIMIT, Qualifier, SPFRecord, is_spf_record, parse_spf

__all__ = ["dkim_findings", "dmarc_findings", "spf_findings", "spf_ip_finding"]


def spf_findings(
    domain: str, txt: DnsResult, out: Findings
) -> Lookups[tuple[SPFRecord | None, int]]:
    """Check the SPF record: one, valid, within 10 lookups, ending in -all or ~all."""
    if txt.status is DnsStatus.ERROR:
        out.fail("SPF", domain, f"TXT lookup failed: {txt.detail}", "Check the name servers.")
        return None, 0
    records = [r for r in txt.records if is_spf_record(r)]
    if not records:
        fix = f"Publish one TXT record at {domain}: 'v=spf1 mx ip4:<your sending IPs> -all'."
        out.fail("SPF", domain, "no SPF record", fix)
        return None, 0
    if len(records) > 1:
        message = f"{len(records)} SPF records; receivers give a PermError for more than one"
        out.fail("SPF", domain, message, "Merge them into one record (RFC 7208 section 4.5).")
        return None, 0
    try:
        record = parse_spf(records[0])
    except InvalidRecord as exc:
        out.fail("SPF", domain, f"syntax error: {exc}", "Correct it; receivers see a PermError.")
        return None, 0
    out.passed("SPF", domain, f"one valid record: {cut(str(record))}")
    lookups, problem = yield from _count_lookups(domain, record)
    if problem:
        out.fail("SPF", domain, problem, "Fix the included domain's record or drop the include.")
    elif lookups > LOOKUP_LIMIT:
        message = f"{lookups} DNS lookups needed; the limit is {LOOKUP_LIMIT} (RFC 7208 4.6.4)"
        fix = "Drop unused include:s; replace a, mx and ptr with ip4:/ip6: ranges."
        out.fail("SPF", domain, message, fix)
    else:
        out.passed("SPF", domain, f"{lookups} of {LOOKUP_LIMIT} DNS lookups")
    final = record.all
    if final is None and record.redirect is None:
        fix = "End the record with '-all' (or '~all' while you still find senders)."
        out.warn("SPF", domain, "no 'all' at the end: unlisted senders get neutral", fix)
    elif final is not None and final.qualifier is Qualifier.PASS:
        out.fail("SPF", domain, "'+all' authorises every IP on the internet", "Use '-all'.")
    elif final is not None and final.qualifier is Qualifier.NEUTRAL:
        out.warn("SPF", domain, "'?all' protects nothing", "End with '-all' or '~all'.")
    elif final is not None:
        out.passed("SPF", domain, f"ends with '{final}'")
    if any(m.kind == "ptr" for m in record.mechanisms):
        fix = "Replace 'ptr' with ip4:/ip6: ranges or 'a:'."
        out.warn("SPF", domain, "uses 'ptr', which RFC 7208 section 5.5 says not to", fix)
    return record, lookups


def _count_lookups(domain: str, record: SPFRecord) -> Lookups[tuple[int, str]]:
    """DNS-lookup terms of ``record`` with include: and redirect= followed (not macros)."""
    total = 0
    pending = [(domain, record)]
    seen = {domain}
    while pending:
        name, current = pending.pop()
        total += current.lookup_terms
        targets = [m.domain for m in current.mechanisms if m.kind == "include" and m.domain]
        if current.redirect and current.all is None:
            targets.append(current.redirect)
        for spec in targets:
            target = spec.rstrip(".").lower()
            if "%" in target or target in seen or total > 10 * LOOKUP_LIMIT:
                continue
            seen.add(target)
            try:
                found, reason, _ = yield from fetch_spf(target)
            except _Abort as abort:
                return total, f"{target} (included by {name}): {abort.reason}"
            if found is None:
                return total, f"{target} (included by {name}): {reason}"
            pending.append((target, found))
    return total, ""


def spf_ip_finding(ip: str, result: SPFResult, out: Findings) -> None:
    """Whether the SPF policy authorises a sending IP."""
    outcome = result.outcome
    message = f"SPF {outcome.value}: {result.reason}"
    term = f"ip{ipaddress.ip_address(ip).version}:{ip}"
    if outcome is SPFOutcome.PASS:
        out.passed("SPF", ip, message)
    elif outcome in (SPFOutcome.NEUTRAL, SPFOutcome.NONE, SPFOutcome.TEMPERROR):
        out.warn("SPF", ip, message, f"Authorise it explicitly ({term}).")
    elif outcome is SPFOutcome.PERMERROR:
        out.fail("SPF", ip, message, "Fix the SPF record: receivers cannot evaluate it.")
    else:
        out.fail("SPF", ip, message, f"Add {term} (or your provider's include:) to the record.")


def dkim_findings(
    domain: str, selectors: Sequence[str], answers: list[DnsResult], out: Findings
) -> dict[str, DKIMKeyRecord | None]:
    """Check each selector's key: present, parseable, not revoked, strong enough."""
    keys: dict[str, DKIMKeyRecord | None] = {}
    if not selectors:
        fix = "Pass the selectors you sign with (--selector)."
        out.warn("DKIM", domain, "no selector given, so no key was checked", fix)
    for selector, answer in zip(selectors, answers, strict=True):
        name = dkim_record_name(selector, domain)
        keys[selector] = None
        texts = [r for r in answer.records if "p=" in r or r.startswith("v=DKIM1")]
        if answer.status is DnsStatus.ERROR:
            out.fail("DKIM", selector, f"lookup of {name} failed: {answer.detail}")
            continue
        if len(texts) != 1:
            problem = "no key record" if not texts else f"{len(texts)} key records"
            fix = f"Publish one 'v=DKIM1; k=rsa; p=<key>' TXT record at {name}."
            out.fail("DKIM", selector, f"{problem} at {name}", fix)
            continue
        try:
            key = parse_dkim_key(texts[0])
        except InvalidRecord as exc:
            out.fail("DKIM", selector, str(exc), "Republish the key record as generated.")
            continue
        keys[selector] = key
        if key.revoked:
            fix = "Stop signing with this selector, or publish its key."
            out.warn("DKIM", selector, "revoked (empty p=): its signatures fail", fix)
        elif key.weak:
            message = f"{key.key_type} {key.bits}-bit key: under {WEAK_RSA_BITS} bits is weak"
            out.warn("DKIM", selector, message, "Rotate to a 2048-bit key under a new selector.")
        else:
            out.passed("DKIM", selector, f"{key.key_type} {key.bits}-bit key")
        if key.testing:
            out.warn("DKIM", selector, "t=y: testing mode", "Remove t=y once signing works.")
    return keys


def dmarc_findings(domain: str, out: Findings) -> Lookups[tuple[DMARCRecord | None, str | None]]:
    """Find the DMARC record (the domain's, else a parent's) and judge its policy."""
    names = dmarc_candidates(domain)
    answers = yield tuple(Query(f"_dmarc.{name}", "TXT") for name in names)
    publish = (
        f"Publish 'v=DMARC1; p=none; rua=mailto:dmarc-reports@{domain}' at _dmarc.{domain};"
        " read the reports, then move to p=quarantine and p=reject."
    )
    for name, answer in zip(names, answers, strict=True):
        if answer.status is DnsStatus.ERROR:
            out.fail("DMARC", name, f"lookup of _dmarc.{name} failed: {answer.detail}")
            return None, None
        records = [r for r in answer.records if is_dmarc_record(r)]
        if not records:
            continue
        if len(records) > 1:
            message = f"{len(records)} records at _dmarc.{name}: receivers ignore them all"
            out.fail("DMARC", name, message, "Keep exactly one.")
            return None, name
        try:
            record = parse_dmarc(records[0])
        except InvalidRecord as exc:
            out.fail("DMARC", name, str(exc), publish)
            return None, name
        _judge_dmarc(record, name, inherited=name != domain, out=out)
        return record, name
    out.fail("DMARC", domain, "no DMARC record (nor at a parent domain)", publish)
    return None, None


def _judge_dmarc(record: DMARCRecord, name: str, *, inherited: bool, out: Findings) -> None:
    policy = record.policy_for(subdomain=inherited)
    detail = f"p={policy}{f' (from {name})' if inherited else ''}, adkim={record.adkim}"
    detail += f", aspf={record.aspf}, pct={record.pct}"
    if record.subdomain_policy:
        detail += f", sp={record.subdomain_policy}"
    if policy == "none":
        fix = "Once reports show your mail aligned, move to p=quarantine, then p=reject."
        out.warn("DMARC", name, f"{detail}: monitoring only", fix)
    else:
        out.passed("DMARC", name, detail)
    if record.pct < 100 and policy != "none":
        message = f"pct={record.pct}: the policy covers part of failing mail only"
        out.warn("DMARC", name, message, "Raise pct to 100.")
    if record.rua:
        out.passed("DMARC", name, f"aggregate reports to {', '.join(record.rua)}")
    else:
        fix = f"Add rua=mailto:dmarc-reports@{name} to see who sends as you."
        out.warn("DMARC", name, "no rua=: no aggregate reports", fix)
    if record.ruf:
        out.info("DMARC", name, f"failure reports to {', '.join(record.ruf)}")


def cut(text: str, limit: int = 70) -> str:
    """``text`` shortened to ``limit`` characters with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 3] + "..."
