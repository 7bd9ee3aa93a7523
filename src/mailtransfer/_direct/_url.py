"""``direct://`` URLs: direct delivery configured by a string (``direct://?port=2525``)."""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ..errors import UsageError

__all__ = ["is_direct_url", "parse_direct_url"]

_BOOLEANS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


def is_direct_url(url: object) -> bool:
    """Whether ``url`` is a ``direct://`` URL."""
    return isinstance(url, str) and url.lower().startswith("direct://")


def parse_direct_url(url: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Parse ``direct://[?options]`` into DirectOptions and MailerConfig keyword arguments.

    Options: ``port`` (the MX port: tests and own networks only), ``helo`` (or
    ``local_hostname``), ``mta_sts`` and ``dane`` (true/false), ``timeout``
    (seconds, every SMTP phase), ``dns_timeout`` (seconds).

    Raises:
        UsageError: a host or path in the URL, an unknown or repeated option, a bad value.
    """
    parts = urlsplit(url)
    if parts.netloc or parts.path not in ("", "/") or parts.fragment:
        raise UsageError("a direct:// URL names no server: use direct:// or direct://?port=2525")
    direct: dict[str, Any] = {}
    config: dict[str, Any] = {}
    seen: set[str] = set()
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key in seen:
            raise UsageError(f"the direct:// URL option {key} is given more than once")
        seen.add(key)
        if key == "port":
            if not value.isdigit() or not 0 < int(value) < 65536:
                raise UsageError(f"the direct:// URL option port must be 1-65535, got {value!r}")
            direct["port"] = int(value)
        elif key in ("helo", "local_hostname"):
            config["local_hostname"] = value
        elif key in ("mta_sts", "dane"):
            if value.lower() not in _BOOLEANS:
                raise UsageError(f"the direct:// URL option {key} must be true or false")
            direct[key] = _BOOLEANS[value.lower()]
        elif key in ("timeout", "dns_timeout"):
            try:
                seconds = float(value)
            except ValueError:
                seconds = math.nan
            if not (math.isfinite(seconds) and seconds > 0):
                raise UsageError(f"the direct:// URL option {key} must be seconds > 0")
            config[key] = seconds
        else:
            raise UsageError(f"unknown direct:// URL option {key!r}")
    return direct, config
