"""``Mailer.send_iter`` without a thread per message: one shared feed, bounded workers.

Closing the iterator (or a failing ``progress`` callback) stops the messages not yet
started; with one connection, messages are sent from the consumer's own thread.
"""

from __future__ import annotations

import email
import email.policy
import threading
from typing import Any

import pytest
from conftest_mailer import mailer_options

from mailtransfer import Mailer, SendResult
from mailtransfer.testing import RecordingServer


def items(count: int) -> list[dict[str, Any]]:
    return [
        {"sender": "a@example.org", "to": "b@example.net", "subject": f"n{i}", "text": "hi"}
        for i in range(count)
    ]


def test_one_at_a_time_stops_when_the_consumer_stops(smtp_server: RecordingServer) -> None:
    with Mailer(**mailer_options(smtp_server.port)) as mailer:
        stream = mailer.send_iter(items(10), concurrency=1)
        first = [next(stream), next(stream)]
        stream.close()
    assert [index for index, _ in first] == [0, 1]
    assert all(isinstance(outcome, SendResult) for _, outcome in first)
    assert len(smtp_server.messages) == 2


def test_one_at_a_time_runs_in_the_callers_thread(smtp_server: RecordingServer) -> None:
    threads: set[str] = set()
    with Mailer(**mailer_options(smtp_server.port)) as mailer:
        outcomes = mailer.send_many(
            items(3),
            concurrency=1,
            progress=lambda done, total: threads.add(threading.current_thread().name),
        )
    assert all(isinstance(o, SendResult) for o in outcomes)
    assert threads == {threading.current_thread().name}


@pytest.mark.parametrize("concurrency", [1, 3])
def test_failing_progress_stops_the_batch(smtp_server: RecordingServer, concurrency: int) -> None:
    """An exception from progress ends send_many; nothing is left running afterwards."""

    def progress(done: int, total: int) -> None:
        if done == 2:
            raise RuntimeError("stop here")

    with Mailer(**mailer_options(smtp_server.port)) as mailer:
        with pytest.raises(RuntimeError, match="stop here"):
            mailer.send_many(items(40), concurrency=concurrency, progress=progress)
        sent = len(smtp_server.messages)
        assert mailer.pools  # the pool is still usable: no slot was leaked
        (pool,) = mailer.pools.values()
        assert pool.stats.in_use == 0
    assert sent >= 2
    if concurrency == 1:
        assert sent == 2


def test_many_workers_each_index_once_in_input_order(smtp_server: RecordingServer) -> None:
    with Mailer(**mailer_options(smtp_server.port)) as mailer:
        outcomes = mailer.send_many(items(30), concurrency=4)
    assert all(isinstance(o, SendResult) for o in outcomes)
    subjects = sorted(_subject(m.data) for m in smtp_server.messages)
    assert subjects == sorted(f"n{i}" for i in range(30))


def _subject(data: bytes) -> str:
    return email.message_from_bytes(data, policy=email.policy.default)["Subject"]
