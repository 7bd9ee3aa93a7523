"""TLS for the smtplib drop-in: the default context, ``secure_defaults`` and STARTTLS.

Without a ``context`` the standard module encrypts without verifying; so
does this one until :func:`secure_defaults` switches the process to
:func:`mailtransfer.tls.create_ssl_context`. :func:`_default_context` and
:func:`_context_from_files` (the Python 3.10/3.11 ``keyfile``/``certfile``
arguments) choose the context for ``starttls`` and ``SMTP_SSL``;
:class:`_StartTLS` holds ``starttls``, which refuses cleartext sent after the
220 reply (RFC 3207 section 4.2).
"""

from __future__ import annotations

import ssl
import sys
import warnings
from typing import Any

from ..tls import create_ssl_context
from ._errors import SMTPNotSupportedError, SMTPResponseException, SMTPStartTLSInjection
from ._smtp_commands import _Commands

_secure_defaults = False


def secure_defaults(enabled: bool = True) -> None:
    """Make ``starttls()`` and ``SMTP_SSL`` verify certificates when given no context.

    The standard module (and so this one, by default) encrypts without checking
    the server's certificate or host name when no ``context`` is passed. After
    ``secure_defaults()``, such calls use
    :func:`mailtransfer.tls.create_ssl_context`: certificates and host names are
    verified against the system trust store, TLS 1.2 or later.

    Args:
        enabled: True for verified contexts, False for the standard behaviour again.
    """
    global _secure_defaults  # noqa: PLW0603 - one process-wide switch, like the standard module's
    _secure_defaults = bool(enabled)


def _stdlib_context(**files: Any) -> ssl.SSLContext:
    # The standard module's unverified default, kept for compatibility (see secure_defaults).
    context: ssl.SSLContext = getattr(ssl, "_create_stdlib_context")(**files)  # noqa: B009
    return context


def _default_context() -> ssl.SSLContext:
    if _secure_defaults:
        return create_ssl_context()
    return _stdlib_context()


def _context_from_files(
    keyfile: str | None, certfile: str | None, context: ssl.SSLContext | None, stacklevel: int
) -> ssl.SSLContext | None:
    """Python 3.10/3.11 keyfile/certfile arguments, checked as the standard module does."""
    if context is not None and keyfile is not None:
        raise ValueError("context and keyfile arguments are mutually exclusive")
    if context is not None and certfile is not None:
        raise ValueError("context and certfile arguments are mutually exclusive")
    if keyfile is None and certfile is None:
        return context
    warnings.warn(
        "keyfile and certfile are deprecated, use a custom context instead",
        DeprecationWarning,
        stacklevel,
    )
    if context is None:
        if _secure_defaults:
            context = create_ssl_context(certfile=certfile, keyfile=keyfile)
        else:
            context = _stdlib_context(certfile=certfile, keyfile=keyfile)
    return context


class _StartTLS(_Commands):
    """The STARTTLS methods of ``SMTP``."""

    def _starttls(self, context: ssl.SSLContext | None) -> tuple[int, bytes]:
        self.ehlo_or_helo_if_needed()
        if not self.has_extn("starttls"):
            raise SMTPNotSupportedError("STARTTLS extension not supported by server.")
        code, reply = self.docmd("STARTTLS")
        if code != 220:
            raise SMTPResponseException(code, reply)
        if self._cleartext_pending():
            # Sent in clear after the 220 and before TLS: possibly injected (RFC 3207 4.2).
            self.close()
            raise SMTPStartTLSInjection(
                "the server sent data after its 220 reply to STARTTLS, before TLS started; "
                "it may have been injected, so the connection was closed"
            )
        if context is None:
            context = _default_context()
        self.sock = context.wrap_socket(self.sock, server_hostname=self._host)
        self.file = None
        self.helo_resp = None
        self.ehlo_resp = None
        self.esmtp_features = {}
        self.does_esmtp = False
        return code, reply

    def _cleartext_pending(self) -> bool:
        """Whether bytes are waiting after the reply just read, without blocking for more."""
        peek = getattr(self.file, "peek", None)
        if peek is None:
            return False
        previous = self.sock.gettimeout()
        self.sock.setblocking(False)
        try:
            return bool(peek(1))
        except OSError:
            return False
        finally:
            self.sock.settimeout(previous)

    if sys.version_info < (3, 12):

        def starttls(
            self,
            keyfile: str | None = None,
            certfile: str | None = None,
            context: ssl.SSLContext | None = None,
        ) -> tuple[int, bytes]:
            """Switch the connection to TLS.

            Without ``context`` the certificate is not verified, as in the
            standard module, unless :func:`secure_defaults` was called.

            Args:
                keyfile: deprecated client key file; use ``context``.
                certfile: deprecated client certificate file; use ``context``.
                context: the TLS context.

            Returns:
                The reply to STARTTLS.

            Raises:
                SMTPNotSupportedError: STARTTLS not offered.
                SMTPResponseException: STARTTLS refused.
                SMTPStartTLSInjection: data followed the 220 reply in clear.
                ValueError: ``context`` given with ``keyfile`` or ``certfile``.
            """
            return self._starttls(_context_from_files(keyfile, certfile, context, 3))

    else:

        def starttls(self, *, context: ssl.SSLContext | None = None) -> tuple[int, bytes]:
            """Switch the connection to TLS.

            Without ``context`` the certificate is not verified, as in the
            standard module, unless :func:`secure_defaults` was called.

            Args:
                context: the TLS context.

            Returns:
                The reply to STARTTLS.

            Raises:
                SMTPNotSupportedError: STARTTLS not offered.
                SMTPResponseException: STARTTLS refused.
                SMTPStartTLSInjection: data followed the 220 reply in clear.
            """
            return self._starttls(context)
