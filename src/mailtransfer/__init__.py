"""mailtransfer: a fast, safe SMTP/LMTP client with a sans-I/O core."""

import logging

from . import errors as errors
from ._async.connection import AsyncConnection as AsyncConnection
from ._sync.connection import SyncConnection as SyncConnection
from ._version import __version__ as __version__
from .config import Timeouts as Timeouts
from .results import SendResult as SendResult
from .tls import ImplicitTLS as ImplicitTLS
from .tls import NoTLS as NoTLS
from .tls import Opportunistic as Opportunistic
from .tls import StartTLS as StartTLS
from .tls import TLSPolicy as TLSPolicy

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "AsyncConnection",
    "ImplicitTLS",
    "NoTLS",
    "Opportunistic",
    "SendResult",
    "StartTLS",
    "SyncConnection",
    "TLSPolicy",
    "Timeouts",
    "__version__",
    "errors",
]
