"""The direct-delivery flow driven offline: every decision, with scripted step results."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from mailtransfer._direct._flow import (
    Deliver,
    FetchPolicy,
    LookupAddresses,
    LookupMX,
    LookupTLSA,
    LookupTXT,
    Step,
    serve_domain,
)
from mailtransfer._direct._results import DomainResult
from mailtransfer.dns import Answer, MailExchanger, MailExchangers, TLSARecord, TXTRecord
from mailtransfer.errors import (
    ConnectError,
    DeliveryUnknown,
    DNSTemporaryError,
    MTASTSViolation,
    NXDomain,
)
from mailtransfer.protocol import Reply
from mailtransfer.results import SendResult
from mailtransfer.tls import Opportunistic
from mailtransfer.tls.dane import DANE
from mailtransfer.tls.mta_sts import MTASTS, MTASTSCache, MTASTSMode, MTASTSPolicy

OK = SendResult(accepted={"u@d.test": Reply(250, ("ok",))}, reply=Reply(250, ("queued",)))
POLICY = b"version: STSv1\nmode: {mode}\nmx: mx2.d.test\nmax_age: 600\n"


def _answer(records: tuple[Any, ...], *, authenticated: bool = False) -> Answer[Any]:
    return Answer(name="x", rdtype="X", records=records, authenticated=authenticated)


def run(
    handler: Callable[[Step], Any],
    *,
    cache: MTASTSCache | None = None,
    use_dane: bool = True,
    now: float = 0.0,
) -> tuple[DomainResult, list[Step]]:
    """Drive serve_domain with ``handler`` answering (or raising for) each step."""
    flow = serve_domain(
        "d.test",
        (0,),
        port=25,
        use_mta_sts=True,
        use_dane=use_dane,
        cache=cache or MTASTSCache(),
        verify_context=None,
        now=now,
        addresses_of=("u@d.test",),
    )
    steps: list[Step] = []
    value: Any = None
    error: Exception | None = None
    while True:
        try:
            step = flow.send(value) if error is None else flow.throw(error)
        except StopIteration as stop:
            return stop.value, steps
        steps.append(step)
        value, error = None, None
        try:
            value = handler(step)
        except Exception as exc:
            error = exc


def world(
    *,
    authenticated: bool = False,
    txt: tuple[str, ...] = (),
    mode: str = "enforce",
    tlsa: Any = (),
    deliver: Callable[[Deliver], Any] | None = None,
) -> Callable[[Step], Any]:
    """A step handler for d.test with MX 10 mx1.d.test and 20 mx2.d.test."""

    def handler(step: Step) -> Any:
        if isinstance(step, LookupMX):
            hosts = (MailExchanger("mx1.d.test", 10), MailExchanger("mx2.d.test", 20))
            return MailExchangers(domain="d.test", hosts=hosts, authenticated=authenticated)
        if isinstance(step, LookupTXT):
            return _answer(tuple(TXTRecord((t.encode(),)) for t in txt))
        if isinstance(step, FetchPolicy):
            return POLICY.replace(b"{mode}", mode.encode())
        if isinstance(step, LookupAddresses):
            address = "192.0.2.1" if step.host == "mx1.d.test" else "192.0.2.2"
            return _answer((address,), authenticated=authenticated)
        if isinstance(step, LookupTLSA):
            if isinstance(tlsa, Exception):
                raise tlsa
            return _answer(tlsa, authenticated=authenticated)
        assert isinstance(step, Deliver)
        return deliver(step) if deliver else (OK, "TLSv1.3")

    return handler


def test_no_policy_is_opportunistic_to_the_first_host() -> None:
    """Without MTA-STS or DANE the first host gets opportunistic TLS."""
    result, steps = run(world())
    delivers = [s for s in steps if isinstance(s, Deliver)]
    assert [d.host for d in delivers] == ["mx1.d.test"]
    assert isinstance(delivers[0].tls, Opportunistic)
    assert delivers[0].tls.server_hostname == "mx1.d.test"
    assert (result.policy, result.host, result.tls) == ("none", "mx1.d.test", "opportunistic")
    assert not any(isinstance(s, LookupTLSA) for s in steps)


def test_enforced_policy_skips_unlisted_hosts() -> None:
    """Under enforce the unlisted host is skipped and the listed one needs verified TLS."""
    result, steps = run(world(txt=("v=STSv1; id=7",)))
    delivers = [s for s in steps if isinstance(s, Deliver)]
    assert [d.host for d in delivers] == ["mx2.d.test"]
    assert isinstance(delivers[0].tls, MTASTS)
    assert isinstance(result.attempts[0].error, MTASTSViolation)
    assert result.policy == "mta-sts"


def test_testing_mode_changes_nothing_but_the_label() -> None:
    """mode: testing delivers as usual."""
    result, _ = run(world(txt=("v=STSv1; id=7",), mode="testing"))
    assert result.host == "mx1.d.test"
    assert result.policy == "mta-sts-testing"


def test_cached_policy_survives_a_dns_failure_and_same_id_skips_the_fetch() -> None:
    """A cached policy is used when the TXT lookup fails, and not refetched for the same id."""
    cache = MTASTSCache()
    policy = MTASTSPolicy(mode=MTASTSMode.ENFORCE, max_age=600, mx=("mx2.d.test",), id="7")
    cache.put("d.test", policy, now=0.0)

    def failing_txt(step: Step) -> Any:
        if isinstance(step, LookupTXT):
            raise DNSTemporaryError("servfail")
        return world()(step)

    result, _ = run(failing_txt, cache=cache, now=10.0)
    assert result.host == "mx2.d.test"
    _, steps = run(world(txt=("v=STSv1; id=7",)), cache=cache, now=10.0)
    assert not any(isinstance(s, FetchPolicy) for s in steps)
    _, steps = run(world(txt=("v=STSv1; id=8",)), cache=cache, now=10.0)
    assert any(isinstance(s, FetchPolicy) for s in steps)


def test_two_sts_records_mean_no_policy() -> None:
    """Several v=STSv1 records are an error: no policy applies (RFC 8461 §3.1)."""
    result, steps = run(world(txt=("v=STSv1; id=1", "v=STSv1; id=2")))
    assert result.policy == "none"
    assert not any(isinstance(s, FetchPolicy) for s in steps)


def test_dane_only_with_authenticated_answers() -> None:
    """TLSA records are looked up only when the MX and address answers are validated."""
    record = TLSARecord(3, 1, 1, b"\x01" * 32)
    result, steps = run(world(authenticated=True, tlsa=(record,)))
    delivers = [s for s in steps if isinstance(s, Deliver)]
    assert isinstance(delivers[0].tls, DANE)
    assert result.policy == "dane"
    assert result.tls == "dane"
    _, steps = run(world(authenticated=False, tlsa=(record,)))
    assert not any(isinstance(s, LookupTLSA) for s in steps)


def test_dane_beats_mta_sts() -> None:
    """With both, DANE decides for a host with TLSA records, even one the policy omits."""
    record = TLSARecord(3, 1, 1, b"\x01" * 32)
    _, steps = run(world(authenticated=True, tlsa=(record,), txt=("v=STSv1; id=7",)))
    delivers = [s for s in steps if isinstance(s, Deliver)]
    assert [d.host for d in delivers] == ["mx1.d.test"]
    assert isinstance(delivers[0].tls, DANE)
    # Without TLSA records the enforced policy rules the unlisted host out.
    _, steps = run(world(authenticated=True, tlsa=(), txt=("v=STSv1; id=7",)))
    delivers = [s for s in steps if isinstance(s, Deliver)]
    assert [d.host for d in delivers] == ["mx2.d.test"]
    assert isinstance(delivers[0].tls, MTASTS)


def test_tlsa_lookup_failure_skips_the_host() -> None:
    """A validated domain whose TLSA lookup fails does not use that host (RFC 7672 §2.2)."""
    result, steps = run(world(authenticated=True, tlsa=DNSTemporaryError("servfail")))
    assert [s.host for s in steps if isinstance(s, Deliver)] == []
    assert isinstance(result.error, DNSTemporaryError)
    result, _ = run(world(authenticated=True, tlsa=NXDomain("none")))
    assert result.host == "mx1.d.test"
    assert result.tls == "opportunistic"


def test_usable_less_tlsa_still_requires_tls() -> None:
    """TLSA records that are all unusable still make TLS mandatory (dane-encrypt)."""
    result, steps = run(world(authenticated=True, tlsa=(TLSARecord(1, 1, 1, b"x"),)))
    tls = next(s for s in steps if isinstance(s, Deliver)).tls
    assert tls.required
    assert result.tls == "dane-encrypt"


@pytest.mark.parametrize(
    ("error", "tries_next"),
    [
        (ConnectError("refused"), True),
        (DeliveryUnknown("lost after the dot"), False),
    ],
)
def test_which_failures_move_on(error: Exception, tries_next: bool) -> None:
    """Connection failures move to the next host; DeliveryUnknown never does."""

    def deliver(step: Deliver) -> Any:
        if step.host == "mx1.d.test":
            raise error
        return (OK, None)

    result, steps = run(world(deliver=deliver))
    hosts = [s.host for s in steps if isinstance(s, Deliver)]
    assert hosts == (["mx1.d.test", "mx2.d.test"] if tries_next else ["mx1.d.test"])
    assert (result.host == "mx2.d.test") is tries_next
