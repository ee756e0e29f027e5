"""Time, injectable: the reaper and the keep-alive countdown read the clock through this seam.

:class:`SystemClock` is the real one. :class:`FakeClock` lets tests move time by hand: waiting on
it blocks until :meth:`FakeClock.advance` passes the deadline (or the condition is notified).
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """What the engine needs from time."""

    def monotonic(self) -> float:
        """Seconds on a monotonic scale (deadlines)."""

    def wall(self) -> float:
        """Epoch seconds (shown to users as the expiry time)."""

    def wait(self, condition: threading.Condition, timeout: float | None) -> None:
        """Wait on ``condition`` (held by the caller) until notified or ``timeout`` passes."""


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()

    def wall(self) -> float:
        """``time.time()``."""
        return time.time()

    def wait(self, condition: threading.Condition, timeout: float | None) -> None:
        """``condition.wait(timeout)``."""
        condition.wait(timeout)


class FakeClock:
    """A clock that moves only when a test calls :meth:`advance`."""

    def __init__(self, start: float = 1000.0, wall_offset: float = 1.7e9):
        self._now = start
        self._wall_offset = wall_offset
        self._lock = threading.Lock()
        self._conditions: set[threading.Condition] = set()

    def monotonic(self) -> float:
        """The fake now."""
        with self._lock:
            return self._now

    def wall(self) -> float:
        """The fake now, as epoch seconds."""
        return self.monotonic() + self._wall_offset

    def wait(self, condition: threading.Condition, timeout: float | None) -> None:
        """Wait until notified or until the fake time passes ``timeout`` (real waits are short
        polls, so an ``advance`` is seen promptly)."""
        deadline = None if timeout is None else self.monotonic() + timeout
        with self._lock:
            self._conditions.add(condition)
        if deadline is None or self.monotonic() < deadline:
            condition.wait(0.05)

    def advance(self, seconds: float) -> None:
        """Move time forward and wake every waiter so it re-checks its deadline."""
        with self._lock:
            self._now += seconds
            conditions = list(self._conditions)
        for condition in conditions:
            with condition:
                condition.notify_all()
