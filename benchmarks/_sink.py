"""Helpers for bench_send.py: the smtp-sink server, CPU pinning, child processes, test messages.

Kept apart from the contenders so that what is measured (bench_send.py) reads
on its own. Nothing here imports mailtransfer.
"""

from __future__ import annotations

import os
import selectors
import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "SENDER",
    "RECIPIENT",
    "ChildRun",
    "Sink",
    "cpu_plan",
    "machine_busy",
    "wait_until_quiet",
    "find_tool",
    "make_big_message",
    "make_message",
    "run_child",
]

SENDER = "sender@bench.example"
RECIPIENT = "rcpt@bench.example"

_MESG = re.compile(rb"mesg=(\d+)\r")
_LINE = b"The quick brown fox jumps over the lazy dog; pack my box with five dozen jugs"


def find_tool(name: str) -> str:
    """The path of a Postfix test tool (``/usr/sbin`` is often not on a user's PATH).

    Raises:
        SystemExit: the tool is not installed (see /work/shared/RECIPES.md).
    """
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise SystemExit(
            f"{name} not found: install Debian's postfix package without starting it"
            " (see benchmarks/README.md)"
        )
    return found


def cpu_plan() -> tuple[list[str], list[str]]:
    """``taskset`` prefixes for the sink and for the clients: two different CPUs if there are two.

    With one CPU (or no taskset), nothing is pinned and both prefixes are empty.
    """
    cpus = sorted(os.sched_getaffinity(0))
    taskset = shutil.which("taskset")
    if len(cpus) < 2 or taskset is None:
        return [], []
    return [taskset, "-c", str(cpus[0])], [taskset, "-c", str(cpus[1])]


def make_message(size: int = 2048) -> bytes:
    """A plain-text message of exactly ``size`` bytes, CRLF lines, with Date and Message-ID.

    One body line starts with a dot, so every client must dot-stuff it
    (RFC 5321 section 4.5.2) and none gets an unrealistically easy body.
    """
    head = (
        b"From: Bench Sender <sender@bench.example>\r\n"
        b"To: Bench Recipient <rcpt@bench.example>\r\n"
        b"Subject: mailtransfer throughput benchmark\r\n"
        b"Date: Mon, 02 Jun 2025 08:00:00 +0000\r\n"
        b"Message-ID: <bench.0001@bench.example>\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=us-ascii\r\n"
        b"Content-Transfer-Encoding: 7bit\r\n"
        b"\r\n"
        b".A line that starts with a dot, to be stuffed.\r\n"
    )
    lines = [head]
    total = len(head)
    while total + len(_LINE) + 2 <= size - 8:
        lines.append(_LINE + b"\r\n")
        total += len(_LINE) + 2
    lines.append(b"x" * (size - total - 2) + b"\r\n")
    message = b"".join(lines)
    assert len(message) == size, len(message)
    return message


def make_big_message(path: Path, size: int) -> int:
    """Write a text message of about ``size`` bytes to ``path``; return its exact size."""
    head = make_message(2048).split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
    block = (_LINE + b"\r\n") * 8192  # about 650 KB per write
    written = 0
    with path.open("wb") as out:
        out.write(head)
        written += len(head)
        while written + len(block) <= size:
            out.write(block)
            written += len(block)
    return written


def machine_busy() -> float:
    """CPU seconds spent so far by every process on this machine (all CPUs, from ``/proc/stat``).

    Steal time counts as busy: on a virtual machine it is time another guest
    took from us.
    """
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def wait_until_quiet(limit: float, patience: float) -> float:
    """Wait (up to ``patience`` seconds) until other processes use under ``limit`` CPUs.

    Other people's test suites on a shared machine make any benchmark lie;
    this waits for a lull. Returns the load last seen, in CPUs.
    """
    deadline = time.monotonic() + patience
    while True:
        before = machine_busy()
        time.sleep(0.5)
        load = (machine_busy() - before) / 0.5
        if load < limit or time.monotonic() >= deadline:
            return load


@dataclass(frozen=True, slots=True)
class ChildRun:
    """What a finished child process left: its output, exit status, peak RSS and times."""

    stdout: str
    returncode: int
    max_rss_kb: int
    cpu_seconds: float
    wall_seconds: float


def run_child(command: list[str], *, env: dict[str, str] | None, timeout: float) -> ChildRun:
    """Run ``command`` to completion and read its own resource usage with ``wait4``.

    ``getrusage(RUSAGE_CHILDREN)`` would give the largest of *all* children so
    far; ``wait4`` gives this child's own peak RSS (``taskset`` execs, so the
    pid is the measured program's).
    """
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        out, err = _drain(proc, timeout)
    finally:
        # Reap it here, whatever happened, and read its own rusage.
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        tail = err.decode(errors="replace").strip()[-2000:]
        raise RuntimeError(f"{command[:6]}... exited with {proc.returncode}: {tail}")
    return ChildRun(
        stdout=out.decode(),
        returncode=proc.returncode,
        max_rss_kb=usage.ru_maxrss,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        wall_seconds=wall,
    )


def _drain(proc: subprocess.Popen[bytes], timeout: float) -> tuple[bytes, bytes]:
    """Read both pipes to EOF without reaping the child (``wait4`` must do that)."""

    assert proc.stdout is not None and proc.stderr is not None
    chunks: dict[int, list[bytes]] = {proc.stdout.fileno(): [], proc.stderr.fileno(): []}
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        sel.register(proc.stderr, selectors.EVENT_READ)
        while sel.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                proc.kill()
                raise RuntimeError(f"child {proc.args!r} ran longer than {timeout}s")
            for key, _ in sel.select(left):
                data = os.read(key.fd, 65536)
                if data:
                    chunks[key.fd].append(data)
                else:
                    sel.unregister(key.fileobj)
    return b"".join(chunks[proc.stdout.fileno()]), b"".join(chunks[proc.stderr.fileno()])


class Sink:
    """``smtp-sink`` on 127.0.0.1, discarding mail and counting it (``-c``).

    The counters go to a file as ``sess=N quit=N mesg=N`` updates, one after
    each session end, QUIT and end of data; :meth:`accepted` reads the latest
    ``mesg`` value, the number of messages the sink has accepted so far.
    """

    def __init__(self, workdir: Path, pin: list[str]) -> None:
        self.workdir = workdir
        self.pin = pin
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._out = workdir / "smtp-sink.out"
        self._offset = 0
        self._last = 0

    def start(self) -> None:
        """Start the sink on a free port and wait until it answers."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        command = [*self.pin, find_tool("smtp-sink"), "-c"]
        if os.geteuid() == 0:
            command += ["-u", "nobody"]  # smtp-sink refuses to run as root without it
        command += [f"127.0.0.1:{self.port}", "1024"]
        with self._out.open("wb") as out:
            self._proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    if sock.recv(100).startswith(b"220"):
                        return
            except OSError:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"smtp-sink did not start: {self._out.read_text()}"
                    ) from None
                time.sleep(0.05)

    def accepted(self) -> int:
        """Messages the sink has accepted (end of data received) since it started."""
        with self._out.open("rb") as f:
            f.seek(self._offset)
            data = f.read()
        end = data.rfind(b"\r")
        if end >= 0:
            found = _MESG.findall(data[: end + 1])
            if found:
                self._last = int(found[-1])
            self._offset += end + 1
        return self._last

    def cpu_seconds(self) -> float:
        """CPU time the sink has used so far (user + system), from ``/proc``; 0 if unknown."""
        if self._proc is None:
            return 0.0
        try:
            stat = Path(f"/proc/{self._proc.pid}/stat").read_text()
        except OSError:
            return 0.0
        fields = stat.rsplit(")", 1)[1].split()
        # Fields 14 and 15 of stat(5) (utime, stime); the split drops the first two.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def settle(self, at_least: int, timeout: float = 10.0) -> int:
        """Wait until the count reaches ``at_least`` (or stops moving); return the count."""
        deadline = time.monotonic() + timeout
        count = self.accepted()
        while count < at_least and time.monotonic() < deadline:
            time.sleep(0.02)
            count = self.accepted()
        return count

    def stop(self) -> None:
        """Stop the sink (it is ours: by its pid)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(5)
