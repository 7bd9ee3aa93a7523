"""Which mechanism to use: the registry, its strength order, and the cleartext rule.

Strategy: the registry is an immutable value (like urllib3's ``Retry``).
Adding a mechanism returns a new registry, so a plugin imported somewhere in
a process cannot change what every other session in it chooses. ``choose``
is a pure function of the server's offer, the credentials and the
connection's TLS state.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial

from mailtransfer.errors import InsecureAuthRefused, NoSuitableMechanism
from mailtransfer.protocol._errors import InvalidArgument

from ._base import Mechanism, MechanismFactory, check_mechanism_name
from ._credentials import ChannelBinding, OAuth2, Password, check_int
from ._mechanisms import CramMD5, Login, OAuthBearer, Plain, XOAuth2
from ._scram import Scram

__all__ = [
    "DEFAULT_MECHANISMS",
    "MechanismRegistry",
    "RegisteredMechanism",
    "check_cleartext",
    "choose",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisteredMechanism:
    """One registry entry: a SASL name, how to build it, how strong it is, and what it accepts.

    Attributes:
        name: the SASL name as servers advertise it, e.g. ``"SCRAM-SHA-256"``.
        factory: called as ``factory(credentials, channel_binding)``.
        strength: higher is preferred; the built-ins use 10 to 70.
        credentials: the credential types the factory accepts.
    """

    name: str
    factory: MechanismFactory
    strength: int
    credentials: tuple[type, ...]

    def __post_init__(self) -> None:
        check_mechanism_name(self.name)
        if not callable(self.factory):
            raise InvalidArgument(
                f"factory must be callable, but got {type(self.factory).__name__}"
            )
        check_int(self.strength, "strength", low=-(2**31), high=2**31)
        if not self.credentials or not all(isinstance(kind, type) for kind in self.credentials):
            raise InvalidArgument("credentials must be a non-empty tuple of types")

    @property
    def needs_channel_binding(self) -> bool:
        """Whether this is a ``-PLUS`` variant, which needs channel binding (RFC 5801 section 5)."""
        return self.name.endswith("-PLUS")


@dataclass(frozen=True, slots=True)
class MechanismRegistry:
    """An immutable set of mechanisms, kept strongest first.

    Example:
        >>> from mailtransfer.auth import DEFAULT_MECHANISMS, Scram
        >>> from functools import partial
        >>> legacy = DEFAULT_MECHANISMS.with_mechanism(
        ...     "SCRAM-SHA-1", partial(Scram, algorithm="SHA-1", min_iterations=1024), strength=40
        ... )
        >>> legacy.get("SCRAM-SHA-1").strength
        40

    Raises:
        InvalidArgument: two entries share a name.
    """

    entries: tuple[RegisteredMechanism, ...] = ()

    def __post_init__(self) -> None:
        names = [entry.name for entry in self.entries]
        if len(set(names)) != len(names):
            raise InvalidArgument(f"mechanism names must be unique, but got {names}")
        ordered = tuple(sorted(self.entries, key=lambda entry: (-entry.strength, entry.name)))
        object.__setattr__(self, "entries", ordered)

    def __repr__(self) -> str:
        return f"<MechanismRegistry {' > '.join(entry.name for entry in self.entries)}>"

    def get(self, name: str) -> RegisteredMechanism | None:
        """Return the entry called ``name`` (any case), or None."""
        upper = name.upper()
        return next((entry for entry in self.entries if entry.name == upper), None)

    def with_mechanism(
        self,
        name: str,
        factory: MechanismFactory,
        *,
        strength: int,
        credentials: tuple[type, ...] = (Password,),
    ) -> MechanismRegistry:
        """Return a new registry with ``name`` added, or replaced if it was there.

        Args:
            name: the SASL name, upper case (RFC 4422 section 3.1).
            factory: called as ``factory(credentials, channel_binding)``; it must
                return a fresh :class:`Mechanism`.
            strength: its place in the order; the built-ins use 10 (LOGIN,
                XOAUTH2) to 70 (SCRAM-SHA-256-PLUS).
            credentials: the credential types the factory accepts.

        Raises:
            InvalidArgument: a malformed name, factory, strength or credentials.
        """
        entry = RegisteredMechanism(
            name=name, factory=factory, strength=strength, credentials=credentials
        )
        kept = tuple(existing for existing in self.entries if existing.name != name)
        return MechanismRegistry((*kept, entry))

    def without(self, *names: str) -> MechanismRegistry:
        """Return a new registry without the named mechanisms (unknown names are ignored)."""
        drop = {name.upper() for name in names}
        return MechanismRegistry(tuple(e for e in self.entries if e.name not in drop))


DEFAULT_MECHANISMS = MechanismRegistry(
    tuple(
        RegisteredMechanism(name=name, factory=factory, strength=strength, credentials=(kind,))
        for name, factory, strength, kind in (
            ("SCRAM-SHA-256-PLUS", partial(Scram, algorithm="SHA-256", plus=True), 70, Password),
            ("SCRAM-SHA-256", partial(Scram, algorithm="SHA-256"), 60, Password),
            ("SCRAM-SHA-1-PLUS", partial(Scram, algorithm="SHA-1", plus=True), 50, Password),
            ("SCRAM-SHA-1", partial(Scram, algorithm="SHA-1"), 40, Password),
            ("CRAM-MD5", CramMD5, 30, Password),
            ("PLAIN", Plain, 20, Password),
            ("LOGIN", Login, 10, Password),
            ("OAUTHBEARER", OAuthBearer, 20, OAuth2),
            ("XOAUTH2", XOAuth2, 10, OAuth2),
        )
    )
)
"""The built-in mechanisms, strongest first.

For passwords: SCRAM-SHA-256-PLUS > SCRAM-SHA-256 > SCRAM-SHA-1-PLUS >
SCRAM-SHA-1 > CRAM-MD5 > PLAIN > LOGIN. For OAuth 2.0: OAUTHBEARER > XOAUTH2.
"""


def check_cleartext(*, tls_active: bool, allow_insecure: bool) -> None:
    """Refuse to authenticate without TLS unless the caller opted in (THREATS S7).

    Raises:
        InsecureAuthRefused: ``tls_active`` and ``allow_insecure`` are both False.
    """
    if not tls_active and not allow_insecure:
        # Not one AUTH byte over cleartext: the message says both ways out.
        raise InsecureAuthRefused(
            "refusing to authenticate over a connection without TLS: start TLS first"
            " (tls=StartTLS() or ImplicitTLS()), or opt in with allow_insecure_auth=True"
            " (allow_insecure=True for choose()), only on a trusted network such as loopback"
        )


def choose(
    offered: Iterable[str],
    credentials: object,
    *,
    tls_active: bool,
    allow_insecure: bool = False,
    preferred: Sequence[str] | None = None,
    channel_binding: ChannelBinding | None = None,
    mechanisms: MechanismRegistry = DEFAULT_MECHANISMS,
) -> Mechanism:
    """Pick and build the strongest mechanism that the server offers and the credentials allow.

    Example:
        >>> from mailtransfer.auth import Password
        >>> choose({"PLAIN", "LOGIN", "SCRAM-SHA-256"}, Password("u", "p"), tls_active=True).name
        'SCRAM-SHA-256'

    Args:
        offered: the mechanism names of the server's EHLO ``AUTH`` line (any case).
        credentials: a :class:`Password`, an :class:`OAuth2`, or your own type
            that a registered mechanism accepts.
        tls_active: whether the connection is encrypted right now.
        allow_insecure: authenticate without TLS anyway. Every mechanism is
            refused over cleartext by default, even SCRAM: a passive observer
            still learns the username and can attack the exchange offline.
        preferred: names to try, in this order, instead of the strength order;
            only these are considered.
        channel_binding: the TLS channel binding; ``-PLUS`` variants are used only
            when it is given.
        mechanisms: the registry to choose from.

    Returns:
        A fresh, single-use mechanism.

    Raises:
        InsecureAuthRefused: TLS is not active and ``allow_insecure`` is False.
        NoSuitableMechanism: nothing fits; the message lists what the server
            offers and what the credentials can use.
        InvalidArgument: ``preferred`` names an unregistered mechanism,
            ``channel_binding`` is given without TLS, ``offered`` is a str, or a
            factory built a mechanism under another name; also whatever the
            mechanism's constructor raises for unusable credentials.
    """
    check_cleartext(tls_active=tls_active, allow_insecure=allow_insecure)
    if channel_binding is not None and not tls_active:
        raise InvalidArgument("channel_binding was given, but tls_active is False")
    if isinstance(offered, str):
        raise InvalidArgument("offered must be a collection of mechanism names, but got a str")
    offer = frozenset(name.upper() for name in offered)
    usable = [
        entry
        for entry in mechanisms.entries
        if isinstance(credentials, entry.credentials)
        and (channel_binding is not None or not entry.needs_channel_binding)
    ]
    candidates = usable
    if preferred is not None:
        if isinstance(preferred, str):
            raise InvalidArgument("preferred must be a sequence of mechanism names, but got a str")
        order = []
        for name in preferred:
            entry = mechanisms.get(name)
            if entry is None:
                known = ", ".join(e.name for e in mechanisms.entries)
                raise InvalidArgument(
                    f"preferred names {name!r}, which is not registered (registered: {known})"
                )
            order.append(entry)
        candidates = [entry for entry in order if entry in usable]
    for entry in candidates:
        if entry.name in offer:
            binding = channel_binding
            if not entry.needs_channel_binding and f"{entry.name}-PLUS" in offer:
                # RFC 5802 section 6: "y" tells a binding-capable server that the client thinks
                # it is not, and the server must then fail. The server offers -PLUS and the
                # caller chose the plain variant, so say "n" (no binding) instead.
                binding = None
            mechanism = entry.factory(credentials, binding)
            if mechanism.name != entry.name:
                raise InvalidArgument(
                    f"the factory registered as {entry.name} built a mechanism named"
                    f" {mechanism.name!r}"
                )
            return mechanism
    # Offered -PLUS variants these credentials could use, had a binding been given.
    unbound = [
        entry.name
        for entry in mechanisms.entries
        if entry.needs_channel_binding
        and entry.name in offer
        and channel_binding is None
        and isinstance(credentials, entry.credentials)
    ]
    raise NoSuitableMechanism(
        _explain(offer, type(credentials).__name__, candidates, preferred, unbound),
        offered=tuple(sorted(offer)),
        usable=tuple(entry.name for entry in candidates),
    )


def _explain(
    offer: frozenset[str],
    kind: str,
    candidates: list[RegisteredMechanism],
    preferred: Sequence[str] | None,
    unbound: list[str],
) -> str:
    server = ", ".join(sorted(offer)) if offer else "none (no AUTH keyword in its EHLO reply)"
    names = ", ".join(entry.name for entry in candidates) or "none"
    message = (
        f"no SASL mechanism fits: the server offers {server}; {kind} credentials allow {names}"
    )
    if preferred is not None:
        message += f" (limited by preferred={list(preferred)})"
    if unbound:
        message += f"; {', '.join(unbound)} would need channel_binding"
    return message
