"""Property tests: quoteaddr/quotedata agree with the standard module; data arrives intact."""

from __future__ import annotations

import smtplib as std_smtplib

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mailtransfer.compat import smtplib
from mailtransfer.protocol._data import decode_data, normalize_line_endings
from mailtransfer.testing import RecordingServer

# Text heavy in the characters that matter: line breaks, dots, brackets, quotes, commas.
tricky = st.text(
    alphabet=st.one_of(st.sampled_from('\r\n.<>@"(),:; \t\\'), st.characters()), max_size=60
)


@given(tricky)
@example("Alice <alice@example.org>")
@example("<>")
@example("  <already@quoted>")
@example("")
def test_quoteaddr_matches_the_standard_module(address: str) -> None:
    assert smtplib.quoteaddr(address) == std_smtplib.quoteaddr(address)


@given(tricky)
@example("abc\n.jkl\rfoo\r\n..blue")
@example(".")
@example("\r\r\n.")
def test_quotedata_matches_the_standard_module(data: str) -> None:
    assert smtplib.quotedata(data) == std_smtplib.quotedata(data)


@given(tricky)
def test_quotedata_is_crlf_only_and_reversible(data: str) -> None:
    quoted = smtplib.quotedata(data)
    assert quoted.count("\r") == quoted.count("\n") == quoted.count("\r\n")
    for line in quoted.split("\r\n"):
        assert not line.startswith(".") or line.startswith("..")
    # Un-stuffing what goes on the wire gives back the text with CRLF line endings.
    wire = (quoted + "\r\n.\r\n").encode("utf-8", "surrogatepass")
    normalized = data.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")
    assert decode_data(wire) == (normalized + "\r\n").encode("utf-8", "surrogatepass")


bodies = st.lists(
    st.one_of(
        st.sampled_from([b".", b"..", b"\r", b"\n", b"\r\n", b".\r\n", b"\n.\n"]), st.binary()
    ),
    max_size=12,
).map(b"".join)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies)
@example(body=b"a\n.\r\nMAIL FROM:<evil@example.test>\r\n")
@example(body=b"")
def test_data_arrives_crlf_normalised_and_whole(smtp_server: RecordingServer, body: bytes) -> None:
    smtp_server.clear()
    with smtplib.SMTP(smtp_server.host, smtp_server.port, local_hostname="c.test") as client:
        client.sendmail("a@example.test", "b@example.test", body)
    (received,) = smtp_server.messages
    expected = normalize_line_endings(body)
    if not expected.endswith(b"\r\n"):
        expected += b"\r\n"
    assert received.data == expected
