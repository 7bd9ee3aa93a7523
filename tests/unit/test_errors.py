"""Tests for mailtransfer.errors: the exception tree and the reply table."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailtransfer import errors
from mailtransfer.errors import (
    ERROR_TABLE,
    ErrorRule,
    MailTransferError,
    ReplyError,
    Stage,
    classify,
    match_rule,
)
from mailtransfer.protocol._reply import EnhancedStatus, Reply, parse_enhanced

DOCS = Path(__file__).resolve().parents[2] / "docs" / "errors.md"

EXCEPTIONS = [
    obj
    for name in errors.__all__
    if isinstance(obj := getattr(errors, name), type) and issubclass(obj, BaseException)
]


def reply_from(line: str) -> Reply:
    """Build a Reply from a one-line reply such as '550 5.1.1 no such user'."""
    code, text = int(line[:3]), line[4:]
    return Reply(code, (text,), parse_enhanced(text, code))


def stage_of(rule: ErrorRule) -> Stage | None:
    """Pick a stage at which the rule applies, or None for stage-free rules."""
    return min(rule.stages) if rule.stages else None


def rule_id(rule: ErrorRule) -> str:
    """A readable pytest id for one rule."""
    parts = [rule.code, rule.enhanced or "", "text" if rule.text else ""]
    parts.append(",".join(sorted(s.value for s in rule.stages)) if rule.stages else "")
    return "-".join(p for p in [*parts, rule.error.__name__] if p)


def less_specific(rule: ErrorRule) -> tuple[Reply, Stage | None]:
    """Drop the rule's most specific condition from its example reply."""
    reply, stage = reply_from(rule.example), stage_of(rule)
    if rule.text:
        neutral = f"{reply.enhanced} Requested action not taken" if reply.enhanced else "Nope"
        return Reply(reply.code, (neutral,), reply.enhanced), stage
    if rule.stages:
        return reply, None
    if rule.enhanced:
        return Reply(reply.code, (reply.message,), None), stage
    lo, hi = rule._codes
    other = lo - 1 if (lo - 1) // 100 == lo // 100 else hi + 1
    return Reply(other, reply.lines, None), stage


SPECIFIC_RULES = [r for r in ERROR_TABLE if r.text or r.stages or r.enhanced or "x" not in r.code]


# ---------------------------------------------------------------- the table


@pytest.mark.parametrize("rule", ERROR_TABLE, ids=rule_id)
def test_rule_example_is_classified_by_its_own_rule(rule: ErrorRule) -> None:
    """Each row's example reply reaches that row: no earlier row shadows it."""
    reply = reply_from(rule.example)
    assert match_rule(reply, stage=stage_of(rule)) is rule
    assert type(classify(reply, stage=stage_of(rule))) is rule.error


@pytest.mark.parametrize("rule", SPECIFIC_RULES, ids=rule_id)
def test_less_specific_reply_does_not_match_the_rule(rule: ErrorRule) -> None:
    """Removing a row's most specific condition makes another row answer."""
    reply, stage = less_specific(rule)
    assert match_rule(reply, stage=stage) is not rule


def test_no_rule_is_dead_behind_a_more_general_earlier_rule() -> None:
    """No row is fully covered by an earlier row (first match wins)."""

    def covers(a: ErrorRule, b: ErrorRule) -> bool:
        stages = a.stages is None or (b.stages is not None and b.stages <= a.stages)
        codes = a._codes[0] <= b._codes[0] and b._codes[1] <= a._codes[1]
        enhanced = a._detail is None or (
            b._detail is not None
            and a._detail[:2] == b._detail[:2]
            and a._detail[2] <= b._detail[2]
            and b._detail[3] <= a._detail[3]
        )
        return stages and codes and enhanced and (not a.text or a.text == b.text)

    dead = [
        (i, j)
        for j, later in enumerate(ERROR_TABLE)
        for i, earlier in enumerate(ERROR_TABLE[:j])
        if covers(earlier, later)
    ]
    assert dead == []


def test_table_ends_with_the_class_fallbacks() -> None:
    """The last two rows catch every 4xx and 5xx reply, so the table is total."""
    assert [(r.code, r.enhanced, r.text, r.stages, r.error) for r in ERROR_TABLE[-2:]] == [
        ("4xx", None, (), None, errors.TransientError),
        ("5xx", None, (), None, errors.PermanentError),
    ]


@pytest.mark.parametrize(
    ("line", "stage", "expected"),
    [
        ("421 4.3.0 Temporary System Problem.  Try again later (10).", None, "ServiceUnavailable"),
        ("421 4.7.0 TLS required for RCPT domain, closing connection.", Stage.RCPT,
         "EncryptionRequired"),
        ("421 4.7.0 [TSS04] Messages from 192.0.2.7 temporarily deferred due to unexpected "
         "volume or user complaints", Stage.MAIL, "RateLimited"),
        ("421 4.7.0 Our system has detected an unusual rate of unsolicited mail originating "
         "from your IP address.", Stage.MAIL, "RateLimited"),
        ("421 4.7.28 Your email has been rate limited because it is unauthenticated.",
         Stage.END_OF_DATA, "RateLimited"),
        ("432 4.3.2 Concurrent connections limit exceeded", Stage.GREETING, "TooManyConnections"),
        ("450 4.2.1 The user you are trying to contact is receiving mail at a rate that "
         "prevents additional messages from being delivered.", Stage.RCPT, "RateLimited"),
        ("451 4.7.1 Greylisted, please try again in 300 seconds", Stage.RCPT, "Greylisted"),
        ("450 4.7.1 <ann@example.org>: Recipient address rejected: Greylisted for 5 minutes",
         Stage.RCPT, "Greylisted"),
        ("451 4.4.2 Timeout - closing connection.", Stage.DATA_BODY, "TemporaryServerError"),
        ("452 4.2.2 The recipient's inbox is out of storage space.", Stage.RCPT, "MailboxFull"),
        ("452 4.5.3 Your message has too many recipients.", Stage.RCPT, "TooManyRecipients"),
        ("454 4.7.0 Too many login attempts, please try again later.", Stage.AUTH,
         "TemporaryAuthFailure"),
        ("454 TLS not available due to temporary reason", Stage.STARTTLS, "StartTLSFailed"),
        ("454 Throttling failure: Maximum sending rate exceeded.", Stage.MAIL, "RateLimited"),
        ("451 4.7.500 Server busy. Please try again later from [192.0.2.7].", Stage.RCPT,
         "RateLimited"),
        ("530 5.7.0 Must issue a STARTTLS command first.", Stage.MAIL, "EncryptionRequired"),
        ("530 5.7.0 Authentication Required.", Stage.MAIL, "AuthenticationRequired"),
        ("530 5.7.57 Client not authenticated to send mail during MAIL FROM", Stage.MAIL,
         "AuthenticationRequired"),
        ("534 5.7.9 Authentication mechanism is too weak", Stage.AUTH, "AuthMechanismTooWeak"),
        ("535 5.7.8 Username and Password not accepted. For more information, go to",
         Stage.AUTH, "BadCredentials"),
        ("535 5.7.3 Authentication unsuccessful [LO4P302CA0005.outlook.office365.com]",
         Stage.AUTH, "BadCredentials"),
        ("535 5.7.139 Authentication unsuccessful, basic authentication is disabled.",
         Stage.AUTH, "AuthMethodDisabled"),
        ("535 5.7.139 Authentication unsuccessful, the user credentials were incorrect.",
         Stage.AUTH, "BadCredentials"),
        ("538 5.7.11 Encryption required for requested authentication mechanism", Stage.AUTH,
         "EncryptionRequired"),
        ("550 5.1.1 The email account that you tried to reach does not exist.", Stage.RCPT,
         "UnknownMailbox"),
        ("550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found", Stage.RCPT,
         "UnknownMailbox"),
        ("550 No such user here", Stage.RCPT, "UnknownMailbox"),
        ("556 5.1.10 Recipient address example.net has null MX", Stage.RCPT, "NullMX"),
        ("550 5.7.27 Sender address has null MX", Stage.MAIL, "NullMX"),
        ("552 5.2.2 The email account that you tried to reach is over quota.", Stage.RCPT,
         "MailboxFull"),
        ("552 5.3.4 Your message exceeded Google's message size limits.", Stage.END_OF_DATA,
         "MessageRejectedTooLarge"),
        ("550 5.7.1 Relaying denied", Stage.RCPT, "RelayDenied"),
        ("554 5.7.1 <bob@example.net>: Relay access denied", Stage.RCPT, "RelayDenied"),
        ("550 5.7.26 This message does not have authentication information or fails to pass "
         "authentication checks (SPF or DKIM).", Stage.END_OF_DATA, "DMARCRejected"),
        ("550 5.7.1 Unauthenticated email from example.com is not accepted due to domain's "
         "DMARC policy.", Stage.END_OF_DATA, "DMARCRejected"),
        ("550 5.7.25 The IP address sending this message does not have a PTR record setup",
         Stage.END_OF_DATA, "ReverseDNSRejected"),
        ("550 5.7.708 Access denied, traffic not accepted from this IP.", Stage.MAIL,
         "SenderBlocked"),
        ("553 5.7.1 [BL21] Connections will not be accepted from 192.0.2.7, because the ip "
         "is in Spamhaus's list", Stage.MAIL, "SenderBlocked"),
        ("550 5.4.5 Daily user sending quota exceeded.", Stage.MAIL, "QuotaExceeded"),
        ("554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException; Failed "
         "to process message", Stage.END_OF_DATA, "QuotaExceeded"),
        ("553 5.6.7 Non-ASCII addresses not permitted for that sender", Stage.MAIL,
         "InvalidMailboxSyntax"),
        ("503 5.5.1 Error: nested MAIL command", Stage.MAIL, "CommandRejected"),
        ("550 5.7.30 REQUIRETLS support required", Stage.END_OF_DATA, "RequireTLSUnsupported"),
        ("554 5.7.1 Service unavailable; Client host [192.0.2.7] blocked using zen.spamhaus.org",
         Stage.RCPT, "SenderBlocked"),
        ("550 5.7.1 Message rejected as spam", Stage.END_OF_DATA, "PolicyRejected"),
        ("554 Transaction failed", Stage.END_OF_DATA, "PermanentError"),
    ],
)  # fmt: skip
def test_real_world_replies_get_the_expected_class(
    line: str, stage: Stage | None, expected: str
) -> None:
    """Replies quoted from providers and RFCs (REPLY-CODES.md) map to the named class."""
    assert type(classify(reply_from(line), stage=stage)).__name__ == expected


def test_contradicting_enhanced_code_is_ignored_and_kept() -> None:
    """A 550 carrying a 4.x.x enhanced code is permanent and keeps both codes."""
    reply = Reply(550, ("4.2.2 mailbox over the limit",), EnhancedStatus(4, 2, 2))
    error = classify(reply, stage=Stage.RCPT)
    assert type(error) is errors.PermanentError
    assert (error.code, error.enhanced, error.transient) == (550, EnhancedStatus(4, 2, 2), False)


def test_stage_bound_rule_needs_the_stage() -> None:
    """A 454 is StartTLSFailed only when the stage says it answered STARTTLS."""
    reply = reply_from("454 4.7.0 Try again later")
    assert type(classify(reply, stage=Stage.STARTTLS)) is errors.StartTLSFailed
    assert type(classify(reply)) is errors.PolicyRejected


@pytest.mark.parametrize("code", [100, 220, 250, 334, 354, 399, 600])
def test_classify_refuses_non_failure_replies(code: int) -> None:
    """Classifying anything but a 4xx/5xx reply is a caller bug."""
    with pytest.raises(ValueError, match=str(code)):
        classify(Reply(code, ("ok",)))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"code": "5x5"}, "code must"),
        ({"code": "550", "enhanced": "4.1.1"}, "enhanced must"),
        ({"code": "550", "enhanced": "5.1"}, "enhanced must"),
        ({"code": "550", "text": ("a|b",)}, "must not contain"),
        ({"code": "450", "error": errors.UnknownMailbox}, "cannot be the class"),
        ({"code": "550", "error": errors.Greylisted}, "cannot be the class"),
    ],
)
def test_invalid_rules_cannot_be_built(kwargs: dict[str, Any], match: str) -> None:
    """ErrorRule validates its patterns and the reply class of its target."""
    fields: dict[str, Any] = {"error": errors.PolicyRejected, "meaning": "m", "example": "e"}
    with pytest.raises(ValueError, match=match):
        ErrorRule(**(fields | kwargs))


_ENHANCED = st.none() | st.builds(
    EnhancedStatus, st.integers(0, 9), st.integers(0, 999), st.integers(0, 999)
)


@given(
    code=st.integers(400, 599),
    lines=st.lists(st.text(max_size=300), min_size=1, max_size=4),
    enhanced=_ENHANCED,
    stage=st.none() | st.sampled_from(Stage),
    command=st.none() | st.text(max_size=60),
)
def test_classify_is_total_and_transient_follows_the_code(
    code: int,
    lines: list[str],
    enhanced: EnhancedStatus | None,
    stage: Stage | None,
    command: str | None,
) -> None:
    """Any 4xx/5xx reply yields a ReplyError whose transient flag is exactly 'is 4xx'."""
    error = classify(Reply(code, tuple(lines), enhanced), stage=stage, command=command)
    assert isinstance(error, ReplyError)
    assert error.transient == (400 <= code < 500)
    assert not any(ord(c) < 0x20 for c in str(error))  # fmt: skip


# ------------------------------------------------------------------ messages


def test_message_names_command_and_quotes_the_reply() -> None:
    """The message has the documented shape: command, verb, code, enhanced, text."""
    reply = Reply(550, ("5.1.1 <x@y>: no such user",), EnhancedStatus(5, 1, 1))
    error = classify(reply, stage=Stage.RCPT, command="RCPT TO:<x@y>")
    assert str(error) == "RCPT TO:<x@y> refused: 550 5.1.1 <x@y>: no such user"


def test_transient_message_says_temporarily() -> None:
    """A 4xx reply reads as a temporary refusal."""
    error = classify(reply_from("451 4.7.1 Try later"), command="RCPT TO:<x@y>")
    assert str(error).startswith("RCPT TO:<x@y> temporarily refused: 451 4.7.1 ")


def test_message_falls_back_to_stage_then_server() -> None:
    """Without a command the message names the stage, and without both the server."""
    reply = reply_from("554 No SMTP service here")
    assert str(classify(reply, stage=Stage.GREETING)).startswith("greeting refused: 554 ")
    assert str(classify(reply)).startswith("server refused: 554 ")


def test_server_text_is_quoted_verbatim() -> None:
    """Spacing, punctuation and non-ASCII text reach the message unchanged."""
    text = "Ünknown  user «bob»; see https://x.example/a?b=c&d=e (code #42)"
    assert text in str(classify(Reply(550, (text,)), stage=Stage.RCPT))


def test_multiline_reply_is_joined_without_repeated_enhanced_codes() -> None:
    """Continuation lines are joined with spaces and their enhanced codes dropped."""
    reply = Reply(550, ("5.7.26 first part,", "5.7.26 second part."), EnhancedStatus(5, 7, 26))
    assert str(classify(reply)).endswith("550 5.7.26 first part, second part.")


def test_long_server_text_is_trimmed_but_kept_on_the_reply() -> None:
    """A huge reply text is cut in the message; the reply keeps all of it."""
    reply = Reply(550, ("x" * 5000,))
    error = classify(reply)
    assert len(str(error)) < 600
    assert str(error).endswith("... (4600 more characters)")
    assert error.reply.text == "x" * 5000


def test_control_characters_in_server_text_are_escaped() -> None:
    """Terminal escapes in a reply cannot reach logs raw."""
    error = classify(Reply(550, ("\x1b[31mred\x07",)))
    assert "\x1b" not in str(error)
    assert "\\x1b[31mred\\x07" in str(error)


def test_auth_command_payload_never_reaches_the_message() -> None:
    """An AUTH line's initial response (a credential) is dropped from the message."""
    error = classify(reply_from("535 5.7.8 bad"), command="AUTH PLAIN AHVzZXIAc2VjcmV0")
    assert str(error).startswith("AUTH PLAIN refused: 535 5.7.8 bad")
    assert "AHVzZXIAc2VjcmV0" not in str(error)


# ----------------------------------------------------------- reply errors


def test_reply_error_exposes_code_and_enhanced() -> None:
    """code and enhanced come straight from the reply."""
    error = errors.UnknownMailbox(reply=reply_from("550 5.1.1 gone"))
    assert (error.code, error.enhanced) == (550, EnhancedStatus(5, 1, 1))


@pytest.mark.parametrize(
    ("cls", "code"),
    [
        (errors.TransientError, 550),
        (errors.Greylisted, 550),
        (errors.PermanentError, 451),
        (errors.UnknownMailbox, 451),
        (errors.ReplyError, 250),
        (errors.MailboxFull, 354),
    ],
)
def test_reply_error_refuses_a_reply_of_the_wrong_class(cls: type[ReplyError], code: int) -> None:
    """TransientError needs 4xx, PermanentError 5xx, and every ReplyError a failure."""
    with pytest.raises(ValueError, match=f"got {code}"):
        cls(reply=Reply(code, ("x",)))


@pytest.mark.parametrize(("code", "transient"), [(452, True), (552, False)])
def test_dual_class_transient_follows_the_reply(code: int, transient: bool) -> None:
    """MailboxFull exists as 4xx and 5xx; its flag follows the code."""
    assert errors.MailboxFull(reply=Reply(code, ("full",))).transient is transient


def test_retryable_needs_transient_and_auto_retry() -> None:
    """A 4xx EncryptionRequired is transient but not retried as is; Greylisted is."""
    reply = reply_from("421 4.7.0 TLS required")
    assert errors.EncryptionRequired(reply=reply).transient
    assert not errors.EncryptionRequired(reply=reply).retryable
    assert errors.Greylisted(reply=reply_from("451 4.7.1 later")).retryable
    assert not errors.MailboxFull(reply=reply_from("552 5.2.2 full")).retryable


def test_closes_connection_only_for_421() -> None:
    """421 means the server is closing the channel (RFC 5321 §3.8)."""
    assert errors.ServiceUnavailable(reply=reply_from("421 bye")).closes_connection
    assert not errors.TemporaryServerError(reply=reply_from("451 oops")).closes_connection


@pytest.mark.parametrize(
    ("cls", "transient"),
    [
        (errors.ConnectError, True),
        (errors.ServerDisconnected, True),
        (errors.NoMailExchanger, False),
        (errors.Timeout, True),
        (errors.ReadTimeout, True),
        (errors.TLSRequired, False),
        (errors.UsageError, False),
        (errors.RemoteProtocolError, False),
        (errors.DeliveryUnknown, False),
    ],
)
def test_non_reply_transient_flags(cls: type[MailTransferError], transient: bool) -> None:
    """Network hiccups are transient; config, usage and unknown-delivery errors are not."""
    assert cls.transient is transient


# ------------------------------------------------------- the other outcomes


def _refusal(line: str) -> ReplyError:
    return classify(reply_from(line), stage=Stage.RCPT)


def test_recipients_refused_lists_each_address_with_its_reply() -> None:
    """The message names every refused address (up to three) with its reply."""
    refused = {
        "a@x.example": _refusal("550 5.1.1 nobody"),
        "b@y.example": _refusal("452 4.2.2 full"),
    }
    error = errors.RecipientsRefused(refused=refused)
    assert str(error) == (
        "every recipient was refused: <a@x.example> 550 5.1.1 nobody; <b@y.example> 452 4.2.2 full"
    )


def test_recipients_refused_summarises_beyond_three() -> None:
    """Past three recipients the message counts the rest."""
    refused = {f"r{i}@x.example": _refusal("550 5.1.1 nobody") for i in range(5)}
    message = str(errors.RecipientsRefused("all refused", refused=refused))
    assert message.startswith("all refused: <r0@x.example>")
    assert message.endswith("; and 2 more")


@pytest.mark.parametrize(
    ("lines", "transient"),
    [(["451 4.7.1 later", "452 4.2.2 full"], True), (["451 4.7.1 later", "550 5.1.1 no"], False)],
)
def test_recipients_refused_is_transient_only_if_every_refusal_is(
    lines: list[str], transient: bool
) -> None:
    """Retrying the whole send makes sense only when nothing was permanent."""
    refused = {f"r{i}@x.example": _refusal(line) for i, line in enumerate(lines)}
    assert errors.RecipientsRefused(refused=refused).transient is transient


def test_recipients_refused_keeps_every_refusal() -> None:
    """refused maps every address to its own error, beyond the ones in the message."""
    refused = {f"r{i}@x.example": _refusal("550 5.1.1 nobody") for i in range(5)}
    kept = errors.RecipientsRefused(refused=refused).refused
    assert list(kept) == list(refused)
    assert all(kept[address] is error for address, error in refused.items())


def test_recipients_refused_needs_a_recipient() -> None:
    """An empty refusal map is a caller bug."""
    with pytest.raises(ValueError, match="at least one"):
        errors.RecipientsRefused(refused={})


def test_delivery_unknown_carries_message_id_and_is_never_transient() -> None:
    """DeliveryUnknown keeps the Message-ID and is never retried automatically."""
    error = errors.DeliveryUnknown("lost after the dot", message_id="<1@x.example>")
    assert (error.message_id, error.transient, error.stage) == (
        "<1@x.example>",
        False,
        Stage.END_OF_DATA,
    )


@pytest.mark.parametrize(
    ("error", "fix"),
    [
        (errors.TLSPortMismatch.plaintext_server(587), "tls=StartTLS() for port 587"),
        (errors.TLSPortMismatch.tls_server(465), "tls=ImplicitTLS() for port 465"),
    ],
)
def test_tls_port_mismatch_says_the_fix(error: errors.TLSPortMismatch, fix: str) -> None:
    """The port-confusion message tells the user which TLS policy to use."""
    assert fix in str(error)


# ------------------------------------------------------------- tree shape


@pytest.mark.parametrize("cls", EXCEPTIONS, ids=lambda c: c.__name__)
def test_every_exception_derives_from_the_base_and_has_a_docstring(cls: type) -> None:
    """Every public exception is a MailTransferError with its own docstring."""
    assert issubclass(cls, MailTransferError)
    assert (cls.__dict__.get("__doc__") or "").strip()


@pytest.mark.parametrize(
    ("cls", "builtin"),
    [
        (errors.UsageError, ValueError),
        (errors.InvalidAddress, ValueError),
        (errors.HeaderInjection, ValueError),
        (errors.MessageTooLarge, ValueError),
        (errors.ConnectError, ConnectionError),
        (errors.ServerDisconnected, ConnectionError),
        (errors.NoMailExchanger, ConnectionError),
        (errors.Timeout, TimeoutError),
        (errors.ConnectTimeout, TimeoutError),
        (errors.ReadTimeout, TimeoutError),
    ],
)
def test_builtin_mixins(cls: type, builtin: type) -> None:
    """Existing except-clauses for builtins keep catching our errors."""
    assert issubclass(cls, builtin)


@pytest.mark.parametrize(
    ("cls", "bases"),
    [
        (errors.StartTLSFailed, (errors.TLSError, errors.ReplyError)),
        (errors.HostnameMismatch, (errors.CertificateVerifyFailed,)),
        (errors.SMTPUTF8Required, (errors.ExtensionNotSupported, errors.UsageError)),
        (errors.BadCredentials, (errors.AuthenticationFailed, errors.PermanentError)),
        (errors.Greylisted, (errors.TransientError,)),
        (errors.MailboxFull, (errors.ReplyError,)),
        (errors.DMARCRejected, (errors.AuthenticationPolicyRejected, errors.PolicyRejected)),
        (errors.LocalProtocolError, (errors.ProtocolError,)),
    ],
)
def test_tree_branches(cls: type, bases: tuple[type, ...]) -> None:
    """Key branches of the tree are where the docs say they are."""
    assert all(issubclass(cls, base) for base in bases)


def test_separate_branches_do_not_overlap() -> None:
    """Usage, connection, timeout, TLS, protocol and reply errors are distinct branches."""
    branches = [
        errors.UsageError, errors.ConnectError, errors.Timeout, errors.TLSError,
        errors.ProtocolError, errors.ReplyError, errors.DeliveryUnknown, errors.RecipientsRefused,
    ]  # fmt: skip
    for cls in EXCEPTIONS:
        owners = [b for b in branches if issubclass(cls, b)]
        assert len(owners) <= 1 or cls is errors.StartTLSFailed, (cls, owners)


def test_dual_class_categories_are_not_under_transient_or_permanent() -> None:
    """Categories that exist as 4xx and 5xx subclass ReplyError directly."""
    for cls in (errors.MailboxFull, errors.TooManyRecipients, errors.PolicyRejected):
        assert not issubclass(cls, (errors.TransientError, errors.PermanentError))


def test_all_is_sorted_and_complete() -> None:
    """errors.__all__ is sorted and names only existing objects."""
    assert errors.__all__ == sorted(errors.__all__)
    assert all(hasattr(errors, name) for name in errors.__all__)


def test_module_docstring_draws_the_current_tree() -> None:
    """The tree in the module docstring is the one the classes form."""
    assert errors.__doc__ is not None
    assert errors.render_error_tree() in errors.__doc__


# --------------------------------------------------------------- pickling


def _instance(cls: type[MailTransferError]) -> MailTransferError:
    """Build an instance of cls with every attribute set to a non-default value."""
    common: dict[str, Any] = {"stage": Stage.RCPT, "transcript": ("C: NOOP", "S: 250 ok")}
    if cls is errors.RecipientsRefused:
        return cls("all refused", refused={"a@x.example": _refusal("550 5.1.1 no")}, **common)
    if cls is errors.DeliveryUnknown:
        return cls("lost", message_id="<1@x.example>", command="BDAT 1 LAST", **common)
    if cls is errors.NoSuitableMechanism:
        return cls("none fits", offered=("CRAM-MD5",), usable=("PLAIN",))
    if cls is errors.PartialDelivery:
        error = cls("1 refused", result=("a stand-in result", 42))
        error.transcript = common["transcript"]
        return error
    transient = issubclass(cls, errors.TransientError)
    reply = reply_from("451 4.7.1 later" if transient else "550 5.7.1 no")
    return cls("boom", reply=reply, command="RCPT TO:<a@x.example>", **common)


def _state(error: BaseException) -> dict[str, Any]:
    state = dict(vars(error))
    if "refused" in state:
        state["refused"] = {k: (type(v), _state(v)) for k, v in state["refused"].items()}
    return state


@pytest.mark.parametrize("cls", EXCEPTIONS, ids=lambda c: c.__name__)
def test_every_exception_pickles_with_all_attributes(cls: type[MailTransferError]) -> None:
    """Errors survive a pickle round trip (task queues) with type, message and attributes."""
    error = _instance(cls)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is cls
    assert (str(copy), copy.args, copy.transient) == (str(error), error.args, error.transient)
    assert _state(copy) == _state(error)


# ------------------------------------------------------------------- docs


def _between(text: str, name: str) -> str:
    start, end = f"<!-- {name}:start -->\n", f"<!-- {name}:end -->"
    assert (text.count(start), text.count(end)) == (1, 1)
    return text[text.index(start) + len(start) : text.index(end)]


def test_docs_table_is_the_rendered_table() -> None:
    """docs/errors.md holds exactly the table generated from ERROR_TABLE."""
    assert _between(DOCS.read_text(encoding="utf-8"), "error-table") == errors.render_error_table()


def test_docs_tree_is_the_rendered_tree() -> None:
    """docs/errors.md draws the same tree as the classes."""
    expected = "```\n" + errors.render_error_tree() + "```\n"
    assert _between(DOCS.read_text(encoding="utf-8"), "error-tree") == expected


def test_rendered_table_has_one_line_per_rule() -> None:
    """Every rule appears once in the rendered table, after the two header lines."""
    lines = errors.render_error_table().splitlines()
    assert len(lines) == len(ERROR_TABLE) + 2
    assert all(
        f"`{rule.error.__name__}`" in line
        for rule, line in zip(ERROR_TABLE, lines[2:], strict=True)
    )
