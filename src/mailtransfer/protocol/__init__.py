"""The sans-I/O SMTP/LMTP core: bytes in, events out. Standard library only; never touches a socket.

Example:
    >>> from mailtransfer.protocol import Connection, Ehlo
    >>> conn = Connection()
    >>> conn.receive_data(b"220 mx.example.org ESMTP ready\\r\\n")
    >>> conn.next_event().reply.code
    220
    >>> conn.send(Ehlo("client.example.org"))
    b'EHLO client.example.org\\r\\n'
"""

from ._connection import Connection as Connection
from ._connection import Event as Event
from ._data import DataEncoder as DataEncoder
from ._data import encode_data as encode_data
from ._errors import ExtensionNotSupported as ExtensionNotSupported
from ._errors import InvalidAddress as InvalidAddress
from ._errors import InvalidArgument as InvalidArgument
from ._errors import LocalProtocolError as LocalProtocolError
from ._errors import MailTransferError as MailTransferError
from ._errors import MessageTooLarge as MessageTooLarge
from ._errors import ProtocolError as ProtocolError
from ._errors import RemoteProtocolError as RemoteProtocolError
from ._errors import SMTPUTF8Required as SMTPUTF8Required
from ._errors import Stage as Stage
from ._errors import UsageError as UsageError
from ._events import NEED_DATA as NEED_DATA
from ._events import Auth as Auth
from ._events import AuthResponse as AuthResponse
from ._events import Bdat as Bdat
from ._events import Command as Command
from ._events import ConnectionClosed as ConnectionClosed
from ._events import Data as Data
from ._events import Ehlo as Ehlo
from ._events import EndOfData as EndOfData
from ._events import Helo as Helo
from ._events import Lhlo as Lhlo
from ._events import MailFrom as MailFrom
from ._events import NeedData as NeedData
from ._events import Noop as Noop
from ._events import Quit as Quit
from ._events import RcptTo as RcptTo
from ._events import Response as Response
from ._events import Rset as Rset
from ._events import StartTLS as StartTLS
from ._events import Vrfy as Vrfy
from ._extensions import Extensions as Extensions
from ._grammar import Mailbox as Mailbox
from ._grammar import parse_mailbox as parse_mailbox
from ._reply import EnhancedStatus as EnhancedStatus
from ._reply import Reply as Reply
from ._reply import ReplyParser as ReplyParser
from ._state import State as State

__all__ = [
    "NEED_DATA",
    "Auth",
    "AuthResponse",
    "Bdat",
    "Command",
    "Connection",
    "ConnectionClosed",
    "Data",
    "DataEncoder",
    "Ehlo",
    "EndOfData",
    "EnhancedStatus",
    "Event",
    "ExtensionNotSupported",
    "Extensions",
    "Helo",
    "InvalidAddress",
    "InvalidArgument",
    "Lhlo",
    "LocalProtocolError",
    "MailFrom",
    "MailTransferError",
    "Mailbox",
    "MessageTooLarge",
    "NeedData",
    "Noop",
    "ProtocolError",
    "Quit",
    "RcptTo",
    "RemoteProtocolError",
    "Reply",
    "ReplyParser",
    "Response",
    "Rset",
    "SMTPUTF8Required",
    "Stage",
    "StartTLS",
    "State",
    "UsageError",
    "Vrfy",
    "encode_data",
    "parse_mailbox",
]
