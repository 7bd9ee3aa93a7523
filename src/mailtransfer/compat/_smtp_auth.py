"""The smtplib drop-in's ``SMTP`` authentication: ``auth``, ``login`` and three mechanisms.

:class:`_Auth` runs one SASL exchange (``auth``, at most five challenges,
the credentials hidden from the debug output), answers CRAM-MD5, PLAIN and
LOGIN for ``user``/``password``, and ``login`` tries those the server offers
in the standard module's order.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Callable

from ._errors import SMTPAuthenticationError, SMTPException, SMTPNotSupportedError
from ._smtp_commands import _Commands

_MAXCHALLENGE = 5


class _Auth(_Commands):
    """The AUTH methods of ``SMTP``."""

    user: str
    password: str

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


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("ascii")).decode("ascii")
