"""Findings for the transport records: MTA-STS, TLS-RPT, and BIMI.

The MTA-STS record and policy are parsed by :mod:`mailtransfer.tls.mta_sts`,
the same code direct delivery enforces them with.
"""

from __future__ import annotations

from collections.abc import Callable

from ..tls.mta_sts import MTASTSMode, MTASTSPolicy, parse_policy, parse_txt
from ._check_auth import cut
from ._errors import InvalidRecord
from ._findings import Findings
from ._lookups import DnsResult, DnsStatus, FetchPolicy, Lookups
from ._report import MXHost
from ._txt_records import parse_bimi, parse_tlsrpt

__all__ = ["bimi_finding", "mta_sts_findings", "tlsrpt_finding"]


def mta_sts_findings(
    domain: str, txt: DnsResult, mx: tuple[MXHost, ...], fetch: bool, out: Findings
) -> Lookups[tuple[str | None, MTASTSPolicy | None]]:
    """Check the ``_mta-sts`` record, then fetch the policy and check it covers every MX.

    Returns:
        A flow returning the policy id and the parsed policy (each ``None`` when missing).
    """
    name, host = f"_mta-sts.{domain}", f"mta-sts.{domain}"
    fix = (
        f"Publish 'v=STSv1; id=<timestamp>' at {name} and a policy at"
        f" https://{host}/.well-known/mta-sts.txt."
    )
    policy_id = _record(name, "MTA-STS", txt, version="v=STSv1", parse=_sts_id, fix=fix, out=out)
    if not isinstance(policy_id, str):
        return None, None
    if not fetch:
        out.info("MTA-STS", host, "policy not fetched (asked not to)")
        return policy_id, None
    (answer,) = yield (FetchPolicy(domain),)
    if answer.status is not DnsStatus.OK or not answer.records:
        fix = f"Serve https://{host}/.well-known/mta-sts.txt with a valid certificate for {host}."
        out.fail("MTA-STS", host, f"policy fetch failed: {answer.detail}", fix)
        return policy_id, None
    try:
        policy = parse_policy(answer.records[0], id=policy_id)
    except ValueError as exc:
        fix = "Serve 'version: STSv1', 'mode: enforce', an 'mx:' line per MX, 'max_age: 604800'."
        out.fail("MTA-STS", host, f"invalid policy: {exc}", fix)
        return policy_id, None
    if policy.mode is MTASTSMode.ENFORCE:
        out.passed("MTA-STS", host, f"mode enforce, max_age {policy.max_age}")
    elif policy.mode is MTASTSMode.TESTING:
        fix = "Switch to 'mode: enforce' once TLS-RPT reports show no failures."
        out.warn("MTA-STS", host, "mode testing: failures are reported, not enforced", fix)
    else:
        out.warn("MTA-STS", host, "mode none: the policy is withdrawn")
        return policy_id, policy
    uncovered = [mx_host.host for mx_host in mx if not policy.allows(mx_host.host)]
    if uncovered:
        fix = "Add an 'mx:' line for each MX host, or senders enforcing the policy cannot deliver."
        out.fail("MTA-STS", host, f"MX hosts not in the policy: {', '.join(uncovered)}", fix)
    else:
        out.passed("MTA-STS", host, f"the policy covers every MX host ({', '.join(policy.mx)})")
    return policy_id, policy


def _sts_id(text: str) -> str:
    try:
        return parse_txt(text)
    except ValueError as exc:
        raise InvalidRecord(str(exc)) from None


def tlsrpt_finding(domain: str, txt: DnsResult, out: Findings) -> object | None:
    """Check the ``_smtp._tls`` TLS-RPT record."""
    name = f"_smtp._tls.{domain}"
    fix = f"Publish 'v=TLSRPTv1; rua=mailto:tls-reports@{domain}' at {name}."
    return _record(name, "TLS-RPT", txt, version="v=TLSRPTv1", parse=parse_tlsrpt, fix=fix, out=out)


def bimi_finding(domain: str, txt: DnsResult, out: Findings) -> object | None:
    """Check the ``default._bimi`` record if there is one (it is optional)."""
    name = f"default._bimi.{domain}"
    return _record(name, "BIMI", txt, version="v=BIMI1", parse=parse_bimi, fix="", out=out)


def _record(
    name: str,
    area: str,
    answer: DnsResult,
    *,
    version: str,
    parse: Callable[[str], object],
    fix: str,
    out: Findings,
) -> object | None:
    if answer.status is DnsStatus.ERROR:
        out.warn(area, name, f"lookup failed: {answer.detail}")
        return None
    records = [r for r in answer.records if r.replace(" ", "").startswith(version)]
    if not records:
        if fix:
            out.warn(area, name, "no record", fix)
        else:
            out.info(area, name, "none published (optional)")
        return None
    if len(records) > 1:
        out.fail(area, name, f"{len(records)} records; there must be one", "Keep exactly one.")
        return None
    try:
        parsed = parse(records[0])
    except InvalidRecord as exc:
        out.fail(area, name, str(exc), fix or "Correct the record.")
        return None
    out.passed(area, name, cut(records[0]))
    return parsed
