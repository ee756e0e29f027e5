"""Warnings that would repeat many times a second (a broker outage seen by every waiting request)
are written once per period per process, with the number of the same warnings left out since.

    _unreachable = RateLimited(log, every_s=10)
    _unreachable.warning("broker", "request %s: the broker is unreachable; retrying", task_id)
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

DEFAULT_EVERY_S = 10.0


class RateLimited:
    """At most one warning per ``key`` every ``every_s`` seconds in this process."""

    def __init__(self, logger: logging.Logger, every_s: float = DEFAULT_EVERY_S,
                 clock: Callable[[], float] = time.monotonic):
        self.logger = logger
        self.every_s = every_s
        self.clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def warning(self, key: str, message: str, *args: Any) -> bool:
        """Log ``message % args`` unless ``key`` was logged less than ``every_s`` ago (then count
        it); returns whether it was written."""
        now = self.clock()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.every_s:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return False
            self._last[key] = now
            left_out = self._suppressed.pop(key, 0)
        if left_out:
            message += f" ({left_out} more like this in the last {self.every_s:g} s not logged)"
        self.logger.warning(message, *args)
        return True
