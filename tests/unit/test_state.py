"""The state table and reply rules on their own, and the docs' diagram drawn from them.

The expected states come from the RFCs: RFC 5321 3.3 and 4.1.1 (the
transaction), RFC 2920 3.1 (what ends a pipelined group), RFC 3030 2 (BDAT),
RFC 3207 4 (STARTTLS), RFC 4954 4 (AUTH) and RFC 5321 3.8 (421).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mailtransfer.protocol import (
    Auth,
    AuthResponse,
    Bdat,
    Data,
    Ehlo,
    EndOfData,
    Helo,
    Lhlo,
    MailFrom,
    Noop,
    Quit,
    RcptTo,
    Rset,
    StartTLS,
    State,
    Vrfy,
)
from mailtransfer.protocol._state import (
    _REPLY_MOVES_SIZE,
    EVENT_TRANSITIONS,
    GROUP_ENDING,
    PIPELINABLE_AFTER,
    REPLY_MOVES,
    SEND_TRANSITIONS,
    remember_reply_transition,
    render_state_diagram,
    reply_transition,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"

S = State
COMMAND_VERBS = {
    cls.verb
    for cls in (
        Ehlo,
        Helo,
        Lhlo,
        StartTLS,
        Auth,
        AuthResponse,
        MailFrom,
        RcptTo,
        Data,
        EndOfData,
        Bdat,
        Rset,
        Noop,
        Quit,
        Vrfy,
    )
}
TABLE_VERBS = {verb for _, verb in SEND_TRANSITIONS}


# --- the send table ---------------------------------------------------------------------------


def test_every_table_verb_belongs_to_a_command() -> None:
    """The table only names verbs some command has (plus the last BDAT chunk)."""
    assert COMMAND_VERBS | {"BDAT LAST"} >= TABLE_VERBS


def test_every_command_verb_is_in_the_table() -> None:
    """Every command can be sent in some state."""
    assert COMMAND_VERBS <= TABLE_VERBS


@pytest.mark.parametrize("state", [S.STARTTLS, S.DATA, S.CLOSED, S.ERROR])
def test_nothing_can_be_sent_in_waiting_and_dead_states(state: State) -> None:
    """No command while TLS starts, a go-ahead is due, or the session is over."""
    assert [verb for (source, verb) in SEND_TRANSITIONS if source is state] == []


def test_only_the_next_mail_may_follow_the_end_of_data() -> None:
    """While the final reply is due, only the next message's MAIL (RFC 2920 3.1)."""
    assert [verb for (source, verb) in SEND_TRANSITIONS if source is S.END] == ["MAIL"]
    assert SEND_TRANSITIONS[(S.END, "MAIL")] is S.MAIL
    assert "." in PIPELINABLE_AFTER


@pytest.mark.parametrize("state", [S.GREETING, S.CONNECTED, S.READY, S.MAIL])
def test_quit_closes_from_every_open_state(state: State) -> None:
    """QUIT may be sent from any state where commands are allowed, and ends the session."""
    assert SEND_TRANSITIONS[(state, "QUIT")] is S.CLOSED


def test_greeting_state_allows_only_quit() -> None:
    """Before a 220 greeting, only QUIT may be sent (RFC 5321 3.1, after a 554 greeting)."""
    assert {verb for (source, verb) in SEND_TRANSITIONS if source is S.GREETING} == {"QUIT"}


def test_mail_only_from_ready() -> None:
    """A transaction starts only after EHLO/HELO, outside another one or right after its end."""
    assert {source for (source, verb) in SEND_TRANSITIONS if verb == "MAIL"} == {S.READY, S.END}


def test_body_state_only_ends_the_data() -> None:
    """After 354 the only command-level move is the end-of-data mark."""
    assert [verb for (source, verb) in SEND_TRANSITIONS if source is S.BODY] == ["."]


@pytest.mark.parametrize("verb", ["EHLO", "DATA", "VRFY", "QUIT", "NOOP"])
def test_rfc_2920_group_enders(verb: str) -> None:
    """RFC 2920 3.1 lists EHLO, DATA, VRFY, QUIT and NOOP as the last command of a group."""
    assert verb in GROUP_ENDING
    assert verb not in PIPELINABLE_AFTER


@pytest.mark.parametrize("verb", ["STARTTLS", "AUTH", "AUTH-RESPONSE", "BDAT LAST"])
def test_exchanges_that_must_be_answered_first(verb: str) -> None:
    """Nothing follows STARTTLS, AUTH or the last BDAT chunk before its reply."""
    assert verb in GROUP_ENDING


def test_every_table_verb_is_classified_for_pipelining() -> None:
    """Each verb either ends a pipelined group or may be followed: never both, never neither."""
    assert not GROUP_ENDING & PIPELINABLE_AFTER
    assert TABLE_VERBS <= GROUP_ENDING | PIPELINABLE_AFTER


def test_tls_established_returns_to_connected() -> None:
    """After the TLS handshake the session starts over at EHLO (RFC 3207 4.2)."""
    assert EVENT_TRANSITIONS == {(S.STARTTLS, "tls_established()"): S.CONNECTED}


# --- the reply rules --------------------------------------------------------------------------

REPLY_CASES = [
    ("greeting-220", S.GREETING, "", 220, False, S.CONNECTED),
    ("greeting-554", S.GREETING, "", 554, False, S.GREETING),
    ("ehlo-250", S.CONNECTED, "EHLO", 250, False, S.READY),
    ("ehlo-502", S.CONNECTED, "EHLO", 502, False, S.CONNECTED),
    ("ehlo-451", S.CONNECTED, "EHLO", 451, False, S.CONNECTED),
    ("helo-250", S.CONNECTED, "HELO", 250, False, S.READY),
    ("lhlo-250", S.CONNECTED, "LHLO", 250, False, S.READY),
    ("starttls-220", S.READY, "STARTTLS", 220, False, S.STARTTLS),
    ("starttls-454", S.READY, "STARTTLS", 454, False, S.READY),
    ("starttls-250-is-not-go-ahead", S.READY, "STARTTLS", 250, False, S.READY),
    ("auth-334", S.AUTH, "AUTH", 334, False, S.AUTH),
    ("auth-235", S.AUTH, "AUTH", 235, False, S.READY),
    ("auth-535", S.AUTH, "AUTH", 535, False, S.READY),
    ("auth-response-334", S.AUTH, "AUTH-RESPONSE", 334, False, S.AUTH),
    ("auth-response-235", S.AUTH, "AUTH-RESPONSE", 235, False, S.READY),
    ("auth-response-501", S.AUTH, "AUTH-RESPONSE", 501, False, S.READY),
    ("mail-250", S.MAIL, "MAIL", 250, False, S.MAIL),
    ("mail-550", S.MAIL, "MAIL", 550, False, S.READY),
    ("mail-451", S.MAIL, "MAIL", 451, False, S.READY),
    ("mail-550-with-data-pipelined", S.DATA, "MAIL", 550, False, S.READY),
    ("mail-550-with-bdat-pipelined", S.BDAT, "MAIL", 550, False, S.READY),
    ("mail-550-with-last-bdat-pipelined", S.END, "MAIL", 550, False, S.READY),
    ("mail-250-with-data-pipelined", S.DATA, "MAIL", 250, False, S.DATA),
    ("rcpt-250", S.MAIL, "RCPT", 250, True, S.MAIL),
    ("rcpt-550", S.MAIL, "RCPT", 550, True, S.MAIL),
    ("rcpt-550-with-data-pipelined", S.DATA, "RCPT", 550, True, S.DATA),
    ("data-354", S.DATA, "DATA", 354, True, S.BODY),
    ("data-554-transaction-open", S.DATA, "DATA", 554, True, S.MAIL),
    ("data-451-transaction-open", S.DATA, "DATA", 451, True, S.MAIL),
    ("data-503-no-transaction", S.READY, "DATA", 503, False, S.READY),
    ("bdat-250", S.BDAT, "BDAT", 250, True, S.BDAT),
    ("bdat-250-with-last-pipelined", S.END, "BDAT", 250, True, S.END),
    ("bdat-552", S.BDAT, "BDAT", 552, True, S.MAIL),
    ("bdat-503-no-transaction", S.READY, "BDAT", 503, False, S.READY),
    ("bdat-last-250", S.END, "BDAT LAST", 250, True, S.READY),
    ("bdat-last-554", S.END, "BDAT LAST", 554, True, S.MAIL),
    ("bdat-last-503-no-transaction", S.READY, "BDAT LAST", 503, False, S.READY),
    ("end-of-data-250", S.END, ".", 250, True, S.READY),
    ("end-of-data-554", S.END, ".", 554, True, S.READY),
    ("end-of-data-451", S.END, ".", 451, True, S.READY),
    ("rset-250", S.READY, "RSET", 250, False, S.READY),
    ("rset-250-connected", S.CONNECTED, "RSET", 250, False, S.CONNECTED),
    ("noop-250-mail", S.MAIL, "NOOP", 250, True, S.MAIL),
    ("vrfy-252", S.READY, "VRFY", 252, False, S.READY),
    ("vrfy-550", S.READY, "VRFY", 550, False, S.READY),
    ("quit-221", S.CLOSED, "QUIT", 221, False, S.CLOSED),
    ("closed-stays-closed", S.CLOSED, "MAIL", 250, False, S.CLOSED),
    ("error-stays-error", S.ERROR, "EHLO", 250, False, S.ERROR),
    ("error-ignores-421", S.ERROR, "MAIL", 421, False, S.ERROR),
]


@pytest.mark.parametrize(
    ("state", "verb", "code", "transaction_open", "expected"),
    [case[1:] for case in REPLY_CASES],
    ids=[case[0] for case in REPLY_CASES],
)
def test_reply_transition_table(
    state: State, verb: str, code: int, transaction_open: bool, expected: State
) -> None:
    """Each reply moves the session where the RFCs say."""
    assert reply_transition(state, verb, code, transaction_open=transaction_open) is expected


@pytest.mark.parametrize(
    ("state", "verb"), [("GREETING", ""), *sorted((s.name, v) for s, v in SEND_TRANSITIONS)]
)
def test_421_closes_whatever_the_command(state: str, verb: str) -> None:
    """421 means the server is closing the channel (RFC 5321 3.8), whatever it answers."""
    after = SEND_TRANSITIONS.get((State[state], verb), State[state])
    if after is S.CLOSED:
        return  # QUIT: already closed
    assert reply_transition(after, verb, 421, transaction_open=True) is S.CLOSED


# --- the diagram ------------------------------------------------------------------------------


def _between(text: str, name: str) -> str:
    start, end = f"<!-- {name}:start -->\n", f"<!-- {name}:end -->"
    assert (text.count(start), text.count(end)) == (1, 1)
    return text[text.index(start) + len(start) : text.index(end)]


def test_docs_hold_the_generated_diagram() -> None:
    """docs/protocol.md holds exactly the diagram drawn from the tables."""
    assert _between(DOCS.read_text(encoding="utf-8"), "state-diagram") == render_state_diagram()


def test_diagram_is_a_mermaid_state_diagram() -> None:
    """The diagram is one fenced mermaid block opening with stateDiagram-v2."""
    diagram = render_state_diagram()
    assert diagram.startswith("```mermaid\nstateDiagram-v2\n")
    assert diagram.endswith("\n```\n")
    assert diagram.count("```") == 2


def test_diagram_lines_are_valid_mermaid_statements() -> None:
    """Every line is a state declaration, a transition, or a note; labels hold no colon."""
    statement = re.compile(
        r'    state "[A-Z]+" as s_[a-z]+'
        r"|    (\[\*\]|s_[a-z]+) --> (\[\*\]|s_[a-z]+)(: [^:]+)?"
        r"|    note right of s_[a-z]+: [^:]+"
    )
    body = render_state_diagram().splitlines()[2:-1]
    assert [line for line in body if not statement.fullmatch(line)] == []


def test_diagram_declares_every_state() -> None:
    """Every State is a node of the diagram."""
    diagram = render_state_diagram()
    for state in State:
        assert f'state "{state.name}" as s_{state.value}\n' in diagram


def _edges() -> dict[tuple[str, str], list[str]]:
    edges = {}
    for line in render_state_diagram().splitlines():
        found = re.fullmatch(r"    s_(\w+) --> s_(\w+): (.*)", line)
        if found:
            edges[(found[1], found[2])] = found[3].split(", ")
    return edges


@pytest.mark.parametrize(("source", "verb"), sorted((s.name, v) for s, v in SEND_TRANSITIONS))
def test_diagram_draws_every_send_transition(source: str, verb: str) -> None:
    """Each entry of SEND_TRANSITIONS is an arrow labelled with its verb."""
    target = SEND_TRANSITIONS[(State[source], verb)]
    label = {".": "end-of-data"}.get(verb, verb)
    assert label in _edges()[(State[source].value, target.value)]


def test_diagram_draws_reply_edges() -> None:
    """Replies appear as their own arrows: 354 to DATA opens the body, 220 to STARTTLS waits."""
    edges = _edges()
    assert any("354" in label for label in edges[("data", "body")])
    assert any("220" in label for label in edges[("ready", "starttls")])
    assert any("220" in label for label in edges[("greeting", "connected")])


def test_diagram_draws_the_tls_handshake() -> None:
    """The move made by tls_established() is drawn."""
    assert "tls_established()" in _edges()[("starttls", "connected")]


def test_every_state_but_error_is_reachable_in_the_diagram() -> None:
    """From GREETING, the arrows reach every state (ERROR is reached from any, as noted)."""
    edges = _edges()
    seen, todo = {"greeting"}, ["greeting"]
    while todo:
        here = todo.pop()
        for source, target in edges:
            if source == here and target not in seen:
                seen.add(target)
                todo.append(target)
    assert seen == {state.value for state in State} - {"error"}


# --- the memo the connection reads replies through ---------------------------------------------


def test_remembered_moves_are_reply_transition_for_every_input() -> None:
    """Every (state, verb, code, open) gives reply_transition's answer, from the memo or not."""
    verbs = sorted({"", *TABLE_VERBS})
    for state in State:
        for verb in verbs:
            for code in range(200, 600):
                for transaction_open in (False, True):
                    expected = reply_transition(
                        state, verb, code, transaction_open=transaction_open
                    )
                    first = remember_reply_transition(state, verb, code, transaction_open)
                    again = REPLY_MOVES.get((state, verb, code, transaction_open), first)
                    assert first is expected
                    assert again is expected


def test_remembered_moves_stay_bounded() -> None:
    """A server cycling through every reply code cannot grow the memo without bound."""
    for code in range(200, 600):
        for state in State:
            remember_reply_transition(state, "RCPT", code, True)
            assert len(REPLY_MOVES) <= _REPLY_MOVES_SIZE
