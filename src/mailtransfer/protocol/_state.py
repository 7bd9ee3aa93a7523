"""The client's session states and the one table of legal moves.

Rule: everything that decides which command may be sent in which state, and
where a reply moves the session, lives in this file. ``SEND_TRANSITIONS`` says
where sending a command takes the session (optimistically, before its reply:
that is what makes PIPELINING possible); ``reply_transition`` says where the
reply then takes it. The docs' state diagram is drawn from these tables.
"""

from __future__ import annotations

import enum

__all__ = [
    "EVENT_TRANSITIONS",
    "GROUP_ENDING",
    "PIPELINABLE_AFTER",
    "SEND_TRANSITIONS",
    "State",
    "render_state_diagram",
    "reply_transition",
]


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

    # Members are singletons compared by identity: the identity hash is consistent with
    # that and, unlike Enum's hash of the name, needs no Python call (state tables are
    # looked up several times per command).
    __hash__ = object.__hash__


_ANY_OPEN = (State.CONNECTED, State.READY, State.MAIL)

# (state, verb) -> state after the command is written. The verb is the
# command's ``verb``, except that the last BDAT chunk is "BDAT LAST": it ends
# the message, like the end-of-data mark ".".
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
    (State.MAIL, "BDAT LAST"): State.END,
    (State.BDAT, "BDAT LAST"): State.END,
    (State.BODY, "."): State.END,
    # RFC 2920 3.1: the next message's MAIL may follow the end of data before its reply.
    (State.END, "MAIL"): State.MAIL,
    (State.READY, "RSET"): State.READY,
    (State.MAIL, "RSET"): State.READY,
    # RFC 5321 4.1.1.5: RSET may abort a transaction at any time, so also between chunks
    # (a streamed body whose source failed). Not during a DATA body: that is all data.
    (State.BDAT, "RSET"): State.READY,
    (State.CONNECTED, "RSET"): State.CONNECTED,
    (State.READY, "VRFY"): State.READY,
    (State.CONNECTED, "VRFY"): State.CONNECTED,
    **{(state, "NOOP"): state for state in _ANY_OPEN},
    **{(state, "QUIT"): State.CLOSED for state in (*_ANY_OPEN, State.GREETING, State.BDAT)},
}

EVENT_TRANSITIONS: dict[tuple[State, str], State] = {
    (State.STARTTLS, "tls_established()"): State.CONNECTED,
}
"""Moves made by telling the connection something rather than by a command or a reply."""

PIPELINABLE_AFTER = frozenset({"MAIL", "RCPT", "RSET", "BDAT", "."})
"""Commands that another command may follow before their reply arrives, given PIPELINING.

After the end-of-data mark only the next message's ``MAIL`` can follow (the state
table allows nothing else there), and never in LMTP, whose replies to the end of a
message come one per recipient. RFC 2920 3.1 allows message content as the first
"command" of a group, so a bulk sender sends one message's end and the next one's
envelope in one write: one round trip per message instead of two. This opens no door
to SMTP smuggling: TCP keeps no write boundaries, so what protects the end of data is
the encoding (CRLF only, dot-stuffing), not which write carries the next command.
"""

GROUP_ENDING = frozenset(
    {
        "EHLO",
        "HELO",
        "LHLO",
        "STARTTLS",
        "AUTH",
        "AUTH-RESPONSE",
        "DATA",
        "BDAT LAST",
        "VRFY",
        "NOOP",
        "QUIT",
    }
)
"""Commands after which nothing may be pipelined until their reply arrives (RFC 2920 3.1)."""


def reply_transition(state: State, verb: str, code: int, *, transaction_open: bool) -> State:
    """Where the reply with ``code`` to the command ``verb`` takes a session in ``state``.

    Args:
        state: the state after all the commands sent so far (pipelined ones included).
        verb: the table verb of the command answered: ``""`` for the greeting,
            ``"BDAT LAST"`` for the last chunk, ``"."`` for the end-of-data mark.
        code: the reply code.
        transaction_open: whether the server accepted the MAIL of the current transaction.

    Returns:
        The state after the reply.
    """
    if state in (State.CLOSED, State.ERROR):
        return state
    if code == 421:
        # RFC 5321 3.8: 421 means the server is closing the channel, whatever the command.
        return State.CLOSED
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
    if verb in ("BDAT", "BDAT LAST"):
        if ok:
            return State.READY if verb == "BDAT LAST" else state
        # RFC 3030 2: after a failed BDAT the transaction is over; RSET clears the server side.
        return State.MAIL if transaction_open else State.READY
    if verb == ".":
        # RFC 5321 4.1.1.4: whatever the reply, the transaction is over.
        return State.READY
    if verb == "QUIT":
        return State.CLOSED
    return state


REPLY_MOVES: dict[tuple[State, str, int, bool], State] = {}
"""Memo of :func:`reply_transition` by ``(state, verb, code, transaction_open)``.

The connection looks a reply up here first and calls :func:`remember_reply_transition`
on a miss, which skips a function call and its chain of tests for the few moves that
make up nearly all traffic. ``reply_transition`` is pure, so a hit is always its answer.
"""
_REPLY_MOVES_SIZE = 512


def remember_reply_transition(state: State, verb: str, code: int, transaction_open: bool) -> State:
    """:func:`reply_transition`, its answer kept in :data:`REPLY_MOVES` (a bounded memo)."""
    move = reply_transition(state, verb, code, transaction_open=transaction_open)
    if len(REPLY_MOVES) >= _REPLY_MOVES_SIZE:
        # Bounded: a server cycling through every code cannot grow it.
        REPLY_MOVES.clear()
    REPLY_MOVES[state, verb, code, transaction_open] = move
    return move


def _without_transaction(state: State) -> State:
    if state in (State.MAIL, State.DATA, State.BDAT, State.END):
        return State.READY
    return state


# -- the docs' state diagram -------------------------------------------------------------

# One reply code stands for each group the rules tell apart; 421 is left out
# because it closes the session whatever the command (drawn as a note).
_SAMPLE_CODES = {"220": 220, "235": 235, "250": 250, "334": 334, "354": 354, "4xx": 450, "5xx": 550}
_TWO_XX = ("220", "235", "250")
_IN_TRANSACTION = frozenset({State.MAIL, State.DATA, State.BODY, State.BDAT, State.END})


def render_state_diagram() -> str:
    """Draw the state machine as a Mermaid ``stateDiagram-v2`` block, from the tables above.

    Each entry of ``SEND_TRANSITIONS`` gives an edge labelled with the verb;
    ``reply_transition`` is then asked where each kind of reply to that
    command leads (the transaction counts as open in the transaction states,
    as it is once MAIL has been answered), giving edges such as
    ``DATA 354``. Replies that leave the state as it is are not drawn; edges
    between the same two states share one arrow. docs/protocol.md holds the
    output, and a test checks that it is current.

    Returns:
        The diagram as a fenced Markdown code block, ending with a newline.
    """
    edges: dict[tuple[State, State], list[str]] = {}

    def add(source: State, target: State, label: str) -> None:
        labels = edges.setdefault((source, target), [])
        if label not in labels:
            labels.append(label)

    moves: list[tuple[State | None, str, State]] = [(None, "", State.GREETING)]
    moves += [(state, verb, target) for (state, verb), target in SEND_TRANSITIONS.items()]
    for source, verb, after in moves:
        name = _verb_label(verb)
        if source is not None:
            add(source, after, name)
        groups: dict[State, list[str]] = {}
        for sample, code in _SAMPLE_CODES.items():
            target = reply_transition(after, verb, code, transaction_open=after in _IN_TRANSACTION)
            groups.setdefault(target, []).append(sample)
        for target, samples in groups.items():
            if target is not after:
                add(after, target, f"{name} {_describe(samples, len(groups))}")
    for (source, event), target in EVENT_TRANSITIONS.items():
        add(source, target, event)

    lines = ["```mermaid", "stateDiagram-v2"]
    lines += [f'    state "{state.name}" as {_node(state)}' for state in State]
    lines.append(f"    [*] --> {_node(State.GREETING)}")
    lines += [
        f"    {_node(source)} --> {_node(target)}: {', '.join(labels)}"
        for (source, target), labels in edges.items()
    ]
    lines.append(f"    {_node(State.CLOSED)} --> [*]")
    lines.append(f"    note right of {_node(State.CLOSED)}: from any state on 421 or EOF")
    lines.append(f"    note right of {_node(State.ERROR)}: from any state on a bad reply")
    lines.append("```")
    return "\n".join(lines) + "\n"


def _node(state: State) -> str:
    # A prefix keeps Mermaid keywords ("end", "state") from being read as node names.
    return f"s_{state.value}"


def _verb_label(verb: str) -> str:
    return {"": "greeting", ".": "end-of-data"}.get(verb, verb)


def _describe(samples: list[str], groups: int) -> str:
    if groups == 1:
        return "any reply"
    named = _collapse(samples)
    others = _collapse([s for s in _SAMPLE_CODES if s not in samples])
    # Name whichever side is shorter: "not 2xx" reads better than "334/354/4xx/5xx".
    if len(others) < len(named):
        return "not " + "/".join(others)
    return "/".join(named)


def _collapse(samples: list[str]) -> list[str]:
    if all(s in samples for s in _TWO_XX):
        return ["2xx", *(s for s in samples if s not in _TWO_XX)]
    return samples
