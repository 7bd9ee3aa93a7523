"""Signing for several domains: pick the key by the domain of the ``From`` field.

Strategy: DMARC (RFC 7489 section 3.1) judges a DKIM signature by whether
its ``d=`` aligns with the ``From`` domain, so that domain chooses the key:
an exact match first, then the nearest parent domain with a key (relaxed
alignment: ``news.example.com`` mail signed as ``example.com`` passes). The
``From`` field is read with the package's strict address parser, never the
legacy ``parseaddr`` (CVE-2023-27043).
"""

from __future__ import annotations

import email.policy
import enum
import functools
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import timedelta

from mailtransfer._message._addresses import addresses_of
from mailtransfer.protocol._errors import InvalidAddress

from ._canon import Field, split_message, wire_form
from ._errors import DKIMConfigError, UnsignableMessage
from ._keys import KeyLike
from ._names import check_domain
from ._signer import DEFAULT_OVERSIGN, DKIMSigner

__all__ = ["DKIMKeyring", "OnMissing", "from_domain"]


class OnMissing(str, enum.Enum):
    """What a :class:`DKIMKeyring` does with a message it has no key for."""

    SKIP = "skip"
    """Send it unsigned."""
    REFUSE = "refuse"
    """Raise :class:`~mailtransfer.dkim.UnsignableMessage`; nothing is sent."""


def from_domain(fields: Sequence[Field]) -> str | None:
    """The domain of the ``From`` field, lower-cased (A-label form for IDNs).

    Returns:
        The domain, or ``None`` when the message has no ``From`` field.

    Raises:
        UnsignableMessage: several ``From`` fields, an unparsable one, or
            mailboxes in more than one domain: any key choice would be a guess.
    """
    values = [value for name, value in fields if name.lower() == b"from"]
    if not values:
        return None
    if len(values) > 1:
        raise UnsignableMessage(
            f"message must have one From field (RFC 5322 section 3.6), but it has {len(values)}"
        )
    value = values[0]
    # Bulk mail repeats the same From field, and the RFC 5322 parser is the
    # slowest step of choosing a key (about 100 us): remember recent answers
    # for fields of ordinary length. Refusals raise and are not cached.
    return _cached_domain_of(value) if len(value) <= 998 else _domain_of(value)


def _domain_of(value: bytes) -> str:
    text = value.replace(b"\r\n", b"").decode("utf-8", "replace")
    try:
        found = addresses_of(email.policy.default.header_factory("From", text), what="From")
    except InvalidAddress as exc:
        raise UnsignableMessage(f"cannot choose a DKIM key: {exc}") from None
    domains = {_a_label(address.domain) for address in found}
    if len(domains) != 1:
        raise UnsignableMessage(
            f"cannot choose a DKIM key: the From field names {len(domains)} domains, not one"
        )
    return domains.pop()


_cached_domain_of = functools.lru_cache(maxsize=256)(_domain_of)


def _a_label(domain: str) -> str:
    domain = domain.lower().rstrip(".")
    if domain.isascii():
        return domain
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return domain


class DKIMKeyring:
    """Signs each message with the key of its ``From`` domain. A :class:`Signer`.

    Args:
        keys: ``{domain: (selector, private_key)}``; a value may also be a
            ready :class:`DKIMSigner` whose ``domain`` is that key.
        on_missing: ``"skip"`` (send unsigned) or ``"refuse"`` (raise) when
            no key fits the ``From`` domain or there is no ``From`` field.
        canonicalization: passed to each :class:`DKIMSigner` made from a
            ``(selector, key)`` pair, as are the options below.
        headers: the header fields to sign (see :class:`DKIMSigner`).
        oversign: the fields signed once more than present.
        expiry: the signatures' lifetime (``x=``), or none.
        verify: verify each signature after signing.
        clock: the time source for ``t=`` and ``x=``.

    Attributes:
        on_missing: what happens to a message no key fits.

    Raises:
        DKIMConfigError: a bad domain, a bad ``on_missing``, or anything
            :class:`DKIMSigner` refuses.

    Example:
        >>> from mailtransfer.dkim import DKIMKeyring, generate_key
        >>> keyring = DKIMKeyring({"example.com": ("s1", generate_key("ed25519")[0])})
        >>> keyring(b"From: a@news.example.com\\r\\n\\r\\nHi\\r\\n", None).count(b"d=example.com")
        1
    """

    __slots__ = ("_signers", "on_missing")

    def __init__(
        self,
        keys: Mapping[str, tuple[str, KeyLike] | DKIMSigner],
        *,
        on_missing: OnMissing | str = OnMissing.SKIP,
        canonicalization: tuple[str, str] | str = ("relaxed", "relaxed"),
        headers: Iterable[str] | None = None,
        oversign: Iterable[str] = DEFAULT_OVERSIGN,
        expiry: timedelta | None = None,
        verify: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        try:
            self.on_missing: OnMissing = OnMissing(on_missing)
        except ValueError:
            raise DKIMConfigError(
                f"on_missing must be 'skip' or 'refuse', but got {on_missing!r}"
            ) from None
        oversign = tuple(oversign)
        headers = None if headers is None else tuple(headers)
        self._signers: dict[str, DKIMSigner] = {}
        for domain, value in keys.items():
            entry: object = value  # checked at run time whatever the annotation says
            check_domain(domain, what="keys domain")
            if isinstance(entry, DKIMSigner):
                if entry.domain.lower() != domain.lower():
                    raise DKIMConfigError(
                        f"keys[{domain!r}] is a signer for {entry.domain!r}; they must match"
                    )
                signer = entry
            elif isinstance(entry, tuple) and len(entry) == 2:
                signer = DKIMSigner(
                    domain=domain,
                    selector=entry[0],
                    private_key=entry[1],
                    canonicalization=canonicalization,
                    headers=headers,
                    oversign=oversign,
                    expiry=expiry,
                    verify=verify,
                    clock=clock,
                )
            else:
                raise DKIMConfigError(
                    f"keys[{domain!r}] must be a (selector, private_key) pair or a DKIMSigner, "
                    f"but got {type(entry).__name__}"
                )
            self._signers[domain.lower()] = signer

    @property
    def domains(self) -> tuple[str, ...]:
        """The domains this keyring has keys for, lower-cased."""
        return tuple(self._signers)

    def signer_for(self, domain: str) -> DKIMSigner | None:
        """The signer for mail from ``domain``: its own key, else its nearest parent's.

        Returns:
            The signer, or ``None`` when neither the domain nor a parent has a key.
        """
        labels = _a_label(domain).split(".")
        for start in range(len(labels)):
            signer = self._signers.get(".".join(labels[start:]))
            if signer is not None:
                return signer
        return None

    def __repr__(self) -> str:
        return f"DKIMKeyring(domains={list(self._signers)!r}, on_missing={self.on_missing.value!r})"

    def __call__(self, message: bytes, envelope: object = None) -> bytes:
        """Sign with the key of the ``From`` domain; ``b""`` when skipped.

        Raises:
            UnsignableMessage: the From field is ambiguous (several fields,
                several domains, unparsable), or no key fits and ``on_missing``
                is ``"refuse"``.
            DKIMVerificationFailed: with ``verify=True``, the check failed.
        """
        fields, body = split_message(wire_form(message))
        domain = from_domain(fields)
        signer = None if domain is None else self.signer_for(domain)
        if signer is not None:
            return signer._sign_fields(fields, body)
        if self.on_missing is OnMissing.REFUSE:
            what = "no From field" if domain is None else f"From domain {domain!r}"
            raise UnsignableMessage(f"no DKIM key for {what}; keys exist for {self.domains}")
        return b""
