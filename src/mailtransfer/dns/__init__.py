"""DNS for mailtransfer: a resolver configuration, typed lookups and MX resolution.

Every feature that asks DNS (direct delivery, MTA-STS, DANE, the deliverability
checks) goes through these functions, so one :class:`Resolver` value decides
which servers are asked, on which port, and how long to wait.

Example:
    >>> from mailtransfer.dns import Resolver, lookup_txt, mail_exchangers
    >>> local = Resolver(nameservers=("127.0.0.1",), port=5353)  # doctest: +SKIP
    >>> [r.text for r in lookup_txt("example.test", resolver=local)]  # doctest: +SKIP
    ['v=spf1 -all']
    >>> mail_exchangers("example.test", resolver=local).hosts  # doctest: +SKIP

Errors: :class:`~mailtransfer.errors.NXDomain` (permanent),
:class:`~mailtransfer.errors.DNSTemporaryError` (timeout, SERVFAIL; transient),
:class:`~mailtransfer.errors.NoMailExchanger` (null MX; permanent). A name with
no records of the asked type is not an error: the answer is empty.
"""

from typing import TYPE_CHECKING, Any

from ._config import Resolver as Resolver
from ._records import Answer as Answer
from ._records import MXRecord as MXRecord
from ._records import TLSARecord as TLSARecord
from ._records import TXTRecord as TXTRecord

if TYPE_CHECKING:
    from ._lookup import alookup as alookup
    from ._lookup import alookup_addresses as alookup_addresses
    from ._lookup import alookup_mx as alookup_mx
    from ._lookup import alookup_ptr as alookup_ptr
    from ._lookup import alookup_tlsa as alookup_tlsa
    from ._lookup import alookup_txt as alookup_txt
    from ._lookup import lookup as lookup
    from ._lookup import lookup_addresses as lookup_addresses
    from ._lookup import lookup_mx as lookup_mx
    from ._lookup import lookup_ptr as lookup_ptr
    from ._lookup import lookup_tlsa as lookup_tlsa
    from ._lookup import lookup_txt as lookup_txt
    from ._lookup import to_ascii as to_ascii
    from ._mx import MailExchanger as MailExchanger
    from ._mx import MailExchangers as MailExchangers
    from ._mx import amail_exchangers as amail_exchangers
    from ._mx import mail_exchangers as mail_exchangers

# The lookups need dnspython, which costs about 40 ms and several MB to import: they are
# loaded on first use, so that ``import mailtransfer`` does not pay for DNS it may never ask.
_LAZY = {
    "alookup": "_lookup",
    "alookup_addresses": "_lookup",
    "alookup_mx": "_lookup",
    "alookup_ptr": "_lookup",
    "alookup_tlsa": "_lookup",
    "alookup_txt": "_lookup",
    "lookup": "_lookup",
    "lookup_addresses": "_lookup",
    "lookup_mx": "_lookup",
    "lookup_ptr": "_lookup",
    "lookup_tlsa": "_lookup",
    "lookup_txt": "_lookup",
    "to_ascii": "_lookup",
    "MailExchanger": "_mx",
    "MailExchangers": "_mx",
    "amail_exchangers": "_mx",
    "mail_exchangers": "_mx",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib  # noqa: PLC0415

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "Answer",
    "MXRecord",
    "MailExchanger",
    "MailExchangers",
    "Resolver",
    "TLSARecord",
    "TXTRecord",
    "alookup",
    "alookup_addresses",
    "alookup_mx",
    "alookup_ptr",
    "alookup_tlsa",
    "alookup_txt",
    "amail_exchangers",
    "lookup",
    "lookup_addresses",
    "lookup_mx",
    "lookup_ptr",
    "lookup_tlsa",
    "lookup_txt",
    "mail_exchangers",
    "to_ascii",
]
