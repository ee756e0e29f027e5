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

log = logging.getLogger(__name__)

ProgressFn = Callable[[float, str], None]


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
    """

    def __init__(self, progress: Any):
        self._progress = progress
        self._context = contextvars.copy_context()
        self._lock = threading.Lock()
        self.latest: tuple[float, str] | None = None

    def __call__(self, fraction: float, message: str) -> None:
        self.latest = (clamp_fraction(fraction), str(message))
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


_DONE = object()


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


def pump_stream(start: Callable[[ProgressFn], Iterator[Any]], name: str = "f5-stream") -> Iterator[tuple[str, Any]]:
    """Run ``start(on_progress)`` (an engine stream) in a dedicated thread and yield its events.

    Yields ``("progress", (fraction, message))`` and ``("chunk", chunk)`` in order; an exception
    raised by the engine is re-raised here. Closing this generator early (a cancelled request)
    asks the thread to stop: it closes the engine's stream after the chunk in progress, in the
    same thread that ran it.
    """
    events: queue.Queue[Any] = queue.Queue()
    stop = threading.Event()

    def on_progress(fraction: float, message: str) -> None:
        events.put(("progress", (clamp_fraction(fraction), str(message))))

    def run() -> None:
        stream = None
        try:
            stream = start(on_progress)
            for chunk in stream:
                if stop.is_set():
                    break
                events.put(("chunk", chunk))
                if stop.is_set():
                    break
        except BaseException as error:  # handed to the request thread, which reports it
            events.put(_Failure(error))
        finally:
            if stream is not None and hasattr(stream, "close"):
                try:
                    stream.close()
                except Exception:
                    log.exception("closing the engine stream failed")
            events.put(_DONE)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = events.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        # Normal end: the thread has finished. Early close: tell it to stop; never wait here
        # (this may run on Gradio's event-loop thread).
        stop.set()
