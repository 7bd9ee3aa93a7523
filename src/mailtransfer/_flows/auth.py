"""Logging in: choose a SASL mechanism, run the exchange, refresh an OAuth2 token once."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any

from ..auth import AuthExchange, AuthState, ChannelBinding, OAuth2, choose
from ..auth._choose import check_cleartext
from ..config import Timeouts
from ..errors import NoSuitableMechanism, classify
from ..protocol import Auth, AuthResponse, Connection, Reply, Stage
from ._common import read_response
from ._io import Call, Deadline, Instruction, TLSInfo, Write

__all__ = ["authenticate"]


def authenticate(
    conn: Connection,
    credentials: object,
    *,
    timeouts: Timeouts,
    mechanisms: Sequence[str] | None = None,
    allow_insecure: bool = False,
    tls_info: TLSInfo | None = None,
) -> Generator[Instruction, Any, str]:
    """Authenticate with the strongest mechanism both sides allow; return its name.

    An OAuth2 token the server rejects as expired is fetched again once, and
    the exchange retried, before the failure is reported.

    Raises:
        InsecureAuthRefused: no TLS and no opt-in (nothing was sent).
        NoSuitableMechanism: the server offers no mechanism the credentials can use.
        AuthenticationFailed (and other ReplyErrors): the server refused.
        SASLError: the server broke the mechanism's rules.
    """
    # THREATS S7: refuse before anything else, so that not even a token is fetched for
    # a session that will not use it (choose() checks again, for direct callers).
    check_cleartext(tls_active=conn.tls_active, allow_insecure=allow_insecure)
    offered = conn.extensions.auth
    if not offered:
        raise NoSuitableMechanism(
            "the server offers no AUTH mechanism (some servers offer AUTH only after STARTTLS)",
            offered=(),
            usable=(),
        )
    binding = None
    if tls_info is not None and tls_info.tls_unique:
        binding = ChannelBinding("tls-unique", tls_info.tls_unique)
    for attempt in (1, 2):
        creds = credentials
        if isinstance(credentials, OAuth2):
            # The driver calls the provider itself and awaits an async one (the asyncio
            # driver) or closes it and refuses (the sync driver): no coroutine is left
            # un-awaited, and the flow never sees anything but the token.
            token = yield Call(credentials.token_provider)
            creds = OAuth2.static(credentials.username, token)
        mechanism = choose(
            offered,
            creds,
            tls_active=conn.tls_active,
            allow_insecure=allow_insecure,
            preferred=mechanisms,
            channel_binding=binding,
        )
        exchange = AuthExchange(mechanism)
        first = exchange.start()
        name, _, initial = first.text.partition(" ")[2].partition(" ")
        yield Deadline(timeouts.command, Stage.AUTH)
        yield Write(conn.send(Auth(name, initial or None)))
        reply: Reply
        while True:
            reply = (yield from read_response(conn, Stage.AUTH)).reply
            line = exchange.receive(reply)
            if line is None:
                break
            yield Write(conn.send(AuthResponse(line.text)))
        if exchange.state is AuthState.SUCCEEDED:
            return mechanism.name
        if attempt == 1 and isinstance(credentials, OAuth2) and mechanism.server_error:
            continue  # the token was rejected: fetch a fresh one, once
        break
    raise classify(reply, stage=Stage.AUTH, command=f"AUTH {mechanism.name} ****")
