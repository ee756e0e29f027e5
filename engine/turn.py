"""The inference turn: a first-come, first-served lock that any thread may release.

One request at a time holds the turn for its whole synthesis. Unlike ``threading.RLock`` it is
not owned by a thread, so a streaming generator that Gradio steps on several worker threads, and
closes from its event-loop thread, can still release it. Waiters learn their place in line.
"""

from __future__ import annotations

import collections
import threading
from typing import Callable


class FairTurn:
    """FIFO mutual exclusion with queue positions."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._line: collections.deque[object] = collections.deque()
        self._held = False

    @property
    def waiting(self) -> int:
        """Requests in line for the turn (not counting the holder)."""
        with self._cond:
            return len(self._line)

    @property
    def held(self) -> bool:
        """Whether some request holds the turn."""
        with self._cond:
            return self._held

    def acquire(self, on_wait: Callable[[int], None] | None = None) -> None:
        """Block until it is this caller's turn; ``on_wait(ahead)`` is called when the place changes."""
        ticket = object()
        with self._cond:
            self._line.append(ticket)
            last_ahead = -1
            try:
                while self._held or self._line[0] is not ticket:
                    ahead = self._line.index(ticket) + (1 if self._held else 0)
                    if on_wait is not None and ahead != last_ahead:
                        on_wait(ahead)
                        last_ahead = ahead
                    self._cond.wait(0.5)
            except BaseException:
                self._line.remove(ticket)
                self._cond.notify_all()
                raise
            self._line.popleft()
            self._held = True

    def release(self) -> None:
        """Give the turn to the next in line. Releasing a turn that is not held is an error."""
        with self._cond:
            if not self._held:
                raise RuntimeError("FairTurn.release() without a holder")
            self._held = False
            self._cond.notify_all()
