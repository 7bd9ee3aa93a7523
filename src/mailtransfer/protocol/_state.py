"""The client's session states and the one table of legal moves.

Rule: everything that decides which command may be sent in which state, and
where a reply moves the session, lives in this file. ``SEND_TRANSITIONS`` says
where sending a command takes the session (optimistically, before its reply:
that is what makes PIPELINING possible); ``reply_transition`` says where the
reply then takes it. The docs' state diagram is drawn from these tables.
"""

from __future__ import annotations

import enum

__all__ = ["GROUP_ENDING", "SEND_TRANSITIONS", "State", "reply_transition"]


class State(enum.Enum):
    """Where an SMTP client session stands."""

    GREETING = "greeting"
    """Connected; waiting for the server's 220 greeting."""
    CONNECTED = "connected"
    """Greeted (or TLS just established); EHLO not yet accepted."""
    READY = "ready"
    """EHLO accepted; no mail transaction open."""
    AUTH = "auth"
    """A SASL exchange is in progress; only AUTH responses may be sent."""
    STARTTLS = "starttls"
    """The server said 220 to STARTTLS; nothing may be sent until the TLS handshake is done."""
    MAIL = "mail"
    """A mail transaction is open: MAIL sent, RCPTs may follow."""
    DATA = "data"
    """DATA sent; waiting for the 354 go-ahead."""
    BODY = "body"
    """354 received; the message body is being sent."""
    BDAT = "bdat"
    """BDAT chunks are being sent; the LAST one has not gone yet."""
    END = "end"
    """The end-of-data mark (or BDAT LAST) is sent; its reply decides the message's fate."""
    CLOSED = "closed"
    """QUIT sent or the server went away."""
    ERROR = "error"
    """A protocol error happened; the session cannot be used any more."""


_ANY_OPEN = (State.CONNECTED, State.READY, State.MAIL)

# (state, verb) -> state after the command is written.
SEND_TRANSITIONS: dict[tuple[State, str], State] = {
    (State.CONNECTED, "EHLO"): State.CONNECTED,
    (State.CONNECTED, "HELO"): State.CONNECTED,
    (State.CONNECTED, "LHLO"): State.CONNECTED,
    (State.READY, "EHLO"): State.CONNECTED,
    (State.READY, "LHLO"): State.CONNECTED,
    (State.READY, "STARTTLS"): State.READY,
    (State.READY, "AUTH"): State.AUTH,
    (State.AUTH, "AUTH-RESPONSE"): State.AUTH,
    (State.READY, "MAIL"): State.MAIL,
    (State.MAIL, "RCPT"): State.MAIL,
    (State.MAIL, "DATA"): State.DATA,
    (State.MAIL, "BDAT"): State.BDAT,
    (State.BDAT, "BDAT"): State.BDAT,
    (State.BODY, "."): State.END,
    (State.READY, "RSET"): State.READY,
    (State.MAIL, "RSET"): State.READY,
    (State.CONNECTED, "RSET"): State.CONNECTED,
    (State.READY, "VRFY"): State.READY,
    (State.CONNECTED, "VRFY"): State.CONNECTED,
    **{(state, "NOOP"): state for state in _ANY_OPEN},
    **{(state, "QUIT"): State.CLOSED for state in (*_ANY_OPEN, State.GREETING)},
}

GROUP_ENDING = frozenset({"EHLO", "HELO", "LHLO", "STARTTLS", "AUTH", "AUTH-RESPONSE", "DATA",
                          ".", "VRFY", "NOOP", "QUIT"})
"""Commands after which nothing may be pipelined until their reply arrives (RFC 2920 3.1).

The end-of-data mark is one of them on purpose: RFC 2920 would allow the next
MAIL to follow the message content in the same write, but keeping commands
out of the write that carries the body closes a door to SMTP smuggling.
"""


def reply_transition(state: State, verb: str, code: int, *, transaction_open: bool) -> State:
    """Where the reply with ``code`` to the command ``verb`` takes a session in ``state``.

    ``state`` is the state after all the commands sent so far (pipelined ones
    included); ``transaction_open`` is whether the server accepted MAIL.
    """
    if state in (State.CLOSED, State.ERROR):
        return state
    ok = 200 <= code < 300
    if verb == "":  # the greeting
        return State.CONNECTED if code == 220 else State.GREETING
    if verb in ("EHLO", "HELO", "LHLO"):
        return State.READY if ok else State.CONNECTED
    if verb == "STARTTLS":
        return State.STARTTLS if code == 220 else State.READY
    if verb in ("AUTH", "AUTH-RESPONSE"):
        return State.AUTH if code == 334 else State.READY
    if verb == "MAIL":
        # A refused MAIL leaves no transaction; pipelined RCPT/DATA will be refused too.
        return state if ok else _without_transaction(state)
    if verb == "DATA":
        if code == 354:
            return State.BODY
        return State.MAIL if transaction_open else State.READY
    if verb == "BDAT":
        if ok:
            return state
        # RFC 3030 2: after a failed BDAT the transaction is over; RSET clears the server side.
        return State.MAIL if transaction_open else State.READY
    if verb == ".":
        return State.READY
    if verb == "RSET":
        return state
    if verb == "QUIT":
        return State.CLOSED
    return state


def _without_transaction(state: State) -> State:
    if state in (State.MAIL, State.DATA, State.BDAT):
        return State.READY
    return state
