"""Glue between Gradio's request threads and the engine: progress relaying and the stream pump.

Why a pump thread for streaming: Gradio advances a sync generator with one ``next()`` per worker
thread hop, and runs a cancelled generator's ``finally`` on its event-loop thread. The engine's
stream holds its turn (a lock) and per-thread model caches across chunks, so it must be driven
from start to close by ONE thread. ``pump_stream`` does that and hands the chunks and progress
messages to the Gradio generator through a queue; the Gradio side only ever reads the queue.
"""

from __future__ import annotations

import contextvars
import logging
import queue
import threading
from typing import Any, Callable, Iterator
from engine.progress import ProgressFn

log = logging.getLogger(__name__)


def clamp_fraction(fraction: Any) -> float:
    """Progress fractions go to the UI in [0, 1]; anything odd becomes 0."""
    try:
        value = float(fraction)
    except (TypeError, ValueError):
        return 0.0
    if value != value:  # NaN
        return 0.0
    return min(1.0, max(0.0, value))


class ProgressRelay:
    """An ``on_progress(fraction, message)`` callback that reaches a ``gr.Progress`` from any thread.

    ``gr.Progress`` finds its request through context variables, which a thread started by the
    engine does not have; the relay keeps a copy of the request's context and calls the progress
    inside it (one caller at a time, since a context cannot be entered twice at once).
    ``rewrite(fraction, message)`` may change what is shown (a fraction of None shows the message
    without a bar, for work whose progress is unknown).
    """

    def __init__(self, progress: Any, rewrite: Callable[[float, str], tuple[float | None, str]] | None = None):
        self._progress = progress
        self._rewrite = rewrite
        self._context = contextvars.copy_context()
        self._lock = threading.Lock()
        self.latest: tuple[float | None, str] | None = None
        self.messages: set[str] = set()  # every message the engine sent (before any rewrite)

    def __call__(self, fraction: float | None, message: str) -> None:
        message = str(message)
        self.messages.add(message)
        shown: tuple[float | None, str] = (None if fraction is None else clamp_fraction(fraction), message)
        if self._rewrite is not None:
            try:
                shown = self._rewrite(*shown)
            except Exception:  # cosmetic: show the engine's own words
                log.debug("progress rewrite failed", exc_info=True)
        self.latest = shown
        self.repeat()

    def repeat(self) -> None:
        """Show the latest value again (after a streaming yield, which clears the bar)."""
        if self.latest is None or self._progress is None:
            return
        fraction, message = self.latest
        with self._lock:
            try:
                self._context.run(self._progress, fraction, desc=message)
            except Exception:  # progress is cosmetic: never fail a synthesis over it
                log.debug("progress update failed", exc_info=True)


class StopSignal:
    """A Stop pressed in another request: :meth:`fire` once; everything attached is called (at
    once if it was already fired). Thread-safe; the callbacks must be quick."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fired = False
        self._callbacks: list[Callable[[], None]] = []

    @property
    def fired(self) -> bool:
        """Whether :meth:`fire` was called."""
        return self._fired

    def fire(self) -> None:
        """Stop: call every attached callback."""
        with self._lock:
            if self._fired:
                return
            self._fired = True
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    def attach(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` on :meth:`fire` (now, if it has been fired)."""
        with self._lock:
            if not self._fired:
                self._callbacks.append(callback)
                return
        callback()


class StopRegistry:
    """The running job of each browser session (by key), so a Stop button can reach it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[str, StopSignal] = {}

    def start(self, key: str | None) -> StopSignal:
        """A fresh signal for the job starting in session ``key`` (None: not stoppable)."""
        signal = StopSignal()
        if key:
            with self._lock:
                self._running[key] = signal
        return signal

    def fire(self, key: str | None) -> bool:
        """Stop the session's running job; False when there is none."""
        with self._lock:
            signal = self._running.pop(key, None) if key else None
        if signal is None:
            return False
        signal.fire()
        return True

    def finish(self, key: str | None, signal: StopSignal) -> None:
        """The job is over: forget it (unless a newer one took its place)."""
        if key:
            with self._lock:
                if self._running.get(key) is signal:
                    del self._running[key]


ITEM, ERROR, DONE = "item", "error", "done"  # what the pump thread hands over


def drive_in_own_thread(make: Callable[[], Iterator[Any]], hand_over: Callable[[str, Any], None],
                        stop: threading.Event, name: str) -> threading.Thread:
    """The one stream pump: a daemon thread calls ``make()`` and iterates it, handing each item over
    as ``hand_over(ITEM, item)``, an exception as ``hand_over(ERROR, error)`` and the end as
    ``hand_over(DONE, None)``; the same thread closes the iterator (the engine's stream must be
    driven and closed by one thread). Setting ``stop`` makes it stop after the item in progress.
    :func:`pump_stream` (Gradio's sync generators) and ``studio.rest.pump.iterate_in_thread``
    (asyncio) differ only in how they receive what is handed over."""

    def run() -> None:
        iterator = None
        try:
            iterator = make()
            for item in iterator:
                if stop.is_set():
                    break
                hand_over(ITEM, item)
                if stop.is_set():
                    break
        except BaseException as error:  # raised again by the consumer, which reports it
            hand_over(ERROR, error)
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    log.exception("closing the engine stream failed")
            hand_over(DONE, None)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread


_STOPPED = ("stopped", None)


def pump_stream(start: Callable[[ProgressFn], Iterator[Any]], name: str = "f5-stream",
                stop_signal: StopSignal | None = None) -> Iterator[tuple[str, Any]]:
    """Run ``start(on_progress)`` (an engine stream) in a dedicated thread and yield its events.

    Yields ``("progress", (fraction, message))`` and ``("chunk", chunk)`` in order; an exception
    raised by the engine is re-raised here. Closing this generator early (a cancelled request)
    asks the thread to stop: it closes the engine's stream after the chunk in progress, in the
    same thread that ran it. ``stop_signal`` firing ends this generator at once, the same way
    (the caller checks ``stop_signal.fired`` to tell a stop from the end).
    """
    events: queue.Queue[tuple[str, Any]] = queue.Queue()
    stop = threading.Event()
    if stop_signal is not None:
        stop_signal.attach(lambda: events.put(_STOPPED))

    def on_progress(fraction: float, message: str) -> None:
        events.put(("progress", (clamp_fraction(fraction), str(message))))

    drive_in_own_thread(lambda: start(on_progress), lambda kind, value: events.put((kind, value)), stop, name)
    try:
        while True:
            kind, value = events.get()
            if kind in (DONE, _STOPPED[0]):
                return
            if kind == ERROR:
                raise value
            yield ("chunk", value) if kind == ITEM else (kind, value)
    finally:
        # Normal end: the thread has finished. Early close: tell it to stop; never wait here
        # (this may run on Gradio's event-loop thread).
        stop.set()
