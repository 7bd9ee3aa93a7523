"""Opening a session: greeting, EHLO (or HELO), the TLS policy's STARTTLS, EHLO again, AUTH."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from ..config import Timeouts
from ..errors import StartTLSFailed, STARTTLSInjection, TLSRequired, classify
from ..protocol import Connection, Ehlo, Extensions, Helo, Lhlo, Reply, Stage
from ..protocol import StartTLS as StartTLSCommand
from ..tls import TLSMode, TLSPolicy
from ._common import command, read_response
from ._io import Deadline, Instruction, StartTLS

__all__ = ["greet", "handshake"]


def greet(conn: Connection, timeouts: Timeouts) -> Generator[Instruction, Any, Reply]:
    """Wait for the server's greeting; anything but 220 is a typed error (RFC 5321 3.1)."""
    yield Deadline(timeouts.greeting, Stage.GREETING)
    response = yield from read_response(conn, Stage.GREETING)
    if response.reply.code != 220:
        raise classify(response.reply, stage=Stage.GREETING, command="(greeting)")
    return response.reply


def hello(
    conn: Connection, local_hostname: str, timeouts: Timeouts
) -> Generator[Instruction, Any, Extensions]:
    """EHLO (LHLO for LMTP), falling back to HELO when the server refuses EHLO."""
    first = Lhlo(local_hostname) if conn.lmtp else Ehlo(local_hostname)
    response = yield from command(conn, first, timeouts.command)
    reply = response.reply
    if reply.is_success:
        return conn.extensions
    if conn.lmtp or not reply.is_permanent:
        raise classify(reply, stage=first.stage, command=first.redacted())
    # RFC 5321 3.2: a server that does not know EHLO answers 500/502; then HELO.
    response = yield from command(conn, Helo(local_hostname), timeouts.command)
    if not response.reply.is_success:
        raise classify(response.reply, stage=Stage.HELO, command=f"HELO {local_hostname}")
    return conn.extensions


def starttls(
    conn: Connection,
    policy: TLSPolicy,
    server_hostname: str,
    local_hostname: str,
    timeouts: Timeouts,
) -> Generator[Instruction, Any, Any]:
    """Upgrade to TLS as the policy says; returns the driver's TLS information or None."""
    mode = policy.mode
    if mode not in (TLSMode.STARTTLS, TLSMode.OPPORTUNISTIC) or conn.tls_active:
        return None
    required = mode is TLSMode.STARTTLS
    if not conn.extensions.starttls:
        if required:
            raise TLSRequired(
                "the TLS policy requires STARTTLS but the server does not offer it"
                " (a man in the middle may have removed it); nothing was sent in cleartext",
                stage=Stage.STARTTLS,
                transcript=conn.transcript(),
            )
        return None
    response = yield from command(conn, StartTLSCommand(), timeouts.command)
    if response.reply.code != 220:
        if required:
            raise StartTLSFailed(
                f"the server refused STARTTLS: {response.reply}",
                reply=response.reply,
                stage=Stage.STARTTLS,
                command="STARTTLS",
                transcript=conn.transcript(),
            )
        return None
    if conn.has_buffered_data():
        # RFC 3207 4.2 and CVE-2011-0411: bytes sent after the go-ahead and before the
        # handshake were injected in cleartext; never read them as replies.
        raise STARTTLSInjection(
            "the server (or a man in the middle) sent data after the STARTTLS go-ahead,"
            " before the TLS handshake; aborting",
            stage=Stage.STARTTLS,
            transcript=conn.transcript(),
        )
    yield Deadline(timeouts.command, Stage.TLS_HANDSHAKE)
    info = yield StartTLS(policy.ssl_context(), policy.server_hostname or server_hostname)
    conn.tls_established()
    yield from hello(conn, local_hostname, timeouts)
    return info


def handshake(
    conn: Connection,
    *,
    policy: TLSPolicy,
    server_hostname: str,
    local_hostname: str,
    timeouts: Timeouts,
) -> Generator[Instruction, Any, Any]:
    """Greeting, EHLO, STARTTLS per policy and EHLO again; returns the TLS info (or None).

    Authentication is a separate flow (``auth.authenticate``) run right after.
    """
    if policy.mode is TLSMode.IMPLICIT:
        conn.implicit_tls()
    yield from greet(conn, timeouts)
    yield from hello(conn, local_hostname, timeouts)
    return (yield from starttls(conn, policy, server_hostname, local_hostname, timeouts))
