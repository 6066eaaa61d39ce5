"""A reader thread ahead of the consumer (see :func:`prefetched`)."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Optional, TypeVar

T = TypeVar("T")


class _Done:
    """Marks the end of the items in the handoff queue."""


def prefetched(items: Iterator[T], depth: int = 2, busy: Optional[Callable[[float], None]] = None) -> Iterator[T]:
    """Produce ``items`` ahead in a thread, at most ``depth`` ahead. Reading,
    decompressing and the native JSON reader release the GIL, so the producer
    runs while the consumer works. ``busy`` receives the producer's seconds
    per item. An exception in the producer is raised in the consumer.

    Example:
        >>> list(prefetched(iter(range(3))))
        [0, 1, 2]
    """
    handoff: queue.Queue[T | _Done | BaseException] = queue.Queue(maxsize=depth)
    done = _Done()
    stop = threading.Event()

    def produce() -> None:
        try:
            while not stop.is_set():
                start = time.perf_counter()
                item = next(items, done)
                if busy is not None:
                    busy(time.perf_counter() - start)
                handoff.put(item)
                if item is done:
                    return
        except BaseException as err:  # handed to the consumer, which re-raises it
            handoff.put(err)

    worker = threading.Thread(target=produce, daemon=True)
    worker.start()
    try:
        while not isinstance(item := handoff.get(), _Done):
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            try:
                handoff.get_nowait()
            except queue.Empty:
                worker.join(0.01)
