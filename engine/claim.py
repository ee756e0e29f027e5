"""A claim held until it is given back once: the shape of a lease on a model and of a grant of the
device budget."""

from __future__ import annotations

import threading


class Claim:
    """Held until :meth:`release` (idempotent, from any thread) or the end of its ``with`` block;
    subclasses say what giving it back does (:meth:`_give_back`, called exactly once)."""

    def __init__(self) -> None:
        self._released = False
        self._release_lock = threading.Lock()

    def release(self) -> None:
        """Give the claim back (a second call does nothing)."""
        with self._release_lock:
            if self._released:
                return
            self._released = True
        self._give_back()

    def _give_back(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> "Claim":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()
