"""A progress bar on stderr, without a dependency: redrawn in place on a terminal, else lines."""

from __future__ import annotations

import sys
from typing import TextIO

__all__ = ["ProgressBar"]


class ProgressBar:
    """Draws ``[#####-----]  50/100  ok 49  failed 1`` as messages complete.

    On a terminal the bar is redrawn on one line; otherwise (a log file, a pipe) it writes
    a line at every tenth of the way, so logs stay short.

    Args:
        total: how many messages there are.
        stream: where to draw (default stderr).
        width: the bar's width in characters.
    """

    def __init__(self, total: int, *, stream: TextIO | None = None, width: int = 30) -> None:
        self.total = total
        self.ok = 0
        self.failed = 0
        self._stream = stream or sys.stderr
        self._width = width
        self._live = self._stream.isatty()
        self._next_line = 0

    def update(self, ok: bool) -> None:
        """Count one finished message and redraw."""
        if ok:
            self.ok += 1
        else:
            self.failed += 1
        done = self.ok + self.failed
        if self._live:
            self._stream.write("\r" + self.render())
            if done == self.total:
                self._stream.write("\n")
            self._stream.flush()
        elif done >= self._next_line or done == self.total:
            self._stream.write(self.render() + "\n")
            self._stream.flush()
            self._next_line = done + -(-self.total // 10)  # a tenth, rounded up

    def render(self) -> str:
        """The bar as text."""
        done = self.ok + self.failed
        filled = self._width * done // self.total if self.total else self._width
        bar = "#" * filled + "-" * (self._width - filled)
        digits = len(str(self.total))
        return f"[{bar}] {done:>{digits}}/{self.total}  ok {self.ok}  failed {self.failed}"
