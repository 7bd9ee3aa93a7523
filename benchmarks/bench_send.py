#!/usr/bin/env python3
"""Messages per second and peak memory: mailtransfer against smtp-source, aiosmtplib and smtplib.

Every contender sends the same 2 KB message N times to one ``smtp-sink``
(Postfix's discarding SMTP server, pinned to CPU 0) from its own process
(pinned to CPU 1), after an untimed warm-up; each configuration runs several
times, interleaved, and the table shows medians and ratios to ``smtp-source``
measured in the same runs. The sink's own ``-c`` counter checks that every
message arrived. See docs/performance.md for the method and results.

Usage::

    python benchmarks/bench_send.py            # full run, about 2.5 minutes on 2 CPUs
    python benchmarks/bench_send.py --quick    # CI smoke run, under a minute
    python benchmarks/bench_send.py --profile  # cProfile of AsyncMailer at 16 connections
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _sink import (
    RECIPIENT,
    SENDER,
    Contender,
    Samples,
    Sink,
    big_table,
    cpu_plan,
    find_tool,
    machine_busy,
    machine_info,
    make_big_message,
    make_message,
    ratio,
    run_child,
    throughput_table,
    wait_until_quiet,
)

ROOT = Path(__file__).resolve().parent.parent
HOSTNAME = "bench.example"

# -- the contenders, each run in a child process ------------------------------------------------
# A child gets (port, message path, count, concurrency, warm-up count), warms up untimed, sends
# ``count`` messages and prints one JSON line: seconds, client CPU seconds, successes, failures.


def _timed() -> Callable[[], tuple[float, float]]:
    wall, cpu = time.perf_counter(), time.process_time()
    return lambda: (time.perf_counter() - wall, time.process_time() - cpu)


def _mailer_options(port: int, concurrency: int) -> dict[str, Any]:
    from mailtransfer import NoTLS, PoolLimits, RetryPolicy

    return {
        "host": "127.0.0.1",
        "port": port,
        "tls": NoTLS(),
        "limits": PoolLimits(max_connections=concurrency),
        "retry": RetryPolicy.none(),
        "local_hostname": HOSTNAME,
    }


def _outcomes(results: list[Any]) -> tuple[int, int]:
    from mailtransfer import SendResult

    ok = sum(1 for r in results if isinstance(r, SendResult) and r.accepted and not r.refused)
    return ok, len(results) - ok


def _async_mailer(port: int, conc: int, warm: list[Any], batch: list[Any]) -> dict[str, Any]:
    """AsyncMailer.send_many over ``conc`` connections: ``warm`` untimed, then ``batch`` timed."""
    from mailtransfer import AsyncMailer

    async def main() -> dict[str, Any]:
        async with AsyncMailer(**_mailer_options(port, conc)) as mailer:
            warmed = _outcomes(await mailer.send_many(warm))
            stop = _timed()
            results = await mailer.send_many(batch)
            seconds, cpu = stop()
        return _report(seconds, cpu, _outcomes(results), warmed)

    return asyncio.run(main())


def child_mt_async(port: int, body: bytes, n: int, conc: int, warm: int) -> dict[str, Any]:
    """AsyncMailer.send_many with raw bytes and an envelope."""
    item = {"message": body, "sender": SENDER, "recipients": [RECIPIENT]}
    return _async_mailer(port, conc, [item] * warm, [item] * n)


def _new_recipients(count: int, start: int = 0) -> list[str]:
    """``count`` addresses never used before in the run: a newsletter's envelopes."""
    return [f"rcpt{start + i}@{HOSTNAME}" for i in range(count)]


def child_mt_async_new(port: int, body: bytes, n: int, conc: int, warm: int) -> dict[str, Any]:
    """AsyncMailer.send_many with raw bytes and a new recipient for every message."""

    def items(recipients: list[str]) -> list[dict[str, Any]]:
        return [{"message": body, "sender": SENDER, "recipients": [r]} for r in recipients]

    return _async_mailer(port, conc, items(_new_recipients(warm, n)), items(_new_recipients(n)))


def child_mt_async_email(port: int, body: bytes, n: int, conc: int, warm: int) -> dict[str, Any]:
    """AsyncMailer.send_many with EmailMessage objects (envelope from the headers)."""
    message = _email_message(body)
    return _async_mailer(port, conc, [message] * warm, [message] * n)


def child_mt_conn_async(port: int, body: bytes, n: int, conc: int, warm: int) -> dict[str, Any]:
    """``conc`` AsyncConnection objects, each sending its share: no mailer, no pool, no retry."""
    from mailtransfer import AsyncConnection, NoTLS
    from mailtransfer.errors import MailTransferError

    async def share(conn: Any, count: int, tally: list[int]) -> None:
        for _ in range(count):
            try:
                result = await conn.send(body, sender=SENDER, recipients=[RECIPIENT])
            except MailTransferError:
                tally[1] += 1
            else:
                tally[0 if result.accepted and not result.refused else 1] += 1

    async def main() -> dict[str, Any]:
        conns = [
            AsyncConnection("127.0.0.1", port, tls=NoTLS(), local_hostname=HOSTNAME)
            for _ in range(conc)
        ]
        await asyncio.gather(*(c.open() for c in conns))
        warmed = [0, 0]
        await asyncio.gather(
            *(share(c, k, warmed) for c, k in zip(conns, _split(warm, conc), strict=True))
        )
        tally = [0, 0]
        stop = _timed()
        await asyncio.gather(
            *(share(c, k, tally) for c, k in zip(conns, _split(n, conc), strict=True))
        )
        seconds, cpu = stop()
        await asyncio.gather(*(c.quit() for c in conns))
        return _report(seconds, cpu, (tally[0], tally[1]), (warmed[0], warmed[1]))

    return asyncio.run(main())


def child_mt_conn_sync(port: int, body: bytes, n: int, conc: int, warm: int) -> dict[str, Any]:
    """``conc`` threads, each with its own SyncConnection sending its share: no mailer, no pool."""
    from concurrent.futures import ThreadPoolExecutor

    from mailtransfer import NoTLS, SyncConnection
    from mailtransfer.errors import MailTransferError

    def share(conn: Any, count: int) -> tuple[int, int]:
        ok = failed = 0
        for _ in range(count):
            try:
                result = conn.send(body, sender=SENDER, recipients=[RECIPIENT])
            except MailTransferError:
                failed += 1
            else:
                ok, failed = (ok + 1, failed) if result.accepted else (ok, failed + 1)
        return ok, failed

    conns = [
        SyncConnection("127.0.0.1", port, tls=NoTLS(), local_hostname=HOSTNAME) for _ in range(conc)
    ]
    for conn in conns:
        conn.open()
    with ThreadPoolExecutor(max_workers=conc) as pool:
        warmed = list(pool.map(share, conns, _split(warm, conc)))
        stop = _timed()
        tallies = list(pool.map(share, conns, _split(n, conc)))
        seconds, cpu = stop()
    for conn in conns:
        conn.quit()
    return _report(seconds, cpu, _sum(tallies), _sum(warmed))


def child_mt_sync(port: int, body: bytes, n: int, conc: int, warm: int) -> dict[str, Any]:
    """Mailer.send_many (a thread pool over the connection pool) with raw bytes."""
    from mailtransfer import Mailer

    item = {"message": body, "sender": SENDER, "recipients": [RECIPIENT]}
    with Mailer(**_mailer_options(port, conc)) as mailer:
        warmed = _outcomes(mailer.send_many([item] * warm))
        stop = _timed()
        results = mailer.send_many([item] * n)
        seconds, cpu = stop()
    return _report(seconds, cpu, _outcomes(results), warmed)


def _aiosmtplib(port: int, n: int, conc: int, warm: int, send: Any) -> dict[str, Any]:
    """``conc`` long-lived aiosmtplib clients, each sending its share in turn."""
    import aiosmtplib

    async def share(client: Any, count: int, tally: list[int]) -> None:
        for _ in range(count):
            try:
                errors, _ = await send(client)
            except aiosmtplib.SMTPException:
                tally[1] += 1
            else:
                tally[0 if not errors else 1] += 1

    async def main() -> dict[str, Any]:
        clients = [
            aiosmtplib.SMTP(
                hostname="127.0.0.1",
                port=port,
                use_tls=False,
                start_tls=False,
                local_hostname=HOSTNAME,
            )
            for _ in range(conc)
        ]
        await asyncio.gather(*(c.connect() for c in clients))
        warmed = [0, 0]
        await asyncio.gather(
            *(share(c, k, warmed) for c, k in zip(clients, _split(warm, conc), strict=True))
        )
        tally = [0, 0]
        stop = _timed()
        await asyncio.gather(
            *(share(c, k, tally) for c, k in zip(clients, _split(n, conc), strict=True))
        )
        seconds, cpu = stop()
        await asyncio.gather(*(c.quit() for c in clients))
        return _report(seconds, cpu, (tally[0], tally[1]), (warmed[0], warmed[1]))

    return asyncio.run(main())


def child_aio_sendmail(port: int, body: bytes, n: int, conc: int, warm: int) -> dict[str, Any]:
    """aiosmtplib ``sendmail`` with the raw bytes."""
    return _aiosmtplib(port, n, conc, warm, lambda c: c.sendmail(SENDER, [RECIPIENT], body))


def child_aio_sendmail_new(port: int, body: bytes, n: int, conc: int, warm: int) -> dict[str, Any]:
    """aiosmtplib ``sendmail`` with the raw bytes and a new recipient for every message."""
    recipients = iter(_new_recipients(n + warm))
    return _aiosmtplib(port, n, conc, warm, lambda c: c.sendmail(SENDER, [next(recipients)], body))


def child_aio_send_message(port: int, body: bytes, n: int, conc: int, warm: int) -> dict[str, Any]:
    """aiosmtplib ``send_message`` with an EmailMessage."""
    message = _email_message(body)
    return _aiosmtplib(port, n, conc, warm, lambda c: c.send_message(message))


def child_smtplib(port: int, body: bytes, n: int, conc: int, warm: int) -> dict[str, Any]:
    """smtplib: ``conc`` reused connections, one per thread when more than one."""
    import smtplib
    from concurrent.futures import ThreadPoolExecutor

    def share(client: smtplib.SMTP, count: int) -> tuple[int, int]:
        ok = failed = 0
        for _ in range(count):
            try:
                refused = client.sendmail(SENDER, [RECIPIENT], body)
            except smtplib.SMTPException:
                failed += 1
            else:
                ok, failed = (ok + 1, failed) if not refused else (ok, failed + 1)
        return ok, failed

    clients = [smtplib.SMTP("127.0.0.1", port, local_hostname=HOSTNAME) for _ in range(conc)]
    with ThreadPoolExecutor(max_workers=conc) as pool:
        warmed = list(pool.map(share, clients, _split(warm, conc)))
        stop = _timed()
        tallies = list(pool.map(share, clients, _split(n, conc)))
        seconds, cpu = stop()
    for client in clients:
        client.quit()
    return _report(seconds, cpu, _sum(tallies), _sum(warmed))


def child_mt_file(port: int, path: str, n: int, conc: int, warm: int) -> dict[str, Any]:
    """SyncConnection.send with an open binary file as the body (streamed in chunks)."""
    from mailtransfer import NoTLS, SyncConnection

    with SyncConnection("127.0.0.1", port, tls=NoTLS(), local_hostname=HOSTNAME) as conn:
        stop = _timed()
        with open(path, "rb") as body:
            result = conn.send(body, sender=SENDER, recipients=[RECIPIENT])
        seconds, cpu = stop()
    return _report(seconds, cpu, (1, 0) if result.accepted else (0, 1), (0, 0))


def child_smtplib_file(port: int, path: str, n: int, conc: int, warm: int) -> dict[str, Any]:
    """smtplib.sendmail with the file read into memory (smtplib takes only str or bytes)."""
    import smtplib

    with smtplib.SMTP("127.0.0.1", port, local_hostname=HOSTNAME) as client:
        stop = _timed()
        with open(path, "rb") as f:
            refused = client.sendmail(SENDER, [RECIPIENT], f.read())
        seconds, cpu = stop()
    return _report(seconds, cpu, (0, 1) if refused else (1, 0), (0, 0))


def child_idle_mt(port: int, path: str, n: int, conc: int, warm: int) -> dict[str, Any]:
    """Import mailtransfer and open one connection: the memory floor for mt_file."""
    from mailtransfer import NoTLS, SyncConnection

    with SyncConnection("127.0.0.1", port, tls=NoTLS(), local_hostname=HOSTNAME):
        pass
    return _report(0.0, 0.0, (0, 0), (0, 0))


CHILDREN: dict[str, Callable[..., dict[str, Any]]] = {
    "mt_async": child_mt_async,
    "mt_async_email": child_mt_async_email,
    "mt_async_new": child_mt_async_new,
    "aio_sendmail_new": child_aio_sendmail_new,
    "mt_sync": child_mt_sync,
    "mt_conn_async": child_mt_conn_async,
    "mt_conn_sync": child_mt_conn_sync,
    "aio_sendmail": child_aio_sendmail,
    "aio_send_message": child_aio_send_message,
    "smtplib": child_smtplib,
    "mt_file": child_mt_file,
    "smtplib_file": child_smtplib_file,
    "idle_mt": child_idle_mt,
}
FILE_CHILDREN = {"mt_file", "smtplib_file", "idle_mt"}


def _email_message(body: bytes) -> Any:
    """The 2 KB message as an application builds it: an EmailMessage with set_content().

    Same header values and body text as the raw bytes (about 2 KB flattened).
    Built, not parsed: a parsed message keeps raw header strings that every
    library must re-parse, which is a different (relaying) workload.
    """
    import email
    import email.policy
    from email.message import EmailMessage

    parsed = email.message_from_bytes(body, policy=email.policy.default)
    message = EmailMessage()
    for name in ("From", "To", "Subject", "Date", "Message-ID"):
        message[name] = parsed[name]
    text = body.split(b"\r\n\r\n", 1)[1].decode("ascii").replace("\r\n", "\n")
    message.set_content(text)
    return message


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def _sum(tallies: list[tuple[int, int]]) -> tuple[int, int]:
    return sum(t[0] for t in tallies), sum(t[1] for t in tallies)


def _report(
    seconds: float, cpu: float, outcome: tuple[int, int], warmed: tuple[int, int]
) -> dict[str, Any]:
    return {
        "seconds": seconds,
        "cpu": cpu,
        "ok": outcome[0],
        "failed": outcome[1],
        "warm_ok": warmed[0],
        "warm_failed": warmed[1],
    }


def child_main(args: argparse.Namespace) -> None:
    """Entry point of a child process: run one contender and print its JSON report."""
    func = CHILDREN[args.child]
    payload: Any = args.message if args.child in FILE_CHILDREN else Path(args.message).read_bytes()
    if args.profile_out:
        import cProfile

        profiler = cProfile.Profile()
        report = profiler.runcall(func, args.port, payload, args.count, args.conc, args.warm)
        profiler.dump_stats(args.profile_out)
    else:
        report = func(args.port, payload, args.count, args.conc, args.warm)
    print(json.dumps(report))


# -- the parent: plan, run, check, report -------------------------------------------------------

CONCURRENCIES = (1, 4, 16)
QUIET = 0.15
"""Other processes may use at most this many CPUs when a run starts (if waiting for a lull)."""


def contenders() -> list[Contender]:
    """Every configuration of the throughput table, in table order."""
    plan = [Contender("smtp-source", "smtp_source", c) for c in CONCURRENCIES]
    plan += [Contender("mailtransfer AsyncMailer, bytes", "mt_async", c) for c in CONCURRENCIES]
    plan += [Contender("mailtransfer Mailer (threads), bytes", "mt_sync", c) for c in CONCURRENCIES]
    plan += [Contender("aiosmtplib sendmail, bytes", "aio_sendmail", c) for c in CONCURRENCIES]
    plan.append(Contender("mailtransfer AsyncConnection.send, no pool", "mt_conn_async", 16))
    plan.append(Contender("mailtransfer SyncConnection.send, 16 threads", "mt_conn_sync", 16))
    plan.append(Contender("mailtransfer AsyncMailer, a new recipient each", "mt_async_new", 16))
    plan.append(Contender("aiosmtplib sendmail, a new recipient each", "aio_sendmail_new", 16))
    plan.append(Contender("mailtransfer AsyncMailer, EmailMessage", "mt_async_email", 16))
    plan.append(Contender("aiosmtplib send_message, EmailMessage", "aio_send_message", 16))
    plan.append(Contender("smtplib, one reused connection", "smtplib", 1))
    plan.append(Contender("smtplib, 16 threads x own connection", "smtplib", 16))
    return plan


TARGETS = (
    ("AsyncMailer at 16 >= smtp-source at 16", ("mt_async", 16), ("smtp_source", 16), 1.0),
    ("AsyncMailer at 16 >= 3x aiosmtplib at 16", ("mt_async", 16), ("aio_sendmail", 16), 3.0),
    ("Mailer.send_many at 16 >= 2x aiosmtplib at 16", ("mt_sync", 16), ("aio_sendmail", 16), 2.0),
    (
        "EmailMessage: AsyncMailer at 16 >= 2x aiosmtplib send_message at 16",
        ("mt_async_email", 16),
        ("aio_send_message", 16),
        2.0,
    ),
)

BIG_LABELS = {
    "idle_mt": "Python + mailtransfer imported, one open connection (the floor)",
    "mt_file": "mailtransfer SyncConnection.send(open(path, 'rb'))",
    "smtplib_file": "smtplib sendmail(f.read())",
}


class Bench:
    """Runs contenders against one sink and checks the sink's count after each run."""

    def __init__(self, workdir: Path, *, count: int, warm: int, patience: float = 0.0) -> None:
        self.workdir = workdir
        self.count = count
        self.warm = warm
        self.patience = patience
        sink_pin, self.client_pin = cpu_plan()
        self.sink = Sink(workdir, sink_pin)
        self.message = workdir / "message.eml"
        self.message.write_bytes(make_message(2048))
        paths = [str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]
        self.env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, paths)))

    def python_child(
        self, kind: str, conc: int, count: int, *, warm: int, message: Path, profile: str = ""
    ) -> list[str]:
        """The command line that runs one contender in a pinned child process."""
        command = [*self.client_pin, sys.executable, str(Path(__file__).resolve())]
        command += ["--child", kind, "--port", str(self.sink.port), "--message", str(message)]
        command += ["--count", str(count), "--conc", str(conc), "--warm", str(warm)]
        return command + (["--profile-out", profile] if profile else [])

    def smtp_source(self, conc: int, count: int) -> list[str]:
        """smtp-source reusing each session (-d), sending the same message file (-F)."""
        return [
            *self.client_pin,
            find_tool("smtp-source"),
            "-d",
            *("-s", str(conc), "-m", str(count), "-F", str(self.message)),
            *("-f", SENDER, "-t", RECIPIENT, "-M", HOSTNAME),
            f"127.0.0.1:{self.sink.port}",
        ]

    def run(self, contender: Contender, samples: Samples) -> None:
        """One timed run of one contender, with the sink's count of what arrived.

        Raises:
            RuntimeError: a child failed or reported nonsense.
        """
        if self.patience:
            wait_until_quiet(QUIET, self.patience)
        before = self.sink.accepted()
        sink_cpu = self.sink.cpu_seconds()
        busy = machine_busy()
        if contender.kind == "smtp_source":
            child = run_child(self.smtp_source(contender.conc, self.count), env=None, timeout=600)
            # smtp-source exits non-zero on any failure (and run_child raises).
            seconds, cpu, failed, sent = child.wall_seconds, child.cpu_seconds, 0, self.count
        else:
            command = self.python_child(
                contender.kind, contender.conc, self.count, warm=self.warm, message=self.message
            )
            child = run_child(command, env=self.env, timeout=600)
            report = json.loads(child.stdout.strip().splitlines()[-1])
            if report["ok"] + report["failed"] != self.count:
                raise RuntimeError(f"{contender.label}: reported {report} for {self.count}")
            seconds, cpu = report["seconds"], report["cpu"]
            failed = report["failed"] + report["warm_failed"]
            sent = self.count + self.warm
        # What everything else on the machine did meanwhile, in CPUs (ours and the sink's removed).
        other = machine_busy() - busy - child.cpu_seconds - (self.sink.cpu_seconds() - sink_cpu)
        accepted = self.sink.settle(before + sent) - before
        sink_cpu = self.sink.cpu_seconds() - sink_cpu
        samples.rates.append(self.count / seconds)
        samples.cpu_us.append(cpu / self.count * 1e6)
        samples.sink_us.append(sink_cpu / max(accepted, 1) * 1e6)
        samples.other_load.append(max(0.0, other) / child.wall_seconds)
        samples.rss_kb.append(child.max_rss_kb)
        samples.sent += sent
        samples.accepted += accepted
        samples.failed += failed

    def big(self, kind: str, path: Path) -> tuple[float, int, bool]:
        """One large-message send: seconds, peak RSS in KB, and whether the sink got it."""
        if self.patience:
            wait_until_quiet(QUIET, self.patience)
        before = self.sink.accepted()
        command = self.python_child(kind, 1, 1, warm=0, message=path)
        child = run_child(command, env=self.env, timeout=600)
        report = json.loads(child.stdout.strip().splitlines()[-1])
        arrived = kind == "idle_mt" or self.sink.settle(before + 1, timeout=30) == before + 1
        return report["seconds"], child.max_rss_kb, arrived and report["failed"] == 0


def run_benchmark(args: argparse.Namespace) -> int:
    """The whole benchmark: every contender, several interleaved runs, then the large message.

    Returns:
        1 when any message was lost or refused (a rate means nothing then), else 0.
    """
    count = _round16(args.count or (480 if args.quick else 2_000))
    # Five runs by default: on a small VM one process's CPU per message can differ from the
    # next one's by a third (docs/performance.md, Noise); --quick keeps three.
    runs = args.runs or (3 if args.quick else 5)
    big_mb = args.big_mb or (10 if args.quick else 100)
    warm = 96 if args.quick else 160
    patience = args.patience or 0.0
    mem_count = args.mem_count if args.mem_count is not None else (0 if args.quick else 10_000)
    plan = contenders()
    if args.only:
        kinds = set(args.only.split(",")) | {"smtp_source"}
        plan = [c for c in plan if c.kind in kinds]
    samples = {c: Samples() for c in plan}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mt-bench-") as tmp:
        bench = Bench(Path(tmp), count=count, warm=warm, patience=patience)
        bench.sink.start()
        try:
            # Untimed: warm the sink, the loopback path and the page cache.
            run_child(bench.smtp_source(16, 500), env=None, timeout=120)
            for run in range(runs):
                # Interleaved, each run in a rotated order: slow drifts hit every contender.
                for c in plan[run % len(plan) :] + plan[: run % len(plan)]:
                    bench.run(c, samples[c])
                    _progress(
                        f"run {run + 1}/{runs} {c.label} @{c.conc}: {samples[c].rates[-1]:,.0f}/s"
                    )
            memory = _memory(bench, mem_count) if mem_count else {}
            big = _big_messages(bench, big_mb, 1)
        finally:
            bench.sink.stop()
    lines = throughput_table(plan, samples, count, runs)
    lines += _targets(plan, samples)
    lines += _memory_table(memory, mem_count)
    lines += big_table(big, BIG_LABELS, big_mb)
    lines += ["", f"Machine: {machine_info()}.", f"Took {time.monotonic() - started:.0f} s."]
    noisy = max(max(samples[c].other_load) for c in plan)
    if noisy > QUIET:
        lines.append(
            f"WARNING: other processes used up to {noisy:.2f} CPUs during a run"
            " ('other load'); the rates of those rows are not trustworthy."
        )
    print("\n".join(lines))
    if args.json:
        raw = {f"{c.label} @{c.conc}": _as_dict(samples[c]) for c in plan}
        Path(args.json).write_text(json.dumps({"count": count, "runs": runs, "samples": raw}))
    lost = [c for c in plan if samples[c].accepted != samples[c].sent or samples[c].failed]
    lost_memory = [kind for kind, (_, ok) in memory.items() if not ok]
    return 1 if lost or lost_memory or not all(ok for _, _, ok in big.values()) else 0


def _as_dict(samples: Samples) -> dict[str, Any]:
    return {name: getattr(samples, name) for name in Samples.__dataclass_fields__}


def _round16(n: int) -> int:
    # Every concurrency (1, 4, 16) then gets an equal share.
    return max(16, (n + 15) // 16 * 16)


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


MEMORY = (
    ("mailtransfer AsyncMailer.send_many", "mt_async", 16),
    ("mailtransfer Mailer.send_many (threads)", "mt_sync", 16),
    ("aiosmtplib sendmail, 16 clients", "aio_sendmail", 16),
    ("smtplib, 16 threads x own connection", "smtplib", 16),
)


def _memory(bench: Bench, count: int) -> dict[str, tuple[int, bool]]:
    """Peak RSS of each contender sending ``count`` messages at 16 connections (one run each).

    ``send_many`` takes the whole batch as a list, as an application would pass it, and
    returns one result per message: both are part of what is measured.
    """
    found: dict[str, tuple[int, bool]] = {}
    count = _round16(count)
    for label, kind, conc in MEMORY:
        if bench.patience:
            wait_until_quiet(QUIET, bench.patience)
        before = bench.sink.accepted()
        command = bench.python_child(kind, conc, count, warm=16, message=bench.message)
        child = run_child(command, env=bench.env, timeout=600)
        report = json.loads(child.stdout.strip().splitlines()[-1])
        arrived = bench.sink.settle(before + count + 16) - before == count + 16
        found[label] = (child.max_rss_kb, arrived and report["ok"] == count)
        _progress(f"memory {label}: peak RSS {child.max_rss_kb / 1024:.0f} MB")
    return found


def _memory_table(memory: dict[str, tuple[int, bool]], count: int) -> list[str]:
    if not memory:
        return []
    lines = ["", f"Peak memory, {_round16(count):,} messages of 2,048 bytes at 16 connections:"]
    lines += ["", "| sender | peak RSS MB | all arrived |", "|---|--:|---|"]
    for label, (rss, ok) in memory.items():
        lines.append(f"| {label} | {rss / 1024:.0f} | {'yes' if ok else 'NO'} |")
    return lines


def _big_messages(bench: Bench, size_mb: int, runs: int) -> dict[str, tuple[float, int, bool]]:
    path = bench.workdir / "big.eml"
    size = make_big_message(path, size_mb * 1_000_000)
    found: dict[str, tuple[float, int, bool]] = {}
    for kind in BIG_LABELS:
        results = [bench.big(kind, path) for _ in range(runs)]
        seconds = statistics.median(r[0] for r in results)
        speed = size / seconds / 1e6 if seconds else 0.0
        found[kind] = (speed, max(r[1] for r in results), all(r[2] for r in results))
        _progress(f"{kind}: {speed:.0f} MB/s, peak RSS {found[kind][1] / 1024:.0f} MB")
    path.unlink()
    return found


def _targets(plan: list[Contender], samples: dict[Contender, Samples]) -> list[str]:
    by_key = {(c.kind, c.conc): c for c in plan}
    lines = ["", "| target (from the issue) | ratio, median of same-run ratios | met |"]
    lines.append("|---|--:|---|")
    for text, a, b, goal in TARGETS:
        if a in by_key and b in by_key:
            found = ratio(samples, by_key[a], by_key[b])
            lines.append(f"| {text} | {found:.2f}x | {'yes' if found >= goal else 'no'} |")
    return lines


# -- the profile -------------------------------------------------------------------------------

LAYERS = (
    ("everything: AsyncMailer.send", [("_async/mailer.py", "send")]),
    ("Submission.create (prepare the message bytes)", [("_sending.py", "create")]),
    (
        "retry wrapper (tenacity, after a first failed attempt only)",
        [
            ("retry.py", "async_retrying"),
            ("tenacity/asyncio/__init__.py", "__anext__"),
            ("tenacity/__init__.py", "__exit__"),
        ],
    ),
    ("pool acquire + release", [("_async/pool.py", "__aenter__"), ("_async/pool.py", "__aexit__")]),
    ("AsyncConnection.send (session, protocol, I/O)", [("_async/connection.py", "send")]),
    ("  envelope_commands (address checks)", [("_flows/envelope.py", "envelope_commands")]),
    ("  transaction flow (sans-I/O core)", [("_flows/transaction.py", "transaction")]),
    ("  AsyncStream.read (deadline timer + recv)", [("_async/_stream.py", "read")]),
    ("  AsyncStream.poll (unsolicited-reply check)", [("_async/_stream.py", "poll")]),
    ("  AsyncStream.write (send)", [("_async/_stream.py", "write")]),
    ("finish_result", [("_sending.py", "finish_result")]),
)


def run_profile(args: argparse.Namespace) -> int:
    """cProfile AsyncMailer.send_many at 16 connections; print per-message costs by layer."""
    import pstats

    count = _round16(args.count or 20_000)
    warm = 480
    with tempfile.TemporaryDirectory(prefix="mt-profile-") as tmp:
        bench = Bench(Path(tmp), count=count, warm=warm, patience=args.patience or 0.0)
        bench.sink.start()
        out = str(Path(tmp) / "profile.pstats")
        try:
            reports = []
            for profile in ("", out):
                if bench.patience:
                    wait_until_quiet(QUIET, bench.patience)
                command = bench.python_child(
                    "mt_async", 16, count, warm=warm, message=bench.message, profile=profile
                )
                child = run_child(command, env=bench.env, timeout=900)
                reports.append(json.loads(child.stdout.splitlines()[-1]))
            stats = pstats.Stats(out)
        finally:
            bench.sink.stop()
        if args.json:
            stats.dump_stats(args.json)
    plain, profiled = reports
    real = plain["cpu"] / count * 1e6
    scale = real / (profiled["cpu"] / count * 1e6)
    per = 1e6 / (count + warm) * scale
    table: dict[tuple[str, str], tuple[float, float, int]] = {}
    for (filename, _, name), (_, calls, tottime, cumtime, _) in stats.stats.items():  # type: ignore[attr-defined]
        key = (_short(filename), name)
        old = table.get(key, (0.0, 0.0, 0))
        table[key] = (old[0] + tottime, old[1] + cumtime, old[2] + calls)
    print(f"AsyncMailer.send_many, 16 connections, {count:,} messages after {warm} untimed.")
    print(f"Without the profiler: {count / plain['seconds']:,.0f} msg/s, {real:.0f} us CPU/msg.")
    print(f"Profiled times are scaled by {scale:.2f} (real CPU / CPU under cProfile).")
    print("\n| layer | us/msg (incl.) |\n|---|--:|")
    for label, entries in LAYERS:
        total = sum(table.get(_find(table, path, name), (0.0, 0.0, 0))[1] for path, name in entries)
        print(f"| {label} | {total * per:.0f} |")
    print("\n| function (own time) | calls/msg | own us/msg | incl. us/msg |\n|---|--:|--:|--:|")
    top = sorted(table.items(), key=lambda kv: kv[1][0], reverse=True)[:25]
    for (path, name), (own, incl, calls) in top:
        print(
            f"| {path} {name} | {calls / (count + warm):.1f} | {own * per:.1f} | {incl * per:.1f} |"
        )
    return 0


def _find(table: dict[tuple[str, str], Any], path: str, name: str) -> tuple[str, str]:
    for key in table:
        if key[1] == name and key[0].endswith(path):
            return key
    return ("", "")


def _short(filename: str) -> str:
    for marker in ("/src/mailtransfer/", "/site-packages/", "/lib/python3"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def main() -> int:
    """Parse the arguments; run a child, the profile, or the whole benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="small CI run (under a minute)")
    parser.add_argument("--count", type=int, help="messages per timed run")
    parser.add_argument("--runs", type=int, help="timed runs of every contender")
    parser.add_argument("--big-mb", type=int, help="size of the large message, in MB")
    parser.add_argument(
        "--mem-count",
        type=int,
        help="messages for the peak-memory table (default 10,000; 0 in --quick: skipped)",
    )
    parser.add_argument("--only", help="comma-separated contender kinds to run (e.g. mt_async)")
    parser.add_argument("--profile", action="store_true", help="profile AsyncMailer at 16")
    parser.add_argument("--json", help="also write the raw samples to this file")
    parser.add_argument(
        "--patience",
        type=float,
        help="seconds to wait, before each run, for other processes to go quiet"
        " (default 0: start at once and report the load)",
    )
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--message", help=argparse.SUPPRESS)
    parser.add_argument("--conc", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--warm", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--profile-out", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args)
        return 0
    if args.profile:
        return run_profile(args)
    return run_benchmark(args)


if __name__ == "__main__":
    sys.exit(main())
