"""A reader thread ahead of the consumer (see :func:`prefetched`), and
work on several threads with its results in order (:func:`ordered_map`)."""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Optional, TypeVar

T = TypeVar("T")
U = TypeVar("U")


class _Done:
    """Marks the end of the items in the handoff queue."""


def prefetched(items: Iterator[T], depth: int = 2, busy: Optional[Callable[[float], None]] = None
               ) -> Generator[T, None, None]:
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


def ordered_map(work: Callable[[T], U], items: Iterator[T], threads: int) -> Iterator[U]:
    """``work`` applied to each of ``items`` on ``threads`` threads at once,
    the results in the order of the items; at most ``threads`` items are in
    work, so memory stays bounded. With one thread, ``work`` runs in the
    caller's thread, one item at a time. ``work`` must release the GIL for
    most of its time to gain from more threads (the native JSON reader does).
    An exception in ``work`` is raised at its item's turn.

    Example:
        >>> list(ordered_map(lambda x: x * x, iter(range(5)), threads=3))
        [0, 1, 4, 9, 16]
    """
    if threads <= 1:
        yield from map(work, items)
        return
    with ThreadPoolExecutor(threads) as pool:
        pending: deque[Future[U]] = deque()
        try:
            for item in items:
                if len(pending) == threads:
                    yield pending.popleft().result()
                pending.append(pool.submit(work, item))
            while pending:
                yield pending.popleft().result()
        finally:  # the consumer stopped early or failed: nothing more starts
            for future in pending:
                future.cancel()
