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

Example:
    >>> from mailtransfer.compat import smtplib
    >>> smtplib.quoteaddr("Alice <alice@example.org>")
    '<alice@example.org>'
    >>> smtplib.quotedata(".hidden\\nline")
    '..hidden\\r\\nline'
"""

from __future__ import annotations

import base64
import contextlib
import copy
import datetime
import email.generator
import email.utils
import hmac
import io
import re
import socket
import ssl
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import InvalidAddress, InvalidArgument
from ..protocol import encode_data
from ..protocol._data import normalize_line_endings
from ..tls import create_ssl_context
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
CRLF = "\r\n"
bCRLF = b"\r\n"
_MAXLINE = 8192
_MAXCHALLENGE = 5

OLDSTYLE_AUTH = re.compile(r"auth=(.*)", re.I)
_FEATURE = re.compile(r"(?P<feature>[A-Za-z0-9][A-Za-z0-9\-]*) ?")
_LOWERCASE_VERBS = sys.version_info >= (3, 12)
_have_ssl = True

# The default timeout marker of the socket module, captured once: tests swap `socket`.
_DEFAULT_TIMEOUT: Any = socket._GLOBAL_DEFAULT_TIMEOUT  # type: ignore[attr-defined]

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


def quoteaddr(addrstring: str) -> str:
    """Put an address in angle brackets for ``MAIL``/``RCPT``, dropping any display name.

    Args:
        addrstring: an address, with or without a display name.

    Returns:
        ``<address>``; an unparsable string is bracketed as it is, unless it
        already starts with ``<``.
    """
    name, address = email.utils.parseaddr(addrstring)
    if name or address:
        return f"<{address}>"
    if addrstring.strip().startswith("<"):
        return addrstring
    return f"<{addrstring}>"


def _address_only(addrstring: str) -> str:
    name, address = email.utils.parseaddr(addrstring)
    return address if (name or address) else addrstring


def _crlf_text(text: str) -> str:
    # The str form of mailtransfer.protocol's normalisation: CRLF, bare LF, bare CR -> CRLF.
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")


def quotedata(data: str) -> str:
    """Make every line ending CRLF and double a ``.`` that starts a line.

    Args:
        data: message text.

    Returns:
        The text as ``DATA`` carries it, without the final ``.`` line.
    """
    text = _crlf_text(data).replace("\r\n.", "\r\n..")
    return "." + text if text.startswith(".") else text


def _prohibited(text: str) -> str | None:
    """What is wrong with ``text`` on a command line, shown escaped; None when it is fine."""
    if "\r" in text or "\n" in text:
        shown = text.replace("\n", "\\n").replace("\r", "\\r")
        return f"prohibited newline characters: {shown}"
    if "\0" in text:
        return "a prohibited NUL character: " + text.replace("\0", "\\0")
    return None


def _check_command(line: str) -> None:
    problem = _prohibited(line)
    if problem is not None:
        raise InvalidArgument(f"command and arguments contain {problem}")


def _check_address(address: str) -> None:
    # email.utils.parseaddr silently drops whatever follows a CR or LF, so the standard
    # module would send to a different address than asked: refuse it instead.
    problem = _prohibited(address)
    if problem is not None:
        raise InvalidAddress(f"address contains {problem}")


def _message_bytes(msg: str | bytes | bytearray) -> bytes:
    if isinstance(msg, str):
        return normalize_line_endings(msg.encode("ascii"))
    return normalize_line_endings(bytes(msg))


class SMTP:
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

    debuglevel = 0
    sock: Any = None
    file: Any = None
    helo_resp: bytes | None = None
    ehlo_msg = "ehlo"
    ehlo_resp: bytes | None = None
    does_esmtp = False
    default_port = SMTP_PORT
    _hide_sent: str | None = None
    """While AUTH runs: what the debug output shows instead of the line sent."""
    user: str
    password: str

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

    def set_debuglevel(self, debuglevel: int) -> None:
        """Print the conversation to stderr: 1 plain, 2 with timestamps.

        Unlike the standard module, the credentials sent during AUTH are
        printed as ``<credentials hidden>`` (``AUTH PLAIN <credentials hidden>``).

        Args:
            debuglevel: 0 for silence.
        """
        self.debuglevel = debuglevel

    def _print_debug(self, *args: object) -> None:
        if self.debuglevel > 1:
            print(datetime.datetime.now().time(), *args, file=sys.stderr)
        else:
            print(*args, file=sys.stderr)

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

    def send(self, s: str | bytes) -> None:
        """Write ``s`` to the server as it is (a str is encoded with ``command_encoding``).

        Args:
            s: the bytes or text to send.

        Raises:
            SMTPServerDisconnected: not connected, or the write failed.
        """
        if self.debuglevel > 0:
            shown = repr(s) if self._hide_sent is None else self._hide_sent
            self._print_debug("send:", shown)
        if not self.sock:
            raise SMTPServerDisconnected("please run connect() first")
        data = s.encode(self.command_encoding) if isinstance(s, str) else s
        sys.audit("smtplib.send", self, data)
        try:
            self.sock.sendall(data)
        except OSError:
            self.close()
            raise SMTPServerDisconnected("Server not connected") from None

    def putcmd(self, cmd: str, args: str = "") -> None:
        """Send one command line.

        Args:
            cmd: the verb.
            args: its arguments.

        Raises:
            InvalidArgument: the line holds CR, LF or NUL (nothing is sent); a ValueError.
        """
        line = f"{cmd} {args}" if args != "" else cmd
        _check_command(line)
        self.send(line + CRLF)

    def getreply(self) -> tuple[int, bytes]:
        """Read one (possibly multi-line) reply.

        Returns:
            ``(code, text)``: lines joined with ``\\n``; code -1 when a line has no code.

        Raises:
            SMTPServerDisconnected: the connection closed or failed.
            SMTPResponseException: a line is longer than 8192 bytes (code 500).
        """
        if self.file is None:
            self.file = self.sock.makefile("rb")
        texts: list[bytes] = []
        code = -1
        while True:
            try:
                line = self.file.readline(_MAXLINE + 1)
            except OSError as exc:
                self.close()
                raise SMTPServerDisconnected(f"Connection unexpectedly closed: {exc}") from None
            if not line:
                self.close()
                raise SMTPServerDisconnected("Connection unexpectedly closed")
            if self.debuglevel > 0:
                self._print_debug("reply:", repr(line))
            if len(line) > _MAXLINE:
                self.close()
                raise SMTPResponseException(500, "Line too long.")
            texts.append(line[4:].strip(b" \t\r\n"))
            try:
                code = int(line[:3])
            except ValueError:
                code = -1
                break
            if line[3:4] != b"-":
                break
        text = b"\n".join(texts)
        if self.debuglevel > 0:
            self._print_debug(f"reply: retcode ({code}); Msg: {text!a}")
        return code, text

    def docmd(self, cmd: str, args: str = "") -> tuple[int, bytes]:
        """Send a command and return its reply.

        Args:
            cmd: the verb.
            args: its arguments.

        Returns:
            The reply's ``(code, text)``.
        """
        self.putcmd(cmd, args)
        return self.getreply()

    def helo(self, name: str = "") -> tuple[int, bytes]:
        """Send HELO.

        Args:
            name: the name to greet with; ``local_hostname`` when empty.

        Returns:
            The reply's ``(code, text)``.
        """
        self.putcmd("helo", name or self.local_hostname)
        code, msg = self.getreply()
        self.helo_resp = msg
        return code, msg

    def ehlo(self, name: str = "") -> tuple[int, bytes]:
        """Send EHLO (LHLO for LMTP) and record the extensions offered.

        Args:
            name: the name to greet with; ``local_hostname`` when empty.

        Returns:
            The reply's ``(code, text)``.

        Raises:
            SMTPServerDisconnected: the reply was empty and code-less.
        """
        self.esmtp_features = {}
        self.putcmd(self.ehlo_msg, name or self.local_hostname)
        code, msg = self.getreply()
        if code == -1 and not msg:
            self.close()
            raise SMTPServerDisconnected("Server not connected")
        self.ehlo_resp = msg
        if code != 250:
            return code, msg
        self.does_esmtp = True
        self.esmtp_features = _parse_features(msg)
        return code, msg

    def has_extn(self, opt: str) -> bool:
        """Whether the server offered extension ``opt`` (case-insensitive).

        Args:
            opt: the extension keyword.

        Returns:
            True when it was in the EHLO reply.
        """
        return opt.lower() in self.esmtp_features

    def help(self, args: str = "") -> bytes:
        """Send HELP.

        Args:
            args: the topic.

        Returns:
            The reply text.
        """
        self.putcmd("help", args)
        return self.getreply()[1]

    def rset(self) -> tuple[int, bytes]:
        """Send RSET (and go back to ASCII commands).

        Returns:
            The reply's ``(code, text)``.
        """
        self.command_encoding = "ascii"
        return self.docmd("rset")

    def _rset(self) -> None:
        # A clean-up RSET: a dead connection shows up on the caller's next command.
        with contextlib.suppress(SMTPServerDisconnected):
            self.rset()

    def noop(self) -> tuple[int, bytes]:
        """Send NOOP.

        Returns:
            The reply's ``(code, text)``.
        """
        return self.docmd("noop")

    def mail(self, sender: str, options: Sequence[str] = ()) -> tuple[int, bytes]:
        """Send MAIL FROM.

        Args:
            sender: the envelope sender.
            options: ESMTP parameters (sent only after EHLO).

        Returns:
            The reply's ``(code, text)``.

        Raises:
            SMTPNotSupportedError: ``SMTPUTF8`` asked for and not offered.
            InvalidAddress: ``sender`` holds CR, LF or NUL (a ValueError).
        """
        _check_address(sender)
        params = ""
        if options and self.does_esmtp:
            if any(option.lower() == "smtputf8" for option in options):
                if not self.has_extn("smtputf8"):
                    raise SMTPNotSupportedError("SMTPUTF8 not supported by server")
                self.command_encoding = "utf-8"
            params = " " + " ".join(options)
        verb = "from:" if _LOWERCASE_VERBS else "FROM:"
        self.putcmd("mail", f"{verb}{quoteaddr(sender)}{params}")
        return self.getreply()

    def rcpt(self, recip: str, options: Sequence[str] = ()) -> tuple[int, bytes]:
        """Send RCPT TO.

        Args:
            recip: one recipient.
            options: ESMTP parameters (sent only after EHLO).

        Returns:
            The reply's ``(code, text)``.

        Raises:
            InvalidAddress: ``recip`` holds CR, LF or NUL (a ValueError).
        """
        _check_address(recip)
        params = " " + " ".join(options) if options and self.does_esmtp else ""
        verb = "to:" if _LOWERCASE_VERBS else "TO:"
        self.putcmd("rcpt", f"{verb}{quoteaddr(recip)}{params}")
        return self.getreply()

    def data(self, msg: str | bytes) -> tuple[int, bytes]:
        """Send DATA and the message.

        Every line ending becomes CRLF (for bytes too, unlike the standard
        module) and lines starting with ``.`` are dot-stuffed.

        Args:
            msg: the message; a str must be ASCII.

        Returns:
            The reply to the end of the data.

        Raises:
            SMTPDataError: DATA got no 354.
        """
        self.putcmd("data")
        code, reply = self.getreply()
        if self.debuglevel > 0:
            self._print_debug("data:", (code, reply))
        if code != 354:
            raise SMTPDataError(code, reply)
        self.send(encode_data(_message_bytes(msg)))
        code, reply = self.getreply()
        if self.debuglevel > 0:
            self._print_debug("data:", (code, reply))
        return code, reply

    def verify(self, address: str) -> tuple[int, bytes]:
        """Send VRFY.

        Args:
            address: the address (a display name is dropped).

        Returns:
            The reply's ``(code, text)``.

        Raises:
            InvalidAddress: ``address`` holds CR, LF or NUL (a ValueError).
        """
        _check_address(address)
        self.putcmd("vrfy", _address_only(address))
        return self.getreply()

    vrfy = verify

    def expn(self, address: str) -> tuple[int, bytes]:
        """Send EXPN.

        Args:
            address: the list (a display name is dropped).

        Returns:
            The reply's ``(code, text)``.

        Raises:
            InvalidAddress: ``address`` holds CR, LF or NUL (a ValueError).
        """
        _check_address(address)
        self.putcmd("expn", _address_only(address))
        return self.getreply()

    def ehlo_or_helo_if_needed(self) -> None:
        """Greet with EHLO, then HELO if EHLO fails, unless this session already greeted.

        Raises:
            SMTPHeloError: HELO failed as well.
        """
        if self.helo_resp is not None or self.ehlo_resp is not None:
            return
        if 200 <= self.ehlo()[0] <= 299:
            return
        code, resp = self.helo()
        if not 200 <= code <= 299:
            raise SMTPHeloError(code, resp)

    def auth(
        self,
        mechanism: str,
        authobject: Callable[..., str | None],
        *,
        initial_response_ok: bool = True,
    ) -> tuple[int, bytes]:
        """Run one SASL exchange.

        Args:
            mechanism: the mechanism name.
            authobject: called with no argument for the initial response (None
                for none), then with each decoded challenge; returns ASCII text.
            initial_response_ok: send the initial response with the AUTH command.

        Returns:
            The final ``(code, text)`` (235, or 503 when already authenticated).

        Raises:
            SMTPAuthenticationError: the server refused.
            SMTPException: the server kept challenging.
        """
        mechanism = mechanism.upper()
        initial = authobject() if initial_response_ok else None
        try:
            if initial is not None:
                self._hide_sent = f"'AUTH {mechanism} <credentials hidden>\\r\\n'"
                code, resp = self.docmd("AUTH", f"{mechanism} {_b64(initial)}")
                self._auth_challenge_count = 1
            else:
                code, resp = self.docmd("AUTH", mechanism)
                self._auth_challenge_count = 0
            self._hide_sent = "'<credentials hidden>\\r\\n'"
            while code == 334:
                self._auth_challenge_count += 1
                answer = authobject(base64.decodebytes(resp))
                code, resp = self.docmd(_b64(answer or ""))
                if self._auth_challenge_count > _MAXCHALLENGE:
                    raise SMTPException(
                        "Server AUTH mechanism infinite loop. Last response: " + repr((code, resp))
                    )
        finally:
            self._hide_sent = None
        if code in (235, 503):
            return code, resp
        raise SMTPAuthenticationError(code, resp)

    def auth_cram_md5(self, challenge: bytes | None = None) -> str | None:
        """The CRAM-MD5 answer for ``user``/``password``.

        Args:
            challenge: the decoded challenge; None asks for the initial response.

        Returns:
            ``user`` and the HMAC-MD5 hex digest; None when there is no challenge.
        """
        if challenge is None:
            return None
        digest = hmac.new(self.password.encode("ascii"), challenge, "md5").hexdigest()
        return f"{self.user} {digest}"

    def auth_plain(self, challenge: bytes | None = None) -> str:
        """The PLAIN answer for ``user``/``password``.

        Args:
            challenge: unused.

        Returns:
            ``NUL user NUL password``.
        """
        return f"\0{self.user}\0{self.password}"

    def auth_login(self, challenge: bytes | None = None) -> str:
        """The LOGIN answers for ``user``/``password``: the user name, then the password.

        Args:
            challenge: the decoded challenge; None for the initial response.

        Returns:
            The user name for the first prompt, the password after.
        """
        if challenge is None or self._auth_challenge_count < 2:
            return self.user
        return self.password

    def login(
        self, user: str, password: str, *, initial_response_ok: bool = True
    ) -> tuple[int, bytes]:
        """Authenticate with the first of CRAM-MD5, PLAIN, LOGIN that the server offers.

        Args:
            user: the user name.
            password: the password.
            initial_response_ok: send initial responses with the AUTH command.

        Returns:
            The final ``(code, text)``.

        Raises:
            SMTPNotSupportedError: no AUTH extension.
            SMTPException: no usable mechanism.
            SMTPAuthenticationError: every mechanism tried was refused.
        """
        self.ehlo_or_helo_if_needed()
        if not self.has_extn("auth"):
            raise SMTPNotSupportedError("SMTP AUTH extension not supported by server.")
        offered = self.esmtp_features["auth"].split()
        usable = [name for name in ("CRAM-MD5", "PLAIN", "LOGIN") if name in offered]
        if not usable:
            raise SMTPException("No suitable authentication method found.")
        self.user, self.password = user, password
        failure: SMTPAuthenticationError | None = None
        for name in usable:
            method = getattr(self, "auth_" + name.lower().replace("-", "_"))
            try:
                code, resp = self.auth(name, method, initial_response_ok=initial_response_ok)
            except SMTPAuthenticationError as exc:
                failure = exc
                continue
            if code in (235, 503):
                return code, resp
        assert failure is not None
        raise failure

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

    def sendmail(
        self,
        from_addr: str,
        to_addrs: str | Sequence[str],
        msg: str | bytes,
        mail_options: Sequence[str] = (),
        rcpt_options: Sequence[str] = (),
    ) -> dict[str, tuple[int, bytes]]:
        """Send one message: MAIL, one RCPT per recipient, DATA.

        Args:
            from_addr: the envelope sender.
            to_addrs: the recipients (a str is one recipient).
            msg: the message; a str must be ASCII.
            mail_options: ESMTP parameters for MAIL.
            rcpt_options: ESMTP parameters for every RCPT.

        Returns:
            The refused recipients: address -> ``(code, text)``.

        Raises:
            SMTPHeloError: the greeting failed.
            SMTPSenderRefused: MAIL was refused.
            SMTPRecipientsRefused: every recipient was refused (nothing sent).
            SMTPDataError: the message was refused.
            SMTPNotSupportedError: SMTPUTF8 asked for and not offered.
            InvalidAddress: an address holds CR, LF or NUL (a ValueError); nothing is sent.
        """
        self.ehlo_or_helo_if_needed()
        recipients = [to_addrs] if isinstance(to_addrs, str) else list(to_addrs)
        for address in (from_addr, *recipients):
            _check_address(address)  # all of them before MAIL: no half-open transaction
        body = _message_bytes(msg)
        params: list[str] = []
        if self.does_esmtp:
            if self.has_extn("size"):
                params.append(f"size={len(body)}")
            params.extend(mail_options)
        code, resp = self.mail(from_addr, params)
        if code != 250:
            self._after_failure(code)
            raise SMTPSenderRefused(code, resp, from_addr)
        refused: dict[str, tuple[int, bytes]] = {}
        for recipient in recipients:
            code, resp = self.rcpt(recipient, rcpt_options)
            if code not in (250, 251):
                refused[recipient] = (code, resp)
            if code == 421:
                self.close()
                raise SMTPRecipientsRefused(refused)
        if len(refused) == len(recipients):
            self._rset()
            raise SMTPRecipientsRefused(refused)
        code, resp = self.data(body)
        if code != 250:
            self._after_failure(code)
            raise SMTPDataError(code, resp)
        return refused

    def _after_failure(self, code: int) -> None:
        if code == 421:
            self.close()
        else:
            self._rset()

    def send_message(
        self,
        msg: Any,
        from_addr: str | None = None,
        to_addrs: str | Sequence[str] | None = None,
        mail_options: Sequence[str] = (),
        rcpt_options: Sequence[str] = (),
    ) -> dict[str, tuple[int, bytes]]:
        """Send an :class:`email.message.Message`, taking the envelope from its headers.

        With one ``Resent-Date`` header the ``Resent-`` headers give the
        envelope; Bcc and Resent-Bcc are never transmitted. Non-ASCII
        addresses need SMTPUTF8: the message is then serialised as UTF-8 with
        ``SMTPUTF8`` and ``BODY=8BITMIME``.

        Args:
            msg: the message.
            from_addr: the envelope sender; from Sender/From when None.
            to_addrs: the recipients; from To, Bcc and Cc when None.
            mail_options: ESMTP parameters for MAIL.
            rcpt_options: ESMTP parameters for every RCPT.

        Returns:
            The refused recipients, as :meth:`sendmail`.

        Raises:
            ValueError: more than one Resent- block.
            SMTPNotSupportedError: non-ASCII addresses without SMTPUTF8.
        """
        self.ehlo_or_helo_if_needed()
        resent = msg.get_all("Resent-Date")
        if resent is None:
            prefix = ""
        elif len(resent) == 1:
            prefix = "Resent-"
        else:
            raise ValueError("message has more than one 'Resent-' header block")
        if from_addr is None:
            field = prefix + "Sender" if prefix + "Sender" in msg else prefix + "From"
            from_addr = email.utils.getaddresses([msg[field]])[0][1]
        if to_addrs is None:
            fields = [msg[prefix + name] for name in ("To", "Bcc", "Cc")]
            to_addrs = [pair[1] for pair in email.utils.getaddresses([f for f in fields if f])]
        outgoing = copy.copy(msg)
        del outgoing["Bcc"]
        del outgoing["Resent-Bcc"]
        addresses = [to_addrs] if isinstance(to_addrs, str) else list(to_addrs)
        international = not "".join([from_addr, *addresses]).isascii()
        if international and not self.has_extn("smtputf8"):
            raise SMTPNotSupportedError(
                "One or more source or delivery addresses require"
                " internationalized email support, but the server"
                " does not advertise the required SMTPUTF8 capability"
            )
        with io.BytesIO() as buffer:
            if international:
                generator = email.generator.BytesGenerator(
                    buffer, policy=msg.policy.clone(utf8=True)
                )
                mail_options = (*mail_options, "SMTPUTF8", "BODY=8BITMIME")
            else:
                generator = email.generator.BytesGenerator(buffer)
            generator.flatten(outgoing, linesep="\r\n")
            flat = buffer.getvalue()
        return self.sendmail(from_addr, to_addrs, flat, mail_options, rcpt_options)

    def close(self) -> None:
        """Close the connection (no QUIT is sent)."""
        try:
            file, self.file = self.file, None
            if file:
                file.close()
        finally:
            sock, self.sock = self.sock, None
            if sock:
                sock.close()

    def quit(self) -> tuple[int, bytes]:
        """Send QUIT, forget the session's greeting, and close.

        Returns:
            The reply to QUIT.
        """
        result = self.docmd("quit")
        self.ehlo_resp = self.helo_resp = None
        self.esmtp_features = {}
        self.does_esmtp = False
        self.close()
        return result


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("ascii")).decode("ascii")


def _parse_features(reply: bytes) -> dict[str, str]:
    """The ``esmtp_features`` mapping from an EHLO reply's text (first line skipped)."""
    features: dict[str, str] = {}
    for line in reply.decode("latin-1").split("\n")[1:]:
        old_auth = OLDSTYLE_AUTH.match(line)
        if old_auth:
            features["auth"] = features.get("auth", "") + " " + old_auth.group(1)
            continue
        match = _FEATURE.match(line)
        if not match:
            continue
        name = match.group("feature").lower()
        params = line[match.end("feature") :].strip()
        if name == "auth":
            features["auth"] = features.get("auth", "") + " " + params
        else:
            features[name] = params
    return features


def _default_local_hostname() -> str:
    fqdn: str = socket.getfqdn()
    if "." in fqdn:
        return fqdn
    address = "127.0.0.1"
    with contextlib.suppress(socket.gaierror):
        address = socket.gethostbyname(socket.gethostname())
    return f"[{address}]"


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
