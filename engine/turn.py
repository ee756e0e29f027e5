"""The inference turn: ``capacity`` seats, given first come first served, that any thread may release.

A request holds a seat for its whole synthesis; the requests holding seats are the ones the pass
scheduler (:mod:`engine.pass_scheduler`) samples together. With one seat (``F5_MAX_BATCH=1``) this is a
plain fair lock: one synthesis at a time. Unlike ``threading.RLock`` a seat is not owned by a
thread, so a streaming generator that Gradio steps on several worker threads, and closes from its
event-loop thread, can still release it. Waiters learn their place in line.
"""

from __future__ import annotations

import collections
import threading
from typing import Callable


class FairTurn:
    """FIFO admission to ``capacity`` seats, with queue positions."""

    def __init__(self, capacity: int = 1) -> None:
        if capacity < 1:
            raise ValueError("FairTurn needs at least one seat")
        self.capacity = capacity
        self._cond = threading.Condition(threading.Lock())
        self._line: collections.deque[object] = collections.deque()
        self._seated = 0

    @property
    def waiting(self) -> int:
        """Requests in line for a seat (not counting the seated)."""
        with self._cond:
            return len(self._line)

    @property
    def held(self) -> bool:
        """Whether some request holds a seat."""
        with self._cond:
            return self._seated > 0

    @property
    def seated(self) -> int:
        """How many seats are taken."""
        with self._cond:
            return self._seated

    def acquire(self, on_wait: Callable[[int], None] | None = None) -> None:
        """Block until this caller gets a seat; ``on_wait(ahead)`` is called when its place changes
        (``ahead``: the requests in line before it, plus one while every seat is taken)."""
        ticket = object()
        with self._cond:
            self._line.append(ticket)
            last_ahead = -1
            try:
                while self._seated >= self.capacity or self._line[0] is not ticket:
                    ahead = self._line.index(ticket) + (1 if self._seated >= self.capacity else 0)
                    if on_wait is not None and ahead != last_ahead:
                        on_wait(ahead)
                        last_ahead = ahead
                    self._cond.wait(0.5)
            except BaseException:
                self._line.remove(ticket)
                self._cond.notify_all()
                raise
            self._line.popleft()
            self._seated += 1
            self._cond.notify_all()  # the next in line may fit too

    def release(self) -> None:
        """Give a seat back to the next in line. Releasing with no seat taken is an error."""
        with self._cond:
            if self._seated == 0:
                raise RuntimeError("FairTurn.release() without a holder")
            self._seated -= 1
            self._cond.notify_all()
