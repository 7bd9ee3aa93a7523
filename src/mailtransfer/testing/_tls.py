"""Throw-away TLS certificates for tests, made with trustme.

A fresh certificate authority per call means nothing on the machine trusts it: a client that
connects with the default trust store must fail verification, and one given
`TLSCertificates.client_context` (or the CA file) must succeed. That pair of outcomes is
what certificate tests need (THREATS.md S6).
"""

from __future__ import annotations

import datetime
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["TLSCertificates", "tls_certificates"]

_INSTALL_HINT = "pip install trustme  (or: pip install 'mailtransfer[test]')"


def _import_trustme() -> Any:
    try:
        import trustme  # noqa: PLC0415  (optional: imported on use)
    except ImportError as exc:
        raise ImportError(
            f"tls_certificates() needs trustme; install it with: {_INSTALL_HINT}"
        ) from exc
    return trustme


@dataclass(frozen=True, slots=True, kw_only=True)
class TLSCertificates:
    """A test certificate authority, a server certificate, and contexts that use them.

    Attributes:
        ca: the ``trustme.CA`` that signed everything here.
        hostnames: the names and addresses the server certificate is valid for.
        server_context: a server-side context holding the server certificate (for
            `RecordingServer` ``tls_context``/``implicit_tls`` or
            `ScriptedPeer.start_tls`).
        client_context: a client-side context that trusts ``ca`` and checks host names.
        ca_pem: the CA certificate in PEM form.
    """

    ca: Any
    hostnames: tuple[str, ...]
    server_context: ssl.SSLContext
    client_context: ssl.SSLContext
    ca_pem: bytes

    def server_context_for(
        self,
        *hostnames: str,
        not_before: datetime.datetime | None = None,
        not_after: datetime.datetime | None = None,
    ) -> ssl.SSLContext:
        """Make another server context signed by the same CA.

        Useful for the failure cases: a certificate for the wrong host name, or one that has
        expired (``not_after`` in the past).

        Args:
            *hostnames: the names the new certificate is valid for.
            not_before: the start of the validity period (default: now).
            not_after: the end of the validity period (default: in the far future).

        Returns:
            A server-side `ssl.SSLContext`.

        Raises:
            ValueError: no host name given.
        """
        if not hostnames:
            raise ValueError("server_context_for() needs at least one host name")
        cert = self.ca.issue_cert(*hostnames, not_before=not_before, not_after=not_after)
        context = _server_context()
        cert.configure_cert(context)
        return context

    def write_ca(self, path: str | Path) -> Path:
        """Write the CA certificate to ``path``, e.g. for a client's ``cafile=`` option.

        Returns:
            The path written.
        """
        target = Path(path)
        target.write_bytes(self.ca_pem)
        return target


def _server_context() -> ssl.SSLContext:
    # Purpose.CLIENT_AUTH gives a server-side context with TLS >= 1.2 and no client
    # certificate request, as aiosmtpd expects.
    return ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)


def tls_certificates(*hostnames: str) -> TLSCertificates:
    """Create a new CA and a server certificate for ``hostnames``.

    Args:
        *hostnames: the names (and IP addresses) the server certificate covers;
            default ``("localhost", "127.0.0.1")``.

    Returns:
        The CA, the server context and a client context that trusts the CA.

    Raises:
        ImportError: trustme is not installed.

    Example:
        >>> certs = tls_certificates("mx1.example.test")  # doctest: +SKIP
        >>> server = RecordingServer(tls_context=certs.server_context)  # doctest: +SKIP
    """
    trustme = _import_trustme()
    names = hostnames or ("localhost", "127.0.0.1")
    ca = trustme.CA()
    server_context = _server_context()
    ca.issue_cert(*names).configure_cert(server_context)
    client_context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(client_context)
    return TLSCertificates(
        ca=ca,
        hostnames=tuple(names),
        server_context=server_context,
        client_context=client_context,
        ca_pem=bytes(ca.cert_pem.bytes()),
    )
