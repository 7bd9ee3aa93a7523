"""The smtplib drop-in's ``SMTP`` commands, one method per SMTP verb.

:class:`_Commands` adds HELO/EHLO (and the ``esmtp_features`` they record),
HELP, RSET, NOOP, MAIL, RCPT, DATA, VRFY and EXPN to
:class:`~mailtransfer.compat._smtp_connection._Connection`, each checking
its address for CR, LF and NUL before anything is sent. The AUTH, STARTTLS
and sending layers build on it.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Sequence

from ..protocol import encode_data
from ._errors import SMTPDataError, SMTPHeloError, SMTPNotSupportedError, SMTPServerDisconnected
from ._smtp_connection import _Connection
from ._smtp_text import _address_only, _check_address, _message_bytes, _parse_features, quoteaddr

_LOWERCASE_VERBS = sys.version_info >= (3, 12)


class _Commands(_Connection):
    """The one-command methods of ``SMTP``."""

    ehlo_msg = "ehlo"

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
