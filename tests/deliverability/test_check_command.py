"""``mailtransfer check`` end to end: the real command line against a real dnsmasq."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from zones import BLOCKLIST, zone_lines

from mailtransfer.cli import main
from mailtransfer.deliverability._command import main_check
from peers import DnsServer, dnsmasq

pytestmark = pytest.mark.peers


@pytest.fixture(scope="module")
def server() -> Iterator[DnsServer]:
    """dnsmasq with the test zones."""
    with dnsmasq(zone_lines()) as running:
        yield running


def dns_args(server: DnsServer) -> list[str]:
    return ["--nameserver", server.host, "--dns-port", str(server.port), "--no-mta-sts"]


def test_table_and_exit_status(server: DnsServer, capsys: pytest.CaptureFixture[str]) -> None:
    """A failing check prints its line and fix, and exits 1."""
    argv = ["check", "good.test", "-s", "s2048", "--ip", "192.0.2.11", "--blocklist", BLOCKLIST]
    assert main([*argv, *dns_args(server)]) == 1
    out = capsys.readouterr().out
    assert "PASS   DKIM" in out
    assert f"FAIL   DNSBL    192.0.2.11 in {BLOCKLIST}" in out
    assert "fix: Find and stop the cause" in out


def test_clean_run_exits_zero(server: DnsServer, capsys: pytest.CaptureFixture[str]) -> None:
    """With only warnings the status is 0, and 1 with --strict."""
    argv = ["good.test", "-s", "s1024", "--ip", "192.0.2.10", "--no-blocklists", *dns_args(server)]
    assert main_check(argv) == 0
    assert main_check([*argv, "--strict"]) == 1  # the 1024-bit key warns
    capsys.readouterr()


def test_json_output(server: DnsServer, capsys: pytest.CaptureFixture[str]) -> None:
    """--json prints the findings as data."""
    assert main(["check", "broken.test", "--json", "--no-blocklists", *dns_args(server)]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["domain"] == "broken.test"
    assert data["status"] == "fail"
    assert {"area": "SPF", "status": "fail"}.items() <= data["findings"][1].items()


def test_bad_ip_is_a_usage_error(server: DnsServer, capsys: pytest.CaptureFixture[str]) -> None:
    """An --ip that is not an address exits 2 with a message, before any lookup."""
    assert main(["check", "good.test", "--ip", "not-an-ip", *dns_args(server)]) == 2
    assert "not-an-ip" in capsys.readouterr().err
