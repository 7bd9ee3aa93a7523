"""The command line's parts, in process: exit codes, option parsing, batch readers, progress."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailtransfer import errors
from mailtransfer.cli import ExitCode, exit_code_for, main
from mailtransfer.cli._options import add_connection_options, mailer_arguments
from mailtransfer.cli._progress import ProgressBar
from mailtransfer.cli._sources import detect_format, read_batch
from mailtransfer.cli.send import _addresses, _header
from mailtransfer.protocol import Reply, Stage
from mailtransfer.tls import ImplicitTLS, NoTLS, StartTLS


def reply(code: int, text: str = "x") -> Reply:
    return Reply(code, (text,))


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (errors.DeliveryUnknown("lost", stage=Stage.END_OF_DATA), ExitCode.UNKNOWN),
        (errors.BadCredentials(reply=reply(535), stage=Stage.AUTH), ExitCode.AUTH),
        (errors.TemporaryAuthFailure(reply=reply(454), stage=Stage.AUTH), ExitCode.AUTH),
        (errors.AuthenticationRequired(reply=reply(530), stage=Stage.MAIL), ExitCode.AUTH),
        (errors.NoSuitableMechanism("none", offered=("X",), usable=()), ExitCode.AUTH),
        (errors.CertificateVerifyFailed("bad", stage=Stage.TLS_HANDSHAKE), ExitCode.TLS),
        (errors.TLSRequired("no starttls", stage=Stage.EHLO), ExitCode.TLS),
        (errors.InvalidAddress("bad"), ExitCode.USAGE),
        (errors.HeaderInjection("bad"), ExitCode.USAGE),
        (errors.ConnectError("refused", stage=Stage.CONNECT), ExitCode.CONNECTION),
        (errors.ReadTimeout("slow", stage=Stage.DATA), ExitCode.CONNECTION),
        (errors.ServiceUnavailable(reply=reply(421), stage=Stage.GREETING), ExitCode.CONNECTION),
        (errors.ServerDisconnected("gone", stage=Stage.RCPT), ExitCode.CONNECTION),
        (errors.UnknownMailbox(reply=reply(550), stage=Stage.RCPT), ExitCode.DELIVERY),
        (errors.PermanentError(reply=reply(554), stage=Stage.END_OF_DATA), ExitCode.DELIVERY),
        (
            errors.RecipientsRefused(
                refused={"a@x.test": errors.UnknownMailbox(reply=reply(550), stage=Stage.RCPT)}
            ),
            ExitCode.DELIVERY,
        ),
    ],
    ids=lambda value: type(value).__name__,
)
def test_exit_code_for_each_kind_of_failure(
    error: errors.MailTransferError, code: ExitCode
) -> None:
    assert exit_code_for(error) is code


def test_exit_codes_are_distinct_and_documented() -> None:
    values = [member.value for member in ExitCode]
    assert len(set(values)) == len(values)
    table = (Path(__file__).parents[2] / "docs" / "cli.md").read_text()
    for member in ExitCode:
        assert f"| {member.value} | `{member.name}` |" in table


def parse(*argv: str) -> Any:
    import argparse

    parser = argparse.ArgumentParser()
    add_connection_options(parser)
    return parser.parse_args(argv)


def test_connection_options(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MAILTRANSFER_URL", raising=False)
    monkeypatch.setenv("MAILTRANSFER_PASSWORD", "pw")
    url, options = mailer_arguments(parse("--server", "mx.example.test:2525", "--tls", "none"))
    assert url is None
    assert (options["host"], options["port"], type(options["tls"])) == (
        "mx.example.test",
        2525,
        NoTLS,
    )
    url, options = mailer_arguments(parse("smtps://h.example.test", "--auth-user", "u"))
    assert url == "smtps://h.example.test"
    assert (options["username"], options["password"]) == ("u", "pw")
    cafile = tmp_path / "ca.pem"
    from mailtransfer.testing import tls_certificates

    tls_certificates().write_ca(cafile)
    _, options = mailer_arguments(parse("smtps://h.example.test", "--cafile", str(cafile)))
    assert isinstance(options["tls"], ImplicitTLS)
    assert options["tls"].context is not None
    _, options = mailer_arguments(parse("--server", "[::1]:587", "--cafile", str(cafile)))
    assert options["host"] == "::1"
    assert isinstance(options["tls"], StartTLS)
    monkeypatch.setenv("MAILTRANSFER_URL", "lmtp://127.0.0.1")
    assert mailer_arguments(parse())[0] == "lmtp://127.0.0.1"


@pytest.mark.parametrize(
    "argv",
    [
        (),
        ("smtp://a.test", "--url", "smtp://b.test"),
        ("smtp://a.test", "--server", "b.test"),
        ("--server", "a.test:99999"),
        ("--server", "a.test", "--tls", "none", "--cafile", "/nonexistent"),
        ("--server", "a.test", "--cafile", "/nonexistent/ca.pem"),
        ("--server", "a.test", "--timeout", "-1"),
        ("--server", "a.test", "--auth-user", "u", "--password-env", "UNSET_FOR_SURE"),
    ],
)
def test_bad_connection_options(monkeypatch: pytest.MonkeyPatch, argv: tuple[str, ...]) -> None:
    monkeypatch.delenv("MAILTRANSFER_URL", raising=False)
    monkeypatch.delenv("UNSET_FOR_SURE", raising=False)
    with pytest.raises(errors.UsageError):
        mailer_arguments(parse(*argv))


def test_main_reports_usage_errors_with_their_code(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["send", "--server", "127.0.0.1:1", "--tls", "none", "--to", "b@x.test"])
    assert code == ExitCode.USAGE
    assert "needs --from" in capsys.readouterr().err


header_names = st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,20}", fullmatch=True)
header_values = st.text(st.characters(blacklist_characters="\r\n", codec="utf-8"), max_size=40)


@given(header_names, header_values)
def test_header_option_round_trip(name: str, value: str) -> None:
    assert _header(f"{name}: {value}") == (name, value.strip())


@given(st.text(st.characters(blacklist_characters=":"), max_size=30))
def test_header_option_without_colon_is_refused(text: str) -> None:
    with pytest.raises(errors.UsageError):
        _header(text)


@given(st.lists(st.from_regex(r"[a-z]{1,8}@[a-z]{1,8}\.test", fullmatch=True), max_size=6))
def test_address_lists_split_on_commas(addresses: list[str]) -> None:
    assert _addresses([", ".join(addresses)]) == addresses
    assert _addresses(addresses) == addresses


json_arguments = st.fixed_dictionaries(
    {"from": st.just("a@example.test")},
    optional={
        "to": st.lists(st.just("b@example.test"), max_size=2),
        "subject": st.text(max_size=20),
        "text": st.text(max_size=40),
    },
)


@given(st.lists(json_arguments, max_size=5))
def test_json_lines_read_back(tmp_path_factory: Any, entries: list[dict[str, Any]]) -> None:
    path = tmp_path_factory.mktemp("jsonl") / "batch.jsonl"
    path.write_text("".join(json.dumps(entry) + "\n\n" for entry in entries), encoding="utf-8")
    batch = read_batch(path, detect_format(path))
    assert [label for label, _ in batch] == [f"line {2 * i + 1}" for i in range(len(entries))]
    for (_, item), entry in zip(batch, entries, strict=True):
        assert item == {("sender" if k == "from" else k): v for k, v in entry.items()}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json}\n", "line 1: not JSON"),
        ("[1, 2]\n", "line 1: expected an object"),
        ('{"from": "a@x.test", "color": 1}\n', "line 1: unknown keys color"),
    ],
)
def test_malformed_json_lines(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(text)
    with pytest.raises(errors.UsageError, match=message):
        read_batch(path, "jsonl")


def test_formats_detected(tmp_path: Path) -> None:
    assert detect_format(tmp_path) == "eml"
    assert detect_format(tmp_path / "x.NDJSON") == "jsonl"
    assert detect_format(tmp_path / "Sent") == "mbox"
    with pytest.raises(errors.UsageError):
        read_batch(tmp_path / "missing", "mbox")


@given(st.integers(min_value=1, max_value=500), st.data())
def test_progress_bar_counts_and_fills(total: int, data: st.DataObject) -> None:
    outcomes = data.draw(st.lists(st.booleans(), min_size=total, max_size=total))
    stream = io.StringIO()
    bar = ProgressBar(total, stream=stream, width=20)
    for ok in outcomes:
        bar.update(ok)
    lines = stream.getvalue().splitlines()
    assert (
        lines[-1]
        == f"[{'#' * 20}] {total}/{total}  ok {sum(outcomes)}  failed {total - sum(outcomes)}"
    )
    assert len(lines) <= 11  # a line per tenth, not per message
