"""The lifecycle: the state machine, leases, single-flight loading, unloading and the keep-alive.

:class:`Lifecycle` decides *when* the model is loaded and unloaded; what a load or an unload does
is given to it as two callables (the engine's, which use :class:`~engine.residency.Residency`).

* **Leases**: a request holds one from before it waits for its turn until it is done (a stream:
  until it ends or is closed, from whatever thread). No unload starts while one is held; a request
  arriving during UNLOADING waits for it to finish, then reloads.
* **Single flight**: the first request to find the model UNLOADED (or FAILED) loads it; the others
  wait for that load and share its outcome.
* **Keep-alive** (Ollama's semantics): the countdown starts when the last lease is released;
  ``idle_unload_s == 0`` unloads at once, a negative value never; ``expires_at`` says when.
* **The waiting line** (``admit`` / ``leave_line``): requests admitted but not yet running, bounded
  by ``F5_MAX_QUEUE`` (a :class:`~engine.errors.BusyError` beyond it).
* **Counters**: loads, unloads, fallbacks, served, failed, refused (``record``).

Everything here is guarded by one condition, ``cond``; see the lock order in :mod:`engine.engine`.
Loading and unloading run with it released: the LOADING / UNLOADING states stand in for it.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

from engine.claim import Claim
from engine.clock import Clock
from engine.config import EngineConfig
from engine.errors import BusyError, EngineError, ModelUnavailableError
from engine.progress import ProgressFn
from engine.states import EngineState, check_transition

log = logging.getLogger(__name__)

COUNTERS = ("loads", "unloads", "fallbacks", "served", "failed", "refused")


class Lease(Claim):
    """A request's claim on the loaded model. ``release`` is idempotent and thread-agnostic; a
    lease is also a context manager (released on exit)."""

    def __init__(self, lifecycle: "Lifecycle"):
        super().__init__()
        self._lifecycle = lifecycle

    def _give_back(self) -> None:
        self._lifecycle._release_lease()


class Lifecycle:
    """When the model is in memory, and who may use it."""

    def __init__(self, config: EngineConfig, clock: Clock, do_load: Callable[[], None],
                 do_unload: Callable[[], None], start_reaper: bool = True):
        self.config = config
        self.clock = clock
        self._do_load = do_load
        self._do_unload = do_unload
        self.cond = threading.Condition(threading.Lock())
        # --- guarded by cond ---
        self._state = EngineState.UNLOADED
        self.in_flight = 0  # leases held
        self.waiting = 0  # requests admitted but not yet running (the busy bound)
        self.running = 0
        self.peak_running = 0
        self._draining = False  # an explicit unload() waits for leases; new leases wait for it
        self._expires_mono: float | None = None
        self.expires_wall: float | None = None
        self._load_attempt = 0
        self._load_error: EngineError | None = None
        self._stopped = False
        # served + failed + refused = every request the engine was given (refused: bad input or busy)
        self.counters = dict.fromkeys(COUNTERS, 0)
        self.last_error: str | None = None
        self._reaper: threading.Thread | None = None
        if start_reaper:
            self._reaper = threading.Thread(target=self._reaper_loop, name="f5-engine-reaper", daemon=True)
            self._reaper.start()

    # ------------------------------------------------------------------ state

    @property
    def state(self) -> EngineState:
        """The current lifecycle state."""
        with self.cond:
            return self._state

    @property
    def state_unlocked(self) -> EngineState:
        """The current state, for a caller that already holds ``cond``."""
        return self._state

    def _set_state(self, target: EngineState) -> None:
        """Transition (caller holds ``cond``); illegal transitions raise."""
        self._state = check_transition(self._state, target)
        self.cond.notify_all()

    def idle_deadline_passed(self) -> bool:
        """Whether the keep-alive countdown has run out (caller holds ``cond``)."""
        return self._expires_mono is not None and self.clock.monotonic() >= self._expires_mono

    # ------------------------------------------------------------------ counters

    def record(self, counter: str, error: str | None = None) -> None:
        """Add one to ``counter`` (one of :data:`COUNTERS`); ``error`` becomes ``last_error``."""
        with self.cond:
            self.counters[counter] += 1
            if error is not None:
                self.last_error = error

    # ------------------------------------------------------------------ the waiting line

    def admit(self) -> None:
        """Enter the waiting line, or raise :class:`BusyError` (counted as refused) when it is full."""
        with self.cond:  # every request not yet running counts, loading or not
            if self.waiting >= self.config.max_queue:
                self.counters["refused"] += 1
                raise BusyError(f"The server is busy ({self.config.max_queue} requests waiting). "
                                "Please try again in a minute.")
            self.waiting += 1

    def leave_line(self) -> None:
        """Leave the waiting line (the request runs now, or gave up)."""
        with self.cond:
            self.waiting -= 1

    def start_running(self) -> None:
        """A request starts synthesising (for the peak-concurrency figure)."""
        with self.cond:
            self.running += 1
            self.peak_running = max(self.peak_running, self.running)

    def stop_running(self) -> None:
        """A request stops synthesising."""
        with self.cond:
            self.running -= 1

    # ------------------------------------------------------------------ leases, load, unload

    def acquire_lease(self, on_progress: ProgressFn | None = None) -> Lease:
        """Claim the model, loading it first if needed (single flight)."""
        with self.cond:
            while True:
                if self._draining or self._state == EngineState.UNLOADING:
                    self.cond.wait(0.5)
                    continue
                if self._state == EngineState.READY:
                    self.in_flight += 1
                    self._expires_mono = self.expires_wall = None
                    return Lease(self)
                if self._state == EngineState.LOADING:
                    attempt = self._load_attempt
                    while self._state == EngineState.LOADING and self._load_attempt == attempt:
                        self.cond.wait(0.5)
                    if self._state == EngineState.FAILED and self._load_attempt == attempt and self._load_error:
                        raise self._load_error
                    continue
                # UNLOADED or FAILED: this thread loads.
                self._set_state(EngineState.LOADING)
                self._load_attempt += 1
                self.in_flight += 1
                self._expires_mono = self.expires_wall = None
                break
        if on_progress is not None:
            on_progress(0.0, "Loading the model")
        try:
            self._do_load()
        except BaseException as exc:
            error = exc if isinstance(exc, EngineError) else ModelUnavailableError(
                f"Loading the model failed: {type(exc).__name__}: {exc}")
            if not isinstance(exc, EngineError):
                log.exception("model load failed")
            with self.cond:
                self._load_error = error
                self.last_error = str(error)
                self._set_state(EngineState.FAILED)
                self.in_flight -= 1
            raise error from None
        with self.cond:
            self.counters["loads"] += 1
            self._load_error = None
            self._set_state(EngineState.READY)
        return Lease(self)

    def _release_lease(self) -> None:
        with self.cond:
            self.in_flight -= 1
            if self.in_flight == 0 and self._state == EngineState.READY and self.config.idle_unload_s >= 0:
                self._expires_mono = self.clock.monotonic() + self.config.idle_unload_s
                self.expires_wall = self.clock.wall() + self.config.idle_unload_s
            self.cond.notify_all()

    def unload(self) -> None:
        """Unload now: wait for the leases held to be released, then free the device."""
        with self.cond:
            self._draining = True
            try:
                while self.in_flight > 0 or self._state in (EngineState.LOADING, EngineState.UNLOADING):
                    self.cond.wait(0.5)
                if self._state not in (EngineState.READY, EngineState.FAILED):
                    return
                self._set_state(EngineState.UNLOADING)
            finally:
                self._draining = False
        self._unload()

    def _unload(self) -> None:
        """Run the unload (state is UNLOADING; nobody holds a lease)."""
        try:
            self._do_unload()
        finally:
            with self.cond:
                self.counters["unloads"] += 1
                self._expires_mono = self.expires_wall = None
                self._set_state(EngineState.UNLOADED)

    # ------------------------------------------------------------------ keep-alive

    def reap(self) -> bool:
        """Unload if the keep-alive has expired; True when this call unloaded. A stale wake-up
        (used or reloaded since) finds no expired deadline and does nothing."""
        with self.cond:
            due = (self._state == EngineState.READY and self.in_flight == 0 and not self._draining
                   and self.idle_deadline_passed())
            if not due:
                return False
            self._set_state(EngineState.UNLOADING)
        log.info("idle for %s: unloading", self.config.unload_policy)
        self._unload()
        return True

    def _reaper_loop(self) -> None:
        while True:
            with self.cond:
                if self._stopped:
                    return
                timeout = None
                if self._state == EngineState.READY and self.in_flight == 0 and self._expires_mono is not None:
                    timeout = max(0.0, self._expires_mono - self.clock.monotonic())
                if timeout is None or timeout > 0:
                    self.clock.wait(self.cond, timeout)
                    continue
            try:
                self.reap()
            except Exception:  # never let the reaper die
                log.exception("idle unload failed")
                with self.cond:
                    self.last_error = "idle unload failed; see the server log"

    def close(self) -> None:
        """Stop the reaper thread (the model stays as it is)."""
        with self.cond:
            self._stopped = True
            self.cond.notify_all()
        if self._reaper is not None:
            self._reaper.join(timeout=5)
