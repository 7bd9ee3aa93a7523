"""TLS policies and the secure default ``ssl.SSLContext``."""

from ._context import create_ssl_context as create_ssl_context
from ._policy import ImplicitTLS as ImplicitTLS
from ._policy import NoTLS as NoTLS
from ._policy import Opportunistic as Opportunistic
from ._policy import StartTLS as StartTLS
from ._policy import TLSMode as TLSMode
from ._policy import TLSPolicy as TLSPolicy
from ._policy import default_policy as default_policy

__all__ = [
    "ImplicitTLS",
    "NoTLS",
    "Opportunistic",
    "StartTLS",
    "TLSMode",
    "TLSPolicy",
    "create_ssl_context",
    "default_policy",
]
