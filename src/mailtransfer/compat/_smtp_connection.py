"""The bottom layer of the smtplib drop-in's ``SMTP``: one command line out, one reply in.

:class:`_Connection` holds the session state every layer reads (socket,
reader, greeting replies, extensions) and the standard low-level methods:
``send``, ``putcmd``, ``getreply`` (smtplib's own reply reading, line by
line, see :mod:`mailtransfer.compat.smtplib`), ``docmd``, ``close``,
``quit`` and the debug output. Opening the socket is not here: it stays in
:mod:`mailtransfer.compat.smtplib`, where ``smtplib.socket`` is looked up.
"""

from __future__ import annotations

import datetime
import sys
from typing import Any

from ._errors import SMTPResponseException, SMTPServerDisconnected
from ._smtp_text import CRLF, _check_command

_MAXLINE = 8192


class _Connection:
    """The state of one ``SMTP`` session and the methods that move its lines."""

    debuglevel = 0
    sock: Any = None
    file: Any = None
    helo_resp: bytes | None = None
    ehlo_resp: bytes | None = None
    does_esmtp = False
    _hide_sent: str | None = None
    """While AUTH runs: what the debug output shows instead of the line sent."""
    # Set by SMTP.__init__ (mailtransfer.compat.smtplib); declared for the layers above.
    _host: str
    local_hostname: str
    esmtp_features: dict[str, str]
    command_encoding: str
    _auth_challenge_count: int

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
