"""Real servers on loopback for testing code that sends mail.

Two kinds of in-process server, both running in a background thread so they serve plain
and asyncio tests alike, both listening on an ephemeral port of 127.0.0.1:

- `RecordingServer`: a correct SMTP/LMTP server (aiosmtpd) that records every message
  and can refuse senders, recipients or data on cue (`Faults`). Needs the ``testing``
  extra: ``pip install 'mailtransfer[testing]'``.
- `ScriptedServer`: runs an ``async def script(peer)`` per connection, for hostile and
  broken servers. Ready-made scripts cover the usual faults, and `basic_ok_server` is a
  fast correct server with PIPELINING and CHUNKING.

`tls_certificates` makes throw-away certificates (needs trustme).
"""

from __future__ import annotations

from ._recording import DEFAULT_SIZE_LIMIT as DEFAULT_SIZE_LIMIT
from ._recording import Faults as Faults
from ._recording import ReceivedMessage as ReceivedMessage
from ._recording import RecordingServer as RecordingServer
from ._scripted import DEFAULT_EXTENSIONS as DEFAULT_EXTENSIONS
from ._scripted import DEFAULT_TIMEOUT as DEFAULT_TIMEOUT
from ._scripted import EsmtpScript as EsmtpScript
from ._scripted import Intercept as Intercept
from ._scripted import Script as Script
from ._scripted import ScriptedPeer as ScriptedPeer
from ._scripted import ScriptedServer as ScriptedServer
from ._scripted import ScriptError as ScriptError
from ._scripted import basic_ok_server as basic_ok_server
from ._scripted import disconnect_after as disconnect_after
from ._scripted import disconnect_mid_data as disconnect_mid_data
from ._scripted import endless_auth_challenge as endless_auth_challenge
from ._scripted import endless_continuation as endless_continuation
from ._scripted import greeting_then_close as greeting_then_close
from ._scripted import oversized_line as oversized_line
from ._scripted import reply_421_after as reply_421_after
from ._scripted import silent as silent
from ._scripted import starttls_injection as starttls_injection
from ._scripted import trickle as trickle
from ._tls import TLSCertificates as TLSCertificates
from ._tls import tls_certificates as tls_certificates

__all__ = [
    "DEFAULT_EXTENSIONS",
    "DEFAULT_SIZE_LIMIT",
    "DEFAULT_TIMEOUT",
    "EsmtpScript",
    "Faults",
    "Intercept",
    "ReceivedMessage",
    "RecordingServer",
    "Script",
    "ScriptError",
    "ScriptedPeer",
    "ScriptedServer",
    "TLSCertificates",
    "basic_ok_server",
    "disconnect_after",
    "disconnect_mid_data",
    "endless_auth_challenge",
    "endless_continuation",
    "greeting_then_close",
    "oversized_line",
    "reply_421_after",
    "silent",
    "starttls_injection",
    "tls_certificates",
    "trickle",
]
