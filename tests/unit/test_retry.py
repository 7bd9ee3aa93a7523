"""The retry decision (``is_retryable``), the backoff, the deferral rule, and tenacity wiring.

The decision table is the no-duplicate rule in code: anything that may have been accepted
(``DeliveryUnknown``, or any non-reply failure while waiting for the reply to the end of
data) is never retried, whatever else is true of it.
"""

from __future__ import annotations

import asyncio

import pytest
import tenacity
from hypothesis import given
from hypothesis import strategies as st

from mailtransfer import RetryPolicy
from mailtransfer._sending import is_deferral, is_relay_failure
from mailtransfer.errors import (
    CertificateVerifyFailed,
    ConnectError,
    ConnectTimeout,
    DeliveryUnknown,
    HeaderInjection,
    LocalProtocolError,
    MailTransferError,
    NoMailExchanger,
    PartialDelivery,
    PoolTimeout,
    ReadTimeout,
    RecipientsRefused,
    RemoteProtocolError,
    ServerDisconnected,
    SMTPUTF8Required,
    Stage,
    UsageError,
    classify,
)
from mailtransfer.protocol import Reply
from mailtransfer.protocol._reply import parse_enhanced
from mailtransfer.retry import is_retryable


def reply_error(code: int, text: str, stage: Stage = Stage.MAIL) -> MailTransferError:
    """The typed error the client raises for ``code text``."""
    return classify(Reply(code, (text,), parse_enhanced(text, code)), stage=stage)


def refused(*replies: tuple[int, str]) -> RecipientsRefused:
    """Every recipient refused, one reply each."""
    return RecipientsRefused(
        refused={
            f"r{i}@example.net": reply_error(code, text, Stage.RCPT)  # type: ignore[misc]
            for i, (code, text) in enumerate(replies)
        }
    )


RETRYABLE = {
    "421 to MAIL": reply_error(421, "4.3.2 Service shutting down"),
    "421 to the end of data (not accepted)": reply_error(421, "4.3.0 busy", Stage.END_OF_DATA),
    "451 after the data": reply_error(451, "4.3.0 try later", Stage.END_OF_DATA),
    "greylisted": reply_error(451, "4.7.1 Greylisted, try again"),
    "rate limited": reply_error(450, "4.2.1 receiving mail too quickly"),
    "too many connections": reply_error(432, "4.3.2 Concurrent connections limit exceeded"),
    "auth temporarily failing": reply_error(454, "4.7.0 Temporary authentication failure"),
    "every recipient greylisted": refused((451, "4.7.1 later"), (450, "4.2.0 busy")),
    "lost during RCPT": ServerDisconnected("lost", stage=Stage.RCPT),
    "lost while sending the body": ServerDisconnected("lost", stage=Stage.DATA_BODY),
    "refused connection": ConnectError("refused", stage=Stage.CONNECT),
    "connect timeout": ConnectTimeout("slow", stage=Stage.CONNECT),
    "read timeout at MAIL": ReadTimeout("slow", stage=Stage.MAIL),
    "garbled reply before the data": RemoteProtocolError("junk", stage=Stage.RCPT),
    "no free pooled connection": PoolTimeout("busy pool"),
}

NOT_RETRYABLE = {
    "delivery unknown": DeliveryUnknown("lost after the final dot"),
    "delivery unknown, any stage": DeliveryUnknown("lost", stage=Stage.DATA_BODY),
    "lost waiting for the final reply": ServerDisconnected("lost", stage=Stage.END_OF_DATA),
    "timeout waiting for the final reply": ReadTimeout("slow", stage=Stage.END_OF_DATA),
    "garbled final reply": RemoteProtocolError("junk", stage=Stage.END_OF_DATA),
    "unknown mailbox": reply_error(550, "5.1.1 no such user", Stage.RCPT),
    "bad credentials": reply_error(535, "5.7.8 Username and Password not accepted", Stage.AUTH),
    "message too big": reply_error(552, "5.3.4 Message too big", Stage.END_OF_DATA),
    "TLS required, even as 4xx": reply_error(421, "4.7.0 TLS required for RCPT domain"),
    "STARTTLS first": reply_error(530, "5.7.0 Must issue a STARTTLS command first"),
    "bad sequence": reply_error(503, "5.5.1 bad sequence of commands"),
    "every recipient refused for good": refused((550, "5.1.1 no"), (550, "5.1.1 no")),
    "some refused for good, some later": refused((550, "5.1.1 no"), (451, "4.7.1 later")),
    "null MX": NoMailExchanger("no MX", stage=Stage.CONNECT),
    "certificate": CertificateVerifyFailed("bad cert", stage=Stage.TLS_HANDSHAKE),
    "usage": UsageError("wrong"),
    "header injection": HeaderInjection("CRLF"),
    "no SMTPUTF8": SMTPUTF8Required("needs SMTPUTF8"),
    "local protocol error": LocalProtocolError("our bug"),
    "partial delivery under strict": PartialDelivery("1 refused", result=None),
    "not ours: ValueError": ValueError("x"),
    "not ours: KeyboardInterrupt": KeyboardInterrupt(),
    "not ours: CancelledError": asyncio.CancelledError(),
}


@pytest.mark.parametrize("error", RETRYABLE.values(), ids=RETRYABLE.keys())
def test_retryable(error: BaseException) -> None:
    """Failures that cannot have delivered the message, and may pass later, are retried."""
    assert is_retryable(error)


@pytest.mark.parametrize("error", NOT_RETRYABLE.values(), ids=NOT_RETRYABLE.keys())
def test_not_retryable(error: BaseException) -> None:
    """Failures that may have delivered, or will fail again, are never retried."""
    assert not is_retryable(error)


@given(st.sampled_from(list(Stage)), st.sampled_from([ServerDisconnected, ReadTimeout]))
def test_delivery_unknown_never_retried_at_any_stage(stage: Stage, kind: type) -> None:
    """DeliveryUnknown is never retried; other I/O failures only before END_OF_DATA."""
    assert not is_retryable(DeliveryUnknown("?", stage=stage))
    assert is_retryable(kind("lost", stage=stage)) is (stage is not Stage.END_OF_DATA)


# -- which failures slow the destination, and which move on to the next relay ----------------

DEFERRALS = {
    "421": reply_error(421, "4.3.2 Service shutting down"),
    "421 without enhanced code": reply_error(421, "closing"),
    "rate 4.7.0": reply_error(451, "4.7.0 unusual rate of mail"),
    "connection limit": reply_error(432, "4.3.2 Concurrent connections limit exceeded"),
    "4.7.x policy deferral": reply_error(450, "4.7.1 deferred for policy reasons"),
    "every recipient 4.7.x": refused((450, "4.7.1 later"), (451, "4.7.1 later")),
}

NOT_DEFERRALS = {
    "mailbox busy": reply_error(450, "4.2.1 mailbox busy", Stage.RCPT),
    "server error": reply_error(451, "4.3.0 local error"),
    "permanent 5.7.1": reply_error(550, "5.7.1 relaying denied"),
    "mixed refusals": refused((450, "4.7.1 later"), (550, "5.1.1 no")),
    "disconnect": ServerDisconnected("lost", stage=Stage.RCPT),
    "usage": UsageError("wrong"),
}


@pytest.mark.parametrize("error", DEFERRALS.values(), ids=DEFERRALS.keys())
def test_deferral_slows_destination(error: BaseException) -> None:
    """A 421 or a 4.7.x deferral asks the whole destination to slow down."""
    assert is_deferral(error)


@pytest.mark.parametrize("error", NOT_DEFERRALS.values(), ids=NOT_DEFERRALS.keys())
def test_other_failures_do_not_slow_destination(error: BaseException) -> None:
    """Failures about one message or one mailbox do not pause the destination."""
    assert not is_deferral(error)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ConnectError("refused", stage=Stage.CONNECT), True),
        (ConnectTimeout("slow", stage=Stage.CONNECT), True),
        (reply_error(421, "4.3.2 busy", Stage.GREETING), True),
        (reply_error(554, "5.3.2 no service", Stage.GREETING), True),
        (ServerDisconnected("lost", stage=Stage.RCPT), False),
        (reply_error(421, "4.3.2 busy", Stage.MAIL), False),
        (DeliveryUnknown("?", stage=Stage.CONNECT), False),
        (UsageError("wrong"), False),
    ],
)
def test_relay_failure_only_at_connect_or_greeting(error: BaseException, expected: bool) -> None:
    """Only failing to reach or be greeted by a relay moves on to the next relay."""
    assert is_relay_failure(error) is expected


# -- the policy ------------------------------------------------------------------------------


def state(attempt: int) -> tenacity.RetryCallState:
    """A tenacity call state after ``attempt`` attempts."""
    retry_state = tenacity.RetryCallState(tenacity.Retrying(), None, (), {})
    retry_state.attempt_number = attempt
    return retry_state


def test_backoff_doubles_then_caps() -> None:
    """Without jitter the waits are initial, 2x, 4x... up to ``max_backoff``."""
    policy = RetryPolicy(initial_backoff=0.5, max_backoff=3.0, jitter=0.0)
    assert [policy.backoff(state(n)) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_backoff_survives_huge_attempt_numbers() -> None:
    """A very long retry sequence does not overflow; the wait stays at the cap."""
    assert RetryPolicy(max_backoff=30.0).backoff(state(10_000)) == 30.0


@given(
    initial=st.floats(min_value=0.0, max_value=5.0),
    cap=st.floats(min_value=0.0, max_value=60.0),
    jitter=st.floats(min_value=0.0, max_value=2.0),
    attempt=st.integers(min_value=1, max_value=200),
)
def test_backoff_within_bounds(initial: float, cap: float, jitter: float, attempt: int) -> None:
    """Every wait is between the jitter-free exponential value (capped) and the cap."""
    policy = RetryPolicy(initial_backoff=initial, max_backoff=cap, jitter=jitter)
    wait = policy.backoff(state(attempt))
    floor = min(cap, initial * 2.0 ** min(attempt - 1, 64))
    assert floor - 1e-9 <= wait <= cap + 1e-9


@pytest.mark.parametrize(
    "options",
    [{"attempts": 0}, {"max_time": -1.0}, {"initial_backoff": -0.1}, {"jitter": -1.0}],
)
def test_policy_rejects_bad_values(options: dict[str, float]) -> None:
    """Attempts below one and negative times are refused with the field's name."""
    with pytest.raises(ValueError, match=next(iter(options))):
        RetryPolicy(**options)  # type: ignore[arg-type]


def test_none_policy_makes_one_attempt() -> None:
    """``RetryPolicy.none()`` never retries."""
    assert RetryPolicy.none().attempts == 1


def run(policy: RetryPolicy, failures: list[BaseException]) -> int:
    """Drive ``policy.retrying()`` over a call that raises ``failures`` in turn; count calls."""
    calls = 0
    for attempt in policy.retrying():
        with attempt:
            calls += 1
            if failures:
                raise failures.pop(0)
    return calls


FAST = RetryPolicy(attempts=4, initial_backoff=0.0, max_backoff=0.0, jitter=0.0)


def test_retrying_repeats_transient_failures_until_success() -> None:
    """Two transient failures, then success: three calls, no error."""
    failures: list[BaseException] = [RETRYABLE["421 to MAIL"], RETRYABLE["lost during RCPT"]]
    assert run(FAST, failures) == 3


def test_retrying_stops_at_delivery_unknown() -> None:
    """DeliveryUnknown after a transient failure is raised as is: two calls, no third."""
    unknown = DeliveryUnknown("lost after the final dot")
    failures: list[BaseException] = [RETRYABLE["421 to MAIL"], unknown]
    with pytest.raises(DeliveryUnknown) as caught:
        run(FAST, failures)
    assert caught.value is unknown


def test_retrying_gives_up_after_attempts_with_last_error() -> None:
    """When every attempt fails, the last error itself is raised (not tenacity's)."""
    errors = [ServerDisconnected(f"lost {i}", stage=Stage.MAIL) for i in range(4)]
    with pytest.raises(ServerDisconnected, match="lost 3"):
        run(FAST, list(errors))


def test_retrying_does_not_swallow_cancellation() -> None:
    """A cancellation inside an attempt propagates: it is not retried."""
    with pytest.raises(asyncio.CancelledError):
        run(FAST, [asyncio.CancelledError()])


async def arun(policy: RetryPolicy, failures: list[BaseException]) -> int:
    """The asyncio twin of :func:`run`."""
    calls = 0
    async for attempt in policy.async_retrying():
        with attempt:
            calls += 1
            if failures:
                raise failures.pop(0)
    return calls


def test_async_retrying_same_decisions() -> None:
    """The asyncio retrying loop retries and stops exactly like the sync one."""
    assert asyncio.run(arun(FAST, [RETRYABLE["421 to MAIL"]])) == 2
    failures: list[BaseException] = [RETRYABLE["421 to MAIL"], DeliveryUnknown("?")]
    with pytest.raises(DeliveryUnknown):
        asyncio.run(arun(FAST, failures))
    assert failures == []
