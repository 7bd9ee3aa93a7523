"""Queue mail with Celery: the producer checks and serialises, a worker sends over its pool.

Run: ``python examples/celery_task.py`` (needs ``pip install 'mailtransfer[celery,testing]'``
and Debian's ``redis-server``; without it, the example says so and exits 0).

It starts a private ``redis-server`` on a free loopback port (no persistence), an SMTP
server on loopback, and a Celery worker in this process (Celery's ``start_worker``, as in
tests; in production run ``celery -A yourapp worker``). The first recipient is greylisted
once: the task is retried by Celery with the same Message-ID.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import warnings

from celery import Celery
from celery.contrib.testing.worker import start_worker

from mailtransfer import RetryPolicy
from mailtransfer.contrib.celery import close_worker_mailer, enqueue
from mailtransfer.testing import RecordingServer


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_redis() -> tuple[subprocess.Popen[bytes], str]:
    """A throw-away redis-server; returns the process and its URL once it answers PING."""
    import redis

    port = free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1"]
    command += ["--save", "", "--appendonly", "no"]  # nothing written to disk
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    client = redis.Redis(host="127.0.0.1", port=port)
    for _ in range(200):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            try:
                process.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                continue
            raise RuntimeError("redis-server exited") from None
    client.close()
    return process, f"redis://127.0.0.1:{port}"


def main() -> int:
    """Queue two messages; 0 when both arrive, the greylisted one after a Celery retry."""
    if shutil.which("redis-server") is None:
        print("redis-server is not installed (apt-get install redis-server): skipping")
        return 0
    warnings.filterwarnings("ignore", "Call to deprecated setex", DeprecationWarning)
    redis_process, redis_url = start_redis()
    try:
        with RecordingServer() as server:
            app = Celery("example", broker=f"{redis_url}/0", backend=f"{redis_url}/1")
            app.conf.update(
                task_serializer="json",  # JSON only: nothing pickled crosses the queue
                result_serializer="json",
                accept_content=["json"],
                broker_connection_retry_on_startup=True,
                mailtransfer_url=server.url,  # a loopback server without TLS
                mailtransfer_options={"retry": RetryPolicy.none()},  # Celery retries instead
                mailtransfer_retry_backoff=0.2,
            )
            app.set_default()
            server.faults.refuse_recipient("ann@example.net", 451, "4.7.1 Greylisted", times=1)
            with start_worker(app, pool="solo", perform_ping_check=False):
                results = [
                    enqueue(
                        sender="shop@example.com",
                        to=[to],
                        subject="Your receipt",
                        text="Thanks!",
                    )
                    for to in ("ann@example.net", "bob@example.net")
                ]
                for result in results:
                    value = result.get(timeout=30)
                    print(f"{value['accepted']} got {value['message_id']}")
                close_worker_mailer()
            rcpts = [c for c in server.commands if c.startswith("RCPT")]
            print(f"RCPT commands: {len(rcpts)} (one greylisted, then retried by Celery)")
            return 0 if len(server.messages) == 2 and len(rcpts) == 3 else 1
    finally:
        redis_process.terminate()
        redis_process.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
