"""The logging SMTPHandler against real loopback servers: queueing, rate limit, shutdown."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from mailtransfer import Mailer, NoTLS, RetryPolicy, SendResult
from mailtransfer.contrib.logging import SMTPHandler, TokenBucket
from mailtransfer.errors import UsageError
from mailtransfer.testing import RecordingServer, TLSCertificates


class GatedMailer(Mailer):
    """A real Mailer whose send() waits for ``gate`` and says when it has started."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate = threading.Event()
        self.entered = threading.Event()

    def send(self, *args: Any, **kwargs: Any) -> SendResult:
        self.entered.set()
        assert self.gate.wait(30), "the test never opened the gate"
        return super().send(*args, **kwargs)


@pytest.fixture
def mailer_for() -> Iterator[Callable[..., Mailer]]:
    """Factory: ``mailer_for(server, cls=Mailer)``, a mailer closed at teardown."""
    with ExitStack() as stack:

        def make(server: RecordingServer, cls: type[Mailer] = Mailer) -> Mailer:
            mailer = cls(host=server.host, port=server.port, tls=NoTLS(), retry=RetryPolicy.none())
            return stack.enter_context(mailer)

        yield make


@pytest.fixture
def logger(mailer_for: Callable[..., Mailer]) -> Iterator[logging.Logger]:
    """A private logger that does not propagate; its handlers close before the mailers."""
    log = logging.getLogger(f"mailtransfer.tests.{id(object())}")
    log.propagate = False
    log.setLevel(logging.INFO)
    yield log
    for handler in list(log.handlers):
        log.removeHandler(handler)
        handler.close()


def subjects(server: RecordingServer) -> list[str]:
    return [str(m.parsed()["Subject"]) for m in server.messages]


def body(server: RecordingServer, index: int) -> str:
    part = server.messages[index].parsed().get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def test_a_record_is_mailed_with_its_traceback(
    smtp_server: RecordingServer, logger: logging.Logger, mailer_for: Callable[..., Mailer]
) -> None:
    """An error with exc_info arrives as a mail: subject, message and traceback."""
    handler = SMTPHandler(mailer_for(smtp_server), "app@example.test", "ops@example.test", "Alert")
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    try:
        raise RuntimeError("disk on fire")
    except RuntimeError:
        logger.exception("job %s failed", 42)
    handler.flush()
    assert subjects(smtp_server) == ["Alert"]
    text = body(smtp_server, 0)
    assert "ERROR" in text
    assert "job 42 failed" in text
    assert "RuntimeError: disk on fire" in text
    assert smtp_server.messages[0].rcpt_tos == ("ops@example.test",)
    assert handler.stats.mails_sent == 1


def test_emit_does_not_wait_for_the_network(
    smtp_server: RecordingServer, logger: logging.Logger, mailer_for: Callable[..., Mailer]
) -> None:
    """While the sender thread is stuck in a send, logging calls still return."""
    mailer = mailer_for(smtp_server, GatedMailer)
    assert isinstance(mailer, GatedMailer)
    handler = SMTPHandler(mailer, "app@example.test", ["ops@example.test"], "Alert")
    logger.addHandler(handler)
    logger.error("first")
    assert mailer.entered.wait(10)
    for n in range(5):
        logger.error("more %d", n)  # returns although the first mail is not sent yet
    assert smtp_server.messages == []
    mailer.gate.set()
    handler.flush()
    assert len(smtp_server.messages) == 6


def test_queue_full_drops_are_counted_and_reported(
    smtp_server: RecordingServer, logger: logging.Logger, mailer_for: Callable[..., Mailer]
) -> None:
    """With the queue full, records are dropped, counted, and named in the next mail."""
    mailer = mailer_for(smtp_server, GatedMailer)
    assert isinstance(mailer, GatedMailer)
    handler = SMTPHandler(mailer, "app@example.test", ["ops@example.test"], "Alert", capacity=2)
    logger.addHandler(handler)
    logger.error("in flight")
    assert mailer.entered.wait(10)
    for n in range(5):
        logger.error("record %d", n)
    assert handler.stats.dropped == 3
    assert "dropped: 3" in repr(handler)
    mailer.gate.set()
    handler.flush()
    assert len(smtp_server.messages) == 3
    assert "3 record(s) dropped" in body(smtp_server, 1)
    assert "record(s) dropped" not in body(smtp_server, 2)  # reported once


def test_flood_is_rate_limited_and_digested_at_close(
    smtp_server: RecordingServer, logger: logging.Logger, mailer_for: Callable[..., Mailer]
) -> None:
    """burst=2, no refill: two mails, then one digest at close listing the rest."""
    handler = SMTPHandler(
        mailer_for(smtp_server),
        "app@example.test",
        ["ops@example.test"],
        "Alert",
        rate=0,
        burst=2,
        digest_size=3,
    )
    logger.addHandler(handler)
    for n in range(7):
        logger.warning("flood %d\nsecond line", n)
    handler.flush()
    assert len(smtp_server.messages) == 2
    assert handler.stats.suppressed == 5
    logger.removeHandler(handler)
    handler.close()
    assert subjects(smtp_server) == ["Alert", "Alert", "Alert (5 records not sent)"]
    digest = body(smtp_server, 2)
    assert "5 record(s) suppressed by the rate limit" in digest
    assert "WARNING" in digest
    assert "flood 2" in digest
    assert "flood 4" in digest
    assert "flood 5" not in digest  # only digest_size lines
    assert "... and 2 more" in digest
    assert "second line" not in digest


def test_failed_sends_are_reported_not_raised(
    smtp_server: RecordingServer,
    logger: logging.Logger,
    mailer_for: Callable[..., Mailer],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A refused mail goes through handleError (stderr), and is counted."""
    smtp_server.faults.refuse_recipient("ops@example.test", 550, "5.1.1 No such user")
    handler = SMTPHandler(mailer_for(smtp_server), "app@example.test", "ops@example.test", "A")
    logger.addHandler(handler)
    logger.error("nobody will read this")
    handler.flush()
    assert handler.stats.failed == 1
    assert "RecipientsRefused" in capsys.readouterr().err


def test_stdlib_constructor_shape_with_starttls_and_login(
    recording_server: Callable[..., RecordingServer],
    tls: TLSCertificates,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    logger: logging.Logger,
) -> None:
    """(host, port), credentials and secure=() as for logging.handlers.SMTPHandler."""
    monkeypatch.setenv("SSL_CERT_FILE", str(tls.write_ca(tmp_path / "ca.pem")))
    server = recording_server(
        tls_context=tls.server_context, require_starttls=True, auth={"app": "pw"}
    )
    handler = SMTPHandler(
        ("localhost", server.port),
        "app@example.test",
        ["ops@example.test"],
        "Alert",
        credentials=("app", "pw"),
        secure=(),
        timeout=10.0,
    )
    logger.addHandler(handler)
    logger.critical("over TLS")
    handler.flush()
    (received,) = server.messages
    assert received.tls
    assert received.auth_user == "app"


def test_logging_shutdown_at_exit_sends_what_is_queued(smtp_server: RecordingServer) -> None:
    """A program that logs and exits at once still gets every record mailed."""
    script = textwrap.dedent(
        f"""
        import logging
        from mailtransfer.contrib.logging import SMTPHandler
        handler = SMTPHandler({smtp_server.url!r}, "app@example.test", ["ops@example.test"],
                              "Exit", rate=0, burst=3)
        log = logging.getLogger("app")
        log.addHandler(handler)
        for n in range(5):
            log.error("record %d", n)
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    assert subjects(smtp_server) == ["Exit", "Exit", "Exit", "Exit (2 records not sent)"]


def test_token_bucket_refills_at_its_rate() -> None:
    """Tokens come back at ``rate`` per second, never more than ``burst``."""
    now = [0.0]
    bucket = TokenBucket(rate=0.5, burst=2, clock=lambda: now[0])
    assert [bucket.take() for _ in range(3)] == [True, True, False]
    assert bucket.wait_time() == pytest.approx(2.0)
    now[0] = 1.0
    assert not bucket.take()
    now[0] = 2.0
    assert bucket.take()
    now[0] = 100.0
    assert [bucket.take() for _ in range(3)] == [True, True, False]
    assert TokenBucket(rate=0, burst=1).wait_time() == 0.0
    with pytest.raises(ValueError, match="burst"):
        TokenBucket(rate=1, burst=0)


def test_url_with_credentials_is_ambiguous() -> None:
    """A URL carries its own login and TLS: credentials=/secure= beside it are refused."""
    with pytest.raises(UsageError, match="in the URL"):
        SMTPHandler("smtp://127.0.0.1:2525", "a@example.test", "b@example.test", "s", ("u", "p"))


def test_bad_capacity() -> None:
    """capacity must allow at least one queued record."""
    with pytest.raises(ValueError, match="capacity"):
        SMTPHandler(
            "smtp://127.0.0.1:2525?tls=none", "a@example.test", "b@example.test", "s", capacity=0
        )


def test_digest_goes_out_when_a_token_comes_back(
    smtp_server: RecordingServer, logger: logging.Logger, mailer_for: Callable[..., Mailer]
) -> None:
    """Suppressed records are reported without waiting for close(), once the bucket refills."""
    handler = SMTPHandler(mailer_for(smtp_server), "app@example.test", ["ops@example.test"], "A")
    now = [0.0]
    handler._bucket = TokenBucket(rate=1.0, burst=1, clock=lambda: now[0])
    logger.addHandler(handler)
    logger.error("first")
    logger.error("held back")
    handler.flush()
    assert handler.stats.suppressed == 1
    assert len(smtp_server.messages) == 1
    now[0] = 5.0  # the bucket's clock moves on: a token is free
    smtp_server.wait_for(2, timeout=30)
    assert subjects(smtp_server) == ["A", "A (1 records not sent)"]
    assert "held back" in body(smtp_server, 1)
