"""The smtplib drop-in's ``SMTP.sendmail`` and ``SMTP.send_message``.

:class:`_Sending` runs a whole transaction (MAIL, one RCPT per recipient,
DATA) with every address checked before MAIL, and takes the envelope of an
:class:`email.message.Message` from its headers (``Resent-`` blocks, Bcc
never transmitted, SMTPUTF8 for non-ASCII addresses).
"""

from __future__ import annotations

import copy
import email.generator
import email.utils
import io
from collections.abc import Sequence
from typing import Any

from ._errors import SMTPDataError, SMTPNotSupportedError, SMTPRecipientsRefused, SMTPSenderRefused
from ._smtp_commands import _Commands
from ._smtp_text import _check_address, _message_bytes


class _Sending(_Commands):
    """The whole-message methods of ``SMTP``."""

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
