"""A Django email backend that sends through a shared, pooled :class:`~mailtransfer.Mailer`.

Set ``EMAIL_BACKEND = "mailtransfer.contrib.django.EmailBackend"``. The backend reads the
same settings as Django's SMTP backend (``EMAIL_HOST``, ``EMAIL_PORT``, ``EMAIL_HOST_USER``,
``EMAIL_HOST_PASSWORD``, ``EMAIL_USE_TLS``, ``EMAIL_USE_SSL``, ``EMAIL_TIMEOUT``,
``EMAIL_SSL_CERTFILE``, ``EMAIL_SSL_KEYFILE``) and mailtransfer's own:

- ``MAILTRANSFER_URL``: a mailer URL (or a list of relay URLs); when set, it describes
  the server and the ``EMAIL_HOST``-family settings are not read.
- ``MAILTRANSFER_POOL_SIZE``: the most connections to each relay (default 8).
- ``MAILTRANSFER_OPTIONS``: a dict of :class:`~mailtransfer.MailerOptions` (``signers``
  for DKIM, ``retry``, ``rate_limit``, ``limits``, ``tls``, ``allow_insecure_auth``...);
  it wins over everything above.

Strategy: Django makes a backend object per ``send_mail()`` call, so the pool cannot
live in the backend. Backends with the same configuration share one ``Mailer`` from a
module-level registry, keyed by the raw settings (never by objects built from them), so
connections are reused across calls and threads; :func:`close_shared_mailers` (also run
at exit) QUITs them. ``close()`` on a backend leaves the shared pool open, as closing it
would defeat the pool.

Each message sent gets ``mailtransfer_result`` (a :class:`~mailtransfer.SendResult`,
with the per-recipient refusals) or ``mailtransfer_error`` (the typed error) as an
attribute, so partial refusals stay visible although Django counts the message as sent.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Hashable, Sequence
from typing import Any

try:
    from django.conf import settings
    from django.core.mail.backends.base import BaseEmailBackend
except ImportError as _exc:  # pragma: no cover - exercised only without Django
    raise ImportError(
        "mailtransfer.contrib.django needs Django: pip install 'mailtransfer[django]'"
    ) from _exc

from .._message._addresses import coerce_address
from .._sync.mailer import Mailer
from ..config import PoolLimits, Timeouts
from ..errors import MailTransferError, UsageError
from ..results import SendResult
from ..tls import ImplicitTLS, Opportunistic, StartTLS, create_ssl_context

__all__ = ["EmailBackend", "close_shared_mailers", "shared_mailer_count"]

logger = logging.getLogger("mailtransfer.contrib.django")

_registry_lock = threading.Lock()
_mailers: dict[Hashable, Mailer] = {}


def close_shared_mailers() -> None:
    """QUIT and forget every mailer the backends share; the next send opens new ones.

    Runs at interpreter exit. Call it yourself after changing mail settings at run time,
    or in a test's teardown. Do not call it while another thread is sending.
    """
    with _registry_lock:
        mailers = list(_mailers.values())
        _mailers.clear()
    for mailer in mailers:
        mailer.close()


def shared_mailer_count() -> int:
    """How many shared mailers (one per distinct configuration) are open."""
    with _registry_lock:
        return len(_mailers)


atexit.register(close_shared_mailers)


def _freeze(value: Any) -> Hashable:
    """A hashable stand-in for a setting value; objects that do not hash count by identity."""
    if isinstance(value, dict):
        return tuple(sorted((str(k), _freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    try:
        hash(value)
    except TypeError:
        return ("id", id(value))
    return value  # type: ignore[no-any-return]


class EmailBackend(BaseEmailBackend):  # type: ignore[misc]  # Django ships no type hints
    """Django's ``EMAIL_BACKEND``, sending through a shared mailtransfer connection pool.

    Settings are Django's SMTP ones plus ``MAILTRANSFER_URL``, ``MAILTRANSFER_POOL_SIZE``
    and ``MAILTRANSFER_OPTIONS`` (see the module docs). TLS: ``EMAIL_USE_SSL`` is
    implicit TLS and ``EMAIL_USE_TLS`` required STARTTLS, both with the certificate
    verified; with neither, STARTTLS is used when the server offers it (where Django
    would send in the clear), and a login without TLS is refused unless
    ``MAILTRANSFER_OPTIONS = {"allow_insecure_auth": True}``.

    Example:
        >>> # settings.py
        >>> EMAIL_BACKEND = "mailtransfer.contrib.django.EmailBackend"
        >>> MAILTRANSFER_URL = "smtp://user:secret@mail.example.org:587?pool_size=4"

    Args:
        host: the server (default ``EMAIL_HOST``).
        port: its port (default ``EMAIL_PORT``).
        username: the login (default ``EMAIL_HOST_USER``; no login when empty).
        password: its password (default ``EMAIL_HOST_PASSWORD``).
        use_tls: required STARTTLS (default ``EMAIL_USE_TLS``).
        fail_silently: report failures only through the log and the messages'
            ``mailtransfer_error`` instead of raising.
        use_ssl: implicit TLS (default ``EMAIL_USE_SSL``).
        timeout: seconds for each phase of a session (default ``EMAIL_TIMEOUT``).
        ssl_keyfile: the client certificate's key (default ``EMAIL_SSL_KEYFILE``).
        ssl_certfile: a client certificate (default ``EMAIL_SSL_CERTFILE``).
        url: a mailer URL or a list of them (default ``MAILTRANSFER_URL``); not
            together with ``host``, ``port``, ``username`` or ``password``.
        **kwargs: accepted and ignored, as Django's backends do.

    Raises:
        UsageError: ``use_tls`` and ``use_ssl`` together, or ``url`` with ``host``.
    """

    def __init__(  # noqa: PLR0917  (Django's SMTP backend takes these positionally)
        self,
        host: str | None = None,
        port: int | None = None,
        username: str | None = None,
        password: str | None = None,
        use_tls: bool | None = None,
        fail_silently: bool = False,
        use_ssl: bool | None = None,
        timeout: float | None = None,
        ssl_keyfile: str | None = None,
        ssl_certfile: str | None = None,
        url: str | Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(fail_silently=fail_silently)
        explicit_server = any(v is not None for v in (host, port, username, password))
        self.url = getattr(settings, "MAILTRANSFER_URL", None) if url is None else url
        if url is not None and explicit_server:
            raise UsageError("give the backend either url= or host=/port=/username=/password=")
        if explicit_server and url is None:
            self.url = None  # explicit server arguments win over the MAILTRANSFER_URL setting
        self.host = host or settings.EMAIL_HOST
        self.port = port or settings.EMAIL_PORT
        self.username = settings.EMAIL_HOST_USER if username is None else username
        self.password = settings.EMAIL_HOST_PASSWORD if password is None else password
        self.use_tls = bool(settings.EMAIL_USE_TLS if use_tls is None else use_tls)
        self.use_ssl = bool(settings.EMAIL_USE_SSL if use_ssl is None else use_ssl)
        self.timeout = settings.EMAIL_TIMEOUT if timeout is None else timeout
        self.ssl_keyfile = settings.EMAIL_SSL_KEYFILE if ssl_keyfile is None else ssl_keyfile
        self.ssl_certfile = settings.EMAIL_SSL_CERTFILE if ssl_certfile is None else ssl_certfile
        if self.use_tls and self.use_ssl:
            raise UsageError(
                "EMAIL_USE_TLS and EMAIL_USE_SSL are mutually exclusive: set one of them"
            )
        self.pool_size: int | None = getattr(settings, "MAILTRANSFER_POOL_SIZE", None)
        self.options: dict[str, Any] = dict(getattr(settings, "MAILTRANSFER_OPTIONS", None) or {})
        self.mailer: Mailer | None = None

    def __repr__(self) -> str:
        where = "url" if self.url is not None else f"{self.host}:{self.port}"
        return f"<EmailBackend {where} {'open' if self.mailer else 'not open'}>"

    # -- configuration ----------------------------------------------------------------

    def _key(self) -> Hashable:
        server: tuple[Any, ...] = (
            (_freeze(self.url),)
            if self.url is not None
            else (self.host, self.port, self.username, self.password)
        )
        return (
            server,
            self.use_tls,
            self.use_ssl,
            self.timeout,
            self.ssl_certfile,
            self.ssl_keyfile,
            self.pool_size,
            _freeze(self.options),
        )

    def _mailer_arguments(self) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if self.url is None:
            options["host"] = self.host
            options["port"] = int(self.port)
            if self.username and self.password:
                options["username"] = self.username
                options["password"] = self.password
        if self.use_tls or self.use_ssl:
            context = None
            if self.ssl_certfile or self.ssl_keyfile:
                context = create_ssl_context(certfile=self.ssl_certfile, keyfile=self.ssl_keyfile)
            options["tls"] = (
                ImplicitTLS(context=context) if self.use_ssl else StartTLS(context=context)
            )
        elif self.url is None:
            options["tls"] = Opportunistic()
        if self.timeout is not None:
            options["timeouts"] = Timeouts.all(float(self.timeout))
        if self.pool_size is not None:
            options["limits"] = PoolLimits(max_connections=int(self.pool_size))
        options.update(self.options)
        return options

    def _shared_mailer(self) -> Mailer:
        key = self._key()
        with _registry_lock:
            mailer = _mailers.get(key)
            if mailer is None:
                mailer = Mailer(self.url, **self._mailer_arguments())
                _mailers[key] = mailer
            return mailer

    # -- Django's backend API ---------------------------------------------------------

    def open(self) -> bool | None:
        """Bind this backend to the shared mailer for its configuration (no I/O).

        Returns:
            True when this call bound it, False when it was bound already, None when
            the configuration is invalid and ``fail_silently`` is set.

        Raises:
            UsageError: an invalid configuration (unless ``fail_silently``).
        """
        if self.mailer is not None:
            return False
        try:
            self.mailer = self._shared_mailer()
        except MailTransferError:
            if not self.fail_silently:
                raise
            logger.exception("the mail settings are invalid; no mail is sent")
            return None
        return True

    def close(self) -> None:
        """Unbind from the shared mailer; its pooled connections stay open for the next call."""
        self.mailer = None

    def send_messages(self, email_messages: Sequence[Any]) -> int:
        """Send Django ``EmailMessage`` objects concurrently over the pool.

        Every message is attempted, even when an earlier one fails. Each gets a
        ``mailtransfer_result`` or a ``mailtransfer_error`` attribute (the other one is
        None); messages without recipients are skipped, as Django's SMTP backend does.

        Returns:
            How many messages a server accepted (for at least one recipient).

        Raises:
            MailTransferError: the first failure, after every message was attempted
                (unless ``fail_silently``).
        """
        if not email_messages:
            return 0
        if self.open() is None:
            return 0
        mailer = self.mailer
        assert mailer is not None
        items: list[dict[str, Any]] = []
        pending: list[Any] = []
        errors: list[MailTransferError] = []
        for email_message in email_messages:
            email_message.mailtransfer_result = None
            email_message.mailtransfer_error = None
            if not email_message.recipients():
                continue
            try:
                items.append(_outgoing(email_message))
            except MailTransferError as exc:
                email_message.mailtransfer_error = exc
                errors.append(exc)
                continue
            pending.append(email_message)
        outcomes: list[SendResult | MailTransferError]
        if len(items) == 1:
            item = dict(items[0])
            try:
                outcomes = [mailer.send(item.pop("message"), **item)]
            except MailTransferError as exc:
                outcomes = [exc]
        else:
            outcomes = mailer.send_many(items)
        sent = 0
        for email_message, outcome in zip(pending, outcomes, strict=True):
            if isinstance(outcome, SendResult):
                email_message.mailtransfer_result = outcome
                sent += 1
                if outcome.refused:
                    logger.warning(
                        "message %s: %d recipient(s) refused: %s",
                        outcome.message_id,
                        len(outcome.refused),
                        "; ".join(f"<{a}> {e.reply.code}" for a, e in outcome.refused.items()),
                    )
            else:
                email_message.mailtransfer_error = outcome
                errors.append(outcome)
        if errors:
            if not self.fail_silently:
                raise errors[0]
            for error in errors:
                logger.warning("a message was not sent: %s: %s", type(error).__name__, error)
        return sent


def _outgoing(email_message: Any) -> dict[str, Any]:
    """``Mailer.send`` arguments for a Django message: its exact bytes and its envelope."""
    sender = coerce_address(email_message.from_email, what="from_email").addr_spec
    recipients = [coerce_address(r, what="recipient").addr_spec for r in email_message.recipients()]
    data = email_message.message().as_bytes(linesep="\r\n")
    return {"message": data, "sender": sender, "recipients": recipients}
