"""Every exception mailtransfer raises, and the table that turns server replies into them.

Catch the most specific class you can act on. Every class derives from
:class:`MailTransferError`; a few also derive from a builtin, so existing
``except ValueError`` / ``ConnectionError`` / ``TimeoutError`` clauses keep
working. ``StartTLSFailed`` is both a ``TLSError`` and a ``ReplyError``.

```
MailTransferError
├── UsageError (ValueError)
│   ├── InvalidArgument
│   │   ├── InvalidAddress
│   │   └── HeaderInjection
│   ├── ExtensionNotSupported
│   │   └── SMTPUTF8Required
│   ├── MessageTooLarge
│   ├── InsecureAuthRefused
│   └── NoSuitableMechanism
├── ProtocolError
│   ├── LocalProtocolError
│   └── RemoteProtocolError
├── ConnectError (ConnectionError)
│   ├── ServerDisconnected
│   └── NoMailExchanger
├── Timeout (TimeoutError)
│   ├── ConnectTimeout
│   ├── GreetingTimeout
│   ├── ReadTimeout
│   ├── WriteTimeout
│   └── PoolTimeout
├── TLSError
│   ├── TLSRequired
│   ├── CertificateVerifyFailed
│   │   ├── HostnameMismatch
│   │   └── DANEMismatch
│   ├── TLSHandshakeFailed
│   ├── STARTTLSInjection
│   ├── TLSPortMismatch
│   ├── MTASTSViolation
│   └── StartTLSFailed (also ReplyError)
├── DNSError
│   ├── NXDomain
│   └── DNSTemporaryError
├── ReplyError
│   ├── TransientError
│   │   ├── ServiceUnavailable
│   │   ├── Greylisted
│   │   ├── RateLimited
│   │   ├── TooManyConnections
│   │   ├── MailboxBusy
│   │   ├── TemporaryServerError
│   │   └── TemporaryAuthFailure
│   ├── PermanentError
│   │   ├── AuthenticationFailed
│   │   │   ├── BadCredentials
│   │   │   ├── AuthMethodDisabled
│   │   │   └── AuthMechanismTooWeak
│   │   ├── AuthenticationRequired
│   │   ├── UnknownMailbox
│   │   ├── InvalidMailboxSyntax
│   │   ├── MessageRejectedTooLarge
│   │   ├── QuotaExceeded
│   │   ├── RequireTLSUnsupported
│   │   └── NullMX
│   ├── TooManyRecipients
│   ├── MailboxFull
│   ├── EncryptionRequired
│   ├── CommandRejected
│   └── PolicyRejected
│       ├── RelayDenied
│       ├── SenderBlocked
│       └── AuthenticationPolicyRejected
│           ├── DKIMRejected
│           ├── SPFRejected
│           ├── DMARCRejected
│           └── ReverseDNSRejected
├── DeliveryUnknown
├── RecipientsRefused
└── PartialDelivery

Strategy: the classes under ``ReplyError`` are chosen by :func:`classify`,
which walks :data:`ERROR_TABLE` top to bottom and takes the first
:class:`ErrorRule` that matches the reply. The basic reply code alone decides
``transient`` (RFC 5321 §4.2.1); the RFC 3463 enhanced code and the text only
refine the class. Classes directly under ``ReplyError`` occur as both 4xx and
5xx replies, so their ``transient`` flag follows the reply.
"""

# The `import X as X` lines are the explicit re-export form that mypy's
# no_implicit_reexport and pyright understand; ruff exempts only __init__.py.

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .protocol._errors import ExtensionNotSupported as ExtensionNotSupported
from .protocol._errors import InvalidAddress as InvalidAddress
from .protocol._errors import InvalidArgument as InvalidArgument
from .protocol._errors import LocalProtocolError as LocalProtocolError
from .protocol._errors import MailTransferError as MailTransferError
from .protocol._errors import MessageTooLarge as MessageTooLarge
from .protocol._errors import ProtocolError as ProtocolError
from .protocol._errors import RemoteProtocolError as RemoteProtocolError
from .protocol._errors import SMTPUTF8Required as SMTPUTF8Required
from .protocol._errors import Stage as Stage
from .protocol._errors import UsageError as UsageError
from .protocol._reply import EnhancedStatus, Reply

__all__ = [
    "AuthMechanismTooWeak",
    "AuthMethodDisabled",
    "AuthenticationFailed",
    "AuthenticationPolicyRejected",
    "AuthenticationRequired",
    "BadCredentials",
    "CertificateVerifyFailed",
    "CommandRejected",
    "ConnectError",
    "ConnectTimeout",
    "DANEMismatch",
    "DKIMRejected",
    "DMARCRejected",
    "DNSError",
    "DNSTemporaryError",
    "DeliveryUnknown",
    "ERROR_TABLE",
    "EncryptionRequired",
    "ErrorRule",
    "ExtensionNotSupported",
    "GreetingTimeout",
    "Greylisted",
    "HeaderInjection",
    "HostnameMismatch",
    "InsecureAuthRefused",
    "InvalidAddress",
    "InvalidArgument",
    "InvalidMailboxSyntax",
    "LocalProtocolError",
    "MTASTSViolation",
    "MailTransferError",
    "MailboxBusy",
    "MailboxFull",
    "MessageRejectedTooLarge",
    "MessageTooLarge",
    "NXDomain",
    "NoMailExchanger",
    "NoSuitableMechanism",
    "NullMX",
    "PartialDelivery",
    "PermanentError",
    "PolicyRejected",
    "PoolTimeout",
    "ProtocolError",
    "QuotaExceeded",
    "RateLimited",
    "ReadTimeout",
    "RecipientsRefused",
    "RelayDenied",
    "RemoteProtocolError",
    "ReplyError",
    "RequireTLSUnsupported",
    "ReverseDNSRejected",
    "SMTPUTF8Required",
    "SPFRejected",
    "STARTTLSInjection",
    "SenderBlocked",
    "ServerDisconnected",
    "ServiceUnavailable",
    "Stage",
    "StartTLSFailed",
    "TLSError",
    "TLSHandshakeFailed",
    "TLSPortMismatch",
    "TLSRequired",
    "TemporaryAuthFailure",
    "TemporaryServerError",
    "Timeout",
    "TooManyConnections",
    "TooManyRecipients",
    "TransientError",
    "UnknownMailbox",
    "UsageError",
    "WriteTimeout",
    "classify",
    "match_rule",
    "render_error_table",
]

# ---------------------------------------------------------------- usage errors


class HeaderInjection(InvalidArgument):
    """A header name or value would inject extra headers (CR, LF or NUL in it).

    Raised before anything is sent. Remove the line breaks from the value;
    mailtransfer never strips them silently, because doing so hides the attack.
    """


class InsecureAuthRefused(UsageError):
    """Credentials would be sent over a connection without TLS.

    Configure a TLS policy (``ImplicitTLS`` or ``StartTLS``), or opt in to
    cleartext authentication explicitly if the network path is trusted.
    """


class NoSuitableMechanism(UsageError):
    """None of the SASL mechanisms the server offers can use your credentials.

    Compare ``offered`` with ``usable``; pass credentials that fit an offered
    mechanism (for example an OAuth2 token for ``XOAUTH2``).

    Args:
        message: the error message.
        offered: the mechanisms the server advertised, sorted.
        usable: the mechanisms the credentials could use, strongest first.
    """

    def __init__(self, message: str, *, offered: tuple[str, ...], usable: tuple[str, ...]) -> None:
        super().__init__(message, stage=Stage.AUTH)
        self.offered = offered
        self.usable = usable


# ----------------------------------------------------------- connection errors


class ConnectError(MailTransferError, ConnectionError):
    """The connection to the server could not be made, or was lost.

    Usually transient: retrying later, or the next MX host, may work.
    """

    transient = True


class ServerDisconnected(ConnectError):
    """The server closed the connection before the current exchange finished.

    Safe to retry on a new connection while the end-of-data mark has not been
    sent; after that mailtransfer raises :class:`DeliveryUnknown` instead.
    """


class NoMailExchanger(ConnectError):
    """The recipient domain accepts no mail: a null MX (RFC 7505) or no such domain.

    Retrying does not help; correct or drop the recipient address.
    """

    transient = False


# -------------------------------------------------------------------- timeouts


class Timeout(MailTransferError, TimeoutError):
    """A network operation did not finish within its deadline (see ``Timeouts``).

    Transient: retried automatically unless the message may already have been
    accepted (then :class:`DeliveryUnknown` is raised instead).
    """

    transient = True


class ConnectTimeout(Timeout):
    """The TCP connection (or the implicit-TLS handshake) took too long.

    The host may be down or filtered; check the port and firewall.
    """


class GreetingTimeout(Timeout):
    """The server accepted the connection but sent no ``220`` greeting in time.

    Often a TLS port spoken to in cleartext, or a tarpitting server.
    """


class ReadTimeout(Timeout):
    """A reply did not arrive within the command's deadline."""


class WriteTimeout(Timeout):
    """Sending a command or the message body stalled beyond its deadline."""


class PoolTimeout(Timeout):
    """No pooled connection became free within ``PoolLimits.acquire_timeout``.

    Nothing was sent. Raise the pool size, lower the concurrency, or wait longer.
    """


# ------------------------------------------------------------------------- TLS


class TLSError(MailTransferError):
    """TLS could not be set up as the TLS policy demands. Nothing was sent in clear."""


class TLSRequired(TLSError):
    """The TLS policy requires TLS, but the server does not offer ``STARTTLS``.

    Could be a misconfigured server or an active downgrade attack (RFC 3207 §6).
    Do not relax the policy unless you trust the network path.
    """


class CertificateVerifyFailed(TLSError):
    """The server's certificate did not verify against the trusted CAs.

    Fix the server's chain, or pass a context trusting its CA; do not disable
    verification.
    """


class HostnameMismatch(CertificateVerifyFailed):
    """The certificate is valid but names a different host than the one dialled.

    Connect using a name the certificate covers (often the MX host name).
    """


class TLSHandshakeFailed(TLSError):
    """The TLS handshake failed: no common protocol version or cipher, or a reset mid-handshake."""


class STARTTLSInjection(TLSError):
    """The server sent bytes after its ``220`` reply to ``STARTTLS``.

    Those bytes would be read as if they came through TLS: a sign of a
    response-injection attack (RFC 3207 §4.2; CVE-2011-0411 is the server-side
    twin). The connection is closed; investigate the network path.
    """


class TLSPortMismatch(TLSError):
    """Implicit TLS was used on a STARTTLS port, or STARTTLS on an implicit-TLS port.

    The message says which TLS policy fits the port (RFC 8314 §3: 465 is
    implicit TLS, 587 and 25 use STARTTLS).
    """

    @classmethod
    def plaintext_server(cls, port: int) -> TLSPortMismatch:
        """Build the error for a cleartext SMTP greeting seen where implicit TLS was expected.

        Args:
            port: the port that was dialled.
        """
        return cls(
            f"port {port} answered in cleartext, so it expects STARTTLS: "
            f"use tls=StartTLS() for port {port}, or ImplicitTLS() with port 465",
            stage=Stage.TLS_HANDSHAKE,
        )

    @classmethod
    def tls_server(cls, port: int) -> TLSPortMismatch:
        """Build the error for a TLS handshake seen where a cleartext greeting was expected.

        Args:
            port: the port that was dialled.
        """
        return cls(
            f"port {port} started TLS immediately, so it expects implicit TLS: "
            f"use tls=ImplicitTLS() for port {port}, or StartTLS() with port 587",
            stage=Stage.GREETING,
        )


class DANEMismatch(CertificateVerifyFailed):
    """No TLSA record of the host matches its certificate chain (DANE, RFC 7672 §3).

    The host is not used for this message: its certificate is not the one its
    domain published in DNSSEC-signed TLSA records. Mail goes to another MX host
    whose certificate matches, or stays undelivered.
    """


class MTASTSViolation(TLSError):
    """An MX host breaks the recipient domain's enforced MTA-STS policy (RFC 8461 §4).

    Either the host's name is not listed in the policy's ``mx`` patterns or it
    does not offer STARTTLS with a valid certificate; the host is not used.
    """


# ------------------------------------------------------------------------- DNS


class DNSError(MailTransferError):
    """A DNS lookup failed (see :mod:`mailtransfer.dns`)."""


class NXDomain(DNSError):
    """The name does not exist (NXDOMAIN): permanent; check the spelling of the domain."""


class DNSTemporaryError(DNSError):
    """The DNS answer is unknown for now: a timeout, SERVFAIL or a refused query.

    Transient: try again later; the domain may be fine.
    """

    transient = True


# ---------------------------------------------------------------- reply errors

_MAX_QUOTED_TEXT = 400
"""Server text is quoted verbatim in messages up to this many characters."""

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _quote(text: str, limit: int = _MAX_QUOTED_TEXT) -> str:
    # Verbatim, but bounded and with control characters escaped so that a
    # hostile server cannot rewrite a terminal or forge log lines.
    if len(text) > limit:
        text = f"{text[:limit]}... ({len(text) - limit} more characters)"
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _status(reply: Reply, limit: int = _MAX_QUOTED_TEXT) -> str:
    # "550 5.1.1 text": multi-line text joined with spaces, the repeated enhanced code dropped.
    status = f"{reply.code} {reply.enhanced}" if reply.enhanced else str(reply.code)
    text = _quote(" ".join(reply.message.splitlines()), limit)
    return f"{status} {text}".rstrip()


def _redact(command: str) -> str:
    # An AUTH line may carry an initial response (RFC 4954 §4): keep the mechanism only.
    words = command.split()
    if words and words[0].upper() == "AUTH":
        return " ".join(words[:2])
    return command


def _describe(reply: Reply, command: str | None, stage: Stage | None) -> str:
    what = _quote(_redact(command), 200) if command else (stage.value if stage else "server")
    verb = "temporarily refused" if reply.is_transient else "refused"
    return f"{what} {verb}: {_status(reply)}"


class ReplyError(MailTransferError):
    """The server answered a command with a 4xx or 5xx reply.

    ``transient`` is True exactly for a 4xx reply. The reply is kept whole in
    ``reply`` (code, enhanced code and text as sent); the message quotes it.

    Args:
        message: the error message; built from the reply when omitted.
        reply: the failing reply (required).
        command: the command that got the reply, never with a credential.
        stage: where in the session it happened.
        transcript: the redacted session transcript, when known.

    Raises:
        ValueError: ``reply`` is not a 4xx/5xx reply, or not the class this type needs.
    """

    reply: Reply
    auto_retry: ClassVar[bool] = True
    """Whether a transient reply of this kind may be retried without the caller's help."""
    _reply_class: ClassVar[int | None] = None

    def __init__(
        self,
        message: str | None = None,
        *,
        reply: Reply,
        command: str | None = None,
        stage: Stage | None = None,
        transcript: tuple[str, ...] = (),
    ) -> None:
        klass = reply.code // 100
        if klass not in (4, 5) or self._reply_class not in (None, klass):
            wanted = f"{self._reply_class}xx" if self._reply_class else "4xx or 5xx"
            raise ValueError(f"{type(self).__name__} needs a {wanted} reply, got {reply.code}")
        super().__init__(
            _describe(reply, command, stage) if message is None else message,
            reply=reply,
            command=command,
            stage=stage,
            transcript=transcript,
        )
        self.transient = reply.is_transient

    @property
    def code(self) -> int:
        """The three-digit reply code."""
        return self.reply.code

    @property
    def enhanced(self) -> EnhancedStatus | None:
        """The RFC 3463 enhanced status code, when the server sent one."""
        return self.reply.enhanced

    @property
    def closes_connection(self) -> bool:
        """True for 421: the server is closing the channel (RFC 5321 §3.8)."""
        return self.reply.code == 421

    @property
    def retryable(self) -> bool:
        """True when retry logic may try again by itself: transient and ``auto_retry``."""
        return self.transient and self.auto_retry


class TransientError(ReplyError):
    """A 4xx reply without a more specific class: try again later.

    Retried automatically with backoff. Subclasses are only ever 4xx.
    """

    _reply_class = 4


class PermanentError(ReplyError):
    """A 5xx reply without a more specific class: repeating the command fails again.

    Never retried automatically. Read the quoted server text. Subclasses are only ever 5xx.
    """

    _reply_class = 5


class StartTLSFailed(TLSError, ReplyError):
    """The server answered ``STARTTLS`` with something other than ``220`` (RFC 3207 §4).

    mailtransfer never falls back to cleartext when the policy requires TLS.
    A 454 is transient (try later); a 5xx means the server cannot do TLS.
    """


class ServiceUnavailable(TransientError):
    """421: the server is shutting the connection, e.g. busy or restarting (RFC 5321 §3.8).

    Retried on a new connection with backoff.
    """


class Greylisted(TransientError):
    """The server defers mail from unknown senders for a while (greylisting).

    Retried automatically; the retry must come later (minutes) and ideally from
    the same IP address (RFC 5321 §4.5.4.1 queued retries).
    """


class RateLimited(TransientError):
    """The server throttles you: too many messages, or a poor sending reputation.

    Retried with longer backoff; slow down, and check the sender guidelines of
    the receiving provider if it persists.
    """


class TooManyConnections(TransientError):
    """The server limits concurrent connections from you (e.g. Outlook 432 4.3.2).

    Lower the pool's per-host connection limit; retried with backoff.
    """


class MailboxBusy(TransientError):
    """The recipient's mailbox is temporarily unavailable (locked, busy, disabled for now).

    Retried later for that recipient.
    """


class TemporaryServerError(TransientError):
    """The server had a local or network problem (RFC 3463 X.3.x / X.4.x). Retried with backoff."""


class TemporaryAuthFailure(TransientError):
    """Authentication failed for a temporary reason (RFC 4954 §6: 454 4.7.0).

    Do not ask the user for a new password; retry later and reuse sessions
    (providers also answer this way to too many logins).
    """


class AuthenticationFailed(PermanentError):
    """The server refused to authenticate you.

    Subclasses say why; this class itself covers the other 5xx replies to ``AUTH``.
    Never retried automatically: repeated failures can lock the account.
    """


class BadCredentials(AuthenticationFailed):
    """The user name or password (or token) was not accepted (RFC 4954 §6: 535 5.7.8).

    Check the credentials; many providers need an app password or OAuth2
    instead of the account password.
    """


class AuthMethodDisabled(AuthenticationFailed):
    """Password authentication is switched off for the account or tenant.

    Microsoft 365 says 5.7.139: enable SMTP AUTH for the mailbox or use OAuth2 (XOAUTH2).
    """


class AuthMechanismTooWeak(AuthenticationFailed):
    """The SASL mechanism is weaker than the server's policy allows (RFC 4954 §6: 534 5.7.9).

    Offer a stronger mechanism (e.g. SCRAM-SHA-256) or use TLS.
    """


class AuthenticationRequired(PermanentError):
    """The server only accepts mail from authenticated clients (530 5.7.0, Microsoft 5.7.57).

    Configure credentials for this server.
    """


class UnknownMailbox(PermanentError):
    """The recipient address does not exist or is disabled (X.1.1, X.1.10, X.2.1).

    Do not retry; remove the address from your list.
    """


class InvalidMailboxSyntax(PermanentError):
    """The server found the address malformed or not allowed (553, X.1.3, X.1.7, X.6.7).

    Fix the address; a non-ASCII address needs a server with SMTPUTF8.
    """


class MessageRejectedTooLarge(PermanentError):
    """The server refused the message for its size (552, X.3.4, X.2.3; RFC 1870).

    Shrink the message; retrying the same bytes fails again.
    """


class QuotaExceeded(PermanentError):
    """Your account's sending quota is used up (e.g. Gmail's rolling 24-hour limit, 5.4.5).

    Not retried automatically; send again after the provider's window resets.
    """


class RequireTLSUnsupported(PermanentError):
    """The message asked for REQUIRETLS and a hop cannot honour it (RFC 8689: 5.7.30).

    Send without ``require_tls``, or to a recipient whose servers support it.
    """


class NullMX(PermanentError):
    """The domain declares that it accepts no mail: null MX (RFC 7505: 556 5.1.10, 550 5.7.27).

    Do not retry; the address (or your sender domain) cannot receive mail.
    """


class TooManyRecipients(ReplyError):
    """The transaction has more recipients than the server takes (RFC 5321 §4.5.3.1.10).

    The accepted recipients stay valid: send the rest in a new transaction,
    whether the reply was 4xx or 5xx.
    """


class MailboxFull(ReplyError):
    """The recipient's mailbox is over quota (X.2.2).

    A 4xx is retried later; a 5xx means the recipient must free space first.
    """


class EncryptionRequired(ReplyError):
    """The server wants TLS first (530 "must issue STARTTLS", 538 5.7.11, Gmail 421 4.7.0).

    Use a TLS policy (``StartTLS()`` or ``ImplicitTLS()``). Never retried as is,
    even when the reply is 4xx.
    """

    auto_retry = False


class CommandRejected(ReplyError):
    """The server did not accept a command: syntax, unsupported, or bad sequence (50x, X.5.x).

    Usually a server quirk or a client bug; report it with the transcript.
    """


class PolicyRejected(ReplyError):
    """The server's policy refuses the mail (X.7.x): spam filter, content rule, authorisation.

    Subclasses name common causes. Read the quoted text: it usually links to the
    provider's explanation. A 4xx is a policy deferral and is retried.
    """


class RelayDenied(PolicyRejected):
    """The server will not relay to that domain for you (RFC 5321 §3.6.2).

    Authenticate, send through your own provider's submission server, or send
    directly to the recipient domain's MX.
    """


class SenderBlocked(PolicyRejected):
    """Your IP address or domain is blocklisted or has a bad reputation at this server.

    Check public blocklists and the provider's sender portal; not retried.
    """


class AuthenticationPolicyRejected(PolicyRejected):
    """The message failed sender authentication checks: SPF, DKIM or DMARC (RFC 7372).

    Fix the DNS records (SPF, DKIM keys, DMARC) or the DKIM signer; subclasses say which.
    """


class DKIMRejected(AuthenticationPolicyRejected):
    """No acceptable or aligned DKIM signature (X.7.20-X.7.22; Gmail X.7.30). Sign the message."""


class SPFRejected(AuthenticationPolicyRejected):
    """SPF failed or errored for the sending IP (X.7.23, X.7.24; Gmail X.7.27). Fix your SPF."""


class DMARCRejected(AuthenticationPolicyRejected):
    """DMARC failed, or several checks failed together (X.7.26; Gmail X.7.32, X.7.40).

    Align the From: domain with a passing SPF or DKIM domain and publish a DMARC record.
    """


class ReverseDNSRejected(AuthenticationPolicyRejected):
    """The sending IP has no matching reverse DNS name (X.7.25). Ask your IP provider for a PTR."""


# ----------------------------------------------------------- the other outcomes


class DeliveryUnknown(MailTransferError):
    """The connection failed after the end-of-data mark was sent, before the server replied.

    The server may already have queued the message. Retrying automatically
    could deliver it twice, so mailtransfer never does (``transient`` is
    False); decide yourself, for example by checking with the recipient, and
    use ``message_id`` to correlate.

    Args:
        message: the error message.
        message_id: the Message-ID of the message whose fate is unknown.
        command: the last command sent.
        stage: where the session was (normally ``Stage.END_OF_DATA``).
        transcript: the redacted session transcript, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        message_id: str | None = None,
        command: str | None = None,
        stage: Stage | None = Stage.END_OF_DATA,
        transcript: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message, command=command, stage=stage, transcript=transcript)
        self.message_id = message_id


class RecipientsRefused(MailTransferError):
    """Every recipient was refused, so the message was not sent (or, with LMTP, not delivered).

    ``refused`` maps each address to its :class:`ReplyError`; the message
    lists the first few. ``transient`` is True only when every refusal was
    transient: then the whole send may succeed later.

    Args:
        message: what happened; the per-recipient summary is appended.
        refused: address -> the error for that address; at least one entry.
        stage: where the session was.
        transcript: the redacted session transcript, when known.

    Raises:
        ValueError: ``refused`` is empty.
    """

    _SHOWN: ClassVar[int] = 3

    def __init__(
        self,
        message: str | None = None,
        *,
        refused: Mapping[str, ReplyError],
        stage: Stage | None = Stage.RCPT,
        transcript: tuple[str, ...] = (),
    ) -> None:
        if not refused:
            raise ValueError("refused must name at least one recipient, got an empty mapping")
        parts = [f"<{a}> {_status(e.reply, 80)}" for a, e in refused.items()]
        extra = len(parts) - self._SHOWN
        summary = "; ".join(parts[: self._SHOWN]) + (f"; and {extra} more" if extra > 0 else "")
        if message is None:
            message = (
                "the recipient was refused" if len(parts) == 1 else "every recipient was refused"
            )
        super().__init__(f"{message}: {summary}", stage=stage, transcript=transcript)
        self.refused: Mapping[str, ReplyError] = dict(refused)
        self.transient = all(e.transient for e in refused.values())


class PartialDelivery(MailTransferError):
    """Some recipients were refused while the others got the message (``strict=True`` only).

    The message *was* delivered to the accepted recipients: do not resend it to
    them. ``result`` holds the full :class:`~mailtransfer.SendResult`.

    Args:
        message: what happened.
        result: the send result, with ``accepted`` and ``refused``.
    """

    def __init__(self, message: str, *, result: Any) -> None:
        super().__init__(message, stage=Stage.RCPT)
        self.result = result


# ------------------------------------------------------------------- the table

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
    ours = {__name__, MailTransferError.__module__}

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
