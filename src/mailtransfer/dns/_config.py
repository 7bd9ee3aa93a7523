"""``Resolver``: which DNS servers to ask, and how long to wait."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Resolver"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Resolver:
    """Where and how mailtransfer asks DNS: a frozen configuration value.

    Example:
        >>> Resolver(nameservers=("127.0.0.1",), port=5353, timeout=2.0)
        Resolver(nameservers=('127.0.0.1',), port=5353, timeout=2.0)

    Attributes:
        nameservers: the servers' IP addresses; ``None`` reads the system's
            ``/etc/resolv.conf``.
        port: the servers' port (53; another one for a test or local server).
        timeout: the deadline of one lookup in seconds, retries included.
        use_tcp: ask over TCP instead of UDP.
        assume_authenticated: FOR TESTS ONLY. Treat every answer as DNSSEC-validated,
            as if the server had set the AD bit. A real deployment must leave it
            False and point ``nameservers`` at a validating resolver reached over a
            trusted path (loopback), whose AD bit DANE relies on (RFC 7672 §2.1.1).
    """

    nameservers: tuple[str, ...] | None = None
    port: int = 53
    timeout: float = 5.0
    use_tcp: bool = False
    assume_authenticated: bool = False

    def __post_init__(self) -> None:
        if self.nameservers is not None:
            if isinstance(self.nameservers, str):
                raise TypeError("nameservers must be a tuple of addresses, got a str")
            object.__setattr__(self, "nameservers", tuple(self.nameservers))
            if not self.nameservers:
                raise ValueError("nameservers must name at least one server, or be None")
        if not 0 < self.port < 65536:
            raise ValueError(f"port must be 1-65535, got {self.port}")
        if not self.timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {self.timeout}")

    def __repr__(self) -> str:
        fields = [f"nameservers={self.nameservers!r}"]
        if self.port != 53:
            fields.append(f"port={self.port}")
        fields.append(f"timeout={self.timeout}")
        if self.use_tcp:
            fields.append("use_tcp=True")
        if self.assume_authenticated:
            fields.append("assume_authenticated=True")
        return f"Resolver({', '.join(fields)})"
