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
from collections.abc import Mapping
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


# The classification table lives in its own module; its names belong to this one.
from ._error_table import ERROR_TABLE as ERROR_TABLE  # noqa: E402
from ._error_table import ErrorRule as ErrorRule  # noqa: E402
from ._error_table import classify as classify  # noqa: E402
from ._error_table import match_rule as match_rule  # noqa: E402
from ._error_table import render_error_table as render_error_table  # noqa: E402
from ._error_table import render_error_tree as render_error_tree  # noqa: E402
