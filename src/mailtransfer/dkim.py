"""DKIM signing (RFC 6376, RFC 8301, RFC 8463) for outgoing mail.

A *signer* gets the exact bytes that will be sent and returns header lines to
put on top; :func:`sign_chain` applies several in turn (RSA then Ed25519,
ARC later). :class:`DKIMSigner` signs with one key, :class:`DKIMKeyring`
picks the key by the ``From`` domain.

Signatures are byte-for-byte what dkimpy's ``dkim.sign`` makes for the same
key, message, header list and time, and verify with dkimpy, but the RSA and
Ed25519 arithmetic runs in OpenSSL (through ``cryptography``) instead of in
Python. ``l=`` is never written; ``From``, ``Subject`` and the other fields a
reader sees are oversigned.

Example:
    >>> from mailtransfer.dkim import DKIMSigner, generate_key, sign_chain
    >>> pem, dns_txt = generate_key("ed25519")
    >>> signer = DKIMSigner(domain="example.com", selector="s1", private_key=pem)
    >>> signed = sign_chain(b"From: a@example.com\\r\\nSubject: Hi\\r\\n\\r\\nHello\\r\\n",
    ...                     None, [signer])
    >>> signed.startswith(b"DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;")
    True
"""

# The `import X as X` lines are the explicit re-export form that mypy's
# no_implicit_reexport understands.

from __future__ import annotations

from ._dkim._canon import Canonicalization as Canonicalization
from ._dkim._errors import DKIMConfigError as DKIMConfigError
from ._dkim._errors import DKIMError as DKIMError
from ._dkim._errors import DKIMVerificationFailed as DKIMVerificationFailed
from ._dkim._errors import UnsignableMessage as UnsignableMessage
from ._dkim._errors import WeakKeyWarning as WeakKeyWarning
from ._dkim._keyring import DKIMKeyring as DKIMKeyring
from ._dkim._keyring import OnMissing as OnMissing
from ._dkim._keys import Algorithm as Algorithm
from ._dkim._keys import KeyLike as KeyLike
from ._dkim._keys import dns_record as dns_record
from ._dkim._keys import generate_key as generate_key
from ._dkim._keys import txt_strings as txt_strings
from ._dkim._keys import zone_entry as zone_entry
from ._dkim._signer import DEFAULT_HEADERS as DEFAULT_HEADERS
from ._dkim._signer import DEFAULT_OVERSIGN as DEFAULT_OVERSIGN
from ._dkim._signer import DKIMSigner as DKIMSigner
from ._dkim._signer import Signer as Signer
from ._dkim._signer import sign_chain as sign_chain

__all__ = [
    "DEFAULT_HEADERS",
    "DEFAULT_OVERSIGN",
    "Algorithm",
    "Canonicalization",
    "DKIMConfigError",
    "DKIMError",
    "DKIMKeyring",
    "DKIMSigner",
    "DKIMVerificationFailed",
    "KeyLike",
    "OnMissing",
    "Signer",
    "UnsignableMessage",
    "WeakKeyWarning",
    "dns_record",
    "generate_key",
    "sign_chain",
    "txt_strings",
    "zone_entry",
]
