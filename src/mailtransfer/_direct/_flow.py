"""Serving one recipient domain: every decision of direct delivery, as a sans-I/O flow.

Strategy: :func:`serve_domain` is a generator. It yields the I/O steps it
needs (:class:`LookupMX`, :class:`LookupTXT`, :class:`FetchPolicy`,
:class:`LookupAddresses`, :class:`LookupTLSA`, :class:`Deliver`) and receives
their results; a failed step is thrown back into it as the typed error. The
sync and async engines only perform the steps, so the rules below exist once:

- MX hosts in RFC 5321 §5.1 order (:mod:`mailtransfer.dns`); a DNS or null-MX
  failure ends the domain.
- TLS per host: DANE when the MX and address answers and the TLSA records are
  DNSSEC-validated (RFC 7672); otherwise an enforced MTA-STS policy
  (RFC 8461), which also rules out hosts it does not list; otherwise
  opportunistic STARTTLS without certificate checks, as MTAs do (and, after
  a failed handshake, the same host again in cleartext).
- Next host on a connection failure, timeout, TLS failure, 4xx greeting or
  4xx to MAIL/RCPT; stop on a 5xx, on an answer for the recipients, and on
  ``DeliveryUnknown`` (the message may have arrived: never send it twice).
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Generator
from dataclasses import dataclass, replace
from typing import Any

from ..dns import Answer, MailExchangers, TLSARecord
from ..errors import (
    DeliveryUnknown,
    DNSError,
    MailTransferError,
    MTASTSViolation,
    NXDomain,
    RecipientsRefused,
    ReplyError,
    TLSHandshakeFailed,
)
from ..results import SendResult
from ..tls import NoTLS, Opportunistic, TLSPolicy
from ..tls.dane import DANE
from ..tls.mta_sts import MTASTS, MTASTSCache, MTASTSMode, MTASTSPolicy, parse_policy, parse_txt
from ._results import DomainResult, HostAttempt

__all__ = [
    "Deliver",
    "FetchPolicy",
    "LookupAddresses",
    "LookupMX",
    "LookupTLSA",
    "LookupTXT",
    "Step",
    "serve_domain",
]

logger = logging.getLogger("mailtransfer.direct")


@dataclass(frozen=True, slots=True)
class LookupMX:
    """Find the domain's MX hosts; answer: :class:`~mailtransfer.dns.MailExchangers`."""

    domain: str


@dataclass(frozen=True, slots=True)
class LookupTXT:
    """TXT records of ``name``; answer: ``Answer[TXTRecord]``."""

    name: str


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    """GET the MTA-STS policy file of ``domain`` over verified HTTPS; answer: the body (bytes)."""

    domain: str


@dataclass(frozen=True, slots=True)
class LookupAddresses:
    """A and AAAA of ``host``; answer: ``Answer[str]``."""

    host: str


@dataclass(frozen=True, slots=True)
class LookupTLSA:
    """TLSA records of ``name``; answer: ``Answer[TLSARecord]``."""

    name: str


@dataclass(frozen=True, slots=True)
class Deliver:
    """Connect to ``address`` (for ``host``), apply ``tls``, send to ``recipients``.

    Answer: ``(SendResult, tls_version or None)``. With a :class:`DANE` policy the
    engine checks the chain after the handshake, before MAIL.
    """

    host: str
    address: str
    tls: TLSPolicy
    recipients: tuple[int, ...]


Step = LookupMX | LookupTXT | FetchPolicy | LookupAddresses | LookupTLSA | Deliver

_CLEARTEXT = NoTLS()


def _sts_policy(
    domain: str, cache: MTASTSCache, now: float
) -> Generator[Step, Any, MTASTSPolicy | None]:
    """RFC 8461 §3-5: the TXT id, the cache, then a fetch; failures fall back to the cache."""
    cached = cache.get(domain, now)
    try:
        answer = yield LookupTXT(f"_mta-sts.{domain}")
    except DNSError as exc:
        logger.debug("direct.mta_sts %s: no TXT (%s); cached=%s", domain, exc, cached is not None)
        return cached
    ids = []
    for record in answer.records:
        text = record.text
        if text.startswith("v=STSv1"):
            try:
                ids.append(parse_txt(text))
            except ValueError as exc:
                logger.debug("direct.mta_sts %s: bad TXT record: %s", domain, exc)
                ids.append("")
    if len(ids) != 1 or not ids[0]:
        # None, several, or a malformed record: no (new) policy (RFC 8461 §3.1).
        return cached
    if cached is not None and cached.id == ids[0]:
        return cached
    try:
        body = yield FetchPolicy(domain)
        policy = parse_policy(body, id=ids[0])
    except (MailTransferError, ValueError) as exc:
        logger.warning("direct.mta_sts %s: policy fetch failed: %s", domain, exc)
        return cached
    cache.put(domain, policy, now)
    logger.debug(
        "direct.mta_sts %s: policy id=%s mode=%s mx=%s",
        domain,
        policy.id,
        policy.mode.value,
        ",".join(policy.mx),
    )
    return policy


def _moves_on(exc: MailTransferError) -> bool:
    """Whether a host's failure sends the message to the next MX host."""
    if isinstance(exc, DeliveryUnknown):
        return False
    if isinstance(exc, RecipientsRefused):
        return exc.transient
    if isinstance(exc, ReplyError):
        return exc.transient
    return True  # connection, timeout, TLS, DNS of the host, protocol errors


def serve_domain(
    domain: str,
    recipients: tuple[int, ...],
    *,
    port: int,
    use_mta_sts: bool,
    use_dane: bool,
    cache: MTASTSCache,
    verify_context: ssl.SSLContext | None,
    now: float,
    addresses_of: tuple[str, ...],
) -> Generator[Step, Any, DomainResult]:
    """The flow that serves one domain; returns its :class:`DomainResult`.

    Args:
        domain: the recipient domain (ASCII).
        recipients: indexes of its recipients in the envelope.
        port: the MX hosts' SMTP port.
        use_mta_sts: look for and honour an MTA-STS policy.
        use_dane: look for and honour TLSA records.
        cache: the MTA-STS policy cache.
        verify_context: the verifying context for MTA-STS hosts (None: system default).
        now: the current monotonic time, for the cache.
        addresses_of: the recipients' addresses (for the result).
    """
    base = DomainResult(domain=domain, recipients=addresses_of)
    try:
        exchangers: MailExchangers = yield LookupMX(domain)
    except MailTransferError as exc:
        logger.info("direct.domain %s: no MX hosts: %s", domain, exc)
        return replace(base, error=exc)
    sts: MTASTSPolicy | None = None
    if use_mta_sts:
        sts = yield from _sts_policy(domain, cache, now)
    enforce = sts is not None and sts.mode is MTASTSMode.ENFORCE
    label = "none"
    if sts is not None and sts.mode is not MTASTSMode.NONE:
        label = "mta-sts" if enforce else "mta-sts-testing"
    attempts: list[HostAttempt] = []
    last: MailTransferError | None = None
    used_dane = False
    for exchanger in exchangers.hosts:
        host = exchanger.host
        try:
            addresses: Answer[str] = yield LookupAddresses(host)
        except MailTransferError as exc:
            last = exc
            attempts.append(HostAttempt(host=host, error=exc))
            continue
        if not addresses.records:
            last = DNSError(f"the MX host {host} has no address")
            attempts.append(HostAttempt(host=host, error=last))
            continue
        tls: TLSPolicy = Opportunistic(server_hostname=host)
        level = "opportunistic"
        if use_dane and exchangers.authenticated and addresses.authenticated:
            try:
                tlsa: Answer[TLSARecord] = yield LookupTLSA(f"_{port}._tcp.{host}")
            except NXDomain:
                tlsa = Answer(name=host, rdtype="TLSA", records=())
            except MailTransferError as exc:
                # RFC 7672 §2.2: TLSA records may exist but cannot be had: do not use the host.
                last = exc
                attempts.append(HostAttempt(host=host, tls="dane", error=exc))
                continue
            if tlsa.authenticated and tlsa.records:
                tls = DANE(host=host, records=tlsa.records, server_hostname=host)
                level = "dane" if tls.authenticates else "dane-encrypt"
                used_dane = True
        if level == "opportunistic" and enforce and sts is not None:
            # DANE, when present, takes precedence over MTA-STS (RFC 8461 §2).
            if not sts.allows(host):
                last = MTASTSViolation(
                    f"{host} is not listed in the MTA-STS policy of {domain}"
                    f" (mx: {', '.join(sts.mx)}); the host is not used"
                )
                logger.warning("direct.host %s %s: skipped: %s", domain, host, last)
                attempts.append(HostAttempt(host=host, tls="mta-sts", error=last))
                continue
            tls = MTASTS(policy=sts, context=verify_context, server_hostname=host)
            level = "mta-sts"
        for address in addresses.records:
            logger.debug(
                "direct.host %s: trying %s [%s]:%d tls=%s", domain, host, address, port, level
            )
            try:
                result, version = yield Deliver(host, address, tls, recipients)
            except MailTransferError as exc:
                last = exc
                attempts.append(HostAttempt(host=host, address=address, tls=level, error=exc))
                logger.info("direct.host %s %s [%s] failed: %s", domain, host, address, exc)
                if level == "opportunistic" and isinstance(exc, TLSHandshakeFailed):
                    # Opportunistic TLS only guards against eavesdroppers: a server whose TLS
                    # is broken still gets the mail in cleartext, as MTAs do (RFC 7435 §3).
                    try:
                        result, version = yield Deliver(host, address, _CLEARTEXT, recipients)
                    except MailTransferError as retry:
                        last, exc = retry, retry
                        attempts.append(
                            HostAttempt(host=host, address=address, tls="none", error=retry)
                        )
                    else:
                        attempts.append(HostAttempt(host=host, address=address, tls="none"))
                        logger.info(
                            "direct.domain %s: accepted by %s [%s] in cleartext after a failed"
                            " TLS handshake",
                            domain,
                            host,
                            address,
                        )
                        return replace(
                            base,
                            policy=label,
                            attempts=tuple(attempts),
                            host=host,
                            result=result,
                        )
                if _moves_on(exc):
                    continue
                return replace(
                    base,
                    policy="dane" if used_dane else label,
                    attempts=tuple(attempts),
                    error=exc,
                )
            attempts.append(HostAttempt(host=host, address=address, tls=level, tls_version=version))
            logger.info(
                "direct.domain %s: accepted by %s [%s] tls=%s (%s) policy=%s",
                domain,
                host,
                address,
                level,
                version or "cleartext",
                "dane" if used_dane else label,
            )
            return replace(
                base,
                policy="dane" if level.startswith("dane") else label,
                attempts=tuple(attempts),
                host=host,
                result=result,
            )
    return replace(
        base, policy="dane" if used_dane else label, attempts=tuple(attempts), error=last
    )


def host_result(result: SendResult, host: str) -> SendResult:
    """Name the accepting MX host in its result."""
    return replace(result, host=host)
