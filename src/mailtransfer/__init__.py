"""mailtransfer: a fast, safe SMTP/LMTP client with a sans-I/O core.

Example:
    >>> import mailtransfer  # doctest: +SKIP
    >>> with mailtransfer.Mailer("smtp://user:secret@mail.example.org:587") as mailer:
    ...     mailer.send(sender="me@example.org", to=["you@example.org"],
    ...                 subject="Hello", text="Hi there!")
"""

import logging

from . import errors as errors
from ._async.connection import AsyncConnection as AsyncConnection
from ._async.mailer import AsyncMailer as AsyncMailer
from ._async.pool import AsyncConnectionPool as AsyncConnectionPool
from ._default import send as send
from ._direct._options import DirectOptions as DirectOptions
from ._direct._results import DirectResult as DirectResult
from ._settings import Endpoint as Endpoint
from ._settings import MailerOptions as MailerOptions
from ._settings import parse_url as parse_url
from ._sync.connection import SyncConnection as SyncConnection
from ._sync.mailer import Mailer as Mailer
from ._sync.pool import ConnectionPool as ConnectionPool
from ._version import __version__ as __version__
from .auth import OAuth2 as OAuth2
from .auth import Password as Password
from .config import PoolLimits as PoolLimits
from .config import Timeouts as Timeouts
from .message import Attachment as Attachment
from .message import Envelope as Envelope
from .message import build_message as build_message
from .proxy import Proxy as Proxy
from .results import SendResult as SendResult
from .results import ServerInfo as ServerInfo
from .retry import RetryPolicy as RetryPolicy
from .tls import ImplicitTLS as ImplicitTLS
from .tls import NoTLS as NoTLS
from .tls import Opportunistic as Opportunistic
from .tls import StartTLS as StartTLS
from .tls import TLSPolicy as TLSPolicy
from .tls import create_ssl_context as create_ssl_context

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "AsyncConnection",
    "AsyncConnectionPool",
    "AsyncMailer",
    "Attachment",
    "ConnectionPool",
    "DirectOptions",
    "DirectResult",
    "Endpoint",
    "Envelope",
    "ImplicitTLS",
    "Mailer",
    "MailerOptions",
    "NoTLS",
    "OAuth2",
    "Opportunistic",
    "Password",
    "PoolLimits",
    "Proxy",
    "RetryPolicy",
    "SendResult",
    "ServerInfo",
    "StartTLS",
    "SyncConnection",
    "TLSPolicy",
    "Timeouts",
    "__version__",
    "build_message",
    "create_ssl_context",
    "errors",
    "parse_url",
    "send",
]
