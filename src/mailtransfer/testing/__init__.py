"""Real servers on loopback for testing code that sends mail.

Two kinds of in-process server, both running in a background thread so they serve plain
and asyncio tests alike, both listening on an ephemeral port of 127.0.0.1:

- `RecordingServer`: a correct SMTP/LMTP server (aiosmtpd) that records every message
  and can refuse senders, recipients or data on cue (`Faults`). Needs the ``testing``
  extra: ``pip install 'mailtransfer[testing]'``.
- `ScriptedServer`: runs an ``async def script(peer)`` per connection, for hostile and
  broken servers. Ready-made scripts cover the usual faults, and `basic_ok_server` is a
  fast correct server with PIPELINING and CHUNKING.

`OutboxMailer` (and `AsyncOutboxMailer`) take the place of a mailer and keep messages in a
list, after the very same checks. The pytest plugin (`mailtransfer.testing.pytest_plugin`,
loaded automatically) offers them as the ``smtp_server`` and ``mail_outbox`` fixtures.

`tls_certificates` makes throw-away certificates (needs trustme).
"""

from __future__ import annotations

from ._esmtp import DEFAULT_EXTENSIONS as DEFAULT_EXTENSIONS
from ._esmtp import EsmtpScript as EsmtpScript
from ._esmtp import Intercept as Intercept
from ._esmtp import basic_ok_server as basic_ok_server
from ._faults import Faults as Faults
from ._outbox import AsyncOutboxMailer as AsyncOutboxMailer
from ._outbox import OutboxMailer as OutboxMailer
from ._outbox import OutboxMessage as OutboxMessage
from ._peer import DEFAULT_TIMEOUT as DEFAULT_TIMEOUT
from ._peer import Script as Script
from ._peer import ScriptedPeer as ScriptedPeer
from ._peer import ScriptError as ScriptError
from ._received import ReceivedMessage as ReceivedMessage
from ._recording import DEFAULT_SIZE_LIMIT as DEFAULT_SIZE_LIMIT
from ._recording import RecordingServer as RecordingServer
from ._scripted import ScriptedServer as ScriptedServer
from ._scripts import disconnect_after as disconnect_after
from ._scripts import disconnect_mid_data as disconnect_mid_data
from ._scripts import endless_auth_challenge as endless_auth_challenge
from ._scripts import endless_continuation as endless_continuation
from ._scripts import greeting_then_close as greeting_then_close
from ._scripts import oversized_line as oversized_line
from ._scripts import reply_421_after as reply_421_after
from ._scripts import silent as silent
from ._scripts import starttls_injection as starttls_injection
from ._scripts import trickle as trickle
from ._tls import TLSCertificates as TLSCertificates
from ._tls import tls_certificates as tls_certificates

__all__ = [
    "AsyncOutboxMailer",
    "DEFAULT_EXTENSIONS",
    "DEFAULT_SIZE_LIMIT",
    "DEFAULT_TIMEOUT",
    "EsmtpScript",
    "Faults",
    "Intercept",
    "OutboxMailer",
    "OutboxMessage",
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
