"""Turning socket and ``ssl`` exceptions into mailtransfer's typed errors, in one place.

Both drivers call :func:`translate` at their I/O boundary, with the stage the
session was in, so the same failure reads the same in sync and async code.
"""

from __future__ import annotations

import ssl

from ..errors import (
    CertificateVerifyFailed,
    ConnectError,
    ConnectTimeout,
    GreetingTimeout,
    HostnameMismatch,
    MailTransferError,
    ReadTimeout,
    ServerDisconnected,
    TLSHandshakeFailed,
    TLSPortMismatch,
    WriteTimeout,
)
from ..protocol import Stage

__all__ = ["timeout_error", "translate"]


def timeout_error(
    stage: Stage, operation: str, seconds: float | None, where: str
) -> MailTransferError:
    """The typed error for a deadline that ran out during ``operation`` ("read", "write", ...)."""
    after = f" after {seconds:g}s" if seconds is not None else ""
    if stage is Stage.CONNECT:
        return ConnectTimeout(f"connecting to {where} timed out{after}", stage=stage)
    if stage is Stage.GREETING:
        return GreetingTimeout(
            f"{where} sent no complete greeting{after}. If this is port 465, the server"
            " expects implicit TLS: use ImplicitTLS() (or an smtps:// URL)",
            stage=stage,
        )
    if stage is Stage.TLS_HANDSHAKE:
        return TLSHandshakeFailed(f"the TLS handshake with {where} timed out{after}", stage=stage)
    if operation == "write":
        return WriteTimeout(f"writing to {where} timed out{after} ({stage.value})", stage=stage)
    return ReadTimeout(
        f"{where} did not answer{after} ({stage.value}): the deadline covers the whole reply",
        stage=stage,
    )


def translate(exc: BaseException, stage: Stage, where: str) -> MailTransferError:
    """Map an ``OSError`` or ``ssl.SSLError`` raised at ``stage`` to the most specific error."""
    if isinstance(exc, MailTransferError):
        return exc
    if isinstance(exc, ssl.SSLCertVerificationError):
        if exc.verify_code == 62:  # X509_V_ERR_HOSTNAME_MISMATCH
            return HostnameMismatch(
                f"the certificate of {where} is valid but for another host name:"
                f" {exc.verify_message}. Connect using a name it covers, or set"
                " server_hostname= on the TLS policy",
                stage=stage,
            )
        return CertificateVerifyFailed(
            f"the certificate of {where} could not be verified: {exc.verify_message}."
            " Check the host name you connect to, or pass the CA that signed it"
            " (create_ssl_context(cafile=...))",
            stage=stage,
        )
    if isinstance(exc, ssl.SSLError):
        reason = getattr(exc, "reason", None) or str(exc)
        if reason in ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "UNKNOWN_PROTOCOL"):
            return TLSPortMismatch(
                f"{where} did not answer the TLS handshake with TLS ({reason}): it probably"
                " expects plaintext first and STARTTLS (ports 25, 587, 2525). Use StartTLS()"
                " (or an smtp:// URL) instead of implicit TLS",
                stage=stage,
            )
        return TLSHandshakeFailed(f"TLS with {where} failed: {reason}", stage=stage)
    if isinstance(exc, TimeoutError):
        return timeout_error(stage, "read", None, where)
    if stage is Stage.TLS_HANDSHAKE:
        return TLSHandshakeFailed(
            f"{where} closed or reset the connection during the TLS handshake ({exc}):"
            " it may require a client certificate (create_ssl_context(certfile=...))"
            " or share no TLS version or cipher with this client (TLS 1.2 or newer)",
            stage=stage,
        )
    if stage is Stage.CONNECT:
        return ConnectError(f"cannot connect to {where}: {exc}", stage=stage)
    return ServerDisconnected(
        f"the connection to {where} was lost ({stage.value}): {exc}", stage=stage
    )
