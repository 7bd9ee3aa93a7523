"""The name this machine gives in EHLO."""

from __future__ import annotations

import functools
import socket

__all__ = ["local_hostname"]


@functools.lru_cache(maxsize=1)
def local_hostname() -> str:
    """This machine's FQDN, or the address literal ``[127.0.0.1]`` when it has no dotted name.

    Computed once: ``getfqdn()`` may query DNS. RFC 5321 4.1.4 asks for the FQDN
    or an address literal; a bare host name is refused by strict servers.
    """
    name = socket.getfqdn()
    if "." in name and name.isascii() and not name.endswith(".localdomain"):
        return name
    return "[127.0.0.1]"
