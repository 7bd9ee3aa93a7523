"""A drop-in replacement for the standard library's :mod:`smtplib`.

Same names, signatures, return values and exceptions as the standard module of
the running Python (3.10 to 3.13), written over mailtransfer's own pieces
rather than wrapping the standard module: the message body goes through
:func:`mailtransfer.protocol.encode_data` (every line ending becomes CRLF, so a
bare CR or LF can never forge an end-of-data mark), commands are checked for
CR, LF and NUL before a byte is sent, the exception classes belong to both
the standard and the :mod:`mailtransfer.errors` hierarchies, and credentials
never appear in the debug output.

Replies keep the standard contract (raw ``bytes`` text, ``-1`` for a line
without a code, 8192-byte lines) so this module reads them line by line
itself: mailtransfer's strict :class:`~mailtransfer.protocol.ReplyParser`
would refuse replies that smtplib callers expect to see.

The module is split by what the code holds: the classes :class:`SMTP`,
:class:`SMTP_SSL` and :class:`LMTP` are defined here, ``SMTP`` from layers in
private sibling modules (``_smtp_connection``, ``_smtp_commands``,
``_smtp_auth``, ``_smtp_tls``, ``_smtp_sending``) plus the text helpers in
``_smtp_text``. Everything that touches the ``socket`` module (opening the
connection, the default local host name, LMTP's Unix sockets) stays in this
module, so that replacing ``smtplib.socket``, as CPython's own test suite
does, still takes effect. The other names are re-exported from where they
are defined (with the standard library modules the old single file
imported, as the standard module exposes its own): rebinding one of them
here does not change the code that uses it.

Example:
    >>> from mailtransfer.compat import smtplib
    >>> smtplib.quoteaddr("Alice <alice@example.org>")
    '<alice@example.org>'
    >>> smtplib.quotedata(".hidden\\nline")
    '..hidden\\r\\nline'
"""

from __future__ import annotations

import base64 as base64
import contextlib
import copy as copy
import datetime as datetime
import email as email
import hmac as hmac
import io as io
import re as re
import socket
import ssl
import sys
import warnings as warnings
from collections.abc import Callable as Callable
from collections.abc import Sequence as Sequence
from typing import Any

from ..errors import InvalidAddress as InvalidAddress
from ..errors import InvalidArgument as InvalidArgument
from ..protocol import encode_data as encode_data
from ..protocol._data import normalize_line_endings as normalize_line_endings
from ..tls import create_ssl_context as create_ssl_context
from ._errors import (
    SMTPAuthenticationError,
    SMTPConnectError,
    SMTPDataError,
    SMTPException,
    SMTPHeloError,
    SMTPNotSupportedError,
    SMTPRecipientsRefused,
    SMTPResponseException,
    SMTPSenderRefused,
    SMTPServerDisconnected,
    SMTPStartTLSInjection,
)
from ._smtp_auth import _MAXCHALLENGE as _MAXCHALLENGE
from ._smtp_auth import _Auth
from ._smtp_connection import _MAXLINE as _MAXLINE
from ._smtp_sending import _Sending
from ._smtp_text import CRLF as CRLF
from ._smtp_text import OLDSTYLE_AUTH as OLDSTYLE_AUTH
from ._smtp_text import bCRLF as bCRLF
from ._smtp_text import quoteaddr, quotedata
from ._smtp_tls import _context_from_files, _default_context, _StartTLS, secure_defaults

__all__ = [
    "SMTPException",
    "SMTPNotSupportedError",
    "SMTPServerDisconnected",
    "SMTPResponseException",
    "SMTPSenderRefused",
    "SMTPRecipientsRefused",
    "SMTPDataError",
    "SMTPConnectError",
    "SMTPHeloError",
    "SMTPAuthenticationError",
    "quoteaddr",
    "quotedata",
    "SMTP",
    "SMTP_SSL",
    "LMTP",
    "SMTPStartTLSInjection",
    "secure_defaults",
]

__mailtransfer_compat__ = True

SMTP_PORT = 25
SMTP_SSL_PORT = 465
LMTP_PORT = 2003
_have_ssl = True

# The default timeout marker of the socket module, captured once: tests swap `socket`.
_DEFAULT_TIMEOUT: Any = socket._GLOBAL_DEFAULT_TIMEOUT  # type: ignore[attr-defined]


class SMTP(_Sending, _StartTLS, _Auth):
    """One connection to an SMTP server, with the standard ``smtplib.SMTP`` interface.

    Attributes:
        helo_resp: the text of the last HELO reply.
        ehlo_resp: the text of the last EHLO reply.
        does_esmtp: whether the server answered EHLO.
        esmtp_features: extension name (lower case) -> its parameters, after EHLO.

    Args:
        host: connect to this host at once (``host:port`` is understood).
        port: the port; ``default_port`` when 0.
        local_hostname: the name sent with HELO/EHLO; the local FQDN when None.
        timeout: the socket timeout in seconds (None blocks; 0 is refused).
        source_address: ``(host, port)`` to bind the socket to.

    Raises:
        SMTPConnectError: the greeting was not 220.
    """

    default_port = SMTP_PORT

    def __init__(
        self,
        host: str = "",
        port: int = 0,
        local_hostname: str | None = None,
        timeout: Any = _DEFAULT_TIMEOUT,
        source_address: tuple[str, int] | None = None,
    ) -> None:
        self._host = host
        self.timeout = timeout
        self.esmtp_features: dict[str, str] = {}
        self.command_encoding = "ascii"
        self.source_address = source_address
        self._auth_challenge_count = 0
        self._hide_sent = None
        if host:
            code, msg = self.connect(host, port)
            if code != 220:
                self.close()
                raise SMTPConnectError(code, msg)
        self.local_hostname = (
            local_hostname if local_hostname is not None else _default_local_hostname()
        )

    def __enter__(self) -> SMTP:
        return self

    def __exit__(self, *args: object) -> None:
        try:
            code, message = self.docmd("QUIT")
            if code != 221:
                raise SMTPResponseException(code, message)
        except SMTPServerDisconnected:
            pass
        finally:
            self.close()

    def _get_socket(self, host: str, port: int, timeout: Any) -> Any:
        if timeout is not None and not timeout:
            raise ValueError("Non-blocking socket (timeout=0) is not supported")
        if self.debuglevel > 0:
            self._print_debug("connect: to", (host, port), self.source_address)
        return socket.create_connection((host, port), timeout, self.source_address)

    def connect(
        self, host: str = "localhost", port: int = 0, source_address: tuple[str, int] | None = None
    ) -> tuple[int, bytes]:
        """Connect to ``host`` and read the greeting.

        Args:
            host: the server; a ``:port`` suffix is used when ``port`` is 0.
            port: the port; ``default_port`` when 0.
            source_address: ``(host, port)`` to bind to, replacing the one given before.

        Returns:
            The greeting's ``(code, text)``.

        Raises:
            OSError: the connection failed, or the port suffix is not a number.
        """
        if source_address:
            self.source_address = source_address
        if not port and host.count(":") == 1:
            host, _, suffix = host.partition(":")
            try:
                port = int(suffix)
            except ValueError:
                raise OSError("nonnumeric port") from None
        if not port:
            port = self.default_port
        sys.audit("smtplib.connect", self, host, port)
        self.sock = self._get_socket(host, port, self.timeout)
        self.file = None
        code, msg = self.getreply()
        if self.debuglevel > 0:
            self._print_debug("connect:", repr(msg))
        return code, msg


def _default_local_hostname() -> str:
    fqdn: str = socket.getfqdn()
    if "." in fqdn:
        return fqdn
    address = "127.0.0.1"
    with contextlib.suppress(socket.gaierror):
        address = socket.gethostbyname(socket.gethostname())
    return f"[{address}]"


class SMTP_SSL(SMTP):
    """:class:`SMTP` over implicit TLS (port 465).

    Without ``context`` the certificate is not verified, as in the standard
    module, unless :func:`secure_defaults` was called. On Python 3.10 and 3.11
    it also takes the deprecated ``keyfile`` and ``certfile`` arguments, as
    the standard class does there.
    """

    default_port = SMTP_SSL_PORT

    if sys.version_info < (3, 12):

        def __init__(  # noqa: PLR0917 - the standard signature on Python 3.10/3.11
            self,
            host: str = "",
            port: int = 0,
            local_hostname: str | None = None,
            keyfile: str | None = None,
            certfile: str | None = None,
            timeout: Any = _DEFAULT_TIMEOUT,
            source_address: tuple[str, int] | None = None,
            context: ssl.SSLContext | None = None,
        ) -> None:
            """Connect at once when ``host`` is given.

            Args:
                host: the server.
                port: the port; 465 when 0.
                local_hostname: the name sent with HELO/EHLO.
                keyfile: deprecated client key file; use ``context``.
                certfile: deprecated client certificate file; use ``context``.
                timeout: the socket timeout in seconds.
                source_address: ``(host, port)`` to bind to.
                context: the TLS context.
            """
            self.keyfile = keyfile
            self.certfile = certfile
            context = _context_from_files(keyfile, certfile, context, 3)
            self.context = context if context is not None else _default_context()
            SMTP.__init__(self, host, port, local_hostname, timeout, source_address)

    else:

        def __init__(
            self,
            host: str = "",
            port: int = 0,
            local_hostname: str | None = None,
            *,
            timeout: Any = _DEFAULT_TIMEOUT,
            source_address: tuple[str, int] | None = None,
            context: ssl.SSLContext | None = None,
        ) -> None:
            """Connect at once when ``host`` is given.

            Args:
                host: the server.
                port: the port; 465 when 0.
                local_hostname: the name sent with HELO/EHLO.
                timeout: the socket timeout in seconds.
                source_address: ``(host, port)`` to bind to.
                context: the TLS context.
            """
            self.context = context if context is not None else _default_context()
            SMTP.__init__(self, host, port, local_hostname, timeout, source_address)

    def _get_socket(self, host: str, port: int, timeout: Any) -> Any:
        if self.debuglevel > 0:
            self._print_debug("connect:", (host, port))
        plain = super()._get_socket(host, port, timeout)
        return self.context.wrap_socket(plain, server_hostname=self._host)


class LMTP(SMTP):
    """:class:`SMTP` speaking LMTP (RFC 2033): LHLO, and Unix sockets for hosts starting with /.

    Args:
        host: a host name, or the path of a Unix socket.
        port: the TCP port (2003 by default).
        local_hostname: the name sent with LHLO.
        source_address: ``(host, port)`` to bind to.
        timeout: the socket timeout in seconds.
    """

    ehlo_msg = "lhlo"

    def __init__(
        self,
        host: str = "",
        port: int = LMTP_PORT,
        local_hostname: str | None = None,
        source_address: tuple[str, int] | None = None,
        timeout: Any = _DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__(
            host,
            port,
            local_hostname=local_hostname,
            source_address=source_address,
            timeout=timeout,
        )

    def connect(
        self, host: str = "localhost", port: int = 0, source_address: tuple[str, int] | None = None
    ) -> tuple[int, bytes]:
        """Connect over TCP, or to the Unix socket at ``host`` when it starts with ``/``.

        Args:
            host: a host name, or a socket path.
            port: the TCP port.
            source_address: ``(host, port)`` to bind to (TCP only).

        Returns:
            The greeting's ``(code, text)``.
        """
        if host[0] != "/":
            return super().connect(host, port, source_address=source_address)
        if self.timeout is not None and not self.timeout:
            raise ValueError("Non-blocking socket (timeout=0) is not supported")
        try:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            if self.timeout is not _DEFAULT_TIMEOUT:
                self.sock.settimeout(self.timeout)
            self.file = None
            self.sock.connect(host)
        except OSError:
            if self.debuglevel > 0:
                self._print_debug("connect fail:", host)
            if self.sock:
                self.sock.close()
            self.sock = None
            raise
        code, msg = self.getreply()
        if self.debuglevel > 0:
            self._print_debug("connect:", msg)
        return code, msg
