"""The harness of bench_send.py: smtp-sink, CPU pinning, child processes, load checks, tables.

Kept apart from the contenders so that what is measured (bench_send.py)
reads on its own. Nothing here imports mailtransfer.
"""

from __future__ import annotations

import datetime
import os
import platform
import re
import selectors
import shutil
import socket
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "RECIPIENT",
    "SENDER",
    "ChildRun",
    "Contender",
    "Samples",
    "Sink",
    "big_table",
    "cpu_plan",
    "find_tool",
    "machine_busy",
    "machine_info",
    "make_big_message",
    "make_message",
    "ratio",
    "run_child",
    "throughput_table",
    "wait_until_quiet",
]

SENDER = "sender@bench.example"
RECIPIENT = "rcpt@bench.example"

_MESG = re.compile(rb"mesg=(\d+)\r")
_LINE = b"The quick brown fox jumps over the lazy dog; pack my box with five dozen jugs"


def find_tool(name: str) -> str:
    """The path of a Postfix test tool (``/usr/sbin`` is often not on a user's PATH).

    Raises:
        SystemExit: the tool is not installed (see benchmarks/README.md).
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


# -- test messages ---------------------------------------------------------------------------


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
    if len(message) != size:
        raise ValueError(f"size must be at least {len(head) + 10}, got {size}")
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


# -- the machine -----------------------------------------------------------------------------


def machine_busy() -> float:
    """CPU seconds that processes on this machine have used so far (all CPUs, ``/proc/stat``).

    User, system and steal time (on a virtual machine, steal is time another
    guest took from us). Interrupt and softirq time is left out: loopback TCP
    runs there, on behalf of the benchmark itself, and no process is charged
    for it.
    """
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, _irq, _softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + steal) / os.sysconf("SC_CLK_TCK")


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


def machine_info() -> str:
    """Date, OS, CPU, Python and tool versions, for the report."""
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    postfix = subprocess.run(
        ["postconf", "-d", "-h", "mail_version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    try:
        import aiosmtplib

        aio = aiosmtplib.__version__
    except ImportError:
        aio = "not installed"
    return (
        f"{datetime.date.today().isoformat()}, {platform.system()} {platform.release()},"
        f" {cpu}, {os.cpu_count()} CPUs ({len(os.sched_getaffinity(0))} usable),"
        f" Python {platform.python_version()}, smtp-sink/smtp-source from Postfix"
        f" {postfix or '?'}, aiosmtplib {aio}"
    )


# -- child processes -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChildRun:
    """What a finished child process left: its output, peak RSS and times."""

    stdout: str
    max_rss_kb: int
    cpu_seconds: float
    wall_seconds: float


def run_child(command: list[str], *, env: dict[str, str] | None, timeout: float) -> ChildRun:
    """Run ``command`` to completion and read its own resource usage with ``wait4``.

    ``getrusage(RUSAGE_CHILDREN)`` would give the largest of *all* children so
    far; ``wait4`` gives this child's own peak RSS (``taskset`` execs, so the
    pid is the measured program's).

    Raises:
        RuntimeError: the child failed or ran longer than ``timeout``.
    """
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        out, err = _drain(proc, timeout)
    finally:
        # Reap it here, whatever happened, and read its own rusage.
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        tail = err.decode(errors="replace").strip()[-2000:]
        raise RuntimeError(f"{command[:6]}... exited with {proc.returncode}: {tail}")
    return ChildRun(
        stdout=out.decode(),
        max_rss_kb=usage.ru_maxrss,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        wall_seconds=wall,
    )


def _drain(proc: subprocess.Popen[bytes], timeout: float) -> tuple[bytes, bytes]:
    """Read both pipes to EOF without reaping the child (``wait4`` must do that)."""
    assert proc.stdout is not None
    assert proc.stderr is not None
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


# -- the sink --------------------------------------------------------------------------------


class Sink:
    """``smtp-sink`` on 127.0.0.1, discarding mail and counting it (``-c``).

    The counters go to a file as ``sess=N quit=N mesg=N`` updates, one after
    each session end, QUIT and end of data; :meth:`accepted` reads the latest
    ``mesg`` value, the number of messages the sink has accepted so far.
    smtp-sink offers PIPELINING, 8BITMIME, SIZE and DSN by default.
    """

    def __init__(self, workdir: Path, pin: list[str]) -> None:
        self.pin = pin
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._out = workdir / "smtp-sink.out"
        self._offset = 0
        self._last = 0

    def start(self) -> None:
        """Start the sink on a free port and wait until it answers.

        Raises:
            RuntimeError: it did not start within 10 seconds.
        """
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
        # utime and stime are fields 14 and 15 of proc(5); this split starts at field 3.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def settle(self, at_least: int, timeout: float = 10.0) -> int:
        """Wait until the count reaches ``at_least`` (or ``timeout`` passes); return the count."""
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


# -- results and tables ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Contender:
    """One row of the throughput table: a child kind at a concurrency."""

    label: str
    kind: str
    conc: int


@dataclass(slots=True)
class Samples:
    """What the runs of one contender measured, one list entry per run."""

    rates: list[float] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)
    sink_us: list[float] = field(default_factory=list)
    other_load: list[float] = field(default_factory=list)
    rss_kb: list[int] = field(default_factory=list)
    sent: int = 0
    accepted: int = 0
    failed: int = 0


def ratio(samples: dict[Contender, Samples], a: Contender, b: Contender) -> float:
    """Median over runs of a's rate / b's rate in the same run."""
    pairs = zip(samples[a].rates, samples[b].rates, strict=True)
    return statistics.median(x / y for x, y in pairs)


def throughput_table(
    plan: list[Contender], samples: dict[Contender, Samples], count: int, runs: int
) -> list[str]:
    """The main table, as Markdown lines."""
    refs = {c.conc: c for c in plan if c.kind == "smtp_source"}
    lines = [
        f"Each row: {runs} runs of {count:,} messages of 2,048 bytes; median (min-max).",
        "",
        "| contender | conn. | messages/s | vs smtp-source | client CPU us/msg"
        " | sink load | other load | peak RSS MB | sink accepted / sent | failures |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for c in plan:
        s = samples[c]
        ref = refs.get(c.conc)
        versus = f"{ratio(samples, c, ref):.2f}x" if ref is not None else "-"
        rate = statistics.median(s.rates)
        # Sink CPU per message times the rate: near 100% means the sink, not the client, set it.
        load = rate * statistics.median(s.sink_us) / 1e6
        lines.append(
            f"| {c.label} | {c.conc} | {rate:,.0f} ({min(s.rates):,.0f}-{max(s.rates):,.0f})"
            f" | {versus} | {statistics.median(s.cpu_us):.0f} | {load:.0%}"
            f" | {max(s.other_load):.2f} | {max(s.rss_kb) / 1024:.0f}"
            f" | {s.accepted:,} / {s.sent:,} | {s.failed} |"
        )
    return lines


def big_table(
    big: dict[str, tuple[float, int, bool]], labels: dict[str, str], mb: int
) -> list[str]:
    """The large-message table: MB/s, peak RSS, and whether the sink got the message."""
    lines = [
        "",
        f"One {mb} MB message:",
        "",
        "| sender | MB/s | peak RSS MB | arrived |",
        "|---|--:|--:|---|",
    ]
    for kind, (speed, rss, ok) in big.items():
        shown = f"{speed:.0f}" if speed else "-"
        lines.append(f"| {labels[kind]} | {shown} | {rss / 1024:.0f} | {'yes' if ok else 'NO'} |")
    return lines
