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
import threading
from typing import AsyncIterator, Callable, Iterator, TypeVar

from studio.runner import DONE, ERROR, drive_in_own_thread

T = TypeVar("T")


async def iterate_in_thread(make: Callable[[], Iterator[T]], name: str = "f5-rest") -> AsyncIterator[T]:
    """Yield the items of ``make()``, which is called and iterated in a new daemon thread (the one
    pump, ``studio.runner.drive_in_own_thread``).

    An exception raised there is raised here, at the point of the stream where it happened."""
    loop = asyncio.get_running_loop()
    items: asyncio.Queue[tuple[str, object]] = asyncio.Queue()
    stop = threading.Event()

    def hand_over(kind: str, value: object) -> None:
        try:
            loop.call_soon_threadsafe(items.put_nowait, (kind, value))
        except RuntimeError:  # the event loop is gone (server shutting down): nobody is listening
            stop.set()

    drive_in_own_thread(make, hand_over, stop, name)
    try:
        while True:
            kind, value = await items.get()
            if kind == DONE:
                return
            if kind == ERROR:
                raise value  # type: ignore[misc]
            yield value  # type: ignore[misc]
    finally:
        stop.set()  # never wait for the thread here: it finishes its item, then closes the stream
