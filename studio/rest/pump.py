"""Drive a blocking iterator (an engine stream) from asyncio without tying up the server's threads.

The engine's stream holds its turn and per-thread model caches across chunks, so ONE thread must
drive it from start to close (see ``studio.runner``). :func:`iterate_in_thread` gives it a thread
of its own and hands each item to the event loop; a request waiting in the engine's line then holds
no worker of the shared thread pool (which the page's status and the API's other routes need).
Closing the async iterator early (a client that went away) asks the thread to stop after the item
in progress; the thread closes the iterator itself.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import AsyncIterator, Callable, Iterator, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

_ITEM, _ERROR, _DONE = "item", "error", "done"


async def iterate_in_thread(make: Callable[[], Iterator[T]], name: str = "f5-rest") -> AsyncIterator[T]:
    """Yield the items of ``make()``, which is called and iterated in a new daemon thread.

    An exception raised there is raised here, at the point of the stream where it happened."""
    loop = asyncio.get_running_loop()
    items: asyncio.Queue[tuple[str, object]] = asyncio.Queue()
    stop = threading.Event()

    def hand_over(kind: str, value: object) -> None:
        try:
            loop.call_soon_threadsafe(items.put_nowait, (kind, value))
        except RuntimeError:  # the event loop is gone (server shutting down): nobody is listening
            stop.set()

    def run() -> None:
        iterator = None
        try:
            iterator = make()
            for item in iterator:
                if stop.is_set():
                    break
                hand_over(_ITEM, item)
                if stop.is_set():
                    break
        except BaseException as error:  # raised again in the consumer, which reports it
            hand_over(_ERROR, error)
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    log.exception("closing the stream failed")
            hand_over(_DONE, None)

    threading.Thread(target=run, name=name, daemon=True).start()
    try:
        while True:
            kind, value = await items.get()
            if kind == _DONE:
                return
            if kind == _ERROR:
                raise value  # type: ignore[misc]
            yield value  # type: ignore[misc]
    finally:
        stop.set()  # never wait for the thread here: it finishes its item, then closes the stream
