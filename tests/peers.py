"""Real external peers for integration tests: Postfix's smtp-sink and dnsmasq.

Both run as child processes on loopback with a free port. When a binary is missing the test is
skipped with the install command, unless ``MAILTRANSFER_REQUIRE_PEERS=1`` (as in ``.ci/run``),
where a missing peer is a failure: CI must never pass by skipping its real-server tests.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import dns.exception
import dns.message
import dns.query
import dns.resolver
import pytest

REQUIRE_PEERS_ENV = "MAILTRANSFER_REQUIRE_PEERS"

SMTP_SINK_HINT = (
    "apt-get install postfix (see .ci/run for installing it without starting a mail daemon)"
)
DNSMASQ_HINT = "apt-get install dnsmasq-base"

_COUNTERS = re.compile(r"sess=(\d+) quit=(\d+) mesg=(\d+)")


def find_binary(name: str, hint: str) -> str:
    """Return the path of ``name`` (also looked for in the sbin directories).

    Skips the calling test when it is missing, or fails it when peers are required.
    """
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin", "/sbin"])
    path = shutil.which(name, path=search)
    if path is not None:
        return path
    message = f"{name} is not installed; install it with: {hint}"
    if os.environ.get(REQUIRE_PEERS_ENV) == "1":
        pytest.fail(f"{message} ({REQUIRE_PEERS_ENV}=1 forbids skipping)")
    pytest.skip(message)


def free_port(host: str = "127.0.0.1", *, udp_too: bool = False) -> int:
    """Find a port that is free on ``host`` for TCP (and UDP with ``udp_too``).

    Another process may take it before the caller binds it; callers retry on that.
    """
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((host, 0))
            port = int(tcp.getsockname()[1])
            if not udp_too:
                return port
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((host, port))
                except OSError:
                    continue
                return port
    raise RuntimeError(f"no free port found on {host}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@dataclass(frozen=True, slots=True)
class SmtpSink:
    """A running ``smtp-sink``.

    Attributes:
        host: the address it listens on.
        port: the port it listens on.
        log: the file holding its output (the ``-c`` counters, ``-v`` conversations).
    """

    host: str
    port: int
    log: Path

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)``."""
        return (self.host, self.port)

    def output(self) -> str:
        """Everything smtp-sink printed so far."""
        return self.log.read_text(errors="replace")

    def counters(self) -> dict[str, int]:
        """The latest ``-c`` counters: ``sess``, ``quit`` and ``mesg`` (all 0 at first).

        ``sess`` includes the readiness probe made at start-up.
        """
        found = _COUNTERS.findall(self.output())
        sess, quit_, mesg = (int(v) for v in found[-1]) if found else (0, 0, 0)
        return {"sess": sess, "quit": quit_, "mesg": mesg}

    def wait_for_messages(self, count: int, timeout: float = 5.0) -> int:
        """Wait until smtp-sink has counted ``count`` messages; return the count.

        Raises:
            TimeoutError: fewer messages were counted in time.
        """
        deadline = time.monotonic() + timeout
        while (seen := self.counters()["mesg"]) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"smtp-sink counted {seen} message(s), expected {count}")
            time.sleep(0.02)
        return seen


def _wait_for_tcp(host: str, port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 10.0
    while True:
        if process.poll() is not None:
            raise RuntimeError(
                f"smtp-sink exited with status {process.returncode}: {log.read_text()!r}"
            )
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


@contextlib.contextmanager
def smtp_sink(
    port: int = 0,
    options: Sequence[str] = (),
    *,
    host: str = "127.0.0.1",
    backlog: int = 256,
) -> Iterator[SmtpSink]:
    """Run Postfix's ``smtp-sink`` on loopback for the duration of the ``with`` block.

    Args:
        port: the port; 0 picks a free one.
        options: extra switches, e.g. ``["-p"]`` (no PIPELINING) or ``["-Q", "MAIL"]``
            (421 after MAIL); see ``man 1 smtp-sink``. ``-c`` is always on.
        host: the address to listen on.
        backlog: the listen backlog.

    Yields:
        The running sink.
    """
    binary = find_binary("smtp-sink", SMTP_SINK_HINT)
    # smtp-sink refuses to run as root unless told which user to become.
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    with tempfile.TemporaryDirectory(prefix="smtp-sink-") as tmp:
        log = Path(tmp) / "smtp-sink.log"
        for attempt in range(3):  # a port found free may be taken before smtp-sink binds it
            chosen = port or free_port(host)
            with log.open("wb") as out:
                process = subprocess.Popen(
                    [binary, "-c", *user, *options, f"{host}:{chosen}", str(backlog)],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            try:
                _wait_for_tcp(host, chosen, process, log)
                break
            except RuntimeError:
                if port or attempt == 2 or "in use" not in log.read_text():
                    raise
        try:
            yield SmtpSink(host, chosen, log)
        finally:
            _stop(process)


class DnsServer(NamedTuple):
    """Where a test DNS server answers: a ``(host, port)`` pair."""

    host: str
    port: int

    def resolver(self) -> dns.resolver.Resolver:
        """A dnspython resolver that asks only this server."""
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [self.host]
        resolver.port = self.port
        resolver.lifetime = 2.0
        return resolver


def _dnsmasq_config(records: Iterable[str], host: str, port: int, domain: str) -> str:
    lines = [
        f"port={port}",
        f"listen-address={host}",
        "bind-interfaces",
        "no-resolv",  # never forward: every answer comes from this file
        "no-hosts",
        "no-daemon",
        f"local=/{domain}/",  # names under the test domain that are not listed: NXDOMAIN
    ]
    for record in records:
        if "\n" in record or "\r" in record:
            raise ValueError(f"a dnsmasq record must be one line, got {record!r}")
        lines.append(record)
    return "\n".join(lines) + "\n"


def _answers(host: str, port: int, domain: str) -> bool:
    query = dns.message.make_query(f"probe.{domain}", "A")
    try:
        dns.query.udp(query, host, port=port, timeout=0.2)
    except (OSError, dns.exception.Timeout):
        return False
    return True


@contextlib.contextmanager
def dnsmasq(
    records: Iterable[str],
    *,
    host: str = "127.0.0.1",
    domain: str = "test",
) -> Iterator[DnsServer]:
    """Run dnsmasq as an authoritative-only DNS server for ``domain`` on loopback.

    Args:
        records: dnsmasq configuration lines, e.g.
            ``"mx-host=example.test,mx1.example.test,10"`` or
            ``'txt-record=example.test,"v=spf1 -all"'`` (see .ci's RECIPES and
            ``man dnsmasq``).
        host: the address to answer on.
        domain: the zone answered locally; other names are not forwarded anywhere.

    Yields:
        The ``(host, port)`` it answers on, with a ``resolver()`` helper.
    """
    binary = find_binary("dnsmasq", DNSMASQ_HINT)
    lines = list(records)
    with tempfile.TemporaryDirectory(prefix="dnsmasq-") as tmp:
        conf = Path(tmp) / "dnsmasq.conf"
        log = Path(tmp) / "dnsmasq.log"
        for _attempt in range(3):  # the free port may be taken before dnsmasq binds it
            port = free_port(host, udp_too=True)
            conf.write_text(_dnsmasq_config(lines, host, port, domain))
            with log.open("wb") as out:
                process = subprocess.Popen(
                    [binary, f"--conf-file={conf}"], stdout=out, stderr=subprocess.STDOUT
                )
            deadline = time.monotonic() + 10.0
            while process.poll() is None and not _answers(host, port, domain):
                if time.monotonic() > deadline:
                    _stop(process)
                    raise TimeoutError(f"dnsmasq did not answer on {host}:{port}")
            if process.poll() is None:
                break
            if "in use" not in log.read_text():
                raise RuntimeError(
                    f"dnsmasq exited with status {process.returncode}: {log.read_text()!r}"
                )
        else:
            raise RuntimeError("dnsmasq could not bind a free port in 3 attempts")
        try:
            yield DnsServer(host, port)
        finally:
            _stop(process)
