"""Where ``Mailer.send_iter``'s worker threads leave outcomes for the consuming thread.

Strategy: the consumer is woken once per batch, not once per message. Waking a
thread costs two context switches and a hand-over of the GIL, which is a
tenth of what sending a small message costs; at thousands of messages per
second that adds up. Workers wake the consumer when as many outcomes wait as
it asked for (``want``: the number of workers, or fewer near the end); else it
looks on its own every ``latency`` seconds, so no outcome waits longer than
that.
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

__all__ = ["OutcomeBox"]

T = TypeVar("T")


class OutcomeBox(Generic[T]):
    """A many-producer, one-consumer mailbox whose consumer takes batches."""

    def __init__(self, latency: float = 0.02) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._ready: list[T] = []
        self._want = 1
        self._waiting = False
        self._latency = latency

    def put(self, item: T, *, urgent: bool = False) -> None:
        """Leave one outcome; wake the consumer if it has enough (or ``urgent``)."""
        with self._cond:
            self._ready.append(item)
            if self._waiting and (urgent or len(self._ready) >= self._want):
                self._cond.notify()

    def take(self, want: int) -> list[T]:
        """Every outcome waiting, once there are ``want`` of them or ``latency`` has passed.

        Returns at least one outcome; blocks until there is one.
        """
        with self._cond:
            self._want = max(want, 1)
            if len(self._ready) < self._want:
                while True:
                    self._waiting = True
                    try:
                        self._cond.wait(self._latency)  # woken: enough (or urgent)
                    finally:
                        self._waiting = False
                    if self._ready:  # woken, or the latency is up: take what there is
                        break
            ready, self._ready = self._ready, []
        return ready
