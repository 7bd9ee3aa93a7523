"""The reply classification table behind :func:`mailtransfer.errors.classify`.

:func:`classify` walks :data:`ERROR_TABLE` top to bottom and takes the first
:class:`ErrorRule` that matches; ``docs/errors.md`` is rendered from the same table.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from .errors import (
    AuthenticationFailed,
    AuthenticationPolicyRejected,
    AuthenticationRequired,
    AuthMechanismTooWeak,
    AuthMethodDisabled,
    BadCredentials,
    CommandRejected,
    DKIMRejected,
    DMARCRejected,
    EncryptionRequired,
    Greylisted,
    InvalidMailboxSyntax,
    MailboxBusy,
    MailboxFull,
    MailTransferError,
    MessageRejectedTooLarge,
    NullMX,
    PermanentError,
    PolicyRejected,
    QuotaExceeded,
    RateLimited,
    RelayDenied,
    ReplyError,
    RequireTLSUnsupported,
    ReverseDNSRejected,
    SenderBlocked,
    ServiceUnavailable,
    SPFRejected,
    Stage,
    StartTLSFailed,
    TemporaryAuthFailure,
    TemporaryServerError,
    TooManyConnections,
    TooManyRecipients,
    TransientError,
    UnknownMailbox,
)
from .protocol._reply import Reply

__all__ = [
    "ERROR_TABLE",
    "ErrorRule",
    "classify",
    "match_rule",
    "render_error_table",
    "render_error_tree",
]

_CODE_PATTERN = re.compile(r"([45]\d{0,2})(x*)")
_ENHANCED_PATTERN = re.compile(r"([45])\.(\d{1,3})\.(\*|\d{0,3}x*)")


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorRule:
    """One row of :data:`ERROR_TABLE`: which replies map to which exception.

    A rule matches a reply when every condition it sets holds. Patterns:
    ``code`` is exact (``"550"``) or ends in ``x`` digits (``"5xx"``, ``"50x"``);
    ``enhanced`` is exact (``"5.1.1"``), ends in ``x`` digits (``"5.7.7xx"``
    is 5.7.700-5.7.799) or ``*`` (any detail), or None for "any or none";
    ``text`` holds regex alternatives searched case-insensitively in the reply
    text; ``stages`` limits the rule to replies at those stages.
    """

    code: str
    enhanced: str | None = None
    text: tuple[str, ...] = ()
    stages: frozenset[Stage] | None = None
    error: type[ReplyError]
    meaning: str
    """A short explanation, shown in the docs table."""
    example: str
    """A reply this rule is written for, e.g. ``"550 5.1.1 no such user"``; used by the tests."""
    _codes: tuple[int, int] = field(init=False, repr=False, compare=False)
    _detail: tuple[int, int, int, int] | None = field(init=False, repr=False, compare=False)
    _regex: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        m = _CODE_PATTERN.fullmatch(self.code)
        if m is None or len(self.code) != 3:
            raise ValueError(f"code must look like '550', '5xx' or '50x', got {self.code!r}")
        lo, hi = int(m[1] + "0" * len(m[2])), int(m[1] + "9" * len(m[2]))
        object.__setattr__(self, "_codes", (lo, hi))
        detail = None
        if self.enhanced is not None:
            e = _ENHANCED_PATTERN.fullmatch(self.enhanced)
            if e is None or e[1] != self.code[0] or e[3] in ("", "x", "xx", "xxx"):
                raise ValueError(
                    f"enhanced must look like '{self.code[0]}.7.1', '{self.code[0]}.7.7xx' "
                    f"or '{self.code[0]}.7.*' for code {self.code}, got {self.enhanced!r}"
                )
            digits, xs = e[3].rstrip("x*"), len(e[3]) - len(e[3].rstrip("x"))
            dlo, dhi = (
                (0, 999) if e[3] == "*" else (int(digits) * 10**xs, (int(digits) + 1) * 10**xs - 1)
            )
            detail = (int(e[1]), int(e[2]), dlo, dhi)
        object.__setattr__(self, "_detail", detail)
        if any("|" in alt for alt in self.text):
            raise ValueError(f"text alternatives must not contain '|', got {self.text!r}")
        regex = re.compile("|".join(self.text), re.IGNORECASE) if self.text else None
        object.__setattr__(self, "_regex", regex)
        if self.error._reply_class not in (None, int(self.code[0])):
            raise ValueError(f"{self.error.__name__} cannot be the class of {self.code} replies")

    @property
    def transient(self) -> bool:
        """True when the rule matches 4xx replies."""
        return self.code.startswith("4")

    def matches(self, reply: Reply, stage: Stage | None = None) -> bool:
        """Tell whether this rule applies to ``reply`` received at ``stage``."""
        if not self._codes[0] <= reply.code <= self._codes[1]:
            return False
        if self.stages is not None and stage not in self.stages:
            return False
        if self._detail is not None:
            e = reply.enhanced
            # An enhanced code whose class contradicts the reply code is ignored:
            # the basic code is authoritative (RFC 3463 §2, RFC 5321 §4.2.1).
            if e is None or e.klass != reply.code // 100:
                return False
            klass, subject, lo, hi = self._detail
            if (e.klass, e.subject) != (klass, subject) or not lo <= e.detail <= hi:
                return False
        return self._regex is None or self._regex.search(reply.text[:4096]) is not None


_AUTH = frozenset({Stage.AUTH})
_STARTTLS = frozenset({Stage.STARTTLS})
_RCPT = frozenset({Stage.RCPT})
_ADDRESS = frozenset({Stage.MAIL, Stage.RCPT})
_GREETING = frozenset({Stage.CONNECT, Stage.GREETING})

# Regex alternatives (each without "|", so the docs table can list them).
_TLS = (r"\bTLS\b", r"STARTTLS", r"encrypt")
_RATE = (
    r"rate limit", r"unusual rate", r"unsolicited", r"unexpected volume", r"\[TSS\d\d\]",
    r"too many messages", r"too many e-?mails", r"throttl", r"sending rate", r"too quickly",
)  # fmt: skip
_UNAUTHENTICATED = (r"authentication information", r"authentication checks", r"unauthenticated")
_FULL = (r"mailbox (is )?full", r"over ?quota", r"quota exceeded", r"out of storage")
_UNKNOWN = (
    r"no such user", r"no such mailbox", r"no such recipient", r"user unknown", r"unknown user",
    r"unknown recipient", r"recipient not found", r"does not exist", r"invalid recipient",
)  # fmt: skip
_RELAY = (r"relay(ing)? (access )?denied", r"relay(ing)? not permitted", r"unable to relay")
_BLOCKED = (
    r"block ?list", r"black ?list", r"blocked using", r"spamhaus", r"\[BL\d+\]", r"\bDNSBL\b",
    r"not accepted from this IP", r"poor reputation",
)  # fmt: skip
_TOO_BIG = (r"too big", r"too large", r"size limit", r"size exceeds", r"maximum message size")
_BUSY = (r"mailbox (is )?busy", r"mailbox (is )?locked", r"recipient thread limit")

_R = ErrorRule
ERROR_TABLE: tuple[ErrorRule, ...] = (
    # 1. STARTTLS: a refusal is first of all a TLS failure (RFC 3207 §4); 421 goes to part 7.
    _R(code="45x", stages=_STARTTLS, error=StartTLSFailed,
       meaning="TLS not available for a temporary reason (RFC 3207 §4: 454)",
       example="454 4.7.0 TLS not available due to temporary reason"),
    _R(code="5xx", stages=_STARTTLS, error=StartTLSFailed,
       meaning="STARTTLS refused or not implemented (RFC 3207 §4)",
       example="502 5.5.1 Command not implemented"),
    # 2. Texts that name the cause whatever the enhanced code says.
    _R(code="4xx", enhanced="4.7.0", text=_TLS, error=EncryptionRequired,
       meaning="Gmail: TLS required for this recipient domain",
       example="421 4.7.0 TLS required for RCPT domain, closing connection."),
    _R(code="530", text=_TLS, error=EncryptionRequired,
       meaning="Must issue STARTTLS first (RFC 3207 §4)",
       example="530 5.7.0 Must issue a STARTTLS command first."),
    _R(code="4xx", enhanced="4.7.0", text=_RATE, error=RateLimited,
       meaning="Gmail unusual rate, Yahoo [TSS04] volume deferral",
       example="421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to "
       "unexpected volume or user complaints"),
    _R(code="4xx", enhanced="4.7.0", text=_UNAUTHENTICATED, error=AuthenticationPolicyRejected,
       meaning="Gmail: deferred, message fails SPF/DKIM authentication",
       example="421 4.7.0 This message does not have authentication information or fails "
       "to pass authentication checks."),
    _R(code="4xx", enhanced="4.2.1", text=(r"too quickly", r"at a rate", r"limit exceeded"),
       error=RateLimited,
       meaning="Gmail: the recipient is receiving mail too quickly",
       example="450 4.2.1 The user you are trying to contact is receiving mail too quickly."),
    _R(code="4xx", text=(r"gr[ae]y-?list",), error=Greylisted,
       meaning="Greylisting, said in words",
       example="450 4.2.0 <bob@example.com>: Recipient address rejected: Greylisted"),
    _R(code="4xx", text=(r"too many recipients",), error=TooManyRecipients,
       meaning="Too many recipients in this transaction",
       example="452 Too many recipients"),
    _R(code="5xx", text=(r"too many recipients",), error=TooManyRecipients,
       meaning="Too many recipients in this transaction",
       example="550 Too many recipients"),
    _R(code="4xx", text=(r"too many connections", r"too many concurrent", r"connections? limit"),
       error=TooManyConnections, meaning="Too many concurrent connections from you",
       example="421 4.7.0 Too many concurrent SMTP connections; please try again later."),
    _R(code="5xx", text=(r"SubmissionQuotaExceeded", r"submission quota"),
       error=QuotaExceeded, meaning="Microsoft: daily submission quota exceeded",
       example="554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException"),
    _R(code="535", enhanced="5.7.139", text=(r"credentials were incorrect",),
       error=BadCredentials, meaning="Microsoft: wrong user name or password",
       example="535 5.7.139 Authentication unsuccessful, the user credentials were incorrect."),
    _R(code="534", enhanced="5.7.9", text=(r"application-specific password",),
       error=BadCredentials, meaning="Gmail: an app password is required (2-Step Verification)",
       example="534 5.7.9 Application-specific password required."),
    _R(code="5xx", enhanced="5.7.27", text=(r"\bSPF\b",), error=SPFRejected,
       meaning="Gmail: SPF did not pass (RFC 7505 uses X.7.27 for a sender null MX)",
       example="550 5.7.27 The sender's SPF record does not pass."),
    _R(code="5xx", enhanced="5.7.30", text=(r"DKIM",), error=DKIMRejected,
       meaning="Gmail: DKIM did not pass (RFC 8689 uses X.7.30 for REQUIRETLS)",
       example="550 5.7.30 The message is not DKIM-signed or DKIM does not pass."),
    _R(code="5xx", enhanced="5.7.1", text=_RELAY, error=RelayDenied,
       meaning="Relay access denied",
       example="554 5.7.1 <bob@example.net>: Relay access denied"),
    _R(code="5xx", enhanced="5.7.1", text=(r"DMARC",), error=DMARCRejected,
       meaning="Rejected by the sender domain's DMARC policy",
       example="550 5.7.1 Unauthenticated email from example.com is not accepted due to "
       "domain's DMARC policy."),
    _R(code="5xx", enhanced="5.7.1", text=_BLOCKED, error=SenderBlocked,
       meaning="Your IP or domain is on a blocklist",
       example="554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using "
       "zen.spamhaus.org"),
    # 3. Codes and stages that decide by themselves.
    _R(code="454", stages=_AUTH, error=TemporaryAuthFailure,
       meaning="Temporary authentication failure (RFC 4954 §6), or too many logins",
       example="454 4.7.0 Temporary authentication failure"),
    _R(code="556", error=NullMX,
       meaning="The recipient domain accepts no mail: null MX (RFC 7505 §4.1)",
       example="556 5.1.10 Recipient address has null MX"),
    _R(code="5xx", stages=_GREETING, error=SenderBlocked,
       meaning="The server refuses sessions from you, usually a blocked IP (RFC 5321 §3.1)",
       example="554 mx.example.com ESMTP not accepting messages"),
    # 4. Exact enhanced codes (RFC 3463, RFC 5248 registry, provider-specific).
    _R(code="4xx", enhanced="4.7.28", error=RateLimited,
       meaning="Gmail: rate limited, sender requirements not met",
       example="421 4.7.28 Gmail has detected an unusual rate of mail from your IP."),
    _R(code="451", enhanced="4.7.1", error=Greylisted,
       meaning="Greylisting: deferral of an unknown sender",
       example="451 4.7.1 Please try again later"),
    _R(code="4xx", enhanced="4.7.12", error=TemporaryAuthFailure,
       meaning="A password transition is needed (RFC 4954 §6)",
       example="432 4.7.12 A password transition is needed"),
    _R(code="4xx", enhanced="4.2.2", error=MailboxFull,
       meaning="Mailbox full, for now (X.2.2)",
       example="452 4.2.2 The recipient's inbox is out of storage space."),
    _R(code="5xx", enhanced="5.2.2", error=MailboxFull,
       meaning="Mailbox full (X.2.2)", example="552 5.2.2 Mailbox full"),
    _R(code="4xx", enhanced="4.5.3", error=TooManyRecipients,
       meaning="Too many recipients (X.5.3)", example="452 4.5.3 Recipient limit reached"),
    _R(code="5xx", enhanced="5.5.3", error=TooManyRecipients,
       meaning="Too many recipients (X.5.3)", example="550 5.5.3 Recipient limit reached"),
    _R(code="4xx", enhanced="4.2.1", error=MailboxBusy,
       meaning="Mailbox temporarily disabled (X.2.1)",
       example="450 4.2.1 Mailbox temporarily unavailable"),
    _R(code="5xx", enhanced="5.1.1", error=UnknownMailbox,
       meaning="No such mailbox (X.1.1)",
       example="550 5.1.1 <bob@example.com>: Recipient address rejected: User unknown"),
    _R(code="5xx", enhanced="5.1.10", error=UnknownMailbox,
       meaning="Microsoft: recipient not found (RFC 7505 gives X.1.10 to null MX, see 556)",
       example="550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP "
       "address lookup"),
    _R(code="5xx", enhanced="5.1.2", error=UnknownMailbox,
       meaning="The recipient's domain does not exist (X.1.2)",
       example="550 5.1.2 Host unknown"),
    _R(code="5xx", enhanced="5.1.6", error=UnknownMailbox,
       meaning="Mailbox has moved, no forwarding address (X.1.6)",
       example="550 5.1.6 Recipient mailbox moved"),
    _R(code="5xx", enhanced="5.2.1", error=UnknownMailbox,
       meaning="Mailbox disabled, not accepting messages (X.2.1)",
       example="550 5.2.1 The email account that you tried to reach is disabled."),
    _R(code="5xx", enhanced="5.1.3", error=InvalidMailboxSyntax,
       meaning="Bad recipient address syntax (X.1.3)",
       example="553 5.1.3 Bad recipient address syntax"),
    _R(code="5xx", enhanced="5.1.7", error=InvalidMailboxSyntax,
       meaning="Bad sender address syntax (X.1.7)",
       example="553 5.1.7 The sender address is not a valid RFC 5321 address."),
    _R(code="5xx", enhanced="5.6.7", error=InvalidMailboxSyntax,
       meaning="Non-ASCII address without SMTPUTF8 (RFC 6531 §3.7.4.1)",
       example="553 5.6.7 Non-ASCII addresses not permitted for that recipient"),
    _R(code="5xx", enhanced="5.1.8", error=PolicyRejected,
       meaning="The sender's domain is unusable, e.g. not in DNS (X.1.8)",
       example="553 5.1.8 Domain of sender address does not resolve"),
    _R(code="5xx", enhanced="5.3.4", error=MessageRejectedTooLarge,
       meaning="Message too big for the system (X.3.4)",
       example="552 5.3.4 Message size exceeds fixed limit"),
    _R(code="5xx", enhanced="5.2.3", error=MessageRejectedTooLarge,
       meaning="Message length exceeds an administrative limit (X.2.3)",
       example="552 5.2.3 Message length exceeds administrative limit"),
    _R(code="5xx", enhanced="5.4.5", error=QuotaExceeded,
       meaning="Gmail: daily sending limit exceeded (RFC 3463: system congestion)",
       example="550 5.4.5 Daily user sending limit exceeded."),
    _R(code="5xx", enhanced="5.7.8", error=BadCredentials,
       meaning="Authentication credentials invalid (RFC 4954 §6)",
       example="535 5.7.8 Username and Password not accepted."),
    _R(code="535", enhanced="5.7.3", error=BadCredentials,
       meaning="Microsoft: authentication unsuccessful",
       example="535 5.7.3 Authentication unsuccessful"),
    _R(code="5xx", enhanced="5.7.139", error=AuthMethodDisabled,
       meaning="Microsoft: SMTP AUTH disabled for the tenant, or blocked by policy",
       example="535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is "
       "disabled for the Tenant."),
    _R(code="5xx", enhanced="5.7.9", error=AuthMechanismTooWeak,
       meaning="Authentication mechanism is too weak (RFC 4954 §6)",
       example="534 5.7.9 Authentication mechanism is too weak"),
    _R(code="5xx", enhanced="5.7.12", error=AuthenticationFailed,
       meaning="A password transition is needed (RFC 5248)",
       example="535 5.7.12 A password transition is needed"),
    _R(code="5xx", enhanced="5.7.13", error=AuthenticationFailed,
       meaning="User account disabled (RFC 5248)",
       example="535 5.7.13 User account disabled"),
    _R(code="5xx", enhanced="5.7.14", error=AuthenticationFailed,
       meaning="Trust relationship required; Gmail: sign in with a web browser first",
       example="534 5.7.14 Please log in via your web browser and then try again."),
    _R(code="5xx", enhanced="5.7.57", error=AuthenticationRequired,
       meaning="Microsoft: client not authenticated to send anonymous mail",
       example="530 5.7.57 Client was not authenticated to send anonymous mail"),
    _R(code="5xx", enhanced="5.7.11", error=EncryptionRequired,
       meaning="Encryption required for the authentication mechanism (RFC 4954 §6)",
       example="538 5.7.11 Encryption required for requested authentication mechanism"),
    _R(code="5xx", enhanced="5.7.10", error=EncryptionRequired,
       meaning="Encryption needed (RFC 5248)", example="523 5.7.10 Encryption Needed"),
    _R(code="5xx", enhanced="5.7.1", error=PolicyRejected,
       meaning="Delivery not authorised: spam filter or policy (X.7.1)",
       example="550 5.7.1 Message rejected as spam by Content Filtering."),
    _R(code="5xx", enhanced="5.7.20", error=DKIMRejected,
       meaning="No passing DKIM signature found (RFC 7372)",
       example="550 5.7.20 No passing DKIM signature found"),
    _R(code="5xx", enhanced="5.7.21", error=DKIMRejected,
       meaning="No acceptable DKIM signature found (RFC 7372)",
       example="550 5.7.21 No acceptable DKIM signature found"),
    _R(code="5xx", enhanced="5.7.22", error=DKIMRejected,
       meaning="No valid author-matched DKIM signature (RFC 7372)",
       example="550 5.7.22 No valid author-matched DKIM signature found"),
    _R(code="5xx", enhanced="5.7.23", error=SPFRejected,
       meaning="SPF validation failed (RFC 7372)", example="550 5.7.23 SPF validation failed"),
    _R(code="5xx", enhanced="5.7.24", error=SPFRejected,
       meaning="SPF validation error (RFC 7372)", example="550 5.7.24 SPF validation error"),
    _R(code="5xx", enhanced="5.7.25", error=ReverseDNSRejected,
       meaning="Reverse DNS validation failed (RFC 7372)",
       example="550 5.7.25 The IP address sending this message does not have a PTR record"),
    _R(code="5xx", enhanced="5.7.26", error=DMARCRejected,
       meaning="Multiple authentication checks failed (RFC 7372); Gmail: DMARC",
       example="550 5.7.26 This mail has been blocked because the sender is unauthenticated."),
    _R(code="5xx", enhanced="5.7.27", error=NullMX,
       meaning="The sender's domain has a null MX (RFC 7505 §4.2)",
       example="550 5.7.27 Sender address has null MX"),
    _R(code="5xx", enhanced="5.7.29", error=AuthenticationPolicyRejected,
       meaning="ARC validation failure (RFC 8617)",
       example="550 5.7.29 ARC validation failure"),
    _R(code="5xx", enhanced="5.7.30", error=RequireTLSUnsupported,
       meaning="REQUIRETLS support required (RFC 8689 §5)",
       example="550 5.7.30 REQUIRETLS support required"),
    _R(code="5xx", enhanced="5.7.32", error=DMARCRejected,
       meaning="Gmail: From: domain not aligned with SPF or DKIM",
       example="550 5.7.32 The From: header is not aligned with the authenticated domain."),
    _R(code="5xx", enhanced="5.7.40", error=DMARCRejected,
       meaning="Gmail: the sender domain has no DMARC record",
       example="550 5.7.40 The sender domain has no DMARC policy."),
    _R(code="4xx", enhanced="4.7.26", error=DMARCRejected,
       meaning="Deferred: multiple authentication checks failed",
       example="451 4.7.26 Unauthenticated mail is deferred."),
    _R(code="4xx", enhanced="4.7.27", error=SPFRejected,
       meaning="Gmail: deferred, SPF did not pass",
       example="451 4.7.27 The sender's SPF record does not pass."),
    _R(code="4xx", enhanced="4.7.30", error=DKIMRejected,
       meaning="Gmail: deferred, DKIM did not pass",
       example="451 4.7.30 The message is not DKIM-signed."),
    _R(code="4xx", enhanced="4.7.32", error=DMARCRejected,
       meaning="Gmail: deferred, From: domain not aligned",
       example="451 4.7.32 The From: header is not aligned."),
    _R(code="4xx", enhanced="4.7.40", error=DMARCRejected,
       meaning="Gmail: deferred, no DMARC record", example="451 4.7.40 No DMARC policy."),
    _R(code="5xx", enhanced="5.7.54", error=RelayDenied,
       meaning="Microsoft: unable to relay to a non-accepted domain",
       example="550 5.7.54 SMTP; Unable to relay recipient in non-accepted domain"),
    _R(code="5xx", enhanced="5.7.64", error=RelayDenied,
       meaning="Microsoft: TenantAttribution; relay access denied",
       example="550 5.7.64 TenantAttribution; Relay Access Denied"),
    # 5. Enhanced ranges (provider-specific blocks of codes).
    _R(code="4xx", enhanced="4.7.5xx", error=RateLimited,
       meaning="Microsoft: access denied for now, sender rate limited",
       example="451 4.7.500 Server busy. Please try again later."),
    _R(code="5xx", enhanced="5.7.6xx", error=SenderBlocked,
       meaning="Microsoft: banned sending IP (5.7.606-5.7.649)",
       example="550 5.7.606 Access denied, banned sending IP [192.0.2.1]."),
    _R(code="5xx", enhanced="5.7.7xx", error=SenderBlocked,
       meaning="Microsoft: traffic not accepted from this IP or tenant (5.7.700-5.7.750)",
       example="550 5.7.708 Access denied, traffic not accepted from this IP."),
    # 6. Texts used only when no structured code said more.
    _R(code="4xx", text=_RATE, error=RateLimited, meaning="Throttled, said in words",
       example="454 Throttling failure: Maximum sending rate exceeded."),
    _R(code="4xx", text=_BUSY, error=MailboxBusy, meaning="Mailbox busy or locked",
       example="450 Mailbox is locked, try again later"),
    _R(code="4xx", text=_FULL, error=MailboxFull, meaning="Mailbox full, for now",
       example="452 Mailbox full"),
    _R(code="5xx", text=_FULL, error=MailboxFull, meaning="Mailbox full",
       example="552 Mailbox quota exceeded"),
    _R(code="5xx", text=_UNKNOWN, error=UnknownMailbox, meaning="No such mailbox",
       example="550 No such user here"),
    _R(code="5xx", text=_RELAY, error=RelayDenied, meaning="Relay access denied",
       example="550 Relaying denied"),
    _R(code="5xx", text=_BLOCKED, error=SenderBlocked, meaning="IP or domain blocklisted",
       example="554 Your IP is on our blocklist"),
    _R(code="5xx", text=_TOO_BIG, error=MessageRejectedTooLarge, meaning="Message too big",
       example="552 Message size exceeds maximum permitted"),
    _R(code="5xx", text=(r"DMARC",), error=DMARCRejected, meaning="DMARC failure",
       example="550 Rejected due to DMARC policy"),
    _R(code="5xx", text=(r"\bSPF\b",), error=SPFRejected, meaning="SPF failure",
       example="550 SPF check failed"),
    _R(code="5xx", text=(r"DKIM",), error=DKIMRejected, meaning="DKIM failure",
       example="550 DKIM signature verification failed"),
    # 7. Basic reply codes (RFC 5321 §4.2.2), some only at one stage.
    _R(code="421", error=ServiceUnavailable,
       meaning="Service not available, closing the channel (RFC 5321 §3.8)",
       example="421 4.3.0 Temporary System Problem. Try again later."),
    _R(code="432", error=TooManyConnections,
       meaning="Microsoft: concurrent connection or thread limit exceeded",
       example="432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded"),
    _R(code="530", error=AuthenticationRequired,
       meaning="Authentication required (RFC 4954 §6)",
       example="530 5.7.0 Authentication required"),
    _R(code="534", error=AuthMechanismTooWeak,
       meaning="Authentication mechanism too weak (RFC 4954 §6)",
       example="534 Authentication mechanism is too weak"),
    _R(code="535", error=BadCredentials,
       meaning="Authentication credentials invalid (RFC 4954 §6)",
       example="535 Error: authentication failed"),
    _R(code="538", error=EncryptionRequired,
       meaning="Encryption required for the mechanism (RFC 4954 §6)",
       example="538 Encryption required for requested authentication mechanism"),
    _R(code="4xx", stages=_AUTH, error=TemporaryAuthFailure,
       meaning="AUTH failed for now", example="451 Authentication backend unavailable"),
    _R(code="5xx", stages=_AUTH, error=AuthenticationFailed,
       meaning="AUTH refused, no more specific reason",
       example="501 5.5.2 Cannot decode response"),
    _R(code="452", stages=_RCPT, error=TooManyRecipients,
       meaning="Too many recipients (RFC 5321 §4.5.3.1.10)",
       example="452 Requested action not taken"),
    _R(code="552", stages=_RCPT, error=TooManyRecipients,
       meaning="Too many recipients, legacy code (RFC 5321 §4.5.3.1.10)",
       example="552 Requested action not taken"),
    _R(code="451", error=TemporaryServerError,
       meaning="Local error in processing (RFC 5321 §4.2.2)",
       example="451 4.3.0 Mail server temporarily rejected message."),
    _R(code="452", error=TemporaryServerError,
       meaning="Insufficient system storage (RFC 5321 §4.2.2)",
       example="452 Insufficient system storage"),
    _R(code="552", error=MessageRejectedTooLarge,
       meaning="Exceeded storage allocation: message too big (RFC 1870 §6)",
       example="552 Requested mail action aborted: exceeded storage allocation"),
    _R(code="553", error=InvalidMailboxSyntax,
       meaning="Mailbox name not allowed (RFC 5321 §4.2.2)",
       example="553 Requested action not taken: mailbox name not allowed"),
    _R(code="501", stages=_ADDRESS, error=InvalidMailboxSyntax,
       meaning="Syntax error in the address argument",
       example="501 Syntax error in parameters or arguments"),
    _R(code="50x", error=CommandRejected,
       meaning="Syntax error, not implemented, or bad sequence (RFC 5321 §4.2.2)",
       example="503 5.5.1 Error: nested MAIL command"),
    _R(code="555", error=CommandRejected,
       meaning="MAIL/RCPT parameters not recognised (RFC 5321 §4.2.2)",
       example="555 5.5.4 Unsupported option: SMTPUTF8"),
    # 8. Enhanced subjects (RFC 3463 §3: the middle digit).
    _R(code="4xx", enhanced="4.2.*", error=MailboxBusy,
       meaning="Mailbox status, temporary (X.2.x)", example="450 4.2.0 Mailbox unavailable"),
    _R(code="4xx", enhanced="4.3.*", error=TemporaryServerError,
       meaning="Mail system status, temporary (X.3.x)", example="450 4.3.1 System full"),
    _R(code="4xx", enhanced="4.4.*", error=TemporaryServerError,
       meaning="Network or routing problem (X.4.x)", example="450 4.4.1 No answer from host"),
    _R(code="4xx", enhanced="4.5.*", error=CommandRejected,
       meaning="Protocol problem, temporary (X.5.x)",
       example="454 4.5.0 SMTP protocol violation"),
    _R(code="5xx", enhanced="5.5.*", error=CommandRejected,
       meaning="Protocol problem (X.5.x)", example="550 5.5.0 Invalid command"),
    _R(code="4xx", enhanced="4.7.*", error=PolicyRejected,
       meaning="Deferred for a security or policy reason (X.7.x)",
       example="450 4.7.1 Client host rejected: cannot find your hostname"),
    _R(code="5xx", enhanced="5.7.*", error=PolicyRejected,
       meaning="Refused for a security or policy reason (X.7.x)",
       example="550 5.7.0 Message refused by local policy"),
    # 9. Whatever is left: the reply class decides.
    _R(code="4xx", error=TransientError, meaning="Any other temporary failure",
       example="450 Requested mail action not taken"),
    _R(code="5xx", error=PermanentError, meaning="Any other permanent failure",
       example="554 Transaction failed"),
)  # fmt: skip
"""The reply table, tried top to bottom: the first matching rule wins.

Rules are ordered from specific to general: STARTTLS answers; texts that
name the cause; codes and stages that decide alone; exact enhanced codes;
enhanced ranges; texts used only without a structured code; basic reply
codes; enhanced subjects; and the 4xx/5xx fallbacks, which match every reply
the earlier rules leave, so :func:`classify` always finds a rule.
"""
del _R


def match_rule(reply: Reply, *, stage: Stage | None = None) -> ErrorRule:
    """Return the first rule of :data:`ERROR_TABLE` that matches ``reply``.

    Args:
        reply: a 4xx or 5xx reply.
        stage: where the reply arrived; rules bound to a stage never match without it.

    Raises:
        ValueError: ``reply`` is not a 4xx or 5xx reply.
    """
    if not 400 <= reply.code <= 599:
        raise ValueError(f"reply must be a 4xx or 5xx reply, got {reply.code}")
    for rule in ERROR_TABLE:
        if rule.matches(reply, stage):
            return rule
    raise AssertionError("unreachable: the 4xx and 5xx fallback rules match every reply")


def classify(reply: Reply, *, stage: Stage | None = None, command: str | None = None) -> ReplyError:
    """Build the most specific :class:`ReplyError` for a failing reply.

    Example:
        >>> from mailtransfer.protocol import Reply, EnhancedStatus
        >>> err = classify(Reply(550, ("5.1.1 no such user",), EnhancedStatus(5, 1, 1)),
        ...                stage=Stage.RCPT, command="RCPT TO:<x@example.com>")
        >>> type(err).__name__, err.transient
        ('UnknownMailbox', False)
        >>> str(err)
        'RCPT TO:<x@example.com> refused: 550 5.1.1 no such user'

    Args:
        reply: the 4xx or 5xx reply.
        stage: where the reply arrived; refines the choice (see :data:`ERROR_TABLE`).
        command: the command that got the reply, for the message (AUTH payloads are dropped).

    Returns:
        The error, not raised; ``transient`` is True exactly for a 4xx reply.

    Raises:
        ValueError: ``reply`` is a 1xx, 2xx or 3xx reply (a caller bug).
    """
    rule = match_rule(reply, stage=stage)
    return rule.error(reply=reply, command=command, stage=stage)


# ---------------------------------------------------------------- docs helpers


def render_error_table() -> str:
    """Render :data:`ERROR_TABLE` as the Markdown table in ``docs/errors.md``."""
    rows = [
        "| Reply | Enhanced | Also requires | Exception | Meaning | Retried automatically? |",
        "|---|---|---|---|---|---|",
    ]
    for rule in ERROR_TABLE:
        needs = []
        if rule.stages is not None:
            needs.append("stage " + ", ".join(f"`{s.value}`" for s in sorted(rule.stages)))
        if rule.text:
            needs.append("text has " + " or ".join(f"`{t}`" for t in rule.text))
        retried = "yes, with backoff" if rule.transient and rule.error.auto_retry else "no"
        rows.append(
            f"| `{rule.code}` | {f'`{rule.enhanced}`' if rule.enhanced else 'any'} "
            f"| {'; '.join(needs) or '-'} | `{rule.error.__name__}` | {rule.meaning} "
            f"| {retried} |"
        )
    return "\n".join(rows) + "\n"


def render_error_tree() -> str:
    """Draw the exception tree, as in this module's docstring and ``docs/errors.md``."""
    ours = {"mailtransfer.errors", MailTransferError.__module__}

    def parent(cls: type[MailTransferError]) -> type[MailTransferError]:
        return next(b for b in cls.__bases__ if issubclass(b, MailTransferError))

    def label(cls: type[MailTransferError]) -> str:
        extra = [b for b in cls.__bases__ if b not in (parent(cls), Exception)]
        mixins = ", ".join(b.__name__ for b in extra if not issubclass(b, MailTransferError))
        also = ", ".join(b.__name__ for b in extra if issubclass(b, MailTransferError))
        return (
            cls.__name__ + (f" ({mixins})" if mixins else "") + (f" (also {also})" if also else "")
        )

    def walk(cls: type[MailTransferError], prefix: str) -> Iterator[str]:
        kids = [c for c in cls.__subclasses__() if c.__module__ in ours and parent(c) is cls]
        for i, kid in enumerate(kids):
            last = i == len(kids) - 1
            yield f"{prefix}{'└── ' if last else '├── '}{label(kid)}"
            yield from walk(kid, prefix + ("    " if last else "│   "))

    return "\n".join([MailTransferError.__name__, *walk(MailTransferError, "")]) + "\n"
