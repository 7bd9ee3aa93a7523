"""The errors and the warning of :mod:`mailtransfer.dkim`.

```
MailTransferError
└── DKIMError
    ├── DKIMConfigError (also InvalidArgument, so UsageError and ValueError)
    ├── UnsignableMessage
    └── DKIMVerificationFailed
```
"""

from __future__ import annotations

from mailtransfer.protocol._errors import InvalidArgument, MailTransferError

__all__ = [
    "DKIMConfigError",
    "DKIMError",
    "DKIMVerificationFailed",
    "UnsignableMessage",
    "WeakKeyWarning",
]


class DKIMError(MailTransferError):
    """Base class of every DKIM signing error.

    Also raised by :func:`~mailtransfer.dkim.sign_chain` when a signer returns
    bytes that are not header fields (they would corrupt the message).
    """


class DKIMConfigError(DKIMError, InvalidArgument):
    """A signer was configured wrongly: a bad domain, selector, identity, header name or key.

    Raised when the signer is made, before any message is signed. Also an
    :class:`~mailtransfer.errors.InvalidArgument`, so ``except ValueError`` catches it.
    """


class UnsignableMessage(DKIMError):
    """The message cannot be signed as it is.

    Its header section is malformed, it has no ``From`` field or more than one
    (RFC 5322 section 3.6 allows exactly one), or a
    :class:`~mailtransfer.dkim.DKIMKeyring` set to refuse has no key for it.
    """


class DKIMVerificationFailed(DKIMError):
    """A signer made with ``verify=True`` produced a signature its own public key rejects.

    This should never happen; it means a fault in the signing code or the
    crypto library, and the message is not sent with a broken signature.
    """


class WeakKeyWarning(UserWarning):
    """An RSA key shorter than 2048 bits: still accepted by receivers (RFC 8301), but weak."""
