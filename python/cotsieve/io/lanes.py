"""Several shards read at once, each on its own reader (:func:`shard_lanes`).

Inflating one gzip or zstd stream is serial: one stream keeps about 8 cores
busy and no more (benchmarks/RESULTS.md, issue 23). A run past that reads
several shards at once, and takes their chunks as they come, each marked
with its shard's index; the consumer puts them back in order (the pipeline
sets a shard's outputs aside until its turn).

Example:
    >>> import os, tempfile
    >>> from cotsieve.io import resolve_inputs
    >>> folder = tempfile.mkdtemp()
    >>> for name in "ab":
    ...     _ = open(os.path.join(folder, name + ".jsonl"), "w").write('{"text": "Hmm."}\\n' * 2)
    >>> sources = resolve_inputs(folder)
    >>> items = list(shard_lanes(sources, ReadOptions(), 2))  # chunks, then None at each shard's end
    >>> sorted((i, len(c)) for i, c in items if c is not None), sorted(i for i, c in items if c is None)
    ([(0, 2), (1, 2)], [0, 1])
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Callable, Generator
from contextlib import closing
from typing import Optional, Union

from .chunks import Chunk, ReadOptions
from .jsonl import read_jsonl
from .sources import Source

#: What a lane hands on: a chunk of shard ``index``, None once the shard is
#: read to its end, or the error that stopped its reading.
LaneItem = tuple[int, Union[Chunk, None, BaseException]]


def shard_lanes(sources: list[Source], options: ReadOptions, lanes: int,
                busy: Optional[Callable[[float], None]] = None,
                read: Optional[Callable[[int], Generator[Chunk, None, None]]] = None,
                turn: Optional[Callable[[], int]] = None) -> Generator[LaneItem, None, None]:
    """Read the JSON Lines ``sources`` on ``lanes`` reader threads, each
    taking the next unread shard when it finishes one. Yields ``(index,
    chunk)`` as chunks are ready, ``(index, None)`` when shard ``index`` is
    read, and ``(index, error)`` when its reading failed (its lane goes on
    to the next shard). A shard's chunks come in order; shards interleave.
    At most two chunks per lane wait for the consumer (one queued, one being
    handed on), so memory stays that of ``lanes`` readers. ``busy`` receives
    each read's seconds. ``read`` gives the chunks of shard ``index``
    (default: the whole shard, read with ``options``). ``turn`` gives the
    first shard the consumer still needs: no shard ``2 * lanes`` or more
    past it is started (what the consumer sets aside for shards ahead of
    their turn stays bounded, however slow one shard is).
    """
    handoff: queue.Queue[LaneItem] = queue.Queue(maxsize=lanes)
    stop = threading.Event()
    order = itertools.count()
    room = threading.Condition()  # woken at each item the consumer takes, when the turn may move
    window = 2 * lanes

    def next_shard() -> int:
        with room:
            index = next(order)
            room.wait_for(lambda: stop.is_set() or turn is None or index < turn() + window)
            return index

    def read_shard(index: int) -> None:
        try:
            chunks = read(index) if read is not None else read_jsonl(sources[index], options)
            with closing(chunks):
                while not stop.is_set():
                    start = time.perf_counter()
                    chunk = next(chunks, None)
                    if busy is not None:
                        busy(time.perf_counter() - start)
                    handoff.put((index, chunk))
                    if chunk is None:
                        return
        except BaseException as err:  # handed to the consumer with its shard
            handoff.put((index, err))

    def lane() -> None:
        while not stop.is_set() and (index := next_shard()) < len(sources):
            read_shard(index)

    workers = [threading.Thread(target=lane, daemon=True) for _ in range(max(1, min(lanes, len(sources))))]
    for worker in workers:
        worker.start()
    ended = 0
    try:
        while ended < len(sources):
            index, item = handoff.get()
            ended += not isinstance(item, Chunk)
            yield index, item
            with room:
                room.notify_all()
    finally:
        stop.set()
        with room:
            room.notify_all()
        while any(worker.is_alive() for worker in workers):  # unblock lanes waiting on a full queue
            try:
                handoff.get_nowait()
            except queue.Empty:
                for worker in workers:
                    worker.join(0.01)
