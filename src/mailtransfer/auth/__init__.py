"""Pluggable SASL authentication for SMTP, without I/O.

:func:`choose` picks the strongest mechanism that the server offers and the
credentials allow, and refuses to authenticate without TLS unless told to.
:class:`AuthExchange` drives that mechanism through the SMTP ``AUTH``
conversation and hands back the lines to write, each with its redacted form
for the transcript.
"""

import inspect

# Explicit "X as X" re-exports (trio style): the public path is mailtransfer.auth.
from ._base import MAX_ROUND_TRIPS as MAX_ROUND_TRIPS
from ._base import AuthExchange as AuthExchange
from ._base import AuthLine as AuthLine
from ._base import AuthState as AuthState
from ._base import Mechanism as Mechanism
from ._base import MechanismFactory as MechanismFactory
from ._base import SASLError as SASLError
from ._base import SCRAMServerError as SCRAMServerError
from ._base import ServerVerificationFailed as ServerVerificationFailed
from ._base import redact_auth_line as redact_auth_line
from ._choose import DEFAULT_MECHANISMS as DEFAULT_MECHANISMS
from ._choose import MechanismRegistry as MechanismRegistry
from ._choose import RegisteredMechanism as RegisteredMechanism
from ._choose import choose as choose
from ._credentials import REDACTED as REDACTED
from ._credentials import ChannelBinding as ChannelBinding
from ._credentials import OAuth2 as OAuth2
from ._credentials import Password as Password
from ._credentials import TokenProvider as TokenProvider
from ._mechanisms import CramMD5 as CramMD5
from ._mechanisms import Login as Login
from ._mechanisms import OAuthBearer as OAuthBearer
from ._mechanisms import Plain as Plain
from ._mechanisms import XOAuth2 as XOAuth2
from ._scram import Scram as Scram
from ._scram import saslprep as saslprep

__all__ = [
    "DEFAULT_MECHANISMS",
    "MAX_ROUND_TRIPS",
    "REDACTED",
    "AuthExchange",
    "AuthLine",
    "AuthState",
    "ChannelBinding",
    "CramMD5",
    "Login",
    "Mechanism",
    "MechanismFactory",
    "MechanismRegistry",
    "OAuth2",
    "OAuthBearer",
    "Password",
    "Plain",
    "RegisteredMechanism",
    "SASLError",
    "SCRAMServerError",
    "Scram",
    "ServerVerificationFailed",
    "TokenProvider",
    "XOAuth2",
    "choose",
    "redact_auth_line",
    "saslprep",
]

# Reprs, tracebacks and docs show mailtransfer.auth.X, not the private module (httpcore style).
for _name in __all__:
    _obj = globals()[_name]
    if (isinstance(_obj, type) or inspect.isfunction(_obj)) and _obj.__module__.startswith(
        __name__ + "."
    ):
        _obj.__module__ = __name__
del _name, _obj
