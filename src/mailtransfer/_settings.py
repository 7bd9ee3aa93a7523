"""Mailer settings: from a URL (``smtp://user:pass@host:587?pool_size=8``) and keywords."""

from __future__ import annotations

import dataclasses
import math
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict
from urllib.parse import parse_qsl, unquote, urlsplit

from ._direct._options import DirectOptions
from ._direct._url import is_direct_url, parse_direct_url
from ._pooling import Limiter
from .auth import Password
from .config import PoolLimits, Timeouts
from .errors import UsageError
from .retry import RetryPolicy
from .tls import ImplicitTLS, NoTLS, Opportunistic, StartTLS, TLSPolicy, create_ssl_context

__all__ = ["Endpoint", "MailerConfig", "MailerOptions", "URLSettings", "parse_url"]

_DEFAULT_PORTS = {"smtp": 587, "smtps": 465, "lmtp": 24}
_TLS_NAMES: dict[str, type[TLSPolicy]] = {
    "none": NoTLS,
    "opportunistic": Opportunistic,
    "starttls": StartTLS,
    "implicit": ImplicitTLS,
}


class MailerOptions(TypedDict, total=False):
    """The keyword options of :class:`~mailtransfer.Mailer` and :class:`~mailtransfer.AsyncMailer`.

    Every key is optional; a key given here wins over the same setting in the URL.
    Type checkers see these as the mailers' keyword arguments, so a misspelt
    option is caught before the program runs.
    """

    host: str | None
    """The server, when no URL is given."""
    port: int | None
    """The server's port (default 587, or 465 with implicit TLS)."""
    tls: TLSPolicy | None
    """A TLS policy; the default is required STARTTLS, implicit TLS on 465."""
    credentials: object | None
    """:class:`~mailtransfer.auth.Password`, :class:`~mailtransfer.auth.OAuth2` or your own."""
    username: str | None
    """With ``password``: shorthand for ``credentials=Password(username, password)``."""
    password: str | None
    """The password that goes with ``username``."""
    lmtp: bool
    """Speak LMTP (LHLO, a reply per recipient after DATA)."""
    allow_insecure_auth: bool
    """Allow AUTH over a connection without TLS (a trusted local relay only)."""
    mechanisms: Sequence[str] | None
    """SASL mechanisms to consider, strongest first; default: every one the credentials allow."""
    local_hostname: str | None
    """The name given in EHLO (default: this host's fully qualified name)."""
    timeouts: Timeouts | None
    """:class:`~mailtransfer.Timeouts` for every connection."""
    limits: PoolLimits | None
    """:class:`~mailtransfer.PoolLimits` for each relay's pool."""
    retry: RetryPolicy | None
    """:class:`~mailtransfer.RetryPolicy` for transient failures."""
    signers: Sequence[Any]
    """DKIM (or other) signers applied to every message."""
    strict: bool
    """Raise :class:`~mailtransfer.errors.PartialDelivery` when any recipient is refused."""
    rate_limit: float | None
    """At most this many messages per second per relay."""
    limiter: Limiter | None
    """A pacing hook asked before each message, e.g. a
    :class:`~mailtransfer.deliverability.WarmupLimiter` (shared by every relay)."""
    use_bdat: bool
    """Send bodies with BDAT when the server offers CHUNKING."""
    pipeline_messages: bool
    """In ``send_many``, send each message's envelope in the same write as the end of the
    one before, when the server offers PIPELINING (default True)."""
    source_address: tuple[str, int] | None
    """Bind outgoing connections to this ``(host, port)``."""
    cooldown: float
    """Seconds a relay that failed to connect is tried last (default 30)."""
    deferral: float
    """Seconds a relay opens no new connection after a 421 or a 4.7.x deferral (default 5)."""
    transport: Literal["relay", "direct"]
    """``"relay"`` (the default: send through the configured server) or ``"direct"``
    (deliver to each recipient domain's MX hosts; see ``docs/direct-delivery.md``)."""
    direct: DirectOptions | None
    """Direct delivery's settings (:class:`~mailtransfer.DirectOptions`); implies direct."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint:
    """One server to send through, with everything that identifies a pooled session.

    Two endpoints are equal only if host, port, TLS policy, credentials and
    protocol all match, so one user's authenticated session is never reused
    for another.
    """

    host: str
    port: int
    tls: TLSPolicy | None = None
    credentials: object | None = field(default=None, repr=False)
    lmtp: bool = False
    allow_insecure_auth: bool = False
    mechanisms: tuple[str, ...] | None = None

    def __str__(self) -> str:
        return f"{'lmtp' if self.lmtp else 'smtp'}://{self.host}:{self.port}"


@dataclass(frozen=True, slots=True, kw_only=True)
class URLSettings:
    """What a URL configures: the endpoint and, optionally, pool limits and timeouts."""

    endpoint: Endpoint
    limits: dict[str, Any]
    timeouts: dict[str, Any]
    local_hostname: str | None = None


def parse_url(url: str) -> URLSettings:
    """Parse a mailer URL.

    Schemes: ``smtp://`` (STARTTLS required, port 587 by default), ``smtps://``
    (implicit TLS, port 465), ``lmtp://`` (LMTP, port 24, no TLS unless asked).
    The user name and password are percent-decoded (``s%40cret`` is ``s@cret``).
    Query options: ``tls`` (none, opportunistic, starttls, implicit), ``cafile``,
    ``pool_size``, ``max_messages``, ``idle_timeout``, ``timeout`` (every
    phase), ``connect_timeout``, ``greeting_timeout``, ``command_timeout``,
    ``data_timeout``, ``local_hostname``, ``mechanisms`` (comma-separated),
    ``allow_insecure_auth`` (true/false). Each option may appear once.

    Example:
        >>> parse_url("smtp://alice:s%40cret@mail.example.org?pool_size=4").endpoint.port
        587

    Raises:
        UsageError: an unknown scheme or option, a repeated option, a path, or a
            bad value (the message names it; it never repeats the password).
    """
    if not isinstance(url, str):
        raise UsageError(f"the mailer URL must be a str, got {type(url).__name__}")
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
        explicit_port = parts.port
    except ValueError:
        # The text of urllib's error may quote the URL, password included: never show it.
        raise UsageError(
            "the mailer URL is malformed (check the port, and percent-encode any '@', ':',"
            " '/', '?' or '#' in the user name or password)"
        ) from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise UsageError(
            f"unknown mailer URL scheme {scheme!r}: use smtp://, smtps:// or lmtp://"
            " (or direct:// for delivery straight to the recipients' MX hosts)"
        )
    if not hostname:
        raise UsageError("the mailer URL has no host name")
    if explicit_port == 0:
        raise UsageError("the mailer URL port must be from 1 to 65535, got 0")
    port = explicit_port if explicit_port is not None else _DEFAULT_PORTS[scheme]
    if parts.path not in ("", "/") or parts.fragment:
        raise UsageError(
            "the mailer URL must not have a path or a fragment; put options in the query"
            " (?pool_size=4), and percent-encode '/' and '#' in the password"
        )
    options: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key in options:
            raise UsageError(f"the mailer URL option {key} is given more than once")
        options[key] = value
    credentials = None
    if parts.username is not None or parts.password is not None:
        username = unquote(parts.username or "")
        if not username:
            raise UsageError("the mailer URL has an empty user name before '@'")
        if not parts.password:
            raise UsageError("the mailer URL has a user name but no password (user:password@)")
        credentials = Password(username, unquote(parts.password))
    tls = _tls_from(scheme, options)
    limits: dict[str, Any] = {}
    timeouts: dict[str, Any] = {}
    mechanisms = None
    allow_insecure = False
    local_hostname = None
    for key, value in options.items():
        if key in ("tls", "cafile"):
            continue
        if key == "pool_size":
            limits["max_connections"] = _number(key, value, int)
        elif key == "max_messages":
            limits["max_messages_per_connection"] = _number(key, value, int)
        elif key == "idle_timeout":
            limits["idle_timeout"] = _number(key, value, float)
        elif key == "timeout":
            seconds = _number(key, value, float)
            timeouts.update(connect=seconds, greeting=seconds, command=seconds, data=seconds)
        elif key in ("connect_timeout", "greeting_timeout", "command_timeout", "data_timeout"):
            timeouts[key.removesuffix("_timeout")] = _number(key, value, float)
        elif key == "local_hostname":
            local_hostname = value
        elif key == "mechanisms":
            mechanisms = tuple(m.strip().upper() for m in value.split(",") if m.strip())
        elif key == "allow_insecure_auth":
            allow_insecure = _boolean(key, value)
        else:
            raise UsageError(f"unknown mailer URL option {key!r}")
    # Validate early, naming the URL option rather than the class field.
    try:
        PoolLimits(**limits)
        Timeouts(**timeouts)
    except ValueError as exc:
        raise UsageError(f"the mailer URL has a bad option value: {exc}") from None
    endpoint = Endpoint(
        host=hostname,
        port=port,
        tls=tls,
        credentials=credentials,
        lmtp=scheme == "lmtp",
        allow_insecure_auth=allow_insecure,
        mechanisms=mechanisms,
    )
    return URLSettings(
        endpoint=endpoint, limits=limits, timeouts=timeouts, local_hostname=local_hostname
    )


def _tls_from(scheme: str, options: dict[str, str]) -> TLSPolicy:
    name = options.get("tls")
    if name is None:
        name = {"smtp": "starttls", "smtps": "implicit", "lmtp": "none"}[scheme]
    policy_type = _TLS_NAMES.get(name.lower())
    if policy_type is None:
        raise UsageError(f"tls must be one of {', '.join(_TLS_NAMES)}, got {name!r}")
    cafile = options.get("cafile")
    if cafile is not None and policy_type is NoTLS:
        raise UsageError("the mailer URL option cafile needs TLS, but tls is none")
    try:
        context = create_ssl_context(cafile=cafile) if cafile else None
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(
            f"the mailer URL option cafile cannot be loaded ({type(exc).__name__})"
        ) from None
    return policy_type(context=context)


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _boolean(key: str, value: str) -> bool:
    lowered = value.lower()
    if lowered not in _TRUE + _FALSE:
        raise UsageError(f"the mailer URL option {key} must be true or false, got {value!r}")
    return lowered in _TRUE


def _number(key: str, value: str, kind: type[int] | type[float]) -> Any:
    try:
        number = kind(value)
    except ValueError:
        raise UsageError(f"the mailer URL option {key} must be a number, got {value!r}") from None
    if not math.isfinite(number) or number < 0:
        raise UsageError(f"the mailer URL option {key} must be a finite number >= 0, got {value!r}")
    return number


@dataclass(frozen=True, slots=True, kw_only=True)
class MailerConfig:
    """Everything a mailer needs, resolved once from a URL and keyword arguments.

    Attributes:
        endpoints: the relays, tried round-robin with failover.
        timeouts: deadlines for every connection.
        limits: the limits of each relay's pool.
        retry: how transient failures are retried.
        signers: DKIM (or other) signers applied to every message.
        strict: any refused recipient raises ``PartialDelivery``.
        local_hostname: the EHLO name (default: this machine's FQDN).
        rate_limit: at most this many messages per second per relay.
        limiter: a pacing hook asked before each message (a warm-up schedule).
        use_bdat: send bodies with BDAT when the server offers CHUNKING.
        pipeline_messages: in ``send_many``, each message's envelope shares a write
            with the end of the one before (RFC 2920), when the server offers PIPELINING.
        source_address: bind outgoing connections to this ``(host, port)``.
        cooldown: seconds a relay that failed at connect or greeting is tried last.
        deferral: seconds a relay's pool opens no new connection after a 421 or
            a rate or policy deferral (4.7.x): the server asked us to slow down.
        direct: direct delivery's settings; set when delivering to MX hosts
            (``transport="direct"``), and then ``endpoints`` is empty.
    """

    endpoints: tuple[Endpoint, ...]
    timeouts: Timeouts
    limits: PoolLimits
    retry: RetryPolicy
    signers: tuple[Any, ...] = ()
    strict: bool = False
    local_hostname: str | None = None
    rate_limit: float | None = None
    limiter: Limiter | None = None
    use_bdat: bool = False
    pipeline_messages: bool = True
    source_address: tuple[str, int] | None = None
    cooldown: float = 30.0
    deferral: float = 5.0
    direct: DirectOptions | None = None

    @classmethod
    def resolve(
        cls,
        url: str | Sequence[str] | None = None,
        *,
        host: str | None = None,
        port: int | None = None,
        tls: TLSPolicy | None = None,
        credentials: object | None = None,
        username: str | None = None,
        password: str | None = None,
        lmtp: bool = False,
        allow_insecure_auth: bool = False,
        mechanisms: Sequence[str] | None = None,
        local_hostname: str | None = None,
        timeouts: Timeouts | None = None,
        limits: PoolLimits | None = None,
        retry: RetryPolicy | None = None,
        signers: Sequence[Any] = (),
        strict: bool = False,
        rate_limit: float | None = None,
        limiter: Limiter | None = None,
        use_bdat: bool = False,
        pipeline_messages: bool = True,
        source_address: tuple[str, int] | None = None,
        cooldown: float = 30.0,
        deferral: float = 5.0,
        transport: Literal["relay", "direct"] = "relay",
        direct: DirectOptions | None = None,
    ) -> MailerConfig:
        """Combine a URL (or a list of relay URLs) with keyword arguments; keywords win.

        Raises:
            UsageError: neither a URL nor a host, both, conflicting credentials,
                or a negative or zero rate, cool-down or deferral.
        """
        if url is not None and host is not None:
            raise UsageError("give either a URL or host=, not both")
        if transport not in ("relay", "direct"):
            raise UsageError(f"transport must be 'relay' or 'direct', got {transport!r}")
        if transport == "direct" or direct is not None or is_direct_url(url):
            return _direct_config(
                url,
                host=host,
                direct=direct,
                timeouts=timeouts,
                retry=retry,
                signers=signers,
                strict=strict,
                local_hostname=local_hostname,
                use_bdat=use_bdat,
                source_address=source_address,
            )
        if rate_limit is not None and not (math.isfinite(rate_limit) and rate_limit > 0):
            raise UsageError(
                "rate_limit must be a positive number of messages per second or None,"
                f" got {rate_limit!r}"
            )
        for name, value in (("cooldown", cooldown), ("deferral", deferral)):
            if not (math.isfinite(value) and value >= 0):
                raise UsageError(f"{name} must be a finite number of seconds >= 0, got {value!r}")
        if credentials is not None and username is not None:
            raise UsageError("give either credentials= or username=/password=, not both")
        if username is not None:
            credentials = Password(username, password or "")
        limit_args: dict[str, Any] = {}
        timeout_args: dict[str, Any] = {}
        endpoints: list[Endpoint] = []
        if url is not None:
            urls = [url] if isinstance(url, str) else list(url)
            if port is not None and len(urls) > 1:
                raise UsageError("port= applies to a single URL; give each relay URL its port")
            for item in urls:
                settings = parse_url(item)
                endpoint = settings.endpoint
                changes: dict[str, Any] = {}
                if port is not None:
                    changes["port"] = port
                if lmtp:
                    changes["lmtp"] = True
                if tls is not None:
                    changes["tls"] = tls
                if credentials is not None:
                    changes["credentials"] = credentials
                if mechanisms is not None:
                    changes["mechanisms"] = tuple(mechanisms)
                if allow_insecure_auth:
                    changes["allow_insecure_auth"] = True
                endpoints.append(dataclasses.replace(endpoint, **changes))
                limit_args.update(settings.limits)
                timeout_args.update(settings.timeouts)
                local_hostname = local_hostname or settings.local_hostname
            if not endpoints:
                raise UsageError("the list of relay URLs is empty")
            endpoints = list(dict.fromkeys(endpoints))  # a relay listed twice is one relay
        elif host is not None:
            endpoints.append(
                Endpoint(
                    host=host,
                    port=port if port is not None else (24 if lmtp else 587),
                    tls=tls,
                    credentials=credentials,
                    lmtp=lmtp,
                    allow_insecure_auth=allow_insecure_auth,
                    mechanisms=tuple(mechanisms) if mechanisms else None,
                )
            )
        else:
            raise UsageError(
                "a mailer needs a URL (e.g. 'smtp://user:pass@host:587') or host=;"
                " Mailer.from_env() reads MAILTRANSFER_URL"
            )
        return cls(
            endpoints=tuple(endpoints),
            timeouts=timeouts or Timeouts(**timeout_args),
            limits=limits or PoolLimits(**limit_args),
            retry=retry or RetryPolicy(),
            signers=tuple(signers),
            strict=strict,
            local_hostname=local_hostname,
            rate_limit=rate_limit,
            limiter=limiter,
            use_bdat=use_bdat,
            pipeline_messages=pipeline_messages,
            source_address=source_address,
            cooldown=cooldown,
            deferral=deferral,
        )

    def connection_arguments(self, endpoint: Endpoint) -> dict[str, Any]:
        """Keyword arguments for ``SyncConnection`` / ``AsyncConnection`` to ``endpoint``."""
        return {
            "host": endpoint.host,
            "port": endpoint.port,
            "tls": endpoint.tls,
            "credentials": endpoint.credentials,
            "mechanisms": endpoint.mechanisms,
            "allow_insecure_auth": endpoint.allow_insecure_auth,
            "local_hostname": self.local_hostname,
            "timeouts": self.timeouts,
            "source_address": self.source_address,
            "lmtp": endpoint.lmtp,
        }


def _direct_config(
    url: object,
    *,
    host: str | None,
    direct: DirectOptions | None,
    timeouts: Timeouts | None,
    retry: RetryPolicy | None,
    signers: Sequence[Any],
    strict: bool,
    local_hostname: str | None,
    use_bdat: bool,
    source_address: tuple[str, int] | None,
) -> MailerConfig:
    """A configuration for direct delivery (``transport="direct"`` or ``direct://``)."""
    if host is not None or (url is not None and not is_direct_url(url)):
        raise UsageError("direct delivery finds the servers itself: give no host= or smtp:// URL")
    direct_args: dict[str, Any] = {}
    url_args: dict[str, Any] = {}
    if url is not None:
        direct_args, url_args = parse_direct_url(str(url))
    options = direct or DirectOptions()
    if direct_args or "dns_timeout" in url_args:
        changes = dict(direct_args)
        if "dns_timeout" in url_args:
            from .dns import Resolver  # noqa: PLC0415

            base = options.resolver or Resolver()
            changes["resolver"] = dataclasses.replace(base, timeout=url_args["dns_timeout"])
        options = dataclasses.replace(options, **changes)
    if timeouts is None and "timeout" in url_args:
        seconds = url_args["timeout"]
        timeouts = Timeouts(connect=seconds, greeting=seconds, command=seconds, data=seconds)
    return MailerConfig(
        endpoints=(),
        timeouts=timeouts or Timeouts(),
        limits=PoolLimits(),
        retry=retry or RetryPolicy(),
        signers=tuple(signers),
        strict=strict,
        local_hostname=local_hostname or url_args.get("local_hostname"),
        use_bdat=use_bdat,
        source_address=source_address,
        direct=options,
    )
