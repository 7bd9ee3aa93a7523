"""The Celery task with a real worker, a real Redis broker and real loopback SMTP servers.

A ``redis-server`` (Debian's package; .ci/run installs it) is started on a free loopback
port, without persistence; the worker runs in-process (``start_worker``, solo pool).
"""

from __future__ import annotations

import base64
import contextlib
import email
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("celery")
pytest.importorskip("redis")

import redis
from celery import Celery
from celery.contrib.testing.worker import start_worker
from celery.signals import worker_process_shutdown

from mailtransfer import Attachment, RetryPolicy
from mailtransfer.contrib import celery as mt_celery
from mailtransfer.errors import InvalidAddress
from mailtransfer.testing import RecordingServer, ScriptedServer, disconnect_after

# redis-py 8 deprecates the setex call Celery's result backend makes, inside the worker.
pytestmark = pytest.mark.filterwarnings("ignore:Call to deprecated setex:DeprecationWarning")

REQUIRE_PEERS = os.environ.get("MAILTRANSFER_REQUIRE_PEERS") == "1"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """A private redis-server on loopback, stopped at the end of the module."""
    binary = shutil.which("redis-server")
    if binary is None:
        if REQUIRE_PEERS:
            pytest.fail("redis-server is required (apt-get install redis-server)")
        pytest.skip("redis-server is not installed")
    port = _free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(host="127.0.0.1", port=port)
    try:
        for _ in range(200):
            try:
                if client.ping():
                    break
            except redis.ConnectionError:
                if process.poll() is not None:
                    pytest.fail(f"redis-server exited with {process.returncode}")
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=0.05)  # a bounded pause while it starts
        else:
            pytest.fail("redis-server did not answer PING")
        yield f"redis://127.0.0.1:{port}"
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def app(redis_url: str) -> Iterator[Celery]:
    """A Celery app on the private Redis, JSON only, and an in-process worker."""
    celery_app = Celery("mailtransfer-tests", broker=f"{redis_url}/0", backend=f"{redis_url}/1")
    celery_app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        mailtransfer_options={"retry": RetryPolicy.none(), "local_hostname": "worker.test"},
        mailtransfer_retry_backoff=0.01,
        mailtransfer_max_retries=3,
    )
    celery_app.set_default()
    with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=20):
        yield celery_app
    mt_celery.close_worker_mailer()


@pytest.fixture
def use_server(app: Celery) -> Iterator[Any]:
    """``use_server(server)`` points the worker's mailer at ``server``."""

    def point(server: RecordingServer | ScriptedServer) -> None:
        mt_celery.close_worker_mailer()
        app.conf.mailtransfer_url = f"smtp://{server.host}:{server.port}?tls=none"

    yield point
    mt_celery.close_worker_mailer()


def test_enqueue_sends_through_the_worker(smtp_server: RecordingServer, use_server: Any) -> None:
    """A queued message is sent by the worker; the result names its Message-ID."""
    use_server(smtp_server)
    result = mt_celery.enqueue(
        sender="app@example.test",
        to=["bob@example.test"],
        subject="From the queue",
        text="Hello",
        attachments=[Attachment("a.bin", b"\x00\xff" * 10, "application/octet-stream")],
    )
    value = result.get(timeout=30)
    (received,) = smtp_server.messages
    parsed = received.parsed()
    assert parsed["Subject"] == "From the queue"
    assert value["message_id"] == parsed["Message-ID"]
    assert value["accepted"] == ["bob@example.test"]
    assert value["refused"] == {}
    (attachment,) = list(parsed.iter_attachments())
    assert attachment.get_content() == b"\x00\xff" * 10


def test_payload_is_plain_json() -> None:
    """What goes on the queue is JSON: base64 bytes and the envelope, nothing pickled."""
    payload = mt_celery.message_payload(
        sender="Site <app@example.test>", to="bob@example.test", bcc="c@example.test", text="x"
    )
    assert json.loads(json.dumps(payload)) == payload
    assert payload["sender"] == "app@example.test"
    assert payload["recipients"] == ["bob@example.test", "c@example.test"]
    queued = email.message_from_bytes(base64.b64decode(payload["raw"]))
    assert "Bcc" not in queued
    # Not in any header (the Message-ID is skipped: its random part may end in "...c").
    assert all("c@example.test" not in v for k, v in queued.items() if k != "Message-ID")


def test_non_ascii_headers_survive_the_queue(smtp_server: RecordingServer, use_server: Any) -> None:
    """Encoded words (RFC 2047) in the queued bytes are accepted by the worker as they are."""
    use_server(smtp_server)
    mt_celery.enqueue(
        sender="Jörg <joerg@example.test>", to=["bob@example.test"], subject="Grüße", text="ü"
    ).get(timeout=30)
    parsed = smtp_server.messages[0].parsed()
    assert parsed["Subject"] == "Grüße"
    assert parsed["From"] == "Jörg <joerg@example.test>"


def test_bad_input_fails_before_queueing(app: Celery) -> None:
    """An invalid address raises in the producer; nothing is queued."""
    with pytest.raises(InvalidAddress):
        mt_celery.enqueue(sender="app@example.test", to=["not an address"], text="x")


def test_build_keywords_sent_directly_to_the_task(
    smtp_server: RecordingServer, use_server: Any
) -> None:
    """The task also takes the keywords that build a message, attachments as base64 dicts."""
    use_server(smtp_server)
    result = mt_celery.send_message.delay(
        sender="app@example.test",
        to=["bob@example.test", "gone@example.test"],
        subject="Direct",
        text="Hi",
        attachments=[{"filename": "n.txt", "content_base64": "aGk=", "mimetype": "text/plain"}],
    )
    smtp_server.faults.refuse_recipient("gone@example.test", 550, "5.1.1 No such user")
    value = result.get(timeout=30)
    assert value["accepted"] == ["bob@example.test"]
    assert value["refused"]["gone@example.test"]["code"] == 550


def test_transient_failure_is_retried_by_celery_with_the_same_message(
    smtp_server: RecordingServer, use_server: Any
) -> None:
    """Two 451 refusals, then success: Celery retried, and the Message-ID never changed."""
    use_server(smtp_server)
    smtp_server.faults.refuse_recipient("bob@example.test", 451, "4.7.1 Try later", times=2)
    result = mt_celery.send_message.delay(
        sender="app@example.test", to=["bob@example.test"], subject="Greylisted", text="x"
    )
    value = result.get(timeout=60)
    assert [c for c in smtp_server.commands if c.startswith("RCPT")] == [
        "RCPT TO:<bob@example.test>"
    ] * 3
    (received,) = smtp_server.messages
    assert received.parsed()["Message-ID"] == value["message_id"]


def test_permanent_failure_is_not_retried(smtp_server: RecordingServer, use_server: Any) -> None:
    """A 550 fails the task at once."""
    use_server(smtp_server)
    smtp_server.faults.refuse_recipient("bob@example.test", 550, "5.1.1 No such user")
    result = mt_celery.send_message.delay(
        sender="app@example.test", to=["bob@example.test"], text="x"
    )
    with pytest.raises(Exception, match="No such user"):
        result.get(timeout=30)
    assert len([c for c in smtp_server.commands if c.startswith("RCPT")]) == 1


def test_delivery_unknown_is_not_retried(use_server: Any) -> None:
    """A connection lost after the final dot fails the task once: it may have been delivered."""
    with ScriptedServer(disconnect_after(".")) as server:
        use_server(server)
        result = mt_celery.send_message.delay(
            sender="app@example.test", to=["bob@example.test"], text="x"
        )
        with pytest.raises(Exception) as caught:
            result.get(timeout=30)
    assert "DeliveryUnknown" in f"{type(caught.value).__name__} {caught.value!r}"
    assert result.state == "FAILURE"


def test_worker_shutdown_signal_closes_the_mailer(
    smtp_server: RecordingServer, use_server: Any, app: Celery
) -> None:
    """The mailer lives across tasks in a worker process and is closed on shutdown."""
    use_server(smtp_server)
    for n in range(2):
        mt_celery.send_message.delay(
            sender="app@example.test", to=["bob@example.test"], subject=f"n{n}", text="x"
        ).get(timeout=30)
    assert len([c for c in smtp_server.commands if c.startswith("EHLO")]) == 1  # one session
    mailer = mt_celery.worker_mailer(app.conf)
    assert "open" in repr(mailer)
    worker_process_shutdown.send(sender=None, pid=os.getpid(), exitcode=0)
    assert "closed" in repr(mailer)
    assert "QUIT" in smtp_server.commands


def test_should_retry_table() -> None:
    """Transient: yes; permanent, DeliveryUnknown, PartialDelivery: no."""
    from mailtransfer import SendResult
    from mailtransfer.errors import (
        ConnectError,
        DeliveryUnknown,
        PartialDelivery,
        RecipientsRefused,
        classify,
    )
    from mailtransfer.protocol import Reply

    greylist = classify(Reply(451, ("4.7.1 Try later",)))
    unknown = classify(Reply(550, ("5.1.1 No such user",)))
    assert mt_celery.should_retry(ConnectError("refused"))
    assert mt_celery.should_retry(RecipientsRefused(refused={"a@example.test": greylist}))
    assert not mt_celery.should_retry(RecipientsRefused(refused={"a@example.test": unknown}))
    assert not mt_celery.should_retry(unknown)
    assert not mt_celery.should_retry(DeliveryUnknown("lost"))
    result = SendResult(accepted={}, refused={}, reply=Reply(250, ("ok",)))
    assert not mt_celery.should_retry(PartialDelivery("some", result=result))


def test_prefork_worker_subprocess_pools_and_quits_on_shutdown(
    smtp_server: RecordingServer, redis_url: str
) -> None:
    """A real ``celery worker`` (prefork, 1 child): one SMTP session for all tasks, QUIT at stop."""
    env = {
        **os.environ,
        "MAILTRANSFER_TEST_REDIS": redis_url,
        "MAILTRANSFER_TEST_SMTP": smtp_server.url,
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), *sys.path]),
    }
    command = [sys.executable, "-m", "celery", "-A", "celery_test_app", "worker"]
    command += ["--pool", "prefork", "--concurrency", "1", "--loglevel", "WARNING"]
    command += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    worker = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    producer = Celery("producer", broker=f"{redis_url}/2", backend=f"{redis_url}/3")
    producer.conf.update(task_serializer="json", accept_content=["json"])
    try:
        payloads = [
            mt_celery.message_payload(
                sender="app@example.test", to=["bob@example.test"], subject=f"n{n}", text="x"
            )
            for n in range(3)
        ]
        results = [producer.send_task(mt_celery.TASK_NAME, kwargs=p) for p in payloads]
        values = [r.get(timeout=60) for r in results]
    finally:
        worker.send_signal(signal.SIGTERM)  # warm shutdown: children get worker_process_shutdown
        _, stderr = worker.communicate(timeout=60)
        producer.close()
    assert [v["accepted"] for v in values] == [["bob@example.test"]] * 3
    assert len(smtp_server.messages) == 3
    commands = smtp_server.commands
    assert [c for c in commands if c.startswith("EHLO")] == ["EHLO prefork.test"], stderr
    assert commands[-1] == "QUIT", stderr
