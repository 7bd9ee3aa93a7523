"""The one place that builds the secure default ``ssl.SSLContext``."""

from __future__ import annotations

import os
import ssl
import sys

__all__ = ["create_ssl_context"]


def create_ssl_context(
    *,
    verify: bool = True,
    cafile: str | os.PathLike[str] | None = None,
    capath: str | os.PathLike[str] | None = None,
    cadata: str | bytes | None = None,
    certfile: str | os.PathLike[str] | None = None,
    keyfile: str | os.PathLike[str] | None = None,
    password: str | bytes | None = None,
) -> ssl.SSLContext:
    """Build a client TLS context with safe defaults.

    Certificates and host names are verified against the system trust store
    (or ``cafile``/``capath``/``cadata`` when given), TLS 1.2 is the minimum,
    compression is off, and ``SSLKEYLOGFILE`` is honoured for debugging.

    Args:
        verify: ``False`` gives an encrypting but *unauthenticated* context, the
            way MTAs do opportunistic TLS; it protects only against passive eavesdroppers.
        cafile: a PEM file of trusted CA certificates (e.g. a company CA).
        capath: a directory of trusted CA certificates.
        cadata: trusted CA certificates as PEM text or DER bytes.
        certfile: a client certificate (PEM), for servers that authenticate clients.
        keyfile: the client certificate's private key, if not in ``certfile``.
        password: the private key's password, if it is encrypted.

    Returns:
        A new ``ssl.SSLContext`` for ``PROTOCOL_TLS_CLIENT``.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    # TLS 1.0/1.1 are broken and deprecated (RFC 8996); every submission server speaks 1.2.
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    # CRIME: TLS compression leaks secrets; OpenSSL disables it already, be explicit.
    ctx.options |= ssl.OP_NO_COMPRESSION
    if verify:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.check_hostname = True
        if sys.version_info >= (3, 13):
            # Reject certificates that only pass thanks to lenient legacy parsing.
            ctx.verify_flags |= ssl.VERIFY_X509_STRICT
        if cafile is None and capath is None and cadata is None:
            ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
        else:
            ctx.load_verify_locations(cafile=cafile, capath=capath, cadata=cadata)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if certfile is not None:
        ctx.load_cert_chain(certfile, keyfile, password)
    keylog = os.environ.get("SSLKEYLOGFILE")
    if keylog:
        ctx.keylog_filename = keylog
    return ctx
